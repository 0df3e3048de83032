// Relay throughput, records per second, on the in-memory store with the
// in-memory publisher, at batch sizes 1, 16 and 256; against a hand-written
// loop that moves records from one vector to another under one mutex. The
// gap is the cost of claims, leases and bookkeeping: a claim transaction and
// an outcome transaction per batch, per record a claim, a copy for the
// publisher and an outcome, each undoable.
//
// A second baseline, relay_copying, writes the relay's protocol by hand with
// the copies it cannot avoid: each record copied out of the outbox under the
// lock, copied again by the publisher, then marked delivered under the lock.
//
// Both sides start from a filled outbox (filled, and emptied of delivered
// records, with the timer paused) and each iteration moves one batch. Also:
// appending a record in a transaction, against a push_back under a mutex.
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <benchmark/benchmark.h>

#include "store_bench.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

// Records appended per fill: enough that a fill is rare at batch 1.
constexpr std::size_t fill_size = 1 << 14;

using store_bench::id_of;
using store_bench::message_of;

settle::stored_time start_time() {
    return std::chrono::sys_days(std::chrono::year(2024) / 3 / 1);
}

// ---- the relay over memory::outbox_table ------------------------------------------------

struct relayed {
    settle::manual_clock clock{start_time()};
    memory::database db;
    memory::outbox_table store{db};
    memory::publisher publisher;
    settle::outbox_relay<memory::outbox_table, memory::publisher, settle::ladder<18>,
                         settle::manual_clock>
        relay;
    std::uint64_t next = 0;

    explicit relayed(std::size_t batch)
        : relay(store, publisher, settle::persisted_retry{settle::message_queue_ladder, 19}, clock,
                {.owner = "relay-1", .batch_size = batch}) {}

    // Removes what was delivered, then appends fill_size fresh records.
    void refill() {
        auto tx = db.begin();
        (void)store.purge(tx, settle::stored_time::max(), fill_size);
        const auto now = std::chrono::floor<std::chrono::microseconds>(clock.now());
        for (std::size_t i = 0; i < fill_size; ++i) {
            (void)store.append(tx, message_of(next++), now);
        }
        tx.commit();
        publisher.clear();
    }
};

void outbox_relay_throughput(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    relayed r(batch);
    std::size_t left = 0;
    for (auto _ : state) {
        if (left < batch) {
            state.PauseTiming();
            r.refill();
            left = fill_size;
            state.ResumeTiming();
        }
        auto result = r.relay.run_once();
        benchmark::DoNotOptimize(result);
        left -= batch;
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

// ---- the baseline: records moved from one vector to another under one mutex ---------------

struct moved {
    std::mutex mutex;
    std::vector<settle::outbox_record> outbox;
    std::vector<settle::outbox_record> published;
    std::uint64_t next = 0;

    void refill() {
        const std::lock_guard lock(mutex);
        published.clear();  // as publisher.clear(): the storage is kept
        outbox.clear();
        for (std::size_t i = 0; i < fill_size; ++i) {
            settle::outbox_message m = message_of(next++);
            settle::outbox_record r;
            r.id = m.id;
            r.sequence = next;
            r.topic = std::move(m.topic);
            r.payload = std::move(m.payload);
            r.created_at = start_time();
            r.next_attempt_at = start_time();
            outbox.push_back(std::move(r));
        }
    }

    // Takes up to `batch` records off the end, as a claim would, and moves
    // them to the published list, as delivery would.
    std::size_t move_batch(std::size_t batch) {
        const std::lock_guard lock(mutex);
        std::size_t n = 0;
        for (; n < batch && !outbox.empty(); ++n) {
            published.push_back(std::move(outbox.back()));
            outbox.pop_back();
        }
        return n;
    }
};

// The same protocol written by hand: a batch is copied out under the lock
// (the outbox keeps each record until its delivery is recorded), published
// with the lock released (the publisher keeps a copy, as memory::publisher
// does), and marked delivered under the lock again.
struct copied {
    std::mutex mutex;
    std::vector<settle::outbox_record> outbox;
    std::size_t next_due = 0;  // outbox[next_due...] are pending
    std::vector<settle::outbox_record> batch;
    std::vector<settle::outbox_record> published;
    std::uint64_t next = 0;

    void refill() {
        const std::lock_guard lock(mutex);
        published.clear();
        outbox.clear();
        next_due = 0;
        for (std::size_t i = 0; i < fill_size; ++i) {
            settle::outbox_message m = message_of(next++);
            settle::outbox_record r;
            r.id = m.id;
            r.sequence = next;
            r.topic = std::move(m.topic);
            r.payload = std::move(m.payload);
            r.created_at = start_time();
            r.next_attempt_at = start_time();
            outbox.push_back(std::move(r));
        }
    }

    std::size_t relay_batch(std::size_t size) {
        batch.clear();
        std::size_t first = 0;
        {
            const std::lock_guard lock(mutex);
            first = next_due;
            for (; batch.size() < size && next_due < outbox.size(); ++next_due) {
                outbox[next_due].status = settle::outbox_status::in_flight;
                batch.push_back(outbox[next_due]);
            }
        }
        for (const settle::outbox_record& record : batch) {
            published.push_back(record);
        }
        const std::lock_guard lock(mutex);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            outbox[first + i].status = settle::outbox_status::delivered;
        }
        return batch.size();
    }
};

void baseline_copying_relay_throughput(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    copied c;
    std::size_t left = 0;
    for (auto _ : state) {
        if (left < batch) {
            state.PauseTiming();
            c.refill();
            left = fill_size;
            state.ResumeTiming();
        }
        benchmark::DoNotOptimize(c.relay_batch(batch));
        left -= batch;
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void baseline_relay_throughput(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    moved m;
    std::size_t left = 0;
    for (auto _ : state) {
        if (left < batch) {
            state.PauseTiming();
            m.refill();
            left = fill_size;
            state.ResumeTiming();
        }
        benchmark::DoNotOptimize(m.move_batch(batch));
        left -= batch;
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

// ---- appending one record in a transaction, against a push_back under a mutex -------------

void outbox_append(benchmark::State& state) {
    relayed r(1);
    std::size_t appended = 0;
    const auto now = std::chrono::floor<std::chrono::microseconds>(r.clock.now());
    for (auto _ : state) {
        if (appended == fill_size) {
            state.PauseTiming();
            r.db.transact([&](memory::transaction& tx) {  // start over with an empty store
                auto claimed = r.store.claim(tx, "sweeper", now, now + 1h, fill_size);
                for (const auto& record : claimed) {
                    (void)r.store.mark_delivered(tx, record.id, record.claim_token, now);
                }
                (void)r.store.purge(tx, settle::stored_time::max(), fill_size);
            });
            appended = 0;
            state.ResumeTiming();
        }
        auto tx = r.db.begin();
        benchmark::DoNotOptimize(r.store.append(tx, message_of(r.next++), now));
        tx.commit();
        ++appended;
    }
    state.SetItemsProcessed(state.iterations());
}

void baseline_append(benchmark::State& state) {
    moved m;
    for (auto _ : state) {
        if (m.outbox.size() == fill_size) {
            state.PauseTiming();
            m.outbox.clear();
            state.ResumeTiming();
        }
        settle::outbox_message message = message_of(m.next++);
        const std::lock_guard lock(m.mutex);
        settle::outbox_record r;
        r.id = message.id;
        r.sequence = m.next;
        r.topic = std::move(message.topic);
        r.payload = std::move(message.payload);
        m.outbox.push_back(std::move(r));
    }
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(outbox_relay_throughput)->Name("outbox/relay/batch")->Arg(1)->Arg(16)->Arg(256);
BENCHMARK(baseline_relay_throughput)->Name("baseline/relay/batch")->Arg(1)->Arg(16)->Arg(256);
BENCHMARK(baseline_copying_relay_throughput)
    ->Name("baseline/relay_copying/batch")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256);
BENCHMARK(outbox_append)->Name("outbox/append");
BENCHMARK(baseline_append)->Name("baseline/append");
