// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_SLEEPER_HPP
#define SETTLE_SLEEPER_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <stop_token>

#include <settle/detail/macro_scope.hpp>

// Where settle waits: between retries, and while a relay is idle. Kept apart
// from <settle/clock.hpp> so that records and stores, which only read the
// time, do not need <stop_token>.

SETTLE_BEGIN_NAMESPACE

/// Where settle waits. sleep_for returns true after waiting the whole duration,
/// false as soon as the stop token is stopped (possibly before waiting at all).
template <class S>
concept sleeper = requires(S& s, std::chrono::nanoseconds d, std::stop_token token) {
    { s.sleep_for(d, token) } -> std::same_as<bool>;
};

/// Sleeps the calling thread; wakes early when the stop token is stopped. A
/// duration too long to add to the current time (nanoseconds::max(), say)
/// waits until the stop request: it never wraps into a wait that ends at once.
class system_sleeper {
public:
    /// Sleeps for d, or until the stop token is stopped; true unless stopped.
    bool sleep_for(std::chrono::nanoseconds d, std::stop_token token) {
        using steady = std::chrono::steady_clock;
        const steady::time_point now = steady::now();
        const steady::time_point until =
            d > steady::time_point::max() - now ? steady::time_point::max() : now + d;
        std::mutex mutex;
        std::condition_variable_any wake;
        std::unique_lock lock(mutex);
        // The predicate never holds: wait out the duration or the stop request.
        (void)wake.wait_until(lock, token, until, [] { return false; });
        return !token.stop_requested();
    }
};

/// Does not wait: moves a manual_clock forward by the requested duration, so
/// code under test sees the time pass. Counts the sleeps and their total (which
/// saturates rather than wrapping). Thread-safe, like manual_clock: threads may
/// sleep on one sleeper and read its counters at the same time.
class manual_sleeper {
public:
    ///@{
    /// A sleeper moving the given manual_clock; sleep_for moves it by d and returns true unless
    /// stopped; the number of sleeps and their total.
    explicit manual_sleeper(manual_clock& clock) noexcept : clock_(&clock) {}
    manual_sleeper(const manual_sleeper&) = delete;
    manual_sleeper& operator=(const manual_sleeper&) = delete;

    bool sleep_for(std::chrono::nanoseconds d, std::stop_token token) {
        if (token.stop_requested()) {
            return false;
        }
        const auto step = std::chrono::duration_cast<manual_clock::duration>(d);
        clock_->advance(step);
        sleeps_.fetch_add(1, std::memory_order_relaxed);
        rep total = total_.load(std::memory_order_relaxed);
        while (!total_.compare_exchange_weak(
            total, step.count() > max_rep - total ? max_rep : total + step.count(),
            std::memory_order_relaxed)) {
        }
        return true;
    }

    [[nodiscard]] std::uint64_t sleeps() const noexcept {
        return sleeps_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] manual_clock::duration total() const noexcept {
        return manual_clock::duration(total_.load(std::memory_order_relaxed));
    }
    ///@}

private:
    using rep = manual_clock::rep;
    static constexpr rep max_rep = std::numeric_limits<rep>::max();

    manual_clock* clock_;
    std::atomic<std::uint64_t> sleeps_{0};
    std::atomic<rep> total_{0};
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_SLEEPER_HPP
