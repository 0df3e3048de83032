// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.

// Processes killed with SIGKILL at random points of their work on one
// WAL-mode SQLite file, commits included: an appender of business
// transactions and two relays whose publisher applies each message through
// the inbox (kill_worker.cpp). Afterwards every committed order is applied
// exactly once, in order per key, nothing else is, and the file is intact.
// Then coordinators of try/confirm/cancel branches, killed the same way and
// retrying: every branch ends once, with each business effect once.
#include <settle/stores/sqlite.hpp>

#include "settle_test.hpp"
#include "temp_database.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#ifndef SETTLE_SQLITE_KILL_WORKER
#error "SETTLE_SQLITE_KILL_WORKER names the worker program"
#endif

namespace sqlite = settle::sqlite;
using namespace std::chrono_literals;

namespace {

// Starts the worker with `args`; its output goes to `log`.
pid_t start(const std::vector<std::string>& args, const std::string& log) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (out >= 0) {
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
        }
        std::vector<char*> argv;
        std::string program = SETTLE_SQLITE_KILL_WORKER;
        argv.push_back(program.data());
        std::vector<std::string> copies = args;
        for (std::string& a : copies) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(program.c_str(), argv.data());
        ::_exit(127);
    }
    return pid;
}

void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

std::int64_t scalar(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const std::int64_t value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return value;
}

std::string integrity(sqlite3* db) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    std::string result(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
    sqlite3_finalize(s);
    return result;
}

}  // namespace

TEST_CASE("sqlite: processes killed during commits lose nothing and apply each record once",
          "[sqlite][faults]") {
    settle_test::temp_database file;
    const std::string log = file.path() + ".log";
    const std::string flag = file.path() + ".flag";
    {
        sqlite::connection conn(file.path());
        sqlite::outbox_table outbox(conn, "outbox");
        sqlite::inbox_table inbox(conn, "inbox");
        sqlite::transaction tx(conn);
        outbox.create_tables(tx);
        inbox.create_tables(tx);
        REQUIRE(sqlite3_exec(tx.native(),
                             "CREATE TABLE orders (n INTEGER PRIMARY KEY AUTOINCREMENT); CREATE "
                             "TABLE effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id "
                             "TEXT NOT NULL, n INTEGER NOT NULL)",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
        tx.commit();
    }
    // One byte the appender sets while it commits.
    const int flag_fd = ::open(flag.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(flag_fd >= 0);
    REQUIRE(::ftruncate(flag_fd, 1) == 0);
    void* mapped = ::mmap(nullptr, 1, PROT_READ, MAP_SHARED, flag_fd, 0);
    REQUIRE(mapped != MAP_FAILED);
    const volatile char* committing = static_cast<const char*>(mapped);

    const auto seed = std::random_device{}();
    std::mt19937 random(seed);
    std::printf("sqlite kill test: seed %u\n", seed);
    const std::array<std::vector<std::string>, 3> roles{{{"append", file.path(), flag},
                                                         {"relay", file.path(), "relay-a"},
                                                         {"relay", file.path(), "relay-b"}}};
    std::array<pid_t, 3> pids{};
    for (std::size_t i = 0; i < roles.size(); ++i) {
        pids[i] = start(roles[i], log);
    }
    constexpr int kills = 150;
    std::array<int, 3> killed{};
    int mid_commit = 0;
    for (int k = 0; k < kills; ++k) {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(2, 80)(random)));
        const auto i = std::uniform_int_distribution<std::size_t>(0, roles.size() - 1)(random);
        ::kill(pids[i], SIGKILL);  // first, then read the flag the kill froze
        if (i == 0 && *committing != 0) {
            ++mid_commit;
        }
        kill_and_reap(pids[i]);
        ++killed[i];
        pids[i] = start(roles[i], log);
    }
    kill_and_reap(pids[0]);  // no more orders; the relays drain the outbox
    sqlite::connection conn(file.path());
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (scalar(conn.native(), "SELECT count(*) FROM outbox WHERE status <> 'delivered'") != 0 &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
    }
    kill_and_reap(pids[1]);
    kill_and_reap(pids[2]);
    ::munmap(mapped, 1);
    ::close(flag_fd);

    const std::int64_t orders = scalar(conn.native(), "SELECT count(*) FROM orders");
    const std::int64_t redelivered =
        scalar(conn.native(), "SELECT count(*) FROM outbox WHERE attempts > 1");
    std::printf(
        "sqlite kill test: %lld orders; kills: %d appender (%d mid-commit), %d + %d relays; "
        "%lld records published more than once\n",
        static_cast<long long>(orders), killed[0], mid_commit, killed[1], killed[2],
        static_cast<long long>(redelivered));
    INFO("seed " << seed);
    CHECK(orders > 0);
    // Every committed order has its record, every record its order, all delivered.
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == orders);
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox WHERE status <> 'delivered'") == 0);
    // Applied: every order once, nothing else.
    CHECK(scalar(conn.native(), "SELECT count(*) FROM effects") == orders);
    CHECK(scalar(conn.native(), "SELECT count(DISTINCT n) FROM effects") == orders);
    CHECK(scalar(conn.native(),
                 "SELECT count(*) FROM effects WHERE n NOT IN (SELECT n FROM orders)") == 0);
    // In order per key: a later effect of key n % 4 never has a smaller n.
    CHECK(scalar(conn.native(),
                 "SELECT count(*) FROM effects AS a JOIN effects AS b ON a.n % 4 = b.n % 4 AND "
                 "a.seq < b.seq AND a.n > b.n") == 0);
    CHECK(integrity(conn.native()) == "ok");
    std::filesystem::remove(log);
    std::filesystem::remove(flag);
}

TEST_CASE("sqlite: try/confirm/cancel branches killed during commits end once, each effect once",
          "[sqlite][faults]") {
    settle_test::temp_database file;
    const std::string log = file.path() + ".log";
    const std::string flag = file.path() + ".flag";
    {
        sqlite::connection conn(file.path());
        sqlite::barrier_table barrier(conn, "barrier");
        sqlite::transaction tx(conn);
        barrier.create_tables(tx);
        REQUIRE(sqlite3_exec(tx.native(),
                             "CREATE TABLE ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, xid TEXT "
                             "NOT NULL, kind TEXT NOT NULL); CREATE TABLE progress (n INTEGER "
                             "PRIMARY KEY)",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
        tx.commit();
    }
    constexpr std::size_t workers = 2;
    // Byte i is set while coordinator i commits.
    const int flag_fd = ::open(flag.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(flag_fd >= 0);
    REQUIRE(::ftruncate(flag_fd, workers) == 0);
    void* mapped = ::mmap(nullptr, workers, PROT_READ, MAP_SHARED, flag_fd, 0);
    REQUIRE(mapped != MAP_FAILED);
    const volatile char* committing = static_cast<const char*>(mapped);

    const auto seed = std::random_device{}();
    std::mt19937 random(seed);
    std::printf("sqlite barrier kill test: seed %u\n", seed);
    const auto role = [&](std::size_t i, const char* mode) {
        return std::vector<std::string>{
            "tcc", file.path(), flag, std::to_string(i), std::to_string(workers), mode};
    };
    std::array<pid_t, workers> pids{};
    for (std::size_t i = 0; i < workers; ++i) {
        pids[i] = start(role(i, "run"), log);
    }
    constexpr int kills = 100;
    int mid_commit = 0;
    for (int k = 0; k < kills; ++k) {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(2, 60)(random)));
        const auto i = std::uniform_int_distribution<std::size_t>(0, workers - 1)(random);
        ::kill(pids[i], SIGKILL);  // first, then read the flag the kill froze
        if (committing[i] != 0) {
            ++mid_commit;
        }
        kill_and_reap(pids[i]);
        pids[i] = start(role(i, "run"), log);
    }
    // The coordinators retry the branch each was driving, and stop.
    for (const pid_t pid : pids) {
        kill_and_reap(pid);
    }
    for (std::size_t i = 0; i < workers; ++i) {
        const pid_t pid = start(role(i, "finish"), log);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    ::munmap(mapped, workers);
    ::close(flag_fd);
    // No call answered an outcome the barrier's table does not allow.
    std::ifstream worker_log(log);
    const std::string output{std::istreambuf_iterator<char>(worker_log), {}};
    CHECK(output.find("unexpected") == std::string::npos);

    sqlite::connection conn(file.path());
    const std::int64_t branches = scalar(conn.native(), "SELECT count(*) FROM barrier");
    std::printf("sqlite barrier kill test: %lld branches; %d kills (%d mid-commit)\n",
                static_cast<long long>(branches), kills, mid_commit);
    INFO("seed " << seed);
    CHECK(branches > 0);
    // Every branch the coordinators began was driven to its end, and ended as
    // its number says: 0 cancelled before its try, 1 confirmed, 2 cancelled.
    CHECK(scalar(conn.native(), "SELECT count(*) FROM progress") == branches);
    CHECK(scalar(conn.native(),
                 "SELECT count(*) FROM barrier WHERE branch_id <> 'stock' OR state <> CASE "
                 "CAST(substr(transaction_id, 2) AS INTEGER) % 3 WHEN 0 THEN 'cancel_marker' WHEN "
                 "1 THEN 'confirmed' ELSE 'cancelled' END OR CAST(substr(transaction_id, 2) AS "
                 "INTEGER) NOT IN (SELECT n FROM progress)") == 0);
    // Each effect once: reserved unless cancelled before the try, then spent
    // or released; nothing for a branch that has no record.
    CHECK(scalar(conn.native(),
                 "SELECT count(*) FROM barrier AS b WHERE (SELECT count(*) FROM ledger AS l "
                 "WHERE l.xid = b.transaction_id AND l.kind = 'reserve') <> (b.state <> "
                 "'cancel_marker') OR (SELECT count(*) FROM ledger AS l WHERE l.xid = "
                 "b.transaction_id AND l.kind = 'spend') <> (b.state = 'confirmed') OR (SELECT "
                 "count(*) FROM ledger AS l WHERE l.xid = b.transaction_id AND l.kind = "
                 "'release') <> (b.state = 'cancelled')") == 0);
    CHECK(scalar(conn.native(),
                 "SELECT count(*) FROM ledger WHERE xid NOT IN (SELECT transaction_id FROM "
                 "barrier)") == 0);
    CHECK(integrity(conn.native()) == "ok");
    std::filesystem::remove(log);
    std::filesystem::remove(flag);
}
