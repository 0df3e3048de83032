// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
//
// The umbrella header: every building block that needs nothing beyond the
// standard library. Backends that need a client library (SQLite, libpq) live
// under <settle/stores/...> and are included by name.
#ifndef SETTLE_SETTLE_HPP
#define SETTLE_SETTLE_HPP

#include <settle/error.hpp>
#include <settle/version.hpp>

#endif  // SETTLE_SETTLE_HPP
