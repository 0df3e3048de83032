// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TRANSACTION_HPP
#define SETTLE_TRANSACTION_HPP

#include <settle/version.hpp>

#include <settle/error.hpp>

#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <settle/detail/macro_scope.hpp>

// What every store has in common: transactions. Each block's store concept
// starts from settle::atomic_operations, or from settle::transactional when
// the block's guarantee needs rollback, and adds the operations that block
// calls.

SETTLE_BEGIN_NAMESPACE

/// A store whose operations run in its transactions, each operation atomic:
///
///   typename S::transaction   one transaction
///   s.begin()                 -> S::transaction, a new transaction
///   tx.commit()               makes its writes visible to every later transaction
///
/// It need not roll back: a store whose every operation commits on its own
/// (Redis) models it, and says so with `static constexpr bool rolls_back =
/// false;` in its transaction type. Blocks that only need each operation
/// atomic (the idempotency guard, leases and fences, versioned values) take
/// such a store.
template <class S>
concept atomic_operations = requires {
    typename S::transaction;
}
&&requires(S& s, typename S::transaction& tx) {
    { s.begin() } -> std::same_as<typename S::transaction>;
    tx.commit();
};

namespace detail {

template <class S>
concept declares_no_rollback = requires {
    requires !S::transaction::rolls_back;
};

}  // namespace detail

/// A settle::atomic_operations store that rolls back: a transaction destroyed
/// uncommitted leaves none of its writes behind. Blocks whose guarantee is
/// that a record commits or rolls back with your own rows (the outbox append,
/// the inbox mark, the try/confirm/cancel barrier, reconciliation) need it.
/// Every store rolls back unless its transaction type declares
/// `rolls_back = false`.
template <class S>
concept transactional = atomic_operations<S> && !detail::declares_no_rollback<S>;

/// The longest key a store indexes, in bytes: an idempotency tenant or
/// operation, an outbox ordering key, an inbox consumer or message id, a
/// barrier's transaction or branch id, a reconciled record's id, and a
/// versioned (lease, fence) key as settle::encode writes it. Every backend
/// refuses a longer one when it would store it, with settle::error
/// (errc::invalid_argument) and nothing written, so a key is accepted or
/// refused alike on every backend.
/// (PostgreSQL's B-tree holds about 2.7 kB per entry, and an idempotency
/// record's key has three parts.)
inline constexpr std::size_t max_key_size = 512;

namespace detail {

// Refuses a key of `size` bytes longer than max_key_size; `what` names it.
inline void check_key_size(std::size_t size, std::string_view who, std::string_view what) {
    if (size > max_key_size) {
        throw settle::error(errc::invalid_argument,
                            std::string(who) + ": the " + std::string(what) + " is " +
                                std::to_string(size) +
                                " bytes long; stores take keys of at most 512 bytes "
                                "(settle::max_key_size)");
    }
}

}  // namespace detail

/// Runs fn(tx) in a new transaction of `store` and commits it, returning what
/// fn returned. If fn throws, the transaction is destroyed uncommitted (rolled
/// back, by a settle::transactional store) and the exception propagates. settle's operations take
/// the caller's transaction; this is the one way to run one of them on its own:
///
///     auto removed = settle::in_transaction(store, [&](auto& tx) {
///         return guard.purge(tx, 1000);
///     });
template <atomic_operations S, class F>
requires std::invocable<F&, typename S::transaction&>
decltype(auto) in_transaction(S& store, F&& fn) {
    typename S::transaction tx = store.begin();
    if constexpr (std::is_void_v<std::invoke_result_t<F&, typename S::transaction&>>) {
        std::invoke(fn, tx);
        tx.commit();
    } else {
        decltype(auto) out = std::invoke(fn, tx);
        tx.commit();
        return out;
    }
}

namespace detail {

template <class S>
concept names_transaction = requires {
    typename S::transaction;
};

template <class S>
concept begins_transaction = requires(S& s) {
    { s.begin() } -> std::same_as<typename S::transaction>;
};

template <class S>
concept transaction_commits = requires(typename S::transaction& tx) {
    tx.commit();
};

// One static_assert per requirement of settle::atomic_operations, each naming
// the member, so a backend that misses one is told which. The first step of
// every block's check of its store. Returns whether S models it.
template <class S>
constexpr bool check_atomic_operations() {
    static_assert(names_transaction<S>,
                  "settle store: member type `transaction` missing (a store names the type of "
                  "its transactions)");
    if constexpr (names_transaction<S>) {
        static_assert(begins_transaction<S>,
                      "settle store: `begin()` missing or wrong signature; expected "
                      "`transaction begin()`");
        static_assert(transaction_commits<S>,
                      "settle store: `transaction::commit()` missing or wrong signature; expected "
                      "`void commit()`");
    }
    return atomic_operations<S>;
}

// The same for settle::transactional: a store whose transaction declares
// `rolls_back = false` is refused, since the block needs rollback.
template <class S>
constexpr bool check_transactional() {
    if constexpr (check_atomic_operations<S>()) {
        static_assert(!declares_no_rollback<S>,
                      "settle store: this store cannot roll back (its transaction declares "
                      "`rolls_back = false`), and this block needs a settle::transactional store "
                      "whose uncommitted transaction leaves nothing behind");
    }
    return transactional<S>;
}

}  // namespace detail

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TRANSACTION_HPP
