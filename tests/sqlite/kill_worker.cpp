// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.

// The processes the SQLite kill test (kill.cpp) starts and kills with
// SIGKILL, all on one WAL-mode database file:
//
//   sqlite_kill_worker append <db> <flag>
//       appends until killed: each business transaction inserts an order
//       (orders, n from AUTOINCREMENT) and appends its message (outbox, id
//       id_of(n), ordering key n % 4) and commits. The byte in file <flag> is
//       1 while a commit runs, so the test can tell a kill mid-commit.
//   sqlite_kill_worker relay <db> <owner>
//       runs an outbox_relay on outbox until killed. Its publisher is the
//       consumer: on a connection of its own it applies each message once
//       through the inbox (inbox), the effect being a row of effects.
//   sqlite_kill_worker tcc <db> <flag> <worker> <workers> run|finish
//       a coordinator and its participant: drives branch n (transaction id
//       x<n>, branch stock) for n = worker, worker + workers, ... through
//       the try/confirm/cancel barrier (barrier), each phase's business
//       write (ledger: reserve, spend, release) in the phase's transaction.
//       n % 3 == 0: cancel, then a late try (refused); 1: try, confirm;
//       2: try, cancel. Then the phase the branch's end refuses. A finished
//       branch is logged in progress; after a kill the next run starts again
//       with the branch after the last logged one, repeating its calls
//       (finish: that branch only). Byte <worker> of <flag> is 1 while a
//       commit runs. An outcome the barrier's table does not allow prints
//       "unexpected" and exits with 3.
#include <settle/barrier.hpp>
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/stores/sqlite.hpp>

#include "outbox/ids.hpp"
#include "process_main.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <stop_token>
#include <string>

namespace sqlite = settle::sqlite;
using namespace std::chrono_literals;

namespace {

void exec(sqlite3* db, const std::string& sql) {
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
        throw settle::error(settle::errc::backend_failure, sql + ": " + sqlite3_errmsg(db));
    }
}

int append(const std::string& path, const std::string& flag_path) {
    const int fd = ::open(flag_path.c_str(), O_RDWR);
    void* mapped = fd < 0 ? MAP_FAILED : ::mmap(nullptr, 1, PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) {
        std::perror("sqlite_kill_worker: flag");
        return 2;
    }
    volatile char* committing = static_cast<char*>(mapped);
    sqlite::connection conn(path);
    sqlite::outbox_table store(conn, "outbox");
    std::chrono::system_clock clock;
    settle::outbox outbox(store, clock);
    while (true) {
        try {
            sqlite::transaction tx(conn);
            exec(tx.native(), "INSERT INTO orders DEFAULT VALUES");
            const auto n = static_cast<std::uint32_t>(sqlite3_last_insert_rowid(tx.native()));
            (void)outbox.append(tx, outbox_test::message_of(n, "key-" + std::to_string(n % 4)));
            *committing = 1;
            tx.commit();
            *committing = 0;
        } catch (const settle::error& e) {  // busy past the timeout: try again
            *committing = 0;
            std::fprintf(stderr, "append: %s\n", e.what());
        }
    }
}

// Applies each message once, in a transaction of its own on its own connection.
class applying_publisher {
public:
    explicit applying_publisher(const std::string& path)
        : conn_(path), inbox_(conn_, "inbox"), consumer_(inbox_, clock_, {.consumer = "kill"}) {}

    settle::publish_result publish(const settle::outbox_record& record) {
        try {
            (void)consumer_.consume(record.id.to_string(), [&](sqlite::transaction& tx) {
                exec(tx.native(),
                     "INSERT INTO effects (message_id, n) VALUES ('" + record.id.to_string() +
                         "', " + std::to_string(settle::decode<std::uint32_t>(record.payload)) +
                         ")");
            });
        } catch (const settle::error& e) {
            return settle::publish_result::retryable(e.what());
        }
        return settle::publish_result::delivered();
    }

private:
    std::chrono::system_clock clock_;
    sqlite::connection conn_;
    sqlite::inbox_table inbox_;
    settle::idempotent_consumer<sqlite::inbox_table, std::chrono::system_clock> consumer_;
};

int relay(const std::string& path, const std::string& owner) {
    sqlite::connection conn(path);
    sqlite::outbox_table store(conn, "outbox");
    applying_publisher publisher(path);
    std::chrono::system_clock clock;
    settle::outbox_relay relay(
        store, publisher, settle::persisted_retry{settle::ladder{5ms, 20ms}, 1000000}, clock,
        {.owner = owner, .batch_size = 8, .lease = 300ms, .idle_min = 2ms, .idle_max = 20ms});
    relay.run(std::stop_token{});
    return 0;
}

using barrier = settle::tcc_barrier<sqlite::barrier_table, std::chrono::system_clock>;

// Runs one phase of branch x<n> in its own transaction; exits with 3 if the
// outcome is none of `allowed`.
void phase(sqlite::connection& conn, barrier& b, volatile char* committing, settle::barrier_phase p,
           std::uint32_t n, std::initializer_list<settle::barrier_outcome> allowed) {
    const std::string xid = "x" + std::to_string(n);
    const auto ledger = [&](const char* kind) {
        return [&xid, kind](sqlite::transaction& tx) {
            exec(tx.native(),
                 "INSERT INTO ledger (xid, kind) VALUES ('" + xid + "', '" + kind + "')");
        };
    };
    sqlite::transaction tx(conn);
    const settle::barrier_result r =
        p == settle::barrier_phase::try_phase ? b.try_phase(tx, xid, "stock", ledger("reserve"))
        : p == settle::barrier_phase::confirm ? b.confirm(tx, xid, "stock", ledger("spend"))
                                              : b.cancel(tx, xid, "stock", ledger("release"));
    *committing = 1;
    tx.commit();
    *committing = 0;
    for (const settle::barrier_outcome a : allowed) {
        if (r.outcome() == a) {
            return;
        }
    }
    std::fprintf(stderr, "unexpected: %s of %s answered %s\n", to_string(p).data(), xid.c_str(),
                 to_string(r.outcome()).data());
    std::exit(3);
}

int tcc(const std::string& path, const std::string& flag_path, std::uint32_t worker,
        std::uint32_t workers, bool finish) {
    const int fd = ::open(flag_path.c_str(), O_RDWR);
    void* mapped = fd < 0 ? MAP_FAILED : ::mmap(nullptr, workers, PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) {
        std::perror("sqlite_kill_worker: flag");
        return 2;
    }
    volatile char* committing = static_cast<char*>(mapped) + worker;
    sqlite::connection conn(path);
    sqlite::barrier_table table(conn, "barrier");
    std::chrono::system_clock clock;
    barrier b(table, clock);
    using o = settle::barrier_outcome;
    using p = settle::barrier_phase;
    std::uint32_t n = worker;
    while (true) {
        try {
            {
                sqlite::transaction tx(conn);
                sqlite3_stmt* s = nullptr;
                const std::string sql = "SELECT max(n) FROM progress WHERE n % " +
                                        std::to_string(workers) + " = " + std::to_string(worker);
                if (sqlite3_prepare_v2(tx.native(), sql.c_str(), -1, &s, nullptr) != SQLITE_OK ||
                    sqlite3_step(s) != SQLITE_ROW) {
                    sqlite3_finalize(s);
                    throw settle::error(settle::errc::backend_failure, sqlite3_errmsg(tx.native()));
                }
                n = sqlite3_column_type(s, 0) == SQLITE_NULL
                        ? worker
                        : static_cast<std::uint32_t>(sqlite3_column_int64(s, 0)) + workers;
                sqlite3_finalize(s);
            }
            switch (n % 3) {
            case 0:
                phase(conn, b, committing, p::cancel, n, {o::empty_cancel, o::duplicate});
                phase(conn, b, committing, p::try_phase, n, {o::hanging});
                phase(conn, b, committing, p::confirm, n, {o::branch_cancelled});
                break;
            case 1:
                phase(conn, b, committing, p::try_phase, n, {o::entered, o::duplicate});
                phase(conn, b, committing, p::confirm, n, {o::entered, o::duplicate});
                phase(conn, b, committing, p::cancel, n, {o::branch_confirmed});
                break;
            default:  // a repeated try meets its cancel if that committed before a kill
                phase(conn, b, committing, p::try_phase, n,
                      {o::entered, o::duplicate, o::branch_cancelled});
                phase(conn, b, committing, p::cancel, n, {o::entered, o::duplicate});
                phase(conn, b, committing, p::confirm, n, {o::branch_cancelled});
                phase(conn, b, committing, p::try_phase, n, {o::branch_cancelled});
                break;
            }
            sqlite::transaction tx(conn);
            exec(tx.native(), "INSERT INTO progress (n) VALUES (" + std::to_string(n) + ")");
            *committing = 1;
            tx.commit();
            *committing = 0;
            if (finish) {
                return 0;
            }
        } catch (const settle::error& e) {  // busy past the timeout: start the branch again
            *committing = 0;
            std::fprintf(stderr, "tcc: %s\n", e.what());
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    return process_main::run(
        "sqlite_kill_worker", argc, argv,
        {{"append", "<db> <flag>", [](const auto& a) { return append(a[0], a[1]); }},
         {"relay", "<db> <owner>", [](const auto& a) { return relay(a[0], a[1]); }},
         {"tcc", "<db> <flag> <worker> <workers> run|finish", [](const auto& a) {
              return tcc(a[0], a[1], static_cast<std::uint32_t>(std::stoul(a[2])),
                         static_cast<std::uint32_t>(std::stoul(a[3])), a[4] == "finish");
          }}});
}
