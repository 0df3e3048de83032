// What the store benchmarks share: the outbox messages they append (message
// n, with a 128-byte payload), and the loops the SQL backends' benchmarks run.
#ifndef SETTLE_BENCH_STORE_BENCH_HPP
#define SETTLE_BENCH_STORE_BENCH_HPP

#include <settle/idempotency.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/uuid.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace store_bench {

inline constexpr std::size_t payload_size = 128;

// A distinct, non-nil version 7 id for every n below 2^56, ordered as n is.
inline settle::uuid id_of(std::uint64_t n) {
    std::array<std::byte, 16> bytes{};
    bytes[0] = std::byte{0x01};
    bytes[6] = std::byte{0x70};
    bytes[8] = std::byte{0x80};
    for (std::size_t i = 0; i < 7; ++i) {
        bytes[15 - i] = static_cast<std::byte>((n >> (8 * i)) & 0xFFU);
    }
    return settle::uuid(bytes);
}

inline settle::outbox_message message_of(std::uint64_t n) {
    return settle::outbox_message{
        id_of(n), "orders.placed", {}, settle::bytes(payload_size, std::byte{0x5A}), {}};
}

// The wall clock as the SQL baselines store it: Unix microseconds.
inline std::int64_t now_micros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Publishes everything at once, touching each payload.
struct take_everything {
    settle::publish_result publish(const settle::outbox_record& record) {
        benchmark::DoNotOptimize(record.payload.data());
        return settle::publish_result::delivered();
    }
};

// Relay throughput over a SQL store whose tables exist: each iteration is
// one run_once at the batch size state.range(0). With the timer paused,
// whenever fewer than a batch are pending, the delivered records are purged
// and `fill` more appended in one transaction.
template <class Store>
void relay_throughput(benchmark::State& state, Store& store, std::size_t fill) {
    using namespace std::chrono_literals;
    const auto batch = static_cast<std::size_t>(state.range(0));
    std::chrono::system_clock clock;
    take_everything publisher;
    settle::outbox_relay relay(store, publisher, settle::persisted_retry{settle::ladder{1s, 5s}, 5},
                               clock, {.owner = "bench", .batch_size = batch});
    std::uint64_t next = 0;
    std::size_t pending = 0;
    std::size_t delivered = 0;
    for (auto _ : state) {
        if (pending < batch) {
            state.PauseTiming();
            auto tx = store.begin();
            (void)store.purge(tx, settle::stored_time::max(), fill * 4);
            for (std::size_t i = 0; i < fill; ++i) {
                (void)store.append(tx, message_of(++next),
                                   std::chrono::floor<std::chrono::microseconds>(clock.now()));
            }
            tx.commit();
            pending += fill;
            state.ResumeTiming();
        }
        const settle::outbox_run_result done = relay.run_once();
        pending -= done.delivered;
        delivered += done.delivered;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(delivered));
}

// Runs write(tx, n) for n = 1, 2, ... once per iteration, inside open
// transactions of `per_transaction` writes each, committed with the timer
// paused: the cost of a write inside a business transaction.
template <class Transaction, class Connection, class Write>
void writes_in_open_transactions(benchmark::State& state, Connection& conn,
                                 std::size_t per_transaction, Write write) {
    std::uint64_t next = 0;
    std::optional<Transaction> tx(std::in_place, conn);
    for (auto _ : state) {
        write(*tx, ++next);
        if (next % per_transaction == 0) {
            state.PauseTiming();
            tx->commit();
            tx.emplace(conn);
            state.ResumeTiming();
        }
    }
    tx->commit();
    state.SetItemsProcessed(state.iterations());
}

// Idempotency round trips over a SQL store whose tables exist: each
// iteration claims a fresh key and commits, then completes it and commits.
template <class Store>
void claim_and_complete(benchmark::State& state, Store& store) {
    using namespace std::chrono_literals;
    const settle::idempotency_scope scope{"tenant", "orders.create"};
    const settle::sha256_digest fingerprint = settle::fingerprint_fields({"order", "42"});
    const settle::idempotency_response response{settle::bytes(64, std::byte{0x2A}), 201};
    std::uint64_t next = 0;
    for (auto _ : state) {
        const settle::idempotency_key key =
            settle::idempotency_key::parse("key-" + std::to_string(++next)).value();
        const settle::stored_time now = settle::to_stored_time(std::chrono::system_clock::now());
        settle::fencing_token token(0);
        {
            auto tx = store.begin();
            token = store.claim(tx, scope, key, fingerprint, now, now + 30s).record.token;
            tx.commit();
        }
        {
            auto tx = store.begin();
            const auto written = store.complete(tx, scope, key, token, response, now + 24h);
            benchmark::DoNotOptimize(written);
            tx.commit();
        }
    }
    state.SetItemsProcessed(state.iterations());
}

}  // namespace store_bench

#endif  // SETTLE_BENCH_STORE_BENCH_HPP
