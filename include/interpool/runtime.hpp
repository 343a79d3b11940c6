// The embedded Python a C++ program's pools run on.
#pragma once

#include <string>
#include <thread>
#include <vector>

namespace interpool {

struct RuntimeOptions {
  /// Python's home: the prefix holding lib/pythonX.Y. Empty: $PYTHONHOME if
  /// set, else the Python interpool was built against (home()).
  std::string home{};
  /// Put in front of sys.path, in the main interpreter and in every worker,
  /// before $PYTHONPATH (which is honoured too).
  std::vector<std::string> module_paths{};
  /// Import the site module (site-packages on sys.path), as python does.
  bool import_site = true;
};

/// Starts an embedded Python, or attaches to the one already running.
///
/// Contract:
/// - if Python is not running, the constructor starts it (home and module
///   paths as RuntimeOptions say; Python's signal handlers are not installed,
///   so Ctrl-C stays the host's) and owns it; if it is already running (the
///   host started it, or this code runs inside a Python process, or another
///   Runtime owns it) the Runtime attaches: it starts nothing and its
///   destructor finalizes nothing;
/// - after the constructor the calling thread holds no GIL, so workers and
///   other threads run; construct it on one thread at a time (e.g. in main);
/// - the destructor of the owning Runtime runs on the thread that constructed
///   it. It first shuts down every Pool still alive (Pool::shutdown_all: their
///   accepted tasks run to the end, later submits throw PoolClosed, and
///   destroying them afterwards is safe), then finalizes Python. On another
///   thread it leaves Python running and says so on stderr rather than crash.
///   It never throws;
/// - starting failures throw InterpreterError with Python's reason.
class Runtime {
 public:
  Runtime() : Runtime(RuntimeOptions{}) {}
  explicit Runtime(RuntimeOptions options);
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  /// True if this Runtime started Python (and will finalize it).
  bool owns_python() const noexcept { return owns_; }

  /// True while an embedded or host Python is running.
  static bool python_running() noexcept;
  /// Python's version string ("3.13.0 (main, ...) [GCC ...]").
  static std::string python_version();
  /// The home used when neither RuntimeOptions::home nor $PYTHONHOME is set:
  /// sys.base_prefix of the Python interpool was built against.
  static std::string default_home();

 private:
  bool owns_ = false;
  void* main_state_ = nullptr;  // the PyThreadState saved to release the GIL
  std::thread::id owner_;
};

}  // namespace interpool
