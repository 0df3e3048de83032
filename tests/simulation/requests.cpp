// The request simulation: an idempotent request handler on the idempotency
// guard passes thousands of schedules; handlers that ignore what the guard
// answered are found within a bounded number of seeds and shrunk.
#include <settle/testing/simulation.hpp>

#include "settle_test.hpp"

#include <settle/idempotency.hpp>
#include <settle/sha256.hpp>
#include <settle/stores/memory.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <string>

namespace memory = settle::memory;
namespace sim = settle::testing;

namespace {

// A payments service: each request charges its account once. The charge and
// the stored response commit in one transaction (the guard's claim API).
struct payments {
    memory::database db;
    memory::idempotency_table requests{db};
    memory::table<std::string, std::int64_t> charged{db};

    memory::idempotency_table& store() { return requests; }

    void charge(memory::transaction& tx, const sim::message& r) {
        const std::int64_t* old = charged.find(tx, r.key);
        charged.put(tx, r.key, (old ? *old : 0) + std::stoll(r.payload));
    }

    bool handle(const sim::message& r, auto& guard, auto& store) {
        const settle::idempotency_scope scope{r.key, "payments.charge"};
        const settle::idempotency_key key = settle::idempotency_key::parse(r.id).value();
        const auto claim = settle::in_transaction(store, [&](auto& tx) {
            return guard.claim(tx, scope, key, settle::sha256::hash(r.payload));
        });
        if (!claim) {
            return claim.is_replay();  // in progress: retry later
        }
        auto tx = store.begin();
        charge(tx, r);
        if (guard.complete(tx, *claim.claim(), std::string("charged")) ==
            settle::fenced_write::stale) {
            return false;  // taken over: the charge rolls back with tx
        }
        tx.commit();
        return true;
    }

    bool check(memory::transaction& tx, std::span<const sim::message> sent) const {
        std::map<std::string, std::int64_t> expected;
        for (const sim::message& r : sent) {
            expected[r.key] += std::stoll(r.payload);
        }
        for (const auto& [account, sum] : expected) {
            const std::int64_t* got = charged.find(tx, account);
            if (!got || *got != sum) {
                return false;
            }
        }
        return charged.size(tx) == expected.size();
    }
};

// Planted: charges whatever the claim answered (a replay, a request in progress).
struct ignores_the_claim : payments {
    bool handle(const sim::message& r, auto& guard, auto& store) {
        const settle::idempotency_scope scope{r.key, "payments.charge"};
        const settle::idempotency_key key = settle::idempotency_key::parse(r.id).value();
        const auto claim = settle::in_transaction(store, [&](auto& tx) {
            return guard.claim(tx, scope, key, settle::sha256::hash(r.payload));
        });
        auto tx = store.begin();
        charge(tx, r);
        if (claim) {
            (void)guard.complete(tx, *claim.claim(), std::string("charged"));
        }
        tx.commit();
        return true;
    }
};

// Planted: commits the charge even when the completion was stale (the lease
// ended and another worker took the key over).
struct ignores_a_stale_completion : payments {
    bool handle(const sim::message& r, auto& guard, auto& store) {
        const settle::idempotency_scope scope{r.key, "payments.charge"};
        const settle::idempotency_key key = settle::idempotency_key::parse(r.id).value();
        const auto claim = settle::in_transaction(store, [&](auto& tx) {
            return guard.claim(tx, scope, key, settle::sha256::hash(r.payload));
        });
        if (!claim) {
            return claim.is_replay();
        }
        auto tx = store.begin();
        charge(tx, r);
        (void)guard.complete(tx, *claim.claim(), std::string("charged"));
        tx.commit();
        return true;
    }
};

}  // namespace

TEST_CASE("a correct request handler passes thousands of schedules, reaching every fault point") {
    const sim::simulation_report report =
        sim::simulate_requests({.seeds = 2000}, [] { return payments{}; });
    INFO(to_string(report));
    CHECK(report.passed());
    CHECK(report.schedules == 2000);
    for (const sim::fault_point point : sim::all_fault_points) {
        CHECK((report.reached(point) > 0) == (point != sim::fault_point::publish_failure));
    }
}

TEST_CASE("a handler that ignores the claim's outcome is found and shrunk") {
    const sim::simulation_report report =
        sim::simulate_requests({.seeds = 200}, [] { return ignores_the_claim{}; });
    INFO(to_string(report));
    REQUIRE(report.failure);
    CHECK(report.failure->steps <= 3);
    CHECK(report.failure->steps < report.failure->original_steps);
}

TEST_CASE("a handler that commits after a stale completion is found through a lease expiry") {
    const sim::simulation_report report =
        sim::simulate_requests({.seeds = 200}, [] { return ignores_a_stale_completion{}; });
    INFO(to_string(report));
    REQUIRE(report.failure);
    CHECK(report.failure->steps <= 3);
    bool lease_ended = false;
    for (const std::string& line : report.failure->timeline) {
        lease_ended = lease_ended || line.find("its lease ends") != std::string::npos;
    }
    CHECK(lease_ended);
}
