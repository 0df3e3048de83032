// Fault tests on real processes: relays killed with SIGKILL mid-publish, the
// server restarted under running relays, two relays sharing one outbox. The
// relays and the consumer are separate processes (tests/faults/worker.cpp);
// this file appends, kills, restarts and counts. What must hold at the end:
// every committed record delivered, none of a rolled-back transaction, no
// effect applied twice, per-key order kept. Built once per backend:
// PostgreSQL, and MySQL with SETTLE_FAULTS_MYSQL (tests/faults/backend.hpp).
#include <settle/outbox.hpp>
#include <settle/uuid.hpp>

#include "faults/backend.hpp"
#include "settle_test.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

using namespace std::chrono_literals;
using faults::query;

namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) {
        FAIL(std::string(name) +
             " is not set: run the fault tests through CTest, which starts "
             "the " SETTLE_FAULTS_SERVER " server");
    }
    return value;
}

// A child process (the fault worker or the fault proxy), its output in a log
// file; `environment` holds NAME=value entries that replace the test's own.
class process {
public:
    process(std::string program, const std::vector<std::string>& args, std::string log,
            const std::vector<std::string>& environment = {})
        : log_(std::move(log)) {
        std::vector<char*> argv;
        argv.push_back(program.data());
        std::vector<std::string> copies = args;
        for (std::string& a : copies) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        std::vector<std::string> entries = environment;
        for (char** e = environ; *e != nullptr; ++e) {
            const std::string_view entry = *e;
            const bool replaced =
                std::any_of(environment.begin(), environment.end(), [&](const std::string& mine) {
                    return entry.substr(0, entry.find('=') + 1) ==
                           mine.substr(0, mine.find('=') + 1);
                });
            if (!replaced) {
                entries.emplace_back(entry);
            }
        }
        std::vector<char*> envp;
        for (std::string& e : entries) {
            envp.push_back(e.data());
        }
        envp.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                         0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        const int failed = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        REQUIRE(failed == 0);
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    ~process() { kill(); }

    // Whether it still runs: it has not exited or crashed on its own.
    [[nodiscard]] bool alive() {
        int status = 0;
        if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = 0;
        }
        return pid_ > 0;
    }

    // SIGKILL: no chance to finish a publish, release a claim or roll back.
    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            pid_ = 0;
        }
    }

    [[nodiscard]] std::string log() const {
        std::ifstream in(log_);
        return {std::istreambuf_iterator<char>(in), {}};
    }

private:
    std::string log_;
    pid_t pid_ = 0;
};

std::size_t count_lines(const std::string& text, const std::string& prefix) {
    std::istringstream in(text);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) {
        n += line.rfind(prefix, 0) == 0 ? 1U : 0U;
    }
    return n;
}

// One fault scenario's tables, named after the scenario and this process,
// and the driver's own connection. Drops the tables when done.
struct scenario {
    std::string table;
    std::string socket;
    backend::connection conn;
    backend::outbox_table store;
    std::chrono::system_clock clock;
    std::mt19937_64 random{std::random_device{}()};
    settle::uuid_v7_generator<std::chrono::system_clock, std::mt19937_64> next_id{clock, random};
    settle::outbox<backend::outbox_table, std::chrono::system_clock> outbox{store, clock};
    std::vector<std::string> committed;
    std::vector<std::string> rolled_back;
    // NAME=value entries for the relays and the consumer (another SETTLE_POSTGRES)
    std::vector<std::string> worker_environment;

    explicit scenario(const std::string& name)
        : table(name + "_" + std::to_string(::getpid())),
          socket("/tmp/settle-" + table + ".sock"),
          conn(faults::connect()),
          store(conn, table) {
        backend::transaction tx(conn);
        store.create_tables(tx);
        backend::inbox_table(conn, table + "_inbox").create_tables(tx);
        tx.commit();
        // Outside a transaction: MySQL would commit one around each CREATE TABLE.
        query(conn.native(), "CREATE TABLE " + table + "_orders (id VARCHAR(64) PRIMARY KEY)");
        query(conn.native(),
              "CREATE TABLE " + table + "_receipts (message_id VARCHAR(64) NOT NULL)");
        query(conn.native(), "CREATE TABLE " + table + "_effects (applied " +
                                 faults::counter_column +
                                 ", message_id VARCHAR(64) NOT NULL, ordering_key VARCHAR(64) "
                                 "NOT NULL, number INTEGER NOT NULL)");
    }
    scenario(const scenario&) = delete;
    scenario& operator=(const scenario&) = delete;
    ~scenario() {
        try {
            for (const char* suffix : {"", "_inbox", "_orders", "_receipts", "_effects", "_keys"}) {
                query(conn.native(), "DROP TABLE IF EXISTS " + table + suffix);
            }
        } catch (...) {  // NOLINT(bugprone-empty-catch): leftovers die with the server
        }
        ::unlink(socket.c_str());
    }

    settle::outbox_statistics statistics() {
        return settle::in_transaction(store, [&](auto& tx) { return outbox.statistics(tx); });
    }

    std::string log(const std::string& who) const {
        return "/tmp/settle-" + table + "-" + who + ".log";
    }

    // An order row and its event, in one transaction that commits (or not).
    void place_order(const std::string& ordering_key, std::uint32_t number, bool commit) {
        const settle::uuid id = next_id();
        backend::transaction tx(conn);
        query(tx.native(), "INSERT INTO " + table + "_orders (id) VALUES ($1)", {id.to_string()});
        REQUIRE(outbox.append(tx, id, "orders.placed", number, ordering_key));
        if (commit) {
            tx.commit();
            committed.push_back(id.to_string());
        } else {
            tx.rollback();
            rolled_back.push_back(id.to_string());
        }
    }

    process consumer() const {
        return process(SETTLE_FAULT_WORKER, {"consume", socket, table}, log("consumer"),
                       worker_environment);
    }
    process relay(const std::string& owner, int lease_ms, int batch) const {
        return process(
            SETTLE_FAULT_WORKER,
            {"relay", socket, table, owner, std::to_string(lease_ms), std::to_string(batch)},
            log(owner), worker_environment);
    }

    // Waits until nothing is left to deliver, riding out a restarting server.
    void wait_until_drained(std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            try {
                const settle::outbox_statistics now = statistics();
                if (now.backlog == 0) {
                    return;
                }
            } catch (const settle::error& e) {
                if (e.code() != settle::errc::unavailable) {
                    throw;
                }
            }
            std::this_thread::sleep_for(50ms);
        }
        FAIL("the outbox was not drained in time");
    }

    // After a restart: the first transaction finds the old connection dead
    // (errc::unavailable), the next one reconnects.
    void wait_for_server() {
        for (int attempt = 0; attempt < 100; ++attempt) {
            try {
                (void)rows("SELECT 1");
                return;
            } catch (const settle::error& e) {
                if (e.code() != settle::errc::unavailable) {
                    throw;
                }
            }
            std::this_thread::sleep_for(100ms);
        }
        FAIL(SETTLE_FAULTS_SERVER " did not come back");
    }

    std::vector<std::string> rows(const std::string& sql) {
        backend::transaction tx(conn);
        auto out = query(tx.native(), sql);
        tx.commit();
        return out;
    }
    std::size_t number(const std::string& sql) { return std::stoul(rows(sql).at(0)); }

    // The end state every scenario must reach.
    void check_everything_applied_once() {
        const settle::outbox_statistics stats = statistics();
        CHECK(stats.backlog == 0);
        CHECK(stats.dead == 0);
        CHECK(rows("SELECT message_id FROM " + table +
                   "_effects GROUP BY message_id HAVING count(*) > 1")
                  .empty());
        CHECK(number("SELECT count(*) FROM " + table + "_effects") == committed.size());
        CHECK(number("SELECT count(DISTINCT message_id) FROM " + table + "_effects") ==
              committed.size());
        backend::transaction tx(conn);
        for (const std::string& id : committed) {
            const auto record = store.find(tx, settle::uuid::parse(id).value());
            REQUIRE(record.has_value());
            CHECK(record->status == settle::outbox_status::delivered);
        }
        for (const std::string& id : rolled_back) {
            CHECK_FALSE(store.find(tx, settle::uuid::parse(id).value()).has_value());
            CHECK(query(tx.native(), "SELECT 1 FROM " + table + "_orders WHERE id = $1", {id})
                      .empty());
            CHECK(query(tx.native(), "SELECT 1 FROM " + table + "_effects WHERE message_id = $1",
                        {id})
                      .empty());
        }
        tx.commit();
    }

    void report(const char* what, std::size_t extra_a, const char* extra_name) {
        const std::size_t receipts = number("SELECT count(*) FROM " + table + "_receipts");
        std::printf(
            "%s: %zu committed, %zu rolled back, %zu deliveries, %zu duplicates absorbed "
            "by the inbox, %zu applied, %zu lost, %zu %s\n",
            what, committed.size(), rolled_back.size(), receipts, receipts - committed.size(),
            number("SELECT count(*) FROM " + table + "_effects"),
            committed.size() -
                number("SELECT count(DISTINCT message_id) FROM " + table + "_effects"),
            extra_a, extra_name);
    }
};

}  // namespace

TEST_CASE("relays killed at random moments lose nothing and apply nothing twice", "[faults]") {
    scenario s("faults_kill");
    process consumer = s.consumer();
    std::uniform_int_distribution<int> alive_ms(5, 120);
    constexpr int rounds = 30;
    for (int round = 0; round < rounds; ++round) {
        for (std::uint32_t n = 0; n < 40; ++n) {
            s.place_order("", n, true);
        }
        s.place_order("", 0, false);
        process relay = s.relay("relay-" + std::to_string(round), 300, 16);
        std::this_thread::sleep_for(std::chrono::milliseconds(alive_ms(s.random)));
        INFO(relay.log());
        REQUIRE(relay.alive());
        relay.kill();
    }
    process last = s.relay("relay-last", 300, 16);
    s.wait_until_drained(120s);
    CHECK(last.alive());
    CHECK(consumer.alive());
    last.kill();
    consumer.kill();
    s.check_everything_applied_once();
    s.report("relay killed", rounds, "kills");
}

TEST_CASE("relays ride out a server restart and lose nothing", "[faults]") {
    scenario s("faults_restart");
    process consumer = s.consumer();
    for (std::uint32_t n = 0; n < 600; ++n) {
        s.place_order("", n, true);
    }
    process first = s.relay("relay-a", 500, 8);
    process second = s.relay("relay-b", 500, 8);
    std::this_thread::sleep_for(200ms);
    const std::string restart = "'" + env(SETTLE_FAULTS_ENV "_SCRIPT") + "' restart '" +
                                env(SETTLE_FAULTS_ENV "_DIR") + "'";
    REQUIRE(std::system(restart.c_str()) == 0);
    s.wait_for_server();
    for (std::uint32_t n = 600; n < 800; ++n) {
        s.place_order("", n, true);  // the driver's own connection reconnects at its next begin
    }
    s.wait_until_drained(120s);
    INFO(first.log() + second.log());
    CHECK(first.alive());
    CHECK(second.alive());
    CHECK(consumer.alive());
    first.kill();
    second.kill();
    consumer.kill();
    const std::size_t lost_rounds =
        count_lines(first.log(), "unavailable: ") + count_lines(second.log(), "unavailable: ");
    CHECK(lost_rounds >= 1);
    s.check_everything_applied_once();
    s.report("server restarted", lost_rounds, "relay rounds lost to the restart");
}

TEST_CASE("two relays share an outbox: no record published twice, per-key order kept", "[faults]") {
    scenario s("faults_share");
    process consumer = s.consumer();
    constexpr std::uint32_t keys = 8;
    constexpr std::uint32_t per_key = 50;
    for (std::uint32_t n = 0; n < per_key; ++n) {
        for (std::uint32_t k = 0; k < keys; ++k) {
            s.place_order("order-" + std::to_string(k), n, true);
        }
    }
    process first = s.relay("relay-a", 30000, 8);
    process second = s.relay("relay-b", 30000, 8);
    s.wait_until_drained(120s);
    INFO(first.log() + second.log());
    CHECK(first.alive());
    CHECK(second.alive());
    CHECK(consumer.alive());
    first.kill();
    second.kill();
    consumer.kill();
    s.check_everything_applied_once();
    CHECK(s.number("SELECT count(*) FROM " + s.table + "_receipts") == s.committed.size());
    std::size_t out_of_order = 0;
    for (std::uint32_t k = 0; k < keys; ++k) {
        const auto numbers =
            s.rows("SELECT number FROM " + s.table + "_effects WHERE ordering_key = 'order-" +
                   std::to_string(k) + "' ORDER BY applied");
        REQUIRE(numbers.size() == per_key);
        for (std::size_t i = 0; i < numbers.size(); ++i) {
            out_of_order += numbers[i] == std::to_string(i) ? 0U : 1U;
        }
    }
    CHECK(out_of_order == 0);
    s.report("two relays, ordered", out_of_order, "out of order");
}

#ifndef SETTLE_FAULTS_MYSQL
// PostgreSQL only: the proxy speaks PostgreSQL's protocol.
TEST_CASE("lost acknowledgements and cut connections lose nothing and apply nothing twice",
          "[faults]") {
    // Relays and the consumer reach PostgreSQL through the fault proxy
    // (tests/faults/proxy.cpp), which cuts connections right after a COMMIT
    // ran (neither side learns its outcome), just before one, and at random.
    scenario s("faults_proxy");
    const std::string seed = std::to_string(std::random_device{}());
    process proxy(SETTLE_FAULT_PROXY, {env("SETTLE_POSTGRES_DIR") + "/.s.PGSQL.5432", seed},
                  s.log("proxy"));
    std::string port;
    for (int attempt = 0; attempt < 100 && port.empty(); ++attempt) {
        const std::string said = proxy.log();
        if (said.rfind("port ", 0) == 0 && said.find('\n') != std::string::npos) {
            port = said.substr(5, said.find('\n') - 5);
        } else {
            std::this_thread::sleep_for(20ms);
        }
    }
    REQUIRE_FALSE(port.empty());
    s.worker_environment = {"SETTLE_POSTGRES=host=127.0.0.1 port=" + port +
                            " user=settle dbname=postgres sslmode=disable gssencmode=disable"};
    INFO("proxy seed " << seed);
    process consumer = s.consumer();
    process first = s.relay("relay-a", 300, 8);
    process second = s.relay("relay-b", 300, 8);
    constexpr int rounds = 10;
    for (int round = 0; round < rounds; ++round) {
        for (std::uint32_t n = 0; n < 20; ++n) {
            s.place_order("", n, true);
        }
        s.place_order("", 0, false);
        std::this_thread::sleep_for(150ms);
        const std::string faults = proxy.log();
        const std::size_t before_commit = count_lines(faults, "cut-commit");
        std::printf(
            "round %d: %zu lost acknowledgements, %zu cut before a commit, %zu other cuts\n", round,
            count_lines(faults, "lost-ack"), before_commit,
            count_lines(faults, "cut") - before_commit);
    }
    s.wait_until_drained(120s);
    INFO(first.log() + second.log() + consumer.log());
    CHECK(first.alive());
    CHECK(second.alive());
    CHECK(consumer.alive());
    first.kill();
    second.kill();
    consumer.kill();
    const std::string faults = proxy.log();
    proxy.kill();
    const std::size_t lost_acks = count_lines(faults, "lost-ack");
    CHECK(lost_acks >= 1);
    s.check_everything_applied_once();
    s.report("lost acknowledgements", lost_acks, "commits whose outcome the client never learned");
}
#endif
