// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_CHECK_BACK_HPP
#define SETTLE_CHECK_BACK_HPP

#include <settle/version.hpp>

#include <settle/barrier.hpp>
#include <settle/clock.hpp>
#include <settle/error.hpp>

#include <string>
#include <string_view>

#include <settle/detail/macro_scope.hpp>

// The check-back fence: how a sender answers "did the transaction behind
// this message commit?" when it cannot know yet. A broker holding a prepared
// (half) message asks the sender back; a reconciler asks about a record left
// uncertain. The sender's transaction seals the message before it commits;
// the check looks for the seal and, finding none, decides "rolled back" for
// good, on the same unique key, so that a transaction still running (or
// never to commit) can no longer commit behind the answer. A check and a
// late commit can never both win.

SETTLE_BEGIN_NAMESPACE

/// What the transaction behind a message did, as the fence decided it.
/// Exhaustive: switch on it without a default.
enum class [[nodiscard]] local_outcome{
    committed,    ///< the transaction sealed the message and committed: deliver it
    rolled_back,  ///< it did not commit before the check, and now never will: drop it
};

[[nodiscard]] constexpr std::string_view to_string(local_outcome outcome) noexcept {
    switch (outcome) {
    case local_outcome::committed: return "committed";
    case local_outcome::rolled_back: return "rolled_back";
    }
    return "unknown settle::local_outcome";
}

/// What seal() or check() answers: true when the transaction committed (for
/// seal: may commit).
class [[nodiscard]] check_back_result {
public:
    ///@{
    /// Made from an outcome; the outcome, and one test for each of its values; true when the local
    /// transaction committed.
    constexpr explicit check_back_result(local_outcome outcome) noexcept : outcome_(outcome) {}

    [[nodiscard]] constexpr local_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] constexpr bool is_committed() const noexcept {
        return outcome_ == local_outcome::committed;
    }
    [[nodiscard]] constexpr bool is_rolled_back() const noexcept {
        return outcome_ == local_outcome::rolled_back;
    }
    constexpr explicit operator bool() const noexcept { return is_committed(); }
    ///@}

private:
    local_outcome outcome_;
};

/// Seals messages in their senders' transactions and answers checks about
/// them. Keeps its records in a settle::barrier_store (one branch per message,
/// named "check-back"), so the barrier's table, its conformance suite and its
/// purge serve it as well; give it a table of its own or share the
/// participant's. Holds references to the store and the clock; copyable; as
/// thread-safe as the store.
///
///     settle::check_back_fence fence(branches, clock);
///     // the sender, in the transaction that writes the order:
///     if (!fence.seal(tx, message_id)) { return;  /* checked and rolled back: tx rolls back */ }
///     tx.commit();
///     // the broker's check-back, in a transaction of its own, committed:
///     const settle::check_back_result r = fence.check(tx2, message_id);
///     tx2.commit();
///     return r.is_committed() ? commit_message : rollback_message;
template <class Store, class Clock>
class check_back_fence {
    static_assert(detail::check_barrier_store<Store>());

public:
    ///@{
    /// The store and its transaction type; the fence checks through a tcc_barrier over the store.
    using store_type = Store;
    using transaction = typename Store::transaction;

    /// The branch id under which the fence keeps its records.
    static constexpr std::string_view branch_id = "check-back";

    check_back_fence(Store& store, Clock& clock) : barrier_(store, clock) {}
    ///@}

    /// In the sender's transaction, before it commits: records that it
    /// commits the message. committed: commit tx. rolled_back: a check already
    /// answered that the transaction rolled back, so it must not commit (roll
    /// tx back; whatever was sent is dropped). A repeated seal in a committed
    /// transaction answers committed. An empty id throws settle::error
    /// (errc::invalid_argument).
    check_back_result seal(transaction& tx, std::string_view message_id) {
        const barrier_result tried = barrier_.try_phase(tx, message_id, branch_id, [](auto&) {});
        if (tried.is_refused()) {
            return check_back_result(local_outcome::rolled_back);
        }
        const barrier_result confirmed = barrier_.confirm(tx, message_id, branch_id, [](auto&) {});
        return check_back_result(confirmed.is_refused() ? local_outcome::rolled_back
                                                        : local_outcome::committed);
    }

    /// In a transaction of the checker's own, which it commits: committed if
    /// the message's transaction sealed it and committed; otherwise decides
    /// rolled_back, for good. A seal that is still running is waited for (or
    /// the check fails against it, as the backend does). An empty id throws
    /// settle::error (errc::invalid_argument).
    check_back_result check(transaction& tx, std::string_view message_id) {
        const barrier_result r = barrier_.cancel(tx, message_id, branch_id, [](auto&) {});
        switch (r.outcome()) {
        case barrier_outcome::branch_confirmed: return check_back_result(local_outcome::committed);
        case barrier_outcome::empty_cancel:
        case barrier_outcome::duplicate: return check_back_result(local_outcome::rolled_back);
        case barrier_outcome::entered:
        case barrier_outcome::hanging:
        case barrier_outcome::branch_cancelled:
        case barrier_outcome::not_tried: break;
        }
        // entered: a seal's try without its confirm was committed: not a
        // record the fence writes.
        throw error(errc::backend_failure,
                    "check_back_fence::check: the record of message " + std::string(message_id) +
                        " was not written by a seal (" + std::string(to_string(r.outcome())) + ")");
    }

private:
    tcc_barrier<Store, Clock> barrier_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_CHECK_BACK_HPP
