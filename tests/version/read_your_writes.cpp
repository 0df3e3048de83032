#include <settle/optimistic.hpp>
#include <settle/stores/memory_versioned.hpp>
#include <settle/transaction.hpp>

#include "settle_test.hpp"

#include <chrono>
#include <cstddef>
#include <exception>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace memory = settle::memory;
using namespace std::chrono_literals;
using settle::read_outcome;
using settle::version_stamp;

namespace {

// A primary's writes and a replica that applies them later, in order. Any
// type with begin() and load() can be read from: this one has no database.
struct lagging_replica {
    using key_type = std::string;
    using value_type = std::string;
    struct transaction {
        void commit() {}
    };

    std::vector<std::pair<std::string, settle::versioned<std::string>>> log;  // the primary's
    std::size_t applied = 0;
    std::map<std::string, settle::versioned<std::string>> rows;
    int reads = 0;
    int failures_left = 0;
    std::exception_ptr failure =
        std::make_exception_ptr(settle::error(settle::errc::unavailable, "replica unreachable"));

    version_stamp write(const std::string& key, const std::string& value) {
        const version_stamp stamp(log.size() + 1);
        log.emplace_back(key, settle::versioned<std::string>{value, stamp});
        return stamp;
    }
    void catch_up(std::size_t entries) {
        for (; entries > 0 && applied < log.size(); --entries, ++applied) {
            rows.insert_or_assign(log[applied].first, log[applied].second);
        }
    }

    transaction begin() { return {}; }
    std::optional<settle::versioned<std::string>> load(transaction&, const std::string& key) {
        ++reads;
        if (failures_left > 0) {
            --failures_left;
            std::rethrow_exception(failure);
        }
        const auto it = rows.find(key);
        return it == rows.end() ? std::nullopt : std::optional(it->second);
    }
};

// Time passes while the reader waits; the replica applies `per_wait` more
// of the log each time.
struct replicating_sleeper {
    settle::manual_clock* clock;
    lagging_replica* replica;
    std::size_t per_wait;

    bool sleep_for(std::chrono::nanoseconds d, std::stop_token) {
        clock->advance(std::chrono::duration_cast<settle::manual_clock::duration>(d));
        replica->catch_up(per_wait);
        return true;
    }
};

const auto patient = settle::retry_policy{settle::ladder{10ms, 20ms, 40ms}, 10}.with_deadline(1s);

}  // namespace

TEST_CASE("a replica that has caught up is read at once", "[version]") {
    lagging_replica replica;
    const version_stamp mine = replica.write("order-7", "paid");
    replica.catch_up(1);
    settle::manual_clock clock;
    replicating_sleeper sleeper{&clock, &replica, 1};
    const auto r = settle::read_at_least(replica, "order-7", mine, patient, clock, sleeper);
    CHECK(r.outcome() == read_outcome::fresh);
    CHECK(r.is_fresh());
    REQUIRE(r.seen().has_value());
    CHECK(r.seen()->value == "paid");
    CHECK(r.seen()->stamp == mine);
    CHECK(r.attempts() == 1);
    CHECK(r.reason() == settle::retry_outcome::succeeded);
}

TEST_CASE("a lagging replica is read again until it reaches the writer's stamp", "[version]") {
    lagging_replica replica;
    (void)replica.write("order-7", "created");
    replica.catch_up(1);
    (void)replica.write("order-8", "created");
    (void)replica.write("order-7", "awaiting payment");
    const version_stamp mine = replica.write("order-7", "paid");
    settle::manual_clock clock;
    replicating_sleeper sleeper{&clock, &replica, 1};
    const auto r = settle::read_at_least(replica, "order-7", mine, patient, clock, sleeper);
    CHECK(r.outcome() == read_outcome::fresh);
    CHECK(r.seen() == std::optional(settle::versioned<std::string>{"paid", mine}));
    CHECK(r.attempts() == 4);
    CHECK(clock.now().time_since_epoch() == 10ms + 20ms + 40ms);
}

TEST_CASE("a newer version than asked for is fresh", "[version]") {
    lagging_replica replica;
    const version_stamp mine = replica.write("order-7", "paid");
    (void)replica.write("order-7", "shipped");  // someone else's, later
    replica.catch_up(2);
    settle::manual_clock clock;
    replicating_sleeper sleeper{&clock, &replica, 0};
    const auto r = settle::read_at_least(replica, "order-7", mine, patient, clock, sleeper);
    CHECK(r.is_fresh());
    CHECK(r.seen()->value == "shipped");
    CHECK(r.seen()->stamp > mine);
}

TEST_CASE("a replica still behind at the deadline is reported stale", "[version]") {
    lagging_replica replica;
    (void)replica.write("order-7", "created");
    replica.catch_up(1);
    const version_stamp mine = replica.write("order-7", "paid");
    settle::manual_clock clock;
    replicating_sleeper stuck{&clock, &replica, 0};
    const auto policy =
        settle::retry_policy{settle::ladder{10ms, 20ms, 40ms}, 100}.with_deadline(100ms);
    const auto r = settle::read_at_least(replica, "order-7", mine, policy, clock, stuck);
    CHECK(r.outcome() == read_outcome::stale);
    CHECK_FALSE(r.is_fresh());
    CHECK(r.reason() == settle::retry_outcome::deadline);
    REQUIRE(r.seen().has_value());
    CHECK(r.seen()->value == "created");  // old data, reported as old
    CHECK(r.seen()->stamp < mine);
    CHECK(r.attempts() == 4);  // after waits of 10, 20 and 40ms; the next 40ms would pass 100ms
}

TEST_CASE("a key the replica has not received yet counts as behind", "[version]") {
    lagging_replica replica;
    const version_stamp mine = replica.write("order-7", "created");
    settle::manual_clock clock;
    replicating_sleeper stuck{&clock, &replica, 0};
    const auto give_up = settle::retry_policy{settle::constant_backoff{5ms}, 3};
    const auto stale = settle::read_at_least(replica, "order-7", mine, give_up, clock, stuck);
    CHECK(stale.outcome() == read_outcome::stale);
    CHECK(stale.reason() == settle::retry_outcome::exhausted);
    CHECK_FALSE(stale.seen().has_value());
    CHECK(stale.attempts() == 3);

    replicating_sleeper moving{&clock, &replica, 1};
    const auto fresh = settle::read_at_least(replica, "order-7", mine, give_up, clock, moving);
    CHECK(fresh.is_fresh());
    CHECK(fresh.attempts() == 2);
}

TEST_CASE("read failures are retried and the last one propagates", "[version]") {
    lagging_replica replica;
    const version_stamp mine = replica.write("order-7", "paid");
    replica.catch_up(1);
    settle::manual_clock clock;
    replicating_sleeper sleeper{&clock, &replica, 0};

    replica.failures_left = 2;
    const auto r = settle::read_at_least(replica, "order-7", mine, patient, clock, sleeper);
    CHECK(r.is_fresh());
    CHECK(r.attempts() == 3);

    replica.failures_left = 100;
    CHECK_THROWS_AS(settle::read_at_least(replica, "order-7", mine, patient, clock, sleeper),
                    settle::error);

    replica.failures_left = 1;
    replica.reads = 0;
    const auto no_retry_on_errors =
        patient.retry_if([](const std::exception_ptr&) { return false; });
    CHECK_THROWS_AS(
        settle::read_at_least(replica, "order-7", mine, no_retry_on_errors, clock, sleeper),
        settle::error);
    CHECK(replica.reads == 1);
}

TEST_CASE("a read that fails with a bug is not retried", "[version]") {
    lagging_replica replica;
    const version_stamp mine = replica.write("order-7", "paid");
    replica.catch_up(1);
    settle::manual_clock clock;
    replicating_sleeper sleeper{&clock, &replica, 0};
    for (const std::exception_ptr& bug :
         {std::make_exception_ptr(std::logic_error("bug")),
          std::make_exception_ptr(settle::error(settle::errc::invalid_argument, "x")),
          std::make_exception_ptr(settle::error(settle::errc::malformed_input, "x")),
          std::make_exception_ptr(settle::error(settle::errc::decode_failed, "x"))}) {
        replica.failure = bug;
        replica.failures_left = 1;
        replica.reads = 0;
        CHECK_THROWS(settle::read_at_least(replica, "order-7", mine, patient, clock, sleeper));
        CHECK(replica.reads == 1);
    }
}

TEST_CASE("read your writes through the in-memory versioned table", "[version]") {
    memory::database db;
    memory::versioned_table<std::string, std::string> orders(db);
    const version_stamp mine = db.transact(
        [&](memory::transaction& tx) { return orders.insert(tx, "order-7", "created").stamp(); });
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    std::mt19937 random(1);
    const auto jittery = settle::retry_policy{
        settle::jittered{settle::constant_backoff{10ms}, settle::jitter::equal}, 3};
    const auto r = settle::read_at_least(orders, "order-7", mine, jittery, clock, sleeper, random);
    CHECK(r.is_fresh());
    CHECK(r.seen()->value == "created");
    const auto ahead =
        settle::read_at_least(orders, "order-7", mine.next(), jittery, clock, sleeper, random);
    CHECK(ahead.outcome() == read_outcome::stale);
    CHECK(ahead.attempts() == 3);
    CHECK(sleeper.sleeps() == 2);
}

TEST_CASE("in the caller's transaction repeated reads see what committed meanwhile", "[version]") {
    // Each of the replica's reads sees what it has applied so far, as a read
    // committed transaction on a hot standby does.
    lagging_replica replica;
    (void)replica.write("order-7", "created");
    replica.catch_up(1);
    const version_stamp mine = replica.write("order-7", "paid");
    settle::manual_clock clock;
    replicating_sleeper sleeper{&clock, &replica, 1};
    lagging_replica::transaction tx = replica.begin();
    const auto r = settle::read_at_least(replica, tx, "order-7", mine, patient, clock, sleeper);
    CHECK(r.is_fresh());
    CHECK(r.seen() == std::optional(settle::versioned<std::string>{"paid", mine}));
    CHECK(r.attempts() == 2);
}

TEST_CASE("in the caller's transaction a failed read propagates at once", "[version]") {
    lagging_replica replica;
    const version_stamp mine = replica.write("order-7", "paid");
    replica.catch_up(1);
    settle::manual_clock clock;
    replicating_sleeper sleeper{&clock, &replica, 0};
    replica.failures_left = 1;  // unavailable: the own-transaction form would retry it
    lagging_replica::transaction tx = replica.begin();
    CHECK_THROWS_AS(settle::read_at_least(replica, tx, "order-7", mine, patient, clock, sleeper),
                    settle::error);
    CHECK(replica.reads == 1);
}

TEST_CASE("in an in-memory transaction a read that is behind stays behind", "[version]") {
    memory::database db;
    memory::versioned_table<std::string, std::string> orders(db);
    const version_stamp mine = db.transact(
        [&](memory::transaction& tx) { return orders.insert(tx, "order-7", "created").stamp(); });
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    std::mt19937 random(1);
    const auto jittery = settle::retry_policy{
        settle::jittered{settle::constant_backoff{10ms}, settle::jitter::equal}, 3};
    settle::in_transaction(orders, [&](memory::transaction& tx) {
        const auto r = settle::read_at_least(orders, tx, "order-7", mine,
                                             jittery.with_max_attempts(1), clock, sleeper, random);
        CHECK(r.is_fresh());
        CHECK(r.attempts() == 1);
        // No other transaction can commit while this one is open: every read sees the first's.
        const auto ahead = settle::read_at_least(orders, tx, "order-7", mine.next(), jittery, clock,
                                                 sleeper, random);
        CHECK(ahead.outcome() == read_outcome::stale);
        CHECK(ahead.reason() == settle::retry_outcome::exhausted);
        CHECK(ahead.seen() == std::optional(settle::versioned<std::string>{"created", mine}));
        CHECK(ahead.attempts() == 3);
    });
}

TEST_CASE("read outcomes have stable names", "[version]") {
    STATIC_REQUIRE(settle::to_string(read_outcome::fresh) == "fresh");
    STATIC_REQUIRE(settle::to_string(read_outcome::stale) == "stale");
}
