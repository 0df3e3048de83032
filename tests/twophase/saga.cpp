// Sagas with recovery points on the in-memory store: the conformance suites,
// forward completion, compensation in reverse, attempts on a ladder, a crash
// at every recovery point, two recoverers racing in threads, and the purge of
// ended sagas.
#include <settle/saga.hpp>
#include <settle/saga_coordinator.hpp>

#include "settle_test.hpp"

#include <settle/stores/memory.hpp>
#include <settle/testing/saga_store_suite.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

struct memory_fixture {
    memory::database db;
    memory::saga_table store{db};
};

// A saga store that dies (throws, as a lost connection does) on its n-th
// update: the step before it ran, its recovery point was never written.
struct crashing_store {
    using transaction = memory::transaction;
    memory::saga_table* inner;
    int crash_at = -1;
    int updates = 0;

    transaction begin() { return inner->begin(); }
    bool create(transaction& tx, std::string_view id, std::string_view type, std::string_view data,
                settle::stored_time next_run_at) {
        return inner->create(tx, id, type, data, next_run_at);
    }
    std::optional<settle::saga_record> load(transaction& tx, std::string_view id) {
        return inner->load(tx, id);
    }
    settle::fenced_write update(transaction& tx, const settle::saga_record& record) {
        if (updates++ == crash_at) {
            throw settle::error(settle::errc::unavailable, "the coordinator died");
        }
        return inner->update(tx, record);
    }
    std::vector<settle::saga_record> due(transaction& tx, std::string_view type,
                                         settle::stored_time now, std::size_t limit) {
        return inner->due(tx, type, now, limit);
    }
};

// Three services the saga calls: each step takes effect once per saga (its
// effect is keyed by saga and step, as an idempotent service does), and its
// compensation removes it. Every call is logged.
struct services {
    std::mutex mutex;
    std::map<std::pair<std::string, std::uint32_t>, bool> applied;
    std::vector<std::string> log;  // "+1" an action of step 1, "-1" a compensation
    std::map<std::pair<std::string, std::uint32_t>, int> compensations;
    std::map<std::pair<std::string, std::uint32_t>, int> actions;
    // step -> failures still to throw, and whether they are for good
    std::map<std::uint32_t, int> transient;
    std::optional<std::uint32_t> refused;  // this step fails for good
    std::map<std::uint32_t, int> compensation_failures;

    settle::saga_step step(std::uint32_t index) {
        return {"step " + std::to_string(index), [this](const settle::saga_call& c) { act(c); },
                [this](const settle::saga_call& c) { undo(c); }};
    }
    void act(const settle::saga_call& c) {
        const std::lock_guard lock(mutex);
        log.push_back("+" + std::to_string(c.step));
        ++actions[{std::string(c.id), c.step}];
        if (refused == c.step) {
            throw std::domain_error("refused");
        }
        if (transient[c.step] > 0) {
            --transient[c.step];
            throw std::runtime_error("time-out");
        }
        applied[{std::string(c.id), c.step}] = true;
    }
    void undo(const settle::saga_call& c) {
        const std::lock_guard lock(mutex);
        log.push_back("-" + std::to_string(c.step));
        ++compensations[{std::string(c.id), c.step}];
        if (compensation_failures[c.step] > 0) {
            --compensation_failures[c.step];
            throw std::runtime_error("time-out");
        }
        applied.erase({std::string(c.id), c.step});
    }
    int applied_steps(const std::string& id) {
        int n = 0;
        for (const auto& [key, on] : applied) {
            n += key.first == id && on ? 1 : 0;
        }
        return n;
    }
};

template <class Store = memory::saga_table>
struct shop {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 9 / 1)};
    memory::database db;
    memory::saga_table table{db};
    memory::table<std::string, std::string> orders{db};
    crashing_store store{&table};  // used when Store is crashing_store
    services svc;
    settle::saga_coordinator<Store, settle::ladder<2>, settle::manual_clock> sagas{
        [this]() -> Store& {
            if constexpr (std::same_as<Store, crashing_store>) {
                return store;
            } else {
                return table;
            }
        }(),
        {"order", {svc.step(0), svc.step(1), svc.step(2)}},
        settle::persisted_retry{settle::ladder{1s, 10s}, 3},
        clock,
        {.lease = 30s, .batch_size = 4}};

    void place(const std::string& id) {
        db.transact([&](auto& tx) {
            orders.put(tx, id, "placed");
            REQUIRE(sagas.start(tx, id, "sku-1"));
        });
    }
    settle::saga_record record(const std::string& id) {
        return *db.transact([&](auto& tx) { return table.load(tx, id); });
    }
};

}  // namespace

TEST_CASE("memory::saga_table passes the saga store conformance suite", "[twophase]") {
    for (const auto& c : settle::conformance::saga_store_suite<memory_fixture>) {
        INFO(std::string(c.name));
        memory_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
    for (const auto& c : settle::conformance::saga_purge_suite<memory_fixture>) {
        INFO(std::string(c.name));
        memory_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("saga: the steps run forward, in order, once each, to completed", "[twophase]") {
    shop<> s;
    s.place("o1");
    const settle::saga_result r = s.sagas.run("o1");
    CHECK(r.is_completed());
    CHECK(bool(r));
    CHECK(s.svc.log == std::vector<std::string>{"+0", "+1", "+2"});
    const settle::saga_record rec = s.record("o1");
    CHECK(rec.status == settle::saga_status::completed);
    CHECK(rec.step == 3);
    CHECK(rec.data == "sku-1");
    CHECK(s.sagas.run("o1").is_completed());  // an ended saga answers how it ended
    CHECK(s.svc.log.size() == 3);
}

TEST_CASE("saga: a step that fails for good turns it back, compensated last first", "[twophase]") {
    shop<> s;
    s.svc.refused = 2;
    s.place("o1");
    const settle::saga_result r = s.sagas.run("o1");
    CHECK(r.is_compensated());
    // the failed step is compensated too: its attempt may have taken effect
    CHECK(s.svc.log == std::vector<std::string>{"+0", "+1", "+2", "-2", "-1", "-0"});
    CHECK(s.svc.applied_steps("o1") == 0);
    const settle::saga_record rec = s.record("o1");
    CHECK(rec.status == settle::saga_status::compensated);
    CHECK(rec.step == 0);
    CHECK(rec.last_error == "step `step 2`: refused");
}

TEST_CASE("saga: a failed attempt waits on the ladder, and recovery runs it when due",
          "[twophase]") {
    shop<> s;
    s.svc.transient[1] = 2;
    s.place("o1");
    CHECK(s.sagas.run("o1").is_waiting());
    CHECK(s.sagas.recover() == settle::saga_recover_result{});
    CHECK(s.sagas.run("o1").is_waiting());  // not due: run does not jump the ladder
    s.clock.advance(1s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{.picked = 1, .waiting = 1});
    s.clock.advance(9s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{});
    s.clock.advance(1s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{.picked = 1, .completed = 1});
    CHECK(s.svc.log == std::vector<std::string>{"+0", "+1", "+1", "+1", "+2"});
    CHECK(s.record("o1").attempts == 0);
}

TEST_CASE("saga: once its attempts are spent, a step turns the saga back, never forward again",
          "[twophase]") {
    shop<> s;
    s.svc.transient[1] = 3;  // as many failures as attempts
    s.place("o1");
    CHECK(s.sagas.run("o1").is_waiting());
    s.clock.advance(1s);
    CHECK(s.sagas.recover().waiting == 1);
    s.clock.advance(10s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{.picked = 1, .compensated = 1});
    CHECK(s.svc.log == std::vector<std::string>{"+0", "+1", "+1", "+1", "-1", "-0"});
    s.clock.advance(1h);
    CHECK(s.sagas.recover() == settle::saga_recover_result{});
    CHECK(s.sagas.run("o1").is_compensated());
    CHECK(s.svc.log.size() == 6);
}

TEST_CASE("saga: a compensation that keeps failing is retried, then set aside as failed",
          "[twophase]") {
    shop<> s;
    s.svc.refused = 1;
    s.svc.compensation_failures[0] = 3;
    s.place("o1");
    CHECK(s.sagas.run("o1").is_waiting());  // -1 done, -0 failed once
    s.clock.advance(1s);
    CHECK(s.sagas.recover().waiting == 1);
    s.clock.advance(10s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{.picked = 1, .failed = 1});
    CHECK(s.svc.log == std::vector<std::string>{"+0", "+1", "-1", "-0", "-0", "-0"});
    const settle::saga_record rec = s.record("o1");
    CHECK(rec.status == settle::saga_status::failed);
    CHECK(rec.step == 1);  // step 0 is still to undo, by an operator
    CHECK(rec.last_error == "compensation of `step 0`: time-out");
    s.clock.advance(1h);
    CHECK(s.sagas.recover() == settle::saga_recover_result{});
}

TEST_CASE("saga: a saga held by its coordinator is not taken up before its lease ends",
          "[twophase]") {
    shop<crashing_store> s;
    s.place("o1");
    s.store.crash_at = 1;  // the claim is written; the first step's recovery point is not
    CHECK_THROWS_AS(s.sagas.run("o1"), settle::error);
    CHECK(s.svc.log == std::vector<std::string>{"+0"});
    s.clock.advance(29s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{});
    CHECK(s.sagas.run("o1").is_stale());
    s.clock.advance(1s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{.picked = 1, .completed = 1});
    // step 0 ran again (its recovery point was lost); the service applied it once
    CHECK(s.svc.log == std::vector<std::string>{"+0", "+0", "+1", "+2"});
    CHECK(s.svc.applied_steps("o1") == 3);
}

TEST_CASE("saga: a crash at any recovery point is finished by recovery, one way only",
          "[twophase]") {
    for (const bool refuse : {false, true}) {
        int crash_points = 0;
        for (int crash_at = 0;; ++crash_at) {
            shop<crashing_store> s;
            if (refuse) {
                s.svc.refused = 2;
            }
            s.place("o1");
            s.store.crash_at = crash_at;
            bool crashed = false;
            try {
                (void)s.sagas.run("o1");
            } catch (const settle::error&) {
                crashed = true;
            }
            if (!crashed) {
                break;  // past the last recovery point
            }
            ++crash_points;
            s.clock.advance(30s);
            const settle::saga_recover_result r = s.sagas.recover();
            INFO("refuse " << refuse << ", crash at update " << crash_at);
            CHECK(r.picked == 1);
            const settle::saga_record rec = s.record("o1");
            // never forward after backward
            bool backward = false;
            for (const std::string& call : s.svc.log) {
                backward = backward || call[0] == '-';
                CHECK(!(backward && call[0] == '+'));
            }
            if (refuse) {
                CHECK(rec.status == settle::saga_status::compensated);
                CHECK(s.svc.applied_steps("o1") == 0);
                for (const auto& [key, n] : s.svc.compensations) {
                    CHECK(n <= 2);  // a crash after one call repeats only that one
                }
            } else {
                CHECK(rec.status == settle::saga_status::completed);
                CHECK(s.svc.applied_steps("o1") == 3);
            }
        }
        std::printf("saga crash points: %d (%s)\n", crash_points,
                    refuse ? "turned back" : "forward");
        CHECK(crash_points == (refuse ? 7 : 4));
    }
}

TEST_CASE("saga: start is once per id and commits with the business write", "[twophase]") {
    shop<> s;
    s.place("o1");
    CHECK_FALSE(s.db.transact([&](auto& tx) { return s.sagas.start(tx, "o1", "other"); }));
    {
        auto tx = s.db.begin();
        s.orders.put(tx, "o2", "placed");
        CHECK(s.sagas.start(tx, "o2", "sku-2"));
    }  // rolled back: neither the order nor its saga
    CHECK_THROWS_AS(s.sagas.run("o2"), settle::error);
    s.clock.advance(1min);
    CHECK(s.sagas.recover() == settle::saga_recover_result{.picked = 1, .completed = 1});
    CHECK(s.svc.log == std::vector<std::string>{"+0", "+1", "+2"});
    CHECK_THROWS_AS(s.db.transact([&](auto& tx) { return s.sagas.start(tx, "", "x"); }),
                    settle::error);
}

TEST_CASE("saga: two recoverers racing drive each saga once, each compensation once",
          "[twophase][concurrency]") {
    constexpr int sagas = 64;
    shop<> s;
    s.svc.refused = 2;
    for (int i = 0; i < sagas; ++i) {
        s.place("o" + std::to_string(i));
    }
    s.clock.advance(31s);  // every starter died before run: all are due
    std::latch go(2);
    std::vector<settle::saga_recover_result> seen(2);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            go.arrive_and_wait();
            for (;;) {
                const settle::saga_recover_result r = s.sagas.recover();
                if (r.picked == 0) {
                    return;
                }
                seen[t].picked += r.picked;
                seen[t].compensated += r.compensated;
                seen[t].stale += r.stale;
            }
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    std::printf("saga race: recoverer A compensated %zu (stale %zu), B %zu (stale %zu)\n",
                seen[0].compensated, seen[0].stale, seen[1].compensated, seen[1].stale);
    CHECK(seen[0].compensated + seen[1].compensated == sagas);
    for (int i = 0; i < sagas; ++i) {
        const std::string id = "o" + std::to_string(i);
        CHECK(s.record(id).status == settle::saga_status::compensated);
        for (std::uint32_t step = 0; step < 3; ++step) {
            CHECK(s.svc.actions[{id, step}] == 1);
            CHECK(s.svc.compensations[{id, step}] == 1);
        }
    }
}

TEST_CASE("saga_coordinator refuses a definition or options it cannot run", "[twophase]") {
    settle::manual_clock clock;
    memory::database db;
    memory::saga_table store{db};
    const auto noop = [](const settle::saga_call&) {};
    const auto make = [&](settle::saga_definition d, settle::saga_options o) {
        return settle::saga_coordinator(store, std::move(d),
                                        settle::persisted_retry{settle::ladder{1s}, 1}, clock, o);
    };
    CHECK_NOTHROW(make({"t", {{"a", noop, noop}}}, {}));
    CHECK_THROWS_AS(make({"", {{"a", noop, noop}}}, {}), settle::error);
    CHECK_THROWS_AS(make({"t", {}}, {}), settle::error);
    CHECK_THROWS_AS(make({"t", {{"a", noop, nullptr}}}, {}), settle::error);
    CHECK_THROWS_AS(make({"t", {{"a", noop, noop}}}, {.lease = 0s}), settle::error);
    CHECK_THROWS_AS(make({"t", {{"a", noop, noop}}}, {.batch_size = 0}), settle::error);
    CHECK_THROWS_AS(make({"t", {{"a", noop, noop}}}, {.retention = 0s}), settle::error);
}

TEST_CASE("saga: purge removes ended sagas once the retention has passed since they ended",
          "[twophase]") {
    shop<> s;
    CHECK(s.sagas.options().retention == std::chrono::hours(24 * 7));
    s.place("done");
    CHECK(s.sagas.run("done").is_completed());
    s.svc.refused = 1;
    s.place("undone");
    CHECK(s.sagas.run("undone").is_compensated());
    s.svc.refused.reset();
    s.svc.transient[1] = 1;
    s.place("slow");  // ends an hour later than the others
    CHECK(s.sagas.run("slow").is_waiting());
    s.clock.advance(1h);
    CHECK(s.sagas.recover().completed == 1);
    const auto purge = [&](std::size_t limit) {
        return s.db.transact([&](auto& tx) { return s.sagas.purge(tx, limit); });
    };
    s.clock.advance(s.sagas.options().retention - 1h);
    CHECK(purge(10) == 0);  // ended exactly a retention ago: kept
    s.clock.advance(1us);
    CHECK(purge(10) == 2);
    CHECK(s.db.transact([&](auto& tx) { return s.table.size(tx); }) == 1);
    s.clock.advance(1h - 1us);
    CHECK(purge(10) == 0);  // "slow" ended an hour after it started
    s.clock.advance(1us);
    CHECK(purge(10) == 1);
    CHECK(s.db.transact([&](auto& tx) { return s.table.size(tx); }) == 0);
}

TEST_CASE("saga: purge at the earliest time a clock can read removes nothing too young",
          "[twophase]") {
    settle::manual_clock clock(std::chrono::system_clock::time_point::min() + 1h);
    memory::database db;
    memory::saga_table store{db};
    const auto noop = [](const settle::saga_call&) {};
    settle::saga_coordinator sagas(store, {"t", {{"a", noop, noop}}},
                                   settle::persisted_retry{settle::ladder{1s}, 1}, clock, {});
    CHECK(db.transact([&](auto& tx) { return sagas.start(tx, "s1", ""); }));
    CHECK(sagas.run("s1").is_completed());
    CHECK(db.transact([&](auto& tx) { return sagas.purge(tx, 10); }) == 0);
    CHECK(db.transact([&](auto& tx) { return store.size(tx); }) == 1);
}

TEST_CASE("saga: purge keeps sagas still going and sagas set aside as failed, in batches",
          "[twophase]") {
    shop<> s;
    for (int i = 0; i < 5; ++i) {
        s.place("done" + std::to_string(i));
        CHECK(s.sagas.run("done" + std::to_string(i)).is_completed());
    }
    s.svc.refused = 1;
    s.svc.compensation_failures[0] = 3;
    s.place("failed");
    CHECK(s.sagas.run("failed").is_waiting());
    s.clock.advance(1s);
    CHECK(s.sagas.recover().waiting == 1);
    s.clock.advance(10s);
    CHECK(s.sagas.recover().failed == 1);
    s.svc.refused.reset();
    s.svc.transient[0] = 1;
    s.place("waiting");
    CHECK(s.sagas.run("waiting").is_waiting());
    s.place("started");  // its starter has not run it yet
    s.svc.refused = 1;
    s.svc.compensation_failures[1] = 1;
    s.svc.transient.clear();
    s.place("turning");
    CHECK(s.sagas.run("turning").is_waiting());  // -1 failed once: compensating
    CHECK(s.record("turning").status == settle::saga_status::compensating);
    s.clock.advance(std::chrono::hours(24 * 365));
    const auto purge = [&](std::size_t limit) {
        return s.db.transact([&](auto& tx) { return s.sagas.purge(tx, limit); });
    };
    CHECK(purge(2) == 2);
    CHECK(purge(2) == 2);
    CHECK(purge(2) == 1);
    CHECK(purge(2) == 0);
    CHECK(s.record("failed").status == settle::saga_status::failed);
    CHECK(s.record("waiting").status == settle::saga_status::running);
    CHECK(s.record("started").status == settle::saga_status::running);
    CHECK(s.record("turning").status == settle::saga_status::compensating);
    CHECK(s.db.transact([&](auto& tx) { return s.table.size(tx); }) == 4);
}
