// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_SIMULATION_HPP
#define SETTLE_TESTING_SIMULATION_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/transaction.hpp>
#include <settle/uuid.hpp>

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// A deterministic, fault-injecting simulation for your own handlers: a
// message consumer, an idempotent request handler, an outbox publisher. It
// runs seeded schedules against your handler, over your own store, with
// duplicates, reordering, delays, a second worker, a lease that ends
// mid-operation, crashes around the commit, storage faults and a failing
// broker, and checks what settle promises (each message's effect committed
// exactly once, each request answered, each committed message published)
// and your own invariants. A failing schedule is shrunk to a short one and
// reported as a timeline with the seed that replays it. Dependency-free;
// starts no threads; reads no real time.

SETTLE_BEGIN_NAMESPACE

namespace testing {

// ---------------------------------------------------------------------------
// Fault points

/// What a schedule can do to a consumer. Exhaustive: switch on it without a default.
enum class [[nodiscard]] fault_point{
    duplicate,            ///< a message delivered again after it was acknowledged
    reorder,              ///< a message delivered while an earlier one waits unacknowledged
    delay,                ///< the clock moves on between deliveries
    second_worker,        ///< a second worker gets the same message or request while the first
                          ///< holds it (consumer: after the first committed, before it
                          ///< acknowledged; requests: between the first's transactions)
    lease_expiry,         ///< requests: the first worker's lease ends between its transactions
                          ///< and a second worker takes the key over
    crash_before_commit,  ///< the worker dies after the handler ran, before its commit
    crash_after_commit,   ///< the worker dies after its commit, before its acknowledgement
    transient_failure,    ///< the store refuses the commit (errc::aborted) and keeps nothing
    commit_unknown,       ///< the commit throws errc::unavailable; it took effect, or it did not
    publish_failure,      ///< relay: the broker is unreachable, or takes the message and its
                          ///< answer is lost
};

inline constexpr std::array<fault_point, 10> all_fault_points{
    fault_point::duplicate,
    fault_point::reorder,
    fault_point::delay,
    fault_point::second_worker,
    fault_point::lease_expiry,
    fault_point::crash_before_commit,
    fault_point::crash_after_commit,
    fault_point::transient_failure,
    fault_point::commit_unknown,
    fault_point::publish_failure,
};

[[nodiscard]] constexpr std::string_view to_string(fault_point point) noexcept {
    switch (point) {
    case fault_point::duplicate: return "duplicate";
    case fault_point::reorder: return "reorder";
    case fault_point::delay: return "delay";
    case fault_point::second_worker: return "second_worker";
    case fault_point::lease_expiry: return "lease_expiry";
    case fault_point::crash_before_commit: return "crash_before_commit";
    case fault_point::crash_after_commit: return "crash_after_commit";
    case fault_point::transient_failure: return "transient_failure";
    case fault_point::commit_unknown: return "commit_unknown";
    case fault_point::publish_failure: return "publish_failure";
    }
    return "unknown settle::testing::fault_point";
}

// ---------------------------------------------------------------------------
// A store that fails on request

/// How the next commit of a faulty_store fails.
enum class commit_failure {
    crash_before,  ///< the process dies before the commit: nothing kept (throws simulated_crash)
    crash_after,   ///< the process dies right after the commit: all kept (throws simulated_crash)
    aborted,       ///< the store gives the transaction up: nothing kept (settle::error, aborted)
    unknown_kept,  ///< the answer is lost after the commit: all kept (settle::error, unavailable)
    unknown_lost,  ///< the answer is lost before the commit: nothing kept (settle::error,
                   ///< unavailable)
};

/// What a simulated crash throws: not a std::exception, so that code which
/// handles errors (catch (const std::exception&)) does not survive a crash it
/// could not survive in production. Code that swallows everything
/// (catch (...)) does, and the simulation then reports what that breaks.
struct simulated_crash {};

/// Wraps a store and models the same concepts (settle::transactional, and
/// settle::inbox_store, settle::idempotency_store, settle::outbox_appender and
/// settle::outbox_store when the wrapped one does), forwarding every operation; a commit fails, or
/// a begin() is preceded by your callback, once, when asked. Its transaction holds the wrapped
/// store's transaction and converts to it, so that your own writes join it. Holds a reference to
/// the store; single-threaded.
template <transactional Store>
class faulty_store {
public:
    /// The wrapped store's transaction, whose commit fails when a fault is planned for it.
    class transaction {
    public:
        transaction(const transaction&) = delete;
        transaction& operator=(const transaction&) = delete;
        ~transaction() = default;

        /// Commits the wrapped transaction, or fails as the store was asked to.
        void commit() {
            std::optional<commit_failure> failure;
            if (store_->next_ && store_->commits_to_skip_-- == 0) {
                failure = std::exchange(store_->next_, {});
            }
            if (!failure) {
                inner_.commit();
                store_->committed(*this);
                return;
            }
            store_->failed_ = failure;
            switch (*failure) {
            case commit_failure::crash_before: throw simulated_crash{};
            case commit_failure::crash_after:
                inner_.commit();
                store_->committed(*this);
                throw simulated_crash{};
            case commit_failure::aborted:
                throw error(errc::aborted, "simulated: the store gave the transaction up");
            case commit_failure::unknown_kept:
                inner_.commit();
                store_->committed(*this);
                throw error(errc::unavailable,
                            "simulated: the connection was lost after the commit");
            case commit_failure::unknown_lost:
                throw error(errc::unavailable,
                            "simulated: the connection was lost before the commit");
            }
        }

        /// The wrapped store's transaction, for your own reads and writes.
        [[nodiscard]] typename Store::transaction& inner() noexcept { return inner_; }
        /// The wrapped store's transaction.
        operator typename Store::transaction &() noexcept { return inner_; }

        /// Names what this transaction applied, so that the store can count
        /// what committed (committed_count).
        void note_applied(std::string what) { applied_.push_back(std::move(what)); }

    private:
        friend class faulty_store;
        explicit transaction(faulty_store& store) : store_(&store), inner_(store.store_->begin()) {}

        faulty_store* store_;
        typename Store::transaction inner_;
        std::vector<std::string> applied_;
    };

    ///@{
    /// A store wrapping the given one; its operations are the wrapped store's, each one a point
    /// where a planned fault may strike.
    explicit faulty_store(Store& store) noexcept : store_(&store) {}

    [[nodiscard]] transaction begin() {
        if (interrupt_ && begins_to_skip_-- == 0) {
            std::exchange(interrupt_, {})();
        }
        return transaction(*this);
    }

    [[nodiscard]] inbox_mark mark(transaction& tx, std::string_view consumer,
                                  std::string_view message_id,
                                  stored_time now) requires inbox_store<Store> {
        return store_->mark(tx.inner(), consumer, message_id, now);
    }
    ///@}

    /// Forwards, and remembers the token of every claim taken, so that the
    /// simulation can check that tokens only increase.
    [[nodiscard]] idempotency_store_claim claim(
        transaction& tx, const idempotency_scope& scope, const idempotency_key& key,
        const sha256_digest& fingerprint, stored_time now,
        stored_time lease_end) requires idempotency_store<Store> {
        idempotency_store_claim found =
            store_->claim(tx.inner(), scope, key, fingerprint, now, lease_end);
        if (found.claimed) {
            std::string id = scope.tenant;
            id += '\n';
            id += scope.operation;
            id += '\n';
            id += key.value();
            auto [last, first] = tokens_.try_emplace(std::move(id), found.record.token);
            if (!first) {
                if (!(last->second < found.record.token)) {
                    ++token_regressions_;
                }
                last->second = found.record.token;
            }
        }
        return found;
    }
    ///@{
    /// The wrapped store's operations, each one a point where a planned fault may strike.
    [[nodiscard]] fenced_write complete(
        transaction& tx, const idempotency_scope& scope, const idempotency_key& key,
        fencing_token token, idempotency_response response,
        stored_time retain_until) requires idempotency_store<Store> {
        return store_->complete(tx.inner(), scope, key, token, std::move(response), retain_until);
    }
    [[nodiscard]] fenced_write abandon(transaction& tx, const idempotency_scope& scope,
                                       const idempotency_key& key,
                                       fencing_token token) requires idempotency_store<Store> {
        return store_->abandon(tx.inner(), scope, key, token);
    }

    [[nodiscard]] outbox_append_result append(transaction& tx, outbox_message message,
                                              stored_time now) requires outbox_appender<Store> {
        return store_->append(tx.inner(), std::move(message), now);
    }
    [[nodiscard]] std::vector<outbox_record> claim(transaction& tx, std::string_view owner,
                                                   stored_time now, stored_time lease_until,
                                                   std::size_t limit) requires outbox_store<Store> {
        return store_->claim(tx.inner(), owner, now, lease_until, limit);
    }
    [[nodiscard]] fenced_write mark_delivered(transaction& tx, const uuid& id, fencing_token token,
                                              stored_time now) requires outbox_store<Store> {
        return store_->mark_delivered(tx.inner(), id, token, now);
    }
    [[nodiscard]] fenced_write reschedule(
        transaction& tx, const uuid& id, fencing_token token, std::string_view why,
        stored_time next_attempt_at) requires outbox_store<Store> {
        return store_->reschedule(tx.inner(), id, token, why, next_attempt_at);
    }
    [[nodiscard]] fenced_write dead_letter(transaction& tx, const uuid& id, fencing_token token,
                                           std::string_view reason,
                                           stored_time now) requires outbox_store<Store> {
        return store_->dead_letter(tx.inner(), id, token, reason, now);
    }
    [[nodiscard]] fenced_write release(transaction& tx, const uuid& id,
                                       fencing_token token) requires outbox_store<Store> {
        return store_->release(tx.inner(), id, token);
    }
    ///@}

    /// The commit after `after` more successful ones fails this way (none:
    /// no commit fails); later ones succeed.
    void fail_commit(std::optional<commit_failure> failure, std::size_t after = 0) noexcept {
        next_ = failure;
        commits_to_skip_ = after;
    }
    /// Runs fn before the begin() after `after` more, once (an empty fn: none).
    void interrupt_begin(std::function<void()> fn, std::size_t after = 0) noexcept {
        interrupt_ = std::move(fn);
        begins_to_skip_ = after;
    }
    /// How the last failed commit failed, and forgets it.
    [[nodiscard]] std::optional<commit_failure> take_failure() noexcept {
        return std::exchange(failed_, {});
    }
    /// How many committed transactions noted `what` as applied.
    [[nodiscard]] std::size_t committed_count(const std::string& what) const {
        const auto it = committed_.find(what);
        return it == committed_.end() ? 0 : it->second;
    }
    /// How many claims were given a token not greater than the last one of their key.
    [[nodiscard]] std::size_t token_regressions() const noexcept { return token_regressions_; }

private:
    void committed(const transaction& tx) {
        for (const std::string& what : tx.applied_) {
            ++committed_[what];
        }
    }

    Store* store_;
    std::optional<commit_failure> next_;
    std::size_t commits_to_skip_ = 0;
    std::optional<commit_failure> failed_;
    std::function<void()> interrupt_;
    std::size_t begins_to_skip_ = 0;
    std::map<std::string, std::size_t, std::less<>> committed_;
    std::map<std::string, fencing_token, std::less<>> tokens_;
    std::size_t token_regressions_ = 0;
};

// ---------------------------------------------------------------------------
// Messages

/// One message of a schedule: ids m1, m2, ... in the order they were sent,
/// keys k0, k1, ..., and a payload from your system's payload() (by default a
/// number from 1 to 100, as text).
struct message {
    ///@{
    /// The message's id, its key and its payload.
    std::string id;
    std::string key;
    std::string payload;
    ///@}
};

/// A message as a worker receives it. ack() acknowledges it at once; without
/// it the simulation acknowledges it after the handler's transaction commits,
/// as a consumer should. Calling ack() from a handler models a consumer that
/// acknowledges before it commits.
class delivery : public message {
public:
    ///@{
    /// A delivery of the message; ack() acknowledges it.
    delivery(const message& m, bool& acked) : message(m), acked_(&acked) {}
    void ack() const noexcept { *acked_ = true; }
    ///@}

private:
    bool* acked_;
};

/// What a relay's publisher sends to in simulate_relay: a broker that takes
/// messages, or, when the schedule says so, is unreachable (nothing taken) or
/// takes a message and loses its answer. Either way send() throws
/// settle::error (errc::unavailable), as a broker client does.
class broker {
public:
    /// Takes the record, or fails as the schedule says.
    void send(const outbox_record& record) {
        const std::optional<bool> fault = std::exchange(fault_, {});
        if (fault) {
            failed_ = true;
        }
        if (fault && !*fault) {
            throw error(errc::unavailable, "simulated: the broker is unreachable");
        }
        ++received_[record.id];
        if (fault) {
            throw error(errc::unavailable, "simulated: the broker's answer was lost");
        }
    }

    /// How many times the broker took the record with this id.
    [[nodiscard]] std::size_t received(const uuid& id) const {
        const auto it = received_.find(id);
        return it == received_.end() ? 0 : it->second;
    }

    /// The next send() fails: taken (true) or not (false); none: it succeeds.
    void fail_next_send(std::optional<bool> taken) noexcept { fault_ = taken; }
    /// Whether a send() failed since the last call, and forgets it.
    [[nodiscard]] bool take_failure() noexcept { return std::exchange(failed_, false); }

private:
    std::map<uuid, std::size_t> received_;
    std::optional<bool> fault_;
    bool failed_ = false;
};

// ---------------------------------------------------------------------------
// Options and report

/// What simulate runs: how many seeds, keys and steps.
struct simulation_options {
    /// Schedules first_seed, first_seed + 1, ...: a seed replays its schedule exactly.
    std::uint64_t first_seed = 1;
    ///@{
    /// The number of seeds, keys per run and steps per run.
    std::size_t seeds = 1000;
    /// Per schedule: messages sent, distinct keys among them, and steps
    /// (deliveries and delays) before every message left is delivered once
    /// more without faults.
    std::size_t messages = 6;
    std::size_t keys = 3;
    std::size_t steps = 24;
    ///@}
    /// The fault points to inject; empty: every one the simulation can inject
    /// (simulate_consumer: all but lease_expiry). The run fails if one of them
    /// never happened.
    std::vector<fault_point> faults{};
};

/// The first failing schedule, shrunk: the seed that replays it (unshrunk),
/// what failed, and the shrunk schedule as a readable timeline, one line per event.
struct simulation_failure {
    ///@{
    /// The seed that failed, what failed, and the timeline of its run.
    std::uint64_t seed = 0;
    std::string what;
    std::size_t steps = 0;           ///< steps of the shrunk schedule
    std::size_t original_steps = 0;  ///< steps of the schedule as the seed made it
    std::vector<std::string> timeline;
    ///@}
};

/// What a run found. True when every schedule passed and every requested
/// fault point was reached.
class [[nodiscard]] simulation_report {
public:
    ///@{
    /// passed() (and operator bool): nothing failed and every requested fault point was reached;
    /// how often each fault point was reached; the first failure.
    [[nodiscard]] bool passed() const noexcept { return !failure && missed.empty(); }
    explicit operator bool() const noexcept { return passed(); }

    /// How often a fault point was reached, over every schedule run.
    [[nodiscard]] std::size_t reached(fault_point point) const noexcept {
        return coverage[static_cast<std::size_t>(point)];
    }

    std::size_t schedules = 0;   ///< run, up to and including the first that failed
    std::size_t deliveries = 0;  ///< messages delivered, requests sent, or appends made
    std::array<std::size_t, all_fault_points.size()> coverage{};
    std::vector<fault_point> missed;  ///< requested but never reached
    std::optional<simulation_failure> failure;
    ///@}
};

namespace detail {

// Joins text; what `"a" + std::string` does, without the copy that GCC 12
// wrongly warns about at -O2 (-Wrestrict).
template <class... Parts>
[[nodiscard]] std::string cat(const Parts&... parts) {
    std::string out;
    (out.append(std::string_view(parts)), ...);
    return out;
}

}  // namespace detail

/// The report for a log or a test failure message, several lines.
[[nodiscard]] inline std::string to_string(const simulation_report& report) {
    std::string out = detail::cat("settle simulation: ", std::to_string(report.schedules),
                                  " schedules, ", std::to_string(report.deliveries),
                                  " deliveries: ", report.passed() ? "passed" : "FAILED",
                                  "\nfault points reached:");
    for (const fault_point point : all_fault_points) {
        if (report.reached(point) == 0) {
            continue;  // not requested, or listed below as never reached
        }
        out += " ";
        out += to_string(point);
        out += "=";
        out += std::to_string(report.reached(point));
    }
    out += "\n";
    for (const fault_point point : report.missed) {
        out += "requested but never reached: ";
        out += to_string(point);
        out += "\n";
    }
    if (report.failure) {
        const simulation_failure& f = *report.failure;
        out +=
            detail::cat("seed ", std::to_string(f.seed), ": ", f.what, "\nshrunk from ",
                        std::to_string(f.original_steps), " steps to ", std::to_string(f.steps),
                        "; replay with {.first_seed = ", std::to_string(f.seed), ", .seeds = 1}\n");
        for (const std::string& line : f.timeline) {
            out += detail::cat("  ", line, "\n");
        }
    }
    return out;
}

// ---------------------------------------------------------------------------
// Your system

// What simulate_consumer runs, built fresh for every schedule by your
// factory: your store, your handler as written for production, and your
// invariants.
//
//   s.store()                  -> Store&, a settle::inbox_store (your tables share its
//                                 transactions)
//   s.handle(delivery, tx)     applies one message in tx (a Store::transaction&); it is run
//                              through settle::idempotent_consumer, as in production
//   s.check(tx, messages)      -> bool: your invariants hold after every message sent
//                              (std::span<const message>) was applied exactly once
//   s.payload(random)          optional: the payload of a new message, from a random
//                              std::uint64_t
namespace detail {

template <class S>
using system_store = std::remove_cvref_t<decltype(std::declval<S&>().store())>;

template <class S>
concept has_store = requires(S& s) {
    s.store();
};

template <class S>
concept has_handle = requires(S& s, const delivery& d, typename system_store<S>::transaction& tx) {
    s.handle(d, tx);
};

template <class S>
concept has_check = requires(S& s, typename system_store<S>::transaction& tx,
                             std::span<const message> sent) {
    { s.check(tx, sent) } -> std::convertible_to<bool>;
};

template <class S>
concept has_payload = requires(S& s, std::uint64_t random) {
    { s.payload(random) } -> std::convertible_to<std::string>;
};

template <class S>
using system_guard = idempotency_guard<faulty_store<system_store<S>>, manual_clock>;

template <class S>
concept has_request_handle = requires(S& s, const message& request, system_guard<S>& guard,
                                      faulty_store<system_store<S>>& store) {
    { s.handle(request, guard, store) } -> std::convertible_to<bool>;
};

template <class S>
concept has_publish = requires(S& s, const outbox_record& record, broker& to) {
    { s.publish(record, to) } -> std::same_as<publish_result>;
};

}  // namespace detail

template <class S>
concept consumer_system = detail::has_store<S> && inbox_store<detail::system_store<S>> &&
    detail::has_handle<S> && detail::has_check<S>;

/// What simulate_requests runs, built fresh for every schedule by your
/// factory:
///
///   s.store()                      -> Store&, a settle::idempotency_store
///   s.handle(request, guard, store) -> bool: your request handler as written for
///                                  production, given a settle::idempotency_guard over
///                                  `store` (a faulty_store<Store>, whose transactions
///                                  convert to Store::transaction&); true when the client
///                                  has its answer, false when it should retry later
///   s.check(tx, requests)          -> bool: your invariants hold after every request
///                                  (std::span<const message>) was answered
///   s.payload(random)              optional, as for a consumer
/// What simulate_relay runs, built fresh for every schedule by your factory:
///
///   s.store()                  -> Store&, a settle::outbox_store and settle::outbox_appender
///   s.publish(record, broker)  -> settle::publish_result: your publisher as written for
///                                 production, sending to the simulated broker
///   s.payload(random)          optional, as for a consumer
template <class S>
concept relay_system = detail::has_store<S> && outbox_store<detail::system_store<S>> &&
    outbox_appender<detail::system_store<S>> && detail::has_publish<S>;

template <class S>
concept request_system = detail::has_store<S> && idempotency_store<detail::system_store<S>> &&
    detail::has_request_handle<S> && detail::has_check<S>;

namespace detail {

// splitmix64: small, fast, and the same on every platform.
class random {
public:
    explicit random(std::uint64_t seed) noexcept : state_(seed) {}
    std::uint64_t operator()() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31U);
    }
    std::size_t below(std::size_t n) noexcept {
        return n == 0 ? 0 : static_cast<std::size_t>((*this)() % n);
    }

private:
    std::uint64_t state_;
};

enum class action { deliver_next, deliver_later, redeliver, delay };

// One step of a schedule. Which message a delivery takes is resolved when the
// step runs (`pick` among the messages waiting, or among those acknowledged),
// so that a schedule with steps removed still makes sense.
enum class interleave { none, second_worker, lease_expiry };

struct step {
    action what = action::deliver_next;
    std::size_t pick = 0;  // deliver_later, redeliver: which; delay: milliseconds
    std::optional<commit_failure> failure;
    std::size_t commit = 0;  // which of the worker's commits fails (requests: 0 or 1)
    interleave meanwhile = interleave::none;
    std::optional<bool> broker_fault;  // relay: the broker fails, the message taken or not
};

struct schedule {
    std::vector<message> messages;
    std::vector<step> steps;
};

// What one schedule did.
struct schedule_result {
    std::optional<std::string> failure;
    std::size_t deliveries = 0;
    std::array<std::size_t, all_fault_points.size()> coverage{};
};

[[nodiscard]] inline bool requested(const std::vector<fault_point>& faults, fault_point point) {
    for (const fault_point p : faults) {
        if (p == point) {
            return true;
        }
    }
    return false;
}

// The messages and steps a seed makes.
template <class System>
[[nodiscard]] schedule make_schedule(std::uint64_t seed, const simulation_options& options,
                                     const std::vector<fault_point>& faults,
                                     std::string_view prefix, System& system) {
    random r(seed);
    schedule out;
    for (std::size_t i = 0; i < options.messages; ++i) {
        message m{cat(prefix, std::to_string(i + 1)),
                  cat("k", std::to_string(r.below(options.keys))),
                  {}};
        if constexpr (has_payload<System>) {
            m.payload = system.payload(r());
        } else {
            m.payload = std::to_string(1 + r.below(100));
        }
        out.messages.push_back(std::move(m));
    }
    std::vector<commit_failure> failures;
    if (requested(faults, fault_point::crash_before_commit)) {
        failures.push_back(commit_failure::crash_before);
    }
    if (requested(faults, fault_point::crash_after_commit)) {
        failures.push_back(commit_failure::crash_after);
    }
    if (requested(faults, fault_point::transient_failure)) {
        failures.push_back(commit_failure::aborted);
    }
    if (requested(faults, fault_point::commit_unknown)) {
        failures.push_back(commit_failure::unknown_kept);
        failures.push_back(commit_failure::unknown_lost);
    }
    const bool delays = requested(faults, fault_point::delay);
    const bool reorders = requested(faults, fault_point::reorder);
    const bool duplicates = requested(faults, fault_point::duplicate);
    const bool second_workers = requested(faults, fault_point::second_worker);
    const bool lease_expiries = requested(faults, fault_point::lease_expiry);
    const bool publish_failures = requested(faults, fault_point::publish_failure);
    for (std::size_t i = 0; i < options.steps; ++i) {
        step s;
        const std::size_t roll = r.below(20);
        s.pick = static_cast<std::size_t>(r() >> 1U);
        if (delays && roll < 2) {
            s.what = action::delay;
            s.pick = 1 + s.pick % 2000;
        } else {
            s.what = roll < 13                  ? action::deliver_next
                     : roll < 16 && reorders    ? action::deliver_later
                     : roll >= 16 && duplicates ? action::redeliver
                                                : action::deliver_next;
            const std::size_t fault = r.below(16);
            if (fault < 8 && !failures.empty()) {
                s.failure = failures[fault % failures.size()];
                s.commit = (s.pick >> 20U) % 2;
            } else if (fault == 8 && second_workers) {
                s.meanwhile = interleave::second_worker;
            } else if (fault == 9 && lease_expiries) {
                s.meanwhile = interleave::lease_expiry;
            }
            if (publish_failures && (s.pick >> 24U) % 4 < 2) {
                s.broker_fault = (s.pick >> 24U) % 4 == 1;
            }
        }
        out.steps.push_back(s);
    }
    return out;
}

[[nodiscard]] constexpr fault_point point_of(commit_failure failure) noexcept {
    switch (failure) {
    case commit_failure::crash_before: return fault_point::crash_before_commit;
    case commit_failure::crash_after: return fault_point::crash_after_commit;
    case commit_failure::aborted: return fault_point::transient_failure;
    case commit_failure::unknown_kept:
    case commit_failure::unknown_lost: return fault_point::commit_unknown;
    }
    return fault_point::commit_unknown;
}

[[nodiscard]] constexpr std::string_view describe(commit_failure failure) noexcept {
    switch (failure) {
    case commit_failure::crash_before: return "the worker crashed before its commit";
    case commit_failure::crash_after:
        return "the worker crashed after its commit, before acknowledging";
    case commit_failure::aborted: return "the commit failed (aborted), nothing kept";
    case commit_failure::unknown_kept:
        return "the commit's answer was lost (unavailable); it had taken effect";
    case commit_failure::unknown_lost:
        return "the commit's answer was lost (unavailable); it had not taken effect";
    }
    return "unknown settle::testing::commit_failure";
}

[[nodiscard]] inline std::string exception_text(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

// Runs one schedule against a fresh system; with `timeline`, writes down
// every event.
template <class System>
[[nodiscard]] schedule_result run_consumer_schedule(System& system, const schedule& plan,
                                                    std::vector<std::string>* timeline) {
    auto& store = system.store();
    using store_type = std::remove_reference_t<decltype(store)>;
    faulty_store<store_type> faulty(store);
    manual_clock clock{std::chrono::sys_days(std::chrono::year(2026) / 1 / 1)};
    idempotent_consumer consumer(faulty, clock, {.consumer = "simulation"});
    const std::vector<message>& sent = plan.messages;
    std::vector<bool> acked(sent.size(), false);
    schedule_result out;
    auto note = [&](fault_point point) { ++out.coverage[static_cast<std::size_t>(point)]; };
    auto trace = [&](std::string line) {
        if (timeline) {
            timeline->push_back(cat(std::to_string(timeline->size() + 1), ". ", line));
        }
    };

    // One delivery of sent[i] to a worker; returns a failure, if the handler
    // threw something other than a simulated fault.
    auto deliver = [&](auto& self, std::size_t i, std::optional<commit_failure> failure,
                       interleave meanwhile, std::string_view who) -> std::optional<std::string> {
        ++out.deliveries;
        std::string line;
        if (timeline) {
            line = cat(who, "deliver ", sent[i].id, " (key ", sent[i].key, ", payload ",
                       sent[i].payload, ")");
        }
        if (acked[i]) {
            note(fault_point::duplicate);
            line += timeline ? " again, after its acknowledgement" : "";
        } else {
            for (std::size_t j = 0; j < i; ++j) {
                if (!acked[j]) {
                    note(fault_point::reorder);
                    line += timeline ? cat(" ahead of ", sent[j].id) : "";
                    break;
                }
            }
        }
        bool ack = false;
        const delivery d(sent[i], ack);
        bool early = false;
        faulty.fail_commit(failure);
        bool applied = false;
        std::optional<std::string> nested;
        try {
            const inbox_result r =
                consumer.consume(d.id, [&](typename faulty_store<store_type>::transaction& tx) {
                    applied = true;
                    tx.note_applied(d.id);
                    system.handle(d, tx.inner());
                });
            faulty.fail_commit(std::nullopt);
            early = ack;
            if (timeline) {
                line += r.is_applied() ? ": applied and committed" : ": a duplicate, skipped";
            }
            if (meanwhile == interleave::second_worker && r.is_applied()) {
                note(fault_point::second_worker);
                trace(cat(line, "; before it is acknowledged, a second worker gets it:"));
                line.clear();
                nested = self(self, i, std::nullopt, interleave::none, "   second worker: ");
            }
            ack = true;
        } catch (...) {
            const std::exception_ptr e = std::current_exception();
            faulty.fail_commit(std::nullopt);
            const std::optional<commit_failure> injected = faulty.take_failure();
            if (!injected) {
                return cat("delivering ", sent[i].id, ", the handler threw: ", exception_text(e));
            }
            note(point_of(*injected));
            early = ack;
            if (timeline) {
                line += applied ? ": the handler ran; " : ": ";
                line += describe(*injected);
            }
        }
        if (timeline) {
            if (line.empty()) {
                line = "first worker";
            }
            line += early ? "; the handler had acknowledged it"
                    : ack ? "; acknowledged"
                          : "; not acknowledged, so delivered again later";
            trace(std::move(line));
        }
        acked[i] = acked[i] || ack;
        return nested;
    };

    auto waiting = [&] {
        std::vector<std::size_t> out_indices;
        for (std::size_t i = 0; i < sent.size(); ++i) {
            if (!acked[i]) {
                out_indices.push_back(i);
            }
        }
        return out_indices;
    };

    for (const step& s : plan.steps) {
        std::optional<std::size_t> target;
        switch (s.what) {
        case action::delay:
            note(fault_point::delay);
            clock.advance(std::chrono::milliseconds(s.pick));
            trace(cat("the clock moves ", std::to_string(s.pick), " ms on"));
            continue;
        case action::deliver_next:
        case action::deliver_later: {
            const std::vector<std::size_t> w = waiting();
            if (!w.empty()) {
                constexpr std::size_t window = 3;
                target = s.what == action::deliver_next
                             ? w.front()
                             : w[s.pick % (w.size() < window ? w.size() : window)];
            }
            break;
        }
        case action::redeliver: {
            std::vector<std::size_t> done;
            for (std::size_t i = 0; i < sent.size(); ++i) {
                if (acked[i]) {
                    done.push_back(i);
                }
            }
            if (!done.empty()) {
                target = done[s.pick % done.size()];
            }
            break;
        }
        }
        if (target) {
            if (auto failed = deliver(deliver, *target, s.failure, s.meanwhile, "")) {
                out.failure = std::move(failed);
                return out;
            }
        }
    }

    // Every message still waiting is delivered again, without faults, as a
    // broker redelivers until it is acknowledged.
    trace(waiting().empty() ? "no message is left waiting"
                            : "every message still waiting is delivered again, without faults:");
    for (std::size_t round = 0; round <= sent.size(); ++round) {
        const std::vector<std::size_t> w = waiting();
        if (w.empty()) {
            break;
        }
        if (auto failed = deliver(deliver, w.front(), std::nullopt, interleave::none, "")) {
            out.failure = std::move(failed);
            return out;
        }
    }
    if (const std::vector<std::size_t> w = waiting(); !w.empty()) {
        out.failure = cat(sent[w.front()].id, " was never acknowledged");
        return out;
    }
    for (const message& m : sent) {
        const std::size_t count = faulty.committed_count(m.id);
        if (count == 0) {
            out.failure = cat(m.id, " was acknowledged but its effect never committed: lost");
            return out;
        }
        if (count > 1) {
            out.failure = cat(m.id, "'s effect committed ", std::to_string(count), " times");
            return out;
        }
    }
    auto tx = store.begin();
    if (!static_cast<bool>(system.check(tx, std::span<const message>(sent)))) {
        out.failure = "check() returned false after every message's effect committed once";
    }
    return out;
}

// Removes steps, messages and faults from a failing schedule while it still
// fails (run(system, plan, nullptr) on a fresh system); a bounded number of runs.
template <class Make, class Run>
[[nodiscard]] schedule shrink_schedule(Make& make, Run& run, schedule plan) {
    std::size_t budget = 2000;
    auto fails = [&](const schedule& candidate) {
        if (budget == 0) {
            return false;
        }
        --budget;
        auto system = make();
        return run(system, candidate, nullptr).failure.has_value();
    };
    for (bool progress = true; progress && budget > 0;) {
        progress = false;
        for (std::size_t i = plan.steps.size(); i-- > 0;) {
            schedule candidate = plan;
            candidate.steps.erase(candidate.steps.begin() + static_cast<std::ptrdiff_t>(i));
            if (fails(candidate)) {
                plan = std::move(candidate);
                progress = true;
            }
        }
        for (std::size_t i = plan.messages.size(); i-- > 0 && plan.messages.size() > 1;) {
            schedule candidate = plan;
            candidate.messages.erase(candidate.messages.begin() + static_cast<std::ptrdiff_t>(i));
            if (fails(candidate)) {
                plan = std::move(candidate);
                progress = true;
            }
        }
        for (std::size_t i = 0; i < plan.steps.size(); ++i) {
            if (!plan.steps[i].failure && plan.steps[i].meanwhile == interleave::none) {
                continue;
            }
            schedule candidate = plan;
            candidate.steps[i].failure.reset();
            candidate.steps[i].meanwhile = interleave::none;
            if (fails(candidate)) {
                plan = std::move(candidate);
                progress = true;
            }
        }
    }
    return plan;
}

// Runs one schedule of requests against a fresh system; with `timeline`,
// writes down every event.
template <class System>
[[nodiscard]] schedule_result run_request_schedule(System& system, const schedule& plan,
                                                   std::vector<std::string>* timeline) {
    auto& store = system.store();
    using store_type = std::remove_reference_t<decltype(store)>;
    using guard_type = idempotency_guard<faulty_store<store_type>, manual_clock>;
    manual_clock clock{std::chrono::sys_days(std::chrono::year(2026) / 1 / 1)};
    faulty_store<store_type> faulty(store);
    guard_type guard(faulty, clock);
    const std::chrono::microseconds past_lease = guard.options().lease + std::chrono::seconds(1);
    const std::vector<message>& sent = plan.messages;
    std::vector<bool> answered(sent.size(), false);
    schedule_result out;
    auto note = [&](fault_point point) { ++out.coverage[static_cast<std::size_t>(point)]; };
    auto trace = [&](std::string_view line) {
        if (timeline) {
            timeline->push_back(cat(std::to_string(timeline->size() + 1), ". ", line));
        }
    };

    // One attempt at sent[i] by a worker with its own wrapper of the store;
    // returns a failure, if the handler threw something other than a
    // simulated fault.
    auto send = [&](auto& self, faulty_store<store_type>& worker, guard_type& worker_guard,
                    std::size_t i, const step& s,
                    std::string_view who) -> std::optional<std::string> {
        ++out.deliveries;
        std::string line;
        if (timeline) {
            line = cat(who, "send ", sent[i].id, " (key ", sent[i].key, ", payload ",
                       sent[i].payload, ")");
        }
        if (answered[i]) {
            note(fault_point::duplicate);
            line += timeline ? " again, after it was answered" : "";
        } else {
            for (std::size_t j = 0; j < i; ++j) {
                if (!answered[j]) {
                    note(fault_point::reorder);
                    line += timeline ? cat(" ahead of ", sent[j].id) : "";
                    break;
                }
            }
        }
        std::optional<std::string> nested;
        worker.fail_commit(s.failure, s.commit);
        if (s.meanwhile != interleave::none) {
            // Before the worker's second transaction: its operation is running.
            worker.interrupt_begin(
                [&] {
                    const bool expire = s.meanwhile == interleave::lease_expiry;
                    note(expire ? fault_point::lease_expiry : fault_point::second_worker);
                    if (expire) {
                        clock.advance(past_lease);
                    }
                    trace(cat(line, expire ? ": while it runs, its lease ends and a second worker "
                                             "gets the request:"
                                           : ": while it runs, a second worker gets the request:"));
                    line = "   first worker";
                    faulty_store<store_type> other(store);
                    guard_type other_guard(other, clock);
                    nested = self(self, other, other_guard, i, step{}, "   second worker: ");
                },
                1);
        }
        bool ok = false;
        try {
            ok = static_cast<bool>(system.handle(sent[i], worker_guard, worker));
            if (timeline) {
                line += ok ? ": answered" : ": told to retry later";
            }
        } catch (...) {
            const std::exception_ptr e = std::current_exception();
            const std::optional<commit_failure> injected = worker.take_failure();
            if (!injected) {
                worker.fail_commit(std::nullopt);
                worker.interrupt_begin({});
                return cat("sending ", sent[i].id, ", the handler threw: ", exception_text(e));
            }
            note(point_of(*injected));
            if (timeline) {
                line += cat(": ", describe(*injected), "; no answer, so sent again later");
            }
        }
        worker.fail_commit(std::nullopt);
        worker.interrupt_begin({});
        trace(line);
        answered[i] = answered[i] || ok;
        return nested;
    };

    auto waiting = [&] {
        std::vector<std::size_t> indices;
        for (std::size_t i = 0; i < sent.size(); ++i) {
            if (!answered[i]) {
                indices.push_back(i);
            }
        }
        return indices;
    };

    for (const step& s : plan.steps) {
        std::optional<std::size_t> target;
        switch (s.what) {
        case action::delay:
            note(fault_point::delay);
            clock.advance(std::chrono::milliseconds(s.pick));
            trace(cat("the clock moves ", std::to_string(s.pick), " ms on"));
            continue;
        case action::deliver_next:
        case action::deliver_later: {
            const std::vector<std::size_t> w = waiting();
            if (!w.empty()) {
                constexpr std::size_t window = 3;
                target = s.what == action::deliver_next
                             ? w.front()
                             : w[s.pick % (w.size() < window ? w.size() : window)];
            }
            break;
        }
        case action::redeliver: {
            std::vector<std::size_t> done;
            for (std::size_t i = 0; i < sent.size(); ++i) {
                if (answered[i]) {
                    done.push_back(i);
                }
            }
            if (!done.empty()) {
                target = done[s.pick % done.size()];
            }
            break;
        }
        }
        if (target) {
            if (auto failed = send(send, faulty, guard, *target, s, "")) {
                out.failure = std::move(failed);
                return out;
            }
        }
    }

    // Every request not yet answered is sent again, without faults; between
    // rounds the clock moves past the lease, as a client backs off.
    for (std::size_t round = 0; round < 3 && !waiting().empty(); ++round) {
        if (round > 0) {
            clock.advance(past_lease);
            trace("the clock moves past the lease");
        }
        trace("every request not yet answered is sent again, without faults:");
        for (const std::size_t i : waiting()) {
            if (auto failed = send(send, faulty, guard, i, step{}, "")) {
                out.failure = std::move(failed);
                return out;
            }
        }
    }
    if (const std::vector<std::size_t> w = waiting(); !w.empty()) {
        out.failure = cat(sent[w.front()].id, " was never answered");
        return out;
    }
    if (faulty.token_regressions() != 0) {
        out.failure = "a claim's fencing token was not greater than the one before it";
        return out;
    }
    auto tx = store.begin();
    if (!static_cast<bool>(system.check(tx, std::span<const message>(sent)))) {
        out.failure = "check() returned false after every request was answered";
    }
    return out;
}

template <class System>
constexpr bool check_request_system() {
    static_assert(has_store<System>,
                  "settle::testing::request_system: `store()` missing; expected a member "
                  "returning your settle::idempotency_store by reference");
    if constexpr (has_store<System>) {
        static_assert(idempotency_store<system_store<System>>,
                      "settle::testing::request_system: `store()` must return a "
                      "settle::idempotency_store");
        if constexpr (idempotency_store<system_store<System>>) {
            static_assert(has_request_handle<System>,
                          "settle::testing::request_system: `handle(request, guard, store)` "
                          "missing or wrong signature; expected `bool handle(const "
                          "settle::testing::message&, Guard&, Store&)`");
            static_assert(has_check<System>,
                          "settle::testing::request_system: `check(tx, requests)` missing or "
                          "wrong signature; expected `bool check(transaction&, "
                          "std::span<const settle::testing::message>)`");
        }
    }
    return request_system<System>;
}

// The publisher the relay runs in simulate_relay: your publish(), given the
// simulated broker.
template <class System>
struct simulated_publisher {
    System* system;
    broker* to;
    publish_result publish(const outbox_record& record) { return system->publish(record, *to); }
};

// Runs one schedule of appends and relay runs against a fresh system; with
// `timeline`, writes down every event.
template <class System>
[[nodiscard]] schedule_result run_relay_schedule(System& system, const schedule& plan,
                                                 std::vector<std::string>* timeline) {
    auto& store = system.store();
    using store_type = std::remove_reference_t<decltype(store)>;
    manual_clock clock{std::chrono::sys_days(std::chrono::year(2026) / 1 / 1)};
    faulty_store<store_type> faulty(store);
    outbox appender(faulty, clock);
    broker to;
    simulated_publisher<System> publisher{&system, &to};
    const persisted_retry<constant_backoff> retry{constant_backoff(std::chrono::seconds(1)), 1000};
    using relay_type = outbox_relay<faulty_store<store_type>, simulated_publisher<System>,
                                    constant_backoff, manual_clock>;
    relay_type relay(faulty, publisher, retry, clock, {.owner = "simulation", .batch_size = 2});
    const std::chrono::microseconds past_lease = relay.options().lease + std::chrono::seconds(1);
    const std::vector<message>& sent = plan.messages;
    std::vector<uuid> ids;
    for (std::size_t i = 0; i < sent.size(); ++i) {
        std::array<std::byte, 16> octets{};
        octets[6] = std::byte{0x70};  // version 7
        octets[8] = std::byte{0x80};  // RFC 9562 variant
        octets[15] = static_cast<std::byte>(i + 1);
        ids.emplace_back(std::span<const std::byte, 16>(octets));
    }
    auto name = [&](const uuid& id) {
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] == id) {
                return sent[i].id;
            }
        }
        return id.to_string();
    };
    std::vector<bool> appended(sent.size(), false);  // as the producer knows it
    schedule_result out;
    auto note = [&](fault_point point) { ++out.coverage[static_cast<std::size_t>(point)]; };
    auto trace = [&](std::string_view line) {
        if (timeline) {
            timeline->push_back(cat(std::to_string(timeline->size() + 1), ". ", line));
        }
    };
    // Runs fn; an injected fault (a crash, a failed commit, the broker's
    // error) is noted and traced, anything else is the schedule's failure.
    auto guarded = [&](faulty_store<store_type>& store_of, std::string& line,
                       auto&& fn) -> std::optional<std::string> {
        try {
            fn();
        } catch (...) {
            const std::exception_ptr e = std::current_exception();
            const std::optional<commit_failure> injected = store_of.take_failure();
            if (injected) {
                note(point_of(*injected));
                line += cat("; ", describe(*injected));
            } else if (!to.take_failure()) {
                return cat(line, ": threw ", exception_text(e));
            } else {
                line += "; the publisher threw the broker's error";
            }
        }
        return std::nullopt;
    };
    auto append = [&](std::size_t i, const step& s) -> std::optional<std::string> {
        ++out.deliveries;
        std::string line =
            cat("append ", sent[i].id, " (key ", sent[i].key, ", payload ", sent[i].payload, ")");
        faulty.fail_commit(s.failure, 0);
        bool done = false;
        auto failed = guarded(faulty, line, [&] {
            auto tx = faulty.begin();
            tx.note_applied(sent[i].id);
            (void)appender.append(tx, ids[i], "simulation", sent[i].payload, sent[i].key);
            tx.commit();
            done = true;
        });
        faulty.fail_commit(std::nullopt);
        appended[i] = appended[i] || done;
        trace(done ? cat(line, ": committed") : line);
        return failed;
    };
    auto run_relay = [&](auto& self, faulty_store<store_type>& store_of, relay_type& which,
                         const step& s, std::string_view who) -> std::optional<std::string> {
        std::string line = cat(who, "the relay runs once");
        std::optional<std::string> nested;
        store_of.fail_commit(s.failure, s.commit);
        to.fail_next_send(s.broker_fault);
        if (s.meanwhile != interleave::none) {
            // Before the relay records the outcomes: the batch is published.
            store_of.interrupt_begin(
                [&] {
                    const bool expire = s.meanwhile == interleave::lease_expiry;
                    note(expire ? fault_point::lease_expiry : fault_point::second_worker);
                    if (expire) {
                        clock.advance(past_lease);
                    }
                    trace(cat(line, expire ? ": before it records what it published, its lease "
                                             "ends and a second relay runs:"
                                           : ": before it records what it published, a second "
                                             "relay runs:"));
                    line = "   first relay";
                    faulty_store<store_type> other(store);
                    relay_type second(other, publisher, retry, clock,
                                      {.owner = "simulation-2", .batch_size = 2});
                    nested = self(self, other, second, step{}, "   second relay: ");
                },
                1);
        }
        std::size_t claimed = 0;
        auto failed = guarded(store_of, line, [&] {
            const outbox_run_result r = which.run_once();
            claimed = r.claimed;
        });
        if (to.take_failure()) {
            note(fault_point::publish_failure);
            line += s.broker_fault && *s.broker_fault
                        ? "; the broker took a message and its answer was lost"
                        : "; the broker was unreachable";
        }
        store_of.fail_commit(std::nullopt);
        store_of.interrupt_begin({});
        to.fail_next_send(std::nullopt);
        if (timeline && !failed) {
            line += cat("; claimed ", std::to_string(claimed));
            trace(line);
        }
        return failed ? failed : nested;
    };

    std::size_t next = 0;
    for (const step& s : plan.steps) {
        std::optional<std::string> failed;
        if (s.what == action::delay) {
            note(fault_point::delay);
            clock.advance(std::chrono::milliseconds(s.pick));
            trace(cat("the clock moves ", std::to_string(s.pick), " ms on"));
            continue;
        }
        if (s.what == action::deliver_next && next < sent.size()) {
            failed = append(next++, s);
        } else {
            failed = run_relay(run_relay, faulty, relay, s, "");
        }
        if (failed) {
            out.failure = std::move(failed);
            return out;
        }
    }

    // The producer appends again what it does not know committed (a
    // duplicate changes nothing); the relay runs, the clock moving past its
    // lease and its retry delay, until it finds nothing more.
    trace(
        "the producer appends again what it does not know committed, and the relay runs on "
        "without faults:");
    for (std::size_t i = 0; i < sent.size(); ++i) {
        if (!appended[i]) {
            if (auto failed = append(i, step{})) {
                out.failure = std::move(failed);
                return out;
            }
        }
    }
    for (std::size_t round = 0; round < 4 * sent.size() + 4; ++round) {
        clock.advance(past_lease);
        std::size_t claimed = 0;
        try {
            claimed = relay.run_once().claimed;
        } catch (...) {
            out.failure = cat("the relay threw: ", exception_text(std::current_exception()));
            return out;
        }
        if (claimed == 0) {
            break;
        }
    }
    for (std::size_t i = 0; i < sent.size(); ++i) {
        if (faulty.committed_count(sent[i].id) > 0 && to.received(ids[i]) == 0) {
            out.failure = cat(name(ids[i]),
                              " was committed to the outbox but never reached the broker: lost");
            return out;
        }
    }
    return out;
}

template <class System>
constexpr bool check_relay_system() {
    static_assert(has_store<System>,
                  "settle::testing::relay_system: `store()` missing; expected a member "
                  "returning your settle::outbox_store by reference");
    if constexpr (has_store<System>) {
        static_assert(outbox_store<system_store<System>> && outbox_appender<system_store<System>>,
                      "settle::testing::relay_system: `store()` must return a "
                      "settle::outbox_store that is also a settle::outbox_appender");
        static_assert(has_publish<System>,
                      "settle::testing::relay_system: `publish(record, broker)` missing or "
                      "wrong signature; expected `settle::publish_result publish(const "
                      "settle::outbox_record&, settle::testing::broker&)`");
    }
    return relay_system<System>;
}

template <class System>
constexpr bool check_consumer_system() {
    static_assert(has_store<System>,
                  "settle::testing::consumer_system: `store()` missing; expected a member "
                  "returning your settle::inbox_store by reference");
    if constexpr (has_store<System>) {
        static_assert(inbox_store<system_store<System>>,
                      "settle::testing::consumer_system: `store()` must return a "
                      "settle::inbox_store");
        if constexpr (inbox_store<system_store<System>>) {
            static_assert(has_handle<System>,
                          "settle::testing::consumer_system: `handle(delivery, tx)` missing or "
                          "wrong signature; expected `void handle(const "
                          "settle::testing::delivery&, transaction&)`");
            static_assert(has_check<System>,
                          "settle::testing::consumer_system: `check(tx, messages)` missing or "
                          "wrong signature; expected `bool check(transaction&, "
                          "std::span<const settle::testing::message>)`");
        }
    }
    return consumer_system<System>;
}

}  // namespace detail

namespace detail {

// Runs the schedules of options.seeds seeds; shrinks the first that fails.
template <class Make, class Run>
[[nodiscard]] simulation_report simulate(const simulation_options& options,
                                         std::vector<fault_point> faults, std::string_view prefix,
                                         Make& make, Run run) {
    if (options.seeds == 0 || options.messages == 0 || options.keys == 0) {
        throw error(errc::invalid_argument,
                    "settle::testing: seeds, messages and keys must be positive");
    }
    if (!options.faults.empty()) {
        faults = options.faults;
    }
    simulation_report report;
    for (std::uint64_t n = 0; n < options.seeds; ++n) {
        const std::uint64_t seed = options.first_seed + n;
        auto system = make();
        const schedule plan = make_schedule(seed, options, faults, prefix, system);
        const schedule_result r = run(system, plan, nullptr);
        ++report.schedules;
        report.deliveries += r.deliveries;
        for (std::size_t i = 0; i < report.coverage.size(); ++i) {
            report.coverage[i] += r.coverage[i];
        }
        if (r.failure) {
            const schedule shrunk = shrink_schedule(make, run, plan);
            simulation_failure f;
            f.seed = seed;
            f.steps = shrunk.steps.size();
            f.original_steps = plan.steps.size();
            f.what = *r.failure;
            std::string sent = "sent:";
            for (const message& m : shrunk.messages) {
                sent += cat(" ", m.id, " (key ", m.key, ", payload ", m.payload, ")");
            }
            auto fresh = make();
            const schedule_result again = run(fresh, shrunk, &f.timeline);
            f.timeline.insert(f.timeline.begin(), std::move(sent));
            f.timeline.push_back(cat("fails: ", again.failure.value_or(f.what)));
            report.failure = std::move(f);
            return report;
        }
    }
    for (const fault_point point : faults) {
        if (report.reached(point) == 0) {
            report.missed.push_back(point);
        }
    }
    return report;
}

}  // namespace detail

/// Runs options.seeds schedules against the consumer that make() builds
/// afresh for each one, and reports. A schedule sends options.messages
/// messages and runs options.steps steps, each a delay or a delivery that may
/// meet a fault, then delivers every message still unacknowledged again,
/// without faults. It fails when the handler throws (other than through an
/// injected fault), a message is never acknowledged, an acknowledged
/// message's effect never committed or committed twice, or check() returns
/// false. The first failing schedule is shrunk and ends the run. The handler
/// runs in a settle::idempotent_consumer named "simulation", over a
/// faulty_store that wraps your store, on a manual_clock that starts at
/// 2026-01-01. Exceptions of make() and of your store outside the handler
/// propagate. Throws settle::error (errc::invalid_argument) when seeds,
/// messages or keys is 0.
///
///     const auto report = settle::testing::simulate_consumer({.seeds = 2000},
///                                                            [] { return billing{}; });
///     REQUIRE(report.passed());
template <class Make>
requires std::invocable<Make&>
[[nodiscard]] simulation_report simulate_consumer(const simulation_options& options, Make&& make) {
    using system_type = std::remove_cvref_t<std::invoke_result_t<Make&>>;
    static_assert(detail::check_consumer_system<system_type>());
    std::vector<fault_point> faults;
    for (const fault_point point : all_fault_points) {
        if (point != fault_point::lease_expiry && point != fault_point::publish_failure) {
            faults.push_back(point);
        }
    }
    return detail::simulate(
        options, std::move(faults), "m", make,
        [](system_type& system, const detail::schedule& plan, std::vector<std::string>* timeline) {
            return detail::run_consumer_schedule(system, plan, timeline);
        });
}

/// Runs options.seeds schedules of requests against the request handler of
/// the system that make() builds afresh for each one, and reports. Each
/// request (ids r1, r2, ...: use the id as the idempotency key) is sent until
/// handle() answers true; a schedule sends them in options.steps steps, each a
/// delay or a request that may meet a fault, then sends every request not yet
/// answered again without faults, the clock moving past the lease between
/// rounds. It fails when the handler throws (other than through an injected
/// fault), a request is never answered, a claim's token did not increase, or
/// check() returns false. The guard is a settle::idempotency_guard with the
/// default options (a one-minute lease), over a faulty_store that wraps your
/// store, on a manual_clock that starts at 2026-01-01. Throws settle::error
/// (errc::invalid_argument) when seeds, messages or keys is 0.
///
///     const auto report = settle::testing::simulate_requests({.seeds = 2000},
///                                                            [] { return payments{}; });
template <class Make>
requires std::invocable<Make&>
[[nodiscard]] simulation_report simulate_requests(const simulation_options& options, Make&& make) {
    using system_type = std::remove_cvref_t<std::invoke_result_t<Make&>>;
    static_assert(detail::check_request_system<system_type>());
    std::vector<fault_point> faults;
    for (const fault_point point : all_fault_points) {
        if (point != fault_point::publish_failure) {
            faults.push_back(point);
        }
    }
    return detail::simulate(
        options, std::move(faults), "r", make,
        [](system_type& system, const detail::schedule& plan, std::vector<std::string>* timeline) {
            return detail::run_request_schedule(system, plan, timeline);
        });
}

/// Runs options.seeds schedules of appends and relay runs against the
/// publisher of the system that make() builds afresh for each one, and
/// reports. Each message (m1, m2, ...) is appended in a transaction of its
/// own; a schedule runs options.steps steps, each a delay, an append, or one
/// run of a settle::outbox_relay (batch 2, a 30 s lease, retries every second)
/// that may meet a fault: a failed commit, a crash, the broker failing, a
/// second relay, a lease that ends before the outcomes are recorded. Then the
/// producer appends again what it does not know committed and the relay runs
/// until it finds nothing more. It fails when a message committed to the
/// outbox never reached the broker, or something other than an injected fault
/// was thrown.
///
///     const auto report = settle::testing::simulate_relay({.seeds = 2000},
///                                                         [] { return orders{}; });
template <class Make>
requires std::invocable<Make&>
[[nodiscard]] simulation_report simulate_relay(const simulation_options& options, Make&& make) {
    using system_type = std::remove_cvref_t<std::invoke_result_t<Make&>>;
    static_assert(detail::check_relay_system<system_type>());
    std::vector<fault_point> faults;
    for (const fault_point point : all_fault_points) {
        if (point != fault_point::duplicate && point != fault_point::reorder) {
            faults.push_back(point);
        }
    }
    return detail::simulate(
        options, std::move(faults), "m", make,
        [](system_type& system, const detail::schedule& plan, std::vector<std::string>* timeline) {
            return detail::run_relay_schedule(system, plan, timeline);
        });
}

}  // namespace testing

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_SIMULATION_HPP
