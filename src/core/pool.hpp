// The engine's view of the pool: the public class plus what it is made of
// (the control of a task, the worker).
#pragma once

#include <exception>
#include <interpool/pool.hpp>

#include "core/task_control.hpp"
#include "core/worker.hpp"

namespace interpool {

/// What the engine does with an exception a task's Completion threw: it drops
/// it (the worker and every other task go on) after handing it to the reporter
/// a face set, which must not throw. Set as the face's library loads; with
/// `replace` false, only if no face has set one (the C++ face's, in a C++
/// program, reports its program's completions).
using CompletionErrorReporter = void (*)(std::exception_ptr) noexcept;
void set_completion_error_reporter(CompletionErrorReporter report, bool replace = true) noexcept;

}  // namespace interpool
