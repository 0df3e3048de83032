// The conformance suites of the versioned, lease and idempotency store
// concepts, run against the Redis backend: each case under a fresh key prefix.
//
// Redis has no rollback (see settle::redis::transaction): the cases that
// destroy a transaction uncommitted and expect its writes gone cannot pass,
// and are run apart to show that they fail, so that a backend that gained
// rollback would be noticed.
#include <settle/testing/idempotency_store_suite.hpp>
#include <settle/testing/lease_store_suite.hpp>
#include <settle/testing/versioned_store_suite.hpp>

#include "redis/redis_test.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/stores/redis.hpp>

#include <set>
#include <string>
#include <string_view>

namespace rd = settle::redis;
using redis_test::factory;
using redis_test::unique_prefix;

namespace {

struct versioned_fixture {
    rd::connection conn{factory()};
    rd::versioned_table<std::string, std::string> store{conn, unique_prefix("vs")};

    static std::string key(int i) { return "key-" + std::to_string(i); }
    static std::string value(int i) { return "value-" + std::to_string(i); }
};

struct lease_fixture {
    settle::manual_clock clock;
    rd::connection conn{factory()};
    rd::lease_table<std::string> leases{conn, unique_prefix("lease")};
    rd::fence_table<std::string> fences{conn, unique_prefix("fence")};

    static std::string key(int i) { return "job-" + std::to_string(i); }
};

struct idempotency_fixture {
    rd::connection conn{factory()};
    rd::idempotency_table store{conn, unique_prefix("idem")};
};

// The cases that need a transaction destroyed uncommitted to leave nothing.
const std::set<std::string_view> needs_rollback = {
    "writes roll back with an uncommitted transaction",
    "a rolled back transaction leaves no write behind",
    "a rolled back grant holds nothing",
    "a rolled back admit records nothing",
};

template <class Fixture, class Suite>
void run_suite(const Suite& suite) {
    for (const auto& c : suite) {
        INFO(std::string(c.name));
        Fixture fixture;
        if (needs_rollback.count(c.name) != 0) {
            CHECK_THROWS_AS(c.run(fixture), settle::conformance::failure);
        } else {
            CHECK_NOTHROW(c.run(fixture));
        }
    }
}

}  // namespace

TEST_CASE("redis::versioned_table passes the versioned store conformance suite",
          "[redis][version]") {
    run_suite<versioned_fixture>(settle::conformance::versioned_store_suite<versioned_fixture>);
}

TEST_CASE("redis lease and fence tables pass the lease store conformance suite",
          "[redis][version]") {
    run_suite<lease_fixture>(settle::conformance::lease_store_suite<lease_fixture>);
}

TEST_CASE("redis::idempotency_table passes the idempotency store conformance suite",
          "[redis][idempotency]") {
    run_suite<idempotency_fixture>(
        settle::conformance::idempotency_store_suite<idempotency_fixture>);
}
