// The processes the broker test kills: an outbox relay that publishes a
// PostgreSQL outbox to a Redis stream, and a stream consumer that applies
// each message through a PostgreSQL inbox. Both ride out lost connections
// (a restarted redis-server) and run until killed.
//
//   redis_broker_worker relay <table> <stream> <owner>
//   redis_broker_worker consume <table> <stream> <name>
//       applies each message as one row in <table>_effects, in the inbox's
//       transaction; trims the stream every 20 rounds.
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/stores/postgres.hpp>
#include <settle/stores/redis.hpp>

#include "process_main.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace postgres = settle::postgres;
namespace rd = settle::redis;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) {
        std::fprintf(stderr, "redis_broker_worker: %s is not set\n", name);
        std::exit(2);
    }
    return value;
}

struct stderr_observer {
    void on_transient_failure(const settle::error& e) {
        std::fprintf(stderr, "unavailable: %s\n", e.what());
        std::fflush(stderr);
    }
};

int relay(const std::string& table, const std::string& stream, const std::string& owner) {
    postgres::connection pg(env("SETTLE_POSTGRES"));
    postgres::outbox_table store(pg, table);
    rd::connection redis(rd::connection::unix_socket(env("SETTLE_REDIS")));
    rd::stream_publisher publisher(redis, stream);
    std::chrono::system_clock clock;
    settle::outbox_relay relay(
        store, publisher, settle::persisted_retry{settle::ladder{10ms, 20ms, 50ms}, 1000}, clock,
        {.owner = owner, .batch_size = 8, .lease = 500ms, .idle_min = 5ms, .idle_max = 50ms},
        stderr_observer{});
    relay.run(std::stop_token{});
    return 0;
}

void exec(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const std::string& p : params) {
        values.push_back(p.c_str());
    }
    PGresult* result = PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                    values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(result);
    const std::string message = PQresultErrorMessage(result);
    PQclear(result);
    if (status != PGRES_COMMAND_OK) {
        throw settle::error(settle::errc::backend_failure, message);
    }
}

int consume(const std::string& table, const std::string& stream, const std::string& name) {
    postgres::connection pg(env("SETTLE_POSTGRES"));
    postgres::inbox_table inbox(pg, table + "_inbox");
    std::chrono::system_clock clock;
    settle::idempotent_consumer applied(inbox, clock, {.consumer = "broker"});
    rd::connection redis(rd::connection::unix_socket(env("SETTLE_REDIS")));
    rd::stream_consumer consumer(
        redis, stream, applied,
        {.group = "broker", .consumer = name, .batch_size = 8, .reclaim_idle = 300ms});
    bool grouped = false;
    for (int round = 0;; ++round) {
        try {
            if (!grouped) {
                consumer.create_group();
                grouped = true;
            }
            if (round % 20 == 0) {
                (void)consumer.trim();
            }
            const std::size_t n =
                consumer.poll([&](postgres::transaction& tx, const rd::stream_message& m) {
                    exec(tx.native(),
                         "INSERT INTO " + table + "_effects (message_id, consumer) VALUES ($1, $2)",
                         {m.record_id, name});
                });
            if (n == 0) {
                std::this_thread::sleep_for(5ms);
            }
        } catch (const settle::error& e) {
            std::fprintf(stderr, "retry: %s\n", e.what());
            std::fflush(stderr);
            std::this_thread::sleep_for(20ms);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    return process_main::run("redis_broker_worker", argc, argv,
                             {{"relay", "<table> <stream> <owner>",
                               [](const auto& a) { return relay(a[0], a[1], a[2]); }},
                              {"consume", "<table> <stream> <name>",
                               [](const auto& a) { return consume(a[0], a[1], a[2]); }}});
}
