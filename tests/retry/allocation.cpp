// No allocation: computing delays, and retry() around an operation that succeeds first time.
#include "counting_new.hpp"

#if SETTLE_TEST_COUNTS_ALLOCATIONS

#include <settle/retry.hpp>

#include "settle_test.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

using namespace std::chrono_literals;

using counting_new::allocations_during;

TEST_CASE("the allocation counter sees allocations", "[retry]") {
    // Guards the tests below against a counter that counts nothing. The
    // allocation function is called directly: an optimiser may remove the
    // allocation of `delete new int(1)` altogether (GCC does at -O2).
    CHECK(allocations_during([] { ::operator delete(::operator new(sizeof(int))); }) == 1);
}

TEST_CASE("computing delays allocates nothing", "[retry]") {
    const settle::exponential_backoff exponential{100ms, 2.0, 30s};
    const settle::jittered full{exponential, settle::jitter::full};
    const settle::jittered equal{settle::message_queue_ladder, settle::jitter::equal};
    const settle::linear_backoff linear{1s, 1s, 1min};
    const settle::decorrelated_jitter decorrelated{100ms, 30s};
    const settle::smooth_decorrelated_jitter smooth{100ms, 30s};
    const settle::persisted_retry plan{full, 20};
    settle::retry_budget budget;
    std::int64_t sink = 0;
    const auto count = allocations_during([&] {
        for (std::uint32_t n = 0; n < 64; ++n) {
            sink += exponential.delay(n).count() + full.delay(n, 9).count() +
                    equal.delay(n, 9).count() + linear.delay(n).count() +
                    decorrelated.delay(n, 9).count() + smooth.delay(n, 9).count() +
                    plan.delay(n, 9).count() +
                    plan.next_attempt_at(n, std::chrono::system_clock::time_point{}, 9)
                        .value_or(std::chrono::system_clock::time_point{})
                        .time_since_epoch()
                        .count();
            if (budget.try_acquire(5)) {
                budget.release(5);
            }
        }
    });
    CHECK(count == 0);
    CHECK(sink != 0);
}

TEST_CASE("retry around an operation that succeeds first time allocates nothing", "[retry]") {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    std::mt19937_64 random(1);
    settle::retry_budget budget;
    const auto policy =
        settle::retry_policy{
            settle::jittered{settle::exponential_backoff{100ms, 2.0, 30s}, settle::jitter::full}, 5}
            .with_deadline(10s)
            .with_budget(budget)
            .retry_if(settle::retry_on<std::runtime_error>{});
    int value = 0;
    const auto count = allocations_during([&] {
        for (int i = 0; i < 100; ++i) {
            auto plain = settle::retry(policy, clock, sleeper, random, [&] { return ++value; });
            auto maybe = settle::retry(policy, clock, sleeper, random,
                                       [&] { return std::optional<int>(++value); });
            auto nothing = settle::retry(policy, clock, sleeper, random, [&] { ++value; });
            value += static_cast<int>(plain.attempts() + maybe.attempts() + nothing.attempts());
        }
    });
    CHECK(count == 0);
    CHECK(value == 600);

    // Retrying without exceptions allocates nothing either.
    int calls = 0;
    std::uint32_t attempts = 0;
    const auto retried = allocations_during([&] {
        auto r = settle::retry(policy, clock, sleeper, random, [&] {
            return ++calls < 4 ? std::optional<int>() : std::optional<int>(calls);
        });
        attempts = r.attempts();
    });
    CHECK(retried == 0);
    CHECK(attempts == 4);
}

#endif  // SETTLE_TEST_COUNTS_ALLOCATIONS
