// The PostgreSQL backend against hand-written SQL doing the same work on the
// same server, in the same run (the server: scripts/postgres.sh; the
// conninfo: SETTLE_POSTGRES).
//
//   relay/<batch>         outbox_relay::run_once over postgres::outbox_table with a
//                         publisher that takes everything: records per second
//   baseline/relay_sql    one claim statement (FOR UPDATE SKIP LOCKED, UPDATE ...
//                         RETURNING) and one statement marking the batch
//                         delivered, each in its own transaction: the least SQL
//                         that does the relay's claim and completion
//
//   relay_delete/<batch>  the same over a table built with
//                         outbox_retention::delete_on_delivery
//   baseline/relay_delete_sql  the same claim, then one DELETE of the batch
//   relays/<n>            n relays, each on its own connection and thread,
//                         draining a backlog of records spread over 256
//                         ordering keys at batch 16; counts the records
//                         published out of their key's order (order_breaks)
//
// Both sides prepare their statements once per connection, as the backend does.
//   append                outbox append inside an open business transaction
//   baseline/insert       a raw INSERT of the same row into a table made by the
//                         outbox's own DDL
//   idempotency           claim, commit, complete, commit on a fresh key
//   baseline/idempotency_sql  the same two transactions in hand-written SQL
//   wakeup/notify         from an append's commit to its publication, the relay
//                         idling on a postgres::append_waiter (LISTEN/NOTIFY)
//   baseline/wakeup_poll  the same, the relay idling on its backoff (10 ms
//                         doubling to 1 s, the defaults)
//
// Outboxes are filled with the timer paused; each relay iteration moves one batch.
#include <settle/idempotency.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/stores/postgres.hpp>

#include <benchmark/benchmark.h>

#include "store_bench.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace postgres = settle::postgres;

namespace {

constexpr std::size_t fill_size = 4096;
constexpr std::size_t statements_per_transaction = 512;

std::string conninfo() {
    const char* value = std::getenv("SETTLE_POSTGRES");
    if (value == nullptr) {
        std::fprintf(stderr,
                     "settle_bench_postgres: set SETTLE_POSTGRES to a libpq conninfo "
                     "(scripts/postgres.sh start DIR; scripts/postgres.sh conninfo DIR)\n");
        std::exit(2);
    }
    return value;
}

std::string unique(const char* name) {
    static int count = 0;
    return std::string(name) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++count);
}

// Runs one statement with text parameters (set-up and clean-up); returns the
// result's rows, each as its columns' text. Throws on failure.
std::vector<std::vector<std::string>> sql(PGconn* conn, const std::string& statement,
                                          const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& p : params) {
        values.push_back(p.c_str());
    }
    PGresult* result = PQexecParams(conn, statement.c_str(), static_cast<int>(values.size()),
                                    nullptr, values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        const std::string message = PQresultErrorMessage(result);
        PQclear(result);
        throw settle::error(settle::errc::backend_failure, statement + ": " + message);
    }
    std::vector<std::vector<std::string>> rows(static_cast<std::size_t>(PQntuples(result)));
    for (int r = 0; r < PQntuples(result); ++r) {
        for (int c = 0; c < PQnfields(result); ++c) {
            rows[static_cast<std::size_t>(r)].emplace_back(
                PQgetvalue(result, r, c), static_cast<std::size_t>(PQgetlength(result, r, c)));
        }
    }
    PQclear(result);
    return rows;
}

// Prepares `statement` as `name` on the connection: the hand-written side
// plans each statement once, as the backend does.
void prepare(PGconn* conn, const std::string& name, const std::string& statement) {
    PGresult* result = PQprepare(conn, name.c_str(), statement.c_str(), 0, nullptr);
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    const std::string message = PQresultErrorMessage(result);
    PQclear(result);
    if (!ok) {
        throw settle::error(settle::errc::backend_failure, statement + ": " + message);
    }
}

// Runs the prepared statement `name` with text parameters; returns the rows.
std::vector<std::vector<std::string>> run(PGconn* conn, const std::string& name,
                                          const std::vector<std::string>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& p : params) {
        values.push_back(p.c_str());
    }
    PGresult* result = PQexecPrepared(conn, name.c_str(), static_cast<int>(values.size()),
                                      values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        const std::string message = PQresultErrorMessage(result);
        PQclear(result);
        throw settle::error(settle::errc::backend_failure, name + ": " + message);
    }
    std::vector<std::vector<std::string>> rows(static_cast<std::size_t>(PQntuples(result)));
    for (int r = 0; r < PQntuples(result); ++r) {
        for (int c = 0; c < PQnfields(result); ++c) {
            rows[static_cast<std::size_t>(r)].emplace_back(PQgetvalue(result, r, c));
        }
    }
    PQclear(result);
    return rows;
}

using store_bench::id_of;
using store_bench::message_of;
using store_bench::now_micros;

// A table shaped like the outbox's, for the hand-written side.
void create_raw_outbox(PGconn* conn, const std::string& table) {
    (void)sql(conn, "CREATE TABLE " + table +
                        " (sequence BIGSERIAL PRIMARY KEY, id BYTEA NOT NULL UNIQUE, topic TEXT "
                        "NOT NULL, ordering_key TEXT NOT NULL, payload BYTEA NOT NULL, "
                        "created_at BIGINT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
                        "next_attempt_at BIGINT NOT NULL, status SMALLINT NOT NULL DEFAULT 0, "
                        "claim_owner TEXT NOT NULL DEFAULT '', claim_expires_at BIGINT NOT NULL "
                        "DEFAULT 0)");
    (void)sql(conn, "CREATE INDEX " + table + "_due ON " + table +
                        " (next_attempt_at, sequence) WHERE status = 0");
}

// Prepares "raw_insert": one outbox-shaped row into `table`, a table of the
// relay baseline's shape, or with `same_shape` one made by outbox_store's own
// DDL (id a UUID, headers empty, status 'pending'), for the append baseline.
void prepare_raw_insert(PGconn* conn, const std::string& table, bool same_shape) {
    const std::string statement =
        same_shape ? "INSERT INTO \"" + table +
                         "\" (id, topic, ordering_key, payload, headers, created_at, "
                         "next_attempt_at, status) VALUES ($1, $2, $3, $4, '', $5, $5, 'pending')"
                   : "INSERT INTO " + table +
                         " (id, topic, ordering_key, payload, created_at, next_attempt_at) VALUES "
                         "($1, $2, $3, $4, $5, $5)";
    const std::array<Oid, 5> types{same_shape ? Oid{2950} : Oid{17}, 25, 25, 17, 20};
    PGresult* result = PQprepare(conn, "raw_insert", statement.c_str(), 5, types.data());
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    const std::string message = PQresultErrorMessage(result);
    PQclear(result);
    if (!ok) {
        throw settle::error(settle::errc::backend_failure, statement + ": " + message);
    }
}

// Runs "raw_insert" with binary parameters, as the backend sends its own.
void insert_raw(PGconn* conn, const settle::outbox_message& m) {
    const std::int64_t at = now_micros();
    std::array<std::byte, 8> time{};
    for (std::size_t i = 0; i < 8; ++i) {
        time[7 - i] = static_cast<std::byte>((static_cast<std::uint64_t>(at) >> (8 * i)) & 0xFFU);
    }
    const std::array<const char*, 5> values{reinterpret_cast<const char*>(m.id.bytes().data()),
                                            m.topic.data(), m.ordering_key.data(),
                                            reinterpret_cast<const char*>(m.payload.data()),
                                            reinterpret_cast<const char*>(time.data())};
    const std::array<int, 5> lengths{16, static_cast<int>(m.topic.size()),
                                     static_cast<int>(m.ordering_key.size()),
                                     static_cast<int>(m.payload.size()), 8};
    const std::array<int, 5> formats{1, 1, 1, 1, 1};
    PGresult* result =
        PQexecPrepared(conn, "raw_insert", 5, values.data(), lengths.data(), formats.data(), 1);
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    if (!ok) {
        throw settle::error(settle::errc::backend_failure, "baseline insert failed");
    }
}

// ---- relay --------------------------------------------------------------------------------

void relay_kept(benchmark::State& state, settle::outbox_retention retention) {
    postgres::connection conn(conninfo());
    const std::string table = unique("bench_relay");
    postgres::outbox_table store(conn, table, postgres::wakeup::poll, retention);
    {
        postgres::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    store_bench::relay_throughput(state, store, fill_size);
    postgres::transaction tx(conn);
    (void)sql(tx.native(), "DROP TABLE " + table);
    tx.commit();
}

void relay(benchmark::State& state) {
    relay_kept(state, settle::outbox_retention::keep);
}

void relay_delete(benchmark::State& state) {
    relay_kept(state, settle::outbox_retention::delete_on_delivery);
}

// The claim, then an UPDATE marking the batch delivered or, with `erase`, a
// DELETE of it.
void baseline_relay_kept(benchmark::State& state, bool erase) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    postgres::connection conn(conninfo());
    const std::string table = unique("bench_raw_relay");
    {
        postgres::transaction tx(conn);
        create_raw_outbox(tx.native(), table);
        tx.commit();
    }
    prepare_raw_insert(conn.native(), table, false);
    const std::string claim =
        "WITH due AS (SELECT sequence FROM " + table +
        " WHERE status = 0 AND next_attempt_at <= $1 ORDER BY next_attempt_at, sequence LIMIT $2 "
        "FOR UPDATE SKIP LOCKED) UPDATE " +
        table +
        " t SET status = 1, claim_owner = $3, claim_expires_at = $4, attempts = t.attempts + 1 "
        "FROM due WHERE t.sequence = due.sequence RETURNING t.id, t.sequence, t.topic, "
        "t.ordering_key, t.payload, t.created_at, t.attempts, t.next_attempt_at";
    const std::string deliver =
        (erase ? "DELETE FROM " + table
               : "UPDATE " + table + " SET status = 2, claim_owner = '', claim_expires_at = 0") +
        " WHERE sequence = ANY($1::bigint[]) AND claim_owner = $2";
    prepare(conn.native(), "claim", claim);
    prepare(conn.native(), "deliver", deliver);
    std::uint64_t next = 0;
    std::size_t pending = 0;
    std::size_t delivered = 0;
    for (auto _ : state) {
        if (pending < batch) {
            state.PauseTiming();
            postgres::transaction tx(conn);
            (void)sql(tx.native(), "DELETE FROM " + table + " WHERE status = 2");
            for (std::size_t i = 0; i < fill_size; ++i) {
                insert_raw(tx.native(), message_of(++next));
            }
            tx.commit();
            pending += fill_size;
            state.ResumeTiming();
        }
        std::vector<std::vector<std::string>> claimed;
        {
            postgres::transaction tx(conn);
            const std::int64_t now = now_micros();
            claimed = run(tx.native(), "claim",
                          {std::to_string(now), std::to_string(batch), "bench",
                           std::to_string(now + 30'000'000)});
            tx.commit();
        }
        std::string sequences = "{";
        for (const auto& row : claimed) {
            benchmark::DoNotOptimize(row[4].data());
            sequences += (sequences.size() > 1 ? "," : "") + row[1];
        }
        sequences += "}";
        {
            postgres::transaction tx(conn);
            (void)run(tx.native(), "deliver", {sequences, "bench"});
            tx.commit();
        }
        pending -= claimed.size();
        delivered += claimed.size();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(delivered));
    postgres::transaction tx(conn);
    (void)sql(tx.native(), "DROP TABLE " + table);
    tx.commit();
}

void baseline_relay(benchmark::State& state) {
    baseline_relay_kept(state, false);
}

void baseline_relay_delete(benchmark::State& state) {
    baseline_relay_kept(state, true);
}

// ---- several relays on one table --------------------------------------------------------------

// Takes everything, counting records published before an older one of their key.
struct order_checker {
    std::mutex mutex;
    std::unordered_map<std::string, std::uint64_t> last;  // ordering key -> sequence
    std::uint64_t breaks = 0;
    std::atomic<std::size_t> published{0};

    settle::publish_result publish(const settle::outbox_record& record) {
        benchmark::DoNotOptimize(record.payload.data());
        {
            const std::lock_guard lock(mutex);
            std::uint64_t& seen = last[record.ordering_key];
            if (record.sequence < seen) {
                ++breaks;
            }
            seen = record.sequence;
        }
        published.fetch_add(1);
        return settle::publish_result::delivered();
    }
};

void relays(benchmark::State& state) {
    constexpr std::size_t batch = 16;
    constexpr std::size_t backlog = 4096;
    constexpr std::uint64_t keys = 256;
    const auto count = static_cast<std::size_t>(state.range(0));
    const std::string table = unique("bench_relays");
    postgres::connection writer_conn(conninfo());
    postgres::outbox_table writer(writer_conn, table);
    {
        postgres::transaction tx(writer_conn);
        writer.create_tables(tx);
        tx.commit();
    }
    std::vector<std::unique_ptr<postgres::connection>> conns;
    std::vector<std::unique_ptr<postgres::outbox_table>> stores;
    for (std::size_t i = 0; i < count; ++i) {
        conns.push_back(std::make_unique<postgres::connection>(conninfo()));
        stores.push_back(std::make_unique<postgres::outbox_table>(*conns.back(), table));
    }
    std::chrono::system_clock clock;
    order_checker publisher;
    std::uint64_t next = 0;
    for (auto _ : state) {
        {
            postgres::transaction tx(writer_conn);
            (void)writer.purge(tx, settle::stored_time::max(), backlog * 2);
            for (std::size_t i = 0; i < backlog; ++i) {
                settle::outbox_message m = message_of(++next);
                m.ordering_key = "key-" + std::to_string(next % keys);
                (void)writer.append(tx, std::move(m),
                                    std::chrono::floor<std::chrono::microseconds>(clock.now()));
            }
            tx.commit();
        }
        const std::size_t target = publisher.published.load() + backlog;
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < count; ++i) {
            threads.emplace_back([&, i] {
                settle::outbox_relay relay(
                    *stores[i], publisher, settle::persisted_retry{settle::ladder{1s, 5s}, 5},
                    clock, {.owner = "bench-" + std::to_string(i), .batch_size = batch});
                while (publisher.published.load() < target) {
                    (void)relay.run_once();
                }
            });
        }
        for (std::thread& t : threads) {
            t.join();
        }
        state.SetIterationTime(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(publisher.published.load()));
    state.counters["order_breaks"] = static_cast<double>(publisher.breaks);
    postgres::transaction drop(writer_conn);
    (void)sql(drop.native(), "DROP TABLE " + table);
    drop.commit();
}

// ---- append inside a business transaction ---------------------------------------------------

void append(benchmark::State& state) {
    postgres::connection conn(conninfo());
    const std::string table = unique("bench_append");
    postgres::outbox_table store(conn, table);
    {
        postgres::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    std::chrono::system_clock clock;
    store_bench::writes_in_open_transactions<postgres::transaction>(
        state, conn, statements_per_transaction, [&](postgres::transaction& tx, std::uint64_t n) {
            (void)store.append(tx, message_of(n),
                               std::chrono::floor<std::chrono::microseconds>(clock.now()));
        });
    postgres::transaction drop(conn);
    (void)sql(drop.native(), "DROP TABLE " + table);
    drop.commit();
}

void baseline_insert(benchmark::State& state) {
    postgres::connection conn(conninfo());
    const std::string table = unique("bench_raw_append");
    postgres::outbox_table shape(conn, table);  // only for its DDL: the same table and indexes
    {
        postgres::transaction tx(conn);
        shape.create_tables(tx);
        tx.commit();
    }
    prepare_raw_insert(conn.native(), table, true);
    store_bench::writes_in_open_transactions<postgres::transaction>(
        state, conn, statements_per_transaction,
        [](postgres::transaction& tx, std::uint64_t n) { insert_raw(tx.native(), message_of(n)); });
    postgres::transaction drop(conn);
    (void)sql(drop.native(), "DROP TABLE " + table);
    drop.commit();
}

// ---- idempotency: claim, then complete -------------------------------------------------------

void idempotency(benchmark::State& state) {
    postgres::connection conn(conninfo());
    const std::string table = unique("bench_idem");
    postgres::idempotency_table store(conn, table);
    {
        postgres::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    store_bench::claim_and_complete(state, store);
    postgres::transaction drop(conn);
    (void)sql(drop.native(), "DROP TABLE " + table);
    drop.commit();
}

void baseline_idempotency(benchmark::State& state) {
    postgres::connection conn(conninfo());
    const std::string table = unique("bench_raw_idem");
    {
        postgres::transaction tx(conn);
        (void)sql(tx.native(),
                  "CREATE TABLE " + table +
                      " (tenant TEXT NOT NULL, operation TEXT NOT NULL, key TEXT NOT NULL, state "
                      "SMALLINT NOT NULL, fingerprint BYTEA NOT NULL, token BIGINT NOT NULL, "
                      "claimed_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, body BYTEA, "
                      "status INTEGER, PRIMARY KEY (tenant, operation, key))");
        tx.commit();
    }
    const std::string claim =
        "INSERT INTO " + table +
        " (tenant, operation, key, state, fingerprint, token, claimed_at, expires_at) VALUES ($1, "
        "$2, $3, 0, $4, 1, $5, $6) ON CONFLICT (tenant, operation, key) DO NOTHING RETURNING token";
    const std::string complete =
        "UPDATE " + table +
        " SET state = 1, body = $5, status = $6, expires_at = $7 WHERE tenant = $1 AND operation "
        "= $2 AND key = $3 AND token = $4 AND state = 0";
    prepare(conn.native(), "claim", claim);
    prepare(conn.native(), "complete", complete);
    const std::string fingerprint = "\\x" + std::string(64, 'a');
    const std::string body = "\\x" + std::string(128, '2');
    std::uint64_t next = 0;
    for (auto _ : state) {
        const std::string key = "key-" + std::to_string(++next);
        const std::int64_t now = now_micros();
        std::string token;
        {
            postgres::transaction tx(conn);
            token = run(tx.native(), "claim",
                        {"tenant", "orders.create", key, fingerprint, std::to_string(now),
                         std::to_string(now + 30'000'000)})
                        .at(0)
                        .at(0);
            tx.commit();
        }
        {
            postgres::transaction tx(conn);
            (void)run(tx.native(), "complete",
                      {"tenant", "orders.create", key, token, body, "201",
                       std::to_string(now + 86'400'000'000)});
            tx.commit();
        }
    }
    state.SetItemsProcessed(state.iterations());
    postgres::transaction drop(conn);
    (void)sql(drop.native(), "DROP TABLE " + table);
    drop.commit();
}

// ---- wake-up latency: from an append's commit to its publication ----------------------------

struct timed_publisher {
    std::atomic<std::uint64_t> published{0};
    std::atomic<std::int64_t> at{0};  // steady_clock ticks of the latest publication

    settle::publish_result publish(const settle::outbox_record&) {
        at.store(std::chrono::steady_clock::now().time_since_epoch().count());
        published.fetch_add(1);
        return settle::publish_result::delivered();
    }
};

template <class Sleeper>
void wakeup_latency(benchmark::State& state, postgres::wakeup appends) {
    const std::string table = unique("bench_wakeup");
    postgres::connection writer_conn(conninfo());
    postgres::outbox_table writer(writer_conn, table, appends);
    {
        postgres::transaction tx(writer_conn);
        writer.create_tables(tx);
        tx.commit();
    }
    postgres::connection relay_conn(conninfo());
    postgres::outbox_table store(relay_conn, table);
    timed_publisher publisher;
    std::chrono::system_clock clock;
    settle::outbox_relay relay(store, publisher, settle::persisted_retry{settle::ladder{1s, 5s}, 5},
                               clock, {.owner = "bench"});
    Sleeper sleeper = [&] {
        if constexpr (std::is_same_v<Sleeper, postgres::append_waiter>) {
            return postgres::append_waiter(store);
        } else {
            return Sleeper{};
        }
    }();
    std::stop_source stop;
    std::thread running([&] { relay.run(stop.get_token(), sleeper); });
    std::mt19937 random(42);
    std::uniform_int_distribution<int> quiet_ms(50, 500);
    std::uint64_t next = 0;
    for (auto _ : state) {
        std::this_thread::sleep_for(std::chrono::milliseconds(quiet_ms(random)));
        const std::uint64_t seen = publisher.published.load();
        postgres::transaction tx(writer_conn);
        (void)writer.append(tx, message_of(++next),
                            std::chrono::floor<std::chrono::microseconds>(clock.now()));
        tx.commit();
        const auto committed = std::chrono::steady_clock::now();
        while (publisher.published.load() == seen) {
            std::this_thread::sleep_for(50us);
        }
        const auto published = std::chrono::steady_clock::time_point(
            std::chrono::steady_clock::duration(publisher.at.load()));
        state.SetIterationTime(std::chrono::duration<double>(published - committed).count());
    }
    stop.request_stop();
    running.join();
    postgres::transaction drop(writer_conn);
    (void)sql(drop.native(), "DROP TABLE " + table);
    drop.commit();
}

void wakeup_notify(benchmark::State& state) {
    wakeup_latency<postgres::append_waiter>(state, postgres::wakeup::notify);
}

void wakeup_poll(benchmark::State& state) {
    wakeup_latency<settle::system_sleeper>(state, postgres::wakeup::poll);
}

}  // namespace

BENCHMARK(relay)->Arg(1)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_relay)
    ->Name("baseline/relay_sql")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(relay_delete)->Arg(1)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_relay_delete)
    ->Name("baseline/relay_delete_sql")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(relays)->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(append)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_insert)->Name("baseline/insert")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(idempotency)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_idempotency)
    ->Name("baseline/idempotency_sql")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(wakeup_notify)
    ->Name("wakeup/notify")
    ->UseManualTime()
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(wakeup_poll)
    ->Name("baseline/wakeup_poll")
    ->UseManualTime()
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond);
