// Property tests: for random configurations, attempt numbers (up to the largest
// std::uint32_t) and seeds, every delay stays within its documented bounds and
// never overflows, wraps, goes negative or becomes NaN.
//
// Counts are chosen so the whole file runs in about 1.5 s under
// AddressSanitizer (debug build): about 5.5 million delays in all. Checks inside the
// loops use REQUIRE only on failure, so a passing run costs no assertion overhead.
#include <settle/retry.hpp>

#include "settle_test.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

namespace {

constexpr std::uint32_t max_attempt = std::numeric_limits<std::uint32_t>::max();
constexpr int configs = 2000;              // random configurations per schedule kind
constexpr std::uint32_t sequential = 200;  // attempts 0 .. 199 for each
constexpr int random_attempts = 100;       // plus this many random attempt numbers
constexpr int near_max = 8;                // plus the largest few

__extension__ using i128 = __int128;

// A duration spread over all magnitudes: 1 ns .. ~292 years, log-uniform.
ns any_duration(std::mt19937_64& random, std::int64_t at_least = 0) {
    const int bits = std::uniform_int_distribution<int>(0, 63)(random);
    const std::int64_t top =
        bits == 63 ? std::numeric_limits<std::int64_t>::max() : (std::int64_t{1} << bits);
    const std::int64_t span = std::numeric_limits<std::int64_t>::max() - at_least;
    const std::int64_t extra =
        std::uniform_int_distribution<std::int64_t>(0, top < span ? top : span)(random);
    return ns(at_least + extra);
}

double any_multiplier(std::mt19937_64& random) {
    static constexpr double special[] = {1.0,
                                         1.0000000000000002,
                                         1.0000001,
                                         1.1,
                                         1.5,
                                         2.0,
                                         3.0,
                                         10.0,
                                         1e10,
                                         1e300,
                                         std::numeric_limits<double>::max()};
    const auto pick = std::uniform_int_distribution<std::size_t>(0, std::size(special))(random);
    if (pick < std::size(special)) {
        return special[pick];
    }
    return std::uniform_real_distribution<double>(1.0, 100.0)(random);
}

// Calls check(n) for attempts 0 .. sequential - 1, random ones and the largest ones.
template <class F>
void for_attempts(std::mt19937_64& random, F check) {
    for (std::uint32_t n = 0; n < sequential; ++n) {
        check(n);
    }
    for (int i = 0; i < random_attempts; ++i) {
        check(std::uniform_int_distribution<std::uint32_t>(0, max_attempt)(random));
    }
    for (std::uint32_t k = 0; k < near_max; ++k) {
        check(max_attempt - k);
    }
}

}  // namespace

TEST_CASE("exponential delays stay in base to cap and match the formula", "[retry]") {
    std::mt19937_64 random(1);
    for (int c = 0; c < configs; ++c) {
        const ns base = any_duration(random, 1);
        const ns cap = any_duration(random, base.count());
        const double multiplier = any_multiplier(random);
        const settle::exponential_backoff backoff{base, multiplier, cap};
        ns previous = base;
        for_attempts(random, [&](std::uint32_t n) {
            const ns d = backoff.delay(n);
            // The formula in extended precision; the schedule squares repeatedly in double,
            // so allow n ulps of relative error (far below a nanosecond in practice).
            const long double exact =
                static_cast<long double>(base.count()) *
                std::pow(static_cast<long double>(multiplier), static_cast<long double>(n));
            const long double expected = std::min(exact, static_cast<long double>(cap.count()));
            const long double tolerance =
                1.0L + expected * (static_cast<long double>(n) + 2.0L) * 2.3e-16L;
            if (d < base || d > cap ||
                std::abs(static_cast<long double>(d.count()) - expected) > tolerance ||
                (n > 0 && n < sequential && d.count() + tolerance < previous.count())) {
                INFO("base " << base.count() << " multiplier " << multiplier << " cap "
                             << cap.count() << " attempt " << n << " delay " << d.count()
                             << " expected " << static_cast<double>(expected));
                REQUIRE(false);
            }
            if (n < sequential) {
                previous = d;
            }
        });
    }
}

TEST_CASE("linear constant and ladder delays are exact for every attempt", "[retry]") {
    std::mt19937_64 random(2);
    for (int c = 0; c < configs; ++c) {
        const ns base = any_duration(random);
        const ns step = any_duration(random);
        const ns cap = any_duration(random, base.count());
        const settle::linear_backoff linear{base, step, cap};
        const settle::constant_backoff constant{base};
        const settle::ladder<4> ladder{base, step, cap};
        for_attempts(random, [&](std::uint32_t n) {
            const i128 exact =
                static_cast<i128>(base.count()) + static_cast<i128>(step.count()) * n;
            const ns expected = exact < cap.count() ? ns(static_cast<std::int64_t>(exact)) : cap;
            const ns on_ladder = n == 0 ? base : n == 1 ? step : cap;
            if (linear.delay(n) != expected || constant.delay(n) != base ||
                ladder.delay(n) != on_ladder) {
                INFO("base " << base.count() << " step " << step.count() << " cap " << cap.count()
                             << " attempt " << n);
                REQUIRE(false);
            }
        });
    }
}

TEST_CASE("full and equal jitter stay within their bounds", "[retry]") {
    std::mt19937_64 random(3);
    for (int c = 0; c < configs; ++c) {
        const ns base = any_duration(random, 1);
        const ns cap = any_duration(random, base.count());
        const settle::exponential_backoff schedule{base, any_multiplier(random), cap};
        const settle::jittered full{schedule, settle::jitter::full};
        const settle::jittered equal{schedule, settle::jitter::equal};
        const std::uint64_t seed = random();
        for_attempts(random, [&](std::uint32_t n) {
            const ns e = schedule.delay(n);
            const ns f = full.delay(n, seed);
            const ns q = equal.delay(n, seed);
            // Deterministic: the same (n, seed) gives the same delay.
            if (f < 0ns || f >= e || q < e / 2 || q >= e || f != full.delay(n, seed) ||
                q != equal.delay(n, seed)) {
                INFO("e " << e.count() << " full " << f.count() << " equal " << q.count()
                          << " attempt " << n << " seed " << seed);
                REQUIRE(false);
            }
        });
    }
}

TEST_CASE("jitter is spread evenly over its range", "[retry]") {
    // 100000 seeds at a fixed e = 1 s: full jitter averages e / 2, equal jitter 3 e / 4.
    const settle::jittered full{settle::constant_backoff{1s}, settle::jitter::full};
    const settle::jittered equal{settle::constant_backoff{1s}, settle::jitter::equal};
    double full_sum = 0;
    double equal_sum = 0;
    constexpr int samples = 100'000;
    for (std::uint64_t seed = 0; seed < samples; ++seed) {
        full_sum += static_cast<double>(full.delay(3, seed).count());
        equal_sum += static_cast<double>(equal.delay(3, seed).count());
    }
    CHECK(std::abs(full_sum / samples / 1e9 - 0.5) < 0.005);
    CHECK(std::abs(equal_sum / samples / 1e9 - 0.75) < 0.0025);
}

TEST_CASE("decorrelated jitter stays between base and cap over long chains", "[retry]") {
    std::mt19937_64 random(4);
    for (int c = 0; c < 20; ++c) {
        const ns base = any_duration(random, 1);
        const ns cap = any_duration(random, base.count());
        const settle::decorrelated_jitter backoff{base, cap};
        const std::uint64_t seed = random();
        ns previous = base;
        for (std::uint32_t n = 0; n < 50'000; ++n) {  // 1 million steps in all
            const ns d = backoff.delay(n, seed, previous);
            const bool below_three_times = previous > ns::max() / 3 || d < previous * 3;
            if (d < base || d > cap || !(below_three_times || d == base)) {
                INFO("base " << base.count() << " cap " << cap.count() << " attempt " << n
                             << " previous " << previous.count() << " delay " << d.count());
                REQUIRE(false);
            }
            previous = d;
        }
    }
    // One step at any attempt number, from any previous delay.
    for (int i = 0; i < 100'000; ++i) {
        const ns base = any_duration(random, 1);
        const ns cap = any_duration(random, base.count());
        const settle::decorrelated_jitter backoff{base, cap};
        const ns previous = any_duration(random);
        const auto n = std::uniform_int_distribution<std::uint32_t>(0, max_attempt)(random);
        const ns d = backoff.delay(n, random(), previous);
        if (d < base || d > cap) {
            INFO("base " << base.count() << " cap " << cap.count() << " previous "
                         << previous.count());
            REQUIRE(false);
        }
    }
}

TEST_CASE("smooth decorrelated jitter stays between zero and cap for any attempt", "[retry]") {
    std::mt19937_64 random(5);
    for (int c = 0; c < configs; ++c) {
        const ns base = any_duration(random, 1);
        const ns cap = any_duration(random, base.count());
        const settle::smooth_decorrelated_jitter backoff{base, cap};
        const std::uint64_t seed = random();
        for_attempts(random, [&](std::uint32_t n) {
            const ns d = backoff.delay(n, seed);
            if (d < 0ns || d > cap || (n >= 1024 && d != cap) || d != backoff.delay(n, seed)) {
                INFO("base " << base.count() << " cap " << cap.count() << " attempt " << n
                             << " delay " << d.count());
                REQUIRE(false);
            }
        });
    }
}
