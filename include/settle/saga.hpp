// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_SAGA_HPP
#define SETTLE_SAGA_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/token.hpp>
#include <settle/transaction.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// Sagas with recovery points: what a saga's record holds and the store
// concept that keeps it. The coordinator, which runs steps, compensates and
// recovers, is in <settle/saga_coordinator.hpp>, so that a store builds
// without the retry machinery.

SETTLE_BEGIN_NAMESPACE

/// Where a saga is. Exhaustive: switch on it without a default.
///
///   running ──(every step done)──────────────────────────> completed
///      │
///      └─(a step failed for good)─> compensating ──(every compensation done)──> compensated
///                                        │
///                                        └─(a compensation failed for good)──> failed
///
/// A saga never leaves compensating forward again, and never leaves the three
/// ended states.
enum class [[nodiscard]] saga_status{
    running,       ///< steps are run forward
    compensating,  ///< the steps it ran (and the one that failed) are undone, last first
    completed,     ///< every step ran: ended
    compensated,   ///< every step it had started is undone: ended
    failed,        ///< a compensation failed on every attempt: ended, set aside for an operator
};

[[nodiscard]] constexpr std::string_view to_string(saga_status status) noexcept {
    switch (status) {
    case saga_status::running: return "running";
    case saga_status::compensating: return "compensating";
    case saga_status::completed: return "completed";
    case saga_status::compensated: return "compensated";
    case saga_status::failed: return "failed";
    }
    return "unknown settle::saga_status";
}

/// Whether a saga in `status` has ended: completed, compensated or failed.
[[nodiscard]] constexpr bool is_ended(saga_status status) noexcept {
    switch (status) {
    case saga_status::running:
    case saga_status::compensating: return false;
    case saga_status::completed:
    case saga_status::compensated:
    case saga_status::failed: return true;
    }
    return true;
}

/// One saga, as a saga_store keeps it: its recovery point.
struct saga_record {
    std::string id;                             ///< unique
    std::string type;                           ///< which saga definition it runs
    saga_status status = saga_status::running;  ///< where it is
    /// running: the steps done, so the index of the next step to run;
    /// compensating: the steps still to undo, so step - 1 is undone next.
    std::uint32_t step = 0;
    std::uint32_t attempts = 0;  ///< failed attempts of the current step or compensation
    std::string data;            ///< the saga's input, as bytes; never changed
    /// Not picked up by recovery before then: the end of the current
    /// coordinator's lease, or the next attempt after a failure. Once the saga
    /// has ended: when it ended.
    stored_time next_run_at{};
    /// Every write moves it on; a write that names an older one is stale.
    version_stamp version = version_stamp::first();
    std::string last_error;  ///< what the last failed attempt threw; empty if none

    /// Equal when every field is.
    friend bool operator==(const saga_record&, const saga_record&) = default;
};

namespace detail {

// The text a SQL backend stores for a status, and back (nullopt for text
// settle never writes).
[[nodiscard]] constexpr std::string_view saga_status_text(saga_status status) noexcept {
    return to_string(status);
}

[[nodiscard]] constexpr std::optional<saga_status> saga_status_from(
    std::string_view text) noexcept {
    for (const saga_status s :
         {saga_status::running, saga_status::compensating, saga_status::completed,
          saga_status::compensated, saga_status::failed}) {
        if (to_string(s) == text) {
            return s;
        }
    }
    return std::nullopt;
}

template <class S>
concept saga_store_has_create = requires(S& s, typename S::transaction& tx, std::string_view id,
                                         std::string_view type, std::string_view data,
                                         stored_time next_run_at) {
    { s.create(tx, id, type, data, next_run_at) } -> std::same_as<bool>;
};
template <class S>
concept saga_store_has_load = requires(S& s, typename S::transaction& tx, std::string_view id) {
    { s.load(tx, id) } -> std::same_as<std::optional<saga_record>>;
};
template <class S>
concept saga_store_has_update = requires(S& s, typename S::transaction& tx,
                                         const saga_record& record) {
    { s.update(tx, record) } -> std::same_as<fenced_write>;
};
template <class S>
concept saga_store_has_due = requires(S& s, typename S::transaction& tx, std::string_view type,
                                      stored_time now, std::size_t limit) {
    { s.due(tx, type, now, limit) } -> std::same_as<std::vector<saga_record>>;
};

template <class S>
concept saga_store_has_purge = requires(S& s, typename S::transaction& tx,
                                        std::chrono::system_clock::time_point ended_before,
                                        std::size_t limit) {
    { s.purge(tx, ended_before, limit) } -> std::same_as<std::size_t>;
};

// One static_assert per requirement of settle::saga_store, each naming the
// member. Returns whether S models it.
template <class S>
constexpr bool check_saga_store() {
    if constexpr (check_transactional<S>()) {
        static_assert(saga_store_has_create<S>,
                      "settle::saga_store: `create(tx, id, type, data, next_run_at)` missing or "
                      "wrong signature; expected `bool create(transaction&, std::string_view, "
                      "std::string_view, std::string_view, settle::stored_time)`");
        static_assert(saga_store_has_load<S>,
                      "settle::saga_store: `load(tx, id)` missing or wrong signature; expected "
                      "`std::optional<settle::saga_record> load(transaction&, std::string_view)`");
        static_assert(saga_store_has_update<S>,
                      "settle::saga_store: `update(tx, record)` missing or wrong signature; "
                      "expected `settle::fenced_write update(transaction&, const "
                      "settle::saga_record&)`");
        static_assert(saga_store_has_due<S>,
                      "settle::saga_store: `due(tx, type, now, limit)` missing or wrong "
                      "signature; expected `std::vector<settle::saga_record> due(transaction&, "
                      "std::string_view, settle::stored_time, std::size_t)`");
        return saga_store_has_create<S> && saga_store_has_load<S> && saga_store_has_update<S> &&
               saga_store_has_due<S>;
    } else {
        return false;
    }
}

// The same for what settle::purgeable_saga_store adds to a saga_store.
template <class S>
constexpr bool check_saga_purge() {
    static_assert(saga_store_has_purge<S>,
                  "settle::purgeable_saga_store: `purge(tx, ended_before, limit)` missing or "
                  "wrong signature; expected `std::size_t purge(transaction&, "
                  "std::chrono::system_clock::time_point, std::size_t)`");
    return saga_store_has_purge<S>;
}

}  // namespace detail

/// Where a saga coordinator keeps its sagas: a settle::transactional store
/// with these operations, each atomic within the caller's transaction:
///
///   s.create(tx, id, type, data, next_run_at) -> bool
///       if id is not kept, keeps a saga: running, step 0, no attempts, the
///       given type, data and next run, version first(), no error; answers
///       whether it did. Unique on id: of two concurrent creates, one answers
///       true.
///   s.load(tx, id) -> optional<saga_record>
///       the saga, or nullopt.
///   s.update(tx, record) -> fenced_write
///       compare-and-set on the version: if the kept saga record.id has
///       version record.version, stores record's status, step, attempts,
///       next_run_at and last_error with version record.version.next(), and
///       answers applied; otherwise (a newer version, or no such saga)
///       changes nothing and answers stale. Of two concurrent updates naming
///       one version, one applies.
///   s.due(tx, type, now, limit) -> vector<saga_record>
///       at most `limit` sagas of `type`, running or compensating, whose next
///       run is at or before `now`, the earliest next run first.
///
/// That is all saga_coordinator's runs and recovery need.
template <class S>
concept saga_store =
    transactional<S> && detail::saga_store_has_create<S> && detail::saga_store_has_load<S> &&
    detail::saga_store_has_update<S> && detail::saga_store_has_due<S>;

/// A saga store that settle purges, which saga_coordinator::purge needs:
///
///   s.purge(tx, ended_before, limit) -> count
///       removes at most `limit` sagas that are completed or compensated and
///       whose next run (for an ended saga, when it ended) is before
///       `ended_before`; never a saga still running or compensating, and never
///       one set aside as failed, which waits for an operator.
///
/// settle/testing/saga_store_suite.hpp checks both concepts on a backend.
template <class S>
concept purgeable_saga_store = saga_store<S> && detail::saga_store_has_purge<S>;

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_SAGA_HPP
