// The patterns of docs/patterns.md, composed from settle's blocks, in one
// program: an order is placed invisibly (pending), stock and payment are
// handled by messages, a failure is undone by compensating messages, and an
// order whose payment never answers is cancelled on a schedule. Everything
// runs in memory, on a manual clock, so the 30-minute wait takes no time.
#include <settle/settle.hpp>
#include <settle/stores/memory.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
namespace memory = settle::memory;

enum class order_state { pending, confirmed, cancelled };  // pending: not shown to the customer
enum class order_event { confirm, cancel };

constexpr auto order_machine = settle::make_state_machine<order_state, order_event>(
    {order_state::pending, order_state::confirmed, order_state::cancelled},
    {order_state::confirmed, order_state::cancelled},
    {{order_state::pending, order_event::confirm, order_state::confirmed},
     {order_state::pending, order_event::cancel, order_state::cancelled}});

struct order_line {
    std::string sku;
    std::int64_t quantity;
    std::int64_t cents;
};

int main() {
    settle::manual_clock clock{std::chrono::sys_days{std::chrono::year{2026} / 12 / 4}};
    std::mt19937_64 random{7};
    settle::uuid_v7_generator ids(clock, random);

    memory::database db;
    memory::versioned_table<std::string, order_state> orders(db);
    memory::table<std::string, order_line> lines(db);
    memory::versioned_table<std::string, std::int64_t> stock(db);
    memory::outbox_table outbox_rows(db);
    memory::inbox_table inbox(db);
    settle::outbox outbox(outbox_rows, clock);
    settle::idempotent_consumer stock_service(inbox, clock, {.consumer = "stock"});
    settle::idempotent_consumer payment_service(inbox, clock, {.consumer = "payments"});
    settle::idempotent_consumer order_service(inbox, clock, {.consumer = "orders"});
    db.transact([&](memory::transaction& tx) { (void)stock.insert(tx, "lamp", 5); });
    const auto reply = [&](memory::transaction& tx, const char* topic, const std::string& order) {
        (void)outbox.append(tx, ids(), topic, order, order);
    };

    // [double-check]
    // First check, in a short read of its own before any work: cheap, to
    // refuse at once. It may be stale by the time the stock is taken.
    const auto in_stock = [&](const std::string& sku, std::int64_t quantity) {
        return db.transact([&](memory::transaction& tx) {
            const auto s = stock.load(tx, sku);
            return s && s->value >= quantity;
        });
    };
    // Second check, decisive: in the transaction that takes the stock, by
    // compare-and-set at the version read.
    const auto take_stock = [&](memory::transaction& tx, const order_line& line) {
        return settle::optimistic_update(stock, tx, line.sku,
                                         [&](std::int64_t have) -> std::optional<std::int64_t> {
                                             if (have < line.quantity)
                                                 return std::nullopt;
                                             return have - line.quantity;
                                         })
            .is_applied();
    };
    // [double-check]

    // [local-message-table]
    // The order, invisible until confirmed, and its messages: one transaction.
    const auto place_order = [&](const std::string& order, order_line line) {
        if (!in_stock(line.sku, line.quantity))
            return false;
        db.transact([&](memory::transaction& tx) {
            (void)orders.insert(tx, order, order_state::pending);
            lines.put(tx, order, std::move(line));
            (void)outbox.append(tx, ids(), "stock.reserve", order, order);
            (void)outbox.append(tx, ids(), "orders.expire", order);  // no key: not held up
        });
        return true;
    };
    // [local-message-table]

    // [state-machine-idempotency]
    // The order moves only by its machine: a repeated or late message is a
    // duplicate or rejected, and does nothing.
    const auto move = [&](memory::transaction& tx, const std::string& order, order_event e) {
        return settle::transition(orders, tx, order, order_machine, e).is_applied();
    };
    // [state-machine-idempotency]

    // [message-log]
    // Each consumer applies a message once: the inbox records its id in the
    // transaction of the effect (the "updates applied" table).
    const auto apply = [&](const settle::outbox_record& m, const std::string& order) {
        const order_line line =
            db.transact([&](memory::transaction& tx) { return *lines.find(tx, order); });
        auto& consumer = m.topic.starts_with("stock.")     ? stock_service
                         : m.topic.starts_with("payment.") ? payment_service
                                                           : order_service;
        (void)consumer.consume(m.id, [&](memory::transaction& tx) {
            if (m.topic == "stock.reserve") {
                reply(tx, take_stock(tx, line) ? "payment.charge" : "orders.no_stock", order);
            } else if (m.topic == "stock.release") {
                (void)settle::optimistic_update(
                    stock, tx, line.sku, [&](std::int64_t have) { return have + line.quantity; });
            } else if (m.topic == "payment.charge") {
                if (line.cents > 100000)
                    return;  // the provider never answers this one
                reply(tx, line.cents <= 5000 ? "orders.paid" : "orders.declined", order);
            } else if (m.topic == "orders.paid") {
                (void)move(tx, order, order_event::confirm);  // now the customer sees it
            } else if (m.topic == "orders.declined" || m.topic == "orders.no_stock") {
                // [compensation]
                if (move(tx, order, order_event::cancel) && m.topic == "orders.declined") {
                    reply(tx, "stock.release", order);  // undo the step that succeeded
                }
                // [compensation]
            }
        });
    };
    // [message-log]

    // [scheduled-compensation]
    // Cancel an order still unpaid after 30 minutes: the message comes back
    // until then (the relay reschedules it), and compensates when it is due.
    const auto expire = [&](const settle::outbox_record& m,
                            const std::string& order) -> settle::publish_result {
        const auto due = m.created_at + std::chrono::microseconds(30min);
        const auto now = settle::to_stored_time(clock.now());
        if (now < due)
            return settle::publish_result::retryable("not due", due - now);
        (void)order_service.consume(m.id, [&](memory::transaction& tx) {
            if (move(tx, order, order_event::cancel))
                reply(tx, "stock.release", order);
        });
        return settle::publish_result::delivered();
    };
    // [scheduled-compensation]

    memory::publisher broker([&](const settle::outbox_record& m) {
        const auto order = settle::decode<std::string>(m.payload);
        if (m.topic == "orders.expire")
            return expire(m, order);
        apply(m, order);
        return settle::publish_result::delivered();
    });
    settle::outbox_relay relay(outbox_rows, broker,
                               settle::persisted_retry{settle::message_queue_ladder, 19}, clock,
                               {.owner = "relay"});
    const auto drain = [&] {
        while (!relay.run_once().idle()) {
        }
    };

    const bool placed = place_order("order-1", {"lamp", 2, 2500}) &&  // paid: confirmed
                        place_order("order-2", {"lamp", 2, 9900}) &&  // declined: compensated
                        place_order("order-3", {"lamp", 1, 250000});  // never answered: expires
    const bool refused = !place_order("order-4", {"lamp", 9, 100});   // first check refuses
    drain();
    clock.advance(31min);
    drain();

    // [saga]
    // Each step is idempotent on the saga's id: a hold is a row keyed by it,
    // so a step run again after a crash holds nothing twice, and a
    // compensation of a hold that never happened releases nothing.
    memory::table<std::string, bool> holds(db);
    memory::saga_table saga_rows(db);
    settle::saga_coordinator checkout(
        saga_rows,
        {"checkout",
         {{"hold a lamp",
           [&](const settle::saga_call& c) {
               db.transact([&](memory::transaction& tx) {
                   if (holds.insert(tx, std::string(c.id), true))
                       (void)settle::optimistic_update(stock, tx, "lamp",
                                                       [](std::int64_t n) { return n - 1; });
               });
           },
           [&](const settle::saga_call& c) {
               db.transact([&](memory::transaction& tx) {
                   if (holds.erase(tx, std::string(c.id)))
                       (void)settle::optimistic_update(stock, tx, "lamp",
                                                       [](std::int64_t n) { return n + 1; });
               });
           }},
          {"charge the card",
           [](const settle::saga_call&) { throw std::domain_error("card declined"); },
           [](const settle::saga_call&) {}}}},
        settle::persisted_retry{settle::ladder{1s, 10s, 1min}, 4}, clock, {.lease = 30s});
    db.transact([&](memory::transaction& tx) { (void)checkout.start(tx, "order-5", "lamp"); });
    const settle::saga_result checked_out = checkout.run("order-5");  // compensated
    // [saga]

    const auto state = [&](const char* order) {
        return db.transact([&](memory::transaction& tx) { return orders.load(tx, order)->value; });
    };
    const auto lamps =
        db.transact([&](memory::transaction& tx) { return stock.load(tx, "lamp")->value; });
    const char* names[] = {"pending", "confirmed", "cancelled"};
    std::printf(
        "order-1 %s, order-2 %s, order-3 %s, order-4 refused: %s, order-5 %s; lamps left "
        "%lld of 5\n",
        names[static_cast<int>(state("order-1"))], names[static_cast<int>(state("order-2"))],
        names[static_cast<int>(state("order-3"))], refused ? "yes" : "no",
        std::string(settle::to_string(checked_out.outcome())).c_str(),
        static_cast<long long>(lamps));
    return placed && refused && state("order-1") == order_state::confirmed &&
                   state("order-2") == order_state::cancelled &&
                   state("order-3") == order_state::cancelled && lamps == 3 &&
                   checked_out.is_compensated()
               ? 0
               : 1;
}
