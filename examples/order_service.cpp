// A complete small service on SQLite, the program docs/getting-started.md
// builds step by step:
//
// - POST /orders is idempotent: a repeated request gets the first answer, the
//   same key for another request is refused;
// - the order's status is a state machine, persisted by compare-and-set, so a
//   payment callback that arrives twice captures the payment once;
// - every change writes its event to an outbox in the same transaction;
// - a relay publishes the outbox, and the shipping service applies each
//   message once through its inbox, however often it arrives.
// [setup]
#include <settle/settle.hpp>
#include <settle/stores/sqlite.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
namespace sqlite = settle::sqlite;

using clock_type = std::chrono::system_clock;
using id_generator = settle::uuid_v7_generator<clock_type, std::mt19937_64>;
// [setup]

// [order-machine]
enum class order_state { awaiting_payment, paid, shipped, cancelled };
enum class order_event { pay, ship, cancel };

constexpr auto order_machine = settle::make_state_machine<order_state, order_event>(
    {order_state::awaiting_payment, order_state::paid, order_state::shipped,
     order_state::cancelled},
    {order_state::shipped, order_state::cancelled},  // final states
    {{order_state::awaiting_payment, order_event::pay, order_state::paid},
     {order_state::awaiting_payment, order_event::cancel, order_state::cancelled},
     {order_state::paid, order_event::ship, order_state::shipped}});
// [order-machine]

// [order-service]
struct response {  // what the HTTP layer sends back
    int status;
    std::string body;
};

class order_service {
public:
    order_service(sqlite::connection& db, clock_type& clock, id_generator& ids)
        : ids_(ids),
          requests_(db, "requests"),
          orders_(db, "orders"),
          outbox_rows_(db, "outbox"),
          guard_(requests_, clock, {.lease = 30s, .retention = 24h}),
          outbox_(outbox_rows_, clock) {}

    void create_tables() {
        settle::in_transaction(orders_, [&](sqlite::transaction& tx) {
            requests_.create_tables(tx);
            orders_.create_tables(tx);
            outbox_rows_.create_tables(tx);
        });
    }
    // [order-service]

    // [create-order]
    // POST /orders, with an Idempotency-Key header.
    response create_order(std::string_view idempotency_key, const std::string& body) {
        const auto key = settle::idempotency_key::from_header(idempotency_key);
        if (!key) {
            return {settle::idempotency_http::bad_key, key.error().message()};
        }
        const settle::idempotency_scope scope{"shop", "orders.create"};
        const auto r = guard_.run(scope, *key, settle::sha256::hash(body), [&] {
            const std::string id = ids_().to_string();
            settle::in_transaction(orders_, [&](sqlite::transaction& tx) {
                (void)orders_.insert(tx, id, order_machine.initial());
                (void)outbox_.append(tx, ids_(), "orders.placed", id, /*ordering key*/ id);
            });  // the order and its event: both, or neither
            return id;
        });
        switch (r.outcome()) {
        case settle::idempotency_outcome::executed:
        case settle::idempotency_outcome::replayed:
        case settle::idempotency_outcome::stale: return {201, *r.response()};
        case settle::idempotency_outcome::in_progress:
            return {settle::idempotency_http::conflict, "a request with this key is running"};
        case settle::idempotency_outcome::mismatch:
            return {settle::idempotency_http::mismatch, "this key was used for another request"};
        }
        return {500, "unknown outcome"};
    }
    // [create-order]

    // [payment-received]
    // The payment provider's callback; it may arrive more than once.
    settle::stored_transition_outcome payment_received(const std::string& order_id) {
        return settle::in_transaction(orders_, [&](sqlite::transaction& tx) {
            const auto t =
                settle::transition(orders_, tx, order_id, order_machine, order_event::pay);
            if (t) {  // applied: this call moved the order, and owns the side effect
                (void)outbox_.append(tx, ids_(), "orders.paid", order_id, order_id);
            }
            return t.outcome();  // duplicate: acknowledge; rejected, missing: refuse
        });
    }
    // [payment-received]

    // [order-service-members]
private:
    id_generator& ids_;
    sqlite::idempotency_table requests_;
    sqlite::versioned_table<std::string, order_state> orders_;
    sqlite::outbox_table outbox_rows_;
    settle::idempotency_guard<sqlite::idempotency_table, clock_type> guard_;
    settle::outbox<sqlite::outbox_table, clock_type> outbox_;
};
// [order-service-members]

// [shipping-service]
class shipping_service {
public:
    shipping_service(sqlite::connection& db, clock_type& clock)
        : inbox_(db, "inbox"),
          shipments_(db, "shipments"),
          consumer_(inbox_, clock, {.consumer = "shipping"}) {}

    void create_tables() {
        settle::in_transaction(inbox_, [&](sqlite::transaction& tx) {
            inbox_.create_tables(tx);
            shipments_.create_tables(tx);
        });
    }

    // Applies "orders.paid" once: the shipment and the inbox mark commit together.
    settle::inbox_result on_message(const settle::outbox_record& message) {
        const auto order_id = settle::decode<std::string>(message.payload);
        return consumer_.consume(message.id, [&](sqlite::transaction& tx) {
            (void)shipments_.insert(tx, order_id, "label for " + order_id);
        });
    }

    int shipments(const std::string& order_id) {
        return settle::in_transaction(shipments_, [&](sqlite::transaction& tx) {
            return shipments_.load(tx, order_id) ? 1 : 0;
        });
    }

private:
    sqlite::inbox_table inbox_;
    sqlite::versioned_table<std::string, std::string> shipments_;
    settle::idempotent_consumer<sqlite::inbox_table, clock_type> consumer_;
};
// [shipping-service]

// [broker]
// The message broker, in process: it hands "orders.paid" to shipping, and,
// being at-least-once, sometimes twice.
struct broker {
    shipping_service& shipping;
    int duplicates = 0;

    settle::publish_result publish(const settle::outbox_record& message) {
        if (message.topic == "orders.paid") {
            for (int copy = 0; copy < 2; ++copy) {
                duplicates += shipping.on_message(message).is_duplicate();
            }
        }
        return settle::publish_result::delivered();
    }
};
// [broker]

int main() {
    std::mt19937_64 random{std::random_device{}()};
    const auto dir = std::filesystem::temp_directory_path() /
                     ("settle-order-service-" + std::to_string(random() % 1000000));
    std::filesystem::create_directories(dir);
    clock_type clock;
    id_generator ids(clock, random);
    bool ok = true;
    const auto expect = [&](bool holds, const char* what) {
        std::printf("%s %s\n", holds ? "  ok  " : "  FAIL", what);
        ok = ok && holds;
    };
    {
        // [wire-up]
        sqlite::connection orders_db((dir / "orders.db").string());
        sqlite::connection shipping_db((dir / "shipping.db").string());
        order_service orders(orders_db, clock, ids);
        shipping_service shipping(shipping_db, clock);
        orders.create_tables();
        shipping.create_tables();
        // [wire-up]

        // [use]
        const std::string body = R"({"sku":"book","quantity":1})";
        const response first = orders.create_order(R"("order-key-1")", body);
        const response again = orders.create_order(R"("order-key-1")", body);  // answer lost
        const response other = orders.create_order(R"("order-key-1")", R"({"sku":"pen"})");
        std::printf("POST /orders: %d %s; again: %d %s; other body: %d\n", first.status,
                    first.body.c_str(), again.status, again.body.c_str(), other.status);

        const auto paid = orders.payment_received(first.body);
        const auto paid_again = orders.payment_received(first.body);  // the provider retried
        std::printf("payment callback: %s, again: %s\n", settle::to_string(paid).data(),
                    settle::to_string(paid_again).data());
        // [use]
        expect(first.status == 201 && again.body == first.body,
               "a repeated request gets the same order");
        expect(other.status == 422, "the same key for another request is refused");
        expect(paid == settle::stored_transition_outcome::applied &&
                   paid_again == settle::stored_transition_outcome::duplicate,
               "a repeated callback is a duplicate");

        // [relay]
        // The relay runs on a connection of its own; a service runs it in a
        // thread: std::jthread t([&](std::stop_token stop) { relay.run(stop); });
        sqlite::connection relay_db((dir / "orders.db").string());
        sqlite::outbox_table relay_rows(relay_db, "outbox");
        broker to_shipping{shipping};
        settle::outbox_relay relay(relay_rows, to_shipping,
                                   settle::persisted_retry{settle::message_queue_ladder, 19}, clock,
                                   {.owner = "order-service-relay"});
        std::size_t delivered = 0;
        for (auto r = relay.run_once(); !r.idle(); r = relay.run_once()) {
            delivered += r.delivered;  // one event of an order per round: they go out in order
        }
        std::printf("relay: %zu delivered; shipping absorbed %d duplicate(s)\n", delivered,
                    to_shipping.duplicates);
        // [relay]
        expect(delivered == 2, "both events were published");
        expect(shipping.shipments(first.body) == 1 && to_shipping.duplicates == 1,
               "the order shipped once");
    }
    std::filesystem::remove_all(dir);
    return ok ? 0 : 1;
}
