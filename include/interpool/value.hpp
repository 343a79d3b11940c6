// Interpreter-neutral values (value_type.hpp) with the conversions of C++
// types to and from them (convert.hpp): `Value v = x;`, `v.as<T>()`.
#pragma once

#include <interpool/convert.hpp>     // IWYU pragma: export
#include <interpool/value_type.hpp>  // IWYU pragma: export
