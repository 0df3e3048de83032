// Retry ladders: computing a delay against a hand-written function of the same
// formula, and retry() around an operation that succeeds first time against
// calling it directly. Every measured case has its baseline/ twin; read ratios.
#include <settle/retry.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

namespace {

// The same pseudo-random (attempt, seed) pairs for a measured case and its baseline:
// attempts 0 .. 23, the range a retry loop or an outbox row sees.
struct input {
    std::uint32_t attempt;
    std::uint64_t seed;
};

const std::vector<input>& inputs() {
    static const std::vector<input> all = [] {
        std::mt19937_64 random(42);
        std::vector<input> out(4096);
        for (auto& in : out) {
            in.attempt = static_cast<std::uint32_t>(random() % 24);
            in.seed = random();
        }
        return out;
    }();
    return all;
}

template <class F>
void run(benchmark::State& state, F delay) {
    const auto& all = inputs();
    std::size_t i = 0;
    for (auto _ : state) {
        const input& in = all[i++ & (all.size() - 1)];
        benchmark::DoNotOptimize(delay(in.attempt, in.seed));
    }
}

// ---- hand-written baselines: what a user would write for each formula -----------------

// base * multiplier^n, multiplying in a loop until the cap.
ns hand_exponential(ns base, double multiplier, ns cap, std::uint32_t n) {
    double d = static_cast<double>(base.count());
    const double top = static_cast<double>(cap.count());
    for (std::uint32_t k = 0; k < n && d < top; ++k) {
        d *= multiplier;
    }
    return d < top ? ns(static_cast<std::int64_t>(d + 0.5)) : cap;
}

std::uint64_t hand_splitmix(std::uint64_t seed, std::uint32_t n) {
    std::uint64_t z = seed + (static_cast<std::uint64_t>(n) + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
}

std::uint64_t hand_mulhi(std::uint64_t a, std::uint64_t b) {
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<u128>(a) * b) >> 64U);
}

constexpr std::array<ns, 18> hand_ladder{1s,   5s,   10s,  30s,  1min,  2min,  3min,  4min, 5min,
                                         6min, 7min, 8min, 9min, 10min, 20min, 30min, 1h,   2h};

// ---- delay computation -----------------------------------------------------------------

void ladder_delay(benchmark::State& state) {
    auto ladder = settle::message_queue_ladder;
    benchmark::DoNotOptimize(ladder);
    run(state, [&](std::uint32_t n, std::uint64_t) { return ladder.delay(n); });
}
void baseline_ladder(benchmark::State& state) {
    auto steps = hand_ladder;
    std::size_t last = steps.size() - 1;
    benchmark::DoNotOptimize(steps);
    benchmark::DoNotOptimize(last);
    run(state,
        [&](std::uint32_t n, std::uint64_t) { return steps[std::min<std::size_t>(n, last)]; });
}

void exponential_delay(benchmark::State& state) {
    settle::exponential_backoff backoff{100ms, 2.0, 10min};
    benchmark::DoNotOptimize(backoff);
    run(state, [&](std::uint32_t n, std::uint64_t) { return backoff.delay(n); });
}
void baseline_exponential(benchmark::State& state) {
    ns base = 100ms;
    double multiplier = 2.0;
    ns cap = 10min;
    benchmark::DoNotOptimize(base);
    benchmark::DoNotOptimize(multiplier);
    benchmark::DoNotOptimize(cap);
    run(state,
        [&](std::uint32_t n, std::uint64_t) { return hand_exponential(base, multiplier, cap, n); });
}

// The same formula with std::pow instead of a loop.
void baseline_exponential_pow(benchmark::State& state) {
    ns base = 100ms;
    double multiplier = 2.0;
    ns cap = 10min;
    benchmark::DoNotOptimize(base);
    benchmark::DoNotOptimize(multiplier);
    benchmark::DoNotOptimize(cap);
    run(state, [&](std::uint32_t n, std::uint64_t) {
        const double d = static_cast<double>(base.count()) * std::pow(multiplier, n);
        return d < static_cast<double>(cap.count()) ? ns(static_cast<std::int64_t>(d + 0.5)) : cap;
    });
}

void exponential_full_jitter(benchmark::State& state) {
    settle::jittered backoff{settle::exponential_backoff{100ms, 2.0, 10min}, settle::jitter::full};
    benchmark::DoNotOptimize(backoff);
    run(state, [&](std::uint32_t n, std::uint64_t seed) { return backoff.delay(n, seed); });
}
void baseline_exponential_full_jitter(benchmark::State& state) {
    ns base = 100ms;
    double multiplier = 2.0;
    ns cap = 10min;
    benchmark::DoNotOptimize(base);
    benchmark::DoNotOptimize(multiplier);
    benchmark::DoNotOptimize(cap);
    run(state, [&](std::uint32_t n, std::uint64_t seed) {
        const ns e = hand_exponential(base, multiplier, cap, n);
        return ns(static_cast<std::int64_t>(
            hand_mulhi(hand_splitmix(seed, n), static_cast<std::uint64_t>(e.count()))));
    });
}

void ladder_equal_jitter(benchmark::State& state) {
    settle::jittered backoff{settle::message_queue_ladder, settle::jitter::equal};
    benchmark::DoNotOptimize(backoff);
    run(state, [&](std::uint32_t n, std::uint64_t seed) { return backoff.delay(n, seed); });
}
void baseline_ladder_equal_jitter(benchmark::State& state) {
    auto steps = hand_ladder;
    std::size_t last = steps.size() - 1;
    benchmark::DoNotOptimize(steps);
    benchmark::DoNotOptimize(last);
    run(state, [&](std::uint32_t n, std::uint64_t seed) {
        const ns e = steps[std::min<std::size_t>(n, last)];
        const ns half = e / 2;
        return half + ns(static_cast<std::int64_t>(hand_mulhi(
                          hand_splitmix(seed, n), static_cast<std::uint64_t>((e - half).count()))));
    });
}

// One step of decorrelated jitter, as retry() takes it: the previous delay is known
// (here drawn from the inputs, so steps are independent like the other cases).
ns previous_of(std::uint64_t seed) {
    return 100ms + ns(static_cast<std::int64_t>(seed % 600'000'000'000ULL));
}

void decorrelated_step(benchmark::State& state) {
    settle::decorrelated_jitter backoff{100ms, 10min};
    benchmark::DoNotOptimize(backoff);
    run(state, [&](std::uint32_t n, std::uint64_t seed) {
        return backoff.delay(n, seed, previous_of(seed));
    });
}
void baseline_decorrelated_step(benchmark::State& state) {
    ns base = 100ms;
    ns cap = 10min;
    benchmark::DoNotOptimize(base);
    benchmark::DoNotOptimize(cap);
    run(state, [&](std::uint32_t n, std::uint64_t seed) {
        const ns high = previous_of(seed) * 3;
        const ns d =
            base + ns(static_cast<std::int64_t>(hand_mulhi(
                       hand_splitmix(seed, n), static_cast<std::uint64_t>((high - base).count()))));
        return std::min(cap, d);
    });
}

void smooth_delay(benchmark::State& state) {
    settle::smooth_decorrelated_jitter backoff{100ms, 10min};
    benchmark::DoNotOptimize(backoff);
    run(state, [&](std::uint32_t n, std::uint64_t seed) { return backoff.delay(n, seed); });
}
void baseline_smooth(benchmark::State& state) {
    double base = 1e8;
    double cap = 6e11;
    benchmark::DoNotOptimize(base);
    benchmark::DoNotOptimize(cap);
    const auto f = [](double t) { return std::pow(2.0, t) * std::tanh(std::sqrt(4.0 * t)); };
    const auto u = [](std::uint64_t w) { return static_cast<double>(w >> 11U) * 0x1.0p-53; };
    run(state, [&](std::uint32_t n, std::uint64_t seed) {
        const double next = f(n + u(hand_splitmix(seed, n)));
        const double previous = n == 0 ? 0.0 : f((n - 1) + u(hand_splitmix(seed, n - 1)));
        const double d = (next - previous) * (1.0 / 1.4) * base;
        return d < cap ? ns(static_cast<std::int64_t>(d)) : ns(static_cast<std::int64_t>(cap));
    });
}

void persisted_next_attempt_at(benchmark::State& state) {
    settle::persisted_retry plan{
        settle::jittered{settle::message_queue_ladder, settle::jitter::full}, 19};
    benchmark::DoNotOptimize(plan);
    const std::chrono::system_clock::time_point now{1'700'000'000s};
    run(state, [&](std::uint32_t n, std::uint64_t seed) {
        return plan.next_attempt_at(n, now, seed).value_or(now);
    });
}
void baseline_persisted_next_attempt_at(benchmark::State& state) {
    auto steps = hand_ladder;
    std::size_t last = steps.size() - 1;
    std::uint32_t max_attempts = 19;
    benchmark::DoNotOptimize(steps);
    benchmark::DoNotOptimize(last);
    benchmark::DoNotOptimize(max_attempts);
    const std::chrono::system_clock::time_point now{1'700'000'000s};
    run(state, [&](std::uint32_t n, std::uint64_t seed) {
        if (n >= max_attempts || n == 0) {
            return now;
        }
        const ns e = steps[std::min<std::size_t>(n - 1, last)];
        const ns d(static_cast<std::int64_t>(
            hand_mulhi(hand_splitmix(seed, n - 1), static_cast<std::uint64_t>(e.count()))));
        using tp = std::chrono::system_clock::time_point;
        return now > tp::max() - d ? tp::max() : now + d;  // never wraps, as the library
    });
}

// ---- retry around an operation that succeeds first time ---------------------------------
// Each loop does what a caller does: run the operation, check that it succeeded, use the
// value.

// The operation: a little arithmetic the compiler cannot fold away.
int operation(int& state) {
    state = state * 1103515245 + 12345;
    return state;
}

const auto jittered_exponential =
    settle::jittered{settle::exponential_backoff{100ms, 2.0, 10s}, settle::jitter::full};

void retry_first_time(benchmark::State& state) {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    std::mt19937_64 random(1);
    const auto policy = settle::retry_policy{jittered_exponential, 3};
    int value = 1;
    for (auto _ : state) {
        auto result =
            settle::retry(policy, clock, sleeper, random, [&] { return operation(value); });
        int used = result.is_succeeded() ? result.value() : 0;
        benchmark::DoNotOptimize(used);
    }
}
void baseline_direct_call(benchmark::State& state) {
    int value = 1;
    for (auto _ : state) {
        int used = operation(value);
        benchmark::DoNotOptimize(used);
    }
}

void retry_first_time_optional(benchmark::State& state) {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    std::mt19937_64 random(1);
    const auto policy = settle::retry_policy{jittered_exponential, 3};
    int value = 1;
    for (auto _ : state) {
        auto result = settle::retry(policy, clock, sleeper, random,
                                    [&] { return std::optional<int>(operation(value)); });
        int used = result.is_succeeded() ? *result.value() : 0;
        benchmark::DoNotOptimize(used);
    }
}
void baseline_direct_call_optional(benchmark::State& state) {
    int value = 1;
    for (auto _ : state) {
        const auto result = std::optional<int>(operation(value));
        int used = result ? *result : 0;
        benchmark::DoNotOptimize(used);
    }
}

// An operation with some work in it (a chain of 32 dependent 64-bit mixes, about 100 ns),
// nearer the cheapest thing worth retrying (an in-memory lookup); a network call costs
// thousands of times more.
int work(int& state) {
    std::uint64_t z = static_cast<std::uint64_t>(state);
    for (int i = 0; i < 32; ++i) {
        z = hand_splitmix(z, 0);
    }
    state = static_cast<int>(z >> 33U);
    return state;
}

void retry_first_time_work(benchmark::State& state) {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    std::mt19937_64 random(1);
    const auto policy = settle::retry_policy{jittered_exponential, 3};
    int value = 1;
    for (auto _ : state) {
        auto result = settle::retry(policy, clock, sleeper, random, [&] { return work(value); });
        int used = result.is_succeeded() ? result.value() : 0;
        benchmark::DoNotOptimize(used);
    }
}
void baseline_direct_call_work(benchmark::State& state) {
    int value = 1;
    for (auto _ : state) {
        int used = work(value);
        benchmark::DoNotOptimize(used);
    }
}

// With a budget, a success at a full bucket costs one atomic load.
void retry_first_time_with_budget(benchmark::State& state) {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    std::mt19937_64 random(1);
    settle::retry_budget budget;
    const auto policy = settle::retry_policy{jittered_exponential, 3}.with_budget(budget);
    int value = 1;
    for (auto _ : state) {
        auto result =
            settle::retry(policy, clock, sleeper, random, [&] { return operation(value); });
        int used = result.is_succeeded() ? result.value() : 0;
        benchmark::DoNotOptimize(used);
    }
}
void baseline_direct_call_with_budget_check(benchmark::State& state) {
    std::atomic<std::uint32_t> tokens{500};
    int value = 1;
    for (auto _ : state) {
        int used = operation(value);
        if (tokens.load(std::memory_order_relaxed) < 500) {
            tokens.fetch_add(1);
        }
        benchmark::DoNotOptimize(used);
    }
}

// With a deadline, retry() reads the clock once at the start: here the real steady clock.
void retry_first_time_with_deadline(benchmark::State& state) {
    std::chrono::steady_clock clock;
    settle::system_sleeper sleeper;
    std::mt19937_64 random(1);
    const auto policy = settle::retry_policy{jittered_exponential, 3}.with_deadline(5s);
    int value = 1;
    for (auto _ : state) {
        auto result =
            settle::retry(policy, clock, sleeper, random, [&] { return operation(value); });
        int used = result.is_succeeded() ? result.value() : 0;
        benchmark::DoNotOptimize(used);
    }
}
void baseline_direct_call_with_clock_read(benchmark::State& state) {
    int value = 1;
    for (auto _ : state) {
        auto start = std::chrono::steady_clock::now();
        int used = operation(value);
        benchmark::DoNotOptimize(start);
        benchmark::DoNotOptimize(used);
    }
}

// ---- budget ------------------------------------------------------------------------------

void budget_acquire_release(benchmark::State& state) {
    settle::retry_budget budget;
    for (auto _ : state) {
        if (budget.try_acquire(5)) {
            budget.release(5);
        }
    }
}
void baseline_atomic_sub_add(benchmark::State& state) {
    std::atomic<std::uint32_t> tokens{500};
    for (auto _ : state) {
        tokens.fetch_sub(5);
        tokens.fetch_add(5);
    }
}

}  // namespace

BENCHMARK(ladder_delay)->Name("delay/ladder");
BENCHMARK(baseline_ladder)->Name("baseline/delay/ladder");
BENCHMARK(exponential_delay)->Name("delay/exponential");
BENCHMARK(baseline_exponential)->Name("baseline/delay/exponential");
BENCHMARK(baseline_exponential_pow)->Name("baseline/delay/exponential_pow");
BENCHMARK(exponential_full_jitter)->Name("delay/exponential_full_jitter");
BENCHMARK(baseline_exponential_full_jitter)->Name("baseline/delay/exponential_full_jitter");
BENCHMARK(ladder_equal_jitter)->Name("delay/ladder_equal_jitter");
BENCHMARK(baseline_ladder_equal_jitter)->Name("baseline/delay/ladder_equal_jitter");
BENCHMARK(decorrelated_step)->Name("delay/decorrelated_step");
BENCHMARK(baseline_decorrelated_step)->Name("baseline/delay/decorrelated_step");
BENCHMARK(smooth_delay)->Name("delay/smooth_decorrelated");
BENCHMARK(baseline_smooth)->Name("baseline/delay/smooth_decorrelated");
BENCHMARK(persisted_next_attempt_at)->Name("persisted/next_attempt_at");
BENCHMARK(baseline_persisted_next_attempt_at)->Name("baseline/persisted/next_attempt_at");
BENCHMARK(retry_first_time)->Name("retry/first_time_success");
BENCHMARK(baseline_direct_call)->Name("baseline/retry/direct_call");
BENCHMARK(retry_first_time_work)->Name("retry/first_time_success_work");
BENCHMARK(baseline_direct_call_work)->Name("baseline/retry/direct_call_work");
BENCHMARK(retry_first_time_optional)->Name("retry/first_time_success_optional");
BENCHMARK(baseline_direct_call_optional)->Name("baseline/retry/direct_call_optional");
BENCHMARK(retry_first_time_with_budget)->Name("retry/first_time_success_with_budget");
BENCHMARK(baseline_direct_call_with_budget_check)
    ->Name("baseline/retry/direct_call_with_budget_check");
BENCHMARK(retry_first_time_with_deadline)->Name("retry/first_time_success_with_deadline");
BENCHMARK(baseline_direct_call_with_clock_read)->Name("baseline/retry/direct_call_with_clock_read");
BENCHMARK(budget_acquire_release)->Name("budget/try_acquire_release");
BENCHMARK(baseline_atomic_sub_add)->Name("baseline/budget/atomic_sub_add");
