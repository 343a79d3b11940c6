// The engine's view of the pool: the public class plus what it is made of
// (the control of a task, the worker).
#pragma once

#include <interpool/pool.hpp>

#include "core/task_control.hpp"
#include "core/worker.hpp"
