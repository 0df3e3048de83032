#include <settle/optimistic.hpp>
#include <settle/stores/memory_versioned.hpp>
#include <settle/transaction.hpp>

#include "settle_test.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace memory = settle::memory;
using namespace std::chrono_literals;
using settle::update_outcome;
using settle::version_stamp;

namespace {

using counter_table = memory::versioned_table<std::string, long>;

// Forwards to a versioned_table, counting loads and compare-and-sets. It can
// keep the current value out of conflicts (as a backend that cannot return it
// cheaply would), and throw from the next compare-and-sets.
struct counting_store {
    using key_type = std::string;
    using value_type = long;
    using transaction = memory::transaction;

    counter_table& table;
    bool return_current_value = true;
    int loads = 0;
    int writes = 0;
    int failures_left = 0;
    std::exception_ptr failure =
        std::make_exception_ptr(settle::error(settle::errc::unavailable, "the database went away"));
    // Another writer's commit landing between a load and a compare-and-set,
    // as read committed lets it inside one transaction: the next
    // compare-and-sets first write this value in tx.
    int interferences_left = 0;
    long interference = 0;

    transaction begin() { return table.begin(); }
    std::optional<settle::versioned<long>> load(transaction& tx, const std::string& key) {
        ++loads;
        return table.load(tx, key);
    }
    settle::write_result<long> insert(transaction& tx, const std::string& key, long value) {
        return table.insert(tx, key, value);
    }
    settle::write_result<long> compare_and_set(transaction& tx, const std::string& key,
                                               version_stamp expected, long value) {
        ++writes;
        if (failures_left > 0) {
            --failures_left;
            std::rethrow_exception(failure);
        }
        if (interferences_left > 0) {
            --interferences_left;
            const auto current = table.load(tx, key);
            REQUIRE(table.compare_and_set(tx, key, current->stamp, interference).is_applied());
        }
        auto written = table.compare_and_set(tx, key, expected, value);
        if (written.outcome() == settle::write_outcome::conflict && !return_current_value) {
            return settle::write_result<long>::conflict(written.stamp());
        }
        return written;
    }
    settle::write_result<long> erase(transaction& tx, const std::string& key,
                                     version_stamp expected) {
        return table.erase(tx, key, expected);
    }
};

// A store whose commit of a write reports a lost connection after the write
// took effect: the commit that is in doubt.
struct doubtful_commit_store {
    using key_type = std::string;
    using value_type = long;
    struct transaction {
        memory::transaction tx;
        int* failures_left;
        bool wrote = false;

        void commit() {
            tx.commit();
            if (wrote && *failures_left > 0) {
                --*failures_left;
                throw settle::error(settle::errc::unavailable, "connection lost during commit");
            }
        }
    };

    counter_table& table;
    int failures_left = 0;

    transaction begin() { return transaction{table.begin(), &failures_left}; }
    std::optional<settle::versioned<long>> load(transaction& tx, const std::string& key) {
        return table.load(tx.tx, key);
    }
    settle::write_result<long> insert(transaction& tx, const std::string& key, long value) {
        tx.wrote = true;
        return table.insert(tx.tx, key, value);
    }
    settle::write_result<long> compare_and_set(transaction& tx, const std::string& key,
                                               version_stamp expected, long value) {
        tx.wrote = true;
        return table.compare_and_set(tx.tx, key, expected, value);
    }
    settle::write_result<long> erase(transaction& tx, const std::string& key,
                                     version_stamp expected) {
        tx.wrote = true;
        return table.erase(tx.tx, key, expected);
    }
};

struct bank {
    memory::database db;
    counter_table balances{db};
    settle::manual_clock clock;
    settle::manual_sleeper sleeper{clock};

    version_stamp open(const std::string& key, long amount) {
        return db.transact([&](memory::transaction& tx) {
            const auto inserted = balances.insert(tx, key, amount);
            REQUIRE(inserted.is_applied());
            return inserted.stamp();
        });
    }

    std::optional<settle::versioned<long>> read(const std::string& key) {
        return db.transact([&](memory::transaction& tx) { return balances.load(tx, key); });
    }

    // Another writer, getting in between a read and a compare-and-set.
    void interfere(const std::string& key, long amount) {
        db.transact([&](memory::transaction& tx) {
            const auto current = balances.load(tx, key);
            REQUIRE(current.has_value());
            REQUIRE(balances.compare_and_set(tx, key, current->stamp, amount).is_applied());
        });
    }
};

const auto no_wait = settle::retry_policy{settle::constant_backoff{0ns}, 10};

// Does not wait: lets the other threads run.
struct yielding_sleeper {
    bool sleep_for(std::chrono::nanoseconds, std::stop_token) {
        std::this_thread::yield();
        return true;
    }
};

}  // namespace

TEST_CASE("optimistic update writes what fn returns with a new stamp", "[version]") {
    bank b;
    const version_stamp opened = b.open("alice", 100);
    int calls = 0;
    const auto r = settle::optimistic_update(
        b.balances, "alice",
        [&](const long& balance) {
            ++calls;
            return balance - 30;
        },
        no_wait, b.clock, b.sleeper);
    CHECK(r.outcome() == update_outcome::applied);
    CHECK(r.is_applied());
    CHECK(r.value() == std::optional<long>(70));
    CHECK(r.stamp() > opened);
    CHECK(r.attempts() == 1);
    CHECK(r.reason() == settle::retry_outcome::succeeded);
    CHECK(calls == 1);
    CHECK(b.read("alice") == std::optional(settle::versioned<long>{70, r.stamp()}));
    CHECK(b.sleeper.sleeps() == 0);
}

TEST_CASE("fn may decline to write and then no stamp is used", "[version]") {
    bank b;
    const version_stamp opened = b.open("alice", 20);
    const auto r = settle::optimistic_update(
        b.balances, "alice",
        [](const long& balance) -> std::optional<long> {
            if (balance < 30) {
                return std::nullopt;  // insufficient funds: leave it
            }
            return balance - 30;
        },
        no_wait, b.clock, b.sleeper);
    CHECK(r.outcome() == update_outcome::unchanged);
    CHECK(r.value() == std::optional<long>(20));
    CHECK(r.stamp() == opened);
    CHECK(b.read("alice") == std::optional(settle::versioned<long>{20, opened}));
}

TEST_CASE("optimistic update of an absent key reports missing without calling fn", "[version]") {
    bank b;
    int calls = 0;
    const auto r = settle::optimistic_update(
        b.balances, "nobody",
        [&](const long& v) {
            ++calls;
            return v + 1;
        },
        no_wait, b.clock, b.sleeper);
    CHECK(r.outcome() == update_outcome::missing);
    CHECK_FALSE(r.value().has_value());
    CHECK(r.stamp() == version_stamp(0));
    CHECK(calls == 0);
    CHECK_FALSE(b.read("nobody").has_value());
}

TEST_CASE("a conflict retries fn with the newer value", "[version]") {
    bank b;
    b.open("alice", 100);
    counting_store store{b.balances};
    const bool value_in_conflict = GENERATE(true, false);
    CAPTURE(value_in_conflict);
    store.return_current_value = value_in_conflict;
    std::vector<long> seen;
    const auto r = settle::optimistic_update(
        store, "alice",
        [&](const long& balance) {
            seen.push_back(balance);
            if (seen.size() == 1) {
                b.interfere("alice", 500);  // lands between this read and the write
            }
            return balance + 1;
        },
        no_wait, b.clock, b.sleeper);
    CHECK(r.outcome() == update_outcome::applied);
    CHECK(r.value() == std::optional<long>(501));
    CHECK(r.attempts() == 2);
    CHECK(seen == std::vector<long>{100, 500});
    CHECK(store.writes == 2);
    // A conflict that carries the current value saves the second read.
    CHECK(store.loads == (value_in_conflict ? 1 : 2));
    CHECK(b.read("alice")->value == 501);
    CHECK(b.sleeper.sleeps() == 1);
}

TEST_CASE("optimistic update gives up after the policy's attempts", "[version]") {
    bank b;
    b.open("alice", 0);
    long interference = 0;
    int calls = 0;
    const auto r = settle::optimistic_update(
        b.balances, "alice",
        [&](const long& balance) {
            ++calls;
            b.interfere("alice", ++interference * 100);  // someone always gets in first
            return balance + 1;
        },
        settle::retry_policy{settle::constant_backoff{5ms}, 3}, b.clock, b.sleeper);
    CHECK(r.outcome() == update_outcome::gave_up);
    CHECK(r.reason() == settle::retry_outcome::exhausted);
    CHECK(r.attempts() == 3);
    CHECK(calls == 3);
    const auto current = b.read("alice");
    CHECK(r.stamp() == current->stamp);
    CHECK(r.value() == std::optional<long>(300));
    CHECK(current->value == 300);
    CHECK(b.sleeper.sleeps() == 2);
}

TEST_CASE("a deadline stops optimistic update retries", "[version]") {
    bank b;
    b.open("alice", 0);
    long interference = 0;
    const auto policy =
        settle::retry_policy{settle::ladder{10ms, 20ms, 40ms}, 100}.with_deadline(50ms);
    const auto r = settle::optimistic_update(
        b.balances, "alice",
        [&](const long& balance) {
            b.interfere("alice", ++interference);
            return balance + 1;
        },
        policy, b.clock, b.sleeper);
    CHECK(r.outcome() == update_outcome::gave_up);
    CHECK(r.reason() == settle::retry_outcome::deadline);
    CHECK(r.attempts() == 3);  // waits of 10ms and 20ms fit; 40ms would end past 50ms
    CHECK(b.sleeper.total() == 30ms);
}

TEST_CASE("an exception from fn propagates without a retry", "[version]") {
    bank b;
    const version_stamp opened = b.open("alice", 100);
    int calls = 0;
    CHECK_THROWS_AS(settle::optimistic_update(
                        b.balances, "alice",
                        [&](const long&) -> long {
                            ++calls;
                            throw std::runtime_error("pricing service down");
                        },
                        settle::retry_policy{settle::constant_backoff{0ns}, 5}.retry_if(
                            settle::retry_on<std::runtime_error>{}),
                        b.clock, b.sleeper),
                    std::runtime_error);
    CHECK(calls == 1);
    CHECK(b.read("alice") == std::optional(settle::versioned<long>{100, opened}));
}

TEST_CASE("store failures are retried unless they are a bug", "[version]") {
    bank b;
    b.open("alice", 100);
    counting_store store{b.balances};
    const auto add_one = [](const long& v) { return v + 1; };

    SECTION("a transient failure is retried without a classifier") {
        store.failures_left = 2;
        const auto r =
            settle::optimistic_update(store, "alice", add_one, no_wait, b.clock, b.sleeper);
        CHECK(r.outcome() == update_outcome::applied);
        CHECK(r.attempts() == 3);
        CHECK(store.writes == 3);
        CHECK(b.read("alice")->value == 101);
    }
    SECTION("a bug is not retried without a classifier") {
        for (const std::exception_ptr& bug :
             {std::make_exception_ptr(std::logic_error("bug")),
              std::make_exception_ptr(settle::error(settle::errc::invalid_argument, "x")),
              std::make_exception_ptr(settle::error(settle::errc::malformed_input, "x")),
              std::make_exception_ptr(settle::error(settle::errc::decode_failed, "x"))}) {
            store.failure = bug;
            store.failures_left = 1;
            store.writes = 0;
            CHECK_THROWS(
                settle::optimistic_update(store, "alice", add_one, no_wait, b.clock, b.sleeper));
            CHECK(store.writes == 1);
        }
        CHECK(b.read("alice")->value == 100);
    }
    SECTION("the policy's classifier decides when it has one") {
        store.failures_left = 1;
        const auto never = no_wait.retry_if([](const std::exception_ptr&) { return false; });
        CHECK_THROWS_AS(
            settle::optimistic_update(store, "alice", add_one, never, b.clock, b.sleeper),
            settle::error);
        CHECK(store.writes == 1);

        store.failure = std::make_exception_ptr(std::logic_error("retried on purpose"));
        store.failures_left = 1;
        const auto r = settle::optimistic_update(
            store, "alice", add_one, no_wait.retry_if(settle::retry_on<std::logic_error>{}),
            b.clock, b.sleeper);
        CHECK(r.attempts() == 2);
        CHECK(b.read("alice")->value == 101);
    }
    SECTION("the last failure propagates once retrying stops") {
        store.failures_left = 10;
        CHECK_THROWS_AS(settle::optimistic_update(store, "alice", add_one,
                                                  no_wait.with_max_attempts(3), b.clock, b.sleeper),
                        settle::error);
        CHECK(store.writes == 3);
        CHECK(b.read("alice")->value == 100);
    }
}

TEST_CASE("a commit that fails after writing is not retried without a classifier", "[version]") {
    bank b;
    b.open("alice", 100);
    doubtful_commit_store store{b.balances};
    int calls = 0;
    const auto debit_30 = [&](const long& v) {
        ++calls;
        return v - 30;
    };

    store.failures_left = 1;
    CHECK_THROWS_AS(
        settle::optimistic_update(store, "alice", debit_30, no_wait, b.clock, b.sleeper),
        settle::error);
    CHECK(calls == 1);
    CHECK(b.read("alice")->value == 70);  // debited once, not twice

    // A classifier that retries it takes the risk: here the debit is applied again.
    store.failures_left = 1;
    calls = 0;
    const auto r = settle::optimistic_update(store, "alice", debit_30,
                                             no_wait.retry_if(settle::retry_on<settle::error>{}),
                                             b.clock, b.sleeper);
    CHECK(r.attempts() == 2);
    CHECK(calls == 2);
    CHECK(b.read("alice")->value == 10);
}

TEST_CASE("optimistic update in the caller's transaction commits or rolls back with it",
          "[version]") {
    bank b;
    const version_stamp opened = b.open("alice", 100);
    const bool commit = GENERATE(true, false);
    CAPTURE(commit);
    {
        memory::transaction tx = b.db.begin();
        const auto r = settle::optimistic_update(b.balances, tx, "alice",
                                                 [](const long& v) { return v - 30; });
        CHECK(r.outcome() == update_outcome::applied);
        CHECK(r.value() == std::optional<long>(70));
        CHECK(r.stamp() > opened);
        CHECK(r.attempts() == 1);
        CHECK(r.reason() == settle::retry_outcome::succeeded);
        CHECK(b.balances.load(tx, "alice") ==
              std::optional(settle::versioned<long>{70, r.stamp()}));
        REQUIRE(b.balances.insert(tx, "ledger", -30).is_applied());  // the caller's own row
        if (commit) {
            tx.commit();
        }
    }
    if (commit) {
        CHECK(b.read("alice")->value == 70);
        CHECK(b.read("ledger")->value == -30);
    } else {
        CHECK(b.read("alice") == std::optional(settle::versioned<long>{100, opened}));
        CHECK_FALSE(b.read("ledger").has_value());
    }
}

TEST_CASE("optimistic update in the caller's transaction reports unchanged and missing",
          "[version]") {
    bank b;
    const version_stamp opened = b.open("alice", 20);
    settle::in_transaction(b.balances, [&](memory::transaction& tx) {
        const auto declined = settle::optimistic_update(
            b.balances, tx, "alice", [](const long&) -> std::optional<long> { return {}; });
        CHECK(declined.outcome() == update_outcome::unchanged);
        CHECK(declined.value() == std::optional<long>(20));
        CHECK(declined.stamp() == opened);
        int calls = 0;
        const auto absent = settle::optimistic_update(b.balances, tx, "nobody", [&](const long& v) {
            ++calls;
            return v;
        });
        CHECK(absent.outcome() == update_outcome::missing);
        CHECK(absent.stamp() == version_stamp(0));
        CHECK(calls == 0);
    });
    CHECK(b.read("alice") == std::optional(settle::versioned<long>{20, opened}));
}

TEST_CASE("in the caller's transaction a conflict runs fn again at once on the newer value",
          "[version]") {
    bank b;
    b.open("alice", 100);
    counting_store store{b.balances};
    const bool value_in_conflict = GENERATE(true, false);
    CAPTURE(value_in_conflict);
    store.return_current_value = value_in_conflict;
    store.interferences_left = 1;
    store.interference = 500;
    std::vector<long> seen;
    settle::in_transaction(store, [&](memory::transaction& tx) {
        const auto r = settle::optimistic_update(store, tx, "alice", [&](const long& v) {
            seen.push_back(v);
            return v + 1;
        });
        CHECK(r.outcome() == update_outcome::applied);
        CHECK(r.value() == std::optional<long>(501));
        CHECK(r.attempts() == 2);
    });
    CHECK(seen == std::vector<long>{100, 500});
    CHECK(store.loads == (value_in_conflict ? 1 : 2));
    CHECK(b.read("alice")->value == 501);
    CHECK(b.sleeper.sleeps() == 0);
}

TEST_CASE("in the caller's transaction endless conflicts are reported as a broken backend",
          "[version]") {
    bank b;
    b.open("alice", 100);
    counting_store store{b.balances};
    store.interferences_left = 1000;
    store.interference = 7;
    memory::transaction tx = b.db.begin();
    try {
        (void)settle::optimistic_update(store, tx, "alice", [](const long& v) { return v + 1; });
        FAIL("no exception");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::backend_failure);
    }
    CHECK(store.writes == 64);
}

TEST_CASE("in the caller's transaction exceptions propagate at once", "[version]") {
    bank b;
    b.open("alice", 100);
    counting_store store{b.balances};
    store.failures_left = 1;  // unavailable: the own-transaction form would retry it
    {
        memory::transaction tx = b.db.begin();
        CHECK_THROWS_AS(
            settle::optimistic_update(store, tx, "alice", [](const long& v) { return v + 1; }),
            settle::error);
        CHECK(store.writes == 1);
    }
    {
        memory::transaction tx = b.db.begin();
        int calls = 0;
        CHECK_THROWS_AS(settle::optimistic_update(b.balances, tx, "alice",
                                                  [&](const long&) -> long {
                                                      ++calls;
                                                      throw std::runtime_error("pricing down");
                                                  }),
                        std::runtime_error);
        CHECK(calls == 1);
    }
    CHECK(b.read("alice")->value == 100);
}

TEST_CASE("optimistic update reports missing when the key is erased meanwhile", "[version]") {
    bank b;
    b.open("alice", 100);
    const auto r = settle::optimistic_update(
        b.balances, "alice",
        [&](const long& v) {
            b.db.transact([&](memory::transaction& tx) {
                const auto current = b.balances.load(tx, "alice");
                REQUIRE(b.balances.erase(tx, "alice", current->stamp).is_applied());
            });
            return v + 1;
        },
        no_wait, b.clock, b.sleeper);
    CHECK(r.outcome() == update_outcome::missing);
    CHECK_FALSE(b.read("alice").has_value());
}

TEST_CASE("optimistic update takes a jittered backoff with a random generator", "[version]") {
    bank b;
    b.open("alice", 0);
    std::mt19937_64 random(7);
    int calls = 0;
    const auto policy = settle::retry_policy{
        settle::jittered{settle::exponential_backoff{1ms, 2.0, 100ms}, settle::jitter::full}, 5};
    const auto r = settle::optimistic_update(
        b.balances, "alice",
        [&](const long& v) {
            if (++calls < 3) {
                b.interfere("alice", v + 10);
            }
            return v + 1;
        },
        policy, b.clock, b.sleeper, random);
    CHECK(r.outcome() == update_outcome::applied);
    CHECK(r.value() == std::optional<long>(21));
    CHECK(r.attempts() == 3);
}

TEST_CASE("threads incrementing one counter lose no update", "[version][concurrency]") {
    memory::database db;
    counter_table counters(db);
    db.transact([&](memory::transaction& tx) { (void)counters.insert(tx, "hits", 0); });

    constexpr int threads = 4;
    constexpr int increments = 400;
    const auto policy = settle::retry_policy{settle::constant_backoff{0ns}, 1'000'000};
    settle::manual_clock clock;
    std::atomic<long> applied{0};
    std::atomic<long> retries{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            yielding_sleeper sleeper;
            for (int i = 0; i < increments; ++i) {
                const auto r = settle::optimistic_update(
                    counters, "hits",
                    [](const long& v) {
                        std::this_thread::yield();  // a slow fn: others write meanwhile
                        return v + 1;
                    },
                    policy, clock, sleeper);
                if (r.is_applied()) {
                    ++applied;
                }
                retries += r.attempts() - 1;
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    INFO("compare-and-sets that met a newer stamp: " << retries.load());
    CHECK(applied.load() == threads * increments);
    const long total =
        db.transact([&](memory::transaction& tx) { return counters.load(tx, "hits")->value; });
    CHECK(total == threads * increments);
}

TEST_CASE("update outcomes have stable names", "[version]") {
    STATIC_REQUIRE(settle::to_string(update_outcome::applied) == "applied");
    STATIC_REQUIRE(settle::to_string(update_outcome::unchanged) == "unchanged");
    STATIC_REQUIRE(settle::to_string(update_outcome::gave_up) == "gave_up");
    STATIC_REQUIRE(settle::to_string(update_outcome::missing) == "missing");
}
