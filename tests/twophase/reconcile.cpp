// Reconciliation: records watched from the transaction that made them
// uncertain are checked against a status source once late, resolved once by
// its answer, and escalated after a bounded number of unknown answers.
#include <settle/reconciler.hpp>

#include "settle_test.hpp"

#include <settle/stores/memory.hpp>
#include <settle/testing/reconcile_store_suite.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

// A payment provider's query API: answers what it is told to, per order,
// and counts the questions.
struct provider {
    std::map<std::string, settle::checked_status> answers;
    std::vector<std::string> asked;
    bool fail = false;

    settle::checked_status status(const settle::uncertain_record& r) {
        asked.push_back(r.id);
        if (fail) {
            throw std::runtime_error("provider unreachable");
        }
        const auto it = answers.find(r.id);
        return it == answers.end() ? settle::checked_status::unknown : it->second;
    }
};

struct escalations {
    std::vector<std::pair<std::string, std::string>>* seen;
    void on_escalated(const settle::uncertain_record& r, std::string_view reason) {
        seen->emplace_back(r.id, std::string(reason));
    }
};

struct shop {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 7 / 1)};
    memory::database db;
    memory::reconcile_table store{db};
    memory::table<std::string, std::string> orders{db};  // order -> waiting, paid, cancelled
    std::vector<std::pair<std::string, std::string>> escalated;
    settle::reconciler<memory::reconcile_table, settle::ladder<3>, settle::manual_clock,
                       escalations>
        payments{store,
                 settle::persisted_retry{settle::ladder{1min, 5min, 30min}, 3},
                 clock,
                 {.threshold = 10min, .batch_size = 8},
                 escalations{&escalated}};
    provider source;
    std::map<std::string, int> resolved;  // order -> times resolved

    void place(const std::string& order) {
        db.transact([&](auto& tx) {
            orders.put(tx, order, "waiting");
            REQUIRE(payments.watch(tx, order));
        });
    }
    settle::reconcile_run_result run() {
        return payments.run_once(
            source, [&](memory::transaction& tx, const settle::uncertain_record& r,
                        settle::checked_status s) {
                ++resolved[r.id];
                orders.put(tx, r.id, s == settle::checked_status::committed ? "paid" : "cancelled");
            });
    }
    std::string state(const std::string& order) {
        return db.transact([&](auto& tx) { return *orders.find(tx, order); });
    }
};

struct memory_fixture {
    memory::database db;
    memory::reconcile_table store{db};
};

}  // namespace

TEST_CASE("memory::reconcile_table passes the reconcile store conformance suite", "[twophase]") {
    for (const auto& c : settle::conformance::reconcile_store_suite<memory_fixture>) {
        INFO(std::string(c.name));
        memory_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("reconciler: records are checked only once uncertain longer than the threshold",
          "[twophase]") {
    shop s;
    s.place("o1");
    CHECK(s.run() == settle::reconcile_run_result{});
    s.clock.advance(10min);
    CHECK(s.run() == settle::reconcile_run_result{});  // exactly the threshold: not yet
    s.clock.advance(1us);
    s.source.answers["o1"] = settle::checked_status::committed;
    CHECK(s.run() == settle::reconcile_run_result{.checked = 1, .committed = 1});
    CHECK(s.state("o1") == "paid");
    s.clock.advance(24h);
    CHECK(s.run() == settle::reconcile_run_result{});  // resolved: never asked again
    CHECK(s.source.asked.size() == 1);
    CHECK(s.resolved["o1"] == 1);
}

TEST_CASE("reconciler: a rolled back answer resolves the record as undone", "[twophase]") {
    shop s;
    s.place("o1");
    s.place("o2");
    s.source.answers["o1"] = settle::checked_status::rolled_back;
    s.source.answers["o2"] = settle::checked_status::committed;
    s.clock.advance(11min);
    CHECK(s.run() == settle::reconcile_run_result{.checked = 2, .committed = 1, .rolled_back = 1});
    CHECK(s.state("o1") == "cancelled");
    CHECK(s.state("o2") == "paid");
}

TEST_CASE("reconciler: unknown answers are checked on the ladder, then escalated once",
          "[twophase]") {
    shop s;
    s.place("o1");
    s.clock.advance(11min);
    CHECK(s.run().unknown == 1);  // first unknown: next check 1 min later
    s.clock.advance(1min - 1us);
    CHECK(s.run().checked == 0);
    s.clock.advance(1us);
    CHECK(s.run().unknown == 1);  // second: 5 min later
    s.clock.advance(5min);
    const settle::reconcile_run_result third = s.run();
    CHECK(third == settle::reconcile_run_result{.checked = 1, .escalated = 1});
    REQUIRE(s.escalated.size() == 1);
    CHECK(s.escalated[0].first == "o1");
    CHECK(s.escalated[0].second == "status still unknown after 3 checks");
    const auto aside = s.db.transact([&](auto& tx) { return s.store.escalated(tx); });
    REQUIRE(aside.size() == 1);
    CHECK(aside[0].record.unknown_answers == 2);  // as stored before the last answer
    s.clock.advance(30 * 24h);
    CHECK(s.run() == settle::reconcile_run_result{});  // never checked again
    CHECK(s.source.asked.size() == 3);
    CHECK(s.state("o1") == "waiting");  // left for an operator
    CHECK(s.resolved.empty());
}

TEST_CASE("reconciler: a record forgotten when its outcome arrives is not checked or resolved",
          "[twophase]") {
    shop s;
    s.place("o1");
    s.place("o2");
    s.db.transact([&](auto& tx) { CHECK(s.payments.forget(tx, "o1")); });  // its callback came
    s.clock.advance(11min);
    // o2's callback arrives while the provider is being asked about it.
    struct racing_provider {
        shop* s;
        settle::checked_status status(const settle::uncertain_record& r) {
            s->db.transact([&](auto& tx) { CHECK(s->payments.forget(tx, r.id)); });
            return settle::checked_status::committed;
        }
    } racing{&s};
    const settle::reconcile_run_result r =
        s.payments.run_once(racing, [&](auto&, const settle::uncertain_record& rec,
                                        settle::checked_status) { ++s.resolved[rec.id]; });
    CHECK(r == settle::reconcile_run_result{.checked = 1, .gone = 1});
    CHECK(s.resolved.empty());
}

TEST_CASE("reconciler: a failing source or resolution leaves the record as it was", "[twophase]") {
    shop s;
    s.place("o1");
    s.clock.advance(11min);
    s.source.fail = true;
    CHECK_THROWS_AS(s.run(), std::runtime_error);
    s.source.fail = false;
    s.source.answers["o1"] = settle::checked_status::committed;
    CHECK_THROWS_AS(
        s.payments.run_once(s.source,
                            [](auto&, const settle::uncertain_record&, settle::checked_status) {
                                throw std::runtime_error("ledger down");
                            }),
        std::runtime_error);
    CHECK(s.run() == settle::reconcile_run_result{.checked = 1, .committed = 1});
    CHECK(s.resolved["o1"] == 1);
}

TEST_CASE("reconciler: bad input is refused and a record is watched once", "[twophase]") {
    shop s;
    auto tx = s.db.begin();
    CHECK_THROWS_AS(s.payments.watch(tx, ""), settle::error);
    CHECK_THROWS_AS(s.payments.forget(tx, ""), settle::error);
    CHECK(s.payments.watch(tx, "o1"));
    CHECK_FALSE(s.payments.watch(tx, "o1"));
    CHECK_FALSE(s.payments.forget(tx, "o2"));
    tx.commit();
    const settle::persisted_retry plan{settle::ladder{1min}, 2};
    CHECK_THROWS_AS(settle::reconciler(s.store, plan, s.clock, {.threshold = -1us}), settle::error);
    CHECK_THROWS_AS(settle::reconciler(s.store, plan, s.clock, {.batch_size = 0}), settle::error);
    CHECK(settle::to_string(settle::checked_status::unknown) == "unknown");
}
