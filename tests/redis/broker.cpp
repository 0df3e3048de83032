// The whole broker path across processes: orders and their outbox records
// committed in PostgreSQL, a relay process publishing them to a Redis stream,
// two consumer processes applying them through a PostgreSQL inbox
// (tests/redis/broker_worker.cpp). Relay and consumers are killed with
// SIGKILL at random moments and started again, and the redis-server is
// restarted once under them. What must hold at the end: every committed
// record applied exactly once, and the stream trimmed without losing one.
#include <settle/outbox.hpp>
#include <settle/stores/postgres.hpp>
#include <settle/stores/redis.hpp>
#include <settle/uuid.hpp>

#include "redis/redis_test.hpp"
#include "settle_test.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace postgres = settle::postgres;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) {
        FAIL(std::string(name) +
             " is not set: run the broker test through CTest, which starts "
             "the PostgreSQL and Redis servers");
    }
    return value;
}

// A child process running the broker worker, its output in a log file.
class process {
public:
    process(std::vector<std::string> args, std::string log) : log_(std::move(log)) {
        std::string worker = SETTLE_REDIS_BROKER_WORKER;
        std::vector<char*> argv{worker.data()};
        for (std::string& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                         0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        const int failed = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        REQUIRE(failed == 0);
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    ~process() { kill(); }

    // SIGKILL: no chance to acknowledge, commit or release anything.
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

std::vector<std::string> query(PGconn* conn, const std::string& sql,
                               const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const std::string& p : params) {
        values.push_back(p.c_str());
    }
    PGresult* result = PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                    values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(result);
    std::vector<std::string> rows;
    if (status == PGRES_TUPLES_OK) {
        for (int row = 0; row < PQntuples(result); ++row) {
            rows.emplace_back(PQgetvalue(result, row, 0));
        }
    }
    const std::string message = PQresultErrorMessage(result);
    PQclear(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw std::runtime_error(sql + ": " + message);
    }
    return rows;
}

}  // namespace

TEST_CASE(
    "redis broker: relay and consumers killed at random, the server restarted once: every "
    "record applied exactly once",
    "[redis][outbox]") {
    const std::string table = "settle_broker_" + std::to_string(::getpid());
    const std::string stream = "settle:test:broker:" + std::to_string(::getpid());
    postgres::connection conn(env("SETTLE_POSTGRES"));
    postgres::outbox_table store(conn, table);
    {
        postgres::transaction tx(conn);
        store.create_tables(tx);
        postgres::inbox_table(conn, table + "_inbox").create_tables(tx);
        (void)query(tx.native(), "CREATE TABLE " + table +
                                     "_effects (message_id TEXT NOT NULL, consumer TEXT NOT NULL)");
        tx.commit();
    }
    std::chrono::system_clock clock;
    std::mt19937_64 random{std::random_device{}()};
    settle::uuid_v7_generator<std::chrono::system_clock, std::mt19937_64> next_id{clock, random};
    settle::outbox<postgres::outbox_table, std::chrono::system_clock> outbox{store, clock};
    std::vector<std::string> committed;
    const auto append = [&](int count) {
        postgres::transaction tx(conn);
        for (int i = 0; i < count; ++i) {
            const settle::uuid id = next_id();
            REQUIRE(outbox.append(tx, id, "orders.placed",
                                  static_cast<std::uint32_t>(committed.size())));
            committed.push_back(id.to_string());
        }
        tx.commit();
    };
    const auto log = [&](const std::string& who) { return "/tmp/" + table + "-" + who + ".log"; };
    const auto relay = [&] {
        return std::make_unique<process>(std::vector<std::string>{"relay", table, stream, "relay"},
                                         log("relay"));
    };
    const auto consumer = [&](const std::string& name) {
        return std::make_unique<process>(std::vector<std::string>{"consume", table, stream, name},
                                         log(name));
    };

    std::vector<std::unique_ptr<process>> workers;
    workers.push_back(relay());
    workers.push_back(consumer("consumer-a"));
    workers.push_back(consumer("consumer-b"));
    std::uniform_int_distribution<std::size_t> which(0, workers.size() - 1);
    std::uniform_int_distribution<int> alive_ms(20, 150);
    constexpr int rounds = 24;
    for (int round = 0; round < rounds; ++round) {
        append(10);
        std::this_thread::sleep_for(std::chrono::milliseconds(alive_ms(random)));
        const std::size_t victim = which(random);
        workers[victim]->kill();
        if (round == rounds / 2) {
            REQUIRE(std::system(("\"" + env("SETTLE_REDIS_SCRIPT") + "\" restart \"" +
                                 env("SETTLE_REDIS_DIR") + "\"")
                                    .c_str()) == 0);
        }
        workers[victim] =
            victim == 0 ? relay() : consumer(victim == 1 ? "consumer-a" : "consumer-b");
    }

    // Let them finish: every record applied, with no kills from here on.
    const std::string applied = "SELECT count(DISTINCT message_id) FROM " + table + "_effects";
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
        postgres::transaction tx(conn);
        const auto n = std::stoul(query(tx.native(), applied).at(0));
        tx.commit();
        if (n == committed.size()) {
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(500ms);  // time for a second, wrong, application to show
    for (auto& w : workers) {
        w->kill();
    }

    postgres::transaction tx(conn);
    const auto total =
        std::stoul(query(tx.native(), "SELECT count(*) FROM " + table + "_effects").at(0));
    const auto distinct = std::stoul(query(tx.native(), applied).at(0));
    const auto twice = query(tx.native(), "SELECT message_id FROM " + table +
                                              "_effects GROUP BY message_id HAVING count(*) > 1");
    INFO("relay log:\n"
         << workers[0]->log() << "consumer logs:\n"
         << workers[1]->log() << workers[2]->log());
    CHECK(distinct == committed.size());
    CHECK(total == committed.size());
    CHECK(twice.empty());
    for (const std::string& id : committed) {
        if (query(tx.native(), "SELECT 1 FROM " + table + "_effects WHERE message_id = $1", {id})
                .empty()) {
            FAIL_CHECK("never applied: " << id);
        }
    }
    for (const char* suffix : {"", "_inbox", "_effects"}) {
        (void)query(tx.native(), "DROP TABLE IF EXISTS " + table + suffix);
    }
    tx.commit();
    redis_test::raw server;
    const long long left = server.integer("XLEN", stream);
    std::printf("redis broker: %zu records, %lu applied, %lld stream entries left after trims\n",
                committed.size(), distinct, left);
    CHECK(left <= static_cast<long long>(committed.size()));
    (void)server.integer("DEL", stream);
    for (const char* who : {"relay", "consumer-a", "consumer-b"}) {
        ::unlink(log(who).c_str());
    }
}
