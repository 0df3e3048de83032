// The try/confirm/cancel barrier on the in-memory store: the conformance
// suites, what tcc_barrier adds (work runs only when a phase is entered, ids
// checked, purge by retention), and races of the three phases in threads.
#include <settle/barrier.hpp>
#include <settle/check_back.hpp>

#include "settle_test.hpp"

#include <settle/stores/memory.hpp>
#include <settle/testing/barrier_store_suite.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <latch>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

struct memory_fixture {
    memory::database db;
    memory::barrier_table store{db};
};

// A stock service: units held per branch, and the barrier that guards them.
struct stock_service {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 5 / 1)};
    memory::database db;
    memory::barrier_table branches{db};
    memory::table<std::string, int> held{db};  // transaction id -> units held
    memory::table<std::string, int> sold{db};  // transaction id -> units sold
    settle::tcc_barrier<memory::barrier_table, settle::manual_clock> barrier{branches, clock};

    void add(memory::transaction& tx, memory::table<std::string, int>& t, const std::string& xid,
             int n) {
        const int* now = t.find(tx, xid);
        t.put(tx, xid, (now == nullptr ? 0 : *now) + n);
    }
    settle::barrier_result try_phase(const std::string& xid) {
        auto tx = db.begin();
        const auto r = barrier.try_phase(tx, xid, "stock", [&](auto& t) { add(t, held, xid, 1); });
        tx.commit();
        return r;
    }
    settle::barrier_result confirm(const std::string& xid) {
        auto tx = db.begin();
        const auto r = barrier.confirm(tx, xid, "stock", [&](auto& t) {
            add(t, held, xid, -1);
            add(t, sold, xid, 1);
        });
        tx.commit();
        return r;
    }
    settle::barrier_result cancel(const std::string& xid) {
        auto tx = db.begin();
        const auto r = barrier.cancel(tx, xid, "stock", [&](auto& t) { add(t, held, xid, -1); });
        tx.commit();
        return r;
    }
    int count(memory::table<std::string, int>& t, const std::string& xid) {
        auto tx = db.begin();
        const int* n = t.find(tx, xid);
        return n == nullptr ? 0 : *n;
    }
};

}  // namespace

TEST_CASE("memory::barrier_table passes the barrier store conformance suites", "[twophase]") {
    for (const auto& c : settle::conformance::barrier_store_suite<memory_fixture>) {
        INFO(std::string(c.name));
        memory_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
    for (const auto& c : settle::conformance::barrier_purge_suite<memory_fixture>) {
        INFO(std::string(c.name));
        memory_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("each phase's work runs once, only when the phase is entered", "[twophase]") {
    stock_service s;
    CHECK(s.try_phase("x1").is_entered());
    CHECK(s.try_phase("x1").is_duplicate());
    CHECK(s.count(s.held, "x1") == 1);
    CHECK(s.confirm("x1"));
    const settle::barrier_result again = s.confirm("x1");
    CHECK(again.is_duplicate());
    CHECK_FALSE(again.is_refused());
    CHECK_FALSE(again);
    CHECK(s.cancel("x1").outcome() == settle::barrier_outcome::branch_confirmed);
    CHECK(s.cancel("x1").is_refused());
    CHECK(s.count(s.held, "x1") == 0);
    CHECK(s.count(s.sold, "x1") == 1);
}

TEST_CASE("an empty cancel runs no work and refuses the try that hangs after it", "[twophase]") {
    stock_service s;
    const settle::barrier_result cancel = s.cancel("x1");
    CHECK(cancel.is_empty_cancel());
    CHECK_FALSE(cancel.is_refused());
    CHECK(s.count(s.held, "x1") == 0);
    const settle::barrier_result late = s.try_phase("x1");
    CHECK(late.outcome() == settle::barrier_outcome::hanging);
    CHECK(late.is_refused());
    CHECK(s.count(s.held, "x1") == 0);
    CHECK(s.confirm("x1").outcome() == settle::barrier_outcome::branch_cancelled);
    CHECK(s.count(s.sold, "x1") == 0);
}

TEST_CASE("work that throws keeps nothing: the phase can be entered again", "[twophase]") {
    stock_service s;
    {
        auto tx = s.db.begin();
        CHECK_THROWS_AS(s.barrier.try_phase(tx, "x1", "stock",
                                            [](auto&) { throw std::runtime_error("no stock"); }),
                        std::runtime_error);
    }
    CHECK(s.try_phase("x1").is_entered());
    CHECK(s.count(s.held, "x1") == 1);
}

TEST_CASE("tcc_barrier refuses empty ids and a retention that is not positive", "[twophase]") {
    stock_service s;
    auto tx = s.db.begin();
    const auto nothing = [](auto&) {};
    const auto code = [](auto&& fn) {
        try {
            (void)fn();
        } catch (const settle::error& e) {
            return e.code();
        }
        return std::error_code();
    };
    CHECK(code([&] { return s.barrier.try_phase(tx, "", "stock", nothing); }) ==
          settle::errc::invalid_argument);
    CHECK(code([&] { return s.barrier.confirm(tx, "x1", "", nothing); }) ==
          settle::errc::invalid_argument);
    CHECK(code([&] { return s.barrier.cancel(tx, "", "", nothing); }) ==
          settle::errc::invalid_argument);
    CHECK(s.branches.size(tx) == 0);
    tx.commit();
    CHECK_THROWS_AS((settle::tcc_barrier(s.branches, s.clock, {.retention = 0us})), settle::error);
}

TEST_CASE("purge removes ended branches older than the retention, in batches", "[twophase]") {
    stock_service s;
    settle::tcc_barrier barrier(s.branches, s.clock, {.retention = 1h});
    for (int n = 0; n < 5; ++n) {
        const std::string xid = "x" + std::to_string(n);
        (void)s.try_phase(xid);
        (void)(n % 2 == 0 ? s.confirm(xid) : s.cancel(xid));
        (void)s.cancel("empty" + std::to_string(n));  // markers
    }
    (void)s.try_phase("open");
    const auto purge = [&](std::size_t limit) {
        return settle::in_transaction(s.branches,
                                      [&](auto& tx) { return barrier.purge(tx, limit); });
    };
    CHECK(purge(4) == 0);  // nothing is an hour old yet
    s.clock.advance(1h + 1us);
    CHECK(purge(4) == 4);
    CHECK(purge(4) == 4);
    CHECK(purge(4) == 2);
    CHECK(purge(4) == 0);
    CHECK(settle::in_transaction(s.branches, [&](auto& tx) { return s.branches.size(tx); }) == 1);
    CHECK(s.cancel("open").is_entered());
}

TEST_CASE("barrier outcomes and phases have names for logs", "[twophase]") {
    using o = settle::barrier_outcome;
    for (const o outcome : {o::entered, o::empty_cancel, o::duplicate, o::hanging,
                            o::branch_cancelled, o::branch_confirmed, o::not_tried}) {
        CHECK(settle::to_string(outcome).find("unknown") == std::string_view::npos);
    }
    CHECK(settle::to_string(settle::barrier_phase::try_phase) == "try");
    CHECK(settle::to_string(settle::barrier_phase::cancel) == "cancel");
}

// Each round: one branch, and a try, a confirm and a cancel (each sent twice)
// started at once from six threads, which thread sends which phase turning
// with every round. Whatever the order, the branch ends
// either confirmed with one unit sold, or cancelled with nothing held or
// sold; never both, and no work runs twice.
TEST_CASE("racing try, confirm and cancel never both confirm and cancel a branch",
          "[twophase][concurrency]") {
    stock_service s;
    constexpr int rounds = 150;
    std::map<std::string, int> seen;  // outcome names, counted
    for (int round = 0; round < rounds; ++round) {
        const std::string xid = "x" + std::to_string(round);
        std::array<settle::barrier_result, 6> results{
            settle::barrier_result(settle::barrier_outcome::not_tried),
            settle::barrier_result(settle::barrier_outcome::not_tried),
            settle::barrier_result(settle::barrier_outcome::not_tried),
            settle::barrier_result(settle::barrier_outcome::not_tried),
            settle::barrier_result(settle::barrier_outcome::not_tried),
            settle::barrier_result(settle::barrier_outcome::not_tried)};
        std::latch go(6);
        std::vector<std::thread> threads;
        for (int t = 0; t < 6; ++t) {
            threads.emplace_back([&, t] {
                go.arrive_and_wait();
                switch ((t + round) % 3) {
                case 0: results[static_cast<std::size_t>(t)] = s.try_phase(xid); break;
                case 1: results[static_cast<std::size_t>(t)] = s.confirm(xid); break;
                default: results[static_cast<std::size_t>(t)] = s.cancel(xid); break;
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        int tried = 0;      // try entered
        int confirmed = 0;  // confirm entered
        int undone = 0;     // cancel entered: a try undone
        int marked = 0;     // empty cancel
        for (std::size_t t = 0; t < results.size(); ++t) {
            ++seen[std::string(settle::to_string(results[t].outcome()))];
            const bool entered = results[t].is_entered();
            const std::size_t phase = (t + static_cast<std::size_t>(round)) % 3;
            tried += phase == 0 && entered ? 1 : 0;
            confirmed += phase == 1 && entered ? 1 : 0;
            undone += phase == 2 && entered ? 1 : 0;
            marked += results[t].is_empty_cancel() ? 1 : 0;
        }
        INFO(xid);
        CHECK(tried <= 1);
        CHECK(confirmed + undone + marked == 1);  // ended once, one way
        CHECK(tried == confirmed + undone);       // every try ended by its own phase
        CHECK(s.count(s.sold, xid) == confirmed);
        CHECK(s.count(s.held, xid) == 0);
    }
    std::string summary;
    for (const auto& [name, n] : seen) {
        summary += " " + name + "=" + std::to_string(n);
    }
    std::printf("barrier race, %d rounds of 6 calls:%s\n", rounds, summary.c_str());
}

namespace {

// A sender: orders and the fence over its barrier table, in one database.
struct sender {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 5 / 1)};
    memory::database db;
    memory::barrier_table branches{db};
    memory::table<std::string, int> orders{db};
    settle::check_back_fence<memory::barrier_table, settle::manual_clock> fence{branches, clock};

    // The sender's transaction: writes the order, seals its message, and
    // commits only if the seal says so.
    settle::check_back_result place(const std::string& id) {
        auto tx = db.begin();
        orders.put(tx, id, 1);
        const settle::check_back_result r = fence.seal(tx, id);
        if (r) {
            tx.commit();
        }
        return r;
    }
    settle::check_back_result check(const std::string& id) {
        return db.transact([&](auto& tx) { return fence.check(tx, id); });
    }
    bool has(const std::string& id) {
        return db.transact([&](auto& tx) { return orders.find(tx, id) != nullptr; });
    }
};

}  // namespace

TEST_CASE("check-back: a sealed and committed message is committed, every time", "[twophase]") {
    sender s;
    CHECK(s.place("m1").is_committed());
    CHECK(s.check("m1").is_committed());
    CHECK(s.check("m1").is_committed());
    CHECK(s.place("m1").is_committed());  // a repeated seal changes nothing
}

TEST_CASE("check-back: a rolled back answer is final and refuses the late commit", "[twophase]") {
    sender s;
    CHECK(s.check("m1").is_rolled_back());
    const settle::check_back_result late = s.place("m1");
    CHECK(late.is_rolled_back());
    CHECK_FALSE(late);
    CHECK_FALSE(s.has("m1"));
    CHECK(s.check("m1").outcome() == settle::local_outcome::rolled_back);
}

TEST_CASE("check-back: a seal that rolled back leaves the check to decide rolled back",
          "[twophase]") {
    sender s;
    {
        auto tx = s.db.begin();
        CHECK(s.fence.seal(tx, "m1").is_committed());
    }  // the sender's transaction rolls back after all
    CHECK(s.check("m1").is_rolled_back());
    CHECK(s.place("m1").is_rolled_back());
    CHECK(settle::to_string(settle::local_outcome::committed) == "committed");
}

// Each round, a sender's transaction and a check of its message start at
// once. Whoever is first, they agree: the order exists exactly when the
// check answered committed.
TEST_CASE("check-back: a check racing a late commit never both win", "[twophase][concurrency]") {
    sender s;
    constexpr int rounds = 200;
    int committed = 0;
    for (int round = 0; round < rounds; ++round) {
        const std::string id = "m" + std::to_string(round);
        settle::check_back_result placed(settle::local_outcome::rolled_back);
        settle::check_back_result checked(settle::local_outcome::rolled_back);
        std::latch go(2);
        std::thread a([&] {
            go.arrive_and_wait();
            placed = s.place(id);
        });
        std::thread b([&] {
            go.arrive_and_wait();
            checked = s.check(id);
        });
        a.join();
        b.join();
        INFO(id);
        CHECK(placed.outcome() == checked.outcome());
        CHECK(s.has(id) == checked.is_committed());
        committed += checked.is_committed() ? 1 : 0;
    }
    std::printf("check-back race, %d rounds: committed=%d rolled_back=%d\n", rounds, committed,
                rounds - committed);
}
