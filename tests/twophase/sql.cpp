// The try/confirm/cancel barrier on the real databases: the conformance
// suites on SQLite and PostgreSQL, racing phases from several connections,
// where the unique key and the row locks decide, and the check-back fence
// racing a late commit.
#include <settle/check_back.hpp>
#include <settle/reconciler.hpp>
#include <settle/stores/postgres.hpp>
#include <settle/stores/sqlite.hpp>
#include <settle/testing/barrier_store_suite.hpp>
#include <settle/testing/reconcile_store_suite.hpp>

#include "postgres/postgres_test.hpp"
#include "settle_test.hpp"
#include "sqlite/temp_database.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pg = settle::postgres;
using postgres_test::conninfo;
using postgres_test::scratch_table;

namespace {

struct sqlite_fixture {
    settle_test::temp_database file;
    settle::sqlite::connection conn{file.path()};
    settle::sqlite::barrier_table store{conn, "branches"};

    sqlite_fixture() {
        settle::in_transaction(store, [&](auto& tx) { store.create_tables(tx); });
    }
};

struct postgres_fixture {
    scratch_table table{"barrier"};
    pg::connection conn{conninfo()};
    pg::barrier_table store{conn, table.name()};

    postgres_fixture() { postgres_test::create_tables(store); }
};

struct sqlite_reconcile_fixture {
    settle_test::temp_database file;
    settle::sqlite::connection conn{file.path()};
    settle::sqlite::reconcile_table store{conn, "uncertain"};

    sqlite_reconcile_fixture() {
        settle::in_transaction(store, [&](auto& tx) { store.create_tables(tx); });
    }
};

struct postgres_reconcile_fixture {
    scratch_table table{"reconcile"};
    pg::connection conn{conninfo()};
    pg::reconcile_table store{conn, table.name()};

    postgres_reconcile_fixture() { postgres_test::create_tables(store); }
};

template <class Fixture, class Suite>
void run_suite(const Suite& suite) {
    for (const auto& c : suite) {
        INFO(std::string(c.name));
        Fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

settle::stored_time at() {
    return settle::stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1));
}

// Runs one phase on each of `phases.size()` connections at once, each in a
// transaction that also bumps the branch's "work" row when the phase is
// entered (the business write), and returns what each answered. A
// transaction the database aborts is run again.
template <class Store, class Work>
std::vector<settle::barrier_outcome> race(std::vector<std::unique_ptr<Store>>& stores,
                                          const std::string& xid,
                                          const std::vector<settle::barrier_phase>& phases,
                                          Work work) {
    std::vector<settle::barrier_outcome> out(phases.size(), settle::barrier_outcome::not_tried);
    std::latch go(static_cast<std::ptrdiff_t>(phases.size()));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < phases.size(); ++i) {
        threads.emplace_back([&, i] {
            go.arrive_and_wait();
            for (;;) {
                try {
                    auto tx = stores[i]->begin();
                    out[i] = stores[i]->enter(tx, xid, "b", phases[i], at());
                    if (out[i] == settle::barrier_outcome::entered) {
                        work(tx, phases[i]);
                    }
                    tx.commit();
                    return;
                } catch (const settle::error& e) {
                    if (e.code() != settle::errc::aborted &&
                        e.code() != settle::errc::unavailable) {
                        throw;
                    }
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    return out;
}

// What one round of a race must leave: one ending, and every entered try
// ended by its own phase.
void check_round(const std::vector<settle::barrier_phase>& phases,
                 const std::vector<settle::barrier_outcome>& out,
                 std::map<std::string, int>& seen) {
    int tried = 0;
    int confirmed = 0;
    int undone = 0;
    int marked = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        ++seen[std::string(settle::to_string(out[i]))];
        const bool entered = out[i] == settle::barrier_outcome::entered;
        tried += phases[i] == settle::barrier_phase::try_phase && entered ? 1 : 0;
        confirmed += phases[i] == settle::barrier_phase::confirm && entered ? 1 : 0;
        undone += phases[i] == settle::barrier_phase::cancel && entered ? 1 : 0;
        marked += out[i] == settle::barrier_outcome::empty_cancel ? 1 : 0;
    }
    CHECK(tried <= 1);
    CHECK(confirmed + undone + marked == 1);
    CHECK(tried == confirmed + undone);
}

std::string summary(const std::map<std::string, int>& seen) {
    std::string out;
    for (const auto& [name, n] : seen) {
        out += " " + name + "=" + std::to_string(n);
    }
    return out;
}

const std::vector<settle::barrier_phase> six_calls{
    settle::barrier_phase::try_phase, settle::barrier_phase::confirm,
    settle::barrier_phase::cancel,    settle::barrier_phase::try_phase,
    settle::barrier_phase::confirm,   settle::barrier_phase::cancel};

}  // namespace

TEST_CASE("sqlite::barrier_table passes the barrier store conformance suites", "[twophase]") {
    run_suite<sqlite_fixture>(settle::conformance::barrier_store_suite<sqlite_fixture>);
    run_suite<sqlite_fixture>(settle::conformance::barrier_purge_suite<sqlite_fixture>);
}

TEST_CASE("postgres::barrier_table passes the barrier store conformance suites", "[twophase]") {
    run_suite<postgres_fixture>(settle::conformance::barrier_store_suite<postgres_fixture>);
    run_suite<postgres_fixture>(settle::conformance::barrier_purge_suite<postgres_fixture>);
}

TEST_CASE("sqlite and postgres reconcile tables pass the reconcile store conformance suite",
          "[twophase]") {
    run_suite<sqlite_reconcile_fixture>(
        settle::conformance::reconcile_store_suite<sqlite_reconcile_fixture>);
    run_suite<postgres_reconcile_fixture>(
        settle::conformance::reconcile_store_suite<postgres_reconcile_fixture>);
}

TEST_CASE("barrier tables refuse bad names and keep the schema idempotent", "[twophase]") {
    settle_test::temp_database file;
    settle::sqlite::connection conn{file.path()};
    CHECK_THROWS_AS(settle::sqlite::barrier_table(conn, "no spaces"), settle::error);
    pg::connection pconn{conninfo()};
    CHECK_THROWS_AS(pg::barrier_table(pconn, "1st"), settle::error);
    settle::sqlite::barrier_table store{conn, "branches"};
    settle::in_transaction(store, [&](auto& tx) {
        store.create_tables(tx);
        store.create_tables(tx);
    });
}

// Several connections to one PostgreSQL database race try, confirm and cancel
// on one branch per round; each entered phase writes its business row in the
// same transaction. The branch ends one way only, and the business rows
// agree with the outcomes.
TEST_CASE("postgres: racing try, confirm and cancel end a branch one way only",
          "[twophase][concurrency]") {
    scratch_table table{"barrier_race"};
    scratch_table work_table{"barrier_work"};
    std::vector<std::unique_ptr<pg::connection>> conns;
    std::vector<std::unique_ptr<pg::barrier_table>> stores;
    for (std::size_t i = 0; i < six_calls.size(); ++i) {
        conns.push_back(std::make_unique<pg::connection>(conninfo()));
        stores.push_back(std::make_unique<pg::barrier_table>(*conns.back(), table.name()));
    }
    postgres_test::create_tables(*stores[0]);
    postgres_test::run(conns[0]->native(),
                       "CREATE TABLE \"" + work_table.name() + "\" (xid TEXT, phase TEXT)");
    std::map<std::string, int> seen;
    constexpr int rounds = 40;
    for (int round = 0; round < rounds; ++round) {
        const std::string xid = "x" + std::to_string(round);
        const auto out =
            race(stores, xid, six_calls, [&](pg::transaction& tx, settle::barrier_phase p) {
                postgres_test::run(tx.native(), "INSERT INTO \"" + work_table.name() +
                                                    "\" VALUES ('" + xid + "', '" +
                                                    std::string(settle::to_string(p)) + "')");
            });
        INFO(xid);
        check_round(six_calls, out, seen);
        int entered = 0;
        for (const auto o : out) {
            entered += o == settle::barrier_outcome::entered ? 1 : 0;
        }
        CHECK(postgres_test::scalar(conns[0]->native(), "SELECT count(*) FROM \"" +
                                                            work_table.name() + "\" WHERE xid = '" +
                                                            xid + "'") == std::to_string(entered));
    }
    std::printf("postgres barrier race, %d rounds of 6 connections:%s\n", rounds,
                summary(seen).c_str());
}

TEST_CASE("sqlite: racing try, confirm and cancel end a branch one way only",
          "[twophase][concurrency]") {
    settle_test::temp_database file;
    std::vector<std::unique_ptr<settle::sqlite::connection>> conns;
    std::vector<std::unique_ptr<settle::sqlite::barrier_table>> stores;
    for (std::size_t i = 0; i < six_calls.size(); ++i) {
        conns.push_back(std::make_unique<settle::sqlite::connection>(file.path()));
        stores.push_back(
            std::make_unique<settle::sqlite::barrier_table>(*conns.back(), "branches"));
    }
    settle::in_transaction(*stores[0], [&](auto& tx) { stores[0]->create_tables(tx); });
    std::map<std::string, int> seen;
    constexpr int rounds = 40;
    for (int round = 0; round < rounds; ++round) {
        const auto out = race(stores, "x" + std::to_string(round), six_calls,
                              [](settle::sqlite::transaction&, settle::barrier_phase) {});
        INFO(round);
        check_round(six_calls, out, seen);
    }
    std::printf("sqlite barrier race, %d rounds of 6 connections:%s\n", rounds,
                summary(seen).c_str());
}

// A sender's transaction (its order row, then the seal) and a check of its
// message, on two connections at once, each round. They agree: the order row
// exists exactly when the check answered committed; a check that came first
// refused the late commit on the same unique key.
TEST_CASE("postgres: a check-back racing a late commit never both win", "[twophase][concurrency]") {
    scratch_table table{"fence_race"};
    scratch_table orders{"fence_orders"};
    pg::connection sender_conn{conninfo()};
    pg::connection checker_conn{conninfo()};
    pg::barrier_table sender_store{sender_conn, table.name()};
    pg::barrier_table checker_store{checker_conn, table.name()};
    postgres_test::create_tables(sender_store);
    postgres_test::run(sender_conn.native(), "CREATE TABLE \"" + orders.name() + "\" (id TEXT)");
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)};
    settle::check_back_fence sender(sender_store, clock);
    settle::check_back_fence checker(checker_store, clock);
    constexpr int rounds = 60;
    int committed = 0;
    for (int round = 0; round < rounds; ++round) {
        const std::string id = "m" + std::to_string(round);
        settle::check_back_result placed(settle::local_outcome::rolled_back);
        settle::check_back_result checked(settle::local_outcome::rolled_back);
        std::latch go(2);
        std::thread a([&] {
            go.arrive_and_wait();
            pg::transaction tx(sender_conn);
            postgres_test::run(tx.native(),
                               "INSERT INTO \"" + orders.name() + "\" VALUES ('" + id + "')");
            placed = sender.seal(tx, id);
            if (placed) {
                tx.commit();
            }
        });
        std::thread b([&] {
            go.arrive_and_wait();
            pg::transaction tx(checker_conn);
            checked = checker.check(tx, id);
            tx.commit();
        });
        a.join();
        b.join();
        INFO(id);
        CHECK(placed.outcome() == checked.outcome());
        CHECK(postgres_test::scalar(checker_conn.native(),
                                    "SELECT count(*) FROM \"" + orders.name() + "\" WHERE id = '" +
                                        id + "'") == (checked.is_committed() ? "1" : "0"));
        committed += checked.is_committed() ? 1 : 0;
    }
    std::printf("postgres check-back race, %d rounds: committed=%d rolled_back=%d\n", rounds,
                committed, rounds - committed);
}

namespace {

struct always_committed {
    settle::checked_status status(const settle::uncertain_record&) {
        return settle::checked_status::committed;
    }
};

}  // namespace

// Two reconcilers, each on its own connection, run over the same late
// records at once: every record is resolved exactly once.
TEST_CASE("postgres: two reconcilers on one store resolve each record once",
          "[twophase][concurrency]") {
    scratch_table table{"reconcile_race"};
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)};
    pg::connection first_conn{conninfo()};
    pg::connection second_conn{conninfo()};
    pg::reconcile_table first_store{first_conn, table.name()};
    pg::reconcile_table second_store{second_conn, table.name()};
    postgres_test::create_tables(first_store);
    const settle::persisted_retry checks{settle::ladder{std::chrono::minutes(1)}, 3};
    const settle::reconcile_options options{.threshold = std::chrono::minutes(1),
                                            .batch_size = 100};
    settle::reconciler first(first_store, checks, clock, options);
    settle::reconciler second(second_store, checks, clock, options);
    constexpr int records = 60;
    settle::in_transaction(first_store, [&](auto& tx) {
        for (int n = 0; n < records; ++n) {
            REQUIRE(first.watch(tx, "o" + std::to_string(n)));
        }
    });
    clock.advance(std::chrono::minutes(2));
    std::mutex mutex;
    std::map<std::string, int> resolved;
    const auto resolve = [&](auto&, const settle::uncertain_record& r, settle::checked_status) {
        const std::lock_guard lock(mutex);
        ++resolved[r.id];
    };
    always_committed source;
    settle::reconcile_run_result a;
    settle::reconcile_run_result b;
    std::latch go(2);
    std::thread ta([&] {
        go.arrive_and_wait();
        a = first.run_once(source, resolve);
    });
    std::thread tb([&] {
        go.arrive_and_wait();
        b = second.run_once(source, resolve);
    });
    ta.join();
    tb.join();
    CHECK(resolved.size() == records);
    for (const auto& [id, times] : resolved) {
        INFO(id);
        CHECK(times == 1);
    }
    CHECK(a.committed + b.committed == records);
    CHECK(a.checked + b.checked == a.committed + b.committed + a.gone + b.gone);
    std::printf("postgres reconcilers: first resolved %zu (gone %zu), second %zu (gone %zu)\n",
                a.committed, a.gone, b.committed, b.gone);
}

namespace {

// Forks a child that runs `work` on a connection of its own, which writes
// one byte to `ready` once its transaction holds what it wrote (uncommitted),
// and then waits to be killed; kills it with SIGKILL once the byte arrives.
template <class Work>
void killed_mid_transaction(Work work) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(ready[0]);
        try {
            work(ready[1]);
        } catch (...) {
            ::_exit(2);
        }
        ::_exit(3);  // work returned: it should have waited to be killed
    }
    ::close(ready[1]);
    char byte = 0;
    const ssize_t got = ::read(ready[0], &byte, 1);
    ::close(ready[0]);
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(got == 1);
    REQUIRE(WIFSIGNALED(status));
}

// In the child: says the transaction is where the test wants it, then waits.
[[noreturn]] void signal_and_wait(int fd) {
    const char byte = 1;
    (void)::write(fd, &byte, 1);
    for (;;) {
        ::pause();
    }
}

}  // namespace

// Real process kills between the steps: a participant killed inside its
// try's transaction, and a sender killed after sealing but before its
// commit. The server rolls each back; the cancel is then an empty one that
// fences the late try, and the check answers rolled back for good.
TEST_CASE("postgres: a process killed mid-phase leaves nothing a later phase trips on",
          "[twophase]") {
    scratch_table table{"barrier_kill"};
    {
        pg::connection conn{conninfo()};
        pg::barrier_table store{conn, table.name()};
        postgres_test::create_tables(store);
    }
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)};
    killed_mid_transaction([&](int fd) {
        pg::connection conn{conninfo()};
        pg::barrier_table store{conn, table.name()};
        settle::tcc_barrier barrier(store, clock);
        pg::transaction tx(conn);
        if (barrier.try_phase(tx, "x1", "stock", [](auto&) {}).is_entered()) {
            signal_and_wait(fd);
        }
    });
    killed_mid_transaction([&](int fd) {
        pg::connection conn{conninfo()};
        pg::barrier_table store{conn, table.name()};
        settle::check_back_fence fence(store, clock);
        pg::transaction tx(conn);
        if (fence.seal(tx, "m1").is_committed()) {
            signal_and_wait(fd);
        }
    });
    pg::connection conn{conninfo()};
    pg::barrier_table store{conn, table.name()};
    settle::tcc_barrier barrier(store, clock);
    settle::check_back_fence fence(store, clock);
    const auto in_tx = [&](auto fn) {
        pg::transaction tx(conn);
        const auto out = fn(tx);
        tx.commit();
        return out;
    };
    CHECK(in_tx([&](auto& tx) {
              return barrier.cancel(tx, "x1", "stock", [](auto&) {}).outcome();
          }) == settle::barrier_outcome::empty_cancel);
    CHECK(in_tx([&](auto& tx) {
              return barrier.try_phase(tx, "x1", "stock", [](auto&) {}).outcome();
          }) == settle::barrier_outcome::hanging);
    CHECK(in_tx([&](auto& tx) { return fence.check(tx, "m1").outcome(); }) ==
          settle::local_outcome::rolled_back);
    CHECK(in_tx([&](auto& tx) { return fence.seal(tx, "m1").outcome(); }) ==
          settle::local_outcome::rolled_back);
}
