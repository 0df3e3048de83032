// The broker path's parts on the real server, with an in-memory inbox:
// records become stream entries and back, a message is acknowledged only
// once its inbox transaction committed, a repeat is a duplicate, a crashed
// consumer's pending entries are taken over, and trim removes only entries
// every group acknowledged.
#include "redis/redis_test.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/redis.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rd = settle::redis;
using namespace std::chrono_literals;
using redis_test::factory;
using redis_test::raw;
using redis_test::unique_prefix;

namespace {

settle::outbox_record record_of(std::uint8_t n, settle::outbox_headers headers = {}) {
    std::array<std::byte, 16> octets{};
    octets[15] = static_cast<std::byte>(n);
    octets[6] = std::byte{0x70};
    octets[8] = std::byte{0x80};
    settle::outbox_record r;
    r.id = settle::uuid(octets);
    r.topic = "orders.placed";
    r.ordering_key = "order-" + std::to_string(n);
    r.payload = settle::encode(std::uint32_t{n});
    r.headers = std::move(headers);
    return r;
}

struct consumer_setup {
    rd::connection conn{factory()};
    std::string stream = unique_prefix("stream");
    settle::memory::database db;
    settle::memory::inbox_table inbox{db};
    std::chrono::system_clock clock;
    settle::idempotent_consumer<settle::memory::inbox_table, std::chrono::system_clock> consumer{
        inbox, clock, {.consumer = "billing"}};

    rd::stream_consumer<settle::memory::inbox_table, std::chrono::system_clock> make(
        std::string name, std::chrono::milliseconds idle = 30s) {
        rd::stream_consumer c(conn, stream, consumer,
                              {.group = "billing",
                               .consumer = std::move(name),
                               .batch_size = 4,
                               .reclaim_idle = idle});
        return c;
    }

    void publish(const settle::outbox_record& r) {
        rd::stream_publisher publisher(conn, stream);
        REQUIRE(publisher.publish(r).outcome() == settle::publish_outcome::delivered);
    }
};

}  // namespace

TEST_CASE("redis stream: a record arrives as it was published, once", "[redis][outbox]") {
    consumer_setup s;
    auto c = s.make("billing-1");
    c.create_group();
    c.create_group();  // again: the group exists, nothing happens
    const auto sent = record_of(1, {{"trace", "abc"}, {"bytes", std::string("\0\r\n", 3)}});
    s.publish(sent);
    s.publish(sent);  // a relay's repeat
    std::vector<rd::stream_message> got;
    CHECK(c.poll([&](auto&, const rd::stream_message& m) { got.push_back(m); }) == 2);
    REQUIRE(got.size() == 1);
    CHECK(got[0].record_id == sent.id.to_string());
    CHECK(got[0].topic == sent.topic);
    CHECK(got[0].ordering_key == sent.ordering_key);
    CHECK(got[0].payload == sent.payload);
    CHECK(got[0].headers == sent.headers);
    raw server;
    CHECK(server.run("XPENDING", s.stream, "billing")->element[0]->integer == 0);
    CHECK(c.poll([&](auto&, const rd::stream_message& m) { got.push_back(m); }) == 0);
}

TEST_CASE("redis stream: a handler that throws leaves its entry pending for another consumer",
          "[redis][outbox]") {
    consumer_setup s;
    auto crashed = s.make("billing-1", 1ms);
    crashed.create_group();
    s.publish(record_of(1));
    CHECK_THROWS_AS(crashed.poll([](auto&, const rd::stream_message&) {
        throw std::runtime_error("the handler failed");
    }),
                    std::runtime_error);
    raw server;
    CHECK(server.run("XPENDING", s.stream, "billing")->element[0]->integer == 1);
    {
        auto tx = s.inbox.begin();
        CHECK(s.inbox.size(tx) == 0);
    }
    std::this_thread::sleep_for(20ms);  // Redis' clock: the entry must have been idle 1 ms
    auto other = s.make("billing-2", 1ms);
    int applied = 0;
    CHECK(other.poll([&](auto&, const rd::stream_message&) { ++applied; }) == 1);
    CHECK(applied == 1);
    CHECK(server.run("XPENDING", s.stream, "billing")->element[0]->integer == 0);
}

TEST_CASE("redis stream: an entry without an id is refused and stays pending", "[redis][outbox]") {
    consumer_setup s;
    auto c = s.make("billing-1");
    c.create_group();
    raw server;
    (void)server.run("XADD", s.stream, "*", "something", "else");
    CHECK(redis_test::thrown([&] { (void)c.poll([](auto&, const rd::stream_message&) {}); }) ==
          settle::errc::decode_failed);
    CHECK(server.run("XPENDING", s.stream, "billing")->element[0]->integer == 1);
}

TEST_CASE("redis stream: trim removes what every group acknowledged, and nothing else",
          "[redis][outbox]") {
    consumer_setup s;
    auto billing = s.make("billing-1");
    billing.create_group();
    settle::idempotent_consumer<settle::memory::inbox_table, std::chrono::system_clock> inbox(
        s.inbox, s.clock, {.consumer = "shipping"});
    rd::stream_consumer shipping(s.conn, s.stream, inbox,
                                 {.group = "shipping", .consumer = "shipping-1", .batch_size = 2});
    shipping.create_group();
    for (std::uint8_t n = 1; n <= 6; ++n) {
        s.publish(record_of(n));
    }
    raw server;
    CHECK(billing.trim() == 0);  // shipping has read nothing
    CHECK(billing.poll([](auto&, const rd::stream_message&) {}) == 4);
    CHECK(billing.poll([](auto&, const rd::stream_message&) {}) == 2);
    CHECK(billing.trim() == 0);
    // shipping applies two, then fails on the third: it stays pending.
    CHECK(shipping.poll([](auto&, const rd::stream_message&) {}) == 2);
    CHECK_THROWS(shipping.poll([](auto&, const rd::stream_message&) { throw 1; }));
    CHECK(billing.trim() == 2);
    CHECK(server.integer("XLEN", s.stream) == 4);
    // The third and fourth entries, read in the batch that failed, stay
    // pending; they and those after them are kept.
    const auto pending = server.run("XPENDING", s.stream, "shipping");
    CHECK(pending->element[0]->integer == 2);
    const auto first = server.run("XRANGE", s.stream, "-", "+", "COUNT", "1");
    CHECK(std::string(first->element[0]->element[0]->str) == std::string(pending->element[1]->str));
}

TEST_CASE("redis stream: bad names and sizes are refused", "[redis][outbox]") {
    consumer_setup s;
    CHECK(redis_test::thrown([&] { rd::stream_publisher(s.conn, ""); }) ==
          settle::errc::invalid_argument);
    CHECK(redis_test::thrown([&] { (void)s.make(""); }) == settle::errc::invalid_argument);
    CHECK(redis_test::thrown([&] { (void)s.make("c", 0ms); }) == settle::errc::invalid_argument);
}
