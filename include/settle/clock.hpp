// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_CLOCK_HPP
#define SETTLE_CLOCK_HPP

#include <settle/version.hpp>

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace detail {
template <class T>
inline constexpr bool is_time_point = false;
template <class C, class D>
inline constexpr bool is_time_point<std::chrono::time_point<C, D>> = true;
}  // namespace detail

/// Where settle reads the time. Anything with now() returning a
/// std::chrono::time_point: std::chrono::system_clock, steady_clock,
/// settle::manual_clock, or your own. Components take the clock by reference
/// and never read the time any other way.
template <class C>
concept clock = requires(const C& c) {
    requires detail::is_time_point<typename C::time_point>;
    { c.now() } -> std::same_as<typename C::time_point>;
};

namespace detail {

// t + d for a d that is not negative, or the latest time point when the sum
// would overflow: a lease or a retention that reaches past the end of time
// ends at the end of time, never wraps into the past.
template <class TimePoint, class Duration>
[[nodiscard]] constexpr TimePoint saturating_add(TimePoint t, Duration d) noexcept {
    if (t.time_since_epoch().count() >= 0 && d > TimePoint::max() - t) {
        return TimePoint::max();
    }
    return t + d;
}

}  // namespace detail

/// A clock that tells Unix time: its time points are std::chrono::system_clock's
/// (system_clock itself, settle::manual_clock, or any clock whose time_point is
/// a std::chrono::sys_time). Ids and persisted times need one; steady_clock is not.
template <class C>
concept wall_clock =
    clock<C> && std::same_as<typename C::time_point::clock, std::chrono::system_clock>;

/// Every instant that leaves the process (a SQL column, codec bytes, a record
/// another service reads) is a stored_time: Unix time in whole microseconds.
/// system_clock's own tick differs between standard libraries (nanoseconds
/// with libstdc++, microseconds with libc++), so raw ticks are never stored:
/// two services built differently would misread each other's times by 1000x.
/// Microseconds reach about 292,000 years either side of 1970.
using stored_time = std::chrono::sys_time<std::chrono::microseconds>;

/// A wall-clock time point as stored: rounded down to the microsecond, so a
/// stored instant is never later than the one it stands for.
template <class Duration>
[[nodiscard]] constexpr stored_time to_stored_time(std::chrono::sys_time<Duration> t) noexcept {
    return std::chrono::floor<std::chrono::microseconds>(t);
}

/// A clock that moves only when told to: for tests, and for replaying a
/// schedule. Its time points are system_clock's (Unix epoch), so it can stand
/// in for the wall clock in ids and persisted times. Thread-safe.
class manual_clock {
public:
    ///@{
    /// The std::chrono clock interface (system_clock's representation; not steady); made at a given
    /// start time; now() reads the time the clock was set or advanced to.
    using duration = std::chrono::system_clock::duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::system_clock::time_point;
    static constexpr bool is_steady = false;

    constexpr manual_clock() noexcept = default;
    constexpr explicit manual_clock(time_point start) noexcept
        : ticks_(start.time_since_epoch().count()) {}
    manual_clock(const manual_clock&) = delete;
    manual_clock& operator=(const manual_clock&) = delete;

    [[nodiscard]] time_point now() const noexcept {
        return time_point(duration(ticks_.load(std::memory_order_acquire)));
    }
    ///@}
    /// Moves the clock by d; saturates at the ends of time_point's range.
    void advance(duration d) noexcept {
        rep ticks = ticks_.load(std::memory_order_relaxed);
        rep next;
        do {
            next = d.count() > 0 && ticks > max_rep - d.count()   ? max_rep
                   : d.count() < 0 && ticks < min_rep - d.count() ? min_rep
                                                                  : ticks + d.count();
        } while (!ticks_.compare_exchange_weak(ticks, next, std::memory_order_acq_rel));
    }
    /// Sets the current time (forwards or backwards).
    void set(time_point t) noexcept {
        ticks_.store(t.time_since_epoch().count(), std::memory_order_release);
    }

private:
    static constexpr rep max_rep = std::numeric_limits<rep>::max();
    static constexpr rep min_rep = std::numeric_limits<rep>::min();
    std::atomic<rep> ticks_{0};
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_CLOCK_HPP
