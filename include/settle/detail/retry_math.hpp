// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_DETAIL_RETRY_MATH_HPP
#define SETTLE_DETAIL_RETRY_MATH_HPP

#include <settle/version.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <ratio>
#include <type_traits>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace detail {

using ns = std::chrono::nanoseconds;
using ns_rep = ns::rep;

inline constexpr ns ns_max = ns::max();

// The finalizer of SplitMix64 (Steele, Lea, Flood 2014), a bijection on 64 bits.
[[nodiscard]] constexpr std::uint64_t splitmix64_mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
}

// The random word for attempt n of the sequence named by seed: the (n + 1)-th
// output of SplitMix64 started at seed. Stateless, so any attempt's word can be
// recomputed from (seed, n) alone. Part of the persisted-schedule contract: a
// change here would move every stored next-attempt time.
[[nodiscard]] constexpr std::uint64_t jitter_word(std::uint64_t seed, std::uint64_t n) noexcept {
    return splitmix64_mix(seed + (n + 1U) * 0x9e3779b97f4a7c15ULL);
}

// floor(a * b / 2^64): maps a uniform word a onto [0, b).
[[nodiscard]] constexpr std::uint64_t mulhi64(std::uint64_t a, std::uint64_t b) noexcept {
#if defined(__SIZEOF_INT128__)
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64U);
#else
    const std::uint64_t a_lo = a & 0xffffffffULL;
    const std::uint64_t a_hi = a >> 32U;
    const std::uint64_t b_lo = b & 0xffffffffULL;
    const std::uint64_t b_hi = b >> 32U;
    const std::uint64_t lo_lo = a_lo * b_lo;
    const std::uint64_t hi_lo = a_hi * b_lo;
    const std::uint64_t lo_hi = a_lo * b_hi;
    const std::uint64_t cross = (lo_lo >> 32U) + (hi_lo & 0xffffffffULL) + lo_hi;
    return (hi_lo >> 32U) + (cross >> 32U) + a_hi * b_hi;
#endif
}

// A word mapped onto [0, 1) with 53 random bits: k / 2^53.
[[nodiscard]] constexpr double unit_interval(std::uint64_t word) noexcept {
    return static_cast<double>(word >> 11U) * (1.0 / 9007199254740992.0);
}

// Uniform in [0, width) for width >= 0; 0 when width is 0.
[[nodiscard]] constexpr ns uniform_below(ns width, std::uint64_t word) noexcept {
    return ns(static_cast<ns_rep>(mulhi64(word, static_cast<std::uint64_t>(width.count()))));
}

// Uniform in [lo, hi) for 0 <= lo <= hi; lo when the range is empty.
[[nodiscard]] constexpr ns uniform_between(ns lo, ns hi, std::uint64_t word) noexcept {
    if (hi <= lo) {
        return lo;
    }
    const auto width = static_cast<std::uint64_t>(hi.count() - lo.count());
    return lo + ns(static_cast<ns_rep>(mulhi64(word, width)));
}

// 2^63 as a double: every double strictly below it converts to int64 exactly
// after truncation, so a value checked against it never overflows.
inline constexpr double ns_limit_double = 9223372036854775808.0;

// A double count of nanoseconds to a duration in [0, cap], truncating toward
// zero: negative values give 0, values at or above cap (and NaN) give cap.
// Never converts a double that is out of the integer's range.
[[nodiscard]] constexpr ns saturate_to_ns(double value, ns cap) noexcept {
    if (value != value) {
        return cap;
    }
    if (value <= 0.0) {
        return ns(0);
    }
    // cap.count() <= 2^63 - 1 rounds to at most 2^63, so value converts safely.
    if (value >= static_cast<double>(cap.count())) {
        return cap;
    }
    const ns result(static_cast<ns_rep>(value));
    return result < cap ? result : cap;
}

// Any chrono duration as nanoseconds, saturating at the representable range.
template <class Rep, class Period>
[[nodiscard]] constexpr ns saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
    if constexpr (std::is_floating_point_v<Rep>) {
        const double v = std::chrono::duration<double, std::nano>(d).count();
        if (!(v < ns_limit_double)) {
            return v != v ? ns(0) : ns::max();
        }
        if (!(v > -ns_limit_double)) {
            return ns::min();
        }
        return ns(static_cast<ns_rep>(v));
    } else {
        // The largest count of this duration that fits in nanoseconds, worked
        // out in this duration's own units so the comparison cannot overflow.
        using to_ns = std::ratio_divide<Period, std::nano>;
        if constexpr (to_ns::den == 1 && to_ns::num == 1) {
            return ns(static_cast<ns_rep>(d.count()));
        } else if constexpr (to_ns::den == 1) {
            constexpr auto top = std::numeric_limits<ns_rep>::max() / to_ns::num;
            if (d.count() > top) {
                return ns::max();
            }
            if (d.count() < -top) {
                return ns::min();
            }
            return ns(static_cast<ns_rep>(d.count() * to_ns::num));
        } else {
            // Coarser than one nanosecond per tick cannot happen here; finer
            // (picoseconds) only shrinks the value.
            return std::chrono::duration_cast<ns>(d);
        }
    }
}

// a + b for non-negative durations, saturating at max.
[[nodiscard]] constexpr ns saturating_add(ns a, ns b) noexcept {
    return a > ns_max - b ? ns_max : a + b;
}

// now + d (a negative d counts as 0), rounded up to the time point's resolution
// (never early), saturating at the largest representable time point.
template <class Clock, class Duration>
[[nodiscard]] constexpr std::chrono::time_point<Clock, Duration> saturating_later(
    std::chrono::time_point<Clock, Duration> now, ns d) noexcept {
    using tp = std::chrono::time_point<Clock, Duration>;
    using rep = typename Duration::rep;
    d = d < ns(0) ? ns(0) : d;
    Duration step{};
    if constexpr (std::is_floating_point_v<rep>) {
        step = std::chrono::duration_cast<Duration>(
            std::chrono::duration<double, std::nano>(static_cast<double>(d.count())));
    } else {
        using to_ns = std::ratio_divide<typename Duration::period, std::nano>;
        if constexpr (to_ns::den == 1) {
            // A tick is to_ns::num nanoseconds (at least one): round up.
            constexpr auto per_tick = static_cast<ns_rep>(to_ns::num);
            const ns_rep ticks = d.count() / per_tick + (d.count() % per_tick != 0 ? 1 : 0);
            if (static_cast<std::uintmax_t>(ticks) >
                static_cast<std::uintmax_t>(std::numeric_limits<rep>::max())) {
                return tp::max();
            }
            step = Duration(static_cast<rep>(ticks));
        } else {
            step = std::chrono::ceil<Duration>(d);
        }
    }
    if (now > tp::max() - step) {
        return tp::max();
    }
    return now + step;
}

// 64 random bits from any uniform random bit generator; one call for 64-bit
// engines, two for 32-bit ones.
template <std::uniform_random_bit_generator G>
[[nodiscard]] std::uint64_t draw_word(G& g) {
    using result = std::invoke_result_t<G&>;
    constexpr auto lo = G::min();
    constexpr auto hi = G::max();
    if constexpr (lo == 0 && static_cast<std::uint64_t>(hi) == ~std::uint64_t{0} &&
                  sizeof(result) >= sizeof(std::uint64_t)) {
        return static_cast<std::uint64_t>(g());
    } else if constexpr (lo == 0 && static_cast<std::uint64_t>(hi) == 0xffffffffULL) {
        const auto high = static_cast<std::uint64_t>(g());
        return (high << 32U) | static_cast<std::uint64_t>(g());
    } else {
        return std::uniform_int_distribution<std::uint64_t>{}(g);
    }
}

}  // namespace detail

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_DETAIL_RETRY_MATH_HPP
