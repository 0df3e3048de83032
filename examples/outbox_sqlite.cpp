// An outbox relay over SQLite. The order row and its "orders.placed" message
// are written in one transaction, so the message exists exactly when the
// order does; a rolled-back order leaves no message. A relay, on a connection
// of its own, publishes the messages afterwards and retries failures on a
// ladder; here the broker refuses the first attempt.
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/stores/sqlite.hpp>
#include <settle/uuid.hpp>

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

using namespace std::chrono_literals;
namespace sqlite = settle::sqlite;

// A broker that is down for its first call.
struct flaky_broker {
    int calls = 0;
    settle::publish_result publish(const settle::outbox_record& record) {
        if (++calls == 1) {
            return settle::publish_result::retryable("broker: connection refused");
        }
        std::printf("published %s: %s\n", record.topic.c_str(),
                    settle::decode<std::string>(record.payload).c_str());
        return settle::publish_result::delivered();
    }
};

int main() {
    std::mt19937_64 random{std::random_device{}()};
    const auto path = std::filesystem::temp_directory_path() /
                      ("settle-outbox-" + std::to_string(random() % 1000000) + ".db");
    std::chrono::system_clock clock;
    settle::uuid_v7_generator ids(clock, random);

    sqlite::connection db(path.string());
    sqlite::outbox_table outbox_rows(db, "outbox");
    settle::outbox outbox(outbox_rows, clock);
    {
        sqlite::transaction tx(db);
        outbox_rows.create_tables(tx);
        sqlite3_exec(tx.native(), "CREATE TABLE orders (id TEXT PRIMARY KEY)", nullptr, nullptr,
                     nullptr);
        tx.commit();
    }

    // Place two orders; the second transaction rolls back, with its message.
    for (const std::string order : {"order-1", "order-2"}) {
        sqlite::transaction tx(db);
        const std::string insert = "INSERT INTO orders VALUES ('" + order + "')";
        sqlite3_exec(tx.native(), insert.c_str(), nullptr, nullptr, nullptr);
        (void)outbox.append(tx, ids(), "orders.placed", order, /*ordering key*/ order);
        if (order == "order-1") {
            tx.commit();
        }  // else: destroyed open, rolled back
    }

    // The relay: its own connection, a ladder of waits, a lease on each batch.
    sqlite::connection relay_db(path.string());
    sqlite::outbox_table relay_rows(relay_db, "outbox");
    flaky_broker broker;
    constexpr settle::ladder waits{10ms, 50ms, 250ms};
    settle::outbox_relay relay(relay_rows, broker, settle::persisted_retry{waits, 5}, clock,
                               {.owner = "relay-1", .lease = 30s});
    std::size_t delivered = 0;
    for (int round = 0; round < 50 && delivered == 0; ++round) {
        const auto r = relay.run_once();
        std::printf("round %d: claimed %zu, delivered %zu, rescheduled %zu\n", round, r.claimed,
                    r.delivered, r.rescheduled);
        delivered += r.delivered;
        std::this_thread::sleep_for(20ms);  // a service calls relay.run(stop) in a thread instead
    }
    const auto stats = settle::in_transaction(
        outbox_rows, [&](sqlite::transaction& tx) { return outbox.statistics(tx); });
    std::printf("delivered %zu, backlog %zu, broker called %d times\n", delivered, stats.backlog,
                broker.calls);
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(path.string() + suffix);
    }
    return delivered == 1 && stats.backlog == 0 && broker.calls == 2 ? 0 : 1;
}
