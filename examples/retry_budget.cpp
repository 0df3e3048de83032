// A retry with a ladder and a budget. A flaky dependency is retried on a
// fixed ladder of waits; when it goes down for good, a retry budget shared by
// every caller stops the retries (first attempts still go through), so the
// service does not pile a retry storm onto a dependency that is down.
//
// The clock and the sleeper are manual: the waits are counted, not slept, and
// the program runs at once.
#include <settle/clock.hpp>
#include <settle/retry.hpp>
#include <settle/sleeper.hpp>

#include <chrono>
#include <cstdio>
#include <optional>

using namespace std::chrono_literals;

constexpr settle::ladder waits{50ms, 200ms, 1s, 5s};  // then give up

int main() {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    settle::retry_budget budget({.capacity = 50, .retry_cost = 5, .success_refund = 1});
    const auto policy = settle::retry_policy{waits, 5}.with_deadline(10s).with_budget(budget);

    // 1. A dependency that fails twice, then answers.
    int calls = 0;
    const auto reserved = settle::retry(policy, clock, sleeper, [&]() -> std::optional<int> {
        return ++calls <= 2 ? std::nullopt : std::optional<int>(42);
    });
    std::printf("flaky: %s after %u attempts, waited %lld ms, reservation %d, budget %u\n",
                settle::to_string(reserved.outcome()).data(), reserved.attempts(),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(sleeper.total()).count()),
                *reserved.value(), budget.available());

    // 2. The dependency goes down. Each request still makes its first attempt,
    //    but retries stop once the budget is spent.
    int budget_refusals = 0, attempts = 0;
    for (int request = 0; request < 20; ++request) {
        const auto r = settle::retry(policy, clock, sleeper, [&]() -> std::optional<int> {
            ++attempts;
            return std::nullopt;
        });
        budget_refusals += r.outcome() == settle::retry_outcome::budget;
    }
    std::printf("down: 20 requests made %d attempts; %d stopped by the budget (%u tokens left)\n",
                attempts, budget_refusals, budget.available());

    // Without the budget, 20 requests would have made 100 attempts.
    return reserved.is_succeeded() && calls == 3 && attempts < 100 && budget_refusals > 0 ? 0 : 1;
}
