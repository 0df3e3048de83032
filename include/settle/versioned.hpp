// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_VERSIONED_HPP
#define SETTLE_VERSIONED_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/retry.hpp>
#include <settle/token.hpp>

#include <compare>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// Optimistic version stamps: "what version did you see, and is it still the
// current one". A write names the stamp it was based on; a store applies it
// only if that stamp is still current. Nothing here allocates except where a
// value of the caller's type is copied.

SETTLE_BEGIN_NAMESPACE

// ---------------------------------------------------------------------------
// Stamps and versioned values.

// A value together with the stamp it was read at (or written with).
template <class T>
struct versioned {
    T value;
    version_stamp stamp;

    friend bool operator==(const versioned&, const versioned&) = default;
};

template <class T>
versioned(T, version_stamp) -> versioned<T>;

// ---------------------------------------------------------------------------
// Write outcomes.

// What a conditional write found. Exhaustive: switch on it without a default.
enum class write_outcome {
    applied,   // the write took effect
    conflict,  // the key's stamp is not the expected one (insert: the key exists); nothing changed
    missing,   // the key is absent; nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(write_outcome outcome) noexcept {
    switch (outcome) {
    case write_outcome::applied: return "applied";
    case write_outcome::conflict: return "conflict";
    case write_outcome::missing: return "missing";
    }
    return "unknown settle::write_outcome";
}

// What insert, compare_and_set and erase return.
//   applied:  stamp() is the key's new stamp (erase: the stamp of the row it removed).
//   conflict: stamp() is the key's current stamp; current_value() holds the
//             current value when the backend could return it cheaply.
//   missing:  stamp() is version_stamp(0); current_value() is empty.
template <class T>
class [[nodiscard]] write_result {
public:
    [[nodiscard]] static constexpr write_result applied(version_stamp stamp) noexcept {
        return write_result(write_outcome::applied, stamp, std::nullopt);
    }
    [[nodiscard]] static constexpr write_result conflict(version_stamp current,
                                                         std::optional<T> current_value = {}) {
        return write_result(write_outcome::conflict, current, std::move(current_value));
    }
    [[nodiscard]] static constexpr write_result missing() noexcept {
        return write_result(write_outcome::missing, version_stamp(0), std::nullopt);
    }

    [[nodiscard]] constexpr write_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] constexpr bool is_applied() const noexcept {
        return outcome_ == write_outcome::applied;
    }
    constexpr explicit operator bool() const noexcept { return is_applied(); }
    [[nodiscard]] constexpr version_stamp stamp() const noexcept { return stamp_; }
    [[nodiscard]] constexpr const std::optional<T>& current_value() const& noexcept {
        return current_;
    }
    [[nodiscard]] constexpr std::optional<T>&& current_value() && noexcept {
        return std::move(current_);
    }

private:
    constexpr write_result(
        write_outcome outcome, version_stamp stamp,
        std::optional<T> current) noexcept(std::is_nothrow_move_constructible_v<T>)
        : outcome_(outcome), stamp_(stamp), current_(std::move(current)) {}

    write_outcome outcome_;
    version_stamp stamp_;
    std::optional<T> current_;
};

namespace detail {

// An operation that reads, decides and compare-and-sets within one transaction
// starts again when the write meets a newer stamp. That happens only when
// another transaction committed in between, so a record that changes under it
// this often means a backend whose reads do not see committed writes (an
// isolation level above read committed), not contention: it is reported
// instead of looping for ever.
inline constexpr int max_conflict_passes = 64;

inline void count_conflict(int passes, const char* operation) {
    if (passes + 1 >= max_conflict_passes) {
        throw settle::error(
            errc::backend_failure,
            std::string(operation) + ": the record changed under every compare-and-set (64 times)");
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Store concepts.

// What a reader of versioned values needs: the types, a way to begin a
// transaction of its own, and load. A lagging replica is a versioned_reader.
//
//   typename S::key_type, S::value_type, S::transaction
//   s.begin()         -> S::transaction, a new transaction; tx.commit() ends it,
//                        destroying it uncommitted rolls it back
//   s.load(tx, key)   -> std::optional<settle::versioned<value_type>>
template <class S>
concept versioned_reader = requires {
    typename S::key_type;
    typename S::value_type;
    typename S::transaction;
}
&&requires(S& s, typename S::transaction& tx, const typename S::key_type& key) {
    { s.begin() } -> std::same_as<typename S::transaction>;
    tx.commit();
    { s.load(tx, key) } -> std::same_as<std::optional<versioned<typename S::value_type>>>;
};

// Storage for versioned values. Every operation runs in the caller's
// transaction and commits or rolls back with it. Each write is atomic with
// respect to every other transaction, and returns a write_result<value_type>:
//
//   s.insert(tx, key, value)                    only if the key is absent:
//                                               applied(new stamp) or conflict
//   s.compare_and_set(tx, key, expected, value) only if the key's stamp equals
//                                               expected: applied(new stamp),
//                                               conflict or missing
//   s.erase(tx, key, expected)                  only at the expected stamp:
//                                               applied, conflict or missing
//
// Guarantees a backend must keep (versioned_store_suite checks them):
// - a write that does not apply changes nothing;
// - every applied write gives the key a stamp greater than every stamp it
//   had before, across erase and re-insert too, so a stamp read before an
//   erase can never match the key again;
// - load sees the transaction's own writes and every committed one.
template <class S>
concept versioned_store = versioned_reader<S> &&
    requires(S& s, typename S::transaction& tx, const typename S::key_type& key,
             typename S::value_type&& value, version_stamp expected) {
    { s.insert(tx, key, std::move(value)) } -> std::same_as<write_result<typename S::value_type>>;
    {
        s.compare_and_set(tx, key, expected, std::move(value))
        } -> std::same_as<write_result<typename S::value_type>>;
    { s.erase(tx, key, expected) } -> std::same_as<write_result<typename S::value_type>>;
};

namespace detail {

template <class S>
concept vs_has_types = requires {
    typename S::key_type;
    typename S::value_type;
    typename S::transaction;
};
template <class S>
concept vs_has_begin = requires(S& s) {
    { s.begin() } -> std::same_as<typename S::transaction>;
};
template <class S>
concept vs_has_commit = requires(typename S::transaction& tx) {
    tx.commit();
};
template <class S>
concept vs_has_load = requires(S& s, typename S::transaction& tx, const typename S::key_type& key) {
    { s.load(tx, key) } -> std::same_as<std::optional<versioned<typename S::value_type>>>;
};
template <class S>
concept vs_has_insert = requires(S& s, typename S::transaction& tx, const typename S::key_type& key,
                                 typename S::value_type&& v) {
    { s.insert(tx, key, std::move(v)) } -> std::same_as<write_result<typename S::value_type>>;
};
template <class S>
concept vs_has_compare_and_set = requires(S& s, typename S::transaction& tx,
                                          const typename S::key_type& key, version_stamp expected,
                                          typename S::value_type&& v) {
    {
        s.compare_and_set(tx, key, expected, std::move(v))
        } -> std::same_as<write_result<typename S::value_type>>;
};
template <class S>
concept vs_has_erase = requires(S& s, typename S::transaction& tx, const typename S::key_type& key,
                                version_stamp expected) {
    { s.erase(tx, key, expected) } -> std::same_as<write_result<typename S::value_type>>;
};

// One static_assert per requirement, so a backend that misses one gets an
// error naming it. Returns whether S is a versioned_reader.
template <class S>
constexpr bool check_versioned_reader() {
    static_assert(vs_has_types<S>,
                  "settle::versioned_store: the store needs member types key_type, value_type "
                  "and transaction");
    if constexpr (vs_has_types<S>) {
        static_assert(vs_has_begin<S>,
                      "settle::versioned_store: the store needs begin() returning a new "
                      "S::transaction");
        static_assert(vs_has_commit<S>, "settle::versioned_store: S::transaction needs commit()");
        static_assert(vs_has_load<S>,
                      "settle::versioned_store: the store needs load(tx, key) returning "
                      "std::optional<settle::versioned<value_type>>");
    }
    return versioned_reader<S>;
}

template <class S>
constexpr bool check_versioned_store() {
    if constexpr (check_versioned_reader<S>()) {
        static_assert(vs_has_insert<S>,
                      "settle::versioned_store: the store needs insert(tx, key, value) returning "
                      "settle::write_result<value_type>");
        static_assert(vs_has_compare_and_set<S>,
                      "settle::versioned_store: the store needs compare_and_set(tx, key, "
                      "expected_stamp, value) returning settle::write_result<value_type>");
        static_assert(vs_has_erase<S>,
                      "settle::versioned_store: the store needs erase(tx, key, expected_stamp) "
                      "returning settle::write_result<value_type>");
    }
    return versioned_store<S>;
}

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

// How optimistic_update ended. Exhaustive.
enum class update_outcome {
    applied,    // fn's value was written
    unchanged,  // fn declined to write: nothing was written, no stamp was used
    gave_up,    // every compare-and-set the policy allowed met a newer stamp
    missing,    // the key was absent (or erased while the update ran)
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

// What optimistic_update returns.
//   applied:   value() is the value written, stamp() its new stamp.
//   unchanged: value() and stamp() are what fn saw (current at that read).
//   gave_up:   stamp() is the last stamp seen (the one the last
//              compare-and-set met); value() holds that version when the
//              backend returned it with the conflict, else is empty.
//   missing:   stamp() is version_stamp(0), value() is empty.
// attempts() counts the attempts made (each a read, a call of fn and a
// compare-and-set, fewer when one stopped early), at least 1; reason() says
// why retrying stopped: retry_outcome::succeeded unless gave_up.
template <class T>
class [[nodiscard]] update_result {
public:
    update_result(update_outcome outcome, std::optional<T> value, version_stamp stamp,
                  std::uint32_t attempts, retry_outcome reason)
        : outcome_(outcome),
          value_(std::move(value)),
          stamp_(stamp),
          attempts_(attempts),
          reason_(reason) {}

    [[nodiscard]] update_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_applied() const noexcept { return outcome_ == update_outcome::applied; }
    [[nodiscard]] const std::optional<T>& value() const& noexcept { return value_; }
    [[nodiscard]] std::optional<T>&& value() && noexcept { return std::move(value_); }
    [[nodiscard]] version_stamp stamp() const noexcept { return stamp_; }
    [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }
    [[nodiscard]] retry_outcome reason() const noexcept { return reason_; }

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

// Retries conflicts; asks the policy's own classifier about the store's
// exceptions, with retry()'s default rule when it has none.
template <class Inner>
struct update_classifier {
    Inner inner;

    template <class T>
    retry_decision operator()(const update_attempt<T>& a) const noexcept {
        return a.what == update_attempt<T>::kind::conflict ? retry_decision::retry
                                                           : retry_decision::stop;
    }
    retry_decision operator()(const std::exception_ptr& e) const {
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

    auto one = [&]() -> attempt {
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
        tx.commit();
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

    auto result = retry_with(policy, update_classifier<Cl>{policy.classifier()}, clock, sleeper,
                             one, std::move(stop), random...);
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

// Read, modify, compare-and-set, and on conflict read again and retry under
// `policy`: the optimistic lock, without holding a transaction open while fn
// works. Each attempt
//   1. loads the key in a short transaction of its own (skipped when the
//      previous attempt's conflict returned the current value),
//   2. calls fn(const T& current) outside any transaction; fn returns the new
//      value, or std::nullopt to leave the value as it is (no write, no new
//      stamp),
//   3. compare-and-sets at the stamp it read, in a second transaction, and
//      commits.
// A conflict (another writer got in between) is retried as the policy
// allows (attempts, deadline, budget, waits through `sleeper`); fn is then
// called again with the newer value, so fn must be safe to call more than
// once and should not have side effects. Outcomes: applied, unchanged,
// gave_up, missing (see update_result).
//
// Exceptions: fn's propagate at once, without a retry. The store's are
// classified like retry()'s: by the policy's classifier when it takes a
// std::exception_ptr, else by the default rule (a bug, std::logic_error or
// settle::error invalid_argument, malformed_input or decode_failed, is not
// retried; anything else is). A failed commit may or may not have written,
// and the retry then runs fn on whatever is stored. They propagate once
// retrying stops. The caller must not hold a transaction of the store's
// database while calling this (the store's begin() may wait for it).
//
// Costs per attempt: two transactions, one copy of the value read and one of
// the value written; no other allocation.
//
//     auto r = settle::optimistic_update(accounts, "alice",
//         [](const account& a) -> std::optional<account> {
//             if (a.balance < 30) return std::nullopt;
//             return account{a.balance - 30};
//         },
//         settle::retry_policy{settle::constant_backoff{0ms}, 10}, clock, sleeper);
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

// The same, for randomised backoffs (jitter), which draw from `random`.
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

// ---------------------------------------------------------------------------
// Read-your-writes.

// What read_at_least found. Exhaustive.
enum class read_outcome {
    fresh,  // a version at least as new as asked for
    stale,  // the source had not caught up when retrying stopped
};

[[nodiscard]] constexpr std::string_view to_string(read_outcome outcome) noexcept {
    switch (outcome) {
    case read_outcome::fresh: return "fresh";
    case read_outcome::stale: return "stale";
    }
    return "unknown settle::read_outcome";
}

// What read_at_least returns.
//   fresh: seen() is the version read, its stamp at least the one asked for.
//   stale: seen() is the last version read, older than asked for, or empty
//          when the key was absent there. Never to be served as fresh.
// attempts() counts the reads; reason() says why retrying stopped
// (retry_outcome::succeeded when fresh).
template <class T>
class [[nodiscard]] read_result {
public:
    read_result(read_outcome outcome, std::optional<versioned<T>> seen, std::uint32_t attempts,
                retry_outcome reason)
        : outcome_(outcome), seen_(std::move(seen)), attempts_(attempts), reason_(reason) {}

    [[nodiscard]] read_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_fresh() const noexcept { return outcome_ == read_outcome::fresh; }
    [[nodiscard]] const std::optional<versioned<T>>& seen() const& noexcept { return seen_; }
    [[nodiscard]] std::optional<versioned<T>>&& seen() && noexcept { return std::move(seen_); }
    [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }
    [[nodiscard]] retry_outcome reason() const noexcept { return reason_; }

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

// Retries reads that are behind; asks the policy's own classifier about
// exceptions, with retry()'s default rule when it has none.
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

template <class S, class B, class Cl, class P, class C, class Sl, class... G>
auto run_read_at_least(S& source, const typename S::key_type& key, version_stamp at_least,
                       const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                       std::stop_token stop, G&... random) {
    using T = typename S::value_type;
    auto one = [&]() -> read_attempt<T> {
        auto tx = source.begin();
        std::optional<versioned<T>> seen = source.load(tx, key);
        tx.commit();
        const bool fresh = seen.has_value() && seen->stamp >= at_least;
        return read_attempt<T>{std::move(seen), fresh};
    };
    auto result = retry_with(policy, read_classifier<Cl>{policy.classifier()}, clock, sleeper, one,
                             std::move(stop), random...);
    read_attempt<T>& last = result.value();  // rethrows if the last read threw
    return read_result<T>(last.fresh ? read_outcome::fresh : read_outcome::stale,
                          std::move(last.seen), result.attempts(), result.outcome());
}

}  // namespace detail

// Read-your-writes against a source that may lag behind the writes (a
// replica, a cache): reads `key` until the version read is at least
// `at_least` (the stamp of the caller's own last write), retrying under
// `policy` (a ladder and a deadline, typically) while the source is behind
// or the key is not there yet. Reports stale rather than returning old data
// as fresh. Each read is a short transaction of the source's own; exceptions
// are classified like retry()'s (by the policy's classifier, else a bug is not
// retried and anything else is), and propagate when the last read threw. Needs only begin() and
// load() of the source.
//
//     auto r = settle::read_at_least(replica, "order-7", my_last_write,
//                                    settle::retry_policy{settle::ladder{10ms, 50ms, 200ms}, 10}
//                                        .with_deadline(1s),
//                                    clock, sleeper);
//     if (!r.is_fresh()) return read_from_primary();
template <class S, backoff B, class Cl, class P, clock C, sleeper Sl>
requires schedule<B>
[[nodiscard]] auto read_at_least(S& source, const typename S::key_type& key, version_stamp at_least,
                                 const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                 std::stop_token stop = {}) {
    if constexpr (detail::check_versioned_reader<S>()) {
        return detail::run_read_at_least(source, key, at_least, policy, clock, sleeper,
                                         std::move(stop));
    }
}

// The same, for randomised backoffs (jitter), which draw from `random`.
template <class S, backoff B, class Cl, class P, clock C, sleeper Sl,
          std::uniform_random_bit_generator G>
[[nodiscard]] auto read_at_least(S& source, const typename S::key_type& key, version_stamp at_least,
                                 const retry_policy<B, Cl, P>& policy, C& clock, Sl& sleeper,
                                 G& random, std::stop_token stop = {}) {
    if constexpr (detail::check_versioned_reader<S>()) {
        return detail::run_read_at_least(source, key, at_least, policy, clock, sleeper,
                                         std::move(stop), random);
    }
}

SETTLE_END_NAMESPACE

#endif  // SETTLE_VERSIONED_HPP
