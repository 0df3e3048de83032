// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
//
// The umbrella header: every building block. Backends live under
// <settle/stores/...> and are included by name: <settle/stores/memory.hpp>
// brings every in-memory table in one include; the SQLite and PostgreSQL
// backends need their client library. Test aids live under
// <settle/testing/...>.
#ifndef SETTLE_SETTLE_HPP
#define SETTLE_SETTLE_HPP

#include <settle/barrier.hpp>
#include <settle/check_back.hpp>
#include <settle/clock.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/etag.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/lease.hpp>
#include <settle/optimistic.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/reconcile.hpp>
#include <settle/reconciler.hpp>
#include <settle/retry.hpp>
#include <settle/saga.hpp>
#include <settle/saga_coordinator.hpp>
#include <settle/sha256.hpp>
#include <settle/sleeper.hpp>
#include <settle/state_machine.hpp>
#include <settle/token.hpp>
#include <settle/transaction.hpp>
#include <settle/transition.hpp>
#include <settle/uuid.hpp>
#include <settle/version.hpp>
#include <settle/versioned.hpp>

#endif  // SETTLE_SETTLE_HPP
