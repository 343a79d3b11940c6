// interpool for C++: run Python functions in parallel on sub-interpreters that
// each have their own GIL.
//
//   interpool::Runtime runtime;                 // an embedded Python
//   interpool::Pool pool{{.workers = 4}};
//   std::future<interpool::Value> f = pool.submit("math", "factorial", 20);
//   long long n = f.get().as<long long>();
//
// docs/cpp.md is the guide.
#pragma once

#include <interpool/channel.hpp>        // IWYU pragma: export
#include <interpool/convert.hpp>        // IWYU pragma: export
#include <interpool/error.hpp>          // IWYU pragma: export
#include <interpool/pool.hpp>           // IWYU pragma: export
#include <interpool/queue.hpp>          // IWYU pragma: export
#include <interpool/runtime.hpp>        // IWYU pragma: export
#include <interpool/shared_buffer.hpp>  // IWYU pragma: export
#include <interpool/signal.hpp>         // IWYU pragma: export
#include <interpool/sync.hpp>           // IWYU pragma: export
#include <interpool/value.hpp>          // IWYU pragma: export
