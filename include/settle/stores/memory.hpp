// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_HPP
#define SETTLE_STORES_MEMORY_HPP

// The in-memory backend in one include: memory::database and its
// transactions, and every in-memory table (versioned_table, lease_table,
// fence_table, idempotency_table, outbox_table, inbox_table, publisher,
// barrier_table, reconcile_table, saga_table).
// For tests, examples and single-process tools; nothing survives the process.
// Not part of <settle/settle.hpp>: include it where you use it.
#include <settle/stores/memory_barrier.hpp>
#include <settle/stores/memory_database.hpp>
#include <settle/stores/memory_idempotency.hpp>
#include <settle/stores/memory_lease.hpp>
#include <settle/stores/memory_outbox.hpp>
#include <settle/stores/memory_reconcile.hpp>
#include <settle/stores/memory_saga.hpp>
#include <settle/stores/memory_versioned.hpp>

#endif  // SETTLE_STORES_MEMORY_HPP
