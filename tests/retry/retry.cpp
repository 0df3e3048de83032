// Schedules and jitter: exact values, configuration errors, the seed contract.
#include <settle/retry.hpp>

#include "settle_test.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

namespace {

constexpr std::uint32_t max_attempt = std::numeric_limits<std::uint32_t>::max();

// True when F() is a constant expression: how a configuration error known at
// compile time shows up (the constructor reaches a throw, so it is not).
template <auto F>
concept constant_config = requires {
    typename std::integral_constant<int, ((void)F(), 0)>;
};

template <int Multiplier10>
constexpr settle::exponential_backoff exponential_times() {
    return {100ms, Multiplier10 / 10.0, 10s};
}

// Runs `make` and returns the settle::error it throws (or fails the test).
template <class F>
std::string config_error(F make) {
    try {
        (void)make();
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
        return e.what();
    }
    FAIL("no settle::error thrown");
    return {};
}

bool mentions(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

static_assert(settle::schedule<settle::ladder<3>>);
static_assert(settle::schedule<settle::constant_backoff>);
static_assert(settle::schedule<settle::linear_backoff>);
static_assert(settle::schedule<settle::exponential_backoff>);
static_assert(!settle::schedule<settle::jittered<settle::exponential_backoff>>);
static_assert(settle::backoff<settle::ladder<3>>);
static_assert(settle::backoff<settle::jittered<settle::exponential_backoff>>);
static_assert(settle::backoff<settle::decorrelated_jitter>);
static_assert(settle::backoff<settle::smooth_decorrelated_jitter>);
static_assert(!settle::backoff<int>);
static_assert(std::is_trivially_copyable_v<settle::exponential_backoff>);
static_assert(std::is_trivially_copyable_v<settle::ladder<18>>);

TEST_CASE("the message queue ladder has its 18 steps and stays on the last", "[retry]") {
    constexpr std::array<ns, 18> expected{1s,   5s,   10s,  30s,  1min,  2min,  3min,  4min, 5min,
                                          6min, 7min, 8min, 9min, 10min, 20min, 30min, 1h,   2h};
    const auto& ladder = settle::message_queue_ladder;
    REQUIRE(ladder.size() == 18);
    for (std::uint32_t n = 0; n < 18; ++n) {
        INFO("attempt " << n);
        CHECK(ladder.delay(n) == expected[n]);
        CHECK(ladder.steps()[n] == expected[n]);
    }
    CHECK(ladder.delay(18) == 2h);
    CHECK(ladder.delay(1000) == 2h);
    CHECK(ladder.delay(max_attempt) == 2h);
    STATIC_REQUIRE(settle::message_queue_ladder.delay(17) == 2h);
}

TEST_CASE("ladders are written at compile time or filled at run time", "[retry]") {
    constexpr settle::ladder quick{100ms, 500ms, 2s};
    STATIC_REQUIRE(std::is_same_v<decltype(quick), const settle::ladder<3>>);
    STATIC_REQUIRE(quick.delay(0) == 100ms);
    STATIC_REQUIRE(quick.delay(1) == 500ms);
    STATIC_REQUIRE(quick.delay(2) == 2s);
    STATIC_REQUIRE(quick.delay(3) == 2s);

    const std::vector<ns> from_config{250ms, 0ms, 3s};  // steps need not grow
    const settle::ladder<8> configured{std::span<const ns>(from_config)};
    CHECK(configured.size() == 3);
    CHECK(configured.delay(0) == 250ms);
    CHECK(configured.delay(1) == 0ms);
    CHECK(configured.delay(2) == 3s);
    CHECK(configured.delay(7) == 3s);
    CHECK(configured.delay(max_attempt) == 3s);

    const settle::ladder<4> fewer{1s, 2s};  // a compile-time list below the capacity
    CHECK(fewer.size() == 2);
    CHECK(fewer.delay(5) == 2s);
}

TEST_CASE("constant linear and exponential schedules are exactly their formulas", "[retry]") {
    SECTION("constant") {
        constexpr settle::constant_backoff every{250ms};
        STATIC_REQUIRE(every.delay(0) == 250ms);
        CHECK(every.delay(7) == 250ms);
        CHECK(every.delay(max_attempt) == 250ms);
        CHECK(settle::constant_backoff{0ms}.delay(3) == 0ms);
    }
    SECTION("linear: min(cap, base + n step)") {
        constexpr settle::linear_backoff linear{1s, 2s, 10s};
        constexpr std::array<ns, 7> expected{1s, 3s, 5s, 7s, 9s, 10s, 10s};
        for (std::uint32_t n = 0; n < expected.size(); ++n) {
            INFO("attempt " << n);
            CHECK(linear.delay(n) == expected[n]);
        }
        CHECK(linear.delay(max_attempt) == 10s);
        CHECK(settle::linear_backoff{1s, 0s, 10s}.delay(max_attempt) == 1s);
        CHECK(settle::linear_backoff{0s, 1ns, ns::max()}.delay(max_attempt) == ns(max_attempt));
        const settle::linear_backoff huge_step{1ns, ns::max(), ns::max()};
        CHECK(huge_step.delay(0) == 1ns);
        CHECK(huge_step.delay(1) == ns::max());
        CHECK(huge_step.delay(max_attempt) == ns::max());
        STATIC_REQUIRE(linear.delay(2) == 5s);
    }
    SECTION("exponential with multiplier 2: min(cap, base 2^n)") {
        constexpr settle::exponential_backoff doubling{100ms, 2.0, 10s};
        constexpr std::array<ns, 10> expected{100ms,  200ms,  400ms, 800ms, 1600ms,
                                              3200ms, 6400ms, 10s,   10s,   10s};
        for (std::uint32_t n = 0; n < expected.size(); ++n) {
            INFO("attempt " << n);
            CHECK(doubling.delay(n) == expected[n]);
        }
        CHECK(doubling.delay(63) == 10s);
        CHECK(doubling.delay(64) == 10s);
        CHECK(doubling.delay(max_attempt) == 10s);
        STATIC_REQUIRE(doubling.delay(4) == 1600ms);
        // 2^62 ns fits; the cap is the largest duration.
        CHECK(settle::exponential_backoff{1ns, 2.0, ns::max()}.delay(62) == ns(1LL << 62));
        CHECK(settle::exponential_backoff{1ns, 2.0, ns::max()}.delay(63) == ns::max());
    }
    SECTION("exponential with other multipliers, rounded to the nearest nanosecond") {
        const settle::exponential_backoff one_and_half{100ms, 1.5, 1h};
        CHECK(one_and_half.delay(0) == 100ms);
        CHECK(one_and_half.delay(1) == 150ms);
        CHECK(one_and_half.delay(2) == 225ms);
        CHECK(one_and_half.delay(3) == 337500us);
        CHECK(one_and_half.delay(4) == 506250us);
        CHECK(one_and_half.delay(5) == ns(759'375'000));
        CHECK(one_and_half.delay(6) == ns(1'139'062'500));

        const settle::exponential_backoff ten_percent{100ms, 1.1, 1h};
        CHECK(ten_percent.delay(1) == 110ms);
        CHECK(ten_percent.delay(2) == 121ms);
        CHECK(ten_percent.delay(5) == ns(161'051'000));  // 1.1^5 = 1.61051

        const settle::exponential_backoff tripling{1s, 3.0, 24h};
        CHECK(tripling.delay(10) == 59049s);
        CHECK(tripling.delay(11) == 24h);

        CHECK(settle::exponential_backoff{7s, 1.0, 1h}.delay(max_attempt) == 7s);
        CHECK(settle::exponential_backoff{5s, 2.0, 5s}.delay(0) == 5s);
        CHECK(settle::exponential_backoff{5s, 2.0, 5s}.delay(9) == 5s);
        const settle::exponential_backoff steep{1ns, 1e300, ns::max()};
        CHECK(steep.delay(0) == 1ns);
        CHECK(steep.delay(1) == ns::max());
        CHECK(steep.delay(max_attempt) == ns::max());
        const settle::exponential_backoff steepest{1ns, std::numeric_limits<double>::max(), 1s};
        CHECK(steepest.delay(1) == 1s);
        CHECK(steepest.delay(max_attempt) == 1s);
    }
}

TEST_CASE("bad configuration known at compile time does not compile", "[retry]") {
    STATIC_REQUIRE(constant_config<&exponential_times<20>>);
    STATIC_REQUIRE(constant_config<&exponential_times<10>>);
    STATIC_REQUIRE_FALSE(constant_config<&exponential_times<9>>);  // multiplier below 1
    STATIC_REQUIRE_FALSE(constant_config<&exponential_times<-20>>);

    STATIC_REQUIRE(constant_config<[] { return settle::ladder{1s, 2s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::ladder{1s, -2s}; }>);
    STATIC_REQUIRE(constant_config<[] { return settle::constant_backoff{0s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::constant_backoff{-1ns}; }>);
    STATIC_REQUIRE(constant_config<[] { return settle::linear_backoff{1s, 1s, 1s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::linear_backoff{2s, 1s, 1s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::linear_backoff{1s, -1s, 5s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::linear_backoff{-1s, 1s, 5s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] {
        return settle::exponential_backoff{2s, 2.0, 1s};
    }>);  // cap < base
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::exponential_backoff{0s, 2.0, 1s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] {
        return settle::exponential_backoff{1s, std::numeric_limits<double>::infinity(), 1h};
    }>);
    STATIC_REQUIRE_FALSE(constant_config<[] {
        return settle::exponential_backoff{1s, std::numeric_limits<double>::quiet_NaN(), 1h};
    }>);
    STATIC_REQUIRE(constant_config<[] { return settle::decorrelated_jitter{1s, 1s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::decorrelated_jitter{2s, 1s}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] { return settle::decorrelated_jitter{0s, 1s}; }>);
    STATIC_REQUIRE(constant_config<[] { return settle::persisted_retry{settle::ladder{1s}, 1}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] {
        return settle::persisted_retry{settle::ladder{1s}, 0};
    }>);
    STATIC_REQUIRE(constant_config<[] { return settle::retry_policy{settle::ladder{1s}, 1}; }>);
    STATIC_REQUIRE_FALSE(constant_config<[] {
        return settle::retry_policy{settle::ladder{1s}, 0};
    }>);
    STATIC_REQUIRE_FALSE(constant_config<[] {
        return settle::retry_policy{settle::ladder{1s}}.with_deadline(-1s);
    }>);
}

TEST_CASE("bad configuration found at run time throws invalid_argument saying what", "[retry]") {
    // Values a program reads at run time (volatile keeps them out of constant evaluation).
    volatile double half = 0.5;
    volatile double nan = std::numeric_limits<double>::quiet_NaN();
    volatile long long minus_one = -1;
    const ns negative(minus_one);

    CHECK(mentions(config_error([&] {
                       return settle::exponential_backoff{1s, half, 10s};
                   }),
                   "multiplier must be a finite number of at least 1"));
    CHECK(mentions(config_error([&] {
                       return settle::exponential_backoff{1s, nan, 10s};
                   }),
                   "multiplier"));
    CHECK(mentions(config_error([&] {
                       return settle::exponential_backoff{2s, 2.0 + half, 1s};
                   }),
                   "cap is below base"));
    CHECK(mentions(config_error([&] {
                       return settle::exponential_backoff{negative, 2.0, 1s};
                   }),
                   "base must be positive"));
    CHECK(mentions(config_error([&] {
                       return settle::linear_backoff{1s, negative, 1s};
                   }),
                   "must not be negative"));
    CHECK(mentions(config_error([&] {
                       return settle::linear_backoff{5s, 1s, 1s + negative};
                   }),
                   "cap is below base"));
    CHECK(mentions(config_error([&] { return settle::constant_backoff{negative}; }), "negative"));
    CHECK(mentions(config_error([&] {
                       return settle::ladder{1s, negative};
                   }),
                   "settle::ladder: a step is negative"));
    CHECK(mentions(config_error([&] { return settle::ladder<4>{std::span<const ns>()}; }),
                   "at least one step"));
    const std::vector<ns> five{1s, 2s, 3s, 4s, 5s};
    CHECK(mentions(config_error([&] { return settle::ladder<4>{std::span<const ns>(five)}; }),
                   "capacity"));
    CHECK(mentions(config_error([&] {
                       return settle::decorrelated_jitter{2s, 1s + negative};
                   }),
                   "cap is below base"));
    CHECK(mentions(config_error([&] {
                       return settle::smooth_decorrelated_jitter{negative, 1s};
                   }),
                   "base must be positive"));
    CHECK(mentions(config_error([&] {
                       return settle::smooth_decorrelated_jitter{2s, 1s};
                   }),
                   "cap is below base"));
    CHECK(mentions(config_error([&] {
                       return settle::jittered{settle::constant_backoff{1s},
                                               static_cast<settle::jitter>(minus_one)};
                   }),
                   "unknown jitter"));
}

TEST_CASE("jitter words are the SplitMix64 sequence of the seed", "[retry]") {
    // The published first outputs of SplitMix64 seeded with 0. Persisted next-attempt times
    // depend on these words: this test failing means stored schedules would move.
    CHECK(settle::detail::jitter_word(0, 0) == 0xe220a8397b1dcdafULL);
    CHECK(settle::detail::jitter_word(0, 1) == 0x6e789e6aa1b965f4ULL);
    CHECK(settle::detail::jitter_word(0, 2) == 0x06c45d188009454fULL);

    // Word n is the (n + 1)-th output of the sequential generator, for any seed.
    for (const std::uint64_t seed :
         {std::uint64_t{1}, std::uint64_t{0xdeadbeef}, ~std::uint64_t{0}}) {
        std::uint64_t state = seed;
        for (std::uint32_t n = 0; n < 100; ++n) {
            state += 0x9e3779b97f4a7c15ULL;
            std::uint64_t z = state;
            z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
            z ^= z >> 31U;
            REQUIRE(settle::detail::jitter_word(seed, n) == z);
        }
    }
}

TEST_CASE("full and equal jitter are exactly their formulas", "[retry]") {
    // Expected values computed independently (Python, arbitrary-precision integers) from
    // e = min(10 s, 100 ms 2^n), word = SplitMix64(12345) output n + 1,
    // full = floor(word e / 2^64), equal = floor(e / 2) + floor(word (e - floor(e / 2)) / 2^64).
    const settle::exponential_backoff doubling{100ms, 2.0, 10s};
    const settle::jittered full{doubling, settle::jitter::full};
    const settle::jittered equal{doubling, settle::jitter::equal};
    const settle::jittered none{doubling, settle::jitter::none};
    constexpr std::array<std::int64_t, 8> full_expected{
        13307966, 40963326, 47817033, 140894245, 811008344, 1078510542, 784974175, 4314585738};
    constexpr std::array<std::int64_t, 8> equal_expected{
        56653983, 120481663, 223908516, 470447122, 1205504172, 2139255271, 3592487087, 7157292869};
    for (std::uint32_t n = 0; n < 8; ++n) {
        INFO("attempt " << n);
        CHECK(full.delay(n, 12345) == ns(full_expected[n]));
        CHECK(equal.delay(n, 12345) == ns(equal_expected[n]));
        CHECK(none.delay(n, 12345) == doubling.delay(n));
    }
    CHECK(full.kind() == settle::jitter::full);
    CHECK(full.schedule().delay(3) == 800ms);

    // Jitter applies to the capped value: at the cap, delays spread below it.
    CHECK(full.delay(20, 12345) < 10s);
    CHECK(equal.delay(20, 12345) >= 5s);
    CHECK(equal.delay(20, 12345) < 10s);
    // Nothing to spread: a zero delay stays zero.
    const settle::jittered zero{settle::constant_backoff{0s}, settle::jitter::full};
    CHECK(zero.delay(3, 99) == 0s);

    // The message-queue ladder with full jitter, seed 42 (also checked in Python).
    const settle::jittered mq{settle::message_queue_ladder, settle::jitter::full};
    CHECK(mq.delay(0, 42) == ns(741564878));
    CHECK(mq.delay(5, 42) == ns(104187369185));
    CHECK(mq.delay(17, 42) == ns(3567590338674));
    CHECK(mq.delay(19, 42) == ns(4960413881290));

    STATIC_REQUIRE(
        settle::jittered{settle::exponential_backoff{100ms, 2.0, 10s}, settle::jitter::full}.delay(
            0, 12345) == ns(13307966));
}

TEST_CASE("decorrelated jitter follows its recurrence", "[retry]") {
    // d(-1) = base, d(n) = min(cap, U[base, 3 d(n-1))), from Python with seed 777.
    const settle::decorrelated_jitter decorrelated{100ms, 10s};
    constexpr std::array<std::int64_t, 8> expected{195187767, 416875754, 458841709,  728666383,
                                                   277976954, 618292910, 1093656437, 1161697268};
    ns previous = 100ms;
    for (std::uint32_t n = 0; n < expected.size(); ++n) {
        INFO("attempt " << n);
        CHECK(decorrelated.delay(n, 777) == ns(expected[n]));
        const ns step = decorrelated.delay(n, 777, previous);
        CHECK(step == ns(expected[n]));
        previous = step;
    }
    CHECK(decorrelated.base() == 100ms);
    CHECK(decorrelated.cap() == 10s);
    // The first delay lies in [base, 3 base).
    for (std::uint64_t seed = 0; seed < 1000; ++seed) {
        const ns first = decorrelated.delay(0, seed);
        REQUIRE(first >= 100ms);
        REQUIRE(first < 300ms);
    }
    // The cap holds even when 3 * previous overflows.
    CHECK(settle::decorrelated_jitter{1s, 1h}.delay(5, 1, ns::max()) <= 1h);
    const settle::decorrelated_jitter unbounded{1ns, ns::max()};
    const ns huge = unbounded.delay(max_attempt, 3, ns::max());
    CHECK(huge >= 1ns);
    CHECK(huge <= ns::max());
}

TEST_CASE("smooth decorrelated jitter is the published formula", "[retry]") {
    const settle::smooth_decorrelated_jitter smooth{1s, 1h};
    // From Python with seed 5: (f(n + u(n)) - f(n - 1 + u(n - 1))) / 1.4 * base.
    CHECK(smooth.delay(0, 5) == ns(790584142));
    CHECK(smooth.delay(1, 5) == ns(1591798294));
    CHECK(smooth.delay(2, 5) == ns(957883632));
    CHECK(smooth.delay(3, 5) == ns(2770653986));
    CHECK(smooth.delay(10, 5) == ns(443846988813));
    CHECK(smooth.delay(12, 5) == 1h);  // past the cap
    CHECK(smooth.base() == 1s);
    CHECK(smooth.cap() == 1h);

    // The same formula in long double, for many seeds: agrees to rounding.
    const auto f = [](long double t) { return std::pow(2.0L, t) * std::tanh(std::sqrt(4.0L * t)); };
    const auto u = [](std::uint64_t seed, std::uint32_t n) {
        return static_cast<long double>(settle::detail::jitter_word(seed, n) >> 11U) /
               9007199254740992.0L;
    };
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        for (std::uint32_t n = 0; n < 12; ++n) {
            const long double previous = n == 0 ? 0.0L : f(n - 1 + u(seed, n - 1));
            const long double expected = (f(n + u(seed, n)) - previous) / 1.4L * 1e9L;
            const auto got = static_cast<long double>(smooth.delay(n, seed).count());
            INFO("seed " << seed << " attempt " << n);
            if (expected < 3.6e12L) {
                REQUIRE(std::abs(got - expected) <= 1.0L + expected * 1e-12L);
            } else {
                REQUIRE(got == 3.6e12L);
            }
        }
    }

    // Medians near base, base, 2 base, 4 base, 8 base, 16 base (Polly's scaling aims for
    // whole multiples of base): checked within 15 % over 2001 seeds.
    const settle::smooth_decorrelated_jitter uncapped{1s, ns::max()};
    constexpr std::array<double, 6> medians{0.9, 1.14, 2.0, 4.0, 8.0, 16.0};
    for (std::uint32_t n = 0; n < medians.size(); ++n) {
        std::vector<std::int64_t> samples;
        for (std::uint64_t seed = 0; seed <= 2000; ++seed) {
            samples.push_back(uncapped.delay(n, seed).count());
        }
        std::nth_element(samples.begin(), samples.begin() + 1000, samples.end());
        const double median = static_cast<double>(samples[1000]) / 1e9;
        INFO("attempt " << n << " median " << median);
        CHECK(median > medians[n] * 0.85);
        CHECK(median < medians[n] * 1.15);
    }

    // 2^t overflows a double from t = 1024 on: the delay is the cap (as in Polly).
    CHECK(smooth.delay(1023, 5) == 1h);
    CHECK(smooth.delay(1024, 5) == 1h);
    CHECK(smooth.delay(max_attempt, 5) == 1h);
    CHECK(uncapped.delay(1024, 5) == ns::max());
    CHECK(uncapped.delay(max_attempt, 5) == ns::max());
}

TEST_CASE("every enum has a name for logs", "[retry]") {
    CHECK(settle::to_string(settle::jitter::none) == "none");
    CHECK(settle::to_string(settle::jitter::full) == "full");
    CHECK(settle::to_string(settle::jitter::equal) == "equal");
    CHECK(settle::to_string(settle::retry_decision::stop) == "stop");
    CHECK(settle::to_string(settle::retry_decision::retry) == "retry");
    CHECK(settle::to_string(settle::retry_decision::retry_timeout) == "retry_timeout");
    CHECK(settle::to_string(settle::retry_outcome::succeeded) == "succeeded");
    CHECK(settle::to_string(settle::retry_outcome::exhausted) == "exhausted");
    CHECK(settle::to_string(settle::retry_outcome::deadline) == "deadline");
    CHECK(settle::to_string(settle::retry_outcome::not_retryable) == "not_retryable");
    CHECK(settle::to_string(settle::retry_outcome::budget) == "budget");
    CHECK(settle::to_string(settle::retry_outcome::cancelled) == "cancelled");
    CHECK(settle::to_string(settle::deadline_mode::stop) == "stop");
    CHECK(settle::to_string(settle::deadline_mode::shorten) == "shorten");
    STATIC_REQUIRE(settle::to_string(settle::retry_outcome::budget) == "budget");
}
