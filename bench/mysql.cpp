// The MySQL backend against hand-written SQL doing the same work on the same
// server, in the same run (the server: scripts/mariadb.sh; the connection
// settings: SETTLE_MYSQL, "socket=... user=... database=...").
//
//   relay/<batch>             outbox_relay::run_once over mysql::outbox_table with a
//                             publisher that takes everything: records per second
//   baseline/relay_sql        one claim (SELECT ... FOR UPDATE SKIP LOCKED, then an
//                             UPDATE of those rows) in one transaction and one
//                             UPDATE marking the batch delivered in another: the
//                             least SQL that does the relay's claim and completion
//   append                    outbox append inside an open business transaction
//   baseline/insert           a raw INSERT of the same row into a table made by the
//                             outbox's own DDL
//   idempotency               claim, commit, complete, commit on a fresh key
//   baseline/idempotency_sql  the same two transactions in hand-written SQL
//
// Both sides prepare their statements once per connection, as the backend
// does, and bind values in the binary protocol. Outboxes are filled with the
// timer paused; each relay iteration moves one batch.
#include <settle/idempotency.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/stores/mysql.hpp>

#include <benchmark/benchmark.h>

#include "store_bench.hpp"

#include <mysql.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
namespace mysql = settle::mysql;

namespace {

constexpr std::size_t fill_size = 4096;
constexpr std::size_t statements_per_transaction = 512;

mysql::connection_options options() {
    const char* value = std::getenv("SETTLE_MYSQL");
    if (value == nullptr) {
        std::fprintf(stderr,
                     "settle_bench_mysql: set SETTLE_MYSQL (scripts/mariadb.sh start DIR; "
                     "scripts/mariadb.sh conninfo DIR)\n");
        std::exit(2);
    }
    mysql::connection_options o;
    std::istringstream in(value);
    for (std::string word; in >> word;) {
        const auto eq = word.find('=');
        const std::string name = word.substr(0, eq);
        const std::string v = word.substr(eq + 1);
        (name == "socket" ? o.unix_socket : name == "user" ? o.user : o.database) = v;
    }
    return o;
}

std::string unique(const char* name) {
    static int count = 0;
    return std::string(name) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++count);
}

[[noreturn]] void fail(const std::string& what, const char* message) {
    throw settle::error(settle::errc::backend_failure, what + ": " + message);
}

// A statement without parameters, in the text protocol (set-up, COMMIT).
void sql(MYSQL* conn, const std::string& statement) {
    if (mysql_real_query(conn, statement.data(), statement.size()) != 0) {
        fail(statement, mysql_error(conn));
    }
    if (MYSQL_RES* r = mysql_store_result(conn)) {
        mysql_free_result(r);
    }
}

// One hand-written prepared statement: integers and byte strings bound in
// the binary protocol, rows fetched as byte strings.
using value = std::variant<std::int64_t, std::string>;

class statement {
public:
    statement(MYSQL* conn, std::string text) : st_(mysql_stmt_init(conn)), text_(std::move(text)) {
        if (mysql_stmt_prepare(st_.get(), text_.data(), text_.size()) != 0) {
            fail(text_, mysql_stmt_error(st_.get()));
        }
    }

    // Runs it; returns the rows, each column as bytes (integers as decimal text).
    std::vector<std::vector<std::string>> run(std::vector<value> params) {
        std::vector<MYSQL_BIND> binds(params.size());
        std::vector<unsigned long> lengths(params.size());
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (auto* n = std::get_if<std::int64_t>(&params[i])) {
                binds[i].buffer_type = MYSQL_TYPE_LONGLONG;
                binds[i].buffer = n;
            } else {
                auto& s = std::get<std::string>(params[i]);
                binds[i].buffer_type = MYSQL_TYPE_BLOB;
                binds[i].buffer = s.data();
                lengths[i] = s.size();
                binds[i].buffer_length = lengths[i];
                binds[i].length = &lengths[i];
            }
        }
        if ((!binds.empty() && mysql_stmt_bind_param(st_.get(), binds.data()) != 0) ||
            mysql_stmt_execute(st_.get()) != 0) {
            fail(text_, mysql_stmt_error(st_.get()));
        }
        std::vector<std::vector<std::string>> rows;
        MYSQL_RES* meta = mysql_stmt_result_metadata(st_.get());
        if (meta == nullptr) {
            return rows;
        }
        const unsigned columns = mysql_num_fields(meta);
        mysql_free_result(meta);
        std::vector<MYSQL_BIND> out(columns);
        std::vector<std::string> buffers(columns, std::string(256, '\0'));
        std::vector<unsigned long> sizes(columns);
        for (unsigned i = 0; i < columns; ++i) {
            out[i].buffer_type = MYSQL_TYPE_STRING;
            out[i].buffer = buffers[i].data();
            out[i].buffer_length = buffers[i].size();
            out[i].length = &sizes[i];
        }
        mysql_stmt_bind_result(st_.get(), out.data());
        while (mysql_stmt_fetch(st_.get()) == 0) {
            std::vector<std::string> row;
            for (unsigned i = 0; i < columns; ++i) {
                row.emplace_back(buffers[i].data(), std::min<std::size_t>(sizes[i], 256));
            }
            rows.push_back(std::move(row));
        }
        mysql_stmt_free_result(st_.get());
        return rows;
    }

private:
    struct close {
        void operator()(MYSQL_STMT* st) const noexcept { mysql_stmt_close(st); }
    };
    std::unique_ptr<MYSQL_STMT, close> st_;
    std::string text_;
};

using store_bench::message_of;
using store_bench::now_micros;

std::string bytes_of(const settle::bytes& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string id_bytes(const settle::uuid& id) {
    return {reinterpret_cast<const char*>(id.bytes().data()), 16};
}

// "(a, b, ...)" of the claimed sequences, for the hand-written IN lists.
std::string in_list(const std::vector<std::vector<std::string>>& rows) {
    std::string out = "(";
    for (const auto& row : rows) {
        out += (out.size() > 1 ? ", " : "") + row[1];
    }
    return out + ")";
}

// ---- relay --------------------------------------------------------------------------------

void relay(benchmark::State& state) {
    mysql::connection conn(options());
    const std::string table = unique("bench_relay");
    mysql::outbox_table store(conn, table);
    {
        mysql::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    store_bench::relay_throughput(state, store, fill_size);
    sql(conn.native(), "DROP TABLE " + table);
    sql(conn.native(), "DROP TABLE " + table + "_keys");
}

void baseline_relay(benchmark::State& state) {
    const auto batch = static_cast<std::int64_t>(state.range(0));
    mysql::connection conn(options());
    MYSQL* c = conn.native();
    const std::string table = unique("bench_raw_relay");
    sql(c, "CREATE TABLE " + table +
               " (sequence BIGINT AUTO_INCREMENT PRIMARY KEY, id BINARY(16) NOT NULL UNIQUE, "
               "topic VARCHAR(255) NOT NULL, ordering_key VARBINARY(255) NOT NULL, payload "
               "LONGBLOB NOT NULL, created_at BIGINT NOT NULL, attempts INT NOT NULL DEFAULT 0, "
               "next_attempt_at BIGINT NOT NULL, status SMALLINT NOT NULL DEFAULT 0, claim_owner "
               "VARCHAR(255) NOT NULL DEFAULT '', claim_expires_at BIGINT NOT NULL DEFAULT 0, "
               "INDEX due (status, next_attempt_at, sequence)) ENGINE=InnoDB");
    statement insert(c, "INSERT INTO " + table +
                            " (id, topic, ordering_key, payload, created_at, next_attempt_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)");
    statement claim(c,
                    "SELECT id, sequence, topic, ordering_key, payload, created_at, attempts, "
                    "next_attempt_at FROM " +
                        table +
                        " WHERE status = 0 AND next_attempt_at <= ? ORDER BY "
                        "next_attempt_at, sequence LIMIT ? FOR UPDATE SKIP LOCKED");
    std::uint64_t next = 0;
    std::int64_t pending = 0;
    std::int64_t delivered = 0;
    for (auto _ : state) {
        if (pending < batch) {
            state.PauseTiming();
            sql(c, "START TRANSACTION");
            sql(c, "DELETE FROM " + table + " WHERE status = 2");
            for (std::size_t i = 0; i < fill_size; ++i) {
                const auto m = message_of(++next);
                (void)insert.run({id_bytes(m.id), m.topic, m.ordering_key, bytes_of(m.payload),
                                  now_micros(), now_micros()});
            }
            sql(c, "COMMIT");
            pending += static_cast<std::int64_t>(fill_size);
            state.ResumeTiming();
        }
        sql(c, "START TRANSACTION");
        const std::int64_t now = now_micros();
        const auto claimed = claim.run({now, batch});
        const std::string list = in_list(claimed);
        if (!claimed.empty()) {
            sql(c, "UPDATE " + table +
                       " SET status = 1, claim_owner = 'bench', claim_expires_at = " +
                       std::to_string(now + 30'000'000) +
                       ", attempts = attempts + 1 WHERE sequence IN " + list);
        }
        sql(c, "COMMIT");
        for (const auto& row : claimed) {
            benchmark::DoNotOptimize(row[4].data());
        }
        sql(c, "START TRANSACTION");
        if (!claimed.empty()) {
            sql(c,
                "UPDATE " + table +
                    " SET status = 2, claim_owner = '', claim_expires_at = 0 WHERE sequence IN " +
                    list + " AND claim_owner = 'bench'");
        }
        sql(c, "COMMIT");
        pending -= static_cast<std::int64_t>(claimed.size());
        delivered += static_cast<std::int64_t>(claimed.size());
    }
    state.SetItemsProcessed(delivered);
    sql(c, "DROP TABLE " + table);
}

// ---- append inside a business transaction ---------------------------------------------------

void append(benchmark::State& state) {
    mysql::connection conn(options());
    const std::string table = unique("bench_append");
    mysql::outbox_table store(conn, table);
    {
        mysql::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    std::chrono::system_clock clock;
    store_bench::writes_in_open_transactions<mysql::transaction>(
        state, conn, statements_per_transaction, [&](mysql::transaction& tx, std::uint64_t n) {
            (void)store.append(tx, message_of(n),
                               std::chrono::floor<std::chrono::microseconds>(clock.now()));
        });
    sql(conn.native(), "DROP TABLE " + table);
    sql(conn.native(), "DROP TABLE " + table + "_keys");
}

void baseline_insert(benchmark::State& state) {
    mysql::connection conn(options());
    const std::string table = unique("bench_raw_append");
    mysql::outbox_table shape(conn, table);  // only for its DDL: the same table and indexes
    {
        mysql::transaction tx(conn);
        shape.create_tables(tx);
        tx.commit();
    }
    statement insert(conn.native(), "INSERT INTO " + table +
                                        " (id, topic, ordering_key, payload, headers, created_at, "
                                        "next_attempt_at, status) VALUES (?, ?, ?, ?, '', ?, ?, "
                                        "'pending')");
    store_bench::writes_in_open_transactions<mysql::transaction>(
        state, conn, statements_per_transaction, [&](mysql::transaction&, std::uint64_t n) {
            const auto m = message_of(n);
            (void)insert.run({id_bytes(m.id), m.topic, m.ordering_key, bytes_of(m.payload),
                              now_micros(), now_micros()});
        });
    sql(conn.native(), "DROP TABLE " + table);
    sql(conn.native(), "DROP TABLE " + table + "_keys");
}

// ---- idempotency: claim, then complete -------------------------------------------------------

void idempotency(benchmark::State& state) {
    mysql::connection conn(options());
    const std::string table = unique("bench_idem");
    mysql::idempotency_table store(conn, table);
    {
        mysql::transaction tx(conn);
        store.create_tables(tx);
        tx.commit();
    }
    store_bench::claim_and_complete(state, store);
    sql(conn.native(), "DROP TABLE " + table);
    sql(conn.native(), "DROP TABLE " + table + "_token");
}

// The least a hand-writer would do: a plain INSERT claims (a duplicate key
// is the other answer), the token an AUTO_INCREMENT column; one UPDATE completes.
void baseline_idempotency(benchmark::State& state) {
    mysql::connection conn(options());
    MYSQL* c = conn.native();
    const std::string table = unique("bench_raw_idem");
    sql(c, "CREATE TABLE " + table +
               " (token BIGINT AUTO_INCREMENT UNIQUE, tenant VARBINARY(255) NOT NULL, operation "
               "VARBINARY(255) NOT NULL, `key` VARBINARY(255) NOT NULL, state SMALLINT NOT NULL, "
               "fingerprint BINARY(32) NOT NULL, claimed_at BIGINT NOT NULL, expires_at BIGINT NOT "
               "NULL, body LONGBLOB, status INT, PRIMARY KEY (tenant, operation, `key`)) "
               "ENGINE=InnoDB");
    statement claim(c, "INSERT INTO " + table +
                           " (tenant, operation, `key`, state, fingerprint, claimed_at, "
                           "expires_at) VALUES (?, ?, ?, 0, ?, ?, ?)");
    statement token_of(c, "SELECT LAST_INSERT_ID()");
    statement complete(c, "UPDATE " + table +
                              " SET state = 1, body = ?, status = ?, expires_at = ? WHERE tenant "
                              "= ? AND operation = ? AND `key` = ? AND token = ? AND state = 0");
    const std::string fingerprint(32, 'a');
    const std::string body(64, '*');
    std::uint64_t next = 0;
    for (auto _ : state) {
        const std::string key = "key-" + std::to_string(++next);
        const std::int64_t now = now_micros();
        sql(c, "START TRANSACTION");
        (void)claim.run({std::string("tenant"), std::string("orders.create"), key, fingerprint, now,
                         now + 30'000'000});
        const std::int64_t token = std::stoll(token_of.run({}).at(0).at(0));
        sql(c, "COMMIT");
        sql(c, "START TRANSACTION");
        (void)complete.run({body, std::int64_t{201}, now + 86'400'000'000, std::string("tenant"),
                            std::string("orders.create"), key, token});
        sql(c, "COMMIT");
    }
    state.SetItemsProcessed(state.iterations());
    sql(c, "DROP TABLE " + table);
}

}  // namespace

BENCHMARK(relay)
    ->Name("relay")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(baseline_relay)
    ->Name("baseline/relay_sql")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(append)->Name("append")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_insert)->Name("baseline/insert")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(idempotency)->Name("idempotency")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_idempotency)
    ->Name("baseline/idempotency_sql")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
