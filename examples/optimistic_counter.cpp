// An optimistic counter: four threads add to one counter without a lock.
// Each increment reads the value and its version stamp, computes, and writes
// only if the stamp is still current; when another thread got in between, it
// reads again and retries. No increment is lost.
#include <settle/optimistic.hpp>
#include <settle/sleeper.hpp>
#include <settle/stores/memory_versioned.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
    settle::memory::database db;
    settle::memory::versioned_table<std::string, std::int64_t> counters(db);
    settle::in_transaction(counters, [&](settle::memory::transaction& tx) {
        (void)counters.insert(tx, "page-views", 0);
    });

    constexpr int threads = 4;
    constexpr int increments = 2000;
    std::atomic<long> retries{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            std::chrono::steady_clock clock;
            settle::system_sleeper sleeper;
            std::mt19937_64 random{std::random_device{}()};
            // After a conflict, wait a random while (full jitter), so that the
            // losers do not collide again at once.
            const auto policy = settle::retry_policy{
                settle::jittered{settle::exponential_backoff{20us, 2.0, 2ms}, settle::jitter::full},
                100};
            for (int i = 0; i < increments; ++i) {
                const auto r = settle::optimistic_update(
                    counters, "page-views", [](std::int64_t n) { return n + 1; }, policy, clock,
                    sleeper, random);
                if (!r.is_applied()) {
                    std::printf("gave up: %s\n", settle::to_string(r.outcome()).data());
                    std::exit(1);
                }
                retries += r.attempts() - 1;  // each retry: someone else's write came first
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }

    const auto final = settle::in_transaction(counters, [&](settle::memory::transaction& tx) {
        return *counters.load(tx, "page-views");
    });
    std::printf("%d threads x %d increments: counter %lld at stamp %llu, %ld conflicts retried\n",
                threads, increments, static_cast<long long>(final.value),
                static_cast<unsigned long long>(final.stamp.value()), retries.load());
    return final.value == threads * increments ? 0 : 1;
}
