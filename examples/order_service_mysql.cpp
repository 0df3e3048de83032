// An order service on MySQL or MariaDB: POST /orders runs once per
// Idempotency-Key, and the order row and its "orders.placed" event are written
// in one transaction, so the event exists exactly when the order does. A
// request sent again, even to another process, is answered from the stored
// response. A relay, on a connection of its own, then publishes the event.
//
// Run it against a server: the settings are read from SETTLE_MYSQL, in the
// form "socket=/path/mysqld.sock user=settle database=settle" (also host=,
// port=, password=). scripts/mariadb.sh starts a throwaway MariaDB and prints
// them: SETTLE_MYSQL="$(scripts/mariadb.sh conninfo /tmp/db)".
#include <settle/settle.hpp>
#include <settle/stores/mysql.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
namespace mysql = settle::mysql;

// "name=value name=value ..." into connection options.
mysql::connection_options options_from(const std::string& text) {
    mysql::connection_options o;
    std::istringstream words(text);
    for (std::string word; words >> word;) {
        const auto eq = word.find('=');
        const std::string name = word.substr(0, eq);
        const std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
        if (name == "socket") {
            o.unix_socket = value;
        } else if (name == "host") {
            o.host = value;
        } else if (name == "port") {
            o.port = static_cast<unsigned>(std::stoul(value));
        } else if (name == "user") {
            o.user = value;
        } else if (name == "password") {
            o.password = value;
        } else if (name == "database") {
            o.database = value;
        }
    }
    return o;
}

// Runs one of your own statements: on tx.native() inside a transaction.
void execute(MYSQL* handle, const std::string& sql) {
    if (mysql_real_query(handle, sql.data(), sql.size()) != 0) {
        throw std::runtime_error(mysql_error(handle));
    }
}

// The broker: here a callback that prints what it is handed.
struct printing_broker {
    int published = 0;
    settle::publish_result publish(const settle::outbox_record& record) {
        ++published;
        std::printf("published %s: %s\n", record.topic.c_str(),
                    settle::decode<std::string>(record.payload).c_str());
        return settle::publish_result::delivered();
    }
};

using clock_type = std::chrono::system_clock;
using id_generator = settle::uuid_v7_generator<clock_type, std::mt19937_64>;

// One process of the order service: its own connection, stores and guard.
class order_service {
public:
    order_service(const mysql::connection_options& options, clock_type& clock, id_generator& ids)
        : ids_(ids),
          db_(options),
          requests_(db_, "shop_requests"),
          outbox_rows_(db_, "shop_outbox"),
          guard_(requests_, clock, {.lease = 30s, .retention = 24h}),
          outbox_(outbox_rows_, clock) {}

    // settle's tables from its own schema, yours beside them. MySQL commits
    // around every CREATE TABLE: create tables before the transactions that
    // use them, and run your own DDL outside a settle transaction.
    void create_tables() {
        settle::in_transaction(requests_, [&](mysql::transaction& tx) {
            requests_.create_tables(tx);
            outbox_rows_.create_tables(tx);
        });
        execute(db_.native(),
                "CREATE TABLE IF NOT EXISTS shop_orders (id CHAR(36) PRIMARY KEY, "
                "status VARCHAR(16) NOT NULL) ENGINE=InnoDB");
    }

    // POST /orders: the answer, and whether it was the stored one.
    settle::idempotency_result<std::string> create_order(const settle::idempotency_key& key,
                                                         const std::string& body) {
        const settle::idempotency_scope scope{"shop", "orders.create"};
        return guard_.run(scope, key, settle::sha256::hash(body), [&] {
            const std::string id = ids_().to_string();
            settle::in_transaction(requests_, [&](mysql::transaction& tx) {
                execute(tx.native(), "INSERT INTO shop_orders VALUES ('" + id + "', 'placed')");
                (void)outbox_.append(tx, ids_(), "orders.placed", id, /*ordering key*/ id);
            });  // the order and its event: both, or neither
            return id;
        });
    }

private:
    id_generator& ids_;
    mysql::connection db_;
    mysql::idempotency_table requests_;
    mysql::outbox_table outbox_rows_;
    settle::idempotency_guard<mysql::idempotency_table, clock_type> guard_;
    settle::outbox<mysql::outbox_table, clock_type> outbox_;
};

// Two processes of the service answer one client, then a relay publishes.
bool run(const mysql::connection_options& options) {
    clock_type clock;
    std::mt19937_64 random{std::random_device{}()};
    id_generator ids(clock, random);

    order_service first_process(options, clock, ids);
    order_service second_process(options, clock, ids);
    first_process.create_tables();

    // The client makes one key per order and sends it with every attempt.
    const settle::idempotency_key key(ids());
    const std::string body = R"({"sku":"book","quantity":1})";
    const auto placed = first_process.create_order(key, body);
    const auto again = second_process.create_order(key, body);  // the answer was lost
    const auto other = second_process.create_order(key, R"({"sku":"pen"})");
    std::printf("POST /orders: %s %s; again: %s %s; other body: %s\n",
                settle::to_string(placed.outcome()).data(), placed.response()->c_str(),
                settle::to_string(again.outcome()).data(), again.response()->c_str(),
                settle::to_string(other.outcome()).data());

    // The relay: a connection of its own; a service runs it in a thread:
    // std::jthread t([&](std::stop_token stop) { relay.run(stop); });
    mysql::connection relay_db(options);
    mysql::outbox_table relay_rows(relay_db, "shop_outbox");
    printing_broker broker;
    settle::outbox_relay relay(relay_rows, broker,
                               settle::persisted_retry{settle::message_queue_ladder, 19}, clock,
                               {.owner = "order-service-relay"});
    std::size_t delivered = 0;
    for (auto r = relay.run_once(); !r.idle(); r = relay.run_once()) {
        delivered += r.delivered;
    }
    std::printf("relay: %zu delivered\n", delivered);

    return placed.is_executed() && again.is_replayed() && *again.response() == *placed.response() &&
           other.is_mismatch() && delivered >= 1;
}

int main() {
    const char* settings = std::getenv("SETTLE_MYSQL");
    if (settings == nullptr) {
        std::fprintf(stderr,
                     "set SETTLE_MYSQL, for example to "
                     "\"socket=/run/mysqld/mysqld.sock user=shop database=shop\"\n");
        return 2;
    }
    mysql_library_init(0, nullptr, nullptr);  // once, before any thread connects
    const bool ok = run(options_from(settings));
    mysql_library_end();  // after the last connection is closed
    return ok ? 0 : 1;
}
