// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_INBOX_HPP
#define SETTLE_INBOX_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/uuid.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

// The inbox: the consumer's side of effectively-once delivery. A relay
// publishes at least once, so a message may arrive twice; the consumer
// records every message id it applied, in the same transaction as the
// effect, so a repeat finds the record and changes nothing (the seed's
// dedup table, the eBay message log's "what the receiver applied").

SETTLE_BEGIN_NAMESPACE

// What mark() found. Exhaustive: switch on it without a default.
enum class inbox_mark {
    first_time,  // recorded now: apply the message
    duplicate,   // already recorded: the message was applied before; do nothing
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
concept inbox_store_names_transaction = requires {
    typename S::transaction;
};

template <class S>
concept inbox_store_has_begin = requires(S& s) {
    { s.begin() } -> std::same_as<typename S::transaction>;
};

template <class S>
concept inbox_store_transaction_commits = requires(typename S::transaction& tx) {
    tx.commit();
};

template <class S>
concept inbox_store_has_mark = requires(S& s, typename S::transaction& tx,
                                        std::string_view consumer, std::string_view message_id,
                                        stored_time t) {
    { s.mark(tx, consumer, message_id, t) } -> std::same_as<inbox_mark>;
};

template <class S>
concept inbox_store_has_purge = requires(S& s, typename S::transaction& tx, stored_time t,
                                         std::size_t limit) {
    { s.purge(tx, t, limit) } -> std::same_as<std::size_t>;
};

template <class S>
constexpr bool check_inbox_store() {
    static_assert(inbox_store_names_transaction<S>,
                  "settle::inbox_store: the store needs a nested type `transaction`");
    if constexpr (inbox_store_names_transaction<S>) {
        static_assert(inbox_store_has_begin<S>,
                      "settle::inbox_store: missing `transaction begin()`");
        static_assert(inbox_store_transaction_commits<S>,
                      "settle::inbox_store: the store's transaction needs `commit()`");
        static_assert(inbox_store_has_mark<S>,
                      "settle::inbox_store: missing `inbox_mark mark(transaction&, "
                      "std::string_view consumer, std::string_view message_id, stored_time now)`");
        static_assert(inbox_store_has_purge<S>,
                      "settle::inbox_store: missing `std::size_t purge(transaction&, stored_time "
                      "applied_before, std::size_t limit)`");
    }
    return true;
}

}  // namespace detail

// Where a consumer records the messages it applied, each operation atomic
// within the caller's transaction:
//
//   typename S::transaction   a unit of work with commit(); destroying one that
//                             was not committed rolls its writes back
//   s.begin()                 a fresh transaction
//   s.mark(tx, consumer, message_id, now) -> inbox_mark
//       atomically: if (consumer, message_id) is not recorded, records it as
//       applied at `now` and answers first_time; otherwise answers duplicate
//       and changes nothing. The record commits or rolls back with tx; a
//       concurrent mark of the same pair waits for, or fails against, the
//       first (a unique key on the pair does this in SQL).
//   s.purge(tx, applied_before, limit) -> count
//       removes at most `limit` records applied before `applied_before`.
//
// settle/testing/inbox_store_suite.hpp checks all of this on a backend.
template <class S>
concept inbox_store = detail::inbox_store_names_transaction<S> &&
    detail::inbox_store_has_begin<S> && detail::inbox_store_transaction_commits<S> &&
    detail::inbox_store_has_mark<S> && detail::inbox_store_has_purge<S>;

// What consume() did. Exhaustive: switch on it without a default.
enum class inbox_outcome {
    applied,    // first time: the handler ran and its writes committed with the mark
    duplicate,  // applied before: the handler did not run, nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(inbox_outcome outcome) noexcept {
    switch (outcome) {
    case inbox_outcome::applied: return "applied";
    case inbox_outcome::duplicate: return "duplicate";
    }
    return "unknown settle::inbox_outcome";
}

struct inbox_options {
    // Names the consumer: each consumer of a message keeps its own records,
    // so two services (or two handlers) can both apply it once. Not empty.
    std::string consumer;
    // How long a record is kept. Longer than the longest possible redelivery:
    // the broker's redelivery window plus the outbox's whole retry schedule;
    // a message redelivered after its record was purged is applied again.
    // Positive.
    std::chrono::microseconds retention = std::chrono::hours(24 * 14);
};

// Applies each message at most once per consumer: runs the handler and
// records the message id in one transaction, so that either both commit or
// neither does, and a redelivered message changes nothing. Holds references
// to the store and the clock; copyable; as thread-safe as the store.
//
//     settle::idempotent_consumer consumer(inbox, clock, {.consumer = "billing"});
//     auto outcome = consumer.consume(record.id, [&](auto& tx) {
//         invoices.put(tx, order_id, invoice_for(settle::decode<order_placed>(record.payload)));
//     });
template <class Store, class Clock>
class idempotent_consumer {
    static_assert(detail::check_inbox_store<Store>());
    static_assert(wall_clock<Clock>,
                  "settle::idempotent_consumer: the clock must be a settle::wall_clock "
                  "(system_clock time points): records persist wall-clock times");

public:
    using store_type = Store;
    using transaction = typename Store::transaction;

    // Throws settle::error (errc::invalid_argument) for an empty consumer
    // name or a retention that is not positive.
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

    [[nodiscard]] const inbox_options& options() const noexcept { return options_; }

    // In a transaction of its own: marks the message; the first time, runs
    // handler(tx) and commits both; a duplicate rolls back and runs nothing.
    // If the handler throws, nothing is kept (the mark rolls back with the
    // handler's writes, so a redelivery applies it) and the exception
    // propagates. An empty message id throws settle::error
    // (errc::invalid_argument).
    template <class Handler>
    requires std::invocable<Handler&, transaction&>
    [[nodiscard]] inbox_outcome consume(std::string_view message_id, Handler&& handler) {
        transaction tx = store_->begin();
        const inbox_outcome outcome = consume(tx, message_id, handler);
        if (outcome == inbox_outcome::applied) {
            tx.commit();
        }
        return outcome;
    }

    // The message id of an outbox record: its id's canonical text.
    template <class Handler>
    requires std::invocable<Handler&, transaction&>
    [[nodiscard]] inbox_outcome consume(const uuid& message_id, Handler&& handler) {
        std::array<char, uuid::text_size> text{};
        return consume(message_id.write(text), handler);
    }

    // In the caller's transaction: marks the message and, the first time,
    // runs handler(tx). The caller commits; until then a concurrent consume
    // of the same message waits (or fails, as the backend does).
    template <class Handler>
    requires std::invocable<Handler&, transaction&>
    [[nodiscard]] inbox_outcome consume(transaction& tx, std::string_view message_id,
                                        Handler&& handler) {
        if (message_id.empty()) {
            throw error(errc::invalid_argument, "idempotent_consumer: the message id is empty");
        }
        if (store_->mark(tx, options_.consumer, message_id, now()) == inbox_mark::duplicate) {
            return inbox_outcome::duplicate;
        }
        std::invoke(handler, tx);
        return inbox_outcome::applied;
    }

    // Removes at most `limit` records older than the retention; returns how
    // many. Call it on a schedule, until it returns less than the limit.
    std::size_t purge(transaction& tx, std::size_t limit) {
        const stored_time at = now();
        const auto earliest = stored_time::min().time_since_epoch();
        const stored_time cut = at.time_since_epoch() < earliest + options_.retention
                                    ? stored_time::min()
                                    : at - options_.retention;
        return store_->purge(tx, cut, limit);
    }

    // The same in a transaction of its own, committed before it returns.
    std::size_t purge(std::size_t limit) {
        transaction tx = store_->begin();
        const std::size_t removed = purge(tx, limit);
        tx.commit();
        return removed;
    }

private:
    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    Store* store_;
    Clock* clock_;
    inbox_options options_;
};

SETTLE_END_NAMESPACE

#endif  // SETTLE_INBOX_HPP
