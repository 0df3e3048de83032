// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_RECONCILER_HPP
#define SETTLE_RECONCILER_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/reconcile.hpp>
#include <settle/retry.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// The reconciler: records whose outcome is uncertain (a prepared message, a
// tried branch, an order waiting for a payment callback) are watched from
// the transaction that made them uncertain; once uncertain longer than a
// threshold, each is checked against a status source you supply (the
// payment provider's query API, the other service's records) and resolved by
// its answer. A record whose answer stays "unknown" is checked on a schedule
// with a bounded number of checks, then escalated: kept aside for an
// operator and reported to an observer, never checked forever.

SETTLE_BEGIN_NAMESPACE

namespace detail {

// A stable 64-bit hash (FNV-1a) of a record id: the seed of its jitter.
[[nodiscard]] constexpr std::uint64_t reconcile_seed(std::string_view id) noexcept {
    std::uint64_t h = 0xcbf29ce484222325U;
    for (const char c : id) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3U;
    }
    return h;
}

}  // namespace detail

/// What one reconciler::run_once() did.
struct [[nodiscard]] reconcile_run_result {
    std::size_t checked = 0;      ///< records whose status was asked
    std::size_t committed = 0;    ///< resolved as committed
    std::size_t rolled_back = 0;  ///< resolved as rolled back
    std::size_t unknown = 0;      ///< answered unknown and scheduled for another check
    std::size_t escalated = 0;    ///< answered unknown once too often: set aside
    std::size_t gone = 0;         ///< forgotten meanwhile (resolved elsewhere): nothing done

    /// Equal when every count is equal.
    friend bool operator==(const reconcile_run_result&, const reconcile_run_result&) = default;
};

/// What a reconciler is configured with.
struct reconcile_options {
    /// How long a record must have been uncertain before it is checked: longer
    /// than the outcome normally takes to arrive by itself (a callback, a
    /// confirm), so the source is asked only about records that are late.
    /// Not negative.
    std::chrono::microseconds threshold = std::chrono::minutes(5);
    /// Records checked per run_once. At least 1.
    std::size_t batch_size = 16;
};

/// An observer of a reconciler that hears nothing. An observer of your own has
///     void on_escalated(const settle::uncertain_record&, std::string_view reason);
/// called after the record is set aside (committed). What it throws propagates
/// out of run_once; the record is already set aside.
struct no_reconcile_observer {};

/// Checks watched records against a status source and resolves them. Holds
/// references to the store and the clock; as thread-safe as the store.
/// Several reconcilers may run on one store: each record is resolved once
/// (the resolution forgets the record in the same transaction, and only one
/// forget of an id succeeds), though two may ask about it at the same time.
///
///     settle::reconciler payments(store,
///                                 settle::persisted_retry{settle::ladder{1min, 5min, 30min}, 6},
///                                 clock, {.threshold = std::chrono::minutes(10)});
///     payments.watch(tx, order_id);           // with the order that waits for its callback
///     payments.forget(tx, order_id);          // in the callback's transaction
///     payments.run_once(provider, [&](auto& tx, const settle::uncertain_record& r,
///                                      settle::checked_status s) { orders.finish(tx, r.id, s); });
///
/// `checks` bounds the checks: a record is checked when due, and after an
/// unknown answer again at checks.next_attempt_at(unknown answers so far);
/// once that says no more (max_attempts unknown answers), it is escalated.
template <class Store, backoff Backoff, class Clock, class Observer = no_reconcile_observer>
class reconciler {
    static_assert(detail::check_reconcile_store<Store>());
    static_assert(wall_clock<Clock>,
                  "settle::reconciler: the clock must be a settle::wall_clock (system_clock "
                  "time points): records persist wall-clock times");

public:
    ///@{
    /// The store and its transaction type.
    using store_type = Store;
    using transaction = typename Store::transaction;
    ///@}

    /// Throws settle::error (errc::invalid_argument) for a negative threshold
    /// or a batch size of 0.
    reconciler(Store& store, persisted_retry<Backoff> checks, Clock& clock,
               reconcile_options options, Observer observer = Observer{})
        : store_(&store),
          checks_(std::move(checks)),
          clock_(&clock),
          options_(options),
          observer_(std::move(observer)) {
        if (options_.threshold < std::chrono::microseconds::zero()) {
            throw error(errc::invalid_argument, "reconciler: the threshold is negative");
        }
        if (options_.batch_size == 0) {
            throw error(errc::invalid_argument, "reconciler: the batch size is 0");
        }
    }

    ///@{
    /// The options and the observer the reconciler was made with.
    [[nodiscard]] const reconcile_options& options() const noexcept { return options_; }
    [[nodiscard]] Observer& observer() noexcept { return observer_; }
    ///@}

    /// In the transaction that leaves `id` uncertain: watches it. False if it
    /// was watched already. An empty id throws settle::error
    /// (errc::invalid_argument).
    bool watch(transaction& tx, std::string_view id) {
        check_id(id, "watch");
        return store_->watch(tx, id, now());
    }

    /// In the transaction that learnt the outcome some other way (the
    /// callback arrived): stops watching `id`, so it is never checked again.
    /// False if it was not watched.
    bool forget(transaction& tx, std::string_view id) {
        check_id(id, "forget");
        return store_->forget(tx, id);
    }

    /// Checks the due records, at most batch_size of them: reads them in one
    /// transaction; asks source.status(record) -> checked_status for each,
    /// outside any transaction; then, in one transaction per record:
    ///   committed / rolled_back: forgets the record and calls
    ///       resolve(tx, record, status) to apply the outcome, both committed
    ///       together (if it was forgotten meanwhile, resolve is not called);
    ///   unknown: schedules the next check, or escalates the record once the
    ///       checks are spent, then tells the observer.
    /// What the source or resolve throws propagates; the record it was about
    /// is left as it was (and checked again when due).
    template <class Source, class Resolve>
    requires std::invocable<Resolve&, transaction&, const uncertain_record&, checked_status>
        reconcile_run_result run_once(Source& source, Resolve&& resolve) {
        static_assert(
            requires(Source & s, const uncertain_record& r) {
                { s.status(r) } -> std::same_as<checked_status>;
            },
            "settle::reconciler: the status source needs `settle::checked_status status(const "
            "settle::uncertain_record&)`");
        const stored_time at = now();
        const auto earliest = stored_time::min().time_since_epoch();
        const stored_time cut = at.time_since_epoch() < earliest + options_.threshold
                                    ? stored_time::min()
                                    : at - options_.threshold;
        std::vector<uncertain_record> batch;
        {
            transaction tx = store_->begin();
            batch = store_->due(tx, cut, at, options_.batch_size);
            tx.commit();
        }
        reconcile_run_result result;
        for (const uncertain_record& record : batch) {
            const checked_status status = source.status(record);
            ++result.checked;
            transaction tx = store_->begin();
            switch (status) {
            case checked_status::committed:
            case checked_status::rolled_back:
                if (!store_->forget(tx, record.id)) {
                    ++result.gone;
                    continue;
                }
                std::invoke(resolve, tx, record, status);
                tx.commit();
                ++(status == checked_status::committed ? result.committed : result.rolled_back);
                continue;
            case checked_status::unknown: break;
            }
            const std::uint32_t answers = record.unknown_answers + 1;
            const stored_time checked_at = now();
            if (const auto next = checks_.next_attempt_at(answers, checked_at,
                                                          detail::reconcile_seed(record.id))) {
                if (store_->reschedule(tx, record.id, answers, *next)) {
                    tx.commit();
                    ++result.unknown;
                } else {
                    ++result.gone;
                }
                continue;
            }
            const std::string reason =
                "status still unknown after " + std::to_string(answers) + " checks";
            if (!store_->escalate(tx, record.id, reason, checked_at)) {
                ++result.gone;
                continue;
            }
            tx.commit();
            ++result.escalated;
            if constexpr (requires(Observer & o) { o.on_escalated(record, std::string_view()); }) {
                uncertain_record escalated = record;
                escalated.unknown_answers = answers;
                observer_.on_escalated(escalated, reason);
            }
        }
        return result;
    }

private:
    static void check_id(std::string_view id, const char* what) {
        if (id.empty()) {
            throw error(errc::invalid_argument,
                        std::string("reconciler::") + what + ": the record id is empty");
        }
    }

    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    Store* store_;
    persisted_retry<Backoff> checks_;
    Clock* clock_;
    reconcile_options options_;
    Observer observer_;
};

template <class Store, class Backoff, class Clock>
reconciler(Store&, persisted_retry<Backoff>, Clock&, reconcile_options)
    -> reconciler<Store, Backoff, Clock>;

template <class Store, class Backoff, class Clock, class Observer>
reconciler(Store&, persisted_retry<Backoff>, Clock&, reconcile_options, Observer)
    -> reconciler<Store, Backoff, Clock, Observer>;

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_RECONCILER_HPP
