// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_SAGA_COORDINATOR_HPP
#define SETTLE_SAGA_COORDINATOR_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/reconciler.hpp>
#include <settle/retry.hpp>
#include <settle/saga.hpp>
#include <settle/token.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// The saga coordinator: runs a business activity as a sequence of steps,
// each with a compensation, and records its progress (a recovery point)
// after every step, so that when the process running it dies, recovery
// finishes the saga from where it stopped: forward while its steps can still
// succeed, backward (undoing what it started, last first) once one failed
// for good; never both ways.

SETTLE_BEGIN_NAMESPACE

/// What a step or a compensation is called with.
struct saga_call {
    std::string_view id;    ///< the saga's id
    std::string_view data;  ///< the saga's input, as start() was given it
    std::uint32_t step;     ///< the step's index in the definition
    /// The coordinator's claim on the saga when it made this call: greater
    /// than every earlier call's on the same saga. A resource that remembers
    /// the highest token it has seen for (id, step) refuses a coordinator
    /// that was superseded (settle::fence).
    fencing_token token;
};

/// One step: what it does, and how to undo it. Both may be called more than
/// once for one saga (after a crash, or when an attempt's answer was lost), so
/// both must be idempotent on (id, step); a compensation may also be called
/// for a step whose action never took effect, and must then do nothing (the
/// try/confirm/cancel barrier's empty cancel does exactly that). A throw is a
/// failed attempt.
struct saga_step {
    std::string name;  ///< for errors and logs
    /// Does the step; empty for a message-driven coordinator's steps.
    std::function<void(const saga_call&)> action{};
    /// Undoes it; empty for a message-driven coordinator's steps.
    std::function<void(const saga_call&)> compensate{};
};

/// A kind of saga: its type, as records keep it, and its steps in order.
struct saga_definition {
    std::string type;              ///< saga_record::type of the sagas it runs; not empty
    std::vector<saga_step> steps;  ///< run in this order, undone in reverse; at least one
};

/// How a coordinator's run or recovery of one saga ended. Exhaustive: switch
/// on it without a default.
enum class [[nodiscard]] saga_outcome{
    completed,    ///< every step ran
    compensated,  ///< a step failed for good; every step started is undone
    failed,       ///< a compensation failed for good: set aside for an operator
    /// an attempt failed and is due again later; recovery runs it. For a
    /// message-driven saga: a request is out, its answer awaited.
    waiting,
    stale,  ///< another coordinator holds the saga, or took it over: nothing more done here
};

[[nodiscard]] constexpr std::string_view to_string(saga_outcome outcome) noexcept {
    switch (outcome) {
    case saga_outcome::completed: return "completed";
    case saga_outcome::compensated: return "compensated";
    case saga_outcome::failed: return "failed";
    case saga_outcome::waiting: return "waiting";
    case saga_outcome::stale: return "stale";
    }
    return "unknown settle::saga_outcome";
}

/// What saga_coordinator::run() did: true when the saga completed.
class [[nodiscard]] saga_result {
public:
    /// A result holding `outcome`.
    constexpr explicit saga_result(saga_outcome outcome) noexcept : outcome_(outcome) {}

    /// What happened.
    [[nodiscard]] constexpr saga_outcome outcome() const noexcept { return outcome_; }
    ///@{
    /// Whether outcome() is that one.
    [[nodiscard]] constexpr bool is_completed() const noexcept {
        return outcome_ == saga_outcome::completed;
    }
    [[nodiscard]] constexpr bool is_compensated() const noexcept {
        return outcome_ == saga_outcome::compensated;
    }
    [[nodiscard]] constexpr bool is_failed() const noexcept {
        return outcome_ == saga_outcome::failed;
    }
    [[nodiscard]] constexpr bool is_waiting() const noexcept {
        return outcome_ == saga_outcome::waiting;
    }
    [[nodiscard]] constexpr bool is_stale() const noexcept {
        return outcome_ == saga_outcome::stale;
    }
    ///@}
    /// True when the saga completed.
    constexpr explicit operator bool() const noexcept { return is_completed(); }

private:
    saga_outcome outcome_;
};

/// What one saga_coordinator::recover() did.
struct [[nodiscard]] saga_recover_result {
    std::size_t picked = 0;       ///< due sagas taken up
    std::size_t completed = 0;    ///< of those, run to their end
    std::size_t compensated = 0;  ///< of those, turned back and undone
    std::size_t failed = 0;       ///< of those, set aside: a compensation failed for good
    /// of those, due again later after a failed attempt (message-driven: a
    /// request sent again, or a compensation sent, its answer awaited)
    std::size_t waiting = 0;
    std::size_t stale = 0;  ///< taken by another coordinator meanwhile: left to it

    /// Equal when every count is.
    friend bool operator==(const saga_recover_result&, const saga_recover_result&) = default;
};

/// Which way a request of a message-driven saga goes. Exhaustive: switch on
/// it without a default.
enum class [[nodiscard]] saga_direction{
    action,        ///< do the step
    compensation,  ///< undo the step
};

[[nodiscard]] constexpr std::string_view to_string(saga_direction direction) noexcept {
    switch (direction) {
    case saga_direction::action: return "action";
    case saga_direction::compensation: return "compensation";
    }
    return "unknown settle::saga_direction";
}

/// A participant's answer to a request of a message-driven saga. Exhaustive:
/// switch on it without a default.
enum class [[nodiscard]] saga_answer{
    done,     ///< the step (or its compensation) took effect
    refused,  ///< it never will: the saga turns back (or, for a compensation, is failed)
};

[[nodiscard]] constexpr std::string_view to_string(saga_answer answer) noexcept {
    switch (answer) {
    case saga_answer::done: return "done";
    case saga_answer::refused: return "refused";
    }
    return "unknown settle::saga_answer";
}

/// What a message-driven saga_coordinator hands its send function: one
/// request to a participant, to append to the caller's outbox in the
/// transaction it is given. A request may be sent more than once (when no
/// answer came by its deadline), each time as a new attempt; a participant
/// applies it once per (id, step, direction) and answers a repeat with the
/// answer it gave.
struct saga_request {
    std::string_view id;       ///< the saga's id
    std::string_view data;     ///< the saga's input, as start() was given it
    std::uint32_t step;        ///< the step's index in the definition
    saga_direction direction;  ///< do the step, or undo it
    std::uint32_t attempt;     ///< 1 the first time this request is sent, then 2, 3...
    /// Greater than the token of every earlier request of the same saga
    /// (settle::fence).
    fencing_token token;
};

/// What saga_coordinator::reply() did with an answer. Exhaustive: switch on
/// it without a default.
enum class [[nodiscard]] saga_reply_outcome{
    accepted,     ///< it was the answer awaited: the saga moved on, and its next request is sent
    not_awaited,  ///< a duplicate, late or unknown answer: nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(saga_reply_outcome outcome) noexcept {
    switch (outcome) {
    case saga_reply_outcome::accepted: return "accepted";
    case saga_reply_outcome::not_awaited: return "not_awaited";
    }
    return "unknown settle::saga_reply_outcome";
}

/// What saga_coordinator::reply() answers: true when the answer was accepted.
class [[nodiscard]] saga_reply_result {
public:
    /// A result holding `outcome`.
    constexpr explicit saga_reply_result(saga_reply_outcome outcome) noexcept : outcome_(outcome) {}

    /// What happened.
    [[nodiscard]] constexpr saga_reply_outcome outcome() const noexcept { return outcome_; }
    ///@{
    /// Whether outcome() is that one.
    [[nodiscard]] constexpr bool is_accepted() const noexcept {
        return outcome_ == saga_reply_outcome::accepted;
    }
    [[nodiscard]] constexpr bool is_not_awaited() const noexcept {
        return outcome_ == saga_reply_outcome::not_awaited;
    }
    ///@}
    /// True when the answer was accepted.
    constexpr explicit operator bool() const noexcept { return is_accepted(); }

private:
    saga_reply_outcome outcome_;
};

/// How a saga_coordinator holds and recovers sagas.
struct saga_options {
    /// How long a coordinator holds a saga between two recovery points:
    /// longer than any one step or compensation takes, with its time-outs.
    /// Recovery takes up a saga whose holder has not written for this long.
    /// For a message-driven saga: how long a participant has to answer the
    /// first attempt of a request (later attempts add the ladder's wait).
    /// Positive.
    std::chrono::microseconds lease = std::chrono::seconds(30);
    /// Sagas taken up per recover(). At least 1.
    std::size_t batch_size = 16;
    /// How long completed and compensated sagas are kept before purge removes
    /// them. A saga's record is what makes start() once per id: a start that
    /// repeats after its saga was purged (a client sending its request again)
    /// runs the saga again. So keep records longer than any request can be
    /// repeated. The default, a week, also leaves an operator the recent sagas
    /// to read. Positive.
    std::chrono::microseconds retention = std::chrono::hours(24 * 7);
};

/// Runs and recovers the sagas of one definition. Holds references to the
/// store and the clock; as thread-safe as the store. Any number of
/// coordinators of one definition may run on one store, in any number of
/// processes: each write is a compare-and-set on the saga's version, and a
/// coordinator takes a saga up only when its holder's lease has run out, so
/// two never drive one saga at once while both are within their lease.
///
///     settle::saga_coordinator orders(sagas, {"place_order", {
///                                         {"reserve stock", reserve, release},
///                                         {"charge card", charge, refund}}},
///                                     settle::persisted_retry{settle::ladder{1s, 10s, 1min}, 4},
///                                     clock, {.lease = 30s});
///     settle::in_transaction(db, [&](auto& tx) {
///         order_rows.insert(tx, order);            // the business write
///         (void)orders.start(tx, order.id, bytes);  // commits with it
///     });
///     const settle::saga_result r = orders.run(order.id);
///     // elsewhere, on a schedule:
///     (void)orders.recover();
///
/// A step or compensation that throws is attempted again at the times
/// `attempts` gives (persisted_retry::next_attempt_at); recovery runs it when
/// due. A step whose attempts are spent turns the saga back: it and every step
/// before it are compensated, last first. A compensation whose attempts are
/// spent sets the saga aside as failed. An exception that a retry would only
/// repeat (a std::logic_error, settle::error with invalid_argument,
/// malformed_input or decode_failed: the rule of every settle retry) spends
/// the attempts at once. What the store throws propagates; the saga is left
/// at its last recovery point, and recovery takes it up once the lease ends.
///
/// Made with a send function instead, the coordinator calls no step: each
/// write that moves a saga also sends the request it then awaits, in the same
/// transaction (start(), reply(), recover()), and participants' answers move
/// it on through reply(). The states, the ladder and the turning back are the
/// same.
///
/// Store models settle::saga_store; purge() also needs
/// settle::purgeable_saga_store.
template <class Store, backoff Backoff, class Clock>
class saga_coordinator {
    static_assert(detail::check_saga_store<Store>());
    static_assert(wall_clock<Clock>,
                  "settle::saga_coordinator: the clock must be a settle::wall_clock "
                  "(system_clock time points): records persist wall-clock times");

public:
    using store_type = Store;                         ///< the saga_store it keeps sagas in
    using transaction = typename Store::transaction;  ///< the store's transaction
    /// What a message-driven coordinator sends its requests with: appends the
    /// request to the caller's outbox in the transaction given.
    using send_function = std::function<void(transaction&, const saga_request&)>;

    /// A coordinator that calls each step itself (run() and recover()).
    /// Throws settle::error (errc::invalid_argument) for an empty type, no
    /// steps, a step without an action or a compensation, a lease or a
    /// retention that is not positive, or a batch size of 0.
    saga_coordinator(Store& store, saga_definition definition, persisted_retry<Backoff> attempts,
                     Clock& clock, saga_options options)
        : saga_coordinator(store, std::move(definition), send_function{}, std::move(attempts),
                           clock, options) {}

    /// A message-driven coordinator: each step and compensation is a request
    /// that `send` appends to the caller's outbox, in the transaction that
    /// records it; the participant's answer comes back through reply(), and
    /// recover() sends a request again when no answer came by its deadline.
    /// The steps are names only. Throws settle::error
    /// (errc::invalid_argument) as the other constructor does, and for an
    /// empty `send` or a step with an action or a compensation.
    saga_coordinator(Store& store, saga_definition definition, send_function send,
                     persisted_retry<Backoff> attempts, Clock& clock, saga_options options)
        : store_(&store),
          definition_(std::move(definition)),
          send_(std::move(send)),
          attempts_(std::move(attempts)),
          clock_(&clock),
          options_(options) {
        if (definition_.type.empty()) {
            throw error(errc::invalid_argument, "saga_coordinator: the saga type is empty");
        }
        if (definition_.steps.empty()) {
            throw error(errc::invalid_argument, "saga_coordinator: the saga has no steps");
        }
        for (const saga_step& s : definition_.steps) {
            if (!send_ && (!s.action || !s.compensate)) {
                throw error(errc::invalid_argument, "saga_coordinator: step `" + s.name +
                                                        "` lacks an action or a compensation");
            }
            if (send_ && (s.action || s.compensate)) {
                throw error(errc::invalid_argument,
                            "saga_coordinator: step `" + s.name +
                                "` of a message-driven saga has an action or a compensation");
            }
        }
        if (options_.lease <= std::chrono::microseconds::zero()) {
            throw error(errc::invalid_argument, "saga_coordinator: the lease is not positive");
        }
        if (options_.batch_size == 0) {
            throw error(errc::invalid_argument, "saga_coordinator: the batch size is 0");
        }
        if (options_.retention <= std::chrono::microseconds::zero()) {
            throw error(errc::invalid_argument, "saga_coordinator: the retention is not positive");
        }
    }

    /// The saga it runs, as given.
    [[nodiscard]] const saga_definition& definition() const noexcept { return definition_; }
    /// The options it was made with.
    [[nodiscard]] const saga_options& options() const noexcept { return options_; }

    /// In the transaction of the business write the saga belongs to: records
    /// the saga, running from its first step, held by the caller for one
    /// lease (run() it after commit; if the caller dies first, recovery takes
    /// it up once the lease ends). A message-driven coordinator sends the
    /// first step's request in the same transaction instead, the lease its
    /// deadline. False, and no change, if `id` is kept already. An empty id
    /// throws settle::error (errc::invalid_argument).
    bool start(transaction& tx, std::string_view id, std::string_view data) {
        if (id.empty()) {
            throw error(errc::invalid_argument, "saga_coordinator::start: the saga id is empty");
        }
        if (!store_->create(tx, id, definition_.type, data, now() + options_.lease)) {
            return false;
        }
        if (send_) {
            send_(tx, saga_request{id, data, 0, saga_direction::action, 1,
                                   fencing_token(version_stamp::first().value())});
        }
        return true;
    }

    /// Drives the saga `id` as far as it goes now: to its end, or until an
    /// attempt fails and is due later (waiting). Stale if another coordinator
    /// holds it. A saga that ended answers how. An id that is not kept, or
    /// kept for another type, throws settle::error (errc::invalid_argument);
    /// so does a message-driven coordinator, whose sagas move on replies.
    saga_result run(std::string_view id) {
        if (send_) {
            throw error(errc::invalid_argument,
                        "saga_coordinator::run: a message-driven saga moves on reply()");
        }
        std::optional<saga_record> record;
        {
            transaction tx = store_->begin();
            record = store_->load(tx, id);
            tx.commit();
        }
        if (!record || record->type != definition_.type) {
            throw error(errc::invalid_argument, "saga_coordinator::run: no saga `" +
                                                    std::string(id) + "` of type `" +
                                                    definition_.type + "`");
        }
        return saga_result(drive(std::move(*record)));
    }

    /// Takes up at most batch_size sagas of this type that are due (their
    /// holder's lease ran out, or a failed attempt is due again), the
    /// earliest first, and drives each as run() does. A message-driven
    /// coordinator counts a due saga's request as a failed attempt, and in one
    /// transaction per saga sends it again, as the next attempt, with a
    /// deadline of the lease plus the ladder's wait (waiting); once the
    /// attempts are spent, turns the saga back and sends the compensation
    /// (waiting), or, for a compensation, sets the saga aside (failed).
    saga_recover_result recover() {
        std::vector<saga_record> batch;
        {
            transaction tx = store_->begin();
            batch = store_->due(tx, definition_.type, now(), options_.batch_size);
            tx.commit();
        }
        saga_recover_result result;
        for (saga_record& record : batch) {
            ++result.picked;
            switch (send_ ? resend(std::move(record)) : drive(std::move(record))) {
            case saga_outcome::completed: ++result.completed; break;
            case saga_outcome::compensated: ++result.compensated; break;
            case saga_outcome::failed: ++result.failed; break;
            case saga_outcome::waiting: ++result.waiting; break;
            case saga_outcome::stale: ++result.stale; break;
            }
        }
        return result;
    }

    /// In the transaction of the inbox that received a participant's answer
    /// (settle::idempotent_consumer): if the saga `id` awaits the answer to
    /// `step` in `direction`, records it with a compare-and-set on the saga's
    /// version and sends the next request in the same transaction. done moves
    /// the saga on (to the next step, or to the next compensation, or to its
    /// end); refused turns it back and sends this step's compensation (a
    /// refused compensation sets the saga aside as failed). A duplicate, late
    /// or unknown answer changes nothing: not_awaited. A concurrent write to
    /// the saga throws settle::error (errc::aborted), so that the transaction
    /// rolls back and the answer is received again; what the store throws
    /// propagates. Only on a message-driven coordinator: otherwise throws
    /// settle::error (errc::invalid_argument).
    saga_reply_result reply(transaction& tx, std::string_view id, std::uint32_t step,
                            saga_direction direction, saga_answer answer) {
        if (!send_) {
            throw error(errc::invalid_argument,
                        "saga_coordinator::reply: the coordinator runs its steps itself");
        }
        std::optional<saga_record> record = store_->load(tx, id);
        if (!record || record->type != definition_.type || is_ended(record->status) ||
            (record->status == saga_status::running) != (direction == saga_direction::action) ||
            current(*record) != step) {
            return saga_reply_result(saga_reply_outcome::not_awaited);
        }
        const stored_time at = now();
        if (answer == saga_answer::done) {
            succeeded(*record, at);
        } else {
            record->last_error = describe(definition_.steps[step], direction, "refused");
            gave_up(*record, at);
        }
        if (!write_and_send(tx, *record)) {
            throw error(errc::aborted, "saga_coordinator::reply: saga `" + std::string(id) +
                                           "` was written meanwhile");
        }
        return saga_reply_result(saga_reply_outcome::accepted);
    }

    /// Removes at most `limit` sagas that completed or were compensated longer
    /// than the retention ago; returns how many. Never a saga still running or
    /// compensating, and never one set aside as failed: an operator settles
    /// those. Call it on a schedule, in batches, until it returns less than
    /// the limit:
    ///
    ///     while (settle::in_transaction(sagas, [&](auto& tx) { return orders.purge(tx, 1000); })
    ///            == 1000) {}
    std::size_t purge(transaction& tx, std::size_t limit) {
        static_assert(detail::check_saga_purge<Store>());
        const stored_time at = now();
        const auto earliest = stored_time::min().time_since_epoch();
        const stored_time cut = at.time_since_epoch() < earliest + options_.retention
                                    ? stored_time::min()
                                    : at - options_.retention;
        // The store takes system_clock's time points, which reach less far
        // than stored_time's on some standard libraries.
        const stored_time lowest = std::chrono::ceil<std::chrono::microseconds>(
            std::chrono::system_clock::time_point::min());
        return store_->purge(tx, std::max(cut, lowest), limit);
    }

private:
    // Claims the saga with a compare-and-set that starts a lease, then runs
    // its steps or compensations one by one, each followed by a recovery
    // point that also renews the lease.
    saga_outcome drive(saga_record record) {
        if (const auto ended = ended_outcome(record.status)) {
            return *ended;
        }
        const stored_time at = now();
        if (record.version != version_stamp::first() && record.next_run_at > at) {
            return record.attempts > 0 ? saga_outcome::waiting : saga_outcome::stale;
        }
        record.next_run_at = at + options_.lease;
        if (!write(record)) {
            return saga_outcome::stale;
        }
        for (;;) {
            if (const auto ended = ended_outcome(record.status)) {
                return *ended;
            }
            const std::uint32_t index = current(record);
            const saga_direction direction = direction_of(record);
            const saga_step& step = definition_.steps[index];
            const saga_call call{record.id, record.data, index,
                                 fencing_token(record.version.value())};
            std::exception_ptr failure;
            try {
                std::invoke(direction == saga_direction::action ? step.action : step.compensate,
                            call);
            } catch (...) {
                failure = std::current_exception();
            }
            if (!failure) {
                succeeded(record, now());
                if (!write(record)) {
                    return saga_outcome::stale;
                }
                continue;
            }
            const stored_time failed_at = now();
            record.attempts += 1;
            record.last_error = describe(step, direction, failure);
            if (detail::default_exception_decision(failure) != retry_decision::stop) {
                if (const auto next = attempts_.next_attempt_at(
                        record.attempts, failed_at, detail::reconcile_seed(record.id))) {
                    record.next_run_at = *next;
                    return write(record) ? saga_outcome::waiting : saga_outcome::stale;
                }
            }
            gave_up(record, failed_at);
            if (!write(record)) {
                return saga_outcome::stale;
            }
        }
    }

    // A message-driven saga whose request got no answer by its deadline: the
    // attempt failed. Sends it again, or turns the saga back once the
    // attempts are spent, in one transaction.
    saga_outcome resend(saga_record record) {
        const std::uint32_t index = current(record);
        const stored_time at = now();
        record.attempts += 1;
        record.last_error =
            describe(definition_.steps[index], direction_of(record), "no answer by the deadline");
        if (const auto next =
                attempts_.next_attempt_at(record.attempts, at, detail::reconcile_seed(record.id))) {
            record.next_run_at = *next + options_.lease;
        } else {
            gave_up(record, at);
        }
        transaction tx = store_->begin();
        if (!write_and_send(tx, record)) {
            return saga_outcome::stale;
        }
        tx.commit();
        return ended_outcome(record.status).value_or(saga_outcome::waiting);
    }

    // The index of the step the saga is at: the next to run, or the next to
    // undo.
    [[nodiscard]] std::uint32_t current(const saga_record& record) const {
        const std::uint32_t count = static_cast<std::uint32_t>(definition_.steps.size());
        const std::uint32_t index =
            record.status == saga_status::running ? record.step : record.step - 1;
        if (index >= count) {
            throw error(errc::invalid_argument, "saga_coordinator: saga `" + record.id +
                                                    "` is at step " + std::to_string(record.step) +
                                                    "; its definition has " +
                                                    std::to_string(count) + " steps");
        }
        return index;
    }

    static saga_direction direction_of(const saga_record& record) noexcept {
        return record.status == saga_status::running ? saga_direction::action
                                                     : saga_direction::compensation;
    }

    // The saga once its current step or compensation took effect, written at
    // `at`: on to the next, or ended.
    void succeeded(saga_record& record, stored_time at) const {
        const std::uint32_t index = current(record);
        if (record.status == saga_status::running) {
            record.step = index + 1;
            record.status = record.step == definition_.steps.size() ? saga_status::completed
                                                                    : saga_status::running;
        } else {
            record.step = index;
            record.status = index == 0 ? saga_status::compensated : saga_status::compensating;
        }
        record.attempts = 0;
        record.next_run_at = lease_or_end(record.status, at);
    }

    // The saga once its current step or compensation failed for good, written
    // at `at`: a step turns it back (the failed step may have taken effect, a
    // lost answer, so it is compensated too); a compensation sets it aside.
    void gave_up(saga_record& record, stored_time at) const {
        const std::uint32_t index = current(record);
        if (record.status == saga_status::running) {
            record.status = saga_status::compensating;
            record.step = index + 1;
        } else {
            record.status = saga_status::failed;
        }
        record.attempts = 0;
        record.next_run_at = lease_or_end(record.status, at);
    }

    // A message-driven saga's write: the compare-and-set, and in the same
    // transaction the request the saga now awaits an answer to.
    bool write_and_send(transaction& tx, saga_record& record) {
        if (store_->update(tx, record) != fenced_write::applied) {
            return false;
        }
        record.version = record.version.next();
        if (!is_ended(record.status)) {
            send_(tx, saga_request{record.id, record.data, current(record), direction_of(record),
                                   record.attempts + 1, fencing_token(record.version.value())});
        }
        return true;
    }

    // The compare-and-set at a recovery point; on success, record carries
    // the version it now has.
    bool write(saga_record& record) {
        transaction tx = store_->begin();
        if (store_->update(tx, record) != fenced_write::applied) {
            return false;
        }
        tx.commit();
        record.version = record.version.next();
        return true;
    }

    // The next run of a saga written at `at`: the end of the lease while it
    // goes on; once it ended, when it ended (what purge counts from).
    [[nodiscard]] stored_time lease_or_end(saga_status status, stored_time at) const {
        return is_ended(status) ? at : at + options_.lease;
    }

    static std::optional<saga_outcome> ended_outcome(saga_status status) noexcept {
        switch (status) {
        case saga_status::running:
        case saga_status::compensating: return std::nullopt;
        case saga_status::completed: return saga_outcome::completed;
        case saga_status::compensated: return saga_outcome::compensated;
        case saga_status::failed: return saga_outcome::failed;
        }
        return std::nullopt;
    }

    static std::string describe(const saga_step& step, saga_direction direction,
                                std::string_view what) {
        return (direction == saga_direction::action ? "step `" : "compensation of `") + step.name +
               "`: " + std::string(what);
    }

    static std::string describe(const saga_step& step, saga_direction direction,
                                const std::exception_ptr& failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            return describe(step, direction, e.what());
        } catch (...) {
            return describe(step, direction, "an exception not derived from std::exception");
        }
    }

    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    Store* store_;
    saga_definition definition_;
    send_function send_;  // empty: the coordinator calls the steps itself
    persisted_retry<Backoff> attempts_;
    Clock* clock_;
    saga_options options_;
};

template <class Store, class Backoff, class Clock>
saga_coordinator(Store&, saga_definition, persisted_retry<Backoff>, Clock&, saga_options)
    -> saga_coordinator<Store, Backoff, Clock>;

template <class Store, class Send, class Backoff, class Clock>
saga_coordinator(Store&, saga_definition, Send, persisted_retry<Backoff>, Clock&, saga_options)
    -> saga_coordinator<Store, Backoff, Clock>;

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_SAGA_COORDINATOR_HPP
