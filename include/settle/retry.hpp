// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_RETRY_HPP
#define SETTLE_RETRY_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/detail/retry_math.hpp>
#include <settle/error.hpp>
#include <settle/sleeper.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <settle/detail/macro_scope.hpp>

// Retry ladders: when to try again, and when to stop.
//
// Attempt numbering, the same everywhere in this header: attempt 0 is the
// first call, attempt n is the n-th retry. delay(n) is the wait after attempt n
// failed, before attempt n + 1. attempts() and `attempts_so_far` count the
// calls made, so after attempt n they are n + 1.
//
// Every delay is a std::chrono::nanoseconds in [0, nanoseconds::max()], for
// every attempt number up to the largest std::uint32_t and every valid
// configuration: nothing overflows, wraps, goes negative or becomes NaN.
// Computing a delay allocates nothing.

SETTLE_BEGIN_NAMESPACE

namespace detail {

// Throws settle::error(invalid_argument). Not constexpr on purpose: reaching it
// while the compiler evaluates a constant expression is a compile error, so a
// configuration known at compile time is rejected at compile time.
[[noreturn]] inline void reject_retry_config(const char* what) {
    throw settle::error(errc::invalid_argument, what);
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Schedules: deterministic delays.

/// A deterministic schedule: delay(n) is the wait after attempt n fails.
template <class S>
concept schedule = std::copy_constructible<S> && requires(const S& s, std::uint32_t n) {
    { s.delay(n) }
    noexcept->std::same_as<std::chrono::nanoseconds>;
};

/// An explicit list of delays: delay(n) = steps[min(n, size - 1)], so past the
/// last step it stays there. Holds up to N steps inline: no allocation, 8 bytes
/// a step. Empty ladders and negative steps are rejected (at compile time when
/// the ladder is a constant).
///
///     constexpr settle::ladder quick{100ms, 500ms, 2s};       // ladder<3>
///     settle::ladder<32> from_config(std::span(steps));       // up to 32, at run time
template <std::size_t N>
class ladder {
    static_assert(N > 0, "settle::ladder: a ladder needs at least one step");

public:
    /// The steps, in order; their count is fixed at compile time.
    template <class... D>
    requires(sizeof...(D) >= 1 && sizeof...(D) <= N &&
             (std::convertible_to<D, std::chrono::nanoseconds> && ...)) constexpr ladder(D... steps)
        : steps_{std::chrono::nanoseconds(steps)...}, size_(sizeof...(D)) {
        check();
    }

    /// Steps chosen at run time (from configuration): 1 to N of them.
    constexpr explicit ladder(std::span<const std::chrono::nanoseconds> steps)
        : steps_{}, size_(0) {
        if (steps.empty()) {
            detail::reject_retry_config("settle::ladder: a ladder needs at least one step");
        }
        if (steps.size() > N) {
            detail::reject_retry_config("settle::ladder: more steps than the ladder's capacity N");
        }
        for (std::size_t i = 0; i < steps.size(); ++i) {
            steps_[i] = steps[i];
        }
        size_ = steps.size();
        check();
    }

    ///@{
    /// The delay before retry n, the number of steps, and the steps.
    [[nodiscard]] constexpr std::chrono::nanoseconds delay(std::uint32_t n) const noexcept {
        return steps_[n < size_ ? n : size_ - 1];
    }
    [[nodiscard]] constexpr std::size_t size() const noexcept { return size_; }
    [[nodiscard]] constexpr std::span<const std::chrono::nanoseconds> steps() const noexcept {
        return {steps_.data(), size_};
    }
    ///@}

private:
    constexpr void check() const {
        for (std::size_t i = 0; i < size_; ++i) {
            if (steps_[i] < std::chrono::nanoseconds(0)) {
                detail::reject_retry_config("settle::ladder: a step is negative");
            }
        }
    }

    std::array<std::chrono::nanoseconds, N> steps_;
    std::size_t size_;
};

template <class... D>
ladder(D...) -> ladder<sizeof...(D)>;

/// The classic message-queue ladder (RocketMQ's default delay levels), 18 steps:
/// 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h; then 2h for ever.
inline constexpr ladder<18> message_queue_ladder{
    std::chrono::seconds(1),  std::chrono::seconds(5),  std::chrono::seconds(10),
    std::chrono::seconds(30), std::chrono::minutes(1),  std::chrono::minutes(2),
    std::chrono::minutes(3),  std::chrono::minutes(4),  std::chrono::minutes(5),
    std::chrono::minutes(6),  std::chrono::minutes(7),  std::chrono::minutes(8),
    std::chrono::minutes(9),  std::chrono::minutes(10), std::chrono::minutes(20),
    std::chrono::minutes(30), std::chrono::hours(1),    std::chrono::hours(2)};

/// The same delay every time: delay(n) = d. d >= 0.
class constant_backoff {
public:
    ///@{
    /// The same delay before every retry.
    constexpr explicit constant_backoff(std::chrono::nanoseconds d) : delay_(d) {
        if (d < std::chrono::nanoseconds(0)) {
            detail::reject_retry_config("settle::constant_backoff: the delay is negative");
        }
    }
    [[nodiscard]] constexpr std::chrono::nanoseconds delay(std::uint32_t) const noexcept {
        return delay_;
    }
    ///@}

private:
    std::chrono::nanoseconds delay_;
};

/// delay(n) = min(cap, base + n * step), exact in integer nanoseconds.
/// Requires 0 <= base <= cap and step >= 0.
class linear_backoff {
public:
    ///@{
    /// A delay growing by the same step at each retry, up to a cap.
    constexpr linear_backoff(std::chrono::nanoseconds base, std::chrono::nanoseconds step,
                             std::chrono::nanoseconds cap)
        : base_(base), step_(step), cap_(cap), last_below_cap_(0) {
        if (base < std::chrono::nanoseconds(0) || step < std::chrono::nanoseconds(0)) {
            detail::reject_retry_config(
                "settle::linear_backoff: base and step must not be negative");
        }
        if (cap < base) {
            detail::reject_retry_config("settle::linear_backoff: cap is below base");
        }
        // The largest n with base + n * step <= cap.
        last_below_cap_ = step.count() == 0
                              ? ~std::uint64_t{0}
                              : static_cast<std::uint64_t>((cap - base).count() / step.count());
    }
    [[nodiscard]] constexpr std::chrono::nanoseconds delay(std::uint32_t n) const noexcept {
        if (n > last_below_cap_) {
            return cap_;
        }
        return base_ + step_ * static_cast<std::int64_t>(n);
    }
    ///@}

private:
    std::chrono::nanoseconds base_;
    std::chrono::nanoseconds step_;
    std::chrono::nanoseconds cap_;
    std::uint64_t last_below_cap_;
};

/// delay(n) = min(cap, base * multiplier^n), rounded to the nearest nanosecond.
/// Computed in double precision by repeated squaring, so it is constexpr;
/// exact whenever base * multiplier^n is exactly representable (a multiplier of
/// 2 and a delay below 2^53 ns, about 104 days). Requires base > 0,
/// multiplier >= 1 (finite) and cap >= base.
class exponential_backoff {
public:
    ///@{
    /// A delay multiplied at each retry, up to a cap: the delay before retry n, and the base,
    /// multiplier and cap it was made with.
    constexpr exponential_backoff(std::chrono::nanoseconds base, double multiplier,
                                  std::chrono::nanoseconds cap)
        : base_(base), cap_(cap), multiplier_(multiplier), base_d_(0), overshoot_(0) {
        if (base <= std::chrono::nanoseconds(0)) {
            detail::reject_retry_config("settle::exponential_backoff: base must be positive");
        }
        // Also refuses NaN and infinity.
        if (!(multiplier >= 1.0) || !(multiplier <= 1.7976931348623157e308)) {
            detail::reject_retry_config(
                "settle::exponential_backoff: multiplier must be a finite number of at least 1");
        }
        if (cap < base) {
            detail::reject_retry_config("settle::exponential_backoff: cap is below base");
        }
        base_d_ = static_cast<double>(base.count());
        // Once multiplier^n reaches this, base * multiplier^n is at least twice
        // the cap: stop multiplying. Keeps every product finite (< 2^128).
        overshoot_ = 2.0 * static_cast<double>(cap.count()) / base_d_;
    }

    [[nodiscard]] constexpr std::chrono::nanoseconds delay(std::uint32_t n) const noexcept {
        double power = 1.0;
        double factor = multiplier_;
        std::uint32_t k = n;
        while (k != 0) {
            if ((k & 1U) != 0) {
                power *= factor;
                if (power >= overshoot_) {
                    return cap_;
                }
            }
            k >>= 1U;
            if (k != 0) {
                if (factor >= overshoot_) {
                    return cap_;
                }
                factor *= factor;
            }
        }
        // base * power >= base; only rounding of a base above 2^53 ns could say otherwise.
        const std::chrono::nanoseconds d = detail::saturate_to_ns(base_d_ * power + 0.5, cap_);
        return d < base_ ? base_ : d;
    }

    [[nodiscard]] constexpr std::chrono::nanoseconds base() const noexcept { return base_; }
    [[nodiscard]] constexpr double multiplier() const noexcept { return multiplier_; }
    [[nodiscard]] constexpr std::chrono::nanoseconds cap() const noexcept { return cap_; }
    ///@}

private:
    std::chrono::nanoseconds base_;
    std::chrono::nanoseconds cap_;
    double multiplier_;
    double base_d_;
    double overshoot_;
};

// ---------------------------------------------------------------------------
// Jitter: randomness, drawn from a 64-bit seed so that any attempt's delay can
// be recomputed from (seed, n) alone. The word for attempt n is the (n + 1)-th
// output of SplitMix64 started at the seed; U[a, b) maps it onto [a, b) with
// floor(word * (b - a) / 2^64).

/// How a jittered schedule spreads its delay e = schedule.delay(n). Applied to
/// the capped value, so delays spread below the cap instead of piling up on it.
enum class jitter {
    none,   ///< e
    full,   ///< U[0, e)                                  ("full jitter")
    equal,  ///< floor(e / 2) + U[0, e - floor(e / 2))    ("equal jitter")
};

[[nodiscard]] constexpr std::string_view to_string(jitter kind) noexcept {
    switch (kind) {
    case jitter::none: return "none";
    case jitter::full: return "full";
    case jitter::equal: return "equal";
    }
    return "unknown settle::jitter";
}

/// A schedule with jitter. delay(n, seed) is a pure function of (n, seed).
///
///     constexpr settle::jittered backoff{settle::exponential_backoff{100ms, 2.0, 10s},
///                                        settle::jitter::full};
template <schedule S>
class jittered {
public:
    ///@{
    /// A schedule with jitter: the delay before retry n drawn from the random generator; the
    /// schedule and the kind of jitter it was made with.
    constexpr jittered(S delays, jitter spread) : schedule_(std::move(delays)), kind_(spread) {
        // Each kind as lo + U[0, width) with lo = (e >> shift) & lo_mask and
        // width = (e - lo) & width_mask, so delay() does not branch on the kind.
        switch (spread) {
        case jitter::none: lo_mask_ = ~std::uint64_t{0}; break;
        case jitter::full: width_mask_ = ~std::uint64_t{0}; break;
        case jitter::equal:
            shift_ = 1;
            lo_mask_ = ~std::uint64_t{0};
            width_mask_ = ~std::uint64_t{0};
            break;
        default: detail::reject_retry_config("settle::jittered: unknown jitter kind");
        }
    }

    [[nodiscard]] constexpr std::chrono::nanoseconds delay(std::uint32_t n,
                                                           std::uint64_t seed) const noexcept {
        const std::chrono::nanoseconds e = schedule_.delay(n);
        // A schedule's delays are never negative; one that breaks that gets 0.
        const std::uint64_t spread = e.count() > 0 ? static_cast<std::uint64_t>(e.count()) : 0;
        const std::uint64_t lo = (spread >> shift_) & lo_mask_;
        const std::uint64_t width = (spread - lo) & width_mask_;
        return std::chrono::nanoseconds(
            static_cast<std::int64_t>(lo + detail::mulhi64(detail::jitter_word(seed, n), width)));
    }

    [[nodiscard]] constexpr const S& schedule() const noexcept { return schedule_; }
    [[nodiscard]] constexpr jitter kind() const noexcept { return kind_; }
    ///@}

private:
    S schedule_;
    jitter kind_;
    unsigned shift_ = 0;
    std::uint64_t lo_mask_ = 0;
    std::uint64_t width_mask_ = 0;
};

/// "Decorrelated jitter" (Marc Brooker, AWS Architecture Blog, 2015):
///     d(-1) = base,  d(n) = min(cap, U[base, 3 * d(n - 1)))
/// Each delay depends on the one before: delay(n, seed, previous) is one step,
/// O(1); delay(n, seed) replays the chain from attempt 0, O(n). retry() carries
/// the previous delay and pays O(1) an attempt. Requires 0 < base <= cap.
class decorrelated_jitter {
public:
    /// Decorrelated jitter between base and cap.
    constexpr decorrelated_jitter(std::chrono::nanoseconds base, std::chrono::nanoseconds cap)
        : base_(base), cap_(cap) {
        if (base <= std::chrono::nanoseconds(0)) {
            detail::reject_retry_config("settle::decorrelated_jitter: base must be positive");
        }
        if (cap < base) {
            detail::reject_retry_config("settle::decorrelated_jitter: cap is below base");
        }
    }

    /// d(n) given d(n - 1) (pass base for n = 0).
    [[nodiscard]] constexpr std::chrono::nanoseconds delay(
        std::uint32_t n, std::uint64_t seed, std::chrono::nanoseconds previous) const noexcept {
        const std::chrono::nanoseconds high =
            previous > detail::ns_max / 3 ? detail::ns_max : previous * 3;
        const std::chrono::nanoseconds d =
            detail::uniform_between(base_, high, detail::jitter_word(seed, n));
        return d < cap_ ? d : cap_;
    }

    /// d(n), replaying d(0) .. d(n). O(n).
    [[nodiscard]] constexpr std::chrono::nanoseconds delay(std::uint32_t n,
                                                           std::uint64_t seed) const noexcept {
        std::chrono::nanoseconds d = base_;
        for (std::uint64_t k = 0; k <= n; ++k) {
            d = delay(static_cast<std::uint32_t>(k), seed, d);
        }
        return d;
    }

    ///@{
    /// The base and the cap it was made with.
    [[nodiscard]] constexpr std::chrono::nanoseconds base() const noexcept { return base_; }
    [[nodiscard]] constexpr std::chrono::nanoseconds cap() const noexcept { return cap_; }
    ///@}

private:
    std::chrono::nanoseconds base_;
    std::chrono::nanoseconds cap_;
};

/// The smooth decorrelated variant (George Polevoy's formula, Polly's
/// DecorrelatedJitterBackoffV2): with t(n) = n + u(n), u(n) uniform in [0, 1)
/// and f(t) = 2^t * tanh(sqrt(4 t)),
///     d(n) = min(cap, (f(t(n)) - f(t(n - 1))) / 1.4 * base),   f(t(-1)) = 0,
/// truncated to whole nanoseconds; cap once f overflows a double (n >= 1024).
/// Medians fall near base for the first two attempts, then near 2 base, 4 base,
/// 8 base, ...: exponential growth with fewer spikes than decorrelated jitter.
/// O(1) for any n; not constexpr (needs std::pow, std::tanh). Requires
/// 0 < base <= cap.
class smooth_decorrelated_jitter {
public:
    ///@{
    /// Decorrelated jitter without its long runs at the cap: the delay before retry n, and the base
    /// and cap it was made with.
    smooth_decorrelated_jitter(std::chrono::nanoseconds base, std::chrono::nanoseconds cap)
        : base_(base), cap_(cap) {
        if (base <= std::chrono::nanoseconds(0)) {
            detail::reject_retry_config(
                "settle::smooth_decorrelated_jitter: base must be positive");
        }
        if (cap < base) {
            detail::reject_retry_config("settle::smooth_decorrelated_jitter: cap is below base");
        }
    }

    [[nodiscard]] std::chrono::nanoseconds delay(std::uint32_t n,
                                                 std::uint64_t seed) const noexcept {
        const double next =
            f(static_cast<double>(n) + detail::unit_interval(detail::jitter_word(seed, n)));
        if (!std::isfinite(next)) {
            return cap_;
        }
        const double previous = n == 0 ? 0.0
                                       : f(static_cast<double>(n - 1) +
                                           detail::unit_interval(detail::jitter_word(seed, n - 1)));
        const double value = (next - previous) * (1.0 / 1.4) * static_cast<double>(base_.count());
        return detail::saturate_to_ns(value, cap_);
    }

    [[nodiscard]] std::chrono::nanoseconds base() const noexcept { return base_; }
    [[nodiscard]] std::chrono::nanoseconds cap() const noexcept { return cap_; }
    ///@}

private:
    static double f(double t) noexcept { return std::pow(2.0, t) * std::tanh(std::sqrt(4.0 * t)); }

    std::chrono::nanoseconds base_;
    std::chrono::nanoseconds cap_;
};

/// Anything retry() and persisted_retry can take delays from: a deterministic
/// schedule (delay(n)), or a randomised one with delay(n, seed), a pure function
/// of its arguments. A randomised backoff may also offer delay(n, seed,
/// previous), one step given delay(n - 1, seed), which retry() then uses.
template <class B>
concept backoff = std::copy_constructible<B> &&
    (schedule<B> || requires(const B& b, std::uint32_t n, std::uint64_t seed) {
        { b.delay(n, seed) }
        noexcept->std::same_as<std::chrono::nanoseconds>;
    });

namespace detail {

template <class B>
[[nodiscard]] constexpr std::chrono::nanoseconds backoff_delay(const B& b, std::uint32_t n,
                                                               std::uint64_t seed) noexcept {
    if constexpr (schedule<B>) {
        return b.delay(n);
    } else {
        return b.delay(n, seed);
    }
}

// delay(n) when the caller already holds delay(n - 1).
template <class B>
[[nodiscard]] constexpr std::chrono::nanoseconds next_backoff_delay(
    const B& b, std::uint32_t n, std::uint64_t seed, std::chrono::nanoseconds previous) noexcept {
    if constexpr (requires {
                      { b.delay(n, seed, previous) }
                      noexcept->std::same_as<std::chrono::nanoseconds>;
                  }) {
        if (n != 0) {
            return b.delay(n, seed, previous);
        }
    }
    return backoff_delay(b, n, seed);
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Policy vocabulary.

/// What a classifier says about one failed attempt. A classifier may also
/// return bool: true is `retry`, false is `stop`.
enum class retry_decision {
    stop,           ///< retrying will not help (for a plain returned value: accept it)
    retry,          ///< transient: retry if the policy allows; a budget charges retry_cost
    retry_timeout,  ///< transient timeout or throttle: as retry, but a budget charges timeout_cost
};

[[nodiscard]] constexpr std::string_view to_string(retry_decision d) noexcept {
    switch (d) {
    case retry_decision::stop: return "stop";
    case retry_decision::retry: return "retry";
    case retry_decision::retry_timeout: return "retry_timeout";
    }
    return "unknown settle::retry_decision";
}

/// Why retry() stopped.
enum class [[nodiscard]] retry_outcome{
    succeeded,      ///< the last attempt succeeded
    exhausted,      ///< max_attempts attempts were made and the last one failed
    deadline,       ///< the next wait would have ended past the deadline, or it had passed
    not_retryable,  ///< the classifier said stop for a failure
    budget,         ///< the retry budget refused the next retry
    cancelled,      ///< the stop token was stopped while waiting
};

[[nodiscard]] constexpr std::string_view to_string(retry_outcome o) noexcept {
    switch (o) {
    case retry_outcome::succeeded: return "succeeded";
    case retry_outcome::exhausted: return "exhausted";
    case retry_outcome::deadline: return "deadline";
    case retry_outcome::not_retryable: return "not_retryable";
    case retry_outcome::budget: return "budget";
    case retry_outcome::cancelled: return "cancelled";
    }
    return "unknown settle::retry_outcome";
}

/// What retry() does when the next wait would end past the deadline.
enum class deadline_mode {
    stop,     ///< stop now, without waiting (outcome deadline)
    shorten,  ///< wait only until the deadline and make one last attempt there
};

[[nodiscard]] constexpr std::string_view to_string(deadline_mode m) noexcept {
    switch (m) {
    case deadline_mode::stop: return "stop";
    case deadline_mode::shorten: return "shorten";
    }
    return "unknown settle::deadline_mode";
}

// ---------------------------------------------------------------------------
// Retry budget.

/// The defaults are the AWS SDKs' retry quota (standard retry mode): 500 tokens,
/// a retry costs 5, a retry after a timeout costs 10, a success refunds 1 (or,
/// when it came after a retry, that retry's cost). See docs/retry.md.
struct retry_budget_options {
    std::uint32_t capacity = 500;      ///< tokens when full, and at the start
    std::uint32_t retry_cost = 5;      ///< taken by a retry after retry_decision::retry
    std::uint32_t timeout_cost = 10;   ///< taken by a retry after retry_decision::retry_timeout
    std::uint32_t success_refund = 1;  ///< returned by a first attempt that succeeds
};

/// A token bucket shared by every caller of one dependency, so a failing
/// dependency gets no retry storm: each retry takes tokens, successes put some
/// back, and when too few are left retries are refused. First attempts never
/// take tokens and are never refused. Thread-safe and lock-free; the count
/// never goes below 0 or above capacity. Costs one atomic read-modify-write per
/// retry and per success (none while the bucket is full).
class retry_budget {
public:
    retry_budget() : retry_budget(retry_budget_options{}) {}

    /// Throws settle::error(invalid_argument) when capacity is 0 or a cost
    /// exceeds the capacity (such a retry could never be paid for).
    explicit retry_budget(retry_budget_options settings)
        : options_(settings), tokens_(settings.capacity) {
        if (settings.capacity == 0) {
            detail::reject_retry_config("settle::retry_budget: capacity must be positive");
        }
        if (settings.retry_cost > settings.capacity || settings.timeout_cost > settings.capacity) {
            detail::reject_retry_config("settle::retry_budget: a cost exceeds the capacity");
        }
    }

    retry_budget(const retry_budget&) = delete;
    retry_budget& operator=(const retry_budget&) = delete;

    /// Takes `tokens` if that many are available; otherwise takes nothing and
    /// returns false.
    [[nodiscard]] bool try_acquire(std::uint32_t tokens) noexcept {
        std::uint32_t current = tokens_.load(std::memory_order_relaxed);
        while (current >= tokens) {
            if (tokens_.compare_exchange_weak(current, current - tokens, std::memory_order_acq_rel,
                                              std::memory_order_relaxed)) {
                return true;
            }
        }
        return false;
    }

    /// Puts `tokens` back, up to the capacity.
    void release(std::uint32_t tokens) noexcept {
        std::uint32_t current = tokens_.load(std::memory_order_relaxed);
        while (current < options_.capacity) {
            const std::uint32_t room = options_.capacity - current;
            const std::uint32_t next = current + (tokens < room ? tokens : room);
            if (tokens_.compare_exchange_weak(current, next, std::memory_order_acq_rel,
                                              std::memory_order_relaxed)) {
                return;
            }
        }
    }

    ///@{
    /// The retries available now, and the options the budget was made with.
    [[nodiscard]] std::uint32_t available() const noexcept {
        return tokens_.load(std::memory_order_acquire);
    }
    [[nodiscard]] const retry_budget_options& options() const noexcept { return options_; }
    ///@}

private:
    retry_budget_options options_;
    std::atomic<std::uint32_t> tokens_;
};

// ---------------------------------------------------------------------------
// Classifiers.

/// A classifier that retries exceptions of the listed types (or types derived
/// from them) and stops on any other exception. Returned values follow the
/// default rules (see retry()).
///
///     policy.retry_if(settle::retry_on<std::system_error, timeout_error>{})
template <class... E>
struct retry_on {
    static_assert(sizeof...(E) > 0, "settle::retry_on: name at least one exception type");

    /// True when the failure is one of the exception types E (or derived from one).
    [[nodiscard]] bool operator()(const std::exception_ptr& failure) const noexcept {
        return failure != nullptr && matches<E...>(failure);
    }

private:
    template <class First, class... Rest>
    static bool matches(const std::exception_ptr& failure) noexcept {
        try {
            std::rethrow_exception(failure);
        } catch (const First&) {
            return true;
        } catch (...) {
            if constexpr (sizeof...(Rest) > 0) {
                return matches<Rest...>(failure);
            } else {
                return false;
            }
        }
    }
};

namespace detail {

// The default classifier: a returned failure is retried, an exception as
// default_exception_decision says.
struct retry_every_failure {};

// What happens to an exception when no classifier taking std::exception_ptr
// decides: a retry never repeats a bug. A programming error (std::logic_error
// and every type derived from it) and settle::error with invalid_argument,
// malformed_input or decode_failed would fail the same way again: stop.
// Everything else (settle::error unavailable, aborted or backend_failure,
// every other std::exception, anything else thrown) is retried. `failure` is
// not null.
[[nodiscard]] inline retry_decision default_exception_decision(
    const std::exception_ptr& failure) noexcept {
    try {
        std::rethrow_exception(failure);
    } catch (const std::logic_error&) {
        return retry_decision::stop;
    } catch (const settle::error& e) {
        const std::error_code code = e.code();
        return code == errc::invalid_argument || code == errc::malformed_input ||
                       code == errc::decode_failed
                   ? retry_decision::stop
                   : retry_decision::retry;
    } catch (...) {
        return retry_decision::retry;
    }
}

// The default pushback hook: never overrides a delay.
struct no_pushback {};

}  // namespace detail

// ---------------------------------------------------------------------------
// Policy.

/// How retry() runs an operation: a backoff, a maximum number of attempts
/// (default 3, the AWS SDKs' standard-mode default), an optional overall
/// deadline, an optional shared budget, a classifier and an optional pushback
/// hook. A value type: copy it freely; it refers to its budget, which must
/// outlive it. Each with_/retry_if call returns a new policy.
///
///     const auto policy = settle::retry_policy{backoff, 5}
///                             .with_deadline(10s)
///                             .with_budget(budget)
///                             .retry_if(settle::retry_on<std::system_error>{});
template <backoff B, class Classifier = detail::retry_every_failure,
          class Pushback = detail::no_pushback>
class retry_policy {
public:
    /// Throws settle::error(invalid_argument) when max_attempts is 0.
    constexpr explicit retry_policy(B delays, std::uint32_t max_attempts = 3) requires(
        std::default_initializable<Classifier>&& std::default_initializable<Pushback>)
        : backoff_(std::move(delays)), classifier_(), pushback_() {
        set_max_attempts(max_attempts);
    }

    /// At most n attempts in all (n >= 1); 1 means no retries.
    [[nodiscard]] constexpr retry_policy with_max_attempts(std::uint32_t n) const {
        retry_policy copy = *this;
        copy.set_max_attempts(n);
        return copy;
    }

    /// Stop retrying once `limit` has passed since retry() started, as read
    /// from its clock; never wait past that point (see deadline_mode).
    /// Throws settle::error(invalid_argument) when limit is negative.
    [[nodiscard]] constexpr retry_policy with_deadline(
        std::chrono::nanoseconds limit, deadline_mode mode = deadline_mode::stop) const {
        if (limit < std::chrono::nanoseconds(0)) {
            detail::reject_retry_config("settle::retry_policy: the deadline is negative");
        }
        if (mode != deadline_mode::stop && mode != deadline_mode::shorten) {
            detail::reject_retry_config("settle::retry_policy: unknown deadline_mode");
        }
        retry_policy copy = *this;
        copy.deadline_ = limit;
        copy.mode_ = mode;
        return copy;
    }

    /// Draw retries from a shared budget. The budget must outlive the policy.
    [[nodiscard]] constexpr retry_policy with_budget(retry_budget& shared) const {
        retry_policy copy = *this;
        copy.budget_ = &shared;
        return copy;
    }

    /// Decide which failures are retried. The classifier is called with
    /// `const std::exception_ptr&` for an exception and with `const R&` for a
    /// returned value (see retry()); it returns retry_decision or bool.
    template <class C>
    [[nodiscard]] constexpr retry_policy<B, C, Pushback> retry_if(C classify) const {
        return retry_policy<B, C, Pushback>(backoff_, std::move(classify), pushback_, *this);
    }

    /// Let a failure override one delay (server pushback, a Retry-After value):
    /// the hook is called like a classifier and returns
    /// std::optional<std::chrono::nanoseconds>; a value replaces that delay
    /// (negative counts as 0); the deadline still applies.
    template <class P>
    [[nodiscard]] constexpr retry_policy<B, Classifier, P> with_pushback(P hook) const {
        return retry_policy<B, Classifier, P>(backoff_, classifier_, std::move(hook), *this);
    }

    ///@{
    /// What the policy was made with: its backoff, attempt limit, deadline and what happens at it,
    /// budget, classifier and pushback.
    [[nodiscard]] constexpr const B& backoff() const noexcept { return backoff_; }
    [[nodiscard]] constexpr std::uint32_t max_attempts() const noexcept { return max_attempts_; }
    [[nodiscard]] constexpr std::optional<std::chrono::nanoseconds> deadline() const noexcept {
        return deadline_;
    }
    [[nodiscard]] constexpr deadline_mode on_deadline() const noexcept { return mode_; }
    [[nodiscard]] constexpr retry_budget* budget() const noexcept { return budget_; }
    [[nodiscard]] constexpr const Classifier& classifier() const noexcept { return classifier_; }
    [[nodiscard]] constexpr const Pushback& pushback() const noexcept { return pushback_; }
    ///@}

private:
    template <::settle::backoff, class, class>
    friend class retry_policy;

    template <class C2, class P2>
    constexpr retry_policy(B delays, Classifier classify, Pushback hook,
                           const retry_policy<B, C2, P2>& settings)
        : backoff_(std::move(delays)),
          classifier_(std::move(classify)),
          pushback_(std::move(hook)),
          max_attempts_(settings.max_attempts_),
          deadline_(settings.deadline_),
          mode_(settings.mode_),
          budget_(settings.budget_) {}

    constexpr void set_max_attempts(std::uint32_t n) {
        if (n == 0) {
            detail::reject_retry_config("settle::retry_policy: max_attempts must be at least 1");
        }
        max_attempts_ = n;
    }

    B backoff_;
    [[no_unique_address]] Classifier classifier_;
    [[no_unique_address]] Pushback pushback_;
    std::uint32_t max_attempts_ = 1;
    std::optional<std::chrono::nanoseconds> deadline_;
    deadline_mode mode_ = deadline_mode::stop;
    retry_budget* budget_ = nullptr;
};

template <backoff B>
retry_policy(B) -> retry_policy<B>;
template <backoff B>
retry_policy(B, std::uint32_t) -> retry_policy<B>;

// ---------------------------------------------------------------------------
// Result.

namespace detail {
struct retry_access;
}

/// What retry() returns: the last attempt's result (a value, or the exception
/// it threw), how many attempts were made (at least 1) and why it stopped.
template <class R>
class [[nodiscard]] retry_result {
    static_assert(!std::is_reference_v<R>,
                  "settle::retry: the operation must return a value (or void), not a reference");

    using stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
    static constexpr bool nothrow_move = std::is_nothrow_move_constructible_v<stored>;

public:
    ///@{
    /// The outcome, a test for success (and operator bool), and the attempts made.
    [[nodiscard]] retry_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_succeeded() const noexcept {
        return outcome_ == retry_outcome::succeeded;
    }
    explicit operator bool() const noexcept { return is_succeeded(); }
    [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }
    ///@}

    /// True when the last attempt returned; false when it threw.
    [[nodiscard]] bool has_value() const noexcept { return !threw_; }

    /// The last attempt's returned value: the success, or the last failure (an
    /// empty optional, an error) when the outcome is not succeeded. Rethrows the
    /// last attempt's exception when it threw.
    [[nodiscard]] const stored& value() const& requires(!std::is_void_v<R>) {
        rethrow_if_thrown();
        return value_;
    }
    ///@{
    /// The value the call returned (for a call that returns one); copied and moved as the value is.
    [[nodiscard]] stored& value() & requires(!std::is_void_v<R>) {
        rethrow_if_thrown();
        return value_;
    }
    [[nodiscard]] stored&& value() && requires(!std::is_void_v<R>) {
        rethrow_if_thrown();
        return std::move(value_);
    }
    /// For void operations: returns if the last attempt returned, else rethrows.
    void value() const& requires std::is_void_v<R> { rethrow_if_thrown(); }

    /// The last attempt's exception, or null when it returned.
    [[nodiscard]] std::exception_ptr exception() const noexcept {
        return threw_ ? exception_ : std::exception_ptr();
    }

    retry_result(retry_result&& other) noexcept(nothrow_move)
        : attempts_(other.attempts_), outcome_(other.outcome_), threw_(other.threw_) {
        if (threw_) {
            ::new (static_cast<void*>(&exception_)) std::exception_ptr(std::move(other.exception_));
        } else {
            ::new (static_cast<void*>(&value_)) stored(std::move(other.value_));
        }
    }
    retry_result(const retry_result& other) requires std::copy_constructible<stored>
        : attempts_(other.attempts_), outcome_(other.outcome_), threw_(other.threw_) {
        if (threw_) {
            ::new (static_cast<void*>(&exception_)) std::exception_ptr(other.exception_);
        } else {
            ::new (static_cast<void*>(&value_)) stored(other.value_);
        }
    }
    retry_result& operator=(retry_result&& other) noexcept requires nothrow_move {
        if (this != &other) {
            destroy();
            ::new (static_cast<void*>(this)) retry_result(std::move(other));
        }
        return *this;
    }
    retry_result& operator=(const retry_result& other) requires(
        nothrow_move&& std::copy_constructible<stored>) {
        retry_result copy(other);
        return *this = std::move(copy);
    }
    ///@}
    ~retry_result() { destroy(); }

private:
    friend struct detail::retry_access;

    // Runs the attempt, keeping what it returned (constructed in place) or threw.
    template <class Op>
    retry_result(std::in_place_t, Op& op, std::uint32_t attempt);
    // The same over a destroyed (or never constructed) value.
    template <class Op>
    void emplace(Op& op, std::uint32_t attempt);

    void destroy() noexcept {
        if (threw_) {
            exception_.~exception_ptr();
        } else {
            value_.~stored();
        }
    }

    void rethrow_if_thrown() const {
        if (threw_) {
            std::rethrow_exception(exception_);
        }
    }

    union {
        stored value_;
        std::exception_ptr exception_;
    };
    std::uint32_t attempts_ = 0;
    retry_outcome outcome_ = retry_outcome::succeeded;
    bool threw_ = false;
};

// ---------------------------------------------------------------------------
// retry().

namespace detail {

// What op() (or op(attempt)) returns; no type when it can be called neither way.
template <class Op, bool = std::is_invocable_v<Op&>>
struct attempt_result : std::invoke_result<Op&, std::uint32_t> {};
template <class Op>
struct attempt_result<Op, true> : std::invoke_result<Op&> {};
template <class Op>
using attempt_result_t = typename attempt_result<Op>::type;

template <class Op>
inline constexpr bool nothrow_attempt =
    std::is_invocable_v<Op&> ? std::is_nothrow_invocable_v<Op&>
                             : std::is_nothrow_invocable_v<Op&, std::uint32_t>;

template <class R>
concept has_value_shape = requires(const R& r) {
    { r.has_value() } -> std::convertible_to<bool>;
};

enum class verdict { success, retry, retry_timeout, give_up };

// `stopped` is what a classifier's "stop" means for this failure.
template <class Answer>
[[nodiscard]] constexpr verdict to_verdict(const Answer& answer, verdict stopped) noexcept {
    if constexpr (std::same_as<Answer, retry_decision>) {
        switch (answer) {
        case retry_decision::stop: return stopped;
        case retry_decision::retry: return verdict::retry;
        case retry_decision::retry_timeout: return verdict::retry_timeout;
        }
        return stopped;
    } else {
        static_assert(std::same_as<Answer, bool>,
                      "settle::retry: a classifier returns settle::retry_decision or bool");
        return answer ? verdict::retry : stopped;
    }
}

struct retry_access {
    template <class R, class Op>
    static retry_result<R> run(Op& op, std::uint32_t attempt) {
        return retry_result<R>(std::in_place, op, attempt);
    }

    // Replaces the last attempt's result with the next attempt's.
    template <class R, class Op>
    static void rerun(retry_result<R>& result, Op& op, std::uint32_t attempt) {
        result.destroy();
        result.emplace(op, attempt);
    }

    template <class R, class C>
    static verdict classify(const C& classifier, const retry_result<R>& result) {
        if (result.threw_) {
            if constexpr (std::is_invocable_v<const C&, const std::exception_ptr&>) {
                return to_verdict(std::invoke(classifier, result.exception_), verdict::give_up);
            } else {
                return to_verdict(default_exception_decision(result.exception_), verdict::give_up);
            }
        }
        if constexpr (std::is_void_v<R>) {
            return verdict::success;
        } else {
            const R& value = result.value_;
            if constexpr (has_value_shape<R>) {
                if (value.has_value()) {
                    return verdict::success;
                }
                if constexpr (std::is_invocable_v<const C&, const R&>) {
                    return to_verdict(std::invoke(classifier, value), verdict::give_up);
                } else {
                    return verdict::retry;
                }
            } else if constexpr (std::is_invocable_v<const C&, const R&>) {
                return to_verdict(std::invoke(classifier, value), verdict::success);
            } else {
                return verdict::success;
            }
        }
    }

    template <class R, class P>
    static std::optional<std::chrono::nanoseconds> pushback(const P& hook,
                                                            const retry_result<R>& result) {
        if (result.threw_) {
            if constexpr (std::is_invocable_v<const P&, const std::exception_ptr&>) {
                return std::optional<std::chrono::nanoseconds>(
                    std::invoke(hook, result.exception_));
            } else {
                return std::nullopt;
            }
        }
        if constexpr (std::is_void_v<R>) {
            return std::nullopt;
        } else if constexpr (std::is_invocable_v<const P&, const R&>) {
            return std::optional<std::chrono::nanoseconds>(std::invoke(hook, result.value_));
        } else {
            return std::nullopt;
        }
    }

    template <class R>
    static void finish(retry_result<R>& result, std::uint32_t attempts,
                       retry_outcome outcome) noexcept {
        result.attempts_ = attempts;
        result.outcome_ = outcome;
    }
};

}  // namespace detail

template <class R>
template <class Op>
retry_result<R>::retry_result(std::in_place_t, Op& op, std::uint32_t attempt) {
    emplace(op, attempt);
}

template <class R>
template <class Op>
void retry_result<R>::emplace(Op& op, std::uint32_t attempt) {
    // The value is built in place from the call (no temporary to copy).
    const auto run = [&] {
        if constexpr (std::is_void_v<R>) {
            if constexpr (std::is_invocable_v<Op&>) {
                op();
            } else {
                op(attempt);
            }
            ::new (static_cast<void*>(&value_)) stored();
        } else if constexpr (std::is_invocable_v<Op&>) {
            ::new (static_cast<void*>(&value_)) stored(op());
        } else {
            ::new (static_cast<void*>(&value_)) stored(op(attempt));
        }
    };
    threw_ = false;
    if constexpr (detail::nothrow_attempt<Op>) {
        run();
    } else {
        try {
            run();
        } catch (...) {
            ::new (static_cast<void*>(&exception_)) std::exception_ptr(std::current_exception());
            threw_ = true;
        }
    }
}

namespace detail {

// Gives tokens back unless the retry they paid for went ahead.
struct budget_hold {
    retry_budget* budget;
    std::uint32_t tokens;
    ~budget_hold() {
        if (budget != nullptr) {
            budget->release(tokens);
        }
    }
};

template <class B, class Cl, class P, class C, class S, class Seed, class Op>
auto retry_loop(const retry_policy<B, Cl, P>& policy, C& clock, S& sleeper, Seed&& draw_seed,
                Op& op, const std::stop_token& stop) -> retry_result<attempt_result_t<Op>> {
    using R = attempt_result_t<Op>;
    using time_point = typename C::time_point;

    time_point start{};
    if (policy.deadline().has_value()) {
        start = clock.now();
    }
    retry_budget* const budget = policy.budget();
    std::uint64_t seed = 0;
    std::chrono::nanoseconds previous{0};
    std::uint32_t held = 0;  // tokens paid for the attempt in flight

    // One result object for every attempt, so it is returned without a copy.
    retry_result<R> result = retry_access::run<R>(op, 0);
    for (std::uint32_t attempt = 0;; ++attempt) {
        if (attempt != 0) {
            retry_access::rerun(result, op, attempt);
        }
        const verdict v = retry_access::classify(policy.classifier(), result);
        if (v == verdict::success) {
            if (budget != nullptr) {
                budget->release(attempt == 0 ? budget->options().success_refund : held);
            }
            retry_access::finish(result, attempt + 1, retry_outcome::succeeded);
            return result;
        }
        if (v == verdict::give_up) {
            retry_access::finish(result, attempt + 1, retry_outcome::not_retryable);
            return result;
        }
        if (attempt + 1 >= policy.max_attempts()) {
            retry_access::finish(result, attempt + 1, retry_outcome::exhausted);
            return result;
        }

        if constexpr (!schedule<B>) {
            if (attempt == 0) {
                seed = draw_seed();
            }
        }
        std::chrono::nanoseconds delay =
            next_backoff_delay(policy.backoff(), attempt, seed, previous);
        previous = delay;
        if (const auto pushed = retry_access::pushback(policy.pushback(), result)) {
            delay = *pushed < std::chrono::nanoseconds(0) ? std::chrono::nanoseconds(0) : *pushed;
        }

        if (const std::optional<std::chrono::nanoseconds> deadline = policy.deadline()) {
            std::chrono::nanoseconds elapsed = saturating_ns(clock.now() - start);
            if (elapsed < std::chrono::nanoseconds(0)) {
                elapsed = std::chrono::nanoseconds(0);  // the clock went back: count no time
            }
            if (elapsed >= *deadline) {
                retry_access::finish(result, attempt + 1, retry_outcome::deadline);
                return result;
            }
            const std::chrono::nanoseconds remaining = *deadline - elapsed;
            if (delay > remaining) {
                if (policy.on_deadline() == deadline_mode::stop) {
                    retry_access::finish(result, attempt + 1, retry_outcome::deadline);
                    return result;
                }
                delay = remaining;
            }
        }

        budget_hold hold{nullptr, 0};
        if (budget != nullptr) {
            held = v == verdict::retry_timeout ? budget->options().timeout_cost
                                               : budget->options().retry_cost;
            if (!budget->try_acquire(held)) {
                retry_access::finish(result, attempt + 1, retry_outcome::budget);
                return result;
            }
            hold.budget = budget;
            hold.tokens = held;
        }
        if (!sleeper.sleep_for(delay, stop)) {
            retry_access::finish(result, attempt + 1, retry_outcome::cancelled);
            return result;
        }
        hold.budget = nullptr;  // the retry goes ahead: keep the tokens
    }
}

}  // namespace detail

/// Runs `op` under `policy`: attempt 0 at once, then after each failure the
/// policy's delay (waited through `sleeper`), until an attempt succeeds or the
/// policy says stop. Returns the last attempt's result, the number of attempts
/// and the outcome; never throws the operation's exception (value() rethrows
/// it). Exceptions from the classifier, the hook or the sleeper propagate.
///
/// `op` is called as op() or, if that does not compile, op(attempt). An attempt
/// fails when it throws, or returns a value with has_value() false (optional,
/// expected, parse_result); any other returned value succeeds unless the
/// classifier asks to retry it. Without a classifier every failure is retried,
/// except a bug: an exception that is a std::logic_error, or a settle::error
/// with invalid_argument, malformed_input or decode_failed, stops at once
/// (outcome not_retryable). A classifier taking std::exception_ptr decides
/// instead.
///
/// The clock is read only when the policy has a deadline; the generator is
/// drawn from (once: a 64-bit seed) only when a randomised backoff needs a
/// delay, so delays equal backoff.delay(n, seed). The stop token interrupts
/// waits; the first attempt always runs. An operation that succeeds first
/// time costs one call, one classification and no allocation.
template <backoff B, class Cl, class P, clock C, sleeper S, std::uniform_random_bit_generator G,
          class Op>
[[nodiscard]] auto retry(const retry_policy<B, Cl, P>& policy, C& clock, S& sleeper, G& random,
                         Op&& op, std::stop_token stop = {})
    -> retry_result<detail::attempt_result_t<std::remove_reference_t<Op>>> {
    return detail::retry_loop(
        policy, clock, sleeper, [&random] { return detail::draw_word(random); }, op, stop);
}

/// The same, for deterministic schedules (ladders, constant, linear,
/// exponential without jitter), which need no random generator.
template <backoff B, class Cl, class P, clock C, sleeper S, class Op>
requires schedule<B> &&(!std::uniform_random_bit_generator<std::remove_cvref_t<Op>>)
    [[nodiscard]] auto retry(const retry_policy<B, Cl, P>& policy, C& clock, S& sleeper, Op&& op,
                             std::stop_token stop = {})
        -> retry_result<detail::attempt_result_t<std::remove_reference_t<Op>>> {
    return detail::retry_loop(
        policy, clock, sleeper, [] { return std::uint64_t{0}; }, op, stop);
}

// ---------------------------------------------------------------------------
// Persisted retries.

/// The schedule of a record stored in a database (an outbox row, a
/// compensation task): when its next attempt is due, and when it has had
/// enough. Stateless and deterministic: the delays depend only on (seed,
/// attempt), so a relay that restarts, or another relay, computes the same
/// times. Derive the seed from the record's id.
///
///     constexpr settle::persisted_retry plan{settle::message_queue_ladder, 19};
///     if (auto at = plan.next_attempt_at(row.attempts, now)) row.next_attempt_at = *at;
///     else dead_letter(row);
template <backoff B>
class persisted_retry {
public:
    /// Throws settle::error(invalid_argument) when max_attempts is 0.
    constexpr persisted_retry(B delays, std::uint32_t max_attempts)
        : backoff_(std::move(delays)), max_attempts_(max_attempts) {
        if (max_attempts == 0) {
            detail::reject_retry_config("settle::persisted_retry: max_attempts must be at least 1");
        }
    }

    /// True once `attempts` attempts leave no more to make.
    [[nodiscard]] constexpr bool exhausted(std::uint32_t attempts) const noexcept {
        return attempts >= max_attempts_;
    }

    /// The wait after attempt n (0-based) failed.
    [[nodiscard]] constexpr std::chrono::nanoseconds delay(std::uint32_t n,
                                                           std::uint64_t seed) const noexcept {
        return detail::backoff_delay(backoff_, n, seed);
    }
    /// The wait after attempt n (0-based) failed, for a backoff without jitter (no seed).
    [[nodiscard]] constexpr std::chrono::nanoseconds delay(
        std::uint32_t n) const noexcept requires schedule<B> {
        return backoff_.delay(n);
    }

    /// When the next attempt is due, given the attempts made so far and the
    /// time the last one failed: `now` for the first attempt, now + delay(
    /// attempts_so_far - 1, seed) after that (rounded up to the time point's
    /// resolution, saturating); nullopt once exhausted(attempts_so_far).
    template <class Clock, class Duration>
    [[nodiscard]] constexpr std::optional<std::chrono::time_point<Clock, Duration>> next_attempt_at(
        std::uint32_t attempts_so_far, std::chrono::time_point<Clock, Duration> now,
        std::uint64_t seed) const noexcept {
        if (exhausted(attempts_so_far)) {
            return std::nullopt;
        }
        if (attempts_so_far == 0) {
            return now;
        }
        return detail::saturating_later(now, delay(attempts_so_far - 1, seed));
    }
    ///@{
    /// When the next attempt is due, for a backoff without jitter (no seed; empty when no attempt
    /// is left), and the backoff and attempt limit the ladder was made with.
    template <class Clock, class Duration>
    [[nodiscard]] constexpr std::optional<std::chrono::time_point<Clock, Duration>> next_attempt_at(
        std::uint32_t attempts_so_far,
        std::chrono::time_point<Clock, Duration> now) const noexcept requires schedule<B> {
        return next_attempt_at(attempts_so_far, now, 0);
    }

    [[nodiscard]] constexpr const B& backoff() const noexcept { return backoff_; }
    [[nodiscard]] constexpr std::uint32_t max_attempts() const noexcept { return max_attempts_; }
    ///@}

private:
    B backoff_;
    std::uint32_t max_attempts_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_RETRY_HPP
