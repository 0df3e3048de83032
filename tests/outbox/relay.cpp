// The relay: claims, publishes, records outcomes on the retry schedule.
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>

#include "outbox/ids.hpp"
#include "settle_test.hpp"

#include <settle/retry.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <latch>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

using time_point = settle::manual_clock::time_point;

time_point start() {
    return std::chrono::sys_days(std::chrono::year(2024) / 3 / 1);
}

settle::stored_time at(time_point t) {
    return std::chrono::floor<std::chrono::microseconds>(t);
}

using outbox_test::id_of;

// A store and a clock, and a way to append records and look at them.
struct rig {
    settle::manual_clock clock{start()};
    memory::database db;
    memory::outbox_table store{db};
    settle::outbox<memory::outbox_table, settle::manual_clock> outbox{store, clock};

    void append(unsigned n, std::string ordering_key = {}, settle::bytes payload = {}) {
        if (payload.empty()) {
            payload = settle::encode(std::uint32_t{n});
        }
        auto tx = db.begin();
        REQUIRE(outbox.append(
            tx, settle::outbox_message{
                    id_of(n), "topic", std::move(ordering_key), std::move(payload), {}}));
        tx.commit();
    }

    settle::outbox_statistics statistics() {
        return settle::in_transaction(store, [&](auto& tx) { return outbox.statistics(tx); });
    }

    settle::outbox_record find(unsigned n) {
        auto tx = db.begin();
        auto record = store.find(tx, id_of(n));
        REQUIRE(record.has_value());
        return *record;
    }
};

// The n a record was appended with.
unsigned number(const settle::outbox_record& record) {
    return settle::decode<std::uint32_t>(record.payload);
}

std::vector<unsigned> numbers(const std::vector<settle::outbox_record>& records) {
    std::vector<unsigned> out;
    for (const auto& r : records) {
        out.push_back(number(r));
    }
    return out;
}

const settle::persisted_retry<settle::ladder<2>> ladder_1s_5s{settle::ladder{1s, 5s}, 5};

using relay_type = settle::outbox_relay<memory::outbox_table, memory::publisher, settle::ladder<2>,
                                        settle::manual_clock>;

}  // namespace

TEST_CASE("run_once delivers due records and reports what it did", "[outbox]") {
    rig b;
    memory::publisher publisher;
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    for (unsigned n = 1; n <= 3; ++n) {
        b.append(n);
    }
    CHECK(relay.run_once() == settle::outbox_run_result{.claimed = 3, .delivered = 3});
    CHECK(numbers(publisher.published()) == std::vector<unsigned>{1, 2, 3});
    for (unsigned n = 1; n <= 3; ++n) {
        const auto r = b.find(n);
        CHECK(r.status == settle::outbox_status::delivered);
        CHECK(r.finished_at == at(b.clock.now()));
        CHECK(r.attempts == 1);
    }
    CHECK(relay.run_once().idle());
    CHECK(publisher.attempts() == 3);
}

namespace {

// A store that can mark many records delivered in one call, as the SQL
// backends do, and counts those calls; `lose` drops answers from them.
struct together_store : memory::outbox_table {
    using memory::outbox_table::mark_delivered;
    using memory::outbox_table::outbox_table;
    std::vector<std::size_t> calls;
    std::size_t lose = 0;

    std::vector<settle::fenced_write> mark_delivered(transaction& tx,
                                                     std::span<const settle::outbox_claim> claims,
                                                     settle::stored_time now) {
        calls.push_back(claims.size());
        std::vector<settle::fenced_write> writes;
        for (const settle::outbox_claim& c : claims) {
            writes.push_back(mark_delivered(tx, c.id, c.token, now));
        }
        writes.resize(writes.size() - std::min(lose, writes.size()));
        return writes;
    }
};

}  // namespace

TEST_CASE("run_once records a batch's deliveries in one call when the store can", "[outbox]") {
    rig b;
    together_store store(b.db);
    settle::outbox<together_store, settle::manual_clock> outbox(store, b.clock);
    for (unsigned n = 1; n <= 4; ++n) {
        auto tx = b.db.begin();
        REQUIRE(outbox.append(
            tx, settle::outbox_message{id_of(n), "topic", {}, settle::encode(n), {}}));
        tx.commit();
    }
    memory::publisher publisher([](const settle::outbox_record& record) {
        return settle::decode<unsigned>(record.payload) == 2
                   ? settle::publish_result::retryable("busy")
                   : settle::publish_result::delivered();
    });
    settle::outbox_relay relay(store, publisher, ladder_1s_5s, b.clock,
                               {.owner = "relay-1", .batch_size = 3});
    CHECK(relay.run_once() ==
          settle::outbox_run_result{.claimed = 3, .delivered = 2, .rescheduled = 1});
    CHECK(store.calls == std::vector<std::size_t>{2});
    {
        auto tx = b.db.begin();
        CHECK(store.find(tx, id_of(2))->status == settle::outbox_status::pending);
        CHECK(store.find(tx, id_of(3))->status == settle::outbox_status::delivered);
        tx.commit();
    }

    store.lose = 1;  // a store that answers for fewer records than it was given
    CHECK_THROWS_AS(relay.run_once(), settle::error);
}

TEST_CASE("run_once takes at most a batch", "[outbox]") {
    rig b;
    memory::publisher publisher;
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock,
                     {.owner = "relay-1", .batch_size = 2});
    for (unsigned n = 1; n <= 5; ++n) {
        b.append(n);
    }
    CHECK(relay.run_once().delivered == 2);
    CHECK(relay.run_once().delivered == 2);
    CHECK(relay.run_once().delivered == 1);
    CHECK(relay.run_once().idle());
    CHECK(numbers(publisher.published()) == std::vector<unsigned>{1, 2, 3, 4, 5});
}

TEST_CASE("a retryable failure is rescheduled on the ladder", "[outbox]") {
    rig b;
    int failures_left = 2;
    memory::publisher publisher([&](const settle::outbox_record&) {
        if (failures_left > 0) {
            --failures_left;
            return settle::publish_result::retryable("broker busy");
        }
        return settle::publish_result::delivered();
    });
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    b.append(1);
    const auto t0 = at(b.clock.now());

    CHECK(relay.run_once() == settle::outbox_run_result{.claimed = 1, .rescheduled = 1});
    auto r = b.find(1);
    CHECK(r.status == settle::outbox_status::pending);
    CHECK(r.attempts == 1);
    CHECK(r.next_attempt_at == t0 + 1s);  // delay(0)
    CHECK(r.last_error == "broker busy");

    b.clock.advance(999ms);
    CHECK(relay.run_once().idle());
    b.clock.advance(1ms);
    CHECK(relay.run_once().rescheduled == 1);
    CHECK(b.find(1).next_attempt_at == t0 + 1s + 5s);  // delay(1)
    CHECK(b.find(1).attempts == 2);

    b.clock.advance(5s);
    CHECK(relay.run_once().delivered == 1);
    r = b.find(1);
    CHECK(r.status == settle::outbox_status::delivered);
    CHECK(r.attempts == 3);
    CHECK(r.last_error == "broker busy");  // the last failure stays on record
}

TEST_CASE("a record is dead-lettered with its reason when the ladder is exhausted", "[outbox]") {
    rig b;
    memory::publisher publisher(
        [](const settle::outbox_record&) { return settle::publish_result::retryable("timeout"); });
    settle::outbox_relay relay(b.store, publisher,
                               settle::persisted_retry{settle::constant_backoff{1s}, 3}, b.clock,
                               {.owner = "relay-1"});
    b.append(1);
    CHECK(relay.run_once().rescheduled == 1);
    b.clock.advance(1s);
    CHECK(relay.run_once().rescheduled == 1);
    b.clock.advance(1s);
    CHECK(relay.run_once().dead_lettered == 1);  // the third attempt was the last
    const auto r = b.find(1);
    CHECK(r.status == settle::outbox_status::dead);
    CHECK(r.attempts == 3);
    CHECK(r.last_error == "no attempts left after 3: timeout");
    CHECK(r.payload == settle::encode(std::uint32_t{1}));
    b.clock.advance(24h);
    CHECK(relay.run_once().idle());
    CHECK(publisher.attempts() == 3);
}

TEST_CASE("a permanent failure is dead-lettered at once with its reason", "[outbox]") {
    rig b;
    memory::publisher publisher([](const settle::outbox_record& record) {
        return number(record) == 2 ? settle::publish_result::permanent("schema rejected")
                                   : settle::publish_result::delivered();
    });
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    for (unsigned n = 1; n <= 3; ++n) {
        b.append(n);
    }
    CHECK(relay.run_once() ==
          settle::outbox_run_result{.claimed = 3, .delivered = 2, .dead_lettered = 1});
    const auto r = b.find(2);
    CHECK(r.status == settle::outbox_status::dead);
    CHECK(r.last_error == "schema rejected");
    CHECK(r.attempts == 1);
}

TEST_CASE("a delay the server asks for replaces the ladder's", "[outbox]") {
    rig b;
    std::optional<std::chrono::nanoseconds> asked = 42s;
    memory::publisher publisher([&](const settle::outbox_record&) {
        return settle::publish_result::retryable("429 too many requests", asked);
    });
    settle::outbox_relay relay(b.store, publisher,
                               settle::persisted_retry{settle::ladder{1s, 5s}, 4}, b.clock,
                               {.owner = "relay-1"});
    b.append(1);
    const auto t0 = at(b.clock.now());
    CHECK(relay.run_once().rescheduled == 1);
    CHECK(b.find(1).next_attempt_at == t0 + 42s);

    b.clock.advance(42s);
    asked = std::chrono::nanoseconds(-5);  // counts as zero: due at once
    CHECK(relay.run_once().rescheduled == 1);
    CHECK(b.find(1).next_attempt_at == t0 + 42s);

    asked = 1500ns;  // rounded up to the stored resolution
    CHECK(relay.run_once().rescheduled == 1);
    CHECK(b.find(1).next_attempt_at == t0 + 42s + 2us);

    b.clock.advance(2us);
    asked = 1h;
    CHECK(relay.run_once().dead_lettered == 1);  // no attempts left, whatever the server says
    CHECK(b.find(1).last_error == "no attempts left after 4: 429 too many requests");
}

TEST_CASE("a payload the codec cannot decode is dead-lettered and the batch goes on", "[outbox]") {
    rig b;
    memory::publisher publisher([](const settle::outbox_record& record) {
        (void)settle::decode<std::uint32_t>(record.payload);  // throws on a bad payload
        return settle::publish_result::delivered();
    });
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    b.append(1);
    b.append(2, {}, settle::bytes{std::byte{1}, std::byte{2}, std::byte{3}});
    b.append(3);
    CHECK(relay.run_once() ==
          settle::outbox_run_result{.claimed = 3, .delivered = 2, .dead_lettered = 1});
    const auto r = b.find(2);
    CHECK(r.status == settle::outbox_status::dead);
    CHECK(r.last_error.find("the payload cannot be decoded: uint32: expected 4 bytes, got 3") == 0);
    CHECK(r.payload == settle::bytes{std::byte{1}, std::byte{2}, std::byte{3}});  // kept as it was
}

TEST_CASE("when the publisher throws the batch is put back and the exception propagates",
          "[outbox]") {
    rig b;
    bool broken = true;
    memory::publisher publisher([&](const settle::outbox_record& record) {
        if (broken && number(record) == 2) {
            throw std::runtime_error("connection reset");
        }
        return settle::publish_result::delivered();
    });
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    for (unsigned n = 1; n <= 4; ++n) {
        b.append(n);
    }
    const auto t0 = at(b.clock.now());
    CHECK_THROWS_AS(relay.run_once(), std::runtime_error);

    CHECK(b.find(1).status == settle::outbox_status::delivered);
    const auto thrown = b.find(2);  // it may have gone out: retried on the ladder
    CHECK(thrown.status == settle::outbox_status::pending);
    CHECK(thrown.attempts == 1);
    CHECK(thrown.next_attempt_at == t0 + 1s);
    CHECK(thrown.last_error == "the publisher threw: connection reset");
    for (const unsigned n : {3U, 4U}) {  // never attempted: released as they were
        const auto r = b.find(n);
        CHECK(r.status == settle::outbox_status::pending);
        CHECK(r.attempts == 0);
        CHECK(r.next_attempt_at == t0);
        CHECK(r.claim_owner.empty());
    }

    broken = false;
    CHECK(relay.run_once().delivered == 2);
    b.clock.advance(1s);
    CHECK(relay.run_once().delivered == 1);
    CHECK(numbers(publisher.published()) == std::vector<unsigned>{1, 3, 4, 2});
}

namespace {

// A publisher that sends a batch at once, and says so.
struct batch_publisher {
    std::vector<std::size_t> batch_sizes;
    std::size_t single_calls = 0;
    bool miscount = false;

    settle::publish_result publish(const settle::outbox_record&) {
        ++single_calls;
        return settle::publish_result::delivered();
    }

    std::vector<settle::publish_result> publish_batch(
        std::span<const settle::outbox_record> records) {
        batch_sizes.push_back(records.size());
        std::vector<settle::publish_result> results;
        for (const auto& r : records) {
            switch (number(r) % 3) {
            case 0: results.push_back(settle::publish_result::delivered()); break;
            case 1:
                results.push_back(settle::publish_result::retryable("partition offline"));
                break;
            default: results.push_back(settle::publish_result::permanent("too large")); break;
            }
        }
        if (miscount) {
            results.pop_back();
        }
        return results;
    }
};

}  // namespace

TEST_CASE("a batch publisher gets each batch at once", "[outbox]") {
    rig b;
    batch_publisher publisher;
    settle::outbox_relay relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    for (unsigned n = 1; n <= 6; ++n) {
        b.append(n);
    }
    CHECK(relay.run_once() ==
          settle::outbox_run_result{
              .claimed = 6, .delivered = 2, .rescheduled = 2, .dead_lettered = 2});
    CHECK(publisher.batch_sizes == std::vector<std::size_t>{6});
    CHECK(publisher.single_calls == 0);
    CHECK(b.find(3).status == settle::outbox_status::delivered);
    CHECK(b.find(4).status == settle::outbox_status::pending);
    CHECK(b.find(4).last_error == "partition offline");
    CHECK(b.find(5).status == settle::outbox_status::dead);
    CHECK(b.find(5).last_error == "too large");
}

TEST_CASE("a batch publisher that miscounts its answers puts the batch back", "[outbox]") {
    rig b;
    batch_publisher publisher;
    publisher.miscount = true;
    settle::outbox_relay relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    b.append(1);
    b.append(3);
    try {
        (void)relay.run_once();
        FAIL("a miscounted batch was accepted");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
        CHECK(std::string(e.what()).find(
                  "outbox_relay: publish_batch answered 1 results for 2 records") == 0);
    }
    for (const unsigned n : {1U, 3U}) {
        const auto r = b.find(n);
        CHECK(r.status == settle::outbox_status::pending);
        CHECK(r.last_error.find("the publisher threw: outbox_relay: publish_batch answered") == 0);
    }
}

TEST_CASE("a record claimed more often than the schedule allows is dead-lettered unpublished",
          "[outbox]") {
    rig b;
    memory::publisher publisher;
    settle::outbox_relay relay(b.store, publisher,
                               settle::persisted_retry{settle::constant_backoff{1s}, 2}, b.clock,
                               {.owner = "relay-1"});
    b.append(1);
    for (const char* owner : {"crashed-1", "crashed-2"}) {  // two relays died holding it
        const auto now = at(b.clock.now());
        auto tx = b.store.begin();
        CHECK(b.store.claim(tx, owner, now, now + 30s, 10).size() == 1);
        tx.commit();
        b.clock.advance(30s);
    }
    CHECK(relay.run_once() == settle::outbox_run_result{.claimed = 1, .dead_lettered = 1});
    CHECK(publisher.attempts() == 0);
    const auto r = b.find(1);
    CHECK(r.status == settle::outbox_status::dead);
    CHECK(r.attempts == 3);
    CHECK(r.last_error.find("claimed 3 times, more than the schedule's 2 attempts") == 0);
}

TEST_CASE("an outcome lost to a take over is reported as stale", "[outbox]") {
    rig b;
    memory::publisher quick;
    relay_type rescuer(b.store, quick, ladder_1s_5s, b.clock, {.owner = "relay-2"});
    // The first relay stalls in publish for longer than its lease; meanwhile
    // the second takes the record over and delivers it.
    memory::publisher slow([&](const settle::outbox_record&) {
        b.clock.advance(31s);
        CHECK(rescuer.run_once().delivered == 1);
        return settle::publish_result::retryable("timed out at last");
    });
    relay_type stalled(b.store, slow, ladder_1s_5s, b.clock, {.owner = "relay-1", .lease = 30s});
    b.append(1);
    CHECK(stalled.run_once() == settle::outbox_run_result{.claimed = 1, .stale = 1});
    const auto r = b.find(1);
    CHECK(r.status == settle::outbox_status::delivered);  // the new owner's outcome stands
    CHECK(r.attempts == 2);
    CHECK(r.last_error.empty());
}

TEST_CASE("a late outcome is stale once the claim was taken over, whatever the owner name",
          "[outbox][concurrency]") {
    // Two relays run under one owner name (a restarted relay reusing its
    // predecessor's, or a copied configuration). The first stalls in publish
    // past its lease; the second claims the record and is still publishing
    // it when the first records its outcome. Only the claim's own token tells
    // the two claims apart.
    rig b;
    std::latch first_stalled(1);
    std::latch second_claimed(1);
    std::latch first_recorded(1);
    memory::publisher busy([&](const settle::outbox_record&) {
        second_claimed.count_down();
        first_recorded.wait();
        return settle::publish_result::retryable("broker busy");
    });
    relay_type second(b.store, busy, ladder_1s_5s, b.clock, {.owner = "relay", .lease = 30s});
    memory::publisher stalling([&](const settle::outbox_record&) {
        b.clock.advance(31s);
        first_stalled.count_down();
        second_claimed.wait();
        return settle::publish_result::delivered();
    });
    relay_type first(b.store, stalling, ladder_1s_5s, b.clock, {.owner = "relay", .lease = 30s});
    b.append(1);
    settle::outbox_run_result taken_over;
    std::thread other([&] {
        first_stalled.wait();
        taken_over = second.run_once();
    });
    const settle::outbox_run_result late = first.run_once();
    first_recorded.count_down();
    other.join();
    CHECK(late == settle::outbox_run_result{.claimed = 1, .stale = 1});
    CHECK(taken_over == settle::outbox_run_result{.claimed = 1, .rescheduled = 1});
    const auto r = b.find(1);
    CHECK(r.status == settle::outbox_status::pending);  // the second claim's outcome stands
    CHECK(r.last_error == "broker busy");
    CHECK(r.attempts == 2);
}

TEST_CASE("a rescheduled time is the same for any relay that computes it", "[outbox]") {
    rig b;
    const settle::persisted_retry plan{
        settle::jittered{settle::exponential_backoff{1s, 2.0, 1h}, settle::jitter::full}, 5};
    memory::publisher failing(
        [](const settle::outbox_record&) { return settle::publish_result::retryable("down"); });
    settle::outbox_relay first(b.store, failing, plan, b.clock, {.owner = "relay-1"});
    settle::outbox_relay second(b.store, failing, plan, b.clock, {.owner = "relay-2"});
    for (unsigned n = 1; n <= 8; ++n) {
        b.append(n);
    }
    const auto t0 = at(b.clock.now());
    CHECK(first.run_once().rescheduled == 8);
    std::set<settle::stored_time> times;
    for (unsigned n = 1; n <= 8; ++n) {
        const auto r = b.find(n);
        const auto expected = plan.next_attempt_at(1, t0, settle::outbox_retry_seed(id_of(n)));
        REQUIRE(expected.has_value());
        CHECK(r.next_attempt_at == *expected);
        times.insert(r.next_attempt_at);
    }
    CHECK(times.size() > 4);  // jitter spreads the records out
    b.clock.advance(2s);
    const auto t1 = at(b.clock.now());
    (void)second.run_once();
    for (unsigned n = 1; n <= 8; ++n) {
        const auto r = b.find(n);
        if (r.attempts == 2) {
            CHECK(r.next_attempt_at ==
                  *plan.next_attempt_at(2, t1, settle::outbox_retry_seed(r.id)));
        }
    }
}

namespace {

struct recording_observer {
    struct seen {
        unsigned number;
        settle::outbox_outcome outcome;
        std::string reason;
        settle::stored_time next_attempt_at;
    };
    std::vector<seen>* events;
    std::vector<settle::outbox_statistics>* statistics;

    void on_outcome(const settle::outbox_event& e) {
        events->push_back(
            {number(e.record()), e.outcome(), std::string(e.reason()), e.next_attempt_at()});
    }
    void on_statistics(const settle::outbox_statistics& s) { statistics->push_back(s); }
};

}  // namespace

TEST_CASE("the observer sees every outcome and the statistics", "[outbox]") {
    rig b;
    memory::publisher publisher([](const settle::outbox_record& record) {
        switch (number(record)) {
        case 1: return settle::publish_result::delivered();
        case 2: return settle::publish_result::retryable("busy");
        default: return settle::publish_result::permanent("refused");
        }
    });
    std::vector<recording_observer::seen> events;
    std::vector<settle::outbox_statistics> statistics;
    settle::outbox_relay relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"},
                               recording_observer{&events, &statistics});
    for (unsigned n = 1; n <= 3; ++n) {
        b.append(n);
    }
    b.clock.advance(10s);
    const auto now = at(b.clock.now());
    (void)relay.run_once();
    REQUIRE(events.size() == 3);
    CHECK(events[0].number == 1);
    CHECK(events[0].outcome == settle::outbox_outcome::delivered);
    CHECK(events[0].reason.empty());
    CHECK(events[1].outcome == settle::outbox_outcome::rescheduled);
    CHECK(events[1].reason == "busy");
    CHECK(events[1].next_attempt_at == now + 1s);
    CHECK(events[2].outcome == settle::outbox_outcome::dead_lettered);
    CHECK(events[2].reason == "refused");
    REQUIRE(statistics.size() == 1);  // taken before the claim
    CHECK(statistics[0] == settle::outbox_statistics{
                               .backlog = 3, .in_flight = 0, .dead = 0, .oldest_pending_age = 10s});
    (void)relay.run_once();  // idle runs report statistics too
    REQUIRE(statistics.size() == 2);
    CHECK(statistics[1] == settle::outbox_statistics{
                               .backlog = 1, .in_flight = 0, .dead = 1, .oldest_pending_age = 10s});
    CHECK(events.size() == 3);
}

TEST_CASE("ordered records go out in order under failures and retries", "[outbox]") {
    rig b;
    std::map<std::string, std::vector<unsigned>> attempted;  // per key, every attempt
    std::map<unsigned, int> calls;
    memory::publisher publisher([&](const settle::outbox_record& record) {
        const unsigned n = number(record);
        attempted[record.ordering_key].push_back(n);
        const int call = ++calls[n];
        if (n % 3 == 0 && call < 3) {
            return settle::publish_result::retryable("flaky");
        }
        if (n % 4 == 1 && call == 1) {
            throw std::runtime_error("connection reset");
        }
        return settle::publish_result::delivered();
    });
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock,
                     {.owner = "relay-1", .batch_size = 4});
    const std::array<std::string, 3> keys{"order-a", "order-b", "order-c"};
    for (unsigned n = 1; n <= 24; ++n) {
        b.append(n, keys[n % 3]);
    }
    for (int round = 0; round < 1000 && b.statistics().backlog > 0; ++round) {
        try {
            if (relay.run_once().idle()) {
                b.clock.advance(1s);
            }
        } catch (const std::runtime_error&) {
        }
    }
    CHECK(b.statistics().backlog == 0);
    std::map<std::string, std::vector<unsigned>> delivered;
    for (const auto& r : publisher.published()) {
        delivered[r.ordering_key].push_back(number(r));
    }
    for (const auto& key : keys) {
        INFO(key);
        const auto& sent = delivered[key];
        CHECK(sent.size() == 8);
        CHECK(std::is_sorted(sent.begin(), sent.end()));
        // No record was even attempted before every older one of its key was delivered.
        CHECK(std::is_sorted(attempted[key].begin(), attempted[key].end()));
    }
}

namespace {

// Records each wait; stops the run after a number of them, and can append
// a record during one (work arriving while the relay is idle).
struct scripted_sleeper {
    settle::manual_clock* clock;
    std::stop_source* stop;
    std::size_t stop_after;
    std::function<void(std::size_t)> during;
    std::vector<std::chrono::nanoseconds> waits;

    bool sleep_for(std::chrono::nanoseconds d, const std::stop_token& token) {
        if (token.stop_requested()) {
            return false;
        }
        waits.push_back(d);
        clock->advance(std::chrono::duration_cast<settle::manual_clock::duration>(d));
        if (during) {
            during(waits.size());
        }
        if (waits.size() == stop_after) {
            stop->request_stop();
            return false;
        }
        return true;
    }
};

}  // namespace

TEST_CASE("run loops until stopped and backs off while idle", "[outbox]") {
    rig b;
    memory::publisher publisher;
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock,
                     {.owner = "relay-1", .batch_size = 2, .idle_min = 10ms, .idle_max = 50ms});
    for (unsigned n = 1; n <= 3; ++n) {
        b.append(n);
    }
    std::stop_source stop;
    scripted_sleeper sleeper{&b.clock,
                             &stop,
                             9,
                             [&](std::size_t wait) {
                                 if (wait == 4) {
                                     b.append(4);
                                 }
                             },
                             {}};
    relay.run(stop.get_token(), sleeper);
    CHECK(stop.stop_requested());
    CHECK(numbers(publisher.published()) == std::vector<unsigned>{1, 2, 3, 4});
    using ms = std::chrono::milliseconds;
    CHECK(sleeper.waits == std::vector<std::chrono::nanoseconds>{ms(10), ms(20), ms(40), ms(50),
                                                                 ms(10), ms(20), ms(40), ms(50),
                                                                 ms(50)});
}

namespace {

// A store whose database goes away: begin() fails with `failure` while
// `outages` lasts, as a SQL backend's does when its connection is lost.
struct unreachable_store : memory::outbox_table {
    using memory::outbox_table::outbox_table;
    int outages = 0;
    settle::errc failure = settle::errc::unavailable;

    transaction begin() {
        if (outages > 0) {
            --outages;
            throw settle::error(failure, "unreachable_store: the database is down");
        }
        return memory::outbox_table::begin();
    }
};

struct outage_log {
    std::vector<std::string> seen;
    void on_transient_failure(const settle::error& e) { seen.emplace_back(e.what()); }
};

}  // namespace

TEST_CASE("run rides out a lost database, backing off, and loses nothing", "[outbox]") {
    rig b;
    unreachable_store store(b.db);
    settle::outbox<unreachable_store, settle::manual_clock> outbox(store, b.clock);
    {
        auto tx = b.db.begin();
        REQUIRE(outbox.append(
            tx, settle::outbox_message{id_of(1), "topic", {}, settle::encode(1U), {}}));
        tx.commit();
    }
    memory::publisher publisher;
    settle::outbox_relay relay(store, publisher, ladder_1s_5s, b.clock,
                               {.owner = "relay-1", .idle_min = 10ms, .idle_max = 40ms},
                               outage_log{});
    store.outages = 4;
    std::stop_source stop;
    scripted_sleeper sleeper{&b.clock, &stop, 6, {}, {}};
    relay.run(stop.get_token(), sleeper);
    CHECK(relay.observer().seen.size() == 4);
    CHECK_THAT(relay.observer().seen.front(), Catch::Matchers::StartsWith("unreachable_store"));
    CHECK(numbers(publisher.published()) == std::vector<unsigned>{1});
    using ms = std::chrono::milliseconds;
    CHECK(sleeper.waits ==
          std::vector<std::chrono::nanoseconds>{ms(10), ms(20), ms(40), ms(40), ms(10), ms(20)});

    store.outages = 1;
    store.failure = settle::errc::backend_failure;
    std::stop_source again;
    CHECK_THROWS_AS(relay.run(again.get_token(), sleeper), settle::error);
    CHECK(relay.observer().seen.size() == 4);
}

TEST_CASE("run lets a publisher's unavailable propagate: only the store's is ridden out",
          "[outbox]") {
    rig b;
    b.append(1);
    memory::publisher publisher([](const settle::outbox_record&) -> settle::publish_result {
        throw settle::error(settle::errc::unavailable, "broker: connection refused");
    });
    settle::outbox_relay relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"},
                               outage_log{});
    std::stop_source stop;
    scripted_sleeper sleeper{&b.clock, &stop, 3, {}, {}};
    CHECK_THROWS_AS(relay.run(stop.get_token(), sleeper), settle::error);
    CHECK(relay.observer().seen.empty());
    CHECK(sleeper.waits.empty());
    CHECK(b.find(1).status == settle::outbox_status::pending);  // rescheduled: it may have gone out
}

TEST_CASE("run returns at once when stopped before it starts", "[outbox]") {
    rig b;
    memory::publisher publisher;
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    b.append(1);
    std::stop_source stop;
    stop.request_stop();
    settle::manual_sleeper sleeper(b.clock);
    relay.run(stop.get_token(), sleeper);
    relay.run(stop.get_token());  // the system sleeper: returns without waiting
    CHECK(publisher.attempts() == 0);
    CHECK(sleeper.sleeps() == 0);
}

TEST_CASE("the relay refuses options it cannot work with", "[outbox]") {
    rig b;
    memory::publisher publisher;
    const auto make = [&](settle::outbox_relay_options options) {
        relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, std::move(options));
    };
    CHECK_THROWS_AS(make({}), settle::error);
    CHECK_THROWS_AS(make({.owner = "r", .batch_size = 0}), settle::error);
    CHECK_THROWS_AS(make({.owner = "r", .lease = 0s}), settle::error);
    CHECK_THROWS_AS(make({.owner = "r", .idle_min = 0s}), settle::error);
    CHECK_THROWS_AS(make({.owner = "r", .idle_min = 2s, .idle_max = 1s}), settle::error);
    make({.owner = "r"});
}

TEST_CASE("the in-memory publisher keeps what it delivered in order", "[outbox]") {
    rig b;
    memory::publisher publisher([](const settle::outbox_record& record) {
        return number(record) == 2 ? settle::publish_result::retryable("later")
                                   : settle::publish_result::delivered();
    });
    relay_type relay(b.store, publisher, ladder_1s_5s, b.clock, {.owner = "relay-1"});
    for (unsigned n = 1; n <= 3; ++n) {
        b.append(n);
    }
    CHECK(relay.run_once().delivered == 2);
    CHECK(publisher.attempts() == 3);
    CHECK(publisher.size() == 2);
    CHECK(numbers(publisher.take()) == std::vector<unsigned>{1, 3});
    CHECK(publisher.size() == 0);
    b.append(4);
    CHECK(relay.run_once().delivered == 1);
    CHECK(numbers(publisher.published()) == std::vector<unsigned>{4});
    publisher.clear();
    CHECK(publisher.published().empty());
    CHECK(publisher.attempts() == 4);
}

TEST_CASE("delete_on_delivery erases a delivered record under its claim and keeps the rest",
          "[outbox]") {
    memory::database db;
    memory::outbox_table store(db, settle::outbox_retention::delete_on_delivery);
    const settle::stored_time t0 = at(start());
    auto tx = db.begin();
    for (unsigned n = 1; n <= 4; ++n) {
        settle::outbox_message m{id_of(n), "topic", n <= 2 ? "" : "key", settle::bytes(4), {}};
        REQUIRE(store.append(tx, std::move(m), t0));
    }
    const auto first = store.claim(tx, "relay-a", t0, t0 + 30s, 2);
    REQUIRE(first.size() == 2);
    // relay-a's lease ends; relay-b claims 1 and 2 again, fencing relay-a out.
    const auto second = store.claim(tx, "relay-b", t0 + 31s, t0 + 61s, 2);
    REQUIRE(second.size() == 2);
    CHECK(store.mark_delivered(tx, first[0].id, first[0].claim_token, t0 + 32s) ==
          settle::fenced_write::stale);
    CHECK(store.size(tx) == 4);  // a fenced-out relay erased nothing
    for (const auto& r : second) {
        CHECK(store.mark_delivered(tx, r.id, r.claim_token, t0 + 33s) ==
              settle::fenced_write::applied);
    }
    CHECK_FALSE(store.find(tx, id_of(1)).has_value());
    CHECK_FALSE(store.find(tx, id_of(2)).has_value());
    CHECK(store.size(tx) == 2);
    // The ordering key's first record is delivered and erased; the next is due.
    const auto keyed = store.claim(tx, "relay-b", t0 + 34s, t0 + 64s, 10);
    REQUIRE(keyed.size() == 1);
    CHECK(keyed[0].id == id_of(3));
    CHECK(store.mark_delivered(tx, keyed[0].id, keyed[0].claim_token, t0 + 35s) ==
          settle::fenced_write::applied);
    const auto last = store.claim(tx, "relay-b", t0 + 36s, t0 + 66s, 10);
    REQUIRE(last.size() == 1);
    CHECK(last[0].id == id_of(4));
    CHECK(last[0].status == settle::outbox_status::in_flight);
    tx.commit();
}
