// The idempotency guard over the in-memory store, against a hand-written
// baseline doing the same protocol on a std::unordered_map under a std::mutex:
// claim (lookup-or-insert an in-progress row), run op, complete (store the
// response if the token still owns the row). Fresh keys and replayed keys, at
// 1 and 2 threads on one shared store; and calling op directly, so the guard's
// overhead reads in nanoseconds.
//
// The in-memory store is a memory::database: its transactions run one at a
// time, which is what lets a completion join the caller's own transaction.
// The baseline cannot do that; it is the cost floor of a lookup-or-insert.
#include <settle/idempotency.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_idempotency.hpp>
#include <settle/uuid.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

using namespace std::chrono_literals;

namespace {

using time_point = settle::stored_time;

constexpr auto lease = 30s;
constexpr auto retention = 24h;
// Fresh-key runs insert a record per iteration; a fixed count bounds memory.
constexpr benchmark::IterationCount fresh_iterations = 1 << 17;

time_point start_time() {
    return std::chrono::sys_days(std::chrono::year(2024) / 3 / 1);
}

// What op returns: an order id, short enough for the small-string buffer.
std::string place_order() {
    return "order-42";
}

// ---- the guard over memory::idempotency_table -------------------------------------------

struct guarded {
    settle::manual_clock clock{start_time()};
    settle::memory::database db;
    settle::memory::idempotency_table store{db};
    settle::idempotency_guard<settle::memory::idempotency_table, settle::manual_clock> guard{
        store, clock, {.lease = lease, .retention = retention}};
};

// ---- the baseline: std::unordered_map + std::mutex, the same claim/complete protocol -----

class baseline_store {
public:
    explicit baseline_store(settle::manual_clock& clock) : clock_(&clock) {}

    struct row {
        bool completed = false;
        settle::sha256_digest fingerprint;
        std::uint64_t token = 0;
        time_point expires_at;
        std::string response;
    };

    // The same four outcomes as guard.run.
    enum class outcome { executed, replayed, in_progress, mismatch };

    template <class Op>
    std::pair<outcome, std::optional<std::string>> run(const std::string& tenant,
                                                       const std::string& operation,
                                                       const std::string& key,
                                                       const settle::sha256_digest& fingerprint,
                                                       Op op) {
        std::string id;
        id.reserve(tenant.size() + operation.size() + key.size() + 2);
        id.append(tenant).append(1, '\0').append(operation).append(1, '\0').append(key);
        std::uint64_t token = 0;
        {
            const std::lock_guard lock(mutex_);
            const time_point now = settle::to_stored_time(clock_->now());
            auto [it, inserted] = rows_.try_emplace(id);
            if (!inserted && now < it->second.expires_at) {
                if (it->second.fingerprint != fingerprint) {
                    return {outcome::mismatch, std::nullopt};
                }
                if (!it->second.completed) {
                    return {outcome::in_progress, std::nullopt};
                }
                return {outcome::replayed, it->second.response};
            }
            token = ++last_token_;
            it->second = row{false, fingerprint, token, now + lease, {}};
        }
        std::string response = op();
        {
            const std::lock_guard lock(mutex_);
            const auto it = rows_.find(id);
            if (it != rows_.end() && !it->second.completed && it->second.token == token) {
                it->second.completed = true;
                it->second.expires_at = settle::to_stored_time(clock_->now()) + retention;
                it->second.response = response;
            }
        }
        return {outcome::executed, std::move(response)};
    }

private:
    settle::manual_clock* clock_;
    std::mutex mutex_;
    std::unordered_map<std::string, row> rows_;
    std::uint64_t last_token_ = 0;
};

struct baseline {
    settle::manual_clock clock{start_time()};
    baseline_store store{clock};
};

// One fixture per run, shared by its threads: thread 0 makes it before the
// timed loop and drops it after (the loop starts and ends with a barrier).
template <class Fixture>
std::unique_ptr<Fixture>& shared_fixture() {
    static std::unique_ptr<Fixture> fixture;
    return fixture;
}

// Thread 0 makes the fixture, then calls init(fixture); the other threads
// first touch it inside the timed loop, after its start barrier.
template <class Fixture, class Init>
void setup(benchmark::State& state, Init init) {
    if (state.thread_index() == 0) {
        shared_fixture<Fixture>() = std::make_unique<Fixture>();
        init(*shared_fixture<Fixture>());
    }
}

template <class Fixture>
void teardown(benchmark::State& state) {
    if (state.thread_index() == 0) {
        shared_fixture<Fixture>().reset();
    }
}

const settle::idempotency_scope& scope() {
    static const settle::idempotency_scope value{"tenant-42", "orders.create"};
    return value;
}

const settle::sha256_digest& fingerprint() {
    static const settle::sha256_digest value = settle::sha256::hash("{\"sku\":\"A-1\",\"qty\":1}");
    return value;
}

// A key no run has used before, in the form clients send: a UUID's 36
// characters (too long for std::string's small buffer, as real keys are).
std::string fresh_key(benchmark::State& state, std::uint64_t n) {
    std::array<std::byte, 16> bytes{};
    for (std::size_t i = 0; i < 8; ++i) {
        bytes[i] = static_cast<std::byte>(static_cast<std::uint64_t>(state.thread_index()) >>
                                          (56 - 8 * i));
        bytes[8 + i] = static_cast<std::byte>(n >> (56 - 8 * i));
    }
    return settle::uuid(bytes).to_string();
}

void idempotency_run_fresh_key(benchmark::State& state) {
    setup<guarded>(state, [](guarded&) {});
    std::uint64_t n = 0;
    for (auto _ : state) {
        guarded& f = *shared_fixture<guarded>();
        const auto key = settle::idempotency_key::parse(fresh_key(state, n++)).value();
        auto r = f.guard.run(scope(), key, fingerprint(), place_order);
        benchmark::DoNotOptimize(r);
    }
    teardown<guarded>(state);
}

void baseline_run_fresh_key(benchmark::State& state) {
    setup<baseline>(state, [](baseline&) {});
    std::uint64_t n = 0;
    for (auto _ : state) {
        baseline& f = *shared_fixture<baseline>();
        const std::string key = fresh_key(state, n++);
        auto r = f.store.run(scope().tenant, scope().operation, key, fingerprint(), place_order);
        benchmark::DoNotOptimize(r);
    }
    teardown<baseline>(state);
}

void idempotency_run_replayed_key(benchmark::State& state) {
    const auto key = settle::idempotency_key::parse("replayed-key").value();
    setup<guarded>(
        state, [&](guarded& f) { (void)f.guard.run(scope(), key, fingerprint(), place_order); });
    for (auto _ : state) {
        guarded& f = *shared_fixture<guarded>();
        auto r = f.guard.run(scope(), key, fingerprint(), place_order);
        benchmark::DoNotOptimize(r);
    }
    teardown<guarded>(state);
}

void baseline_run_replayed_key(benchmark::State& state) {
    const std::string key = "replayed-key";
    setup<baseline>(state, [&](baseline& f) {
        (void)f.store.run(scope().tenant, scope().operation, key, fingerprint(), place_order);
    });
    for (auto _ : state) {
        baseline& f = *shared_fixture<baseline>();
        auto r = f.store.run(scope().tenant, scope().operation, key, fingerprint(), place_order);
        benchmark::DoNotOptimize(r);
    }
    teardown<baseline>(state);
}

// op with no guard at all: the floor the guard's overhead is measured from.
void baseline_call_op_directly(benchmark::State& state) {
    for (auto _ : state) {
        auto r = place_order();
        benchmark::DoNotOptimize(r);
    }
}

}  // namespace

BENCHMARK(idempotency_run_fresh_key)
    ->Name("idempotency/run/fresh_key")
    ->Iterations(fresh_iterations)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(baseline_run_fresh_key)
    ->Name("baseline/unordered_map_mutex/fresh_key")
    ->Iterations(fresh_iterations)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(idempotency_run_replayed_key)
    ->Name("idempotency/run/replayed_key")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(baseline_run_replayed_key)
    ->Name("baseline/unordered_map_mutex/replayed_key")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(baseline_call_op_directly)->Name("baseline/call_op_directly");
