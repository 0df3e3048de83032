// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_BARRIER_HPP
#define SETTLE_BARRIER_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/transaction.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <settle/detail/macro_scope.hpp>

// The try/confirm/cancel barrier: a participant's guard for one branch of a
// two-phase business transaction. The coordinator calls try, then confirm or
// cancel; any call may repeat, arrive late or arrive out of order. The barrier
// records each branch's phase in the participant's own transaction, with its
// business write, so that each phase's work runs at most once, a cancel that
// arrives before its try needs no undo and fences that try off, and a branch
// is never both confirmed and cancelled.

SETTLE_BEGIN_NAMESPACE

/// The three calls a coordinator makes on a branch.
enum class [[nodiscard]] barrier_phase{
    try_phase,  ///< reserve: hold resources for the branch
    confirm,    ///< use what the try reserved
    cancel,     ///< release what the try reserved, if it ran
};

[[nodiscard]] constexpr std::string_view to_string(barrier_phase phase) noexcept {
    switch (phase) {
    case barrier_phase::try_phase: return "try";
    case barrier_phase::confirm: return "confirm";
    case barrier_phase::cancel: return "cancel";
    }
    return "unknown settle::barrier_phase";
}

/// What entering a phase found. Exhaustive: switch on it without a default.
///
///   phase \ branch  none          tried             confirmed          cancelled
///   try             entered       duplicate         duplicate          hanging / branch_cancelled
///   confirm         not_tried     entered           duplicate          branch_cancelled
///   cancel          empty_cancel  entered           branch_confirmed   duplicate
///
/// (a try meets `hanging` when the cancel came with no try before it, and
/// `branch_cancelled` when the cancel undid a try.)
enum class [[nodiscard]] barrier_outcome{
    entered,           ///< first time: do this phase's work, in the same transaction
    empty_cancel,      ///< a cancel with no try before it: nothing to undo; the
                       ///< branch is marked, so a late try is refused
    duplicate,         ///< this phase was entered before: do nothing, answer as before
    hanging,           ///< a try after a cancel that came with no try: refused
    branch_cancelled,  ///< a confirm or try of a cancelled branch: refused
    branch_confirmed,  ///< a cancel of a confirmed branch: refused
    not_tried,         ///< a confirm with no try before it: refused, nothing recorded
};

[[nodiscard]] constexpr std::string_view to_string(barrier_outcome outcome) noexcept {
    switch (outcome) {
    case barrier_outcome::entered: return "entered";
    case barrier_outcome::empty_cancel: return "empty_cancel";
    case barrier_outcome::duplicate: return "duplicate";
    case barrier_outcome::hanging: return "hanging";
    case barrier_outcome::branch_cancelled: return "branch_cancelled";
    case barrier_outcome::branch_confirmed: return "branch_confirmed";
    case barrier_outcome::not_tried: return "not_tried";
    }
    return "unknown settle::barrier_outcome";
}

/// Whether the phase holds after `outcome`: the participant answers the
/// coordinator "done" (entered, empty_cancel, duplicate) or "refused".
[[nodiscard]] constexpr bool is_refusal(barrier_outcome outcome) noexcept {
    switch (outcome) {
    case barrier_outcome::entered:
    case barrier_outcome::empty_cancel:
    case barrier_outcome::duplicate: return false;
    case barrier_outcome::hanging:
    case barrier_outcome::branch_cancelled:
    case barrier_outcome::branch_confirmed:
    case barrier_outcome::not_tried: return true;
    }
    return true;
}

namespace detail {

// Where a branch is, as a backend stores it.
enum class barrier_state {
    tried,          // its try was entered
    confirmed,      // confirmed after its try
    cancelled,      // cancelled after its try
    cancel_marker,  // cancelled with no try: a late try is refused
};

// The text a SQL backend stores for a state, and back (nullopt for text
// settle never writes).
[[nodiscard]] constexpr std::string_view barrier_state_text(barrier_state state) noexcept {
    switch (state) {
    case barrier_state::tried: return "tried";
    case barrier_state::confirmed: return "confirmed";
    case barrier_state::cancelled: return "cancelled";
    case barrier_state::cancel_marker: return "cancel_marker";
    }
    return "";
}

[[nodiscard]] constexpr std::optional<barrier_state> barrier_state_from(
    std::string_view text) noexcept {
    for (const barrier_state s : {barrier_state::tried, barrier_state::confirmed,
                                  barrier_state::cancelled, barrier_state::cancel_marker}) {
        if (barrier_state_text(s) == text) {
            return s;
        }
    }
    return std::nullopt;
}

// What entering `phase` on a branch found in `state` (nullopt: no record)
// answers, and the state it leaves (nullopt: unchanged). The one statement
// of the table at barrier_outcome, shared by every backend.
struct barrier_step {
    barrier_outcome outcome;
    std::optional<barrier_state> next;
};

[[nodiscard]] constexpr barrier_step step(std::optional<barrier_state> state,
                                          barrier_phase phase) noexcept {
    using o = barrier_outcome;
    using s = barrier_state;
    if (!state) {
        switch (phase) {
        case barrier_phase::try_phase: return {o::entered, s::tried};
        case barrier_phase::confirm: return {o::not_tried, std::nullopt};
        case barrier_phase::cancel: return {o::empty_cancel, s::cancel_marker};
        }
    }
    switch (*state) {
    case s::tried:
        switch (phase) {
        case barrier_phase::try_phase: return {o::duplicate, std::nullopt};
        case barrier_phase::confirm: return {o::entered, s::confirmed};
        case barrier_phase::cancel: return {o::entered, s::cancelled};
        }
        break;
    case s::confirmed:
        return {phase == barrier_phase::cancel ? o::branch_confirmed : o::duplicate, std::nullopt};
    case s::cancelled:
        return {phase == barrier_phase::cancel ? o::duplicate : o::branch_cancelled, std::nullopt};
    case s::cancel_marker:
        switch (phase) {
        case barrier_phase::try_phase: return {o::hanging, std::nullopt};
        case barrier_phase::confirm: return {o::branch_cancelled, std::nullopt};
        case barrier_phase::cancel: return {o::duplicate, std::nullopt};
        }
        break;
    }
    return {o::branch_cancelled, std::nullopt};
}

template <class S>
concept barrier_store_has_enter = requires(S& s, typename S::transaction& tx,
                                           std::string_view transaction_id,
                                           std::string_view branch_id, barrier_phase phase,
                                           stored_time now) {
    { s.enter(tx, transaction_id, branch_id, phase, now) } -> std::same_as<barrier_outcome>;
};

template <class S>
concept barrier_store_has_purge = requires(S& s, typename S::transaction& tx,
                                           stored_time ended_before, std::size_t limit) {
    { s.purge(tx, ended_before, limit) } -> std::same_as<std::size_t>;
};

// One static_assert per requirement of settle::barrier_store, each naming the
// member. Returns whether S models it.
template <class S>
constexpr bool check_barrier_store() {
    if constexpr (check_transactional<S>()) {
        static_assert(barrier_store_has_enter<S>,
                      "settle::barrier_store: `enter(tx, transaction_id, branch_id, phase, now)` "
                      "missing or wrong signature; expected `settle::barrier_outcome "
                      "enter(transaction&, std::string_view, std::string_view, "
                      "settle::barrier_phase, settle::stored_time)`");
        return barrier_store_has_enter<S>;
    } else {
        return false;
    }
}

// The same for what settle::purgeable_barrier_store adds to a barrier_store.
template <class S>
constexpr bool check_barrier_purge() {
    static_assert(barrier_store_has_purge<S>,
                  "settle::purgeable_barrier_store: `purge(tx, ended_before, limit)` missing or "
                  "wrong signature; expected `std::size_t purge(transaction&, "
                  "settle::stored_time, std::size_t)`");
    return barrier_store_has_purge<S>;
}

}  // namespace detail

/// Where a participant records its branches: a settle::transactional store
/// with one operation, atomic within the caller's transaction:
///
///   s.enter(tx, transaction_id, branch_id, phase, now) -> barrier_outcome
///       moves the branch (transaction_id, branch_id) as the table at
///       barrier_outcome says, recording `now` as the time of the change, and
///       answers that table's outcome; an outcome other than entered and
///       empty_cancel changes nothing. The change commits or rolls back with
///       tx. A try and an empty cancel insert the branch's record first,
///       relying on a unique key on the pair (never reading first, never
///       locking a missing row): of two concurrent calls on one branch, the
///       second waits for, or fails against, the first, and then answers as
///       if it had come after it.
///
/// That is all tcc_barrier's phases need.
template <class S>
concept barrier_store = transactional<S> && detail::barrier_store_has_enter<S>;

/// A barrier store that settle purges, which tcc_barrier::purge needs:
///
///   s.purge(tx, ended_before, limit) -> count
///       removes at most `limit` branches that ended (confirmed, cancelled,
///       or marked by an empty cancel) before `ended_before`; never a branch
///       still in its try.
///
/// settle/testing/barrier_store_suite.hpp checks both concepts on a backend.
template <class S>
concept purgeable_barrier_store = barrier_store<S> && detail::barrier_store_has_purge<S>;

/// What a tcc_barrier phase did: true when the phase was entered now and its
/// work ran.
///
///     if (auto r = barrier.confirm(tx, xid, "stock", work)) { /* work ran */ }
///     return r.is_refused() ? refused : done;   // the answer to the coordinator
class [[nodiscard]] barrier_result {
public:
    ///@{
    /// Made from an outcome; the outcome, and one test for each of its values; true when the phase
    /// was entered.
    constexpr explicit barrier_result(barrier_outcome outcome) noexcept : outcome_(outcome) {}

    [[nodiscard]] constexpr barrier_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] constexpr bool is_entered() const noexcept {
        return outcome_ == barrier_outcome::entered;
    }
    [[nodiscard]] constexpr bool is_empty_cancel() const noexcept {
        return outcome_ == barrier_outcome::empty_cancel;
    }
    [[nodiscard]] constexpr bool is_duplicate() const noexcept {
        return outcome_ == barrier_outcome::duplicate;
    }
    /// hanging, branch_cancelled, branch_confirmed or not_tried: the phase does
    /// not hold; answer the coordinator that it was refused.
    [[nodiscard]] constexpr bool is_refused() const noexcept { return is_refusal(outcome_); }
    constexpr explicit operator bool() const noexcept { return is_entered(); }
    ///@}

private:
    barrier_outcome outcome_;
};

/// What a tcc_barrier is configured with.
struct barrier_options {
    /// How long ended branches are kept before purge removes them. A branch's
    /// record is what refuses a repeated or late call: a try that arrives
    /// after its empty cancel was purged is entered (and hangs), so keep
    /// records longer than any call can be delayed: the coordinator's whole
    /// retry schedule plus the network's worst delay. Positive.
    std::chrono::microseconds retention = std::chrono::hours(24 * 7);
};

/// Guards the three phases of a participant's branches: each call records the
/// phase in the caller's transaction and, the first time it is entered, runs
/// the phase's work in that same transaction, so the record and the work
/// commit together or not at all. Commit the transaction whatever the outcome
/// (an empty cancel's marker must persist); a refused phase changed nothing.
/// Holds references to the store and the clock; copyable; as thread-safe as
/// the store.
///
///     settle::tcc_barrier barrier(branches, clock);
///     const settle::barrier_result r = barrier.try_phase(tx, xid, "stock", [&](auto& tx) {
///         stock.reserve(tx, sku, 1);
///     });
///
/// What it cannot protect: work outside the transaction (an e-mail, a call to
/// another service) is not rolled back with it; make such work idempotent on
/// (transaction id, branch id) instead.
///
/// Store models settle::barrier_store; purge() also needs
/// settle::purgeable_barrier_store.
template <class Store, class Clock>
class tcc_barrier {
    static_assert(detail::check_barrier_store<Store>());
    static_assert(wall_clock<Clock>,
                  "settle::tcc_barrier: the clock must be a settle::wall_clock (system_clock "
                  "time points): records persist wall-clock times");

public:
    ///@{
    /// The store and its transaction type.
    using store_type = Store;
    using transaction = typename Store::transaction;
    ///@}

    /// Throws settle::error (errc::invalid_argument) for a retention that is
    /// not positive.
    tcc_barrier(Store& store, Clock& clock, barrier_options options = {})
        : store_(&store), clock_(&clock), options_(options) {
        if (options_.retention <= std::chrono::microseconds::zero()) {
            throw error(errc::invalid_argument, "tcc_barrier: the retention is not positive");
        }
    }

    /// The options the barrier was made with.
    [[nodiscard]] const barrier_options& options() const noexcept { return options_; }

    /// Enters the try of the branch; the first time, runs work(tx). Refused
    /// (and work not run) once the branch was cancelled. Empty ids throw
    /// settle::error (errc::invalid_argument), as in every phase. If work
    /// throws, the exception propagates: roll tx back, and nothing is kept.
    template <class Work>
    requires std::invocable<Work&, transaction&> barrier_result try_phase(
        transaction& tx, std::string_view transaction_id, std::string_view branch_id, Work&& work) {
        return enter(tx, transaction_id, branch_id, barrier_phase::try_phase, work);
    }

    /// Enters the confirm of a tried branch; the first time, runs work(tx).
    template <class Work>
    requires std::invocable<Work&, transaction&> barrier_result confirm(
        transaction& tx, std::string_view transaction_id, std::string_view branch_id, Work&& work) {
        return enter(tx, transaction_id, branch_id, barrier_phase::confirm, work);
    }

    /// Enters the cancel of the branch; runs work(tx) only if the branch was
    /// tried (the first time). A cancel with no try runs nothing, answers
    /// empty_cancel and marks the branch so that its try, if it comes later,
    /// is refused: commit tx.
    template <class Work>
    requires std::invocable<Work&, transaction&> barrier_result cancel(
        transaction& tx, std::string_view transaction_id, std::string_view branch_id, Work&& work) {
        return enter(tx, transaction_id, branch_id, barrier_phase::cancel, work);
    }

    /// Removes at most `limit` branches that ended longer than the retention
    /// ago (confirmed, cancelled, and empty-cancel markers), and no branch
    /// still in its try; returns how many. Call it on a schedule, in batches,
    /// until it returns less than the limit:
    ///
    ///     while (settle::in_transaction(store, [&](auto& tx) { return barrier.purge(tx, 1000); })
    ///            == 1000) {}
    std::size_t purge(transaction& tx, std::size_t limit) {
        static_assert(detail::check_barrier_purge<Store>());
        const stored_time at = now();
        const auto earliest = stored_time::min().time_since_epoch();
        const stored_time cut = at.time_since_epoch() < earliest + options_.retention
                                    ? stored_time::min()
                                    : at - options_.retention;
        return store_->purge(tx, cut, limit);
    }

private:
    template <class Work>
    barrier_result enter(transaction& tx, std::string_view transaction_id,
                         std::string_view branch_id, barrier_phase phase, Work& work) {
        if (transaction_id.empty() || branch_id.empty()) {
            throw error(errc::invalid_argument,
                        std::string("tcc_barrier::") + std::string(to_string(phase)) +
                            (transaction_id.empty() ? ": the transaction id is empty"
                                                    : ": the branch id is empty"));
        }
        const barrier_outcome outcome = store_->enter(tx, transaction_id, branch_id, phase, now());
        if (outcome == barrier_outcome::entered) {
            std::invoke(work, tx);
        }
        return barrier_result(outcome);
    }

    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    Store* store_;
    Clock* clock_;
    barrier_options options_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_BARRIER_HPP
