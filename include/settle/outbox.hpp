// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_OUTBOX_HPP
#define SETTLE_OUTBOX_HPP

#include <settle/version.hpp>

// uuid.hpp comes before codec.hpp: its parameters named `bytes` would
// otherwise shadow settle::bytes under -Wshadow.
#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/token.hpp>
#include <settle/transaction.hpp>
#include <settle/uuid.hpp>

#include <settle/codec.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// The transactional outbox: a message is written in the same local
// transaction as the business change it announces, and a relay publishes it
// afterwards, retrying on a persisted schedule until the publisher takes it.
//
//   outbox<Store, Clock>       appends in the caller's transaction; requeue,
//                              purge and statistics for operators
//   outbox_relay<Store, Publisher, Backoff, Clock, Observer>
//                              in <settle/outbox_relay.hpp>: claims due records,
//                              each under a fencing token, publishes them,
//                              records each outcome
//   outbox_appender            what appending needs of a store
//   outbox_store               what a relay needs of a store
//   outbox_publisher           what a relay needs of a publisher
//
// Promises, over a conforming store: a record appended in a committed
// transaction is published at least once, whatever point a relay stops at; a
// record of a rolled-back transaction is never published; records sharing an
// ordering key are published one at a time, oldest first; a record whose
// schedule runs out or whose failure is permanent becomes a dead letter, kept
// with its payload and reason until an operator requeues it. Consumers make
// "at least once" effectively once with settle/inbox.hpp.

SETTLE_BEGIN_NAMESPACE

// ---------------------------------------------------------------------------
// Records

enum class outbox_status {
    pending,    ///< waiting for its next attempt (due once next_attempt_at <= now)
    in_flight,  ///< claimed under claim_token until claim_expires_at; due again after that
    delivered,  ///< the publisher took it; kept until purged
    dead,       ///< a dead letter: permanent failure or schedule exhausted; kept until requeued
};

[[nodiscard]] constexpr std::string_view to_string(outbox_status status) noexcept {
    switch (status) {
    case outbox_status::pending: return "pending";
    case outbox_status::in_flight: return "in_flight";
    case outbox_status::delivered: return "delivered";
    case outbox_status::dead: return "dead";
    }
    return "unknown settle::outbox_status";
}

/// What a store does with a record once it is delivered. keep: it stays, as
/// delivered, for statistics, find() and audits, until purge removes it.
/// delete_on_delivery: mark_delivered deletes it in the same statement, fenced
/// by its claim like any outcome; find() then answers nothing, and an id
/// appended again after its delivery is a new record, as after a purge. Dead
/// letters are kept either way.
enum class outbox_retention { keep, delete_on_delivery };

/// A message header, passed to the publisher as it is ("content-type",
/// "trace-id").
struct outbox_header {
    ///@{
    /// The header's name and value; equal when both are.
    std::string name;
    std::string value;

    friend bool operator==(const outbox_header&, const outbox_header&) = default;
    ///@}
};

using outbox_headers = std::vector<outbox_header>;

/// What the caller appends. The id must be unique and not nil: a UUIDv7 from
/// settle::uuid_v7_generator, which consumers also use as the message id their
/// inbox deduplicates on.
struct outbox_message {
    ///@{
    /// The message's id, payload and headers; equal when every field is.
    uuid id;
    std::string topic;         ///< where to publish it, or the event's type
    std::string ordering_key;  ///< the aggregate id; empty: no ordering with other records
    bytes payload;
    outbox_headers headers;

    friend bool operator==(const outbox_message&, const outbox_message&) = default;
    ///@}
};

/// A message with its payload encoded by settle::codec<T>.
template <codable T>
[[nodiscard]] outbox_message make_outbox_message(const uuid& id, std::string topic, const T& event,
                                                 std::string ordering_key = {},
                                                 outbox_headers headers = {}) {
    return outbox_message{id, std::move(topic), std::move(ordering_key), settle::encode(event),
                          std::move(headers)};
}

/// One stored record: the message plus its delivery state. The columns a SQL
/// backend keeps, in order (docs/backends.md has the DDL of settle's own):
///
///   id                UUID, primary key
///   sequence          BIGINT, unique, assigned at append, increasing: "older" means lower
///   topic             TEXT
///   ordering_key      TEXT, '' for none; index (ordering_key, sequence)
///   payload           BYTEA / BLOB
///   headers           name/value pairs (settle's backends: one length-prefixed BYTEA / BLOB)
///   created_at        TIMESTAMP: when it was appended
///   attempts          INTEGER: how many times it was claimed (each claim may publish once)
///   next_attempt_at   TIMESTAMP: pending records are due from then on
///   status            pending | in_flight | delivered | dead
///   last_error        TEXT: why the last attempt failed, or why it is dead; '' if none
///   claim_owner       TEXT: the name of the relay holding it while in_flight, for
///                     diagnostics only; '' otherwise
///   claim_token       BIGINT: the fencing token of its latest claim; 0 if never claimed.
///                     Each claim sets it one higher; nothing else changes it
///   claim_expires_at  TIMESTAMP: the end of that claim's lease; zero otherwise
///   finished_at       TIMESTAMP: when it became delivered or dead; zero otherwise
struct outbox_record {
    ///@{
    /// The record's fields, as the store keeps them; equal when every field is.
    uuid id;
    std::uint64_t sequence = 0;
    std::string topic;
    std::string ordering_key;
    bytes payload;
    outbox_headers headers;
    stored_time created_at{};
    std::uint32_t attempts = 0;
    stored_time next_attempt_at{};
    outbox_status status = outbox_status::pending;
    std::string last_error;
    std::string claim_owner;
    fencing_token claim_token{0};
    stored_time claim_expires_at{};
    stored_time finished_at{};

    friend bool operator==(const outbox_record&, const outbox_record&) = default;
    ///@}
};

/// One claim on one record, as a relay holds it: what an outcome is fenced by.
struct outbox_claim {
    ///@{
    /// The claimed record's id and the claim's fencing token; equal when both are.
    uuid id;
    fencing_token token{0};

    friend bool operator==(const outbox_claim&, const outbox_claim&) = default;
    ///@}
};

/// What an append found. Exhaustive: switch on it without a default.
enum class [[nodiscard]] outbox_append_outcome{
    appended,   ///< the record is stored, pending, due at once
    duplicate,  ///< a record with this id exists: nothing changed, whatever the message held
};

[[nodiscard]] constexpr std::string_view to_string(outbox_append_outcome outcome) noexcept {
    switch (outcome) {
    case outbox_append_outcome::appended: return "appended";
    case outbox_append_outcome::duplicate: return "duplicate";
    }
    return "unknown settle::outbox_append_outcome";
}

/// What outbox::append, and a store's append, return: appended with the
/// record's sequence, or a duplicate of a record already stored (the message
/// was appended before: a retried request, a replayed command). True when
/// appended.
class [[nodiscard]] outbox_append_result {
public:
    ///@{
    /// An appended result (with the sequence given) or a duplicate; the outcome and one test for
    /// each of its values (true when appended); equal when both are.
    [[nodiscard]] static constexpr outbox_append_result appended(std::uint64_t sequence) noexcept {
        return outbox_append_result(outbox_append_outcome::appended, sequence);
    }
    [[nodiscard]] static constexpr outbox_append_result duplicate() noexcept {
        return outbox_append_result(outbox_append_outcome::duplicate, 0);
    }

    [[nodiscard]] constexpr outbox_append_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] constexpr bool is_appended() const noexcept {
        return outcome_ == outbox_append_outcome::appended;
    }
    [[nodiscard]] constexpr bool is_duplicate() const noexcept {
        return outcome_ == outbox_append_outcome::duplicate;
    }
    constexpr explicit operator bool() const noexcept { return is_appended(); }
    /// appended: the new record's sequence (1 or more); duplicate: 0.
    [[nodiscard]] constexpr std::uint64_t sequence() const noexcept { return sequence_; }

    friend constexpr bool operator==(outbox_append_result, outbox_append_result) noexcept = default;
    ///@}

private:
    constexpr outbox_append_result(outbox_append_outcome outcome, std::uint64_t sequence) noexcept
        : outcome_(outcome), sequence_(sequence) {}

    outbox_append_outcome outcome_;
    std::uint64_t sequence_;
};

/// What monitoring watches: backlog, stuck claims, dead letters.
struct outbox_statistics {
    std::size_t backlog = 0;    ///< records not yet delivered nor dead: pending or in flight
    std::size_t in_flight = 0;  ///< records under a live claim
    std::size_t dead = 0;       ///< dead letters waiting for an operator
    /// now minus the created_at of the oldest record in the backlog; zero when
    /// the backlog is empty.
    std::chrono::microseconds oldest_pending_age{0};

    /// Equal when every count is equal.
    friend bool operator==(const outbox_statistics&, const outbox_statistics&) = default;
};

// ---------------------------------------------------------------------------
// Storage

namespace detail {

template <class S>
concept outbox_store_has_append = requires(S& s, typename S::transaction& tx,
                                           outbox_message message, stored_time t) {
    { s.append(tx, std::move(message), t) } -> std::same_as<outbox_append_result>;
};

template <class S>
concept outbox_store_has_claim = requires(S& s, typename S::transaction& tx, std::string_view owner,
                                          stored_time t, std::size_t limit) {
    { s.claim(tx, owner, t, t, limit) } -> std::same_as<std::vector<outbox_record>>;
};

template <class S>
concept outbox_store_has_mark_delivered = requires(S& s, typename S::transaction& tx,
                                                   const uuid& id, fencing_token token,
                                                   stored_time t) {
    { s.mark_delivered(tx, id, token, t) } -> std::same_as<fenced_write>;
};

// Optional: marks many claimed records delivered in one call (one round trip
// to a SQL server); the relay uses it when the store has it.
template <class S>
concept outbox_store_marks_delivered_together = requires(S& s, typename S::transaction& tx,
                                                         std::span<const outbox_claim> claims,
                                                         stored_time t) {
    { s.mark_delivered(tx, claims, t) } -> std::same_as<std::vector<fenced_write>>;
};

template <class S>
concept outbox_store_has_reschedule = requires(S& s, typename S::transaction& tx, const uuid& id,
                                               fencing_token token, std::string_view error,
                                               stored_time t) {
    { s.reschedule(tx, id, token, error, t) } -> std::same_as<fenced_write>;
};

template <class S>
concept outbox_store_has_dead_letter = requires(S& s, typename S::transaction& tx, const uuid& id,
                                                fencing_token token, std::string_view reason,
                                                stored_time t) {
    { s.dead_letter(tx, id, token, reason, t) } -> std::same_as<fenced_write>;
};

template <class S>
concept outbox_store_has_release = requires(S& s, typename S::transaction& tx, const uuid& id,
                                            fencing_token token) {
    { s.release(tx, id, token) } -> std::same_as<fenced_write>;
};

template <class S>
concept outbox_store_has_requeue = requires(S& s, typename S::transaction& tx, const uuid& id,
                                            stored_time t) {
    { s.requeue(tx, id, t) } -> std::same_as<bool>;
};

template <class S>
concept outbox_store_has_purge = requires(S& s, typename S::transaction& tx, stored_time t,
                                          std::size_t limit) {
    { s.purge(tx, t, limit) } -> std::same_as<std::size_t>;
};

template <class S>
concept outbox_store_has_statistics = requires(S& s, typename S::transaction& tx, stored_time t) {
    { s.statistics(tx, t) } -> std::same_as<outbox_statistics>;
};

template <class S>
concept outbox_store_has_find = requires(S& s, typename S::transaction& tx, const uuid& id) {
    { s.find(tx, id) } -> std::same_as<std::optional<outbox_record>>;
};

template <class S>
concept outbox_store_has_dead_letters = requires(S& s, typename S::transaction& tx,
                                                 std::uint64_t after, std::size_t limit) {
    { s.dead_letters(tx, after, limit) } -> std::same_as<std::vector<outbox_record>>;
};

}  // namespace detail

/// What appending needs of a store: settle::transactional, and
///
///   s.append(tx, message, now) -> outbox_append_result
///       stores a pending record due at `now`, created at `now`, with a
///       sequence greater than any before it, and answers appended with that
///       sequence; it commits or rolls back with tx. If a record with the id
///       exists (in any status, or appended earlier in tx) it answers
///       duplicate and changes nothing; tx stays usable. A nil id throws
///       settle::error (errc::invalid_argument).
template <class S>
concept outbox_appender = transactional<S> && detail::outbox_store_has_append<S>;

/// What a relay needs of a store: settle::transactional (the relay runs
/// transactions of its own, begin() to commit()), and
///
///   s.claim(tx, owner, now, lease_until, limit) -> records
///       atomically takes at most `limit` due records, lowest
///       (next_attempt_at, sequence) first, and returns them in flight:
///       claim_token one above the record's previous one (its first claim gets
///       fencing_token::first()), claim_owner = owner, claim_expires_at =
///       lease_until, attempts + 1. Due: pending with next_attempt_at <= now,
///       or in flight with claim_expires_at <= now (the claim's lease ended).
///       A record with an ordering key is due only while every older record
///       (lower sequence) with that key is delivered; so a dead letter blocks
///       its key until it is requeued. The owner names the claim for people
///       reading the table; it fences nothing.
///   s.mark_delivered(tx, id, token, now)         -> delivered, finished_at = now
///   s.reschedule(tx, id, token, error, at)       -> pending, due at `at`, last_error = error
///   s.dead_letter(tx, id, token, reason, now)    -> dead, last_error = reason, finished_at = now
///   s.release(tx, id, token)                     -> pending as before the claim, attempts - 1
///       each applied only while the record is in flight under the claim
///       whose claim_token is `token` (whether its lease has ended does not
///       matter: only a newer claim fences it off), and answers
///       fenced_write::stale otherwise, changing nothing. Each clears
///       claim_owner and claim_expires_at and keeps claim_token.
///   optionally, s.mark_delivered(tx, claims, now) -> std::vector<fenced_write>
///       the same for every claim of a std::span<const outbox_claim>,
///       answering in their order; the relay then records a batch's
///       deliveries in one call.
///
/// A relay whose observer takes statistics needs s.statistics(tx, now) too
/// (see outbox<Store, Clock>::statistics).
/// settle/testing/outbox_store_suite.hpp checks all of this on a backend.
template <class S>
concept outbox_store = transactional<S> && detail::outbox_store_has_claim<S> &&
    detail::outbox_store_has_mark_delivered<S> && detail::outbox_store_has_reschedule<S> &&
    detail::outbox_store_has_dead_letter<S> && detail::outbox_store_has_release<S>;

namespace detail {

// One static_assert per requirement, so a backend that misses one is told
// which. Each returns true: the static_asserts are the check.
template <class S>
constexpr bool check_outbox_appender() {
    if constexpr (check_transactional<S>()) {
        static_assert(outbox_store_has_append<S>,
                      "settle::outbox_appender: `append(tx, message, now)` missing or wrong "
                      "signature; expected `outbox_append_result append(transaction&, "
                      "outbox_message, stored_time now)`");
    }
    return true;
}

template <class S>
constexpr bool check_outbox_store() {
    if constexpr (check_transactional<S>()) {
        static_assert(outbox_store_has_claim<S>,
                      "settle::outbox_store: `claim(tx, owner, now, lease_until, limit)` missing "
                      "or wrong signature; expected `std::vector<outbox_record> "
                      "claim(transaction&, std::string_view owner, stored_time now, stored_time "
                      "lease_until, std::size_t limit)`");
        static_assert(outbox_store_has_mark_delivered<S>,
                      "settle::outbox_store: `mark_delivered(tx, id, token, now)` missing or "
                      "wrong signature; expected `fenced_write mark_delivered(transaction&, const "
                      "uuid&, fencing_token, stored_time now)`");
        static_assert(outbox_store_has_reschedule<S>,
                      "settle::outbox_store: `reschedule(tx, id, token, error, next_attempt_at)` "
                      "missing or wrong signature; expected `fenced_write reschedule(transaction&, "
                      "const uuid&, fencing_token, std::string_view error, stored_time "
                      "next_attempt_at)`");
        static_assert(outbox_store_has_dead_letter<S>,
                      "settle::outbox_store: `dead_letter(tx, id, token, reason, now)` missing or "
                      "wrong signature; expected `fenced_write dead_letter(transaction&, const "
                      "uuid&, fencing_token, std::string_view reason, stored_time now)`");
        static_assert(outbox_store_has_release<S>,
                      "settle::outbox_store: `release(tx, id, token)` missing or wrong signature; "
                      "expected `fenced_write release(transaction&, const uuid&, fencing_token)`");
    }
    return true;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Publishing

/// How publishing one record went. Exhaustive: switch on it without a default.
enum class [[nodiscard]] publish_outcome{
    delivered,  ///< the broker (or the receiving service) has the message
    retryable,  ///< not now: try again later (a timeout, a throttle, a broker outage)
    permanent,  ///< never: retrying cannot help (refused as malformed, unknown topic)
};

[[nodiscard]] constexpr std::string_view to_string(publish_outcome outcome) noexcept {
    switch (outcome) {
    case publish_outcome::delivered: return "delivered";
    case publish_outcome::retryable: return "retryable";
    case publish_outcome::permanent: return "permanent";
    }
    return "unknown settle::publish_outcome";
}

/// What a publisher answers for one record; made by delivered(), retryable()
/// or permanent(). True when delivered.
class [[nodiscard]] publish_result {
public:
    ///@{
    /// A result for each outcome (retryable and permanent with the reason); the outcome and one
    /// test for each of its values (true when delivered); the reason; equal when both are.
    [[nodiscard]] static publish_result delivered() noexcept { return publish_result(); }
    /// `after`: a delay the other side asked for (Retry-After); replaces the
    /// schedule's delay for this retry. Negative counts as zero.
    [[nodiscard]] static publish_result retryable(
        std::string why, std::optional<std::chrono::nanoseconds> after = std::nullopt) noexcept {
        return publish_result(publish_outcome::retryable, std::move(why), after);
    }
    [[nodiscard]] static publish_result permanent(std::string why) noexcept {
        return publish_result(publish_outcome::permanent, std::move(why), std::nullopt);
    }

    [[nodiscard]] publish_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_delivered() const noexcept {
        return outcome_ == publish_outcome::delivered;
    }
    [[nodiscard]] bool is_retryable() const noexcept {
        return outcome_ == publish_outcome::retryable;
    }
    [[nodiscard]] bool is_permanent() const noexcept {
        return outcome_ == publish_outcome::permanent;
    }
    explicit operator bool() const noexcept { return is_delivered(); }
    /// Why it failed, stored as the record's last_error; empty when delivered.
    [[nodiscard]] const std::string& reason() const& noexcept { return reason_; }
    [[nodiscard]] std::string&& reason() && noexcept { return std::move(reason_); }
    /// retryable only: the delay the other side asked for, if it did.
    [[nodiscard]] std::optional<std::chrono::nanoseconds> retry_after() const noexcept {
        return retry_after_;
    }

    friend bool operator==(const publish_result&, const publish_result&) = default;
    ///@}

private:
    publish_result() noexcept = default;
    publish_result(publish_outcome outcome, std::string reason,
                   std::optional<std::chrono::nanoseconds> retry_after) noexcept
        : outcome_(outcome), reason_(std::move(reason)), retry_after_(retry_after) {}

    publish_outcome outcome_ = publish_outcome::delivered;
    std::string reason_;
    std::optional<std::chrono::nanoseconds> retry_after_;
};

/// Publishes one record: p.publish(record) -> publish_result. A publisher may
/// also offer p.publish_batch(std::span<const outbox_record>) ->
/// std::vector<publish_result>, one result per record in order; the relay then
/// hands it each batch at once.
///
/// Throwing settle::error with errc::decode_failed (what settle::decode throws
/// for a payload it cannot read) counts as a permanent failure of that record.
/// Any other exception propagates out of the relay after the batch is put back
/// in a safe state (see outbox_relay::run_once).
template <class P>
concept outbox_publisher = requires(P& p, const outbox_record& record) {
    { p.publish(record) } -> std::same_as<publish_result>;
};

namespace detail {
template <class P>
concept outbox_batch_publisher = requires(P& p, std::span<const outbox_record> records) {
    { p.publish_batch(records) } -> std::same_as<std::vector<publish_result>>;
};
}  // namespace detail

// ---------------------------------------------------------------------------
// Time and seeds

namespace detail {

// t + d, saturating at the latest (or earliest) representable time.
[[nodiscard]] constexpr stored_time outbox_after(stored_time t,
                                                 std::chrono::microseconds d) noexcept {
    using rep = std::chrono::microseconds::rep;
    const rep base = t.time_since_epoch().count();
    const rep step = d.count();
    if (step > 0 && base > std::numeric_limits<rep>::max() - step) {
        return stored_time::max();
    }
    if (step < 0 && base < std::numeric_limits<rep>::min() - step) {
        return stored_time::min();
    }
    return stored_time(std::chrono::microseconds(base + step));
}

// A duration in whole microseconds, rounded up, saturating.
[[nodiscard]] constexpr std::chrono::microseconds outbox_ceil_us(
    std::chrono::nanoseconds d) noexcept {
    if (d <= std::chrono::nanoseconds::zero()) {
        return std::chrono::microseconds::zero();
    }
    return std::chrono::ceil<std::chrono::microseconds>(d);
}

[[nodiscard]] inline std::string outbox_what(const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

}  // namespace detail

/// The retry seed of a record: a fixed mix of the 128 bits of its id, the same
/// on every platform and in every process, so a relay that restarts, or
/// another relay, computes the same jittered next-attempt times.
[[nodiscard]] constexpr std::uint64_t outbox_retry_seed(const uuid& id) noexcept {
    std::uint64_t h = detail::uuid_load_be64(id.bytes(), 0) * 0x9E37'79B9'7F4A'7C15U;
    h ^= detail::uuid_load_be64(id.bytes(), 1);
    h ^= h >> 31;
    h *= 0xBF58'476D'1CE4'E5B9U;
    h ^= h >> 29;
    return h;
}

// ---------------------------------------------------------------------------
// The outbox: appends and operator tasks

/// How an outbox keeps its records.
struct outbox_options {
    /// How long a delivered record is kept (counted from its delivery) before
    /// purge may remove it; zero removes it at the first purge after delivery.
    /// Pending, in-flight and dead records are never purged.
    std::chrono::microseconds retention = std::chrono::hours(24 * 7);
};

/// The caller's handle on an outbox's store: appends inside the caller's
/// transaction, reading the time from a wall clock; and the operator's tasks.
/// Appending needs only an outbox_appender; each operator task needs the
/// store operation it calls, checked when you use it. Holds references to
/// both; copyable; as thread-safe as the store (the in-memory one is).
///
///     settle::outbox outbox(store, clock);
///     auto tx = db.begin();
///     orders.put(tx, id, order);                                    // the business write
///     (void)outbox.append(tx, ids(), "orders.placed", placed, key); // joins tx
///     tx.commit();                                                  // both, or neither
template <class Store, class Clock>
class outbox {
    static_assert(detail::check_outbox_appender<Store>());
    static_assert(wall_clock<Clock>,
                  "settle::outbox: the clock must be a settle::wall_clock (system_clock time "
                  "points): records persist wall-clock times");

public:
    ///@{
    /// The store and its transaction type.
    using store_type = Store;
    using transaction = typename Store::transaction;
    ///@}

    /// Throws settle::error (errc::invalid_argument) for a negative retention.
    outbox(Store& store, Clock& clock, outbox_options options = {})
        : store_(&store), clock_(&clock), options_(options) {
        if (options_.retention < std::chrono::microseconds::zero()) {
            throw error(errc::invalid_argument, "outbox: the retention is negative");
        }
    }

    /// The options the outbox was made with.
    [[nodiscard]] const outbox_options& options() const noexcept { return options_; }

    /// Appends the message in tx, due at once: appended with its sequence,
    /// published only if tx commits; or duplicate if a record with its id
    /// exists, which changes nothing (the message was appended before).
    /// Throws settle::error (errc::invalid_argument) for a nil id.
    outbox_append_result append(transaction& tx, outbox_message message) {
        return store_->append(tx, std::move(message), now());
    }

    /// The same, encoding the event with settle::codec<T>.
    template <codable T>
    outbox_append_result append(transaction& tx, const uuid& id, std::string topic, const T& event,
                                std::string ordering_key = {}, outbox_headers headers = {}) {
        return append(tx, make_outbox_message(id, std::move(topic), event, std::move(ordering_key),
                                              std::move(headers)));
    }

    /// Makes a dead letter pending again, due now, with a fresh schedule.
    /// False, and no change, if the record is not a dead letter.
    [[nodiscard]] bool requeue(transaction& tx, const uuid& id) {
        static_assert(detail::outbox_store_has_requeue<Store>,
                      "settle::outbox::requeue: `requeue(tx, id, now)` missing or wrong "
                      "signature; expected `bool requeue(transaction&, const uuid&, stored_time "
                      "now)`");
        return store_->requeue(tx, id, now());
    }

    /// Requeues the oldest dead letters, at most `limit` of them; returns how many.
    std::size_t requeue_dead_letters(transaction& tx, std::size_t limit) {
        static_assert(detail::outbox_store_has_dead_letters<Store>,
                      "settle::outbox::requeue_dead_letters: `dead_letters(tx, after_sequence, "
                      "limit)` missing or wrong signature; expected `std::vector<outbox_record> "
                      "dead_letters(transaction&, std::uint64_t after_sequence, std::size_t "
                      "limit)`");
        std::size_t count = 0;
        for (const outbox_record& record : store_->dead_letters(tx, 0, limit)) {
            count += requeue(tx, record.id) ? 1U : 0U;
        }
        return count;
    }

    /// Removes at most `limit` delivered records older than the retention
    /// (counted from their delivery); returns how many. Call it on a schedule,
    /// until it returns less than the limit. Pending, in-flight and dead
    /// records are never purged.
    std::size_t purge(transaction& tx, std::size_t limit) {
        static_assert(detail::outbox_store_has_purge<Store>,
                      "settle::outbox::purge: `purge(tx, delivered_before, limit)` missing or "
                      "wrong signature; expected `std::size_t purge(transaction&, stored_time "
                      "delivered_before, std::size_t limit)`");
        return store_->purge(tx, detail::outbox_after(now(), -options_.retention), limit);
    }

    /// The counts of records by status, read in the caller's transaction.
    [[nodiscard]] outbox_statistics statistics(transaction& tx) {
        static_assert(detail::outbox_store_has_statistics<Store>,
                      "settle::outbox::statistics: `statistics(tx, now)` missing or wrong "
                      "signature; expected `outbox_statistics statistics(transaction&, "
                      "stored_time now)`");
        return store_->statistics(tx, now());
    }

private:
    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    Store* store_;
    Clock* clock_;
    outbox_options options_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_OUTBOX_HPP
