// settle's showcase: an order service that stays correct while requests
// repeat, callbacks race and a dependency fails. Everything runs in one
// process against the in-memory backend; swap in your database's backend and
// the code reads the same.
#include <settle/settle.hpp>
#include <settle/stores/memory.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

enum class order_state { created, awaiting_payment, paid, shipped, cancelled };
enum class order_event { submit, pay, ship, cancel };

constexpr std::string_view to_string(order_state s) {
    switch (s) {
    case order_state::created: return "created";
    case order_state::awaiting_payment: return "awaiting_payment";
    case order_state::paid: return "paid";
    case order_state::shipped: return "shipped";
    case order_state::cancelled: return "cancelled";
    }
    return "?";
}
constexpr std::string_view to_string(order_event e) {
    switch (e) {
    case order_event::submit: return "submit";
    case order_event::pay: return "pay";
    case order_event::ship: return "ship";
    case order_event::cancel: return "cancel";
    }
    return "?";
}

using enum order_state;
using enum order_event;

// The order's life cycle, checked by the compiler.
constexpr auto order_machine = settle::make_state_machine<order_state, order_event>(
    {created, awaiting_payment, paid, shipped, cancelled}, {shipped, cancelled},
    {{created, submit, awaiting_payment},
     {awaiting_payment, pay, paid},
     {awaiting_payment, cancel, cancelled},
     {paid, ship, shipped}});

int main() {
    std::printf("settle %d.%d.%d\n\n", settle::version.major, settle::version.minor,
                settle::version.patch);

    std::chrono::system_clock clock;
    std::mt19937_64 random(std::random_device{}());
    settle::uuid_v7_generator next_id(clock, random);

    settle::memory::database db;  // the service's database: business rows and bookkeeping
    settle::memory::versioned_table<std::string, order_state> orders(db);
    settle::memory::table<std::string, long> payments_captured(db);  // order id -> cents
    settle::memory::idempotency_table requests(db);
    settle::memory::outbox_table outbox_store(db);
    settle::outbox events(outbox_store, clock);
    settle::idempotency_guard guard(requests, clock, {.lease = 30s, .retention = 24h});

    // 1. A client creates an order; the answer is lost; it sends the request again.
    std::puts("1. POST /orders, sent twice with the same Idempotency-Key");
    const auto key = settle::idempotency_key::from_header(R"("checkout-7f3a")").value();
    const settle::idempotency_scope scope{"tenant-42", "orders.create"};
    const auto body = settle::sha256::hash(R"({"sku":"book","qty":1})");
    int orders_created = 0;
    const auto create_order = [&] {
        ++orders_created;
        const std::string id = next_id().to_string();
        settle::in_transaction(orders, [&](settle::memory::transaction& tx) {
            (void)orders.insert(tx, id, order_machine.initial());
            (void)settle::transition(orders, tx, id, order_machine, submit);
        });
        return id;
    };
    const auto first = guard.run(scope, key, body, create_order);
    const auto again = guard.run(scope, key, body, create_order);
    std::printf("   first: %s -> order %s\n", settle::to_string(first.outcome()).data(),
                first.response()->c_str());
    std::printf("   again: %s -> order %s, operation ran %d time(s)\n",
                settle::to_string(again.outcome()).data(), again.response()->c_str(),
                orders_created);
    const auto other =
        guard.run(scope, key, settle::sha256::hash(R"({"sku":"pen"})"), create_order);
    std::printf("   same key, other body: %s (HTTP %d)\n\n",
                settle::to_string(other.outcome()).data(), settle::idempotency_http::status(other));
    const std::string order_id = *first.response();

    // 2. The payment provider calls back three times at once. Exactly one callback
    //    owns the capture; the others are duplicates to acknowledge.
    std::puts("2. payment callback delivered three times, concurrently");
    std::atomic<int> captures{0};
    std::vector<std::thread> callbacks;
    for (int i = 0; i < 3; ++i) {
        callbacks.emplace_back([&] {
            settle::in_transaction(orders, [&](settle::memory::transaction& tx) {
                const auto t = settle::transition(orders, tx, order_id, order_machine, pay);
                if (t) {
                    (void)payments_captured.insert(tx, order_id, 2499);
                    // next_id is not thread-safe; the transaction serialises its callers.
                    // A fresh id is always appended; a repeated one would be a duplicate.
                    (void)events.append(tx, next_id(), "orders.paid", order_id, order_id);
                    ++captures;
                }
                std::printf("   callback: %s\n", settle::to_string(t.outcome()).data());
            });
        });
    }
    for (auto& c : callbacks) {
        c.join();
    }
    std::printf("   payments captured: %d\n\n", captures.load());

    // 3. A dependency fails twice, then answers; the retry ladder waits in between.
    std::puts("3. reserve stock from a flaky inventory service");
    settle::system_sleeper sleeper;
    const auto policy =
        settle::retry_policy{settle::exponential_backoff{2ms, 2.0, 50ms}, 5}.with_deadline(1s);
    int calls = 0;
    const auto reserved = settle::retry(policy, clock, sleeper, [&]() -> std::optional<int> {
        return ++calls < 3 ? std::nullopt : std::optional<int>(17);
    });
    std::printf("   %s after %u attempts, reservation %d\n\n",
                settle::to_string(reserved.outcome()).data(), reserved.attempts(),
                *reserved.value());

    // 4. Two clerks edit the order; the second saves with a stale ETag.
    std::puts("4. PUT /orders with If-Match");
    auto edit = db.begin();
    const auto current = orders.load(edit, order_id);
    const auto etag = settle::entity_tag::strong(current->stamp);
    const std::string stale =
        settle::entity_tag::strong(settle::version_stamp::first()).to_string();
    for (const std::string& if_match : {etag.to_string(), stale}) {
        const auto decision =
            settle::evaluate_preconditions({.if_match = if_match, .get_or_head = false}, etag);
        std::printf("   If-Match: %s -> %s\n", if_match.c_str(),
                    decision.value() == settle::precondition::proceed ? "200, saved"
                                                                      : "412 Precondition Failed");
    }
    edit.commit();

    // 5. The paid event leaves through the outbox. The broker loses the first
    //    acknowledgement and delivers the message again; the shipping service's
    //    inbox applies it once.
    std::puts("\n5. orders.paid through the outbox, delivered twice to shipping");
    settle::memory::database shipping_db;
    settle::memory::table<std::string, int> shipments(shipping_db);
    settle::memory::inbox_table shipping_inbox(shipping_db);
    settle::idempotent_consumer shipping(shipping_inbox, clock, {.consumer = "shipping"});
    int deliveries = 0;
    settle::memory::publisher broker([&](const settle::outbox_record& record) {
        const auto id = settle::decode<std::string>(record.payload);
        for (int copy = 0; copy < 2; ++copy) {  // at least once means sometimes twice
            ++deliveries;
            const auto applied = shipping.consume(record.id, [&](settle::memory::transaction& tx) {
                const int* seen = shipments.find(tx, id);
                shipments.put(tx, id, seen ? *seen + 1 : 1);
            });
            std::printf("   shipping: %s\n", settle::to_string(applied.outcome()).data());
        }
        return settle::publish_result::delivered();
    });
    settle::outbox_relay relay(outbox_store, broker,
                               settle::persisted_retry{settle::message_queue_ladder, 19}, clock,
                               {.owner = "relay-1"});
    const auto sent = relay.run_once();
    const int shipments_made = shipping_db.transact(
        [&](settle::memory::transaction& tx) { return *shipments.find(tx, order_id); });
    std::printf("   relay delivered %zu, broker delivered %d, shipments made %d\n", sent.delivered,
                deliveries, shipments_made);

    const bool ok = orders_created == 1 && captures == 1 && reserved.is_succeeded() &&
                    sent.delivered == 1 && shipments_made == 1;
    std::printf("\n%s\n", ok ? "every repeat was harmless" : "SOMETHING WENT WRONG");
    return ok ? 0 : 1;
}
