// The SQLite backend against hand-written SQL doing the same work on the same
// database file, in the same run. The file lives in a fresh temporary
// directory ($TMPDIR, else /tmp), removed with its -wal and -shm when the
// program ends; every connection is configured by sqlite::connection (WAL),
// with SQLite's default durability (synchronous FULL) on both sides, so each
// commit waits for an fsync of the write-ahead log.
//
//   relay/<batch>         outbox_relay::run_once over sqlite::outbox_table with a
//                         publisher that takes everything: records per second
//   baseline/relay_sql    one claim statement (UPDATE ... WHERE sequence IN
//                         (SELECT ... ORDER BY next_attempt_at, sequence LIMIT ?)
//                         RETURNING) and one statement marking the batch
//                         delivered, each in its own BEGIN IMMEDIATE
//                         transaction: the least SQL that does the relay's claim
//                         and completion
//
// Both sides prepare their statements once (sqlite3_prepare_v3), as the backend
// does, and work on tables made by the store's own DDL, so the indexes match.
//   append                outbox append inside an open business transaction
//   baseline/insert       a raw INSERT of the same row
//   idempotency           claim, commit, complete, commit on a fresh key
//   baseline/idempotency_sql  the same two transactions in hand-written SQL
//   barrier               tcc_barrier try, commit, confirm, commit of a new branch
//   baseline/barrier_sql  the same two transactions in hand-written SQL: an
//                         INSERT ... ON CONFLICT DO NOTHING, then an UPDATE
//                         guarded by the state
//
// Outboxes are filled with the timer paused; each relay iteration moves one batch.
#include <settle/barrier.hpp>
#include <settle/idempotency.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/stores/sqlite.hpp>

#include <benchmark/benchmark.h>

#include "store_bench.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

using namespace std::chrono_literals;
namespace sqlite = settle::sqlite;

namespace {

constexpr std::size_t fill_size = 4096;
constexpr std::size_t statements_per_transaction = 512;

// A fresh temporary directory holding the benchmark's database file; removed,
// with everything in it (the file, its -wal and -shm), when destroyed.
class scratch_directory {
public:
    scratch_directory() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "settle-bench-sqlite-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::perror("settle_bench_sqlite: mkdtemp");
            std::exit(2);
        }
        directory_ = pattern;
    }
    scratch_directory(const scratch_directory&) = delete;
    scratch_directory& operator=(const scratch_directory&) = delete;
    ~scratch_directory() {
        std::error_code ignored;
        std::filesystem::remove_all(directory_, ignored);
    }

    [[nodiscard]] std::string database() const { return (directory_ / "bench.db").string(); }

private:
    std::filesystem::path directory_;
};

// The database file every case opens; its directory goes when the program ends.
std::string database_path() {
    static const scratch_directory directory;
    return directory.database();
}

std::string unique(const char* name) {
    static int count = 0;
    return std::string(name) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++count);
}

// Runs SQL text (set-up and clean-up). Throws on failure.
void exec(sqlite3* db, const std::string& statements) {
    char* message = nullptr;
    if (sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message != nullptr ? message : sqlite3_errmsg(db);
        sqlite3_free(message);
        throw settle::error(settle::errc::backend_failure, statements + ": " + text);
    }
}

// One hand-written statement, prepared once (SQLITE_PREPARE_PERSISTENT, as the
// backend prepares its own) and reset after each use. Bound text and bytes are
// not copied (SQLITE_STATIC): they must outlive the last step.
class prepared {
public:
    prepared(sqlite3* db, const std::string& sql) : db_(db) {
        const int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1),
                                          SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
        if (rc != SQLITE_OK) {
            const std::string message = sqlite3_errmsg(db);
            sqlite3_finalize(stmt_);
            throw settle::error(settle::errc::backend_failure, sql + ": " + message);
        }
    }
    prepared(const prepared&) = delete;
    prepared& operator=(const prepared&) = delete;
    ~prepared() { sqlite3_finalize(stmt_); }

    void bind(int index, std::int64_t value) { check(sqlite3_bind_int64(stmt_, index, value)); }
    void bind(int index, std::string_view value) {
        check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_STATIC,
                                  SQLITE_UTF8));
    }
    void bind(int index, std::span<const std::byte> value) {
        check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_STATIC));
    }

    // One step: true with a row to read, false when done; throws on an error.
    [[nodiscard]] bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) {
            return true;
        }
        check(rc == SQLITE_DONE ? SQLITE_OK : rc);
        return false;
    }
    // Ready for the next use.
    void reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    [[nodiscard]] std::int64_t integer(int column) const {
        return sqlite3_column_int64(stmt_, column);
    }
    [[nodiscard]] const void* blob(int column) const { return sqlite3_column_blob(stmt_, column); }
    [[nodiscard]] const unsigned char* text(int column) const {
        return sqlite3_column_text(stmt_, column);
    }

private:
    void check(int rc) const {
        if (rc != SQLITE_OK) {
            throw settle::error(settle::errc::backend_failure,
                                std::string("baseline statement: ") + sqlite3_errmsg(db_));
        }
    }

    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

using store_bench::id_of;
using store_bench::message_of;
using store_bench::now_micros;

// Creates `table` with the DDL of Store (a second store on that name), so the
// hand-written side works on the same columns and indexes.
template <class Store>
void create_like(sqlite::connection& conn, const std::string& table) {
    const Store shape(conn, table);
    sqlite::transaction tx(conn);
    exec(tx.native(), shape.ddl());
    tx.commit();
}

void drop(sqlite::connection& conn, const std::string& table) {
    sqlite::transaction tx(conn);
    exec(tx.native(), "DROP TABLE " + table);
    tx.commit();
}

// The outbox's own row, as the store's append writes it (headers empty).
std::string raw_insert_sql(const std::string& table) {
    return "INSERT INTO " + table +
           " (id, topic, ordering_key, payload, headers, created_at, next_attempt_at, status) "
           "VALUES (?1, ?2, ?3, ?4, x'', ?5, ?5, 'pending')";
}

void insert_raw(prepared& insert, const settle::outbox_message& m) {
    insert.bind(1, std::span<const std::byte>(m.id.bytes()));
    insert.bind(2, std::string_view(m.topic));
    insert.bind(3, std::string_view(m.ordering_key));
    insert.bind(4, std::span<const std::byte>(m.payload));
    insert.bind(5, now_micros());
    (void)insert.step();
    insert.reset();
}

// ---- relay --------------------------------------------------------------------------------

void relay(benchmark::State& state) {
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_relay");
    sqlite::outbox_table store(conn, table);
    {
        sqlite::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    store_bench::relay_throughput(state, store, fill_size);
    drop(conn, table);
}

void baseline_relay(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_raw_relay");
    create_like<sqlite::outbox_table>(conn, table);
    prepared insert(conn.native(), raw_insert_sql(table));
    prepared clear(conn.native(), "DELETE FROM " + table + " WHERE status = 'delivered'");
    // The status IN term is the due index's own condition: SQLite uses a
    // partial index only when the query repeats it. Expired claims are taken
    // again, as the relay's are; the ordering-key check is left out.
    prepared claim(conn.native(),
                   "UPDATE " + table +
                       " SET status = 'in_flight', claim_owner = ?2, claim_expires_at = ?3, "
                       "attempts = attempts + 1 WHERE sequence IN (SELECT sequence FROM " +
                       table +
                       " WHERE status IN ('pending', 'in_flight') AND next_attempt_at <= ?1 AND "
                       "(status = 'pending' OR claim_expires_at <= ?1) ORDER BY next_attempt_at, "
                       "sequence LIMIT ?4) RETURNING id, sequence, topic, ordering_key, payload, "
                       "created_at, attempts, next_attempt_at");
    // The batch's sequences travel as one JSON array.
    prepared deliver(conn.native(),
                     "UPDATE " + table +
                         " SET status = 'delivered', finished_at = ?3, claim_owner = '', "
                         "claim_expires_at = 0 WHERE sequence IN (SELECT value FROM json_each(?1)) "
                         "AND status = 'in_flight' AND claim_owner = ?2");
    const std::string owner = "bench";
    std::uint64_t next = 0;
    std::size_t pending = 0;
    std::size_t delivered = 0;
    std::string sequences;
    for (auto _ : state) {
        if (pending < batch) {
            state.PauseTiming();
            sqlite::transaction tx(conn);
            (void)clear.step();
            clear.reset();
            for (std::size_t i = 0; i < fill_size; ++i) {
                insert_raw(insert, message_of(++next));
            }
            tx.commit();
            pending += fill_size;
            state.ResumeTiming();
        }
        std::size_t claimed = 0;
        sequences = "[";
        {
            sqlite::transaction tx(conn);
            const std::int64_t now = now_micros();
            claim.bind(1, now);
            claim.bind(2, std::string_view(owner));
            claim.bind(3, now + 30'000'000);
            claim.bind(4, static_cast<std::int64_t>(batch));
            while (claim.step()) {
                // Read what a publisher needs, as the relay hands it over.
                benchmark::DoNotOptimize(claim.blob(0));
                benchmark::DoNotOptimize(claim.text(2));
                benchmark::DoNotOptimize(claim.blob(4));
                if (claimed++ != 0) {
                    sequences += ',';
                }
                sequences += std::to_string(claim.integer(1));
            }
            claim.reset();
            tx.commit();
        }
        sequences += ']';
        {
            sqlite::transaction tx(conn);
            deliver.bind(1, std::string_view(sequences));
            deliver.bind(2, std::string_view(owner));
            deliver.bind(3, now_micros());
            (void)deliver.step();
            deliver.reset();
            tx.commit();
        }
        pending -= claimed;
        delivered += claimed;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(delivered));
    drop(conn, table);
}

// ---- append inside a business transaction ---------------------------------------------------

void append(benchmark::State& state) {
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_append");
    sqlite::outbox_table store(conn, table);
    {
        sqlite::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    std::chrono::system_clock clock;
    store_bench::writes_in_open_transactions<sqlite::transaction>(
        state, conn, statements_per_transaction, [&](sqlite::transaction& tx, std::uint64_t n) {
            (void)store.append(tx, message_of(n),
                               std::chrono::floor<std::chrono::microseconds>(clock.now()));
        });
    drop(conn, table);
}

void baseline_insert(benchmark::State& state) {
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_raw_append");
    create_like<sqlite::outbox_table>(conn, table);
    prepared insert(conn.native(), raw_insert_sql(table));
    store_bench::writes_in_open_transactions<sqlite::transaction>(
        state, conn, statements_per_transaction,
        [&](sqlite::transaction&, std::uint64_t n) { insert_raw(insert, message_of(n)); });
    drop(conn, table);
}

// ---- idempotency: claim, then complete -------------------------------------------------------

void idempotency(benchmark::State& state) {
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_idem");
    sqlite::idempotency_table store(conn, table);
    {
        sqlite::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    store_bench::claim_and_complete(state, store);
    drop(conn, table);
}

void baseline_idempotency(benchmark::State& state) {
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_raw_idem");
    create_like<sqlite::idempotency_table>(conn, table);
    prepared claim(
        conn.native(),
        "INSERT INTO " + table +
            " (tenant, operation, key, state, fingerprint, claimed_at, expires_at, "
            "response, response_status) VALUES (?1, ?2, ?3, 'in_progress', ?4, ?5, ?6, "
            "x'', NULL) ON CONFLICT (tenant, operation, key) DO NOTHING RETURNING token");
    prepared complete(conn.native(),
                      "UPDATE " + table +
                          " SET state = 'completed', expires_at = ?5, response = ?6, "
                          "response_status = ?7 WHERE tenant = ?1 AND operation = ?2 AND key = ?3 "
                          "AND token = ?4 AND state = 'in_progress'");
    const std::string tenant = "tenant";
    const std::string operation = "orders.create";
    const settle::bytes fingerprint(32, std::byte{0xAA});
    const settle::bytes body(64, std::byte{0x2A});
    std::uint64_t next = 0;
    for (auto _ : state) {
        const std::string key = "key-" + std::to_string(++next);
        const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
        std::int64_t token = 0;
        {
            sqlite::transaction tx(conn);
            claim.bind(1, std::string_view(tenant));
            claim.bind(2, std::string_view(operation));
            claim.bind(3, std::string_view(key));
            claim.bind(4, std::span<const std::byte>(fingerprint));
            claim.bind(5, now);
            claim.bind(6, now + 30'000'000'000);
            if (claim.step()) {
                token = claim.integer(0);
            }
            claim.reset();
            tx.commit();
        }
        {
            sqlite::transaction tx(conn);
            complete.bind(1, std::string_view(tenant));
            complete.bind(2, std::string_view(operation));
            complete.bind(3, std::string_view(key));
            complete.bind(4, token);
            complete.bind(5, now + 86'400'000'000'000);
            complete.bind(6, std::span<const std::byte>(body));
            complete.bind(7, std::int64_t{201});
            (void)complete.step();
            complete.reset();
            tx.commit();
        }
    }
    state.SetItemsProcessed(state.iterations());
    drop(conn, table);
}

// ---- barrier: try, then confirm, of a new branch ---------------------------------------------

void barrier(benchmark::State& state) {
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_barrier");
    sqlite::barrier_table store(conn, table);
    {
        sqlite::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    std::chrono::system_clock clock;
    settle::tcc_barrier branches(store, clock);
    const auto no_work = [](sqlite::transaction&) {};
    std::uint64_t next = 0;
    for (auto _ : state) {
        const std::string xid = "xid-" + std::to_string(++next);
        {
            sqlite::transaction tx(conn);
            benchmark::DoNotOptimize(branches.try_phase(tx, xid, "stock", no_work));
            tx.commit();
        }
        {
            sqlite::transaction tx(conn);
            benchmark::DoNotOptimize(branches.confirm(tx, xid, "stock", no_work));
            tx.commit();
        }
    }
    state.SetItemsProcessed(state.iterations());
    drop(conn, table);
}

void baseline_barrier(benchmark::State& state) {
    sqlite::connection conn(database_path());
    const std::string table = unique("bench_raw_barrier");
    create_like<sqlite::barrier_table>(conn, table);
    prepared insert(conn.native(), "INSERT INTO " + table +
                                       " (transaction_id, branch_id, state, changed_at) VALUES "
                                       "(?1, ?2, 'tried', ?3) ON CONFLICT DO NOTHING");
    prepared update(conn.native(),
                    "UPDATE " + table +
                        " SET state = 'confirmed', changed_at = ?3 WHERE "
                        "transaction_id = ?1 AND branch_id = ?2 AND state = 'tried'");
    const std::string branch = "stock";
    std::uint64_t next = 0;
    for (auto _ : state) {
        const std::string xid = "xid-" + std::to_string(++next);
        for (prepared* statement : {&insert, &update}) {
            sqlite::transaction tx(conn);
            statement->bind(1, std::string_view(xid));
            statement->bind(2, std::string_view(branch));
            statement->bind(3, now_micros());
            (void)statement->step();
            statement->reset();
            tx.commit();
        }
    }
    state.SetItemsProcessed(state.iterations());
    drop(conn, table);
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
BENCHMARK(append)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_insert)->Name("baseline/insert")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(idempotency)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_idempotency)
    ->Name("baseline/idempotency_sql")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(barrier)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_barrier)
    ->Name("baseline/barrier_sql")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
