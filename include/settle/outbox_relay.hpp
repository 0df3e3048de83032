// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_OUTBOX_RELAY_HPP
#define SETTLE_OUTBOX_RELAY_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/outbox.hpp>
#include <settle/retry.hpp>
#include <settle/sleeper.hpp>
#include <settle/token.hpp>
#include <settle/uuid.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// The outbox relay: claims due records of an outbox store under a lease and
// a fencing token each, publishes them, and records each outcome, retrying
// on a persisted schedule (settle::persisted_retry) until the publisher takes
// a record or its schedule runs out. Apart from <settle/outbox.hpp> because
// it is the part that waits and retries: a service that only appends, and
// the SQL stores, do without it.

SETTLE_BEGIN_NAMESPACE

// ---------------------------------------------------------------------------
// The relay

/// What the relay did with one claimed record. Exhaustive: switch on it
/// without a default.
enum class [[nodiscard]] outbox_outcome{
    delivered,      ///< published and marked delivered
    rescheduled,    ///< a retryable failure: pending again, due at next_attempt_at
    dead_lettered,  ///< a permanent failure, or no attempts left: kept as a dead letter
    released,       ///< not attempted (the publisher threw before reaching it): pending again
    stale,          ///< a newer claim took the record over meanwhile: its outcome stands
};

[[nodiscard]] constexpr std::string_view to_string(outbox_outcome outcome) noexcept {
    switch (outcome) {
    case outbox_outcome::delivered: return "delivered";
    case outbox_outcome::rescheduled: return "rescheduled";
    case outbox_outcome::dead_lettered: return "dead_lettered";
    case outbox_outcome::released: return "released";
    case outbox_outcome::stale: return "stale";
    }
    return "unknown settle::outbox_outcome";
}

/// One record's outcome, as the observer sees it after it was recorded. It
/// refers to the relay's batch: valid during the on_outcome call only.
class outbox_event {
public:
    ///@{
    /// Made from its parts by the library; what happened to one record: the record, the outcome,
    /// one test for each of its values (true when delivered).
    outbox_event(const outbox_record& record, outbox_outcome outcome, std::string_view reason,
                 stored_time next_attempt_at) noexcept
        : record_(&record), outcome_(outcome), reason_(reason), next_attempt_at_(next_attempt_at) {}

    /// As claimed: attempts counts this attempt, claim_token is this claim's.
    [[nodiscard]] const outbox_record& record() const noexcept { return *record_; }
    [[nodiscard]] outbox_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_delivered() const noexcept {
        return outcome_ == outbox_outcome::delivered;
    }
    [[nodiscard]] bool is_rescheduled() const noexcept {
        return outcome_ == outbox_outcome::rescheduled;
    }
    [[nodiscard]] bool is_dead_lettered() const noexcept {
        return outcome_ == outbox_outcome::dead_lettered;
    }
    [[nodiscard]] bool is_released() const noexcept { return outcome_ == outbox_outcome::released; }
    [[nodiscard]] bool is_stale() const noexcept { return outcome_ == outbox_outcome::stale; }
    explicit operator bool() const noexcept { return is_delivered(); }
    ///@}
    /// rescheduled, dead_lettered: the stored reason; empty otherwise.
    [[nodiscard]] std::string_view reason() const noexcept { return reason_; }
    /// rescheduled: when it is due again; zero otherwise.
    [[nodiscard]] stored_time next_attempt_at() const noexcept { return next_attempt_at_; }

private:
    const outbox_record* record_;
    outbox_outcome outcome_;
    std::string_view reason_;
    stored_time next_attempt_at_;
};

/// The relay's default observer: observes nothing, costs nothing. An observer
/// may have any of
///     void on_outcome(const settle::outbox_event&);          // every recorded outcome
///     void on_statistics(const settle::outbox_statistics&);   // once per run_once
///     void on_transient_failure(const settle::error&);        // run(): a round failed, waited out
/// and the relay calls what it has, after the outcomes are committed; it asks
/// the store for statistics (in the claim's transaction, before claiming) only
/// when the observer takes them. What an observer throws propagates out of
/// run_once; the records are already safe by then.
struct no_outbox_observer {};

namespace detail {
template <class O>
concept outbox_observes_outcomes = requires(O& o, const outbox_event& event) {
    o.on_outcome(event);
};
template <class O>
concept outbox_observes_statistics = requires(O& o, const outbox_statistics& statistics) {
    o.on_statistics(statistics);
};
template <class O>
concept outbox_observes_transient_failures = requires(O& o, const error& e) {
    o.on_transient_failure(e);
};
}  // namespace detail

/// What an outbox_relay is configured with.
struct outbox_relay_options {
    /// Names this relay's claims (claim_owner) for whoever reads the table:
    /// host and process, say. Not empty. It fences nothing: each claim is
    /// fenced by its own token, so relays sharing a name stay safe.
    std::string owner;
    /// Records claimed, published and recorded together. At least 1.
    std::size_t batch_size = 16;
    /// How long a claim keeps a batch from other relays. Longer than publishing
    /// a batch can take: after it, another relay may publish the batch again.
    std::chrono::microseconds lease = std::chrono::seconds(30);
    /// run(): the first wait after a run that found nothing to do, doubling on
    /// each further idle run up to idle_max; reset by a run that claimed work.
    std::chrono::nanoseconds idle_min = std::chrono::milliseconds(10);
    /// run(): the longest wait between idle runs.
    std::chrono::nanoseconds idle_max = std::chrono::seconds(1);
};

/// What one run_once() did: how many records it claimed, and how many of
/// them ended each way (released records are counted only as claimed).
struct [[nodiscard]] outbox_run_result {
    ///@{
    /// The counts of one run: records claimed, delivered, rescheduled, dead-lettered and found
    /// stale; equal when every count is.
    std::size_t claimed = 0;
    std::size_t delivered = 0;
    std::size_t rescheduled = 0;
    std::size_t dead_lettered = 0;
    std::size_t stale = 0;

    /// Nothing was due.
    [[nodiscard]] bool idle() const noexcept { return claimed == 0; }

    friend bool operator==(const outbox_run_result&, const outbox_run_result&) = default;
    ///@}
};

/// Moves records from an outbox_store to a publisher: claims a batch of due
/// records in one short transaction, publishes them outside any transaction,
/// then records every outcome in one more transaction:
///
///   delivered            -> mark_delivered
///   retryable failure    -> reschedule at retry.next_attempt_at(attempts, now,
///                           outbox_retry_seed(id)), or at now + retry_after
///                           when the publisher asked for it; dead letter once
///                           the schedule is exhausted
///   permanent failure    -> dead letter with the publisher's reason
///
/// A record claimed more often than the schedule allows (earlier claims ended
/// without an outcome: a relay died, or its lease ran out, every time) is
/// dead-lettered without publishing, so a message that crashes its relay
/// cannot loop for ever. Each outcome is recorded under the claim's fencing
/// token: a relay whose lease ran out and whose records another relay claimed
/// records nothing (stale), whatever the owner names. Several relays may run
/// on one store; a relay object itself is used by one thread at a time.
/// Allocates per batch: the claimed records and their outcomes.
///
///     settle::outbox_relay relay(store, publisher,
///                                settle::persisted_retry{settle::message_queue_ladder, 19},
///                                clock, {.owner = "relay-" + host});
///     relay.run(stop_token);
template <class Store, class Publisher, backoff Backoff, class Clock,
          class Observer = no_outbox_observer>
class outbox_relay {
    static_assert(detail::check_outbox_store<Store>());
    static_assert(!detail::outbox_observes_statistics<Observer> ||
                      detail::outbox_store_has_statistics<Store>,
                  "settle::outbox_relay: the observer takes statistics: `statistics(tx, now)` "
                  "missing or wrong signature; expected `outbox_statistics "
                  "statistics(transaction&, stored_time now)`");
    static_assert(outbox_publisher<Publisher>,
                  "settle::outbox_relay: the publisher needs `publish_result publish(const "
                  "outbox_record&)`");
    static_assert(wall_clock<Clock>,
                  "settle::outbox_relay: the clock must be a settle::wall_clock (system_clock "
                  "time points): records persist wall-clock times");

public:
    ///@{
    /// The store, the publisher and the transaction type.
    using store_type = Store;
    using publisher_type = Publisher;
    using transaction = typename Store::transaction;
    ///@}

    /// Throws settle::error (errc::invalid_argument) for an empty owner, a
    /// batch size of 0, a lease or idle_min that is not positive, or idle_max
    /// below idle_min.
    outbox_relay(Store& store, Publisher& publisher, persisted_retry<Backoff> retry, Clock& clock,
                 outbox_relay_options options, Observer observer = Observer{})
        : store_(&store),
          publisher_(&publisher),
          retry_(std::move(retry)),
          clock_(&clock),
          options_(std::move(options)),
          observer_(std::move(observer)) {
        if (options_.owner.empty()) {
            throw error(errc::invalid_argument, "outbox_relay: the owner name is empty");
        }
        if (options_.batch_size == 0) {
            throw error(errc::invalid_argument, "outbox_relay: the batch size is 0");
        }
        if (options_.lease <= std::chrono::microseconds::zero()) {
            throw error(errc::invalid_argument, "outbox_relay: the lease is not positive");
        }
        if (options_.idle_min <= std::chrono::nanoseconds::zero() ||
            options_.idle_max < options_.idle_min) {
            throw error(errc::invalid_argument,
                        "outbox_relay: idle waits must satisfy 0 < idle_min <= idle_max");
        }
    }

    ///@{
    /// The options, the retry ladder and the observer the relay was made with.
    [[nodiscard]] const outbox_relay_options& options() const noexcept { return options_; }
    [[nodiscard]] const persisted_retry<Backoff>& retry() const noexcept { return retry_; }
    [[nodiscard]] Observer& observer() noexcept { return observer_; }
    [[nodiscard]] const Observer& observer() const noexcept { return observer_; }
    ///@}

    /// Claims at most batch_size due records, publishes them and records their
    /// outcomes; returns the counts. Failures of the store propagate; the
    /// claimed records then stay in flight until their lease ends and another
    /// run takes them again, which is safe. If the publisher throws (other
    /// than errc::decode_failed), the outcomes so far are recorded, the record
    /// it threw on is rescheduled like a retryable failure (it may have gone
    /// out), the records after it are released untouched, and the exception
    /// propagates.
    [[nodiscard]] outbox_run_result run_once() { return round(false).result; }

    /// Runs run_once() until `stop` is stopped: again at once after a run that
    /// claimed records, after an idle wait (idle_min, doubling up to idle_max)
    /// after one that found nothing. A run whose store fails with
    /// errc::unavailable (the store lost its database) or errc::aborted (the
    /// database gave a transaction up: a deadlock, a serialization failure, a
    /// timeout) is reported to the observer's on_transient_failure, if it has
    /// one, and waits like an idle run: the backoff doubles while the failures
    /// last, and the next run's begin() is where a store reconnects. Nothing
    /// is lost meanwhile: records claimed by the failed run come back when
    /// their lease ends. Returns promptly once stopped: it checks before every
    /// run and the sleeper wakes on the stop request. Other exceptions from
    /// run_once() propagate.
    template <sleeper Sleeper>
    void run(std::stop_token stop, Sleeper& sleeper) {
        std::chrono::nanoseconds idle = options_.idle_min;
        while (!stop.stop_requested()) {
            round_end end = round(true);
            if (!end.result.idle()) {
                idle = options_.idle_min;
                continue;
            }
            if constexpr (detail::outbox_observes_transient_failures<Observer>) {
                if (end.lost) {
                    observer_.on_transient_failure(*end.lost);
                }
            }
            if (!sleeper.sleep_for(idle, stop)) {
                return;
            }
            idle = idle > options_.idle_max / 2 ? options_.idle_max : idle * 2;
        }
    }

    /// The same, sleeping the calling thread.
    void run(std::stop_token stop) {
        system_sleeper sleeper;
        run(std::move(stop), sleeper);
    }

private:
    // What a round did, and the failure that ended it early, if any.
    struct round_end {
        outbox_run_result result;
        std::optional<error> lost;
    };

    // What run_once() does. With `survive_unavailable`, a store operation
    // that fails with errc::unavailable or errc::aborted ends the round,
    // counted as idle, with the error in `lost`; the publisher's and the
    // observer's exceptions, and the store's other failures, propagate either
    // way. (A flag and a value,
    // not an out-pointer that may be null: GCC 12's -Wnonnull, with
    // sanitizers, saw a write through the null one run_once passed.)
    round_end round(bool survive_unavailable) {
        const auto survives = [survive_unavailable](const error& e) {
            return survive_unavailable &&
                   (e.code() == errc::unavailable || e.code() == errc::aborted);
        };
        std::vector<outbox_record> batch;
        std::optional<outbox_statistics> statistics;
        try {
            transaction tx = store_->begin();
            const stored_time now = this->now();
            if constexpr (detail::outbox_observes_statistics<Observer>) {
                statistics = store_->statistics(tx, now);
            }
            batch = store_->claim(tx, options_.owner, now,
                                  detail::outbox_after(now, options_.lease), options_.batch_size);
            tx.commit();
        } catch (const error& e) {
            if (!survives(e)) {
                throw;
            }
            return {{}, e};
        }
        outbox_run_result result;
        if (!batch.empty()) {
            std::vector<verdict> verdicts(batch.size());
            std::exception_ptr failure = publish(batch, verdicts);
            if (failure) {
                try {
                    (void)report(batch, record(batch, verdicts));
                } catch (...) {  // NOLINT(bugprone-empty-catch): the claims expire; that is safe
                }
                std::rethrow_exception(failure);
            }
            std::vector<recorded> outcomes;
            try {
                outcomes = record(batch, verdicts);
            } catch (const error& e) {
                if (!survives(e)) {
                    throw;
                }
                return {{}, e};
            }
            result = report(batch, outcomes);
        }
        if constexpr (detail::outbox_observes_statistics<Observer>) {
            observer_.on_statistics(*statistics);
        }
        return {result, std::nullopt};
    }

    enum class verdict_kind { delivered, retry, permanent, overdrawn, released };

    struct verdict {
        verdict_kind kind = verdict_kind::released;
        std::string reason;
        std::optional<std::chrono::nanoseconds> retry_after;
    };

    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    static void judge(verdict& v, publish_result&& result) {
        switch (result.outcome()) {
        case publish_outcome::delivered: v.kind = verdict_kind::delivered; return;
        case publish_outcome::retryable:
            v.kind = verdict_kind::retry;
            v.retry_after = result.retry_after();
            v.reason = std::move(result).reason();
            return;
        case publish_outcome::permanent:
            v.kind = verdict_kind::permanent;
            v.reason = std::move(result).reason();
            return;
        }
        v.kind = verdict_kind::retry;
        v.reason = "the publisher answered an unknown publish_outcome";
    }

    static void thrown(verdict& v, const std::exception_ptr& failure) {
        v.kind = verdict_kind::retry;
        v.reason = "the publisher threw: " + detail::outbox_what(failure);
    }

    // True when a settle::error with errc::decode_failed is in flight: the
    // payload cannot be read, which retrying will not change.
    static bool decode_failure(const std::exception_ptr& failure, verdict& v) {
        try {
            std::rethrow_exception(failure);
        } catch (const error& e) {
            if (e.code() == make_error_code(errc::decode_failed)) {
                v.kind = verdict_kind::permanent;
                v.reason = std::string("the payload cannot be decoded: ") + e.what();
                return true;
            }
        } catch (...) {  // NOLINT(bugprone-empty-catch): not a decode failure
        }
        return false;
    }

    // Publishes the batch, filling verdicts; returns what the publisher threw.
    std::exception_ptr publish(const std::vector<outbox_record>& batch,
                               std::vector<verdict>& verdicts) {
        std::vector<std::size_t> order;  // the records to publish, by index
        order.reserve(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (batch[i].attempts > retry_.max_attempts()) {
                verdicts[i].kind = verdict_kind::overdrawn;
                verdicts[i].reason = "claimed " + std::to_string(batch[i].attempts) +
                                     " times, more than the schedule's " +
                                     std::to_string(retry_.max_attempts()) +
                                     " attempts: earlier claims ended without an outcome (a "
                                     "relay stopped, or its lease was too short)";
            } else {
                order.push_back(i);
            }
        }
        if constexpr (detail::outbox_batch_publisher<Publisher>) {
            return publish_batch(batch, order, verdicts);
        } else {
            for (std::size_t k = 0; k < order.size(); ++k) {
                verdict& v = verdicts[order[k]];
                try {
                    judge(v, publisher_->publish(batch[order[k]]));
                } catch (...) {
                    std::exception_ptr failure = std::current_exception();
                    if (decode_failure(failure, v)) {
                        continue;
                    }
                    thrown(v, failure);  // the rest stay released
                    return failure;
                }
            }
            return nullptr;
        }
    }

    std::exception_ptr publish_batch(const std::vector<outbox_record>& batch,
                                     const std::vector<std::size_t>& order,
                                     std::vector<verdict>& verdicts) {
        if (order.empty()) {
            return nullptr;
        }
        std::vector<publish_result> results;
        try {
            if (order.size() == batch.size()) {
                results = publisher_->publish_batch(std::span<const outbox_record>(batch));
            } else {
                std::vector<outbox_record> some;
                some.reserve(order.size());
                for (const std::size_t i : order) {
                    some.push_back(batch[i]);
                }
                results = publisher_->publish_batch(std::span<const outbox_record>(some));
            }
            if (results.size() != order.size()) {
                throw error(errc::invalid_argument, "outbox_relay: publish_batch answered " +
                                                        std::to_string(results.size()) +
                                                        " results for " +
                                                        std::to_string(order.size()) + " records");
            }
        } catch (...) {
            std::exception_ptr failure = std::current_exception();
            for (const std::size_t i : order) {
                thrown(verdicts[i], failure);  // any of them may have gone out
            }
            return failure;
        }
        for (std::size_t k = 0; k < order.size(); ++k) {
            judge(verdicts[order[k]], std::move(results[k]));
        }
        return nullptr;
    }

    struct recorded {
        outbox_outcome outcome = outbox_outcome::stale;
        std::string reason;
        stored_time next_attempt_at{};
    };

    // Records every verdict in one transaction; returns what was recorded.
    std::vector<recorded> record(const std::vector<outbox_record>& batch,
                                 std::vector<verdict>& verdicts) {
        std::vector<recorded> outcomes(batch.size());
        {
            transaction tx = store_->begin();
            const stored_time now = this->now();
            if constexpr (detail::outbox_store_marks_delivered_together<Store>) {
                record_deliveries(tx, batch, verdicts, outcomes, now);
            }
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if constexpr (detail::outbox_store_marks_delivered_together<Store>) {
                    if (verdicts[i].kind == verdict_kind::delivered) {
                        continue;  // recorded above
                    }
                }
                outcomes[i] = record_one(tx, batch[i], verdicts[i], now);
            }
            tx.commit();
        }
        return outcomes;
    }

    // Counts the recorded outcomes and tells the observer of each.
    outbox_run_result report(const std::vector<outbox_record>& batch,
                             const std::vector<recorded>& outcomes) {
        outbox_run_result result;
        result.claimed = batch.size();
        for (std::size_t i = 0; i < batch.size(); ++i) {
            switch (outcomes[i].outcome) {
            case outbox_outcome::delivered: ++result.delivered; break;
            case outbox_outcome::rescheduled: ++result.rescheduled; break;
            case outbox_outcome::dead_lettered: ++result.dead_lettered; break;
            case outbox_outcome::released: break;
            case outbox_outcome::stale: ++result.stale; break;
            }
        }
        if constexpr (detail::outbox_observes_outcomes<Observer>) {
            for (std::size_t i = 0; i < batch.size(); ++i) {
                observer_.on_outcome(outbox_event(batch[i], outcomes[i].outcome, outcomes[i].reason,
                                                  outcomes[i].next_attempt_at));
            }
        }
        return result;
    }

    // Every delivered record of the batch in one call to the store.
    void record_deliveries(transaction& tx, const std::vector<outbox_record>& batch,
                           const std::vector<verdict>& verdicts, std::vector<recorded>& outcomes,
                           stored_time now) {
        std::vector<outbox_claim> claims;
        std::vector<std::size_t> positions;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (verdicts[i].kind == verdict_kind::delivered) {
                claims.push_back({batch[i].id, batch[i].claim_token});
                positions.push_back(i);
            }
        }
        if (claims.empty()) {
            return;
        }
        const std::vector<fenced_write> writes =
            store_->mark_delivered(tx, std::span<const outbox_claim>(claims), now);
        if (writes.size() != claims.size()) {
            throw error(errc::backend_failure,
                        "outbox_relay: the store answered " + std::to_string(writes.size()) +
                            " outcomes for " + std::to_string(claims.size()) + " deliveries");
        }
        for (std::size_t j = 0; j < claims.size(); ++j) {
            if (writes[j] == fenced_write::applied) {
                outcomes[positions[j]].outcome = outbox_outcome::delivered;
            }
        }
    }

    // The store's answer first, then the event: the reason is read by the
    // store before it moves into the event.
    recorded record_one(transaction& tx, const outbox_record& record, verdict& v, stored_time now) {
        const fencing_token token = record.claim_token;
        fenced_write write = fenced_write::stale;
        recorded out;
        switch (v.kind) {
        case verdict_kind::delivered:
            write = store_->mark_delivered(tx, record.id, token, now);
            out.outcome = outbox_outcome::delivered;
            break;
        case verdict_kind::released:
            write = store_->release(tx, record.id, token);
            out.outcome = outbox_outcome::released;
            break;
        case verdict_kind::permanent:
        case verdict_kind::overdrawn:
            write = store_->dead_letter(tx, record.id, token, v.reason, now);
            out = {outbox_outcome::dead_lettered, std::move(v.reason), {}};
            break;
        case verdict_kind::retry:
            if (std::optional<stored_time> next =
                    retry_.next_attempt_at(record.attempts, now, outbox_retry_seed(record.id))) {
                if (v.retry_after) {
                    next = detail::outbox_after(now, detail::outbox_ceil_us(*v.retry_after));
                }
                write = store_->reschedule(tx, record.id, token, v.reason, *next);
                out = {outbox_outcome::rescheduled, std::move(v.reason), *next};
            } else {
                std::string reason =
                    "no attempts left after " + std::to_string(record.attempts) + ": " + v.reason;
                write = store_->dead_letter(tx, record.id, token, reason, now);
                out = {outbox_outcome::dead_lettered, std::move(reason), {}};
            }
            break;
        }
        return write == fenced_write::applied ? out : recorded{};
    }

    Store* store_;
    Publisher* publisher_;
    persisted_retry<Backoff> retry_;
    Clock* clock_;
    outbox_relay_options options_;
    Observer observer_;
};

template <class Store, class Publisher, class Backoff, class Clock>
outbox_relay(Store&, Publisher&, persisted_retry<Backoff>, Clock&, outbox_relay_options)
    -> outbox_relay<Store, Publisher, Backoff, Clock>;

template <class Store, class Publisher, class Backoff, class Clock, class Observer>
outbox_relay(Store&, Publisher&, persisted_retry<Backoff>, Clock&, outbox_relay_options, Observer)
    -> outbox_relay<Store, Publisher, Backoff, Clock, Observer>;

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_OUTBOX_RELAY_HPP
