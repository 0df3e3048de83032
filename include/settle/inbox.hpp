// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_INBOX_HPP
#define SETTLE_INBOX_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/transaction.hpp>
#include <settle/uuid.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <settle/detail/macro_scope.hpp>

// The inbox: the consumer's side of effectively-once delivery. A relay
// publishes at least once, so a message may arrive twice; the consumer
// records every message id it applied, in the same transaction as the
// effect, so a repeat finds the record and changes nothing.

SETTLE_BEGIN_NAMESPACE

/// What mark() found. Exhaustive: switch on it without a default.
enum class [[nodiscard]] inbox_mark{
    first_time,  ///< recorded now: apply the message
    duplicate,   ///< already recorded: the message was applied before; do nothing
};

[[nodiscard]] constexpr std::string_view to_string(inbox_mark mark) noexcept {
    switch (mark) {
    case inbox_mark::first_time: return "first_time";
    case inbox_mark::duplicate: return "duplicate";
    }
    return "unknown settle::inbox_mark";
}

namespace detail {

template <class S>
concept inbox_store_has_mark = requires(S& s, typename S::transaction& tx,
                                        std::string_view consumer, std::string_view message_id,
                                        stored_time now) {
    { s.mark(tx, consumer, message_id, now) } -> std::same_as<inbox_mark>;
};

template <class S>
concept inbox_store_has_purge = requires(S& s, typename S::transaction& tx,
                                         std::string_view consumer, stored_time applied_before,
                                         std::size_t limit) {
    { s.purge(tx, consumer, applied_before, limit) } -> std::same_as<std::size_t>;
};

// One static_assert per requirement of settle::inbox_store, each naming the
// member. Returns whether S models it.
template <class S>
constexpr bool check_inbox_store() {
    if constexpr (check_transactional<S>()) {
        static_assert(inbox_store_has_mark<S>,
                      "settle::inbox_store: `mark(tx, consumer, message_id, now)` missing or wrong "
                      "signature; expected `settle::inbox_mark mark(transaction&, "
                      "std::string_view, std::string_view, settle::stored_time)`");
        return inbox_store_has_mark<S>;
    } else {
        return false;
    }
}

// The same for what settle::purgeable_inbox_store adds to an inbox_store.
template <class S>
constexpr bool check_inbox_purge() {
    static_assert(inbox_store_has_purge<S>,
                  "settle::purgeable_inbox_store: `purge(tx, consumer, applied_before, limit)` "
                  "missing or wrong signature; expected `std::size_t purge(transaction&, "
                  "std::string_view, settle::stored_time, std::size_t)`");
    return inbox_store_has_purge<S>;
}

}  // namespace detail

/// Where a consumer records the messages it applied: a settle::transactional
/// store with one operation, atomic within the caller's transaction:
///
///   s.mark(tx, consumer, message_id, now) -> inbox_mark
///       atomically: if (consumer, message_id) is not recorded, records it as
///       applied at `now` and answers first_time; otherwise answers duplicate
///       and changes nothing. The record commits or rolls back with tx; a
///       concurrent mark of the same pair waits for, or fails against, the
///       first (a unique key on the pair does this in SQL).
///
/// That is all idempotent_consumer::consume needs. A store whose records
/// expire by themselves (a key-value store with a time to live) stops here.
template <class S>
concept inbox_store = transactional<S> && detail::inbox_store_has_mark<S>;

/// An inbox store that settle purges, which idempotent_consumer::purge needs:
///
///   s.purge(tx, consumer, applied_before, limit) -> count
///       removes at most `limit` records of `consumer` applied before
///       `applied_before`, and no record of any other consumer.
///
/// settle/testing/inbox_store_suite.hpp checks both concepts on a backend.
template <class S>
concept purgeable_inbox_store = inbox_store<S> && detail::inbox_store_has_purge<S>;

/// What consume() did. Exhaustive: switch on it without a default.
enum class [[nodiscard]] inbox_outcome{
    applied,    ///< first time: the handler ran and its writes commit with the mark
    duplicate,  ///< applied before: the handler did not run, nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(inbox_outcome outcome) noexcept {
    switch (outcome) {
    case inbox_outcome::applied: return "applied";
    case inbox_outcome::duplicate: return "duplicate";
    }
    return "unknown settle::inbox_outcome";
}

/// What idempotent_consumer::consume answers: true when the message was
/// applied now.
///
///     if (auto r = consumer.consume(id, handler)) { /* applied */ }
class [[nodiscard]] inbox_result {
public:
    ///@{
    /// Made from an outcome; the outcome, and one test for each of its values; true when the
    /// message was applied now.
    constexpr explicit inbox_result(inbox_outcome outcome) noexcept : outcome_(outcome) {}

    [[nodiscard]] constexpr inbox_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] constexpr bool is_applied() const noexcept {
        return outcome_ == inbox_outcome::applied;
    }
    [[nodiscard]] constexpr bool is_duplicate() const noexcept {
        return outcome_ == inbox_outcome::duplicate;
    }
    constexpr explicit operator bool() const noexcept { return is_applied(); }
    ///@}

private:
    inbox_outcome outcome_;
};

/// What an idempotent_consumer is configured with.
struct inbox_options {
    /// Names the consumer: each consumer of a message keeps its own records,
    /// so two services (or two handlers) can both apply it once. Not empty.
    std::string consumer;
    /// How long this consumer's records are kept; purge removes this
    /// consumer's records only, so consumers sharing a table each keep theirs
    /// as long as their own retention says. Longer than the longest possible
    /// redelivery: the broker's redelivery window plus the outbox's whole
    /// retry schedule; a message redelivered after its record was purged is
    /// applied again. Positive.
    std::chrono::microseconds retention = std::chrono::hours(24 * 14);
};

/// Applies each message at most once per consumer: runs the handler and
/// records the message id in one transaction, so that either both commit or
/// neither does, and a redelivered message changes nothing. Holds references
/// to the store and the clock; copyable; as thread-safe as the store.
///
///     settle::idempotent_consumer consumer(inbox, clock, {.consumer = "billing"});
///     const settle::inbox_result r = consumer.consume(record.id, [&](auto& tx) {
///         invoices.put(tx, order_id, invoice_for(settle::decode<order_placed>(record.payload)));
///     });
///
/// Store models settle::inbox_store; purge() also needs settle::purgeable_inbox_store.
template <class Store, class Clock>
class idempotent_consumer {
    static_assert(detail::check_inbox_store<Store>());
    static_assert(wall_clock<Clock>,
                  "settle::idempotent_consumer: the clock must be a settle::wall_clock "
                  "(system_clock time points): records persist wall-clock times");

public:
    ///@{
    /// The store and its transaction type.
    using store_type = Store;
    using transaction = typename Store::transaction;
    ///@}

    /// Throws settle::error (errc::invalid_argument) for an empty consumer
    /// name or a retention that is not positive.
    idempotent_consumer(Store& store, Clock& clock, inbox_options options)
        : store_(&store), clock_(&clock), options_(std::move(options)) {
        if (options_.consumer.empty()) {
            throw error(errc::invalid_argument, "idempotent_consumer: the consumer name is empty");
        }
        if (options_.retention <= std::chrono::microseconds::zero()) {
            throw error(errc::invalid_argument,
                        "idempotent_consumer: the retention is not positive");
        }
    }

    /// The options the consumer was made with.
    [[nodiscard]] const inbox_options& options() const noexcept { return options_; }

    /// A protocol in a transaction of its own: marks the message; the first
    /// time, runs handler(tx) and commits both; a duplicate rolls back and
    /// runs nothing. If the handler throws, nothing is kept (the mark rolls
    /// back with the handler's writes, so a redelivery applies it) and the
    /// exception propagates. An empty message id throws settle::error
    /// (errc::invalid_argument).
    template <class Handler>
    requires std::invocable<Handler&, transaction&> inbox_result
    consume(std::string_view message_id, Handler&& handler) {
        transaction tx = store_->begin();
        const inbox_result result = consume(tx, message_id, handler);
        if (result.is_applied()) {
            tx.commit();
        }
        return result;
    }

    /// The message id of an outbox record: its id's canonical text.
    template <class Handler>
    requires std::invocable<Handler&, transaction&> inbox_result consume(const uuid& message_id,
                                                                         Handler&& handler) {
        std::array<char, uuid::text_size> text{};
        return consume(message_id.write(text), handler);
    }

    /// In the caller's transaction: marks the message and, the first time,
    /// runs handler(tx). The caller commits; until then a concurrent consume
    /// of the same message waits (or fails, as the backend does).
    template <class Handler>
    requires std::invocable<Handler&, transaction&> inbox_result
    consume(transaction& tx, std::string_view message_id, Handler&& handler) {
        if (message_id.empty()) {
            throw error(errc::invalid_argument, "idempotent_consumer: the message id is empty");
        }
        if (store_->mark(tx, options_.consumer, message_id, now()) == inbox_mark::duplicate) {
            return inbox_result(inbox_outcome::duplicate);
        }
        std::invoke(handler, tx);
        return inbox_result(inbox_outcome::applied);
    }

    /// Removes at most `limit` of this consumer's records older than its
    /// retention, and no other consumer's; returns how many. Call it on a
    /// schedule, until it returns less than the limit:
    ///
    ///     settle::in_transaction(store, [&](auto& tx) { return consumer.purge(tx, 1000); });
    std::size_t purge(transaction& tx, std::size_t limit) {
        static_assert(detail::check_inbox_purge<Store>());
        const stored_time at = now();
        const auto earliest = stored_time::min().time_since_epoch();
        const stored_time cut = at.time_since_epoch() < earliest + options_.retention
                                    ? stored_time::min()
                                    : at - options_.retention;
        return store_->purge(tx, options_.consumer, cut, limit);
    }

private:
    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    Store* store_;
    Clock* clock_;
    inbox_options options_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_INBOX_HPP
