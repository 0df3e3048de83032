// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
//
// The umbrella header: every building block that needs nothing beyond the
// standard library, and the in-memory backend. Backends that need a client
// library (SQLite, libpq) live under <settle/stores/...> and are included by
// name; test aids live under <settle/testing/...>.
#ifndef SETTLE_SETTLE_HPP
#define SETTLE_SETTLE_HPP

#include <settle/clock.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/etag.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/lease.hpp>
#include <settle/optimistic.hpp>
#include <settle/outbox.hpp>
#include <settle/retry.hpp>
#include <settle/sha256.hpp>
#include <settle/state_machine.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_idempotency.hpp>
#include <settle/stores/memory_lease.hpp>
#include <settle/stores/memory_outbox.hpp>
#include <settle/stores/memory_versioned.hpp>
#include <settle/token.hpp>
#include <settle/transaction.hpp>
#include <settle/transition.hpp>
#include <settle/uuid.hpp>
#include <settle/version.hpp>
#include <settle/versioned.hpp>

#endif  // SETTLE_SETTLE_HPP
