// The try/confirm/cancel barrier on the in-memory store against its
// baseline: the same branch states in a std::map under a mutex, the obvious
// hand-written guard.
//
//   barrier/try_confirm   one branch: try, then confirm, each in a transaction
//                         of a memory::database, through tcc_barrier
//   barrier/repeat        a confirm repeated on a confirmed branch (duplicate)
//   baseline/...          the same with a std::map of (transaction id, branch
//                         id) -> state, locked per call
#include <settle/barrier.hpp>
#include <settle/stores/memory.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace {

std::string xid_of(std::int64_t n) {
    return "order-" + std::to_string(n);
}

void barrier_try_confirm(benchmark::State& state) {
    settle::manual_clock clock;
    settle::memory::database db;
    settle::memory::barrier_table branches(db);
    settle::tcc_barrier barrier(branches, clock);
    std::int64_t n = 0;
    for (auto _ : state) {
        const std::string xid = xid_of(n++);
        const auto tried = db.transact(
            [&](auto& tx) { return barrier.try_phase(tx, xid, "stock", [](auto&) {}); });
        const auto confirmed =
            db.transact([&](auto& tx) { return barrier.confirm(tx, xid, "stock", [](auto&) {}); });
        benchmark::DoNotOptimize(tried.is_entered() && confirmed.is_entered());
    }
    state.SetItemsProcessed(state.iterations());
}

void barrier_repeat(benchmark::State& state) {
    settle::manual_clock clock;
    settle::memory::database db;
    settle::memory::barrier_table branches(db);
    settle::tcc_barrier barrier(branches, clock);
    db.transact([&](auto& tx) {
        (void)barrier.try_phase(tx, "order-1", "stock", [](auto&) {});
        (void)barrier.confirm(tx, "order-1", "stock", [](auto&) {});
    });
    for (auto _ : state) {
        const auto again = db.transact(
            [&](auto& tx) { return barrier.confirm(tx, "order-1", "stock", [](auto&) {}); });
        benchmark::DoNotOptimize(again.is_duplicate());
    }
    state.SetItemsProcessed(state.iterations());
}

// The hand-written guard: states in a map under a mutex.
enum class branch_state : std::uint8_t { tried, confirmed, cancelled };

struct map_guard {
    std::mutex mutex;
    std::map<std::pair<std::string, std::string>, branch_state> states;

    bool try_phase(const std::string& xid, const std::string& branch) {
        const std::lock_guard lock(mutex);
        return states.try_emplace({xid, branch}, branch_state::tried).second;
    }
    bool confirm(const std::string& xid, const std::string& branch) {
        const std::lock_guard lock(mutex);
        const auto it = states.find({xid, branch});
        if (it == states.end() || it->second != branch_state::tried) {
            return false;
        }
        it->second = branch_state::confirmed;
        return true;
    }
};

void baseline_try_confirm(benchmark::State& state) {
    map_guard guard;
    std::int64_t n = 0;
    for (auto _ : state) {
        const std::string xid = xid_of(n++);
        const bool tried = guard.try_phase(xid, "stock");
        const bool confirmed = guard.confirm(xid, "stock");
        benchmark::DoNotOptimize(tried && confirmed);
    }
    state.SetItemsProcessed(state.iterations());
}

void baseline_repeat(benchmark::State& state) {
    map_guard guard;
    (void)guard.try_phase("order-1", "stock");
    (void)guard.confirm("order-1", "stock");
    for (auto _ : state) {
        benchmark::DoNotOptimize(guard.confirm("order-1", "stock"));
    }
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(barrier_try_confirm)->Name("barrier/try_confirm");
BENCHMARK(baseline_try_confirm)->Name("baseline/try_confirm");
BENCHMARK(barrier_repeat)->Name("barrier/repeat");
BENCHMARK(baseline_repeat)->Name("baseline/repeat");
