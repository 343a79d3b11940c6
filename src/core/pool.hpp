// The engine's view of the pool: the public class plus the worker it is made of.
#pragma once

#include <interpool/pool.hpp>

#include "core/worker.hpp"
