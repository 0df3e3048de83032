// Version stamps against a hand-written std::unordered_map under a std::mutex
// doing the same work:
// - compare_and_set: each thread compare-and-sets its own 1024 keys in turn
//   (no logical conflicts), at 1 and 2 threads. The settle side is a whole
//   transaction on memory::versioned_table: begin, compare-and-set, commit.
// - optimistic_update: 2 threads increment one counter; retries_per_success
//   counts the compare-and-sets that met a newer stamp per applied update.
//   The baseline is the same read, compute, compare-and-set loop written by
//   hand over the map and mutex.
// Times are wall-clock (UseRealTime): a thread waiting on a mutex uses no CPU.
// items_per_second adds the threads' work up: the total throughput.
#include <settle/optimistic.hpp>
#include <settle/stores/memory_versioned.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>
#include <unordered_map>
#include <vector>

namespace {

namespace memory = settle::memory;

constexpr std::uint32_t keys_per_thread = 1024;

std::uint32_t key_of(const benchmark::State& state, std::uint32_t i) {
    return static_cast<std::uint32_t>(state.thread_index()) * keys_per_thread + i;
}

// ---------------------------------------------------------------------------
// compare_and_set

struct memory_store {
    memory::database db;
    memory::versioned_table<std::uint32_t, long> table{db};
};

void memory_compare_and_set(benchmark::State& state) {
    static memory_store store;
    // This thread's keys and the stamps it last wrote them at.
    std::vector<settle::version_stamp> stamps;
    stamps.reserve(keys_per_thread);
    {
        auto tx = store.db.begin();
        for (std::uint32_t i = 0; i < keys_per_thread; ++i) {
            const std::uint32_t key = key_of(state, i);
            if (auto found = store.table.load(tx, key)) {
                stamps.push_back(found->stamp);
            } else {
                stamps.push_back(store.table.insert(tx, key, 0).stamp());
            }
        }
        tx.commit();
    }
    std::uint32_t i = 0;
    long value = 0;
    for (auto _ : state) {
        const std::uint32_t key = key_of(state, i);
        auto tx = store.db.begin();
        const auto written = store.table.compare_and_set(tx, key, stamps[i], ++value);
        tx.commit();
        stamps[i] = written.stamp();
        benchmark::DoNotOptimize(written.outcome());
        i = (i + 1) % keys_per_thread;
    }
    state.SetItemsProcessed(state.iterations());
}

struct map_row {
    long value;
    std::uint64_t stamp;
};

struct locked_map {
    std::mutex mutex;
    std::unordered_map<std::uint32_t, map_row> rows;
    std::uint64_t last_stamp = 0;

    // 0 when the row is missing or its stamp is not `expected`.
    std::uint64_t compare_and_set(std::uint32_t key, std::uint64_t expected, long value) {
        std::lock_guard lock(mutex);
        const auto it = rows.find(key);
        if (it == rows.end() || it->second.stamp != expected) {
            return 0;
        }
        it->second = map_row{value, ++last_stamp};
        return last_stamp;
    }
    std::uint64_t insert_or_read(std::uint32_t key) {
        std::lock_guard lock(mutex);
        const auto [it, inserted] = rows.try_emplace(key, map_row{0, last_stamp + 1});
        if (inserted) {
            ++last_stamp;
        }
        return it->second.stamp;
    }
    std::optional<map_row> load(std::uint32_t key) {
        std::lock_guard lock(mutex);
        const auto it = rows.find(key);
        return it == rows.end() ? std::nullopt : std::optional(it->second);
    }
};

void baseline_compare_and_set(benchmark::State& state) {
    static locked_map map;
    std::vector<std::uint64_t> stamps;
    stamps.reserve(keys_per_thread);
    for (std::uint32_t i = 0; i < keys_per_thread; ++i) {
        stamps.push_back(map.insert_or_read(key_of(state, i)));
    }
    std::uint32_t i = 0;
    long value = 0;
    for (auto _ : state) {
        const std::uint64_t stamp = map.compare_and_set(key_of(state, i), stamps[i], ++value);
        stamps[i] = stamp;
        benchmark::DoNotOptimize(stamp);
        i = (i + 1) % keys_per_thread;
    }
    state.SetItemsProcessed(state.iterations());
}

// The ceiling sharding would reach: 16 independent maps, each under its own mutex.
void baseline_sharded_compare_and_set(benchmark::State& state) {
    static std::array<locked_map, 16> shards;
    const auto shard = [](std::uint32_t key) -> locked_map& { return shards[key % 16]; };
    std::vector<std::uint64_t> stamps;
    stamps.reserve(keys_per_thread);
    for (std::uint32_t i = 0; i < keys_per_thread; ++i) {
        const std::uint32_t key = key_of(state, i);
        stamps.push_back(shard(key).insert_or_read(key));
    }
    std::uint32_t i = 0;
    long value = 0;
    for (auto _ : state) {
        const std::uint32_t key = key_of(state, i);
        const std::uint64_t stamp = shard(key).compare_and_set(key, stamps[i], ++value);
        stamps[i] = stamp;
        benchmark::DoNotOptimize(stamp);
        i = (i + 1) % keys_per_thread;
    }
    state.SetItemsProcessed(state.iterations());
}

// ---------------------------------------------------------------------------
// optimistic_update under contention

struct no_wait_sleeper {
    bool sleep_for(std::chrono::nanoseconds, std::stop_token) { return true; }
};

void report(benchmark::State& state, std::uint64_t successes, std::uint64_t retries) {
    state.SetItemsProcessed(state.iterations());
    state.counters["retries_per_success"] = benchmark::Counter(
        successes == 0 ? 0.0 : static_cast<double>(retries) / static_cast<double>(successes),
        benchmark::Counter::kAvgThreads);
}

void memory_optimistic_update(benchmark::State& state) {
    static memory_store store;
    static const bool created = [] {
        auto tx = store.db.begin();
        (void)store.table.insert(tx, 0, 0);
        tx.commit();
        return true;
    }();
    benchmark::DoNotOptimize(created);
    const auto policy =
        settle::retry_policy{settle::constant_backoff{std::chrono::nanoseconds(0)}, 1'000'000};
    settle::manual_clock clock;
    no_wait_sleeper sleeper;
    std::uint64_t successes = 0;
    std::uint64_t retries = 0;
    for (auto _ : state) {
        const auto r = settle::optimistic_update(
            store.table, 0, [](const long& v) { return v + 1; }, policy, clock, sleeper);
        successes += r.is_applied() ? 1U : 0U;
        retries += r.attempts() - 1U;
    }
    report(state, successes, retries);
}

void baseline_optimistic_update(benchmark::State& state) {
    static locked_map map;
    static const std::uint64_t created = map.insert_or_read(0);
    benchmark::DoNotOptimize(created);
    std::uint64_t successes = 0;
    std::uint64_t retries = 0;
    for (auto _ : state) {
        while (true) {
            const map_row seen = *map.load(0);
            const long next = seen.value + 1;
            if (map.compare_and_set(0, seen.stamp, next) != 0) {
                break;
            }
            ++retries;
        }
        ++successes;
    }
    report(state, successes, retries);
}

}  // namespace

BENCHMARK(memory_compare_and_set)
    ->Name("version/compare_and_set/memory")
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK(baseline_compare_and_set)
    ->Name("baseline/compare_and_set/unordered_map_mutex")
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK(baseline_sharded_compare_and_set)
    ->Name("baseline/compare_and_set/unordered_map_mutex_16_shards")
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK(memory_optimistic_update)
    ->Name("version/optimistic_update/memory_one_counter")
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK(baseline_optimistic_update)
    ->Name("baseline/optimistic_update/unordered_map_mutex_one_counter")
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
