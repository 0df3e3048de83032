#include <settle/stores/memory_versioned.hpp>
#include <settle/transaction.hpp>
#include <settle/transition.hpp>

#include "fsm/order.hpp"
#include "settle_test.hpp"

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace shop;
using settle::stored_transition_outcome;
namespace memory = settle::memory;

namespace {
constexpr order paid_order{1000, 0};

struct orders {
    memory::database db;
    memory::versioned_table<std::string, order_state> states{db};
    memory::table<int, std::string> outbox{db};  // a side effect written with the transition

    settle::version_stamp create(const std::string& id) {
        return settle::in_transaction(states, [&](memory::transaction& tx) {
            auto created = states.insert(tx, id, order_machine.initial());
            REQUIRE(created.is_applied());
            return created.stamp();
        });
    }
    order_state state_of(const std::string& id) {
        return settle::in_transaction(
            states, [&](memory::transaction& tx) { return states.load(tx, id)->value; });
    }
};
}  // namespace

TEST_CASE("a stored transition applies once and then reports duplicates", "[fsm]") {
    orders o;
    const auto first = o.create("o-1");
    auto tx = o.db.begin();
    auto submitted = settle::transition(o.states, tx, "o-1", order_machine, submit, paid_order);
    REQUIRE(submitted);
    CHECK(submitted.outcome() == stored_transition_outcome::applied);
    CHECK(submitted.check()->to() == awaiting_payment);
    CHECK(submitted.stamp() > first);
    auto paid_once = settle::transition(o.states, tx, "o-1", order_machine, pay, paid_order);
    REQUIRE(paid_once);
    CHECK(paid_once.is_applied());
    auto paid_twice = settle::transition(o.states, tx, "o-1", order_machine, pay, paid_order);
    REQUIRE_FALSE(paid_twice.is_missing());
    CHECK_FALSE(paid_twice);
    CHECK(paid_twice.is_duplicate());
    CHECK(paid_twice.outcome() == stored_transition_outcome::duplicate);
    CHECK(paid_twice.stamp() == paid_once.stamp());  // nothing was written
    auto cancel = settle::transition(o.states, tx, "o-1", order_machine, shop::cancel, paid_order);
    REQUIRE_FALSE(cancel.is_missing());
    CHECK(cancel.is_rejected());
    CHECK(cancel.outcome() == stored_transition_outcome::rejected);
    CHECK(cancel.check()->from() == paid);
    tx.commit();
    CHECK(o.state_of("o-1") == paid);
}

TEST_CASE("a stored transition of an absent key is missing", "[fsm]") {
    orders o;
    auto tx = o.db.begin();
    const auto t = settle::transition(o.states, tx, "nope", order_machine, pay, paid_order);
    CHECK_FALSE(t);
    CHECK(t.is_missing());
    CHECK(t.outcome() == stored_transition_outcome::missing);
    CHECK_FALSE(t.check().has_value());
    CHECK(t.stamp() == settle::version_stamp(0));
    STATIC_REQUIRE(settle::to_string(stored_transition_outcome::missing) == "missing");
}

TEST_CASE("a stored transition rolls back with its side effect", "[fsm]") {
    orders o;
    o.create("o-1");
    {
        auto tx = o.db.begin();
        auto t = settle::transition(o.states, tx, "o-1", order_machine, submit, paid_order);
        REQUIRE(t);
        REQUIRE(t.is_applied());
        o.outbox.insert(tx, 1, "order submitted");
        // destroyed without commit: the process failed before it could commit
    }
    CHECK(o.state_of("o-1") == created);
    settle::in_transaction(o.states,
                           [&](memory::transaction& tx) { CHECK(o.outbox.size(tx) == 0); });
}

namespace {
// A store that lets another writer win once: its first compare_and_set first
// commits `competitor` at the expected stamp, as a transaction that got there
// first would, then tries the caller's write, which conflicts.
struct contended_states {
    using key_type = std::string;
    using value_type = order_state;
    using transaction = memory::transaction;

    memory::versioned_table<std::string, order_state>& inner;
    order_state competitor;
    bool report_current_value = true;
    int conflicts = 0;

    transaction begin() { return inner.begin(); }
    std::optional<settle::versioned<order_state>> load(const transaction& tx, const key_type& k) {
        return inner.load(tx, k);
    }
    settle::write_result<order_state> insert(transaction& tx, const key_type& k, order_state v) {
        return inner.insert(tx, k, v);
    }
    settle::write_result<order_state> compare_and_set(transaction& tx, const key_type& k,
                                                      settle::version_stamp expected,
                                                      order_state v) {
        if (conflicts++ == 0) {
            REQUIRE(inner.compare_and_set(tx, k, expected, competitor).is_applied());
            auto lost = inner.compare_and_set(tx, k, expected, v);
            REQUIRE(lost.outcome() == settle::write_outcome::conflict);
            if (!report_current_value) {
                return settle::write_result<order_state>::conflict(lost.stamp());
            }
            return lost;
        }
        return inner.compare_and_set(tx, k, expected, v);
    }
    settle::write_result<order_state> erase(transaction& tx, const key_type& k,
                                            settle::version_stamp expected) {
        return inner.erase(tx, k, expected);
    }
};
static_assert(settle::versioned_store<contended_states>);
}  // namespace

TEST_CASE("a lost compare and set is checked again against the winner's state", "[fsm]") {
    const bool report_current_value = GENERATE(true, false);
    INFO("the conflict carries the current value: " << report_current_value);
    orders o;
    o.create("o-1");
    settle::in_transaction(o.states, [&](memory::transaction& tx) {
        (void)settle::transition(o.states, tx, "o-1", order_machine, submit, paid_order);
    });

    SECTION("the winner took the same transition: duplicate") {
        contended_states store{o.states, paid, report_current_value};
        auto tx = o.db.begin();
        auto t = settle::transition(store, tx, "o-1", order_machine, pay, paid_order);
        CHECK(t.outcome() == stored_transition_outcome::duplicate);
        REQUIRE(t.check().has_value());
        CHECK(t.check()->from() == paid);
        CHECK(store.conflicts == 1);
    }
    SECTION("the winner moved the state elsewhere: rejected") {
        contended_states store{o.states, cancelled, report_current_value};
        auto tx = o.db.begin();
        auto t = settle::transition(store, tx, "o-1", order_machine, pay, paid_order);
        CHECK(t.outcome() == stored_transition_outcome::rejected);
        REQUIRE(t.check().has_value());
        CHECK(t.check()->from() == cancelled);
    }
    SECTION("the winner's state still allows the event: applied on the second try") {
        contended_states store{o.states, awaiting_payment, report_current_value};
        auto tx = o.db.begin();
        auto t = settle::transition(store, tx, "o-1", order_machine, pay, paid_order);
        REQUIRE(t);
        CHECK(t.is_applied());
        CHECK(store.conflicts == 2);
        tx.commit();
        CHECK(o.state_of("o-1") == paid);
    }
}

TEST_CASE("of many racing callers exactly one applies a stored transition", "[fsm][concurrency]") {
    constexpr int callers = 8;
    orders o;
    o.create("o-1");
    settle::in_transaction(o.states, [&](memory::transaction& tx) {
        (void)settle::transition(o.states, tx, "o-1", order_machine, submit, paid_order);
    });
    std::atomic<int> applied{0};
    std::atomic<int> duplicate{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < callers; ++i) {
        threads.emplace_back([&, i] {
            settle::in_transaction(o.states, [&](memory::transaction& tx) {
                auto t = settle::transition(o.states, tx, "o-1", order_machine, pay, paid_order);
                if (t) {
                    ++applied;
                    o.outbox.insert(tx, i, "capture payment");  // the one-time side effect
                } else if (t.outcome() == stored_transition_outcome::duplicate) {
                    ++duplicate;
                }
            });
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(applied == 1);
    CHECK(duplicate == callers - 1);
    settle::in_transaction(o.states,
                           [&](memory::transaction& tx) { CHECK(o.outbox.size(tx) == 1); });
    CHECK(o.state_of("o-1") == paid);
}

namespace {
// A backend that breaks the read-committed requirement: load keeps returning
// the snapshot it took, and every compare-and-set conflicts.
struct snapshot_states {
    using key_type = std::string;
    using value_type = order_state;
    using transaction = memory::transaction;

    memory::database& db;
    int loads = 0;

    transaction begin() { return db.begin(); }
    std::optional<settle::versioned<order_state>> load(const transaction&, const key_type&) {
        ++loads;
        return settle::versioned<order_state>{awaiting_payment, settle::version_stamp(2)};
    }
    settle::write_result<order_state> insert(transaction&, const key_type&, order_state) {
        return settle::write_result<order_state>::conflict(settle::version_stamp(3));
    }
    settle::write_result<order_state> compare_and_set(transaction&, const key_type&,
                                                      settle::version_stamp, order_state&&) {
        return settle::write_result<order_state>::conflict(settle::version_stamp(3));
    }
    settle::write_result<order_state> erase(transaction&, const key_type&, settle::version_stamp) {
        return settle::write_result<order_state>::conflict(settle::version_stamp(3));
    }
};
static_assert(settle::versioned_store<snapshot_states>);
}  // namespace

TEST_CASE("a backend that never shows the winner's write is reported not looped on", "[fsm]") {
    memory::database db;
    snapshot_states store{db};
    auto tx = db.begin();
    try {
        (void)settle::transition(store, tx, "o-1", order_machine, pay, paid_order);
        FAIL("transition returned");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::backend_failure);
        CHECK(std::string(e.what()).find("settle::transition") != std::string::npos);
    }
    CHECK(store.loads == 64);
}
