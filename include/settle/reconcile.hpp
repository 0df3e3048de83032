// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_RECONCILE_HPP
#define SETTLE_RECONCILE_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/transaction.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// Reconciliation, or double check: what a status source answers, the
// records a reconciler watches, and the store concept that keeps them. The
// reconciler itself, which checks and retries, is in
// <settle/reconciler.hpp>, so that a store builds without the retry
// machinery.

SETTLE_BEGIN_NAMESPACE

/// What a status source answers. Exhaustive: switch on it without a default.
enum class [[nodiscard]] checked_status{
    committed,    ///< it happened: resolve the record as done
    rolled_back,  ///< it did not happen, and will not: resolve the record as undone
    unknown,      ///< the source cannot tell yet: check again later
};

[[nodiscard]] constexpr std::string_view to_string(checked_status status) noexcept {
    switch (status) {
    case checked_status::committed: return "committed";
    case checked_status::rolled_back: return "rolled_back";
    case checked_status::unknown: return "unknown";
    }
    return "unknown settle::checked_status";
}

/// One watched record, as a reconcile_store keeps it.
struct uncertain_record {
    ///@{
    /// The record's id; equal when every field is.
    std::string id;
    stored_time uncertain_since{};      ///< when it was watched
    std::uint32_t unknown_answers = 0;  ///< checks that answered unknown so far
    stored_time next_check_at{};        ///< not checked before then

    friend bool operator==(const uncertain_record&, const uncertain_record&) = default;
    ///@}
};

namespace detail {

template <class S>
concept reconcile_store_has_watch = requires(S& s, typename S::transaction& tx, std::string_view id,
                                             stored_time now) {
    { s.watch(tx, id, now) } -> std::same_as<bool>;
};
template <class S>
concept reconcile_store_has_due = requires(S& s, typename S::transaction& tx,
                                           stored_time uncertain_before, stored_time now,
                                           std::size_t limit) {
    { s.due(tx, uncertain_before, now, limit) } -> std::same_as<std::vector<uncertain_record>>;
};
template <class S>
concept reconcile_store_has_forget = requires(S& s, typename S::transaction& tx,
                                              std::string_view id) {
    { s.forget(tx, id) } -> std::same_as<bool>;
};
template <class S>
concept reconcile_store_has_reschedule = requires(S& s, typename S::transaction& tx,
                                                  std::string_view id,
                                                  std::uint32_t unknown_answers,
                                                  stored_time next_check_at) {
    { s.reschedule(tx, id, unknown_answers, next_check_at) } -> std::same_as<bool>;
};
template <class S>
concept reconcile_store_has_escalate = requires(S& s, typename S::transaction& tx,
                                                std::string_view id, std::string_view reason,
                                                stored_time now) {
    { s.escalate(tx, id, reason, now) } -> std::same_as<bool>;
};

// One static_assert per requirement of settle::reconcile_store, each naming
// the member. Returns whether S models it.
template <class S>
constexpr bool check_reconcile_store() {
    if constexpr (check_transactional<S>()) {
        static_assert(reconcile_store_has_watch<S>,
                      "settle::reconcile_store: `watch(tx, id, now)` missing or wrong signature; "
                      "expected `bool watch(transaction&, std::string_view, settle::stored_time)`");
        static_assert(reconcile_store_has_due<S>,
                      "settle::reconcile_store: `due(tx, uncertain_before, now, limit)` missing or "
                      "wrong signature; expected `std::vector<settle::uncertain_record> "
                      "due(transaction&, settle::stored_time, settle::stored_time, std::size_t)`");
        static_assert(reconcile_store_has_forget<S>,
                      "settle::reconcile_store: `forget(tx, id)` missing or wrong signature; "
                      "expected `bool forget(transaction&, std::string_view)`");
        static_assert(reconcile_store_has_reschedule<S>,
                      "settle::reconcile_store: `reschedule(tx, id, unknown_answers, "
                      "next_check_at)` missing or wrong signature; expected `bool "
                      "reschedule(transaction&, std::string_view, std::uint32_t, "
                      "settle::stored_time)`");
        static_assert(reconcile_store_has_escalate<S>,
                      "settle::reconcile_store: `escalate(tx, id, reason, now)` missing or wrong "
                      "signature; expected `bool escalate(transaction&, std::string_view, "
                      "std::string_view, settle::stored_time)`");
        return reconcile_store_has_watch<S> && reconcile_store_has_due<S> &&
               reconcile_store_has_forget<S> && reconcile_store_has_reschedule<S> &&
               reconcile_store_has_escalate<S>;
    } else {
        return false;
    }
}

}  // namespace detail

/// Where a reconciler keeps the records it watches: a settle::transactional
/// store with these operations, each atomic within the caller's transaction:
///
///   s.watch(tx, id, now) -> bool
///       if id is not kept, keeps it: uncertain since `now`, no unknown
///       answers, next check at `now`; answers whether it did. Unique on id.
///   s.due(tx, uncertain_before, now, limit) -> vector<uncertain_record>
///       at most `limit` watched records (not escalated) uncertain since
///       before `uncertain_before` whose next check is at or before `now`,
///       the longest uncertain first.
///   s.forget(tx, id) -> bool
///       removes id, watched or escalated; answers whether it was kept. Of two
///       concurrent forgets of one id, one answers true.
///   s.reschedule(tx, id, unknown_answers, next_check_at) -> bool
///       sets a watched record's unknown answers and next check; false, and
///       no change, if id is not watched.
///   s.escalate(tx, id, reason, now) -> bool
///       sets a watched record aside with the reason: kept, never due again;
///       false, and no change, if id is not watched.
template <class S>
concept reconcile_store = transactional<S> && detail::reconcile_store_has_watch<S> &&
    detail::reconcile_store_has_due<S> && detail::reconcile_store_has_forget<S> &&
    detail::reconcile_store_has_reschedule<S> && detail::reconcile_store_has_escalate<S>;

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_RECONCILE_HPP
