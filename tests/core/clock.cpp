#include <settle/clock.hpp>
#include <settle/sleeper.hpp>

#include "settle_test.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <stop_token>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

static_assert(settle::clock<std::chrono::system_clock>);
static_assert(settle::clock<std::chrono::steady_clock>);
static_assert(settle::clock<settle::manual_clock>);
static_assert(!settle::clock<int>);
static_assert(settle::sleeper<settle::system_sleeper>);
static_assert(settle::sleeper<settle::manual_sleeper>);

TEST_CASE("manual_clock moves only when told", "[core]") {
    const settle::manual_clock::time_point start{1'700'000'000s};
    settle::manual_clock clock(start);
    CHECK(clock.now() == start);
    CHECK(clock.now() == start);
    clock.advance(1500ms);
    CHECK(clock.now() == start + 1500ms);
    clock.set(start - 1h);
    CHECK(clock.now() == start - 1h);
    CHECK(settle::manual_clock().now().time_since_epoch().count() == 0);
}

TEST_CASE("manual_sleeper advances its clock instead of waiting", "[core]") {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    CHECK(sleeper.sleep_for(2s, {}));
    CHECK(sleeper.sleep_for(250ms, {}));
    CHECK(clock.now().time_since_epoch() == 2250ms);
    CHECK(sleeper.sleeps() == 2);
    CHECK(sleeper.total() == 2250ms);

    std::stop_source stop;
    stop.request_stop();
    CHECK_FALSE(sleeper.sleep_for(1s, stop.get_token()));
    CHECK(clock.now().time_since_epoch() == 2250ms);
    CHECK(sleeper.sleeps() == 2);
}

TEST_CASE("system_sleeper sleeps the whole duration unless stopped", "[core]") {
    settle::system_sleeper sleeper;
    const auto before = std::chrono::steady_clock::now();
    CHECK(sleeper.sleep_for(1ms, {}));
    CHECK(std::chrono::steady_clock::now() - before >= 1ms);

    std::stop_source stopped;
    stopped.request_stop();
    CHECK_FALSE(sleeper.sleep_for(1h, stopped.get_token()));
}

TEST_CASE("system_sleeper wakes when another thread requests a stop", "[core][concurrency]") {
    settle::system_sleeper sleeper;
    std::stop_source stop;
    bool slept = true;
    std::thread waiter([&] { slept = sleeper.sleep_for(1h, stop.get_token()); });
    std::this_thread::sleep_for(10ms);  // let it start waiting; a late start is covered too
    stop.request_stop();
    waiter.join();
    CHECK_FALSE(slept);
}

TEST_CASE("manual_clock is safe to read while another thread advances it", "[core][concurrency]") {
    settle::manual_clock clock;
    constexpr int steps = 10'000;
    std::thread writer([&] {
        for (int i = 0; i < steps; ++i) {
            clock.advance(1ms);
        }
    });
    auto last = clock.now();
    for (int i = 0; i < steps; ++i) {
        const auto now = clock.now();
        CHECK(now >= last);
        last = now;
    }
    writer.join();
    CHECK(clock.now().time_since_epoch() == std::chrono::milliseconds(steps));
}

TEST_CASE("manual_sleeper counts sleeps from many threads", "[core][concurrency]") {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    constexpr int threads = 4;
    constexpr int steps = 2'000;
    std::atomic<bool> done{false};
    std::latch start(threads + 1);
    std::thread reader([&] {
        start.arrive_and_wait();
        std::uint64_t last = 0;
        while (!done.load()) {
            const std::uint64_t now = sleeper.sleeps();
            CHECK(now >= last);
            last = now;
            (void)sleeper.total();
        }
    });
    std::vector<std::thread> sleepers;
    for (int t = 0; t < threads; ++t) {
        sleepers.emplace_back([&] {
            start.arrive_and_wait();
            for (int i = 0; i < steps; ++i) {
                (void)sleeper.sleep_for(1ms, {});
            }
        });
    }
    for (std::thread& t : sleepers) {
        t.join();
    }
    done = true;
    reader.join();
    CHECK(sleeper.sleeps() == threads * steps);
    CHECK(sleeper.total() == std::chrono::milliseconds(threads * steps));
    CHECK(clock.now().time_since_epoch() == std::chrono::milliseconds(threads * steps));
}

TEST_CASE("time never wraps at the ends of its range", "[core]") {
    constexpr auto forever = std::chrono::nanoseconds::max();
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    CHECK(sleeper.sleep_for(forever, {}));
    CHECK(sleeper.sleep_for(forever, {}));
    CHECK(clock.now() == settle::manual_clock::time_point::max());
    CHECK(sleeper.total() == settle::manual_clock::duration::max());
    clock.set(settle::manual_clock::time_point::min());
    clock.advance(-1h);
    CHECK(clock.now() == settle::manual_clock::time_point::min());
}

TEST_CASE("system_sleeper waits out an endless duration until stopped", "[core][concurrency]") {
    // now() + nanoseconds::max() overflows; a wait computed that way would end
    // at once and turn a retry loop into a storm.
    settle::system_sleeper sleeper;
    std::stop_source stop;
    std::atomic<bool> returned{false};
    bool slept = true;
    std::thread waiter([&] {
        slept = sleeper.sleep_for(std::chrono::nanoseconds::max(), stop.get_token());
        returned = true;
    });
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(returned.load());
    stop.request_stop();
    waiter.join();
    CHECK_FALSE(slept);
}
