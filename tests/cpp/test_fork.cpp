// A child forked while the engine's workers and interpreters are alive: they
// stay in the parent, and the child's engine refuses them instead of waiting
// for threads it does not have. The child reports through its exit code (a
// gtest assertion there would report nowhere); a hang ends it by SIGALRM.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "core/fork.hpp"
#include "core/pool.hpp"
#include "core/table.hpp"
#include "python_env.hpp"

using namespace interpool;

namespace {

Call add(int a, int b) {
  return Call{FunctionRef{"pool_tasks", "add"}, Value(Tuple{{Value(a), Value(b)}}), Value(Dict{})};
}

PoolOptions options(std::size_t workers) {
  PoolOptions o;
  o.workers = workers;
  o.sys_path = testenv::main_sys_path();
  return o;
}

// True if fn throws UsedAfterFork whose message names `what`.
bool refuses(const std::function<void()>& fn, const std::string& what) {
  try {
    fn();
  } catch (const UsedAfterFork& e) {
    std::string text = e.what();
    return text.find(what) != std::string::npos && text.find("forkserver") != std::string::npos;
  } catch (...) {
  }
  return false;
}

// Runs `child` in a forked child (which exits with what it returns, or 99 on
// a hang) and returns the child's exit status as waitpid gives it.
int in_child(const std::function<int()>& child) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    _exit(child());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace

TEST(Fork, ChildOfAPoolRefusesItAndLeavesItsWorkers) {
  Pool pool(options(2));
  ASSERT_EQ(pool.submit(add(2, 3)).get().value, Value(5));
  auto* extra = new Pool(options(1));
  EXPECT_FALSE(forked_while_running());
  int status = in_child([&] {
    if (!forked_while_running()) return 1;
    if (!refuses([&] { pool.submit(add(1, 1)); }, "cannot submit a task")) return 2;
    if (!refuses([&] { pool.submit_all({}); }, "cannot submit a task")) return 3;
    if (!refuses([&] { Pool other(options(1)); }, "cannot start a Pool")) return 4;
    if (pool.size() != 0 || pool.interrupt_all() != 0) return 5;
    // Nothing to wait for here: these return at once.
    pool.shutdown(true);
    delete extra;
    if (Pool::shutdown_all() != 0) return 6;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The parent is not the child: its pools serve on.
  EXPECT_FALSE(forked_while_running());
  EXPECT_EQ(pool.submit(add(20, 22)).get().value, Value(42));
  EXPECT_EQ(extra->submit(add(1, 2)).get().value, Value(3));
  delete extra;
}

TEST(Fork, ChildOfAnInterpreterRefusesIt) {
  std::int64_t id = InterpreterTable::create();
  int status = in_child([&] {
    if (!refuses([&] { InterpreterTable::enter(id); }, "cannot enter interpreter")) return 1;
    if (!refuses([&] { InterpreterTable::close(id); }, "cannot close interpreter")) return 2;
    if (!refuses([] { InterpreterTable::create(); }, "cannot create an interpreter")) return 3;
    if (InterpreterTable::release(id)) return 4;
    InterpreterTable::close_all();  // leaves the parent's interpreter alone, at once
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  { auto inside = InterpreterTable::enter(id); }  // still the parent's to use
  InterpreterTable::close(id);
}

TEST(Fork, ChildOfAnIdleEngineMayUseIt) {
  { Pool pool(options(1)); }  // every engine thread and interpreter has ended
  int status = in_child([] { return forked_while_running() ? 1 : 0; });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}
