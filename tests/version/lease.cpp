#include <settle/lease.hpp>
#include <settle/stores/memory_lease.hpp>
#include <settle/testing/lease_store_suite.hpp>
#include <settle/transaction.hpp>

#include "settle_test.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace memory = settle::memory;
using namespace std::chrono_literals;
using settle::fencing_token;

namespace {

struct lease_fixture {
    settle::manual_clock clock;
    memory::database db;
    memory::lease_table<std::string> leases{db};
    memory::fence_table<std::string> fences{db};
    static std::string key(int i) { return "job-" + std::to_string(i); }
};

// An order service's worker: its lease, its fence and the rows it protects,
// all in one database.
struct reports {
    settle::manual_clock clock;
    memory::database db;
    memory::lease_table<std::string> lease_rows{db};
    memory::fence_table<std::string> fence_rows{db};
    memory::table<std::string, std::string> rows{db};
    settle::leases<memory::lease_table<std::string>, settle::manual_clock> grants{lease_rows,
                                                                                  clock};
    settle::fence<memory::fence_table<std::string>> guard{fence_rows};

    using lease_type = decltype(grants)::lease_type;

    settle::acquire_result<std::string> acquire(const std::string& holder) {
        return settle::in_transaction(lease_rows, [&](memory::transaction& tx) {
            return grants.acquire(tx, "report-lock", holder, 10s);
        });
    }

    // The protected write: fence check and row write in one transaction.
    settle::fence_result write(const lease_type& held, const std::string& text) {
        return settle::in_transaction(lease_rows, [&](memory::transaction& tx) {
            const settle::fence_result checked = guard.admit(tx, "report", held.token);
            if (checked.is_admitted()) {
                rows.put(tx, "report", text);
            }
            return checked;
        });
    }

    std::string report() {
        return settle::in_transaction(lease_rows, [&](memory::transaction& tx) {
            const std::string* text = rows.find(tx, "report");
            return text == nullptr ? std::string() : *text;
        });
    }
};

}  // namespace

TEST_CASE("the in-memory lease and fence tables conform to the lease suite", "[version]") {
    STATIC_REQUIRE(settle::lease_store<memory::lease_table<std::string>>);
    for (const auto& c : settle::conformance::lease_store_suite<lease_fixture>) {
        INFO(std::string(c.name));
        lease_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

namespace {
// A backend that breaks the promise that writes join the caller's transaction:
// every operation commits on its own at once, so a rolled-back grant or admit
// stays.
template <class T>
struct autocommit_table {
    using key_type = std::string;
    using value_type = T;
    using transaction = memory::transaction;

    explicit autocommit_table(memory::database& callers) : callers_(&callers) {}

    transaction begin() { return callers_->begin(); }
    std::optional<settle::versioned<T>> load(const transaction&, const std::string& key) {
        return settle::in_transaction(
            inner_, [&](memory::transaction& tx) { return inner_.load(tx, key); });
    }
    settle::write_result<T> insert(transaction&, const std::string& key, T value) {
        return settle::in_transaction(inner_, [&](memory::transaction& tx) {
            return inner_.insert(tx, key, std::move(value));
        });
    }
    settle::write_result<T> compare_and_set(transaction&, const std::string& key,
                                            settle::version_stamp expected, T value) {
        return settle::in_transaction(inner_, [&](memory::transaction& tx) {
            return inner_.compare_and_set(tx, key, expected, std::move(value));
        });
    }
    settle::write_result<T> erase(transaction&, const std::string& key,
                                  settle::version_stamp expected) {
        return settle::in_transaction(
            inner_, [&](memory::transaction& tx) { return inner_.erase(tx, key, expected); });
    }

private:
    memory::database* callers_;
    memory::database own_;
    memory::versioned_table<std::string, T> inner_{own_};
};

struct autocommit_fixture {
    settle::manual_clock clock;
    memory::database db;
    autocommit_table<settle::lease_record> leases{db};
    autocommit_table<fencing_token> fences{db};
    static std::string key(int i) { return "job-" + std::to_string(i); }
};
}  // namespace

TEST_CASE("a lease backend that ignores the caller's transaction fails the rollback cases",
          "[version]") {
    std::vector<std::string> failed;
    for (const auto& c : settle::conformance::lease_store_suite<autocommit_fixture>) {
        autocommit_fixture fixture;
        try {
            c.run(fixture);
        } catch (const settle::conformance::failure& e) {
            INFO(std::string(c.name) << ": " << e.what());
            failed.emplace_back(c.name);
        }
    }
    CHECK(failed == std::vector<std::string>{"a rolled back grant holds nothing",
                                             "a rolled back admit records nothing"});
}

TEST_CASE("a holder whose lease expired has its late write refused", "[version]") {
    reports r;
    const auto a = r.acquire("worker-a");
    REQUIRE(a.is_acquired());
    CHECK(r.write(a.current(), "a: half done").is_admitted());

    // worker-a pauses (a long collection, a partition) past its expiry.
    r.clock.advance(15s);
    const auto b = r.acquire("worker-b");
    REQUIRE(b.is_acquired());
    CHECK(b.current().token > a.current().token);
    CHECK(r.write(b.current(), "b: done").is_admitted());

    // worker-a wakes up, still believing it holds the lease.
    const settle::fence_result late = r.write(a.current(), "a: done");
    CHECK(late.outcome() == settle::fence_outcome::stale);
    CHECK(late.is_stale());
    CHECK_FALSE(late.is_admitted());
    CHECK_FALSE(static_cast<bool>(late));
    CHECK(late.highest() == b.current().token);
    CHECK(r.report() == "b: done");
    const auto renewed = settle::in_transaction(r.lease_rows, [&](memory::transaction& tx) {
        return r.grants.renew(tx, a.current(), 10s);
    });
    CHECK(renewed.outcome() == settle::renew_outcome::stale);
    CHECK(renewed.is_stale());
    CHECK_FALSE(static_cast<bool>(renewed));
    CHECK(renewed.current() == a.current());

    const auto held = r.acquire("worker-a");
    CHECK(held.is_held());
    CHECK_FALSE(static_cast<bool>(held));
    CHECK(held.current() == b.current());
    const auto released = settle::in_transaction(
        r.lease_rows, [&](memory::transaction& tx) { return r.grants.release(tx, b.current()); });
    CHECK(released.is_released());
    CHECK(static_cast<bool>(released));
    const auto again = settle::in_transaction(
        r.lease_rows, [&](memory::transaction& tx) { return r.grants.release(tx, b.current()); });
    CHECK(again.is_stale());
    CHECK(again.outcome() == settle::release_outcome::stale);
}

TEST_CASE("tokens seen by the fence strictly increase across racing expiries", "[version]") {
    // Two holders take turns; each turn the previous holder pauses past its
    // expiry and then tries to write once more. Every admitted token is
    // greater than the one admitted in the turn before; every late write
    // is refused.
    reports r;
    std::vector<fencing_token> admitted;
    std::optional<reports::lease_type> previous;
    const std::string names[] = {"worker-a", "worker-b"};
    for (int turn = 0; turn < 20; ++turn) {
        const auto got = r.acquire(names[turn % 2]);
        REQUIRE(got.is_acquired());
        const settle::fence_result fresh = r.write(got.current(), names[turn % 2]);
        REQUIRE(fresh.is_admitted());
        admitted.push_back(fresh.highest());
        if (previous) {
            CHECK(r.write(*previous, "late").outcome() == settle::fence_outcome::stale);
        }
        previous = got.current();
        r.clock.advance(turn % 3 == 0 ? 10s : 25s);
    }
    for (std::size_t i = 1; i < admitted.size(); ++i) {
        CHECK(admitted[i] > admitted[i - 1]);
    }
    CHECK(r.report() == names[19 % 2]);
}

TEST_CASE("lease arguments that break a precondition are refused", "[version]") {
    lease_fixture f;
    settle::leases grants(f.leases, f.clock);
    auto tx = f.leases.begin();
    CHECK_THROWS_AS(grants.acquire(tx, "job", "", 10s), settle::error);
    CHECK_THROWS_AS(grants.acquire(tx, "job", "a", 0s), settle::error);
    CHECK_THROWS_AS(grants.acquire(tx, "job", "a", -1s), settle::error);
    const auto got = grants.acquire(tx, "job", "a", 10s);
    REQUIRE(got.is_acquired());
    try {
        (void)grants.renew(tx, got.current(), 0s);
        FAIL("renew accepted a zero ttl");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
    }
    tx.commit();
}

TEST_CASE("a lease granted at the clock's last instant ends after it, never wraps", "[version]") {
    lease_fixture f;
    f.clock.set(settle::manual_clock::time_point::max() - 5s);
    settle::leases grants(f.leases, f.clock);
    auto tx = f.leases.begin();
    const auto got = grants.acquire(tx, "job", "a", 10s);
    REQUIRE(got.is_acquired());
    CHECK(got.current().expires_at == settle::to_stored_time(f.clock.now()) + 10s);
    tx.commit();
}

TEST_CASE("a lease that would outlast stored time saturates at its end", "[version]") {
    lease_fixture f;
    settle::leases grants(f.leases, f.clock);
    auto tx = f.leases.begin();
    const auto got = grants.acquire(tx, "job", "a", std::chrono::microseconds::max());
    REQUIRE(got.is_acquired());
    CHECK(got.current().expires_at == settle::stored_time::max());
    tx.commit();
}

TEST_CASE("fencing tokens count up and never wrap", "[version]") {
    STATIC_REQUIRE(fencing_token::first().value() == 1);
    STATIC_REQUIRE(fencing_token(4).next() == fencing_token(5));
    STATIC_REQUIRE(fencing_token(4) < fencing_token(5));
    CHECK_THROWS_AS((void)fencing_token(UINT64_MAX).next(), settle::error);
}

TEST_CASE("lease outcomes have stable names", "[version]") {
    STATIC_REQUIRE(settle::to_string(settle::acquire_outcome::acquired) == "acquired");
    STATIC_REQUIRE(settle::to_string(settle::acquire_outcome::held) == "held");
    STATIC_REQUIRE(settle::to_string(settle::renew_outcome::renewed) == "renewed");
    STATIC_REQUIRE(settle::to_string(settle::renew_outcome::stale) == "stale");
    STATIC_REQUIRE(settle::to_string(settle::release_outcome::released) == "released");
    STATIC_REQUIRE(settle::to_string(settle::release_outcome::stale) == "stale");
    STATIC_REQUIRE(settle::to_string(settle::fence_outcome::admitted) == "admitted");
    STATIC_REQUIRE(settle::to_string(settle::fence_outcome::stale) == "stale");
}

TEST_CASE("threads contending for one lease never hold it at once", "[version][concurrency]") {
    // Each thread loops: acquire, write through the fence, release. The
    // clock does not move, so a lease ends only by release. At most one
    // thread may be inside its critical section at a time, and the tokens
    // granted are all distinct.
    reports r;
    constexpr int threads = 3;
    constexpr int rounds = 300;
    std::atomic<int> inside{0};
    std::atomic<bool> overlapped{false};
    std::mutex tokens_mutex;
    std::vector<fencing_token::rep> tokens;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            const std::string name = "worker-" + std::to_string(t);
            int done = 0;
            while (done < rounds) {
                const auto got = r.acquire(name);
                if (!got.is_acquired()) {
                    std::this_thread::yield();
                    continue;
                }
                if (inside.fetch_add(1) != 0) {
                    overlapped = true;
                }
                const bool admitted = r.write(got.current(), name).is_admitted();
                inside.fetch_sub(1);
                const auto released = settle::in_transaction(
                    r.lease_rows,
                    [&](memory::transaction& tx) { return r.grants.release(tx, got.current()); });
                {
                    std::lock_guard lock(tokens_mutex);
                    tokens.push_back(got.current().token.value());
                }
                if (!admitted || !released.is_released()) {
                    overlapped = true;
                }
                ++done;
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    CHECK_FALSE(overlapped.load());
    std::sort(tokens.begin(), tokens.end());
    CHECK(std::adjacent_find(tokens.begin(), tokens.end()) == tokens.end());
    CHECK(tokens.size() == static_cast<std::size_t>(threads * rounds));
    CHECK(tokens.back() == static_cast<fencing_token::rep>(threads * rounds));
}

TEST_CASE("lease records and fencing tokens round-trip through their codecs", "[lease][codec]") {
    using record = settle::lease_record;
    const record held{"worker-7", fencing_token(42),
                      settle::stored_time(std::chrono::microseconds(-5))};
    CHECK(settle::decode<record>(settle::encode(held)) == held);
    const record unheld{"", fencing_token::first(), {}};
    CHECK(settle::decode<record>(settle::encode(unheld)) == unheld);
    CHECK(settle::decode<fencing_token>(settle::encode(fencing_token(7))) == fencing_token(7));

    const auto refusal = [](const auto& decode) -> std::string {
        try {
            decode();
        } catch (const settle::error& e) {
            CHECK(e.code() == settle::errc::decode_failed);
            return e.what();
        }
        return "accepted";
    };
    CHECK_THAT(refusal([] { (void)settle::decode<record>(settle::bytes(15)); }),
               Catch::Matchers::StartsWith("lease_record: expected at least 16 bytes, got 15"));
    CHECK_THAT(
        refusal([] { (void)settle::decode<fencing_token>(settle::encode(std::uint64_t{0})); }),
        Catch::Matchers::StartsWith("fencing_token: 0 is not a token"));
    CHECK_THAT(refusal([] { (void)settle::decode<fencing_token>(settle::bytes(7)); }),
               Catch::Matchers::StartsWith("uint64: expected 8 bytes, got 7"));
}
