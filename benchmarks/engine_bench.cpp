// Engine-level benchmarks (Google Benchmark): what a task costs below the Python API.
//
//   PoolTrivialTask/workers:N   batches of kBatch tasks `operator.pos(i)` submitted from
//                               this thread, each completing by decrementing a counter;
//                               the batch ends when the counter reaches 0. items_per_second
//                               is the throughput; 1e6 / items_per_second is µs per task;
//                               submit_ns is the submitting loop alone, per task.
//   PoolPrefilledDrain/workers:N  the same batch queued while the workers are held busy,
//                               then drained: worker-side cost per task alone (timed) and
//                               uncontended submit cost (submit_ns), no wake-ups.
//   PoolRoundTrip/workers:1     one task submitted and waited for at a time (latency).
//   ToValueSmallTuple           (1, 2.5, "abc", None, True) -> Value (the submit side).
//   ToPythonSmallTuple          the same Value -> a new tuple (the worker side).
//
// The embedded Python is the one the build was configured with (its home is baked in;
// INTERPOOL_PYTHON_HOME in the environment overrides it). Run it directly, or through
// benchmarks/bench_engine.py, which reads its --benchmark_format=json output.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <string>

#include "core/interpreter.hpp"
#include "core/pool.hpp"
#include "core/py_value.hpp"

using namespace interpool;

namespace {

constexpr int kBatch = 10000;

Call trivial_call(std::int64_t i) {
  return Call{FunctionRef{"operator", "pos"}, Tuple{{Value(i)}}, Dict{}};
}

/// Counts down the tasks of one batch; the submitting thread sleeps until it reaches 0.
struct Countdown {
  using Clock = std::chrono::steady_clock;
  std::atomic<int> remaining{0};
  std::atomic<int> failures{0};
  std::atomic<Clock::rep> finished_at{0};  // when the last task of the batch ended

  void start(int n) {
    finished_at.store(0, std::memory_order_relaxed);
    remaining.store(n, std::memory_order_release);
  }
  void done(const Outcome& out) {
    if (out.status != Outcome::Status::Ok) failures.fetch_add(1, std::memory_order_relaxed);
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      finished_at.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
      finished_at.notify_one();
    }
  }
  /// Waits for the whole batch; returns when its last task ended.
  Clock::time_point wait() {
    Clock::rep t;
    while ((t = finished_at.load(std::memory_order_acquire)) == 0)
      finished_at.wait(0, std::memory_order_acquire);
    return Clock::time_point(Clock::duration(t));
  }
};

PoolOptions pool_options(std::size_t workers) {
  PoolOptions options;
  options.workers = workers;
  return options;
}

/// The pool of one run of the batch benchmarks (state.range(0) workers) and the countdown
/// its tasks report to; declared first, the countdown outlives the pool, whose workers call
/// into it.
struct BatchPool {
  Countdown countdown;
  Pool pool;

  explicit BatchPool(const benchmark::State& state)
      : pool(pool_options(static_cast<std::size_t>(state.range(0)))) {}

  /// Submits n tasks one by one and waits for all; returns the seconds the submitting
  /// loop took.
  double run_batch(int n) {
    countdown.start(n);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i)
      pool.submit(trivial_call(i), [this](Outcome out) { countdown.done(out); });
    auto t1 = std::chrono::steady_clock::now();
    countdown.wait();
    return std::chrono::duration<double>(t1 - t0).count();
  }

  /// Shuts the pool down, then reports the run: kBatch tasks an iteration, an error if
  /// a task did not end Ok, and (submitting >= 0) the seconds the submitting loops took
  /// in all as submit_ns per task.
  void finish(benchmark::State& state, double submitting = -1) {
    pool.shutdown();
    if (countdown.failures.load() != 0) state.SkipWithError("some tasks did not end Ok");
    const auto tasks = state.iterations() * kBatch;
    state.SetItemsProcessed(tasks);
    state.counters["batch"] = kBatch;
    if (submitting >= 0)
      state.counters["submit_ns"] = 1e9 * submitting / static_cast<double>(tasks);
  }
};

void PoolTrivialTask(benchmark::State& state) {
  BatchPool bench(state);
  bench.run_batch(2 * kBatch);  // warm-up: imports, function caches, allocators
  double submitting = 0;
  for (auto _ : state) submitting += bench.run_batch(kBatch);
  // submit_ns, the submitting loop alone: when it is close to the whole time per task,
  // the submitter (not the workers) is the bottleneck.
  bench.finish(state, submitting);
}
BENCHMARK(PoolTrivialTask)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime();

/// The same batch handed over with one Pool::submit_all: one lock and one wake-up
/// for the whole batch, as map() chunks and bulk C++ callers would.
void PoolTrivialTaskBatched(benchmark::State& state) {
  BatchPool bench(state);
  Countdown& countdown = bench.countdown;
  auto batch = [&](int n) {
    countdown.start(n);
    std::vector<Pool::Job> jobs;
    jobs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      jobs.push_back(
          {trivial_call(i), [&countdown](Outcome out) { countdown.done(out); }, nullptr});
    bench.pool.submit_all(std::move(jobs));
    countdown.wait();
  };
  batch(2 * kBatch);  // warm-up
  for (auto _ : state) batch(kBatch);
  bench.finish(state);
}
BENCHMARK(PoolTrivialTaskBatched)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime();

/// The same tasks with the submitter and the workers apart in time: each worker is
/// first kept busy by a `time.sleep(kHoldSeconds)` task while the whole batch is
/// queued, so the submitting loop runs uncontended and wakes nobody (submit_ns), and
/// the workers then drain a full queue without ever sleeping (the timed part,
/// manual time: from the first sleep's end to the last task's end). Together with
/// PoolTrivialTask this splits a task's cost into the submit side, the worker side,
/// and what the hand-over between them (futex sleeps and wake-ups) adds.
constexpr double kHoldSeconds = 0.03;

void PoolPrefilledDrain(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  BatchPool bench(state);
  Countdown& countdown = bench.countdown;
  Pool& pool = bench.pool;
  std::atomic<Clock::rep> first_free{0};  // when the first worker ended its sleep
  const auto workers = static_cast<std::size_t>(state.range(0));
  bench.run_batch(2 * kBatch);  // warm-up
  double submitting = 0;
  bool overlapped = false;
  for (auto _ : state) {
    countdown.start(static_cast<int>(workers) + kBatch);
    first_free.store(0);
    for (std::size_t w = 0; w < workers; ++w)
      pool.submit(Call{FunctionRef{"time", "sleep"}, Tuple{{Value(kHoldSeconds)}}, Dict{}},
                  [&](Outcome out) {
                    Clock::rep zero = 0;
                    first_free.compare_exchange_strong(zero,
                                                       Clock::now().time_since_epoch().count());
                    countdown.done(out);
                  });
    auto t0 = Clock::now();
    for (int i = 0; i < kBatch; ++i)
      pool.submit(trivial_call(i), [&countdown](Outcome out) { countdown.done(out); });
    auto t1 = Clock::now();
    Clock::time_point end = countdown.wait();
    submitting += std::chrono::duration<double>(t1 - t0).count();
    Clock::time_point start{Clock::duration(first_free.load())};
    // The queue must have been full before the workers turned to it.
    if (first_free.load() == 0 || t1 > start) overlapped = true;
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
  bench.finish(state, submitting);
  if (overlapped) state.SkipWithError("the batch was not queued before the workers were free");
}
BENCHMARK(PoolPrefilledDrain)->ArgName("workers")->Arg(1)->Arg(2)->UseManualTime();

void PoolRoundTrip(benchmark::State& state) {
  Pool pool(pool_options(1));
  pool.submit(trivial_call(0)).get();  // warm-up
  int failures = 0;
  std::int64_t i = 0;
  for (auto _ : state) {
    Outcome out = pool.submit(trivial_call(i++)).get();
    failures += out.status != Outcome::Status::Ok;
  }
  pool.shutdown();
  if (failures != 0) state.SkipWithError("some tasks did not end Ok");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(PoolRoundTrip)->ArgName("workers")->Arg(1)->UseRealTime();

/// Holds the main interpreter's GIL for one benchmark run.
class MainGil {
 public:
  MainGil() : state_(PyGILState_Ensure()) {}
  MainGil(const MainGil&) = delete;
  MainGil& operator=(const MainGil&) = delete;
  ~MainGil() { PyGILState_Release(state_); }

 private:
  PyGILState_STATE state_;
};

PyObject* small_tuple() { return Py_BuildValue("(idsOO)", 1, 2.5, "abc", Py_None, Py_True); }

void ToValueSmallTuple(benchmark::State& state) {
  MainGil gil;
  PyObject* tuple = small_tuple();
  if (!tuple) {
    PyErr_Clear();
    state.SkipWithError("could not build the tuple");
    return;
  }
  for (auto _ : state) {
    Value v = to_value(tuple, "the tuple");
    benchmark::DoNotOptimize(v);
  }
  Py_DECREF(tuple);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ToValueSmallTuple);

void ToPythonSmallTuple(benchmark::State& state) {
  MainGil gil;
  PyObject* tuple = small_tuple();
  if (!tuple) {
    PyErr_Clear();
    state.SkipWithError("could not build the tuple");
    return;
  }
  Value v = to_value(tuple, "the tuple");
  Py_DECREF(tuple);
  bool failed = false;
  for (auto _ : state) {
    PyObject* obj = to_python(v);
    if (!obj) {
      failed = true;
      PyErr_Clear();
      break;
    }
    benchmark::DoNotOptimize(obj);
    Py_DECREF(obj);
  }
  if (failed) {
    state.SkipWithError("to_python failed");
    return;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ToPythonSmallTuple);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;
  const char* home = std::getenv("INTERPOOL_PYTHON_HOME");
  PyConfig_SetBytesString(&config, &config.home, home && *home ? home : INTERPOOL_PYTHON_HOME);
  PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) Py_ExitStatusException(status);
  benchmark::AddCustomContext("python", Py_GetVersion());
  benchmark::AddCustomContext("usable_cpus", std::to_string(usable_cpus()));
  // Detach from the main interpreter: pools and MainGil enter it as they need.
  PyThreadState* main_state = PyEval_SaveThread();

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  PyEval_RestoreThread(main_state);
  return Py_FinalizeEx() < 0 ? 120 : 0;
}
