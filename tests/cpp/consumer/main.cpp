#include <interpool/interpool.hpp>
int main() {
  interpool::Runtime runtime;                    // starts an embedded Python if none is running
  interpool::Pool pool{{.workers = 2}};
  std::future<interpool::Value> f = pool.submit("math", "factorial", 20);
  long long n = f.get().as<long long>();         // 2432902008176640000
  return n == 2432902008176640000LL ? 0 : 1;
}
