// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_LEASE_HPP
#define SETTLE_STORES_MEMORY_LEASE_HPP

#include <settle/version.hpp>

#include <settle/lease.hpp>
#include <settle/stores/memory_versioned.hpp>

#include <chrono>
#include <functional>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace memory {

/// The in-memory lease store: lease records in a memory::database, for
/// settle::leases.
template <class Key, class Compare = std::less<>>
using lease_table = versioned_table<Key, lease_record, Compare>;

/// The in-memory fence store: the highest fencing token seen per resource,
/// for settle::fence, in the same database as the rows it protects.
template <class Key, class Compare = std::less<>>
using fence_table = versioned_table<Key, fencing_token, Compare>;

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_LEASE_HPP
