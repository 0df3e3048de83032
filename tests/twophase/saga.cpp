// Sagas with recovery points on the in-memory store: the conformance suites,
// forward completion, compensation in reverse, attempts on a ladder, a crash
// at every recovery point, two recoverers racing in threads, and the purge of
// ended sagas.
#include <settle/saga.hpp>
#include <settle/saga_coordinator.hpp>

#include "settle_test.hpp"

#include "outbox/ids.hpp"

#include <settle/codec.hpp>
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/stores/memory.hpp>
#include <settle/testing/saga_store_suite.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <deque>
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
    int stale_at = -1;  // this update finds another writer came first
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
        if (updates == stale_at) {
            ++updates;
            return settle::fenced_write::stale;
        }
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

// The message-driven saga, end to end on the in-memory store: the
// coordinator's writes append each request to its outbox; a relay delivers
// them to three participants, each behind an inbox that applies a request
// once per (saga, step, direction) and answers a repeat with the answer it
// gave; the answers come back through the coordinator's own inbox.
namespace {

struct saga_participant {
    settle::manual_clock* clock;
    memory::database db;
    memory::inbox_table inbox{db};
    memory::table<std::string, std::string> answers{db};  // request key -> its answer
    memory::table<std::string, int> effects{db};          // saga -> 1 while applied
    settle::idempotent_consumer<memory::inbox_table, settle::manual_clock> consumer{
        inbox, *clock, {.consumer = "participant"}};
    bool refuse = false;       // refuses every action
    bool refuse_undo = false;  // refuses every compensation
    int applied = 0;           // requests applied (not repeats)

    explicit saga_participant(settle::manual_clock& c) : clock(&c) {}

    settle::saga_answer handle(const std::string& id, settle::saga_direction direction,
                               const std::string& key) {
        return db.transact([&](auto& tx) {
            (void)consumer.consume(tx, key, [&](auto& t) {
                ++applied;
                bool ok = true;
                if (direction == settle::saga_direction::compensation) {
                    ok = !refuse_undo;
                    effects.erase(t, id);  // nothing to undo is fine
                } else if (refuse) {
                    ok = false;
                } else {
                    effects.put(t, id, 1);
                }
                answers.put(t, key, ok ? "done" : "refused");
            });
            return *answers.find(tx, key) == "done" ? settle::saga_answer::done
                                                    : settle::saga_answer::refused;
        });
    }
    int effect(const std::string& id) {
        return db.transact([&](auto& tx) {
            const int* v = effects.find(tx, id);
            return v == nullptr ? 0 : *v;
        });
    }
};

struct saga_reply_message {
    std::string message_id;  // what the coordinator's inbox deduplicates on
    std::string saga;
    std::uint32_t step;
    settle::saga_direction direction;
    settle::saga_answer answer;
};

template <class Store = memory::saga_table>
struct message_shop {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 9 / 1)};
    memory::database db;
    memory::saga_table table{db};
    memory::outbox_table outbox_store{db};
    memory::inbox_table inbox{db};
    settle::outbox<memory::outbox_table, settle::manual_clock> outbox{outbox_store, clock};
    settle::idempotent_consumer<memory::inbox_table, settle::manual_clock> replies{
        inbox, clock, {.consumer = "sagas"}};
    crashing_store store{&table};
    std::uint32_t sent = 0;
    settle::saga_coordinator<Store, settle::ladder<2>, settle::manual_clock> sagas{
        [this]() -> Store& {
            if constexpr (std::same_as<Store, crashing_store>) {
                return store;
            } else {
                return table;
            }
        }(),
        {"order", {{"reserve"}, {"charge"}, {"ship"}}},
        [this](memory::transaction& tx, const settle::saga_request& r) {
            const std::string text = std::string(r.id) + "|" + std::to_string(r.step) + "|" +
                                     std::string(settle::to_string(r.direction)) + "|" +
                                     std::to_string(r.attempt) + "|" +
                                     std::to_string(r.token.value());
            REQUIRE(outbox.append(tx, outbox_test::id_of(++sent), "saga.request", text));
        },
        settle::persisted_retry{settle::ladder{1s, 10s}, 3},
        clock,
        {.lease = 30s}};
    saga_participant p0{clock}, p1{clock}, p2{clock};
    std::vector<saga_participant*> services{&p0, &p1, &p2};
    std::vector<std::string> requests;  // "+1#2": attempt 2 of step 1's action
    std::vector<std::uint64_t> tokens;  // of the requests, in the order sent
    std::deque<saga_reply_message> wire;
    std::map<std::string, int> drop;  // "+1": so many of step 1's answers are lost
    std::map<std::string, int> seen;  // accepted, not_awaited, duplicate, crashed

    // The relay's publisher: delivers a request to its participant, whose
    // answer goes on the wire.
    struct network {
        message_shop* shop;
        settle::publish_result publish(const settle::outbox_record& record) {
            const auto text = settle::decode<std::string>(record.payload);
            std::vector<std::string> f;
            for (std::size_t at = 0;;) {
                const std::size_t bar = text.find('|', at);
                f.push_back(text.substr(at, bar - at));
                if (bar == std::string::npos) {
                    break;
                }
                at = bar + 1;
            }
            const auto step = static_cast<std::uint32_t>(std::stoul(f[1]));
            const auto direction = f[2] == "action" ? settle::saga_direction::action
                                                    : settle::saga_direction::compensation;
            shop->tokens.push_back(std::stoull(f[4]));
            shop->requests.push_back((direction == settle::saga_direction::action ? "+" : "-") +
                                     f[1] + "#" + f[3]);
            const settle::saga_answer answer =
                shop->services[step]->handle(f[0], direction, f[0] + "/" + f[1] + "/" + f[2]);
            const std::string kind = shop->requests.back().substr(0, f[1].size() + 1);
            if (shop->drop[kind] > 0) {
                --shop->drop[kind];
            } else {
                shop->wire.push_back({"reply-" + text, f[0], step, direction, answer});
            }
            return settle::publish_result::delivered();
        }
    } net{this};
    settle::outbox_relay<memory::outbox_table, network, settle::ladder<1>, settle::manual_clock>
        relay{outbox_store,
              net,
              settle::persisted_retry{settle::ladder{1s}, 100},
              clock,
              {.owner = "relay"}};

    void place(const std::string& id) {
        db.transact([&](auto& tx) { REQUIRE(sagas.start(tx, id, "sku-1")); });
    }
    // Receives one reply in the coordinator's inbox; a crash leaves it on the
    // wire, to be received again.
    void receive(const saga_reply_message& m) {
        db.transact([&](auto& tx) {
            const settle::inbox_result r = replies.consume(tx, m.message_id, [&](auto& t) {
                const settle::saga_reply_result a =
                    sagas.reply(t, m.saga, m.step, m.direction, m.answer);
                ++seen[std::string(settle::to_string(a.outcome()))];
            });
            if (r.is_duplicate()) {
                ++seen["duplicate"];
            }
        });
    }
    // Relays requests and receives replies until neither is left.
    void pump() {
        for (int round = 0; round < 100; ++round) {
            const bool idle = relay.run_once().idle();
            if (idle && wire.empty()) {
                return;
            }
            while (!wire.empty()) {
                try {
                    receive(wire.front());
                    wire.pop_front();
                } catch (const settle::error&) {
                    ++seen["crashed"];
                }
            }
        }
        FAIL("the saga's messages did not settle");
    }
    settle::saga_record record(const std::string& id) {
        return *db.transact([&](auto& tx) { return table.load(tx, id); });
    }
};

}  // namespace

TEST_CASE("message saga: requests go out through the outbox, replies move it to completed",
          "[twophase]") {
    message_shop<> s;
    s.place("o1");
    s.pump();
    CHECK(s.requests == std::vector<std::string>{"+0#1", "+1#1", "+2#1"});
    CHECK(s.seen == std::map<std::string, int>{{"accepted", 3}});
    const settle::saga_record rec = s.record("o1");
    CHECK(rec.status == settle::saga_status::completed);
    CHECK(rec.step == 3);
    CHECK(s.p0.effect("o1") + s.p1.effect("o1") + s.p2.effect("o1") == 3);
    CHECK_THROWS_AS(s.sagas.run("o1"), settle::error);  // replies move it, not run()
}

TEST_CASE("message saga: a refused step turns it back, each compensation sent and answered",
          "[twophase]") {
    message_shop<> s;
    s.p2.refuse = true;
    s.place("o1");
    s.pump();
    CHECK(s.requests == std::vector<std::string>{"+0#1", "+1#1", "+2#1", "-2#1", "-1#1", "-0#1"});
    CHECK(std::is_sorted(s.tokens.begin(), s.tokens.end()));
    CHECK(std::adjacent_find(s.tokens.begin(), s.tokens.end()) == s.tokens.end());
    const settle::saga_record rec = s.record("o1");
    CHECK(rec.status == settle::saga_status::compensated);
    CHECK(rec.last_error == "step `ship`: refused");
    CHECK(s.p0.effect("o1") + s.p1.effect("o1") + s.p2.effect("o1") == 0);
}

TEST_CASE("message saga: a refused compensation sets the saga aside as failed", "[twophase]") {
    message_shop<> s;
    s.p2.refuse = true;
    s.p1.refuse_undo = true;
    s.place("o1");
    s.pump();
    CHECK(s.requests == std::vector<std::string>{"+0#1", "+1#1", "+2#1", "-2#1", "-1#1"});
    const settle::saga_record rec = s.record("o1");
    CHECK(rec.status == settle::saga_status::failed);
    CHECK(rec.step == 2);  // steps 1 and 0 are still to undo, by an operator
    CHECK(rec.last_error == "compensation of `charge`: refused");
    s.clock.advance(1h);
    CHECK(s.sagas.recover() == settle::saga_recover_result{});
}

TEST_CASE("message saga: a dropped reply is sent again after the deadline, applied once",
          "[twophase]") {
    message_shop<> t;
    t.drop["+1"] = 1;  // step 1 is applied, but its answer is lost
    t.place("o1");
    t.pump();
    CHECK(t.record("o1").status == settle::saga_status::running);
    CHECK(t.sagas.recover() == settle::saga_recover_result{});  // not before the deadline
    t.clock.advance(30s);
    CHECK(t.sagas.recover() == settle::saga_recover_result{.picked = 1, .waiting = 1});
    CHECK(t.record("o1").attempts == 1);
    CHECK(t.record("o1").next_run_at == settle::to_stored_time(t.clock.now()) + 1s + 30s);
    t.pump();
    CHECK(t.requests == std::vector<std::string>{"+0#1", "+1#1", "+1#2", "+2#1"});
    CHECK(t.record("o1").status == settle::saga_status::completed);
    CHECK(t.p1.applied == 1);  // the repeat was answered, not applied again
    CHECK(t.p0.effect("o1") + t.p1.effect("o1") + t.p2.effect("o1") == 3);
}

TEST_CASE("message saga: duplicate, late and other-step replies change nothing", "[twophase]") {
    message_shop<> s;
    s.place("o1");
    (void)s.relay.run_once();
    REQUIRE(s.wire.size() == 1);
    const saga_reply_message first = s.wire.front();
    s.wire.clear();
    // the answer of step 0 is late: the request is sent again, and answered
    s.clock.advance(30s);
    CHECK(s.sagas.recover().waiting == 1);
    (void)s.relay.run_once();
    REQUIRE(s.wire.size() == 1);
    const saga_reply_message second = s.wire.front();
    s.wire.clear();
    s.receive(second);
    s.receive(second);  // the broker delivers it twice: the inbox drops it
    s.receive(first);   // the late answer to the first attempt: step 0 is done already
    CHECK(s.seen ==
          std::map<std::string, int>{{"accepted", 1}, {"duplicate", 1}, {"not_awaited", 1}});
    const settle::saga_record before = s.record("o1");
    CHECK(before.step == 1);
    s.db.transact([&](auto& tx) {
        CHECK(s.sagas.reply(tx, "o1", 2, settle::saga_direction::action, settle::saga_answer::done)
                  .is_not_awaited());
        CHECK(
            s.sagas
                .reply(tx, "o1", 1, settle::saga_direction::compensation, settle::saga_answer::done)
                .is_not_awaited());
        CHECK(
            s.sagas.reply(tx, "nope", 0, settle::saga_direction::action, settle::saga_answer::done)
                .is_not_awaited());
    });
    CHECK(s.record("o1") == before);
    s.pump();
    CHECK(s.record("o1").status == settle::saga_status::completed);
    s.db.transact([&](auto& tx) {
        CHECK(s.sagas.reply(tx, "o1", 2, settle::saga_direction::action, settle::saga_answer::done)
                  .is_not_awaited());  // after its end
    });
    CHECK(s.p0.applied == 1);
}

TEST_CASE("message saga: a step never answered turns it back once its attempts are spent",
          "[twophase]") {
    message_shop<> s;
    s.drop["+1"] = 3;  // every attempt of step 1 goes unanswered
    s.place("o1");
    s.pump();
    s.clock.advance(30s);
    CHECK(s.sagas.recover().waiting == 1);
    s.pump();
    s.clock.advance(31s);
    CHECK(s.sagas.recover().waiting == 1);
    s.pump();
    s.clock.advance(40s);
    CHECK(s.sagas.recover().waiting == 1);  // turned back: the compensation is out
    s.pump();
    CHECK(s.requests == std::vector<std::string>{"+0#1", "+1#1", "+1#2", "+1#3", "-1#1", "-0#1"});
    const settle::saga_record rec = s.record("o1");
    CHECK(rec.status == settle::saga_status::compensated);
    CHECK(rec.last_error == "step `charge`: no answer by the deadline");
    CHECK(s.p0.effect("o1") + s.p1.effect("o1") == 0);  // step 1 had applied: undone
}

TEST_CASE("message saga: a crash at any write loses nothing; the answer is received again",
          "[twophase]") {
    // Writes: the answer of +0, the re-sent +1 (its answer was lost), the
    // answers of +1, +2 (refused), -2, -1, -0.
    for (int crash = 0; crash < 7; ++crash) {
        INFO("crash at write " << crash);
        message_shop<crashing_store> s;
        s.store.crash_at = crash;
        s.p2.refuse = true;
        s.drop["+1"] = 1;
        s.place("o1");
        for (int round = 0; round < 8 && !settle::is_ended(s.record("o1").status); ++round) {
            s.pump();
            s.clock.advance(1min);
            try {
                (void)s.sagas.recover();
            } catch (const settle::error&) {
                ++s.seen["crashed"];
            }
        }
        CHECK(s.seen["crashed"] == 1);
        CHECK(s.record("o1").status == settle::saga_status::compensated);
        CHECK(s.requests ==
              std::vector<std::string>{"+0#1", "+1#1", "+1#2", "+2#1", "-2#1", "-1#1", "-0#1"});
        CHECK(s.p0.effect("o1") + s.p1.effect("o1") + s.p2.effect("o1") == 0);
        CHECK(s.p0.applied + s.p1.applied + s.p2.applied == 6);  // each request once
    }
}

TEST_CASE("message saga: an answer that meets a concurrent write rolls back, received again",
          "[twophase]") {
    message_shop<crashing_store> s;
    s.store.stale_at = 0;
    s.place("o1");
    (void)s.relay.run_once();
    REQUIRE(s.wire.size() == 1);
    try {
        s.receive(s.wire.front());
        FAIL("a stale write was not reported");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::aborted);
    }
    CHECK(s.record("o1").step == 0);
    s.pump();  // the same answer, received again, is not a duplicate
    CHECK(s.seen == std::map<std::string, int>{{"accepted", 3}});
    CHECK(s.record("o1").status == settle::saga_status::completed);
}

TEST_CASE("message saga: its steps are names only, and each form refuses the other's calls",
          "[twophase]") {
    shop<> s;  // calls its steps
    const auto send = [](memory::transaction&, const settle::saga_request&) {};
    const auto make = [&](settle::saga_step step) {
        return settle::saga_coordinator(s.table, {"order", {std::move(step)}}, send,
                                        settle::persisted_retry{settle::ladder{1s, 10s}, 3},
                                        s.clock, {});
    };
    CHECK_THROWS_AS(make(s.svc.step(0)), settle::error);  // an action the coordinator never calls
    CHECK_NOTHROW(make({"reserve"}));
    s.place("o1");
    s.db.transact([&](auto& tx) {
        CHECK_THROWS_AS((void)s.sagas.reply(tx, "o1", 0, settle::saga_direction::action,
                                            settle::saga_answer::done),
                        settle::error);
    });
}
