// Races on the Redis idempotency store, between threads of one process and
// between two processes, each on connections of its own: for one fresh key
// and for one expired in-progress record, exactly one racer claims, the
// operation runs once per claim, and a stale owner's completion is refused.
#include "redis/redis_test.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/idempotency.hpp>
#include <settle/stores/redis.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rd = settle::redis;
using namespace std::chrono_literals;
using redis_test::factory;
using redis_test::raw;
using redis_test::unique_prefix;

namespace {

constexpr int threads = 8;
constexpr int keys = 40;

const settle::idempotency_scope scope{"tenant", "payments.capture"};

settle::stored_time t0() {
    return settle::stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1));
}

settle::idempotency_key key_of(int i) {
    return settle::idempotency_key::parse("key-" + std::to_string(i)).value();
}

// One racer's pass over every key: claims it at `now` and, when the claim is
// its own, "runs the operation" (INCR <prefix>ran:<i>) and completes. Returns
// how many keys it claimed.
int race(const std::string& prefix, settle::stored_time now) {
    rd::connection conn(factory());
    rd::idempotency_table store(conn, prefix);
    raw effects;
    int claimed = 0;
    for (int i = 0; i < keys; ++i) {
        auto tx = store.begin();
        const auto r =
            store.claim(tx, scope, key_of(i), settle::sha256::hash("capture"), now, now + 1h);
        if (r.claimed) {
            ++claimed;
            (void)effects.integer("INCR", prefix + "ran:" + std::to_string(i));
            if (store.complete(tx, scope, key_of(i), r.record.token,
                               {settle::encode(std::string("captured")), 200},
                               now + 24h) != settle::fenced_write::applied) {
                throw std::runtime_error("the owner of a fresh claim could not complete it");
            }
        }
        tx.commit();
    }
    return claimed;
}

// Leaves every key in progress with a lease that ended at t0 + 1s; returns
// the tokens of those claims.
std::vector<settle::fencing_token> expired_claims(const std::string& prefix) {
    rd::connection conn(factory());
    rd::idempotency_table store(conn, prefix);
    std::vector<settle::fencing_token> tokens;
    for (int i = 0; i < keys; ++i) {
        auto tx = store.begin();
        const auto r =
            store.claim(tx, scope, key_of(i), settle::sha256::hash("capture"), t0(), t0() + 1s);
        REQUIRE(r.claimed);
        tokens.push_back(r.record.token);
        tx.commit();
    }
    return tokens;
}

void every_key_ran_once(const std::string& prefix) {
    raw effects;
    for (int i = 0; i < keys; ++i) {
        INFO("key " << i);
        CHECK(effects.text("GET", prefix + "ran:" + std::to_string(i)) == "1");
    }
}

void stale_owners_refused(const std::string& prefix,
                          const std::vector<settle::fencing_token>& tokens) {
    rd::connection conn(factory());
    rd::idempotency_table store(conn, prefix);
    for (int i = 0; i < keys; ++i) {
        auto tx = store.begin();
        CHECK(store.complete(tx, scope, key_of(i), tokens[static_cast<std::size_t>(i)],
                             {settle::encode(std::string("late")), 200},
                             t0() + 24h) == settle::fenced_write::stale);
        tx.commit();
    }
}

int threads_race(const std::string& prefix, settle::stored_time now) {
    std::atomic<int> total{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> racers;
    for (int t = 0; t < threads; ++t) {
        racers.emplace_back([&] {
            try {
                total += race(prefix, now);
            } catch (...) {
                ++failed;
            }
        });
    }
    for (auto& racer : racers) {
        racer.join();
    }
    CHECK(failed == 0);
    return total.load();
}

// The same pass in a child process and in this one, at once; the child
// reports its count in its exit status. Forked before any thread exists
// (each test runs in a process of its own).
int processes_race(const std::string& prefix, settle::stored_time now) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        char go = 0;
        (void)::read(ready[0], &go, 1);
        int claimed = -1;
        try {
            claimed = race(prefix, now);
        } catch (...) {
        }
        ::_exit(claimed < 0 ? 255 : claimed);
    }
    (void)::write(ready[1], "g", 1);
    const int mine = race(prefix, now);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) != 255);
    ::close(ready[0]);
    ::close(ready[1]);
    return mine + WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("redis: two processes racing for fresh keys claim each once",
          "[redis][idempotency][concurrency]") {
    const std::string prefix = unique_prefix("proc-fresh");
    CHECK(processes_race(prefix, t0()) == keys);
    every_key_ran_once(prefix);
}

TEST_CASE("redis: two processes racing for expired claims take each over once",
          "[redis][idempotency][concurrency]") {
    const std::string prefix = unique_prefix("proc-expired");
    const auto tokens = expired_claims(prefix);
    CHECK(processes_race(prefix, t0() + 1min) == keys);
    every_key_ran_once(prefix);
    stale_owners_refused(prefix, tokens);
}

TEST_CASE("redis: threads racing for fresh keys claim each once",
          "[redis][idempotency][concurrency]") {
    const std::string prefix = unique_prefix("threads-fresh");
    CHECK(threads_race(prefix, t0()) == keys);
    every_key_ran_once(prefix);
}

TEST_CASE("redis: threads racing for expired claims take each over once",
          "[redis][idempotency][concurrency]") {
    const std::string prefix = unique_prefix("threads-expired");
    const auto tokens = expired_claims(prefix);
    CHECK(threads_race(prefix, t0() + 1min) == keys);
    every_key_ran_once(prefix);
    stale_owners_refused(prefix, tokens);
}

TEST_CASE("redis: threads racing through the guard run the operation once",
          "[redis][idempotency][concurrency]") {
    const std::string prefix = unique_prefix("guard");
    std::atomic<int> runs{0};
    std::atomic<int> executed{0};
    std::atomic<int> others{0};
    std::vector<std::thread> racers;
    for (int t = 0; t < threads; ++t) {
        racers.emplace_back([&] {
            rd::connection conn(factory());
            rd::idempotency_table store(conn, prefix);
            settle::manual_clock clock;
            settle::idempotency_guard guard(store, clock, {.lease = 1min, .retention = 1h});
            const auto r = guard.run(scope, key_of(0), settle::sha256::hash("capture"), [&] {
                ++runs;
                return std::string("captured");
            });
            if (r.is_executed()) {
                ++executed;
            } else if (r.is_replayed() || r.is_in_progress()) {
                ++others;
            }
        });
    }
    for (auto& racer : racers) {
        racer.join();
    }
    CHECK(runs == 1);
    CHECK(executed == 1);
    CHECK(others == threads - 1);
}
