// Two relays on one store, in two threads: while claims are live, no record
// is published twice, and per-key order holds.
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>

#include "outbox/ids.hpp"
#include "settle_test.hpp"

#include <settle/inbox.hpp>
#include <settle/retry.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

constexpr unsigned record_count = 240;

using outbox_test::id_of;

// Every publish, as the broker saw it, from any thread.
struct broker_log {
    std::mutex mutex;
    std::vector<settle::outbox_record> attempts;
    std::map<settle::uuid, int> deliveries;
};

// Publishes into the shared log; fails the first attempt of every fourth record.
struct logging_publisher {
    broker_log* log;
    bool flaky;

    settle::publish_result publish(const settle::outbox_record& record) {
        const bool fail = flaky && record.sequence % 4 == 0 && record.attempts == 1;
        const std::lock_guard lock(log->mutex);
        log->attempts.push_back(record);
        if (fail) {
            return settle::publish_result::retryable("first try fails");
        }
        ++log->deliveries[record.id];
        return settle::publish_result::delivered();
    }
};

struct shared_store {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 6 / 1)};
    memory::database db;
    memory::outbox_table store{db};
    settle::outbox<memory::outbox_table, settle::manual_clock> outbox{store, clock};

    // Records keyed over eight orders, every fifth one unordered.
    shared_store() {
        auto tx = db.begin();
        for (unsigned n = 0; n < record_count; ++n) {
            const std::string key = n % 5 == 0 ? "" : "order-" + std::to_string(n % 8);
            REQUIRE(outbox.append(
                tx, settle::outbox_message{
                        id_of(n), "orders", key, settle::encode(std::uint32_t{n}), {}}));
        }
        tx.commit();
    }
};

// Runs two relays, one per thread, until the backlog is empty. The clock
// does not move: every claim stays live for the whole run.
settle::outbox_run_result run_two_relays(shared_store& s, broker_log& log, bool flaky) {
    std::array<settle::outbox_run_result, 2> totals{};
    std::latch ready(2);  // both relays start together, so their claims interleave
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            ready.arrive_and_wait();
            logging_publisher publisher{&log, flaky};
            settle::outbox_relay relay(
                s.store, publisher, settle::persisted_retry{settle::constant_backoff{0s}, 5},
                s.clock, {.owner = "relay-" + std::to_string(t), .batch_size = 7, .lease = 1h});
            for (int idle = 0; idle < 100000;) {
                const auto r = relay.run_once();
                totals[t].claimed += r.claimed;
                totals[t].delivered += r.delivered;
                totals[t].rescheduled += r.rescheduled;
                totals[t].stale += r.stale;
                if (r.idle()) {
                    if (settle::in_transaction(s.store, [&](auto& tx) {
                            return s.outbox.statistics(tx);
                        }).backlog == 0) {
                        return;
                    }
                    ++idle;
                    std::this_thread::yield();  // the other relay holds what is left
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    settle::outbox_run_result sum;
    for (const auto& t : totals) {
        sum.claimed += t.claimed;
        sum.delivered += t.delivered;
        sum.rescheduled += t.rescheduled;
        sum.stale += t.stale;
    }
    return sum;
}

// Every record of a key was attempted, and delivered, in sequence order.
void check_key_order(const broker_log& log) {
    std::map<std::string, std::vector<std::uint64_t>> per_key;
    for (const auto& r : log.attempts) {
        if (!r.ordering_key.empty()) {
            per_key[r.ordering_key].push_back(r.sequence);
        }
    }
    CHECK(per_key.size() == 8);
    for (const auto& [key, sequences] : per_key) {
        INFO(key);
        CHECK(std::is_sorted(sequences.begin(), sequences.end()));
    }
}

}  // namespace

TEST_CASE("two relays never publish a record twice while claims are live",
          "[outbox][concurrency]") {
    shared_store s;
    broker_log log;
    const auto sum = run_two_relays(s, log, false);
    CHECK(sum.delivered == record_count);
    CHECK(sum.claimed == record_count);
    CHECK(sum.stale == 0);
    CHECK(log.attempts.size() == record_count);
    CHECK(log.deliveries.size() == record_count);
    for (const auto& [id, count] : log.deliveries) {
        CHECK(count == 1);
    }
    check_key_order(log);
    CHECK(settle::in_transaction(s.store, [&](auto& tx) { return s.outbox.statistics(tx); }) ==
          settle::outbox_statistics{});
}

TEST_CASE("two relays keep per key order through retries", "[outbox][concurrency]") {
    shared_store s;
    broker_log log;
    const auto sum = run_two_relays(s, log, true);
    CHECK(sum.delivered == record_count);
    CHECK(sum.rescheduled == record_count / 4);
    CHECK(sum.stale == 0);
    CHECK(log.deliveries.size() == record_count);
    for (const auto& [id, count] : log.deliveries) {
        CHECK(count == 1);
    }
    check_key_order(log);
}

TEST_CASE("two consumers racing on the same messages apply each once", "[outbox][concurrency]") {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 6 / 1)};
    memory::database db;
    memory::inbox_table inbox(db);
    memory::table<unsigned, int> applied(db);
    std::atomic<int> handler_runs{0};
    std::latch ready(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            settle::idempotent_consumer consumer(inbox, clock, {.consumer = "billing"});
            ready.arrive_and_wait();
            for (unsigned n = 0; n < 300; ++n) {
                (void)consumer.consume(id_of(n), [&](memory::transaction& tx) {
                    handler_runs.fetch_add(1, std::memory_order_relaxed);
                    const int* seen = applied.find(tx, n);
                    applied.put(tx, n, seen == nullptr ? 1 : *seen + 1);
                });
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    CHECK(handler_runs.load() == 300);
    auto tx = db.begin();
    CHECK(applied.size(tx) == 300);
    bool once = true;
    applied.for_each(tx, [&](unsigned, int count) { once = once && count == 1; });
    CHECK(once);
}
