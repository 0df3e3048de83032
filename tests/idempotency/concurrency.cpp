#include <settle/idempotency.hpp>

#include "service.hpp"
#include "settle_test.hpp"

#include <atomic>
#include <cstddef>
#include <latch>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace idempotency_test;
using settle::idempotency_outcome;

namespace {

struct tally {
    std::size_t executed = 0;
    std::size_t replayed = 0;
    std::size_t in_progress = 0;
    std::size_t other = 0;
};

}  // namespace

TEST_CASE("concurrent runs with one key execute op exactly once", "[idempotency][concurrency]") {
    const std::size_t threads = GENERATE(2u, 4u, 8u, 16u);
    CAPTURE(threads);
    service s;
    for (int round = 0; round < 20; ++round) {
        const auto k = key("k-" + std::to_string(round));
        std::atomic<int> calls{0};
        std::vector<std::optional<settle::idempotency_result<int>>> results(threads);
        std::latch go(static_cast<std::ptrdiff_t>(threads));
        {
            std::vector<std::jthread> workers;
            for (std::size_t t = 0; t < threads; ++t) {
                workers.emplace_back([&, t] {
                    go.arrive_and_wait();
                    results[t] = s.guard.run(scope_a(), k, fp("a"), [&] {
                        return calls.fetch_add(1, std::memory_order_relaxed) + 100;
                    });
                });
            }
        }
        tally seen;
        for (const auto& r : results) {
            REQUIRE(r.has_value());
            switch (r->outcome()) {
            case idempotency_outcome::executed:
                ++seen.executed;
                CHECK(r->response() == 100);
                CHECK(r->stored());
                break;
            case idempotency_outcome::replayed:
                ++seen.replayed;
                CHECK(r->response() == 100);
                break;
            case idempotency_outcome::in_progress: ++seen.in_progress; break;
            case idempotency_outcome::mismatch:
            case idempotency_outcome::stale: ++seen.other; break;
            }
        }
        CHECK(calls.load() == 1);
        CHECK(seen.executed == 1);
        CHECK(seen.replayed + seen.in_progress == threads - 1);
        CHECK(seen.other == 0);
        CHECK(s.guard.run(scope_a(), k, fp("a"), [] { return 0; }).response() == 100);
    }
}

TEST_CASE("concurrent runs over many keys execute each op once", "[idempotency][concurrency]") {
    constexpr std::size_t threads = 4;
    constexpr std::size_t keys = 200;
    service s;
    std::vector<std::atomic<int>> calls(keys);
    std::latch go(threads);
    {
        std::vector<std::jthread> workers;
        for (std::size_t t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                go.arrive_and_wait();
                for (std::size_t i = 0; i < keys; ++i) {
                    const std::size_t k = (i * (t + 1) * 7 + t) % keys;  // a different order each
                    const auto r =
                        s.guard.run(scope_a(), key("k-" + std::to_string(k)), fp("a"), [&] {
                            calls[k].fetch_add(1);
                            return static_cast<int>(k);
                        });
                    if (r.response().has_value() && *r.response() != static_cast<int>(k)) {
                        calls[k].fetch_add(1000);  // a response for another key: fail below
                    }
                }
            });
        }
    }
    for (std::size_t k = 0; k < keys; ++k) {
        CAPTURE(k);
        CHECK(calls[k].load() == 1);
    }
}

TEST_CASE("under take overs exactly one response is stored and every replay returns it",
          "[idempotency][concurrency]") {
    // Every op outlives its lease, so claims are taken over while they run;
    // fencing must keep exactly one completion and turn the rest away.
    constexpr std::size_t threads = 4;
    constexpr int runs_per_thread = 25;
    service s;
    std::atomic<int> next_id{0};
    std::vector<std::vector<settle::idempotency_result<int>>> results(threads);
    std::latch go(threads);
    {
        std::vector<std::jthread> workers;
        for (std::size_t t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                go.arrive_and_wait();
                for (int i = 0; i < runs_per_thread; ++i) {
                    results[t].push_back(s.guard.run(scope_a(), key("contested"), fp("a"), [&] {
                        s.clock.advance(lease);
                        return next_id.fetch_add(1);
                    }));
                }
            });
        }
    }
    std::optional<int> stored;
    std::size_t stored_count = 0;
    for (const auto& per_thread : results) {
        for (const auto& r : per_thread) {
            if (r.outcome() == idempotency_outcome::executed && r.stored()) {
                ++stored_count;
                stored = r.response();
            }
        }
    }
    REQUIRE(stored_count == 1);
    for (const auto& per_thread : results) {
        for (const auto& r : per_thread) {
            if (r.outcome() == idempotency_outcome::replayed) {
                CHECK(r.response() == stored);
            }
        }
    }
    CHECK(s.guard.run(scope_a(), key("contested"), fp("a"), [] { return -1; }).response() ==
          stored);
}
