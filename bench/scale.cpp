// Cost as the work grows, on the PostgreSQL backend (the server: scripts/postgres.sh;
// the conninfo: SETTLE_POSTGRES) and on SQLite (a file in a fresh temporary directory,
// $TMPDIR else /tmp, removed at the end; WAL, synchronous FULL: each commit waits for
// an fsync). Each situation is built in the database, then measured beside its
// baseline, the same work on an empty table, in the same run:
//
//   relay/delivered:<n>     outbox_relay::run_once (batch 16) over an outbox holding n
//                           delivered, unpurged records: records per second, and each
//                           run's p50/p99 in microseconds (n = 0 is the baseline)
//   relay/backlog:<n>       the same with n records (rounded up to 4096) pending
//   purge/batch:<b>         appends, each in its own transaction, first alone (quiet) and
//                           then while another connection purges the table's delivered
//                           records b at a time: both p99s, their ratio, and the purge's
//                           rows per second
//   idempotency/live:<n>    claim and commit a fresh random key with n live keys in the
//                           table (n = 0 is the baseline): p50/p99 in microseconds
//   relay_memory/broker_down  a relay whose every publication fails, while the backlog
//                           grows in ten steps: the process's heap in use (malloc) and
//                           resident size after the first step and after the last
//   sqlite/relay/..., sqlite/purge/batch:<b>, sqlite/idempotency/live:<n>
//                           the same situations on SQLite; the purger is a second
//                           connection to the same file, and both writers pause after
//                           each transaction for as long as it held the one write lock
//
// n is SETTLE_BENCH_ROWS (the big table: 1000000 for the recorded run), or n/10; unset,
// it is 10000, so the test run stays quick. Big tables are filled in the database
// (PostgreSQL: INSERT ... SELECT generate_series, then VACUUM ANALYZE, as autovacuum
// leaves a table that grew; SQLite: INSERT ... SELECT from a recursive counter, with
// no ANALYZE, as an application's file has none unless it runs one) into the store's
// own table; the records the relay claims are appended with the store's own append
// (the broker-down backlog excepted: a relay that publishes nothing reads them the same).
#include <settle/idempotency.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/stores/postgres.hpp>
#include <settle/stores/sqlite.hpp>

#include <benchmark/benchmark.h>

#include "store_bench.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace postgres = settle::postgres;
namespace sqlite = settle::sqlite;
using store_bench::message_of;
using store_bench::now_micros;

namespace {

constexpr std::size_t relay_batch = 16;
constexpr std::size_t fill_size = 4096;

std::string conninfo() {
    const char* value = std::getenv("SETTLE_POSTGRES");
    if (value == nullptr) {
        std::fprintf(stderr,
                     "settle_bench_scale: set SETTLE_POSTGRES to a libpq conninfo "
                     "(scripts/postgres.sh start DIR; scripts/postgres.sh conninfo DIR)\n");
        std::exit(2);
    }
    return value;
}

std::int64_t big_rows() {
    const char* value = std::getenv("SETTLE_BENCH_ROWS");
    return value == nullptr ? 10'000 : std::atoll(value);
}

std::string unique(const char* name) {
    static int count = 0;
    return std::string(name) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++count);
}

std::string quoted_name(const std::string& table) {
    return "\"" + table + "\"";
}

// Runs one statement outside the stores (set-up and clean-up); throws on failure.
void sql(PGconn* conn, const std::string& statement) {
    PGresult* result = PQexec(conn, statement.c_str());
    const auto status = PQresultStatus(result);
    const std::string message = PQresultErrorMessage(result);
    PQclear(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw settle::error(settle::errc::backend_failure, statement + ": " + message);
    }
}

// A fresh temporary directory holding the SQLite database file; removed, with
// everything in it (the file, its -wal and -shm), when the program ends.
class scratch_directory {
public:
    scratch_directory() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "settle-bench-scale-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::perror("settle_bench_scale: mkdtemp");
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

    [[nodiscard]] std::string database() const { return (directory_ / "scale.db").string(); }

private:
    std::filesystem::path directory_;
};

std::string sqlite_path() {
    static const scratch_directory directory;
    return directory.database();
}

// What the situations need of a backend: its types, a new connection, a statement
// run outside the stores, and how a big table is filled in the database.
struct pg {
    using connection = postgres::connection;
    using transaction = postgres::transaction;
    using outbox_table = postgres::outbox_table;
    using idempotency_table = postgres::idempotency_table;

    static constexpr bool one_writer = false;
    static std::unique_ptr<connection> open() { return std::make_unique<connection>(conninfo()); }
    static void exec(connection& c, const std::string& statement) { sql(c.native(), statement); }

    // n outbox records with `status`, finished (if delivered) or due a day ago.
    static void fill_outbox(connection& c, const std::string& table, std::int64_t n,
                            const std::string& status, const std::string& tag) {
        const std::string day_ago = std::to_string(now_micros() - 86'400'000'000);
        const bool delivered = status == "delivered";
        exec(c, "INSERT INTO " + quoted_name(table) +
                    " (id, topic, ordering_key, payload, headers, created_at, attempts, "
                    "next_attempt_at, status, finished_at) SELECT md5('" +
                    tag +
                    "' || i)::uuid, 'orders.placed', '', decode(repeat('5a', 128), 'hex'), "
                    "'', " +
                    day_ago + " + i, " + (delivered ? "1" : "0") + ", " + day_ago + " + i, '" +
                    status + "', " + (delivered ? day_ago + " + i" : "0") +
                    " FROM generate_series(1, " + std::to_string(n) + ") i");
        exec(c, "VACUUM ANALYZE " + quoted_name(table));
    }

    // n completed idempotency records, live for a day.
    static void fill_idempotency(connection& c, const std::string& table, std::int64_t n) {
        const std::int64_t now = now_micros();
        exec(c, "INSERT INTO " + quoted_name(table) +
                    " (tenant, operation, key, state, fingerprint, claimed_at, expires_at, body, "
                    "status) SELECT 'tenant', 'orders.create', md5(i::text), 'completed', "
                    "sha256(i::text::bytea), " +
                    std::to_string(now) + ", " + std::to_string(now + 86'400'000'000) +
                    ", decode(repeat('2a', 64), 'hex'), 201 FROM generate_series(1, " +
                    std::to_string(n) + ") i");
        exec(c, "VACUUM ANALYZE " + quoted_name(table));
    }
};

struct lite {
    using connection = sqlite::connection;
    using transaction = sqlite::transaction;
    using outbox_table = sqlite::outbox_table;
    using idempotency_table = sqlite::idempotency_table;

    static constexpr bool one_writer = true;
    static std::unique_ptr<connection> open() {
        return std::make_unique<connection>(sqlite_path());
    }
    static void exec(connection& c, const std::string& statement) {
        char* message = nullptr;
        if (sqlite3_exec(c.native(), statement.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
            const std::string what = statement + ": " + (message ? message : "failed");
            sqlite3_free(message);
            throw settle::error(settle::errc::backend_failure, what);
        }
    }

    static std::string counted(std::int64_t n) {
        return "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
               std::to_string(n) + ") ";
    }

    static void fill_outbox(connection& c, const std::string& table, std::int64_t n,
                            const std::string& status, const std::string&) {
        const std::string day_ago = std::to_string(now_micros() - 86'400'000'000);
        const bool delivered = status == "delivered";
        exec(c, counted(n) + "INSERT INTO " + quoted_name(table) +
                    " (id, topic, ordering_key, payload, headers, created_at, attempts, "
                    "next_attempt_at, status, finished_at) SELECT randomblob(16), "
                    "'orders.placed', '', zeroblob(128), x'', " +
                    day_ago + " + i, " + (delivered ? "1" : "0") + ", " + day_ago + " + i, '" +
                    status + "', " + (delivered ? day_ago + " + i" : "0") + " FROM n");
    }

    static void fill_idempotency(connection& c, const std::string& table, std::int64_t n) {
        const std::int64_t now = now_micros();
        exec(c, counted(n) + "INSERT INTO " + quoted_name(table) +
                    " (tenant, operation, key, state, fingerprint, claimed_at, expires_at, "
                    "response, response_status) SELECT 'tenant', 'orders.create', "
                    "lower(hex(randomblob(16))), 'completed', randomblob(32), " +
                    std::to_string(now) + ", " + std::to_string(now + 86'400'000'000) +
                    ", zeroblob(64), 201 FROM n");
    }
};

// Per-operation latencies, reported as percentiles.
class latencies {
public:
    void add(std::chrono::steady_clock::duration d) {
        us_.push_back(std::chrono::duration<double, std::micro>(d).count());
    }
    [[nodiscard]] double percentile(double p) {
        if (us_.empty()) {
            return 0;
        }
        const auto at = static_cast<std::size_t>(p * static_cast<double>(us_.size() - 1));
        std::nth_element(us_.begin(), us_.begin() + static_cast<std::ptrdiff_t>(at), us_.end());
        return us_[at];
    }
    [[nodiscard]] std::size_t size() const { return us_.size(); }

private:
    std::vector<double> us_;
};

template <class F>
std::chrono::steady_clock::duration timed(latencies& into, F f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    const auto took = std::chrono::steady_clock::now() - start;
    into.add(took);
    return took;
}

// A writer of a backend with one write lock (B::one_writer) then leaves the lock
// free for as long as its transaction held it: a waiting SQLite writer polls
// for the lock (its busy handler sleeps between tries), so a writer that begins
// again at once keeps it from the other until the busy timeout ends.
template <class B>
void yield_after(std::chrono::steady_clock::duration took) {
    if constexpr (B::one_writer) {
        std::this_thread::sleep_for(took);
    }
}

void report(benchmark::State& state, latencies& l, const char* prefix = "") {
    state.counters[std::string(prefix) + "p50_us"] = l.percentile(0.50);
    state.counters[std::string(prefix) + "p99_us"] = l.percentile(0.99);
}

// ---- outbox tables ---------------------------------------------------------------------------

template <class B>
struct outbox_fixture {
    std::unique_ptr<typename B::connection> conn = B::open();
    std::string table = unique("bench_scale_outbox");
    typename B::outbox_table store{*conn, table};

    outbox_fixture() {
        typename B::transaction tx(*conn);
        store.create_tables(tx);
        tx.commit();
    }
    ~outbox_fixture() {
        try {
            B::exec(*conn, "DROP TABLE " + quoted_name(table));
        } catch (const settle::error&) {
        }
    }
    outbox_fixture(const outbox_fixture&) = delete;
    outbox_fixture& operator=(const outbox_fixture&) = delete;

    // n records with `status`, finished (if delivered) or due a day ago, in the database.
    void fill(std::int64_t n, const std::string& status, const std::string& tag) {
        if (n > 0) {
            B::fill_outbox(*conn, table, n, status, tag);
        }
    }

    void append(std::size_t count, std::uint64_t& next) {
        typename B::transaction tx(*conn);
        for (std::size_t i = 0; i < count; ++i) {
            (void)store.append(tx, message_of(++next),
                               settle::to_stored_time(std::chrono::system_clock::now()));
        }
        tx.commit();
    }
};

// ---- relay over a growing table ---------------------------------------------------------------

template <class B>
void relay_at(benchmark::State& state, std::int64_t delivered, std::int64_t backlog) {
    outbox_fixture<B> f;
    f.fill(delivered, "delivered", "d");
    std::uint64_t next = 0;
    for (std::int64_t appended = 0; appended < backlog; appended += fill_size) {
        f.append(fill_size, next);
    }
    std::chrono::system_clock clock;
    store_bench::take_everything publisher;
    settle::outbox_relay relay(f.store, publisher,
                               settle::persisted_retry{settle::ladder{1s, 5s}, 5}, clock,
                               {.owner = "bench", .batch_size = relay_batch});
    std::size_t pending = next;
    std::size_t published = 0;
    latencies runs;
    for (auto _ : state) {
        if (pending < relay_batch) {
            state.PauseTiming();
            f.append(fill_size, next);
            pending += fill_size;
            state.ResumeTiming();
        }
        settle::outbox_run_result done;
        timed(runs, [&] { done = relay.run_once(); });
        pending -= done.delivered;
        published += done.delivered;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(published));
    report(state, runs);
}

// ---- purge while appends run ------------------------------------------------------------------

template <class B>
void purge_while_appending(benchmark::State& state) {
    const auto batch = static_cast<std::size_t>(state.range(0));
    const std::int64_t rows = big_rows();
    const std::size_t quiet_appends =
        static_cast<std::size_t>(std::max<std::int64_t>(rows / 500, 200));
    for (auto _ : state) {
        outbox_fixture<B> f;
        f.fill(rows, "delivered", "d");
        std::uint64_t next = 0;
        latencies quiet;
        for (std::size_t i = 0; i < quiet_appends; ++i) {
            yield_after<B>(timed(quiet, [&] { f.append(1, next); }));
        }
        std::atomic<bool> purging{true};
        std::size_t purged = 0;
        const auto started = std::chrono::steady_clock::now();
        std::chrono::steady_clock::duration took{};
        std::thread purger([&] {
            const auto conn = B::open();
            typename B::outbox_table store(*conn, f.table);
            const settle::stored_time cutoff =
                settle::to_stored_time(std::chrono::system_clock::now());
            for (;;) {
                const auto batch_started = std::chrono::steady_clock::now();
                typename B::transaction tx(*conn);
                const std::size_t done = store.purge(tx, cutoff, batch);
                tx.commit();
                if (done == 0) {
                    break;
                }
                purged += done;
                yield_after<B>(std::chrono::steady_clock::now() - batch_started);
            }
            took = std::chrono::steady_clock::now() - started;
            purging = false;
        });
        latencies during;
        while (purging) {
            yield_after<B>(timed(during, [&] { f.append(1, next); }));
        }
        purger.join();
        state.SetIterationTime(std::chrono::duration<double>(took).count());
        const double quiet_p99 = quiet.percentile(0.99);
        const double during_p99 = during.percentile(0.99);
        report(state, quiet, "quiet_");
        report(state, during, "purging_");
        state.counters["p99_ratio"] = during_p99 / quiet_p99;
        state.counters["purged_per_s"] =
            static_cast<double>(purged) / std::chrono::duration<double>(took).count();
        state.counters["appends_during"] = static_cast<double>(during.size());
    }
}

// ---- idempotency with many live keys ----------------------------------------------------------

template <class B>
void idempotency_at(benchmark::State& state, std::int64_t live) {
    const auto conn = B::open();
    const std::string table = unique("bench_scale_idem");
    typename B::idempotency_table store(*conn, table);
    {
        typename B::transaction tx(*conn);
        store.create_tables(tx);
        tx.commit();
    }
    if (live > 0) {
        B::fill_idempotency(*conn, table, live);
    }
    const settle::idempotency_scope scope{"tenant", "orders.create"};
    const settle::sha256_digest fingerprint = settle::fingerprint_fields({"order", "42"});
    std::mt19937_64 random(42);
    char hex[33];
    latencies claims;
    for (auto _ : state) {
        std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(random()),
                      static_cast<unsigned long long>(random()));
        const settle::idempotency_key key = settle::idempotency_key::parse(hex).value();
        timed(claims, [&] {
            const settle::stored_time now =
                settle::to_stored_time(std::chrono::system_clock::now());
            typename B::transaction tx(*conn);
            const auto claimed = store.claim(tx, scope, key, fingerprint, now, now + 30s);
            benchmark::DoNotOptimize(claimed);
            tx.commit();
        });
    }
    state.SetItemsProcessed(state.iterations());
    report(state, claims);
    B::exec(*conn, "DROP TABLE " + quoted_name(table));
}

// ---- the relay's memory while the broker is down ----------------------------------------------

struct broker_down {
    settle::publish_result publish(const settle::outbox_record&) {
        return settle::publish_result::retryable("broker unreachable");
    }
};

double heap_kib() {
    const struct mallinfo2 m = mallinfo2();
    return static_cast<double>(m.uordblks + m.hblkhd) / 1024.0;
}

double rss_kib() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0;
    long resident = 0;
    statm >> pages >> resident;
    return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1024.0;
}

void relay_memory(benchmark::State& state) {
    constexpr int steps = 10;
    constexpr int runs_per_step = 50;
    const std::int64_t step_rows = big_rows() / steps;
    for (auto _ : state) {
        outbox_fixture<pg> f;
        std::chrono::system_clock clock;
        broker_down publisher;
        settle::outbox_relay relay(f.store, publisher,
                                   settle::persisted_retry{settle::ladder{1s, 5s}, 1000}, clock,
                                   {.owner = "bench", .batch_size = relay_batch});
        double heap_first = 0;
        double rss_first = 0;
        std::size_t rescheduled = 0;
        for (int step = 0; step < steps; ++step) {
            f.fill(step_rows, "pending",
                   std::to_string(100 + step));  // ids unique: tags are 3 digits
            for (int i = 0; i < runs_per_step; ++i) {
                rescheduled += relay.run_once().rescheduled;
            }
            if (step == 0) {
                heap_first = heap_kib();
                rss_first = rss_kib();
            }
        }
        state.counters["backlog_first"] = static_cast<double>(step_rows);
        state.counters["backlog_last"] = static_cast<double>(step_rows * steps);
        state.counters["heap_kib_first"] = heap_first;
        state.counters["heap_kib_last"] = heap_kib();
        state.counters["rss_kib_first"] = rss_first;
        state.counters["rss_kib_last"] = rss_kib();
        state.counters["rescheduled"] = static_cast<double>(rescheduled);
    }
}

// The situations of one backend, their names after `prefix`.
template <class B>
void register_situations(const std::string& prefix) {
    const std::int64_t rows = big_rows();
    for (const std::int64_t delivered : {std::int64_t{0}, rows / 10, rows}) {
        benchmark::RegisterBenchmark(
            (prefix + "relay/delivered:" + std::to_string(delivered)).c_str(),
            [delivered](benchmark::State& s) { relay_at<B>(s, delivered, 0); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    benchmark::RegisterBenchmark((prefix + "relay/backlog:" + std::to_string(rows / 10)).c_str(),
                                 [rows](benchmark::State& s) { relay_at<B>(s, 0, rows / 10); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((prefix + "purge").c_str(), purge_while_appending<B>)
        ->ArgName("batch")
        ->Arg(1000)
        ->Arg(10000)
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
    for (const std::int64_t live : {std::int64_t{0}, rows}) {
        benchmark::RegisterBenchmark((prefix + "idempotency/live:" + std::to_string(live)).c_str(),
                                     [live](benchmark::State& s) { idempotency_at<B>(s, live); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
}

// The sizes come from the environment, so the benchmarks are registered at start-up.
const bool registered = [] {
    register_situations<pg>("");
    benchmark::RegisterBenchmark("relay_memory/broker_down", relay_memory)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
    register_situations<lite>("sqlite/");
    return true;
}();

}  // namespace
