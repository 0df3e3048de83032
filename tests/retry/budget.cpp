// retry_budget: token accounting, and no overdraft under concurrent use.
#include <settle/retry.hpp>

#include "settle_test.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("a retry budget takes and returns tokens within its capacity", "[retry]") {
    settle::retry_budget budget(
        {.capacity = 20, .retry_cost = 5, .timeout_cost = 10, .success_refund = 1});
    CHECK(budget.available() == 20);
    CHECK(budget.options().capacity == 20);
    CHECK(budget.options().retry_cost == 5);
    CHECK(budget.try_acquire(15));
    CHECK(budget.available() == 5);
    CHECK_FALSE(budget.try_acquire(6));  // refused: takes nothing
    CHECK(budget.available() == 5);
    CHECK(budget.try_acquire(5));
    CHECK(budget.available() == 0);
    CHECK_FALSE(budget.try_acquire(1));
    CHECK(budget.try_acquire(0));
    budget.release(3);
    CHECK(budget.available() == 3);
    budget.release(1000);  // capped
    CHECK(budget.available() == 20);
    budget.release(0xffffffffU);
    CHECK(budget.available() == 20);
}

TEST_CASE("retry budget defaults are the AWS SDK retry quota", "[retry]") {
    const settle::retry_budget budget;
    CHECK(budget.options().capacity == 500);
    CHECK(budget.options().retry_cost == 5);
    CHECK(budget.options().timeout_cost == 10);
    CHECK(budget.options().success_refund == 1);
    CHECK(budget.available() == 500);
}

TEST_CASE("a retry budget rejects settings it could never honour", "[retry]") {
    CHECK_THROWS_AS(settle::retry_budget({.capacity = 0}), settle::error);
    CHECK_THROWS_AS(settle::retry_budget({.capacity = 4, .retry_cost = 5, .timeout_cost = 1}),
                    settle::error);
    CHECK_THROWS_AS(settle::retry_budget({.capacity = 9, .retry_cost = 5, .timeout_cost = 10}),
                    settle::error);
    try {
        settle::retry_budget budget({.capacity = 0});
        FAIL("constructed");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
    }
}

TEST_CASE("a retry budget is never overdrawn by concurrent retries", "[retry][concurrency]") {
    constexpr std::uint32_t capacity = 10'000;
    constexpr std::uint32_t cost = 7;
    settle::retry_budget budget(
        {.capacity = capacity, .retry_cost = cost, .timeout_cost = cost, .success_refund = 1});
    constexpr int threads = 4;
    constexpr int tries = 5'000;  // 4 * 5000 * 7 is far more than the capacity
    std::vector<std::uint32_t> granted(threads, 0);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (int i = 0; i < tries; ++i) {
                if (budget.try_acquire(cost)) {
                    ++granted[static_cast<std::size_t>(t)];
                }
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    std::uint32_t total = 0;
    for (const std::uint32_t g : granted) {
        total += g;
    }
    CHECK(total * cost <= capacity);
    CHECK(total == capacity / cost);  // every token that could pay for a retry did
    CHECK(budget.available() == capacity - total * cost);
}

TEST_CASE("concurrent takes and refunds keep the count within bounds", "[retry][concurrency]") {
    constexpr std::uint32_t capacity = 100;
    settle::retry_budget budget(
        {.capacity = capacity, .retry_cost = 5, .timeout_cost = 10, .success_refund = 1});
    std::atomic<bool> done{false};
    std::atomic<bool> out_of_bounds{false};
    std::thread watcher([&] {
        while (!done.load()) {
            if (budget.available() > capacity) {
                out_of_bounds.store(true);
            }
        }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < 3; ++t) {
        workers.emplace_back([&, t] {
            const std::uint32_t cost = t == 0 ? 10U : 5U;
            for (int i = 0; i < 20'000; ++i) {
                if (budget.try_acquire(cost)) {
                    budget.release(cost);  // each refund returns exactly what was taken
                }
                budget.release(1);  // successes at a full bucket change nothing
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    done.store(true);
    watcher.join();
    CHECK_FALSE(out_of_bounds.load());
    CHECK(budget.available() == capacity);
}

TEST_CASE("retry calls on several threads share one budget", "[retry][concurrency]") {
    settle::retry_budget budget(
        {.capacity = 300, .retry_cost = 5, .timeout_cost = 10, .success_refund = 1});
    const auto policy =
        settle::retry_policy{settle::constant_backoff{1ms}, 1000}.with_budget(budget);
    constexpr int threads = 3;
    std::vector<std::uint32_t> attempts(threads, 0);
    std::vector<std::uint32_t> calls(threads, 0);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            settle::manual_clock clock;
            settle::manual_sleeper sleeper(clock);
            for (int call = 0; call < 10; ++call) {
                auto result =
                    settle::retry(policy, clock, sleeper, [] { return std::optional<int>(); });
                attempts[static_cast<std::size_t>(t)] += result.attempts();
                ++calls[static_cast<std::size_t>(t)];
                if (result.outcome() != settle::retry_outcome::budget) {
                    return;  // would mean a retry storm got through
                }
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    std::uint32_t retries = 0;
    for (std::size_t t = 0; t < threads; ++t) {
        retries += attempts[t] - calls[t];  // every call's first attempt is free
    }
    CHECK(retries == 300 / 5);  // exactly what the budget could pay for, across all threads
    CHECK(budget.available() == 0);
}
