// The conformance suites of the versioned, lease and idempotency store
// concepts, run against the Redis backend: each case under a fresh key prefix.
//
// Redis has no rollback (see settle::redis::transaction): its stores model
// settle::atomic_operations and not settle::transactional, so the suites
// leave out the cases that destroy a transaction uncommitted, and every case
// they hold passes.
#include <settle/testing/idempotency_store_suite.hpp>
#include <settle/testing/lease_store_suite.hpp>
#include <settle/testing/versioned_store_suite.hpp>

#include "redis/redis_test.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/redis.hpp>

#include <string>

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

template <class Fixture, class Suite>
void run_suite(const Suite& suite) {
    for (const auto& c : suite) {
        INFO(std::string(c.name));
        Fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

// The same suites over stores that roll back, to count their cases.
struct memory_versioned_fixture {
    settle::memory::database db;
    settle::memory::versioned_table<std::string, std::string> store{db};

    static std::string key(int i) { return "key-" + std::to_string(i); }
    static std::string value(int i) { return "value-" + std::to_string(i); }
};

struct memory_lease_fixture {
    settle::manual_clock clock;
    settle::memory::database db;
    settle::memory::lease_table<std::string> leases{db};
    settle::memory::fence_table<std::string> fences{db};

    static std::string key(int i) { return "job-" + std::to_string(i); }
};

struct memory_idempotency_fixture {
    settle::memory::database db;
    settle::memory::idempotency_table store{db};
};

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

// What the Redis stores model, as facts a template can check: each operation
// atomic, no rollback.
using redis_versioned = rd::versioned_table<std::string, std::string>;
static_assert(settle::versioned_store<redis_versioned> && !settle::transactional<redis_versioned>);
static_assert(settle::lease_store<rd::lease_table<std::string>> &&
              !settle::transactional<rd::lease_table<std::string>>);
static_assert(settle::fence_store<rd::fence_table<std::string>> &&
              !settle::transactional<rd::fence_table<std::string>>);
static_assert(settle::idempotency_store<rd::idempotency_table> &&
              !settle::transactional<rd::idempotency_table>);
static_assert(settle::transactional<settle::memory::versioned_table<int, int>>);

// The suites leave out the rollback cases for Redis, and only those.
static_assert(settle::conformance::versioned_store_suite<memory_versioned_fixture>.size() ==
              settle::conformance::versioned_store_suite<versioned_fixture>.size() + 1);
static_assert(settle::conformance::lease_store_suite<memory_lease_fixture>.size() ==
              settle::conformance::lease_store_suite<lease_fixture>.size() + 2);
static_assert(settle::conformance::idempotency_store_suite<memory_idempotency_fixture>.size() ==
              settle::conformance::idempotency_store_suite<idempotency_fixture>.size() + 1 +
                  (settle::purgeable_idempotency_store<settle::memory::idempotency_table> ? 2 : 0));
