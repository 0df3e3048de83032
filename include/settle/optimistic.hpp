// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_OPTIMISTIC_HPP
#define SETTLE_OPTIMISTIC_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/retry.hpp>
#include <settle/sleeper.hpp>
#include <settle/versioned.hpp>

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <stop_token>
#include <string_view>
#include <type_traits>
#include <utility>

#include <settle/detail/macro_scope.hpp>

// The retry loops over versioned values: optimistic_update (read, change,
// compare-and-set, again on conflict) and read_at_least (read-your-writes
// from a source that lags). Each has a form that opens its own transactions
// and one that runs in the caller's. The vocabulary they build on (stamps,
// versioned<T>, write_result, the store concepts) is <settle/versioned.hpp>,
// which does not need this header's retry machinery.

SETTLE_BEGIN_NAMESPACE

namespace detail {

// The policy's own classifier, for exceptions only; the default rule of
// retry() (a bug is not retried) when it has none.
template <class Classifier>
retry_decision classify_exception(const Classifier& classifier, const std::exception_ptr& e) {
    if constexpr (std::is_invocable_v<const Classifier&, const std::exception_ptr&>) {
        const auto answer = std::invoke(classifier, e);
        if constexpr (std::same_as<decltype(answer), const retry_decision>) {
            return answer;
        } else {
            static_assert(std::same_as<decltype(answer), const bool>,
                          "settle::retry: a classifier returns settle::retry_decision or bool");
            return answer ? retry_decision::retry : retry_decision::stop;
        }
    } else {
        (void)classifier;
        return default_exception_decision(e);
    }
}

// Runs `op` under `policy` with `classify` in place of its classifier.
template <class B, class Cl, class P, class C, class Sl, class Classify, class Op, class... G>
auto retry_with(const retry_policy<B, Cl, P>& policy, Classify classify, C& clock, Sl& sleeper,
                Op& op, std::stop_token stop, G&... random) {
    const auto ours = policy.retry_if(std::move(classify));
    if constexpr (sizeof...(G) == 0) {
        return settle::retry(ours, clock, sleeper, op, std::move(stop));
    } else {
        return settle::retry(ours, clock, sleeper, random..., op, std::move(stop));
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Optimistic update.

/// How optimistic_update ended. Exhaustive.
enum class [[nodiscard]] update_outcome{
    applied,    ///< fn's value was written
    unchanged,  ///< fn declined to write: nothing was written, no stamp was used
    gave_up,    ///< every compare-and-set the policy allowed met a newer stamp
    missing,    ///< the key was absent (or erased while the update ran)
};

[[nodiscard]] constexpr std::string_view to_string(update_outcome outcome) noexcept {
    switch (outcome) {
    case update_outcome::applied: return "applied";
    case update_outcome::unchanged: return "unchanged";
    case update_outcome::gave_up: return "gave_up";
    case update_outcome::missing: return "missing";
    }
    return "unknown settle::update_outcome";
}

/// What optimistic_update returns.
///   applied:   value() is the value written, stamp() its new stamp.
///   unchanged: value() and stamp() are what fn saw (current at that read).
///   gave_up:   stamp() is the last stamp seen (the one the last
///              compare-and-set met); value() holds that version when the
///              backend returned it with the conflict, else is empty.
///   missing:   stamp() is version_stamp(0), value() is empty.
/// attempts() counts the attempts made (each a read, a call of fn and a
/// compare-and-set, fewer when one stopped early), at least 1; reason() says
/// why retrying stopped: retry_outcome::succeeded unless gave_up.
template <class T>
class [[nodiscard]] update_result {
public:
    ///@{
    /// Made from its parts by the library; the outcome, one test for each of its values (true when
    /// applied), the value and stamp as they ended, the attempts made and why the retries stopped.
    update_result(update_outcome outcome, std::optional<T> value, version_stamp stamp,
                  std::uint32_t attempts, retry_outcome reason)
        : outcome_(outcome),
          value_(std::move(value)),
          stamp_(stamp),
          attempts_(attempts),
          reason_(reason) {}

    [[nodiscard]] update_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_applied() const noexcept { return outcome_ == update_outcome::applied; }
    [[nodiscard]] bool is_unchanged() const noexcept {
        return outcome_ == update_outcome::unchanged;
    }
    [[nodiscard]] bool is_gave_up() const noexcept { return outcome_ == update_outcome::gave_up; }
    [[nodiscard]] bool is_missing() const noexcept { return outcome_ == update_outcome::missing; }
    explicit operator bool() const noexcept { return is_applied(); }
    [[nodiscard]] const std::optional<T>& value() const& noexcept { return value_; }
    [[nodiscard]] std::optional<T>&& value() && noexcept { return std::move(value_); }
    [[nodiscard]] version_stamp stamp() const noexcept { return stamp_; }
    [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }
    [[nodiscard]] retry_outcome reason() const noexcept { return reason_; }
    ///@}

private:
    update_outcome outcome_;
    std::optional<T> value_;
    version_stamp stamp_;
    std::uint32_t attempts_;
    retry_outcome reason_;
};

namespace detail {

// One attempt of optimistic_update, as retry() sees it. Deliberately without
// has_value(), so retry() asks the classifier about every attempt.
template <class T>
struct update_attempt {
    enum class kind { applied, unchanged, conflict, missing, aborted };
    kind what;
    std::optional<T> value;
    version_stamp stamp;
};

// True if `e` is settle::error with errc::aborted: the backend kept nothing
// of the transaction, its commit included.
[[nodiscard]] inline bool is_aborted(const std::exception_ptr& e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const error& failure) {
        return failure.code() == errc::aborted;
    } catch (...) {
        return false;
    }
}

// Retries conflicts; asks the policy's own classifier about the store's
// exceptions, with retry()'s default rule when it has none, except that
// without a classifier a commit that threw is not retried: it may have
// written, and a retry would apply fn a second time on top. A commit that
// threw errc::aborted wrote nothing, so it is retried like any other failure.
template <class Inner>
struct update_classifier {
    Inner inner;
    const bool* in_doubt;  // the last attempt threw from its compare-and-set's commit

    template <class T>
    retry_decision operator()(const update_attempt<T>& a) const noexcept {
        return a.what == update_attempt<T>::kind::conflict ? retry_decision::retry
                                                           : retry_decision::stop;
    }
    retry_decision operator()(const std::exception_ptr& e) const {
        if constexpr (!std::is_invocable_v<const Inner&, const std::exception_ptr&>) {
            if (*in_doubt && !is_aborted(e)) {
                return retry_decision::stop;
            }
        }
        return classify_exception(inner, e);
    }
};

template <class F, class T>
concept update_function = std::invocable<F&, const T&> &&
    (std::same_as<std::invoke_result_t<F&, const T&>, std::optional<T>> ||
     std::convertible_to<std::invoke_result_t<F&, const T&>, T>);

template <class T, class F>
std::optional<T> call_update(F& fn, const T& current) {
    if constexpr (std::same_as<std::invoke_result_t<F&, const T&>, std::optional<T>>) {
        return std::invoke(fn, current);
    } else {
        return std::optional<T>(std::in_place, std::invoke(fn, current));
    }
}

template <class S, class F, class B, class Cl, class P, class C, class Sl, class... G>
auto run_optimistic_update(S& store, const typename S::key_type& key, F& fn,
                           const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                           std::stop_token stop, G&... random) {
    using T = typename S::value_type;
    using attempt = update_attempt<T>;
    using kind = typename attempt::kind;

    std::optional<versioned<T>> known;  // the current version, when a conflict returned it
    std::exception_ptr fn_failure;
    bool in_doubt = false;

    auto one = [&]() -> attempt {
        in_doubt = false;
        std::optional<versioned<T>> current = std::move(known);
        known.reset();
        if (!current) {
            auto tx = store.begin();
            current = store.load(tx, key);
            tx.commit();
        }
        if (!current) {
            return attempt{kind::missing, std::nullopt, version_stamp(0)};
        }
        std::optional<T> next;
        try {
            next = call_update(fn, std::as_const(current->value));
        } catch (...) {
            fn_failure = std::current_exception();
            return attempt{kind::aborted, std::nullopt, current->stamp};
        }
        if (!next) {
            return attempt{kind::unchanged, std::move(current->value), current->stamp};
        }
        auto tx = store.begin();
        write_result<T> written = store.compare_and_set(tx, key, current->stamp, T(*next));
        in_doubt = true;
        tx.commit();
        in_doubt = false;
        switch (written.outcome()) {
        case write_outcome::applied:
            return attempt{kind::applied, std::move(next), written.stamp()};
        case write_outcome::conflict: {
            const version_stamp stamp = written.stamp();
            if (std::optional<T> value = std::move(written).current_value()) {
                known.emplace(versioned<T>{std::move(*value), stamp});
            }
            return attempt{kind::conflict, std::nullopt, stamp};
        }
        case write_outcome::missing: break;
        }
        return attempt{kind::missing, std::nullopt, version_stamp(0)};
    };

    auto result = retry_with(policy, update_classifier<Cl>{policy.classifier(), &in_doubt}, clock,
                             sleeper, one, std::move(stop), random...);
    if (fn_failure) {
        std::rethrow_exception(fn_failure);
    }
    attempt& last = result.value();  // rethrows the store's exception, if the last attempt threw
    switch (last.what) {
    case kind::applied:
    case kind::unchanged:
        return update_result<T>(
            last.what == kind::applied ? update_outcome::applied : update_outcome::unchanged,
            std::move(last.value), last.stamp, result.attempts(), retry_outcome::succeeded);
    case kind::conflict:  // the version it met is in `known`, if the backend returned it
        return update_result<T>(update_outcome::gave_up,
                                known ? std::optional<T>(std::move(known->value)) : std::nullopt,
                                last.stamp, result.attempts(), result.outcome());
    case kind::missing:
    case kind::aborted: break;
    }
    return update_result<T>(update_outcome::missing, std::nullopt, version_stamp(0),
                            result.attempts(), retry_outcome::succeeded);
}

template <class S, class F>
auto run_optimistic_update_in(S& store, typename S::transaction& tx,
                              const typename S::key_type& key, F& fn) {
    using T = typename S::value_type;
    std::optional<versioned<T>> current = store.load(tx, key);
    for (int passes = 0;; ++passes) {
        const auto attempts = static_cast<std::uint32_t>(passes + 1);
        if (!current) {
            return update_result<T>(update_outcome::missing, std::nullopt, version_stamp(0),
                                    attempts, retry_outcome::succeeded);
        }
        std::optional<T> next = call_update(fn, std::as_const(current->value));
        if (!next) {
            return update_result<T>(update_outcome::unchanged, std::move(current->value),
                                    current->stamp, attempts, retry_outcome::succeeded);
        }
        write_result<T> written = store.compare_and_set(tx, key, current->stamp, T(*next));
        switch (written.outcome()) {
        case write_outcome::applied:
            return update_result<T>(update_outcome::applied, std::move(next), written.stamp(),
                                    attempts, retry_outcome::succeeded);
        case write_outcome::missing:
            return update_result<T>(update_outcome::missing, std::nullopt, version_stamp(0),
                                    attempts, retry_outcome::succeeded);
        case write_outcome::conflict: break;
        }
        count_conflict(passes, "settle::optimistic_update");
        const version_stamp stamp = written.stamp();
        if (std::optional<T> value = std::move(written).current_value()) {
            current.emplace(versioned<T>{std::move(*value), stamp});
        } else {
            current = store.load(tx, key);
        }
    }
}

template <class S, class F>
constexpr bool check_update_function() {
    if constexpr (vs_has_types<S>) {
        static_assert(update_function<F, typename S::value_type>,
                      "settle::optimistic_update: fn must be callable as fn(const value_type&) and "
                      "return std::optional<value_type> (nullopt: leave the value as it is) or a "
                      "value_type");
        return update_function<F, typename S::value_type>;
    } else {
        return false;
    }
}

}  // namespace detail

/// Read, modify, compare-and-set, and on conflict read again and retry under
/// `policy`: the optimistic lock, without holding a transaction open while fn
/// works. This form is a whole protocol and opens its own transactions (the
/// form below runs in yours). Each attempt
///   1. loads the key in a short transaction of its own (skipped when the
///      previous attempt's conflict returned the current value),
///   2. calls fn(const T& current) outside any transaction; fn returns the new
///      value, or std::nullopt to leave the value as it is (no write, no new
///      stamp),
///   3. compare-and-sets at the stamp it read, in a second transaction, and
///      commits.
/// A conflict (another writer got in between) is retried as the policy
/// allows (attempts, deadline, budget, waits through `sleeper`); fn is then
/// called again with the newer value, so fn must be safe to call more than
/// once and should not have side effects. Outcomes: applied, unchanged,
/// gave_up, missing (see update_result).
///
/// Exceptions: fn's propagate at once, without a retry. The store's are
/// classified like retry()'s: by the policy's classifier when it takes a
/// std::exception_ptr, else by the default rule (a bug, std::logic_error or
/// settle::error invalid_argument, malformed_input or decode_failed, is not
/// retried; anything else is), with one exception to it: without a classifier,
/// an exception from the commit of the compare-and-set is not retried, because
/// that write may have taken effect and a retry would apply fn to its result;
/// settle::error with errc::aborted is, since the backend kept nothing of that
/// transaction. A classifier that retries the others accepts that. They propagate once retrying
/// stops. The caller must not hold a transaction of the store's
/// database while calling this (the store's begin() may wait for it).
///
/// Costs per attempt: two transactions, one copy of the value read and one of
/// the value written; no other allocation.
///
///     auto r = settle::optimistic_update(accounts, "alice",
///         [](const account& a) -> std::optional<account> {
///             if (a.balance < 30) return std::nullopt;
///             return account{a.balance - 30};
///         },
///         settle::retry_policy{settle::constant_backoff{0ms}, 10}, clock, sleeper);
template <class S, class F, backoff B, class Cl, class P, clock C, sleeper Sl>
requires schedule<B>
[[nodiscard]] auto optimistic_update(S& store, const typename S::key_type& key, F&& fn,
                                     const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                     std::stop_token stop = {}) {
    constexpr bool is_store = detail::check_versioned_store<S>();
    constexpr bool is_update = detail::check_update_function<S, std::remove_reference_t<F>>();
    if constexpr (is_store && is_update) {
        return detail::run_optimistic_update(store, key, fn, policy, clock, sleeper,
                                             std::move(stop));
    }
}

/// The same, for randomised backoffs (jitter), which draw from `random`.
template <class S, class F, backoff B, class Cl, class P, clock C, sleeper Sl,
          std::uniform_random_bit_generator G>
[[nodiscard]] auto optimistic_update(S& store, const typename S::key_type& key, F&& fn,
                                     const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                     G& random, std::stop_token stop = {}) {
    constexpr bool is_store = detail::check_versioned_store<S>();
    constexpr bool is_update = detail::check_update_function<S, std::remove_reference_t<F>>();
    if constexpr (is_store && is_update) {
        return detail::run_optimistic_update(store, key, fn, policy, clock, sleeper,
                                             std::move(stop), random);
    }
}

/// The same inside the caller's transaction `tx`: loads the key in tx, calls
/// fn, compare-and-sets in tx; nothing is committed (commit tx to keep the
/// write, with whatever else tx holds). fn runs while tx is open.
///
/// A conflict here means another transaction committed a newer version
/// between the load and the write: the update runs again at once against that
/// version (taken from the conflict when the store returns it, else loaded
/// again in tx), with no policy and no wait, since each conflict is another
/// writer's progress. That needs an isolation level at which tx reads what
/// others committed after it began (read committed, as settle's SQL backends
/// use); after 64 conflicts in a row the backend is taken to be broken and
/// settle::error (errc::backend_failure) is thrown, as settle::transition does.
/// The in-memory database runs one transaction at a time, so there it never
/// conflicts.
///
/// Outcomes: applied, unchanged or missing, never gave_up; attempts() counts
/// the passes, reason() is retry_outcome::succeeded. Exceptions, fn's and the
/// store's, propagate at once: a failed statement may have ended tx (PostgreSQL
/// aborts the transaction), so retrying is for whoever retries the whole
/// transaction.
///
///     settle::in_transaction(db, [&](auto& tx) {
///         auto r = settle::optimistic_update(accounts, tx, "alice", debit_30);
///         if (r.is_applied()) outbox.append(tx, ...);   // commits with the debit
///     });
template <class S, class F>
[[nodiscard]] auto optimistic_update(S& store, typename S::transaction& tx,
                                     const typename S::key_type& key, F&& fn) {
    constexpr bool is_store = detail::check_versioned_store<S>();
    constexpr bool is_update = detail::check_update_function<S, std::remove_reference_t<F>>();
    if constexpr (is_store && is_update) {
        return detail::run_optimistic_update_in(store, tx, key, fn);
    }
}

// ---------------------------------------------------------------------------
// Read-your-writes.

/// What read_at_least found. Exhaustive.
enum class [[nodiscard]] read_outcome{
    fresh,  ///< a version at least as new as asked for
    stale,  ///< the source had not caught up when retrying stopped
};

[[nodiscard]] constexpr std::string_view to_string(read_outcome outcome) noexcept {
    switch (outcome) {
    case read_outcome::fresh: return "fresh";
    case read_outcome::stale: return "stale";
    }
    return "unknown settle::read_outcome";
}

/// What read_at_least returns.
///   fresh: seen() is the version read, its stamp at least the one asked for.
///   stale: seen() is the last version read, older than asked for, or empty
///          when the key was absent there. Never to be served as fresh.
/// attempts() counts the reads; reason() says why retrying stopped
/// (retry_outcome::succeeded when fresh).
template <class T>
class [[nodiscard]] read_result {
public:
    ///@{
    /// Made from its parts by the library; the outcome, one test for each of its values (true when
    /// fresh), the value last seen, the attempts made and why the retries stopped.
    read_result(read_outcome outcome, std::optional<versioned<T>> seen, std::uint32_t attempts,
                retry_outcome reason)
        : outcome_(outcome), seen_(std::move(seen)), attempts_(attempts), reason_(reason) {}

    [[nodiscard]] read_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_fresh() const noexcept { return outcome_ == read_outcome::fresh; }
    [[nodiscard]] bool is_stale() const noexcept { return outcome_ == read_outcome::stale; }
    explicit operator bool() const noexcept { return is_fresh(); }
    [[nodiscard]] const std::optional<versioned<T>>& seen() const& noexcept { return seen_; }
    [[nodiscard]] std::optional<versioned<T>>&& seen() && noexcept { return std::move(seen_); }
    [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }
    [[nodiscard]] retry_outcome reason() const noexcept { return reason_; }
    ///@}

private:
    read_outcome outcome_;
    std::optional<versioned<T>> seen_;
    std::uint32_t attempts_;
    retry_outcome reason_;
};

namespace detail {

template <class T>
struct read_attempt {
    std::optional<versioned<T>> seen;
    bool fresh;
};

// Inside the caller's transaction no exception is retried.
struct retry_no_exception {
    retry_decision operator()(const std::exception_ptr&) const noexcept {
        return retry_decision::stop;
    }
};

// Retries reads that are behind; asks `inner` about exceptions (the policy's
// own classifier, with retry()'s default rule when it has none).
template <class Inner>
struct read_classifier {
    Inner inner;

    template <class T>
    retry_decision operator()(const read_attempt<T>& a) const noexcept {
        return a.fresh ? retry_decision::stop : retry_decision::retry;
    }
    retry_decision operator()(const std::exception_ptr& e) const {
        return classify_exception(inner, e);
    }
};

// `tx` null: each read in a transaction of its own; else every read in *tx.
// `on_exception` classifies what a read throws.
template <class S, class B, class Cl, class P, class OnException, class C, class Sl, class... G>
auto run_read_at_least(S& source, typename S::transaction* tx, const typename S::key_type& key,
                       version_stamp at_least, const retry_policy<B, Cl, P>& policy,
                       OnException on_exception, C& clock, Sl& sleeper, std::stop_token stop,
                       G&... random) {
    using T = typename S::value_type;
    auto one = [&]() -> read_attempt<T> {
        std::optional<versioned<T>> seen;
        if (tx != nullptr) {
            seen = source.load(*tx, key);
        } else {
            auto own = source.begin();
            seen = source.load(own, key);
            own.commit();
        }
        const bool fresh = seen.has_value() && seen->stamp >= at_least;
        return read_attempt<T>{std::move(seen), fresh};
    };
    auto result = retry_with(policy, read_classifier<OnException>{std::move(on_exception)}, clock,
                             sleeper, one, std::move(stop), random...);
    read_attempt<T>& last = result.value();  // rethrows if the last read threw
    return read_result<T>(last.fresh ? read_outcome::fresh : read_outcome::stale,
                          std::move(last.seen), result.attempts(), result.outcome());
}

}  // namespace detail

/// Read-your-writes against a source that may lag behind the writes (a
/// replica, a cache): reads `key` until the version read is at least
/// `at_least` (the stamp of the caller's own last write), retrying under
/// `policy` (a ladder and a deadline, typically) while the source is behind
/// or the key is not there yet. Reports stale rather than returning old data
/// as fresh. Each read is a short transaction of the source's own (the form
/// below reads in yours); exceptions
/// are classified like retry()'s (by the policy's classifier, else a bug is not
/// retried and anything else is), and propagate when the last read threw. Needs only begin() and
/// load() of the source.
///
///     auto r = settle::read_at_least(replica, "order-7", my_last_write,
///                                    settle::retry_policy{settle::ladder{10ms, 50ms, 200ms}, 10}
///                                        .with_deadline(1s),
///                                    clock, sleeper);
///     if (!r.is_fresh()) return read_from_primary();
template <class S, backoff B, class Cl, class P, clock C, sleeper Sl>
requires schedule<B>
[[nodiscard]] auto read_at_least(S& source, const typename S::key_type& key, version_stamp at_least,
                                 const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                 std::stop_token stop = {}) {
    if constexpr (detail::check_versioned_reader<S>()) {
        return detail::run_read_at_least(source, nullptr, key, at_least, policy,
                                         policy.classifier(), clock, sleeper, std::move(stop));
    }
}

/// The same, for randomised backoffs (jitter), which draw from `random`.
template <class S, backoff B, class Cl, class P, clock C, sleeper Sl,
          std::uniform_random_bit_generator G>
[[nodiscard]] auto read_at_least(S& source, const typename S::key_type& key, version_stamp at_least,
                                 const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                 G& random, std::stop_token stop = {}) {
    if constexpr (detail::check_versioned_reader<S>()) {
        return detail::run_read_at_least(source, nullptr, key, at_least, policy,
                                         policy.classifier(), clock, sleeper, std::move(stop),
                                         random);
    }
}

/// The same, every read inside the caller's transaction `tx`, which stays open
/// while it waits. What a repeated read in one transaction can see depends on
/// its isolation: at read committed (settle's SQL backends, a PostgreSQL hot
/// standby) each read sees what was committed, or replayed, before it, so
/// the source can catch up; at repeatable read or above, and in the in-memory
/// database (one transaction at a time), every read sees what the first saw,
/// so a read that is behind stays behind: use max_attempts 1 there, or the
/// form above. Exceptions propagate at once, never retried: a failed statement
/// may have ended tx (PostgreSQL aborts the transaction), so retrying is for
/// whoever retries the whole transaction; a policy with a classifier is
/// refused.
template <class S, backoff B, class Cl, class P, clock C, sleeper Sl>
requires schedule<B>
[[nodiscard]] auto read_at_least(S& source, typename S::transaction& tx,
                                 const typename S::key_type& key, version_stamp at_least,
                                 const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                 std::stop_token stop = {}) {
    static_assert(std::same_as<Cl, detail::retry_every_failure>,
                  "settle::read_at_least: in the caller's transaction no exception is retried; "
                  "pass a policy without a classifier");
    if constexpr (detail::check_versioned_reader<S>()) {
        return detail::run_read_at_least(source, &tx, key, at_least, policy,
                                         detail::retry_no_exception{}, clock, sleeper,
                                         std::move(stop));
    }
}

/// The same, for randomised backoffs (jitter), which draw from `random`.
template <class S, backoff B, class Cl, class P, clock C, sleeper Sl,
          std::uniform_random_bit_generator G>
[[nodiscard]] auto read_at_least(S& source, typename S::transaction& tx,
                                 const typename S::key_type& key, version_stamp at_least,
                                 const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                 G& random, std::stop_token stop = {}) {
    static_assert(std::same_as<Cl, detail::retry_every_failure>,
                  "settle::read_at_least: in the caller's transaction no exception is retried; "
                  "pass a policy without a classifier");
    if constexpr (detail::check_versioned_reader<S>()) {
        return detail::run_read_at_least(source, &tx, key, at_least, policy,
                                         detail::retry_no_exception{}, clock, sleeper,
                                         std::move(stop), random);
    }
}

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_OPTIMISTIC_HPP
