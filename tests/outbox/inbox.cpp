// The inbox: each message applied once per consumer, in the consumer's own
// transaction; and with the outbox, effectively once end to end.
#include <settle/inbox.hpp>

#include "settle_test.hpp"

#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

settle::manual_clock::time_point start() {
    return std::chrono::sys_days(std::chrono::year(2024) / 3 / 1);
}

// A billing service: its invoices and its inbox in one database.
struct billing {
    settle::manual_clock clock{start()};
    memory::database db;
    memory::table<std::string, int> invoices{db};  // order -> invoices issued for it
    memory::inbox_table inbox{db};
    settle::idempotent_consumer<memory::inbox_table, settle::manual_clock> consumer{
        inbox, clock, {.consumer = "billing"}};

    void invoice(memory::transaction& tx, const std::string& order) {
        const int* issued = invoices.find(tx, order);
        invoices.put(tx, order, issued == nullptr ? 1 : *issued + 1);
    }

    int issued(const std::string& order) {
        auto tx = db.begin();
        const int* n = invoices.find(tx, order);
        return n == nullptr ? 0 : *n;
    }
};

}  // namespace

TEST_CASE("a message is applied once however often it arrives", "[outbox]") {
    billing b;
    int runs = 0;
    const auto handle = [&](memory::transaction& tx) {
        ++runs;
        b.invoice(tx, "order-1");
    };
    CHECK(b.consumer.consume("m-1", handle).is_applied());
    CHECK(b.consumer.consume("m-1", handle).is_duplicate());
    b.clock.advance(24h);
    CHECK(b.consumer.consume("m-1", handle).is_duplicate());
    CHECK(runs == 1);
    CHECK(b.issued("order-1") == 1);
    CHECK(b.consumer.consume("m-2", handle).is_applied());
    CHECK(b.issued("order-1") == 2);
}

TEST_CASE("a handler that throws leaves no trace and the redelivery applies", "[outbox]") {
    billing b;
    CHECK_THROWS_AS(b.consumer.consume("m-1",
                                       [&](memory::transaction& tx) {
                                           b.invoice(tx, "order-1");
                                           throw std::runtime_error("ledger locked");
                                       }),
                    std::runtime_error);
    CHECK(b.issued("order-1") == 0);
    {
        auto tx = b.db.begin();
        CHECK_FALSE(b.inbox.contains(tx, "billing", "m-1"));
    }
    CHECK(b.consumer.consume("m-1", [&](memory::transaction& tx) { b.invoice(tx, "order-1"); })
              .is_applied());
    CHECK(b.issued("order-1") == 1);
}

TEST_CASE("consume in the caller's transaction commits or rolls back with it", "[outbox]") {
    billing b;
    const auto handle = [&](memory::transaction& tx) { b.invoice(tx, "order-1"); };
    {
        auto tx = b.db.begin();
        CHECK(b.consumer.consume(tx, "m-1", handle).is_applied());
        CHECK(b.consumer.consume(tx, "m-1", handle).is_duplicate());
        tx.rollback();
    }
    CHECK(b.issued("order-1") == 0);
    auto tx = b.db.begin();
    CHECK(b.consumer.consume(tx, "m-1", handle).is_applied());
    b.invoices.put(tx, "audit", 1);  // the caller's own write, in the same transaction
    tx.commit();
    CHECK(b.issued("order-1") == 1);
    CHECK(b.consumer.consume("m-1", handle).is_duplicate());
}

TEST_CASE("each consumer applies a message once", "[outbox]") {
    billing b;
    settle::idempotent_consumer shipping(b.inbox, b.clock, {.consumer = "shipping"});
    int shipped = 0;
    CHECK(b.consumer.consume("m-1", [&](memory::transaction& tx) { b.invoice(tx, "o"); })
              .is_applied());
    CHECK(shipping.consume("m-1", [&](memory::transaction&) { ++shipped; }).is_applied());
    CHECK(shipping.consume("m-1", [&](memory::transaction&) { ++shipped; }).is_duplicate());
    CHECK(shipped == 1);
    CHECK(b.issued("o") == 1);
}

TEST_CASE("an outbox record's id is its message id", "[outbox]") {
    billing b;
    const auto id = settle::uuid::parse("018f4e1c-7a2b-7cde-8f01-23456789abcd").value();
    const auto handle = [&](memory::transaction& tx) { b.invoice(tx, "order-1"); };
    CHECK(b.consumer.consume(id, handle).is_applied());
    CHECK(b.consumer.consume(id.to_string(), handle).is_duplicate());
    auto tx = b.db.begin();
    CHECK(b.inbox.contains(tx, "billing", "018f4e1c-7a2b-7cde-8f01-23456789abcd"));
}

TEST_CASE("purge forgets marks older than the retention", "[outbox]") {
    billing b;
    settle::idempotent_consumer consumer(b.inbox, b.clock,
                                         {.consumer = "billing", .retention = 1h});
    const auto purge = [&] {
        return settle::in_transaction(b.inbox, [&](auto& tx) { return consumer.purge(tx, 10); });
    };
    const auto handle = [&](memory::transaction& tx) { b.invoice(tx, "order-1"); };
    CHECK(consumer.consume("m-1", handle).is_applied());
    b.clock.advance(30min);
    CHECK(consumer.consume("m-2", handle).is_applied());
    CHECK(purge() == 0);
    b.clock.advance(31min);
    CHECK(purge() == 1);  // m-1, applied 61 minutes ago
    CHECK(consumer.consume("m-2", handle).is_duplicate());
    // What the retention must be longer than: a redelivery after purge applies again.
    CHECK(consumer.consume("m-1", handle).is_applied());
    CHECK(b.issued("order-1") == 3);
}

TEST_CASE("a consumer's purge keeps every other consumer's marks", "[outbox]") {
    // Billing keeps its marks for 14 days; a report builder sharing the inbox
    // table keeps its own for an hour and purges often.
    billing b;
    settle::idempotent_consumer reports(b.inbox, b.clock, {.consumer = "reports", .retention = 1h});
    int reported = 0;
    const auto invoice = [&](memory::transaction& tx) { b.invoice(tx, "order-1"); };
    const auto report = [&](memory::transaction&) { ++reported; };
    CHECK(b.consumer.consume("m-1", invoice).is_applied());
    CHECK(reports.consume("m-1", report).is_applied());
    b.clock.advance(2h);
    CHECK(settle::in_transaction(b.inbox, [&](auto& tx) { return reports.purge(tx, 10); }) == 1);
    // The broker redelivers m-1: billing applied it two hours ago, well within
    // its retention, so it is a duplicate for billing however reports purged.
    CHECK(b.consumer.consume("m-1", invoice).is_duplicate());
    CHECK(b.issued("order-1") == 1);
    CHECK(reports.consume("m-1", report).is_applied());  // past reports' own retention
    CHECK(reported == 2);
    CHECK(settle::in_transaction(b.inbox, [&](auto& tx) { return b.consumer.purge(tx, 10); }) == 0);
}

TEST_CASE("a consume result is its outcome", "[outbox]") {
    billing b;
    const auto handle = [&](memory::transaction& tx) { b.invoice(tx, "order-1"); };
    const settle::inbox_result applied = b.consumer.consume("m-1", handle);
    CHECK(applied.outcome() == settle::inbox_outcome::applied);
    CHECK(applied.is_applied());
    CHECK_FALSE(applied.is_duplicate());
    CHECK(static_cast<bool>(applied));
    const settle::inbox_result duplicate = b.consumer.consume("m-1", handle);
    CHECK(duplicate.outcome() == settle::inbox_outcome::duplicate);
    CHECK(duplicate.is_duplicate());
    CHECK_FALSE(duplicate.is_applied());
    CHECK_FALSE(static_cast<bool>(duplicate));
    if (auto r = b.consumer.consume("m-2", handle)) {
        CHECK(r.is_applied());
    } else {
        FAIL("a first delivery converts to true");
    }
    CHECK(settle::to_string(duplicate.outcome()) == "duplicate");
    STATIC_REQUIRE(!std::is_convertible_v<settle::inbox_result, bool>);
}

TEST_CASE("the consumer refuses a missing name retention or message id", "[outbox]") {
    billing b;
    CHECK_THROWS_AS(settle::idempotent_consumer(b.inbox, b.clock, {}), settle::error);
    CHECK_THROWS_AS(
        settle::idempotent_consumer(b.inbox, b.clock, {.consumer = "x", .retention = 0s}),
        settle::error);
    try {
        (void)b.consumer.consume("", [](memory::transaction&) {});
        FAIL("an empty message id was accepted");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
    }
}

TEST_CASE("outbox and inbox together apply every message exactly once", "[outbox]") {
    // The order service's outbox publishes to the billing service, whose
    // broker acknowledgements get lost half the time: the relay retries
    // messages that did arrive, and the inbox absorbs the duplicates.
    billing consumer_side;
    settle::manual_clock& clock = consumer_side.clock;
    memory::database orders_db;
    memory::outbox_table store(orders_db);
    settle::outbox outbox(store, clock);
    std::mt19937_64 random(7);
    settle::uuid_v7_generator ids(clock, random);

    std::map<settle::uuid, int> arrivals;
    int ack = 0;
    memory::publisher publisher([&](const settle::outbox_record& record) {
        ++arrivals[record.id];
        const auto order = settle::decode<std::string>(record.payload);
        (void)consumer_side.consumer.consume(
            record.id, [&](memory::transaction& tx) { consumer_side.invoice(tx, order); });
        return ++ack % 2 == 0 ? settle::publish_result::delivered()
                              : settle::publish_result::retryable("ack lost");
    });
    settle::outbox_relay relay(store, publisher,
                               settle::persisted_retry{settle::constant_backoff{1s}, 10}, clock,
                               {.owner = "relay-1", .batch_size = 3});
    for (int order = 0; order < 10; ++order) {
        auto tx = orders_db.begin();
        (void)outbox.append(tx, ids(), "orders.placed", "order-" + std::to_string(order));
        tx.commit();
    }
    for (int round = 0;
         round < 100 &&
         settle::in_transaction(store, [&](auto& tx) { return outbox.statistics(tx); }).backlog > 0;
         ++round) {
        if (relay.run_once().idle()) {
            clock.advance(1s);
        }
    }
    CHECK(settle::in_transaction(store, [&](auto& tx) { return outbox.statistics(tx); }) ==
          settle::outbox_statistics{});
    int duplicates = 0;
    for (const auto& [id, count] : arrivals) {
        duplicates += count - 1;
    }
    CHECK(arrivals.size() == 10);
    CHECK(duplicates > 0);
    for (int order = 0; order < 10; ++order) {
        CHECK(consumer_side.issued("order-" + std::to_string(order)) == 1);
    }
}
