// The two-phase stores on MariaDB: the barrier, reconcile and saga
// conformance suites; try against cancel and confirm against cancel racing on
// two connections under InnoDB's default REPEATABLE READ, where an
// insert-first barrier must never deadlock; the check-back fence racing a
// late commit; two reconcilers racing; sagas run, recovered and purged end
// to end.
#include <settle/check_back.hpp>
#include <settle/reconciler.hpp>
#include <settle/saga.hpp>
#include <settle/saga_coordinator.hpp>
#include <settle/stores/mysql.hpp>
#include <settle/testing/barrier_store_suite.hpp>
#include <settle/testing/reconcile_store_suite.hpp>
#include <settle/testing/saga_store_suite.hpp>

#include "mysql/mysql_test.hpp"
#include "settle_test.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <ratio>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace my = settle::mysql;
using mysql_test::create_tables;
using mysql_test::options;
using mysql_test::raw_connection;
using mysql_test::run;
using mysql_test::scalar;
using mysql_test::scratch_table;
using namespace std::chrono_literals;

namespace {

struct barrier_fixture {
    scratch_table table{"barrier"};
    my::connection conn{options()};
    my::barrier_table store{conn, table.name()};

    barrier_fixture() { create_tables(store); }
};

struct reconcile_fixture {
    scratch_table table{"reconcile"};
    my::connection conn{options()};
    my::reconcile_table store{conn, table.name()};

    reconcile_fixture() { create_tables(store); }
};

struct saga_fixture {
    scratch_table table{"saga"};
    my::connection conn{options()};
    my::saga_table store{conn, table.name()};

    saga_fixture() { create_tables(store); }
};

template <class Fixture, class Suite>
void run_suite(const Suite& suite) {
    for (const auto& c : suite) {
        INFO(std::string(c.name));
        Fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

settle::stored_time at(int seconds = 0) {
    return settle::stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)) +
           std::chrono::seconds(seconds);
}

// "<prefix><n>", built by appending (GCC 12 at -O2 misreads "literal" +
// std::string as an overlapping copy, -Wrestrict).
std::string numbered(std::string_view prefix, int n) {
    std::string out(prefix);
    out += std::to_string(n);
    return out;
}

// The session's isolation level, as the server names it.
std::string isolation(MYSQL* conn) {
    try {
        return scalar(conn, "SELECT @@SESSION.transaction_isolation");  // MySQL, MariaDB 11.1+
    } catch (const std::runtime_error&) {
        return scalar(conn, "SELECT @@SESSION.tx_isolation");
    }
}

// What the server gave up while phases raced: deadlocks (1213) and other
// aborts, each ridden out by running the transaction again.
struct aborts {
    int deadlocks = 0;
    int other = 0;
};

// One phase on each of the stores' connections at once, on one branch, each
// in a transaction that also writes a business row to `work` when the phase
// is entered; returns what each answered.
std::vector<settle::barrier_outcome> race(const std::vector<my::barrier_table*>& stores,
                                          const std::string& work, const std::string& xid,
                                          const std::vector<settle::barrier_phase>& phases,
                                          std::vector<aborts>& seen) {
    std::vector<settle::barrier_outcome> out(phases.size(), settle::barrier_outcome::not_tried);
    std::latch go(static_cast<std::ptrdiff_t>(phases.size()));
    const auto call = [&](std::size_t i) {
        go.arrive_and_wait();
        for (;;) {
            try {
                auto tx = stores[i]->begin();
                out[i] = stores[i]->enter(tx, xid, "b", phases[i], at());
                if (out[i] == settle::barrier_outcome::entered) {
                    run(tx.native(), "INSERT INTO `" + work + "` (xid, phase) VALUES ('" + xid +
                                         "', '" + std::string(settle::to_string(phases[i])) + "')");
                }
                tx.commit();
                return;
            } catch (const settle::error& e) {
                if (e.code() != settle::errc::aborted) {
                    throw;
                }
                ++(std::string_view(e.what()).find("(error 1213") != std::string_view::npos
                       ? seen[i].deadlocks
                       : seen[i].other);
            }
        }
    };
    std::vector<std::thread> others;
    for (std::size_t i = 1; i < phases.size(); ++i) {
        others.emplace_back(call, i);
    }
    call(0);
    for (std::thread& t : others) {
        t.join();
    }
    return out;
}

int total(const std::vector<aborts>& seen, int aborts::*field) {
    int n = 0;
    for (const aborts& a : seen) {
        n += a.*field;
    }
    return n;
}

}  // namespace

TEST_CASE("mysql::barrier_table passes the barrier store conformance suites", "[mysql][twophase]") {
    run_suite<barrier_fixture>(settle::conformance::barrier_store_suite<barrier_fixture>);
    run_suite<barrier_fixture>(settle::conformance::barrier_purge_suite<barrier_fixture>);
}

TEST_CASE("mysql::reconcile_table passes the reconcile store conformance suite",
          "[mysql][twophase]") {
    run_suite<reconcile_fixture>(settle::conformance::reconcile_store_suite<reconcile_fixture>);
}

TEST_CASE("mysql::saga_table passes the saga store conformance suites", "[mysql][twophase]") {
    run_suite<saga_fixture>(settle::conformance::saga_store_suite<saga_fixture>);
    run_suite<saga_fixture>(settle::conformance::saga_purge_suite<saga_fixture>);
}

TEST_CASE("mysql two-phase tables refuse bad names and keep the schema idempotent",
          "[mysql][twophase]") {
    my::connection conn(options());
    CHECK_THROWS_AS(my::barrier_table(conn, "no spaces"), settle::error);
    CHECK_THROWS_AS(my::reconcile_table(conn, "1st"), settle::error);
    CHECK_THROWS_AS(my::saga_table(conn, "a`b"), settle::error);
    scratch_table barrier("barrier");
    scratch_table reconcile("reconcile");
    scratch_table saga("saga");
    my::barrier_table b(conn, barrier.name());
    my::reconcile_table r(conn, reconcile.name());
    my::saga_table s(conn, saga.name());
    auto tx = b.begin();
    b.create_tables(tx);
    b.create_tables(tx);
    r.create_tables(tx);
    r.create_tables(tx);
    s.create_tables(tx);
    s.create_tables(tx);
    tx.commit();
}

// Two connections race try against cancel on a branch never seen, and
// confirm against cancel on a branch just tried, round after round, under
// the server's default isolation, REPEATABLE READ. Insert-first, the branch
// ends one way, the business rows agree, and InnoDB never has to break a
// deadlock: a fence that read FOR UPDATE before inserting would lock the
// missing row's gap on both connections, and each insert would then wait for
// the other's gap lock.
TEST_CASE("mysql: racing phases end a branch one way, with no deadlock",
          "[mysql][twophase][concurrency]") {
    using o = settle::barrier_outcome;
    using p = settle::barrier_phase;
    scratch_table table("barrier_race");
    scratch_table work("barrier_work");
    my::connection first_conn(options());
    my::connection second_conn(options());
    my::barrier_table first(first_conn, table.name());
    my::barrier_table second(second_conn, table.name());
    create_tables(first);
    raw_connection raw;
    run(raw.get(), "CREATE TABLE `" + work.name() +
                       "` (n BIGINT AUTO_INCREMENT PRIMARY KEY, xid VARBINARY(64), phase "
                       "VARCHAR(16)) ENGINE=InnoDB");
    REQUIRE(isolation(first_conn.native()) == "REPEATABLE-READ");
    REQUIRE(isolation(second_conn.native()) == "REPEATABLE-READ");
    std::vector<aborts> seen(2);
    std::map<std::string, int> endings;
    const auto entered_rows = [&](const std::string& xid) {
        return scalar(raw.get(),
                      "SELECT COUNT(*) FROM `" + work.name() + "` WHERE xid = '" + xid + "'");
    };
    constexpr int rounds = 150;
    for (int round = 0; round < rounds; ++round) {
        // try against cancel: try first (both entered) or cancel first (an
        // empty cancel, and the try hangs).
        const std::string fresh = numbered("t", round);
        const bool flip = round % 2 == 1;  // which connection calls which phase
        const std::vector<p> try_cancel =
            flip ? std::vector{p::cancel, p::try_phase} : std::vector{p::try_phase, p::cancel};
        auto out = race({&first, &second}, work.name(), fresh, try_cancel, seen);
        const o tried = out[flip ? 1 : 0];
        const o cancelled = out[flip ? 0 : 1];
        INFO(fresh << ": try " << settle::to_string(tried) << ", cancel "
                   << settle::to_string(cancelled));
        const bool try_won = tried == o::entered && cancelled == o::entered;
        const bool cancel_won = cancelled == o::empty_cancel && tried == o::hanging;
        CHECK((try_won || cancel_won));
        CHECK(entered_rows(fresh) == (try_won ? "2" : "0"));
        ++endings[try_won ? "try, then cancel" : "empty cancel, then hanging try"];

        // confirm against cancel on a tried branch: one enters, the other is
        // refused.
        const std::string tried_branch = numbered("c", round);
        REQUIRE(settle::conformance::detail::barrier_enter(first, tried_branch, "b",
                                                           p::try_phase) == o::entered);
        const std::vector<p> confirm_cancel =
            flip ? std::vector{p::cancel, p::confirm} : std::vector{p::confirm, p::cancel};
        out = race({&first, &second}, work.name(), tried_branch, confirm_cancel, seen);
        const o confirmed = out[flip ? 1 : 0];
        const o undone = out[flip ? 0 : 1];
        INFO(tried_branch << ": confirm " << settle::to_string(confirmed) << ", cancel "
                          << settle::to_string(undone));
        const bool confirm_won = confirmed == o::entered && undone == o::branch_confirmed;
        const bool undo_won = undone == o::entered && confirmed == o::branch_cancelled;
        CHECK((confirm_won || undo_won));
        CHECK(entered_rows(tried_branch) == "1");
        ++endings[confirm_won ? "confirm, cancel refused" : "cancel, confirm refused"];
    }
    std::printf("mysql barrier race, %d rounds of each pair on 2 connections (REPEATABLE READ):",
                rounds);
    for (const auto& [ending, n] : endings) {
        std::printf(" %s=%d;", ending.c_str(), n);
    }
    std::printf(" deadlocks=%d, other aborts=%d\n", total(seen, &aborts::deadlocks),
                total(seen, &aborts::other));
    CHECK(total(seen, &aborts::deadlocks) == 0);
    CHECK(total(seen, &aborts::other) == 0);
}

// Six connections call try, confirm and cancel twice each on one fresh
// branch at once, round after round: the branch ends one way, every entered
// try is ended by its own phase, the business rows agree, and no deadlock.
TEST_CASE("mysql: six connections racing every phase end a branch one way, with no deadlock",
          "[mysql][twophase][concurrency]") {
    using o = settle::barrier_outcome;
    using p = settle::barrier_phase;
    scratch_table table("barrier_race6");
    scratch_table work("barrier_work6");
    const std::vector<p> phases{p::try_phase, p::confirm, p::cancel,
                                p::try_phase, p::confirm, p::cancel};
    std::vector<std::unique_ptr<my::connection>> conns;
    std::vector<std::unique_ptr<my::barrier_table>> owned;
    std::vector<my::barrier_table*> stores;
    for (std::size_t i = 0; i < phases.size(); ++i) {
        conns.push_back(std::make_unique<my::connection>(options()));
        owned.push_back(std::make_unique<my::barrier_table>(*conns.back(), table.name()));
        stores.push_back(owned.back().get());
    }
    create_tables(*stores[0]);
    raw_connection raw;
    run(raw.get(), "CREATE TABLE `" + work.name() +
                       "` (n BIGINT AUTO_INCREMENT PRIMARY KEY, xid VARBINARY(64), phase "
                       "VARCHAR(16)) ENGINE=InnoDB");
    std::vector<aborts> seen(phases.size());
    std::map<std::string, int> outcomes;
    constexpr int rounds = 60;
    for (int round = 0; round < rounds; ++round) {
        const std::string xid = numbered("x", round);
        const auto out = race(stores, work.name(), xid, phases, seen);
        int tried = 0;
        int ended = 0;
        int entered = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
            ++outcomes[std::string(settle::to_string(out[i]))];
            const bool in = out[i] == o::entered;
            entered += in ? 1 : 0;
            tried += in && phases[i] == p::try_phase ? 1 : 0;
            ended += (in && phases[i] != p::try_phase) || out[i] == o::empty_cancel ? 1 : 0;
        }
        INFO(xid);
        CHECK(tried <= 1);
        CHECK(ended == 1);
        CHECK(entered == tried + (tried == 1 ? 1 : 0));
        CHECK(scalar(raw.get(), "SELECT COUNT(*) FROM `" + work.name() + "` WHERE xid = '" + xid +
                                    "'") == std::to_string(entered));
    }
    std::printf("mysql barrier race, %d rounds of 6 connections (REPEATABLE READ):", rounds);
    for (const auto& [outcome, n] : outcomes) {
        std::printf(" %s=%d", outcome.c_str(), n);
    }
    std::printf("; deadlocks=%d, other aborts=%d\n", total(seen, &aborts::deadlocks),
                total(seen, &aborts::other));
    CHECK(total(seen, &aborts::deadlocks) == 0);
    CHECK(total(seen, &aborts::other) == 0);
}

// A sender's transaction (its order row, then the seal) and a check of its
// message, on two connections at once, each round. They agree: the order row
// exists exactly when the check answered committed; a check that came first
// refused the late commit on the same unique key.
TEST_CASE("mysql: a check-back racing a late commit never both win",
          "[mysql][twophase][concurrency]") {
    scratch_table table("fence_race");
    scratch_table orders("fence_orders");
    my::connection sender_conn(options());
    my::connection checker_conn(options());
    my::barrier_table sender_store(sender_conn, table.name());
    my::barrier_table checker_store(checker_conn, table.name());
    create_tables(sender_store);
    raw_connection raw;
    run(raw.get(), "CREATE TABLE `" + orders.name() + "` (id VARBINARY(64)) ENGINE=InnoDB");
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)};
    settle::check_back_fence sender(sender_store, clock);
    settle::check_back_fence checker(checker_store, clock);
    constexpr int rounds = 100;
    int committed = 0;
    for (int round = 0; round < rounds; ++round) {
        const std::string id = numbered("m", round);
        settle::check_back_result placed(settle::local_outcome::rolled_back);
        settle::check_back_result checked(settle::local_outcome::rolled_back);
        std::latch go(2);
        std::thread a([&] {
            go.arrive_and_wait();
            my::transaction tx(sender_conn);
            run(tx.native(), "INSERT INTO `" + orders.name() + "` VALUES ('" + id + "')");
            placed = sender.seal(tx, id);
            if (placed) {
                tx.commit();
            }
        });
        std::thread b([&] {
            go.arrive_and_wait();
            my::transaction tx(checker_conn);
            checked = checker.check(tx, id);
            tx.commit();
        });
        a.join();
        b.join();
        INFO(id);
        CHECK(placed.outcome() == checked.outcome());
        CHECK(scalar(raw.get(), "SELECT COUNT(*) FROM `" + orders.name() + "` WHERE id = '" + id +
                                    "'") == (checked.is_committed() ? "1" : "0"));
        committed += checked.is_committed() ? 1 : 0;
    }
    std::printf("mysql check-back race, %d rounds: committed=%d rolled_back=%d\n", rounds,
                committed, rounds - committed);
}

struct always_committed {
    settle::checked_status status(const settle::uncertain_record&) {
        return settle::checked_status::committed;
    }
};

// Two reconcilers, each on its own connection, run over the same late
// records at once: every record is resolved exactly once, in the transaction
// that forgets it.
TEST_CASE("mysql: two reconcilers on one store resolve each record once",
          "[mysql][twophase][concurrency]") {
    scratch_table table("reconcile_race");
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)};
    my::connection first_conn(options());
    my::connection second_conn(options());
    my::reconcile_table first_store(first_conn, table.name());
    my::reconcile_table second_store(second_conn, table.name());
    create_tables(first_store);
    const settle::persisted_retry checks{settle::ladder{1min}, 3};
    const settle::reconcile_options reconcile{.threshold = 1min, .batch_size = 100};
    settle::reconciler first(first_store, checks, clock, reconcile);
    settle::reconciler second(second_store, checks, clock, reconcile);
    constexpr int records = 60;
    settle::in_transaction(first_store, [&](my::transaction& tx) {
        for (int n = 0; n < records; ++n) {
            REQUIRE(first.watch(tx, numbered("o", n)));
        }
    });
    clock.advance(2min);
    std::mutex mutex;
    std::map<std::string, int> resolved;
    const auto resolve = [&](my::transaction&, const settle::uncertain_record& r,
                             settle::checked_status) {
        const std::lock_guard lock(mutex);
        ++resolved[r.id];
    };
    always_committed source;
    settle::reconcile_run_result a;
    settle::reconcile_run_result b;
    std::latch go(2);
    std::thread other([&] {
        go.arrive_and_wait();
        b = second.run_once(source, resolve);
    });
    go.arrive_and_wait();
    a = first.run_once(source, resolve);
    other.join();
    CHECK(resolved.size() == records);
    for (const auto& [id, times] : resolved) {
        INFO(id);
        CHECK(times == 1);
    }
    CHECK(a.committed + b.committed == records);
    std::printf("mysql reconcilers: first resolved %zu (gone %zu), second %zu (gone %zu)\n",
                a.committed, a.gone, b.committed, b.gone);
}

// Orders whose sagas run three steps against the database, each step's
// effect a row: started with the order in one transaction, run at once or,
// when the starter died, recovered after its lease; a declined charge turns
// the saga back, a refund that always fails sets it aside. Afterwards every
// completed saga has all three effects, every compensated one none, and
// purge removes the ended sagas but keeps the failed one for an operator.
TEST_CASE("mysql sagas: run, recovered and purged end to end", "[mysql][twophase]") {
    scratch_table table("saga_run");
    scratch_table orders("saga_orders");
    scratch_table effects("saga_effects");
    my::connection conn(options());
    my::saga_table sagas(conn, table.name());
    create_tables(sagas);
    raw_connection raw;
    run(raw.get(), "CREATE TABLE `" + orders.name() + "` (id VARBINARY(64) PRIMARY KEY)");
    run(raw.get(), "CREATE TABLE `" + effects.name() +
                       "` (saga VARBINARY(64), step INT, PRIMARY KEY (saga, step))");
    const auto effect = [&](const settle::saga_call& c) {
        run(raw.get(), "INSERT IGNORE INTO `" + effects.name() + "` VALUES ('" + std::string(c.id) +
                           "', " + std::to_string(c.step) + ")");
    };
    const auto undo = [&](const settle::saga_call& c) {
        run(raw.get(), "DELETE FROM `" + effects.name() + "` WHERE saga = '" + std::string(c.id) +
                           "' AND step = " + std::to_string(c.step));
    };
    const auto starts_with = [](std::string_view id, std::string_view prefix) {
        return id.substr(0, prefix.size()) == prefix;
    };
    settle::saga_definition order{
        "order",
        {{"reserve stock", effect, undo},
         {"charge card",
          [&](const settle::saga_call& c) {
              if (starts_with(c.id, "declined") || starts_with(c.id, "stuck")) {
                  throw std::domain_error("card declined");
              }
              effect(c);
          },
          [&](const settle::saga_call& c) {
              if (starts_with(c.id, "stuck")) {
                  throw std::runtime_error("refund service down");
              }
              undo(c);
          }},
         {"ship", effect, undo}}};
    settle::manual_clock clock(std::chrono::sys_days(std::chrono::year(2024) / 9 / 1));
    settle::saga_coordinator coordinator(
        sagas, order, settle::persisted_retry{settle::ladder{1s}, 1}, clock, {.lease = 30s});
    const std::vector<std::string> ids{"ok-1", "ok-2",       "declined-1",
                                       "ok-3", "declined-2", "stuck-1"};
    for (std::size_t i = 0; i < ids.size(); ++i) {
        settle::in_transaction(sagas, [&](my::transaction& tx) {
            run(tx.native(), "INSERT INTO `" + orders.name() + "` VALUES ('" + ids[i] + "')");
            REQUIRE(coordinator.start(tx, ids[i], "order " + ids[i]));
        });
        if (i % 2 == 0) {
            (void)coordinator.run(ids[i]);  // the others' starters died before run()
        }
    }
    CHECK(coordinator.recover().picked == 0);  // within their starters' lease
    clock.advance(31s);
    const settle::saga_recover_result recovered = coordinator.recover();
    CHECK(recovered.picked == 3);
    const auto status = [&](const std::string& id) {
        return settle::in_transaction(sagas,
                                      [&](my::transaction& tx) { return sagas.load(tx, id); })
            ->status;
    };
    const auto effect_rows = [&](const std::string& id) {
        return scalar(raw.get(),
                      "SELECT COUNT(*) FROM `" + effects.name() + "` WHERE saga = '" + id + "'");
    };
    for (const std::string& id : ids) {
        INFO(id);
        if (starts_with(id, "ok")) {
            CHECK(status(id) == settle::saga_status::completed);
            CHECK(effect_rows(id) == "3");
        } else if (starts_with(id, "declined")) {
            CHECK(status(id) == settle::saga_status::compensated);
            CHECK(effect_rows(id) == "0");
        } else {
            CHECK(status(id) == settle::saga_status::failed);
        }
    }
    clock.advance(1h);
    const auto purged = settle::in_transaction(
        sagas, [&](my::transaction& tx) { return sagas.purge(tx, clock.now(), 100); });
    CHECK(purged == ids.size() - 1);
    CHECK(status("stuck-1") == settle::saga_status::failed);
    CHECK(scalar(raw.get(), "SELECT COUNT(*) FROM `" + table.name() + "`") == "1");
}

// purge removes only completed and compensated sagas last written (their
// last next run) before the cut, at most `limit` at a time.
TEST_CASE("mysql::saga_table purge keeps failed and unended sagas and the ones at the cut",
          "[mysql][twophase]") {
    using s = settle::saga_status;
    saga_fixture f;
    const auto saga_at = [](int seconds) { return settle::conformance::detail::saga_at(seconds); };
    const auto put = [&](const std::string& id, s status, int next_run_at) {
        auto tx = f.store.begin();
        REQUIRE(f.store.create(tx, id, "order", "", saga_at(0)));
        settle::saga_record r = *f.store.load(tx, id);
        r.status = status;
        r.next_run_at = saga_at(next_run_at);
        REQUIRE(f.store.update(tx, r) == settle::fenced_write::applied);
        tx.commit();
    };
    put("completed", s::completed, 10);
    put("compensated", s::compensated, 11);
    put("failed", s::failed, 10);
    put("running", s::running, 10);
    put("compensating", s::compensating, 10);
    put("at the cut", s::completed, 20);
    const auto purge = [&](std::chrono::system_clock::time_point cut, std::size_t limit) {
        return settle::in_transaction(
            f.store, [&](my::transaction& tx) { return f.store.purge(tx, cut, limit); });
    };
    CHECK(purge(saga_at(20), 0) == 0);
    CHECK(purge(saga_at(20), 1) == 1);
    CHECK(purge(saga_at(20), 10) == 1);
    CHECK(purge(saga_at(20), 10) == 0);
    const auto kept = [&](const std::string& id) {
        return settle::in_transaction(f.store,
                                      [&](my::transaction& tx) { return f.store.load(tx, id); })
            .has_value();
    };
    CHECK_FALSE(kept("completed"));
    CHECK_FALSE(kept("compensated"));
    CHECK(kept("failed"));
    CHECK(kept("running"));
    CHECK(kept("compensating"));
    CHECK(kept("at the cut"));
    if constexpr (std::ratio_less_v<std::chrono::system_clock::period, std::micro>) {
        // A cut a tick past a stored microsecond is after it.
        CHECK(purge(std::chrono::system_clock::time_point(saga_at(20)) +
                        std::chrono::system_clock::duration(1),
                    10) == 1);
        CHECK_FALSE(kept("at the cut"));
    }
}
