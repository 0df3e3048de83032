// persisted_retry: next-attempt times for stored records, stable across restarts.
#include <settle/retry.hpp>

#include "settle_test.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>

using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;
using sys_ns = std::chrono::time_point<std::chrono::system_clock, ns>;

TEST_CASE("persisted_retry says when the next attempt is due and when to give up", "[retry]") {
    constexpr settle::persisted_retry plan{settle::message_queue_ladder, 19};  // 1 + 18 retries
    STATIC_REQUIRE(plan.max_attempts() == 19);
    const sys_ns now{1'700'000'000s};

    CHECK(plan.next_attempt_at(0, now) == std::optional<sys_ns>(now));  // the first attempt
    CHECK(plan.next_attempt_at(1, now) == std::optional<sys_ns>(now + 1s));
    CHECK(plan.next_attempt_at(2, now) == std::optional<sys_ns>(now + 5s));
    CHECK(plan.next_attempt_at(5, now) == std::optional<sys_ns>(now + 1min));
    CHECK(plan.next_attempt_at(18, now) == std::optional<sys_ns>(now + 2h));
    CHECK_FALSE(plan.next_attempt_at(19, now).has_value());
    CHECK_FALSE(plan.next_attempt_at(0xffffffffU, now).has_value());

    CHECK_FALSE(plan.exhausted(0));
    CHECK_FALSE(plan.exhausted(18));
    CHECK(plan.exhausted(19));
    CHECK(plan.exhausted(20));
    CHECK(plan.delay(3) == 30s);
    CHECK(plan.delay(3, 12345) == 30s);  // a schedule ignores the seed
    STATIC_REQUIRE(plan.next_attempt_at(2, sys_ns{}) == std::optional<sys_ns>(sys_ns{5s}));

    const settle::persisted_retry single{settle::constant_backoff{1s}, 1};
    CHECK(single.next_attempt_at(0, now) == std::optional<sys_ns>(now));
    CHECK_FALSE(single.next_attempt_at(1, now).has_value());
    volatile std::uint32_t zero = 0;
    CHECK_THROWS_AS(settle::persisted_retry(settle::constant_backoff{1s}, zero), settle::error);
}

TEST_CASE("a restarted relay computes the same schedule from the record's seed", "[retry]") {
    // Pinned values (computed independently in Python): if these move, every stored
    // next-attempt time written by an earlier version would move with them.
    const settle::persisted_retry plan{
        settle::jittered{settle::exponential_backoff{1s, 2.0, 1h}, settle::jitter::full}, 13};
    constexpr std::uint64_t seed = 0x5e77e1d00dULL;
    constexpr std::array<std::int64_t, 12> expected{
        696130191,   315611496,   867676325,   5568518212,   3345196812, 3280127356,
        60298093754, 11737786673, 47863802872, 270104513692, 3715983064, 1799058851475};
    const sys_ns now{1'700'000'000s};
    for (std::uint32_t n = 0; n < expected.size(); ++n) {
        INFO("after attempt " << n);
        CHECK(plan.delay(n, seed) == ns(expected[n]));
        CHECK(plan.next_attempt_at(n + 1, now, seed) ==
              std::optional<sys_ns>(now + ns(expected[n])));
    }

    // A second relay (a fresh object, as after a restart) agrees for every record and attempt.
    const auto restarted = [] {
        return settle::persisted_retry{
            settle::jittered{settle::exponential_backoff{1s, 2.0, 1h}, settle::jitter::full}, 13};
    }();
    for (std::uint64_t record = 0; record < 200; ++record) {
        for (std::uint32_t attempts = 0; attempts <= 13; ++attempts) {
            REQUIRE(plan.next_attempt_at(attempts, now, record) ==
                    restarted.next_attempt_at(attempts, now, record));
        }
    }

    // Different records spread out: 200 seeds give (nearly) 200 different delays.
    std::set<std::int64_t> distinct;
    for (std::uint64_t record = 0; record < 200; ++record) {
        distinct.insert(plan.delay(5, record).count());
    }
    CHECK(distinct.size() > 195);
}

TEST_CASE("persisted decorrelated and smooth schedules replay the same delays", "[retry]") {
    const settle::decorrelated_jitter decorrelated{1s, 10min};
    const settle::persisted_retry plan{decorrelated, 40};
    const sys_ns now{};
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
        ns previous = 1s;
        for (std::uint32_t n = 0; n < 39; ++n) {
            const ns step = decorrelated.delay(n, seed, previous);
            REQUIRE(plan.delay(n, seed) == step);
            REQUIRE(plan.next_attempt_at(n + 1, now, seed) == std::optional<sys_ns>(now + step));
            previous = step;
        }
    }
    const settle::smooth_decorrelated_jitter smooth{1s, 10min};
    const settle::persisted_retry smooth_plan{smooth, 40};
    for (std::uint32_t n = 0; n < 39; ++n) {
        REQUIRE(smooth_plan.delay(n, 77) == smooth.delay(n, 77));
    }
}

TEST_CASE("next attempt times round up to the clock's resolution and saturate", "[retry]") {
    const settle::persisted_retry plan{settle::ladder{1500ms, 1ns, 1h}, 10};
    using sys_s = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;
    using sys_ms = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;
    // Never earlier than the delay: 1.5 s on a clock counting seconds is 2 s.
    CHECK(plan.next_attempt_at(1, sys_s{100s}) == std::optional<sys_s>(sys_s{102s}));
    CHECK(plan.next_attempt_at(2, sys_ms{100ms}) == std::optional<sys_ms>(sys_ms{101ms}));
    CHECK(plan.next_attempt_at(3, sys_s{100s}) == std::optional<sys_s>(sys_s{3700s}));
    // Near the end of time: the largest time point, never a wrapped one.
    CHECK(plan.next_attempt_at(3, sys_ns::max() - 1s) == std::optional<sys_ns>(sys_ns::max()));
    CHECK(plan.next_attempt_at(3, sys_s::max() - 1s) == std::optional<sys_s>(sys_s::max()));
    const settle::persisted_retry forever{settle::constant_backoff{ns::max()}, 3};
    CHECK(forever.next_attempt_at(1, sys_ns{1s}) == std::optional<sys_ns>(sys_ns::max()));
    CHECK(forever.next_attempt_at(1, sys_s{1s}) ==
          std::optional<sys_s>(sys_s{1s} + std::chrono::ceil<std::chrono::seconds>(ns::max())));
    // A 32-bit count of seconds: the sum saturates instead of overflowing.
    using sys_s32 =
        std::chrono::time_point<std::chrono::system_clock, std::chrono::duration<std::int32_t>>;
    const settle::persisted_retry long_wait{
        settle::constant_backoff{std::chrono::hours(24 * 365 * 100)}, 3};
    CHECK(long_wait.next_attempt_at(1, sys_s32{std::chrono::duration<std::int32_t>(5)}) ==
          std::optional<sys_s32>(sys_s32::max()));
    // A floating-point clock.
    using sys_f = std::chrono::time_point<std::chrono::system_clock, std::chrono::duration<double>>;
    const auto at = plan.next_attempt_at(1, sys_f{});
    REQUIRE(at.has_value());
    CHECK(at->time_since_epoch().count() == 1.5);
}

TEST_CASE("a backoff that returns a negative delay never pushes the next attempt away", "[retry]") {
    struct broken {  // breaks the schedule contract: delays must not be negative
        [[nodiscard]] ns delay(std::uint32_t) const noexcept { return -5s; }
    };
    const settle::persisted_retry plan{broken{}, 3};
    const sys_ns now{1'700'000'000s};
    CHECK(plan.next_attempt_at(1, now) == std::optional<sys_ns>(now));
    const settle::jittered spread{broken{}, settle::jitter::full};
    CHECK(spread.delay(0, 1) == 0s);
}
