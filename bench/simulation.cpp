// The consumer simulation on the in-memory store: deliveries per second,
// against a baseline that makes the same kind of deliveries with
// idempotent_consumer directly, with no schedule, no faults and no checks.
// Each iteration is one schedule (a fresh store, 6 messages, 24 steps, then
// every message still waiting delivered again); the baseline delivers 6
// messages to a fresh store and 9 of them again, about the simulation's
// deliveries per schedule.
#include <settle/testing/simulation.hpp>

#include <settle/inbox.hpp>
#include <settle/stores/memory.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace {

namespace memory = settle::memory;
namespace sim = settle::testing;

struct billing {
    memory::database db;
    memory::inbox_table inbox{db};
    memory::table<std::string, std::int64_t> balances{db};

    memory::inbox_table& store() { return inbox; }

    void handle(const sim::delivery& m, memory::transaction& tx) {
        const std::int64_t* old = balances.find(tx, m.key);
        balances.put(tx, m.key, (old ? *old : 0) + std::stoll(m.payload));
    }

    bool check(memory::transaction& tx, std::span<const sim::message> sent) const {
        std::int64_t expected = 0;
        for (const sim::message& m : sent) {
            expected += std::stoll(m.payload);
        }
        std::int64_t got = 0;
        balances.for_each(tx, [&](const std::string&, std::int64_t v) { got += v; });
        return got == expected;
    }
};

void simulate(benchmark::State& state) {
    std::uint64_t seed = 1;
    std::size_t deliveries = 0;
    for (auto _ : state) {
        const sim::simulation_report report =
            sim::simulate_consumer({.first_seed = seed++, .seeds = 1}, [] { return billing{}; });
        if (!report.failure.has_value()) {
            deliveries += report.deliveries;
        } else {
            state.SkipWithError("a schedule failed");
        }
    }
    state.counters["deliveries/s"] =
        benchmark::Counter(static_cast<double>(deliveries), benchmark::Counter::kIsRate);
}
BENCHMARK(simulate)->Name("simulation/consumer_memory");

void consume_directly(benchmark::State& state) {
    constexpr int messages = 6;
    constexpr int again = 9;
    std::size_t deliveries = 0;
    const std::string keys[] = {"k0", "k1", "k2"};
    for (auto _ : state) {
        billing b;
        settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2026) / 1 / 1)};
        settle::idempotent_consumer consumer(b.inbox, clock, {.consumer = "baseline"});
        for (int i = 0; i < messages + again; ++i) {
            const int n = i % messages;
            sim::message m{"m", keys[n % 3], std::to_string(n + 1)};
            m.id += m.payload;
            bool acked = false;
            const sim::delivery d(m, acked);
            const settle::inbox_result r =
                consumer.consume(d.id, [&](memory::transaction& tx) { b.handle(d, tx); });
            benchmark::DoNotOptimize(r);
            ++deliveries;
        }
    }
    state.counters["deliveries/s"] =
        benchmark::Counter(static_cast<double>(deliveries), benchmark::Counter::kIsRate);
}
BENCHMARK(consume_directly)->Name("baseline/consume_directly");

}  // namespace
