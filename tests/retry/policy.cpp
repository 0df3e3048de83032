// retry(): outcomes, operation shapes, classifiers, pushback, deadlines, budgets, cancellation.
#include <settle/retry.hpp>

#include "settle_test.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using ns = std::chrono::nanoseconds;

namespace {

// A manual clock that counts how often it is read.
class counting_clock {
public:
    using time_point = settle::manual_clock::time_point;

    [[nodiscard]] time_point now() const noexcept {
        ++reads;
        return clock.now();
    }

    settle::manual_clock clock;
    mutable int reads = 0;
};

// Advances the clock like manual_sleeper and records every wait and when it started.
class recording_sleeper {
public:
    explicit recording_sleeper(settle::manual_clock& clock) : clock_(&clock) {}

    bool sleep_for(ns d, std::stop_token token) {
        if (token.stop_requested()) {
            return false;
        }
        starts.push_back(clock_->now());
        delays.push_back(d);
        clock_->advance(std::chrono::duration_cast<settle::manual_clock::duration>(d));
        return true;
    }

    std::vector<settle::manual_clock::time_point> starts;
    std::vector<ns> delays;

private:
    settle::manual_clock* clock_;
};

class throwing_sleeper {
public:
    bool sleep_for(ns, std::stop_token) { throw std::runtime_error("sleeper broke"); }
};

// A minimal expected-like result: has_value() and error().
struct fetched {
    std::optional<int> value;
    std::error_code code;
    [[nodiscard]] bool has_value() const { return value.has_value(); }
    [[nodiscard]] const std::error_code& error() const { return code; }
};

struct timeout_error : std::runtime_error {
    timeout_error() : std::runtime_error("timed out") {}
};

const settle::ladder steps{1s, 5s, 10s};

}  // namespace

static_assert(settle::clock<counting_clock>);
static_assert(settle::sleeper<recording_sleeper>);

TEST_CASE("retry returns at once when the first attempt succeeds", "[retry]") {
    counting_clock clock;
    recording_sleeper sleeper(clock.clock);
    std::mt19937_64 random(7);
    const std::mt19937_64 untouched = random;
    const auto policy = settle::retry_policy{
        settle::jittered{settle::exponential_backoff{100ms, 2.0, 10s}, settle::jitter::full}, 5};
    int calls = 0;
    auto result = settle::retry(policy, clock, sleeper, random, [&] {
        ++calls;
        return 42;
    });
    CHECK(result.is_succeeded());
    CHECK(static_cast<bool>(result));
    CHECK(result.outcome() == settle::retry_outcome::succeeded);
    CHECK(result.attempts() == 1);
    CHECK(result.has_value());
    CHECK(result.value() == 42);
    CHECK(result.exception() == nullptr);
    CHECK(calls == 1);
    CHECK(sleeper.delays.empty());
    CHECK(clock.reads == 0);     // no deadline: the clock is not read
    CHECK(random == untouched);  // no failure: the generator is not drawn from
}

TEST_CASE("retry waits the schedule's delays between attempts", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    const auto policy = settle::retry_policy{steps, 6};
    std::vector<std::uint32_t> seen;
    auto result = settle::retry(policy, clock, sleeper, [&](std::uint32_t attempt) {
        seen.push_back(attempt);
        if (attempt < 4) {
            throw std::runtime_error("down");
        }
        return std::string("up");
    });
    CHECK(result.is_succeeded());
    CHECK(result.attempts() == 5);
    CHECK(result.value() == "up");
    CHECK(seen == std::vector<std::uint32_t>{0, 1, 2, 3, 4});
    CHECK(sleeper.delays == std::vector<ns>{1s, 5s, 10s, 10s});
    CHECK(clock.now().time_since_epoch() == 26s);
}

TEST_CASE("retry stops after max_attempts and returns the last failure", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    int calls = 0;
    auto result = settle::retry(settle::retry_policy{steps, 3}, clock, sleeper, [&] {
        ++calls;
        throw std::runtime_error("failure " + std::to_string(calls));
    });
    CHECK_FALSE(result.is_succeeded());
    CHECK(result.outcome() == settle::retry_outcome::exhausted);
    CHECK(result.attempts() == 3);
    CHECK(calls == 3);
    CHECK(sleeper.delays == std::vector<ns>{1s, 5s});
    CHECK_FALSE(result.has_value());
    REQUIRE(result.exception() != nullptr);
    try {
        result.value();
        FAIL("value() returned");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "failure 3");
    }

    auto once = settle::retry(settle::retry_policy{steps}.with_max_attempts(1), clock, sleeper,
                              [] { return std::optional<int>(); });
    CHECK(once.outcome() == settle::retry_outcome::exhausted);
    CHECK(once.attempts() == 1);
    CHECK(settle::retry_policy{steps}.max_attempts() == 3);
}

TEST_CASE("retry runs operations that throw or return optional expected values or void",
          "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    const auto policy = settle::retry_policy{steps, 4};
    int calls = 0;

    SECTION("std::optional: empty is a retryable failure") {
        auto result = settle::retry(policy, clock, sleeper, [&]() -> std::optional<int> {
            return ++calls < 3 ? std::nullopt : std::optional<int>(9);
        });
        CHECK(result.is_succeeded());
        CHECK(result.attempts() == 3);
        CHECK(result.value() == std::optional<int>(9));
    }
    SECTION("std::optional that never fills: the last empty value comes back") {
        auto result = settle::retry(policy, clock, sleeper, [&] { return std::optional<int>(); });
        CHECK(result.outcome() == settle::retry_outcome::exhausted);
        CHECK(result.has_value());
        CHECK_FALSE(result.value().has_value());
    }
    SECTION("expected-like: an error is a retryable failure") {
        auto result = settle::retry(policy, clock, sleeper, [&] {
            return ++calls < 2 ? fetched{std::nullopt, std::make_error_code(std::errc::timed_out)}
                               : fetched{5, {}};
        });
        CHECK(result.is_succeeded());
        CHECK(result.attempts() == 2);
        CHECK(result.value().value == 5);
    }
    SECTION("settle::parse_result counts as expected-like") {
        auto result = settle::retry(policy, clock, sleeper, [&]() -> settle::parse_result<int> {
            if (++calls < 2) {
                return settle::parse_error{"digit", 0, "not yet"};
            }
            return 3;
        });
        CHECK(result.is_succeeded());
        CHECK(*result.value() == 3);
    }
    SECTION("a plain value succeeds unless the classifier asks to retry it") {
        auto plain = settle::retry(policy, clock, sleeper, [&] { return ++calls; });
        CHECK(plain.is_succeeded());
        CHECK(plain.attempts() == 1);

        const auto on_503 = policy.retry_if([](int status) { return status == 503; });
        int status_calls = 0;
        auto http =
            settle::retry(on_503, clock, sleeper, [&] { return ++status_calls < 3 ? 503 : 404; });
        CHECK(http.is_succeeded());  // 404 is an answer, not a transient failure
        CHECK(http.attempts() == 3);
        CHECK(http.value() == 404);

        auto always_503 = settle::retry(on_503, clock, sleeper, [] { return 503; });
        CHECK(always_503.outcome() == settle::retry_outcome::exhausted);
        CHECK(always_503.value() == 503);
    }
    SECTION("void operations") {
        auto result = settle::retry(policy, clock, sleeper, [&] {
            if (++calls < 2) {
                throw std::runtime_error("once");
            }
        });
        CHECK(result.is_succeeded());
        CHECK(result.attempts() == 2);
        result.value();  // returns: the last attempt did not throw

        auto failed = settle::retry(policy, clock, sleeper, [] { throw timeout_error(); });
        CHECK(failed.outcome() == settle::retry_outcome::exhausted);
        CHECK_THROWS_AS(failed.value(), timeout_error);
    }
    SECTION("a move-only result") {
        auto result =
            settle::retry(policy, clock, sleeper, [] { return std::make_unique<int>(4); });
        REQUIRE(result.is_succeeded());
        const std::unique_ptr<int> owned = std::move(result).value();
        CHECK(*owned == 4);
    }
}

TEST_CASE("a classifier decides which failures are retried", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    const auto policy = settle::retry_policy{steps, 5};
    int calls = 0;

    SECTION("retry_on lists the retryable exception types, derived ones included") {
        const auto only_runtime = policy.retry_if(settle::retry_on<std::runtime_error>{});
        auto permanent = settle::retry(only_runtime, clock, sleeper, [&] {
            ++calls;
            throw std::logic_error("bug");
        });
        CHECK(permanent.outcome() == settle::retry_outcome::not_retryable);
        CHECK(permanent.attempts() == 1);
        CHECK(calls == 1);
        CHECK(sleeper.delays.empty());

        auto transient = settle::retry(only_runtime, clock, sleeper, [&] {
            ++calls;
            throw timeout_error();  // derives from runtime_error
        });
        CHECK(transient.outcome() == settle::retry_outcome::exhausted);
        CHECK(transient.attempts() == 5);

        const settle::retry_on<std::invalid_argument, std::out_of_range> two;
        CHECK(two(std::make_exception_ptr(std::out_of_range("x"))));
        CHECK(two(std::make_exception_ptr(std::invalid_argument("x"))));
        CHECK_FALSE(two(std::make_exception_ptr(std::runtime_error("x"))));
        CHECK_FALSE(two(std::make_exception_ptr(42)));
        CHECK_FALSE(two(std::exception_ptr()));
    }
    SECTION("an error code classifier on an expected-like result") {
        const auto transient_only = policy.retry_if([](const fetched& r) {
            return r.error() == std::errc::resource_unavailable_try_again;
        });
        auto gave_up = settle::retry(transient_only, clock, sleeper, [&] {
            return ++calls < 2
                       ? fetched{std::nullopt,
                                 std::make_error_code(std::errc::resource_unavailable_try_again)}
                       : fetched{std::nullopt, std::make_error_code(std::errc::permission_denied)};
        });
        CHECK(gave_up.outcome() == settle::retry_outcome::not_retryable);
        CHECK(gave_up.attempts() == 2);
        CHECK(gave_up.value().error() == std::errc::permission_denied);
    }
    SECTION("the classifier is not asked about successes") {
        int asked = 0;
        const auto counting = policy.retry_if([&](const std::optional<int>&) {
            ++asked;
            return settle::retry_decision::retry;
        });
        auto result = settle::retry(counting, clock, sleeper, [] { return std::optional<int>(1); });
        CHECK(result.is_succeeded());
        CHECK(asked == 0);
    }
    SECTION("an exception classifier taking exception_ptr and returning a decision") {
        const auto decide = policy.retry_if([](const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const timeout_error&) {
                return settle::retry_decision::retry_timeout;
            } catch (...) {
                return settle::retry_decision::stop;
            }
        });
        auto result = settle::retry(decide, clock, sleeper, [&] {
            if (++calls < 3) {
                throw timeout_error();
            }
            throw std::domain_error("bad input");
        });
        CHECK(result.outcome() == settle::retry_outcome::not_retryable);
        CHECK(result.attempts() == 3);
        CHECK_THROWS_AS(result.value(), std::domain_error);
    }
    SECTION("without a classifier anything thrown that is not a bug is retried") {
        auto result = settle::retry(policy, clock, sleeper, [&] {
            ++calls;
            throw 7;  // not even a std::exception
        });
        CHECK(result.outcome() == settle::retry_outcome::exhausted);
        CHECK(calls == 5);
        CHECK_THROWS_AS(result.value(), int);
    }
    SECTION("a classifier taking exception_ptr decides even about a bug") {
        const auto retry_bugs = policy.retry_if(settle::retry_on<std::logic_error>{});
        auto result = settle::retry(retry_bugs, clock, sleeper, [&] {
            ++calls;
            throw std::out_of_range("bug");
        });
        CHECK(result.outcome() == settle::retry_outcome::exhausted);
        CHECK(calls == 5);
    }
    SECTION("exceptions from the classifier propagate") {
        const auto broken = policy.retry_if([](const std::exception_ptr&) -> bool {
            throw std::runtime_error("classifier broke");
        });
        CHECK_THROWS_AS(
            (void)settle::retry(broken, clock, sleeper, [] { throw std::logic_error("x"); }),
            std::runtime_error);
    }
}

TEST_CASE("by default a retry never repeats a bug", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    const auto policy = settle::retry_policy{steps, 5};
    const auto attempts_throwing = [&](auto failure) {
        auto result = settle::retry(policy, clock, sleeper, [&] { throw failure; });
        return std::pair(result.attempts(), result.outcome());
    };
    using settle::errc;
    using settle::retry_outcome;
    const auto stopped = std::pair(std::uint32_t{1}, retry_outcome::not_retryable);
    const auto exhausted = std::pair(std::uint32_t{5}, retry_outcome::exhausted);

    SECTION("programming errors stop at once") {
        CHECK(attempts_throwing(std::logic_error("bug")) == stopped);
        CHECK(attempts_throwing(std::out_of_range("index")) == stopped);
        CHECK(attempts_throwing(std::invalid_argument("argument")) == stopped);
        CHECK(attempts_throwing(settle::error(errc::invalid_argument, "precondition")) == stopped);
        CHECK(attempts_throwing(settle::error(errc::malformed_input, "id")) == stopped);
        CHECK(attempts_throwing(settle::error(errc::decode_failed, "bytes")) == stopped);
        CHECK(sleeper.delays.empty());
    }
    SECTION("transient failures are retried") {
        CHECK(attempts_throwing(settle::error(errc::unavailable, "gone")) == exhausted);
        CHECK(attempts_throwing(settle::error(errc::backend_failure, "odd")) == exhausted);
        CHECK(attempts_throwing(std::runtime_error("io")) == exhausted);
        CHECK(attempts_throwing(std::system_error(std::make_error_code(
                  std::errc::invalid_argument))) == exhausted);  // not settle's invalid_argument
        CHECK(attempts_throwing(timeout_error()) == exhausted);
    }
    SECTION("a classifier for returned values leaves exceptions to the default rule") {
        const auto values_only = policy.retry_if([](const std::optional<int>&) { return true; });
        int calls = 0;
        auto result = settle::retry(values_only, clock, sleeper, [&]() -> std::optional<int> {
            if (++calls < 3) {
                return std::nullopt;
            }
            throw std::logic_error("bug");
        });
        CHECK(result.outcome() == retry_outcome::not_retryable);
        CHECK(result.attempts() == 3);
        CHECK_THROWS_AS(result.value(), std::logic_error);
    }
}

TEST_CASE("a pushback hook overrides one delay", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    struct busy {
        std::optional<ns> retry_after;
    };
    const auto policy = settle::retry_policy{steps, 5}
                            .retry_if([](const std::exception_ptr&) { return true; })
                            .with_pushback([](const std::exception_ptr& e) -> std::optional<ns> {
                                try {
                                    std::rethrow_exception(e);
                                } catch (const busy& b) {
                                    return b.retry_after;
                                } catch (...) {
                                    return std::nullopt;
                                }
                            });
    int calls = 0;
    auto result = settle::retry(policy, clock, sleeper, [&] {
        switch (++calls) {
        case 1: throw busy{42s};               // Retry-After: 42
        case 2: throw busy{std::nullopt};      // no header: the ladder's delay
        case 3: throw busy{-5s};               // nonsense: counts as 0
        case 4: throw std::runtime_error("");  // not a pushback: the ladder's delay
        default: return calls;
        }
    });
    CHECK(result.is_succeeded());
    CHECK(sleeper.delays == std::vector<ns>{42s, 5s, 0s, 10s});

    SECTION("on returned values too") {
        sleeper.delays.clear();
        const auto on_values = settle::retry_policy{steps, 3}.with_pushback(
            [](const std::optional<int>&) { return std::optional<std::chrono::seconds>(3s); });
        auto r = settle::retry(on_values, clock, sleeper, [] { return std::optional<int>(); });
        CHECK(r.outcome() == settle::retry_outcome::exhausted);
        CHECK(sleeper.delays == std::vector<ns>{3s, 3s});
    }
}

TEST_CASE("a deadline stops retries before a wait would end past it", "[retry]") {
    settle::manual_clock clock(settle::manual_clock::time_point(1'700'000'000s));
    const auto start = clock.now();
    recording_sleeper sleeper(clock);
    int calls = 0;
    const auto failing = [&] {
        ++calls;
        return std::optional<int>();
    };

    SECTION("deadline_mode::stop: stop instead of the wait that would overshoot") {
        const auto policy = settle::retry_policy{steps, 10}.with_deadline(7s);
        CHECK(policy.deadline() == std::optional<ns>(7s));
        CHECK(policy.on_deadline() == settle::deadline_mode::stop);
        auto result = settle::retry(policy, clock, sleeper, failing);
        CHECK(result.outcome() == settle::retry_outcome::deadline);
        CHECK(result.attempts() == 3);  // at 0 s, 1 s, 6 s; the next wait (10 s) would end at 16 s
        CHECK(sleeper.delays == std::vector<ns>{1s, 5s});
        CHECK(clock.now() - start == 6s);
    }
    SECTION("deadline_mode::shorten: wait until the deadline and try once more") {
        const auto policy =
            settle::retry_policy{steps, 10}.with_deadline(7s, settle::deadline_mode::shorten);
        auto result = settle::retry(policy, clock, sleeper, failing);
        CHECK(result.outcome() == settle::retry_outcome::deadline);
        CHECK(result.attempts() == 4);  // the last one at exactly 7 s
        CHECK(sleeper.delays == std::vector<ns>{1s, 5s, 1s});
        CHECK(clock.now() - start == 7s);
    }
    SECTION("a wait that ends exactly at the deadline is allowed") {
        const auto policy = settle::retry_policy{steps, 10}.with_deadline(6s);
        auto result = settle::retry(policy, clock, sleeper, failing);
        CHECK(result.attempts() == 3);
        CHECK(clock.now() - start == 6s);
    }
    SECTION("slow attempts count against the deadline") {
        const auto policy =
            settle::retry_policy{steps, 10}.with_deadline(10s, settle::deadline_mode::shorten);
        auto result = settle::retry(policy, clock, sleeper, [&] {
            clock.advance(4s);  // each attempt takes 4 s
            ++calls;
            return std::optional<int>();
        });
        CHECK(result.outcome() == settle::retry_outcome::deadline);
        // 0-4 s attempt, wait 1 s, 5-9 s attempt, wait 1 s (shortened from 5), 10-14 s attempt.
        CHECK(calls == 3);
        CHECK(sleeper.delays == std::vector<ns>{1s, 1s});
    }
    SECTION("a pushback longer than the deadline allows stops too") {
        const auto policy = settle::retry_policy{steps, 10}.with_deadline(1min).with_pushback(
            [](const std::optional<int>&) { return std::optional<ns>(2min); });
        auto result = settle::retry(policy, clock, sleeper, failing);
        CHECK(result.outcome() == settle::retry_outcome::deadline);
        CHECK(result.attempts() == 1);
        CHECK(sleeper.delays.empty());
    }
    SECTION("a zero deadline allows only the first attempt") {
        auto result = settle::retry(settle::retry_policy{steps, 10}.with_deadline(0s), clock,
                                    sleeper, failing);
        CHECK(result.outcome() == settle::retry_outcome::deadline);
        CHECK(result.attempts() == 1);
    }
}

TEST_CASE("no wait ever ends past the deadline", "[retry]") {
    // Many random schedules, attempt durations and deadlines; 300 runs.
    std::mt19937_64 random(2024);
    for (int run = 0; run < 300; ++run) {
        settle::manual_clock clock;
        recording_sleeper sleeper(clock);
        const ns deadline(std::uniform_int_distribution<std::int64_t>(0, 60'000'000'000)(random));
        const auto mode =
            run % 2 == 0 ? settle::deadline_mode::stop : settle::deadline_mode::shorten;
        const ns base(std::uniform_int_distribution<std::int64_t>(1, 2'000'000'000)(random));
        const auto policy =
            settle::retry_policy{
                settle::jittered{settle::exponential_backoff{base, 2.0, 30s}, settle::jitter::full},
                50}
                .with_deadline(deadline, mode);
        std::mt19937_64 op_random(static_cast<std::uint64_t>(run));
        const auto start = clock.now();
        auto result = settle::retry(policy, clock, sleeper, random, [&] {
            clock.advance(
                ns(std::uniform_int_distribution<std::int64_t>(0, 3'000'000'000)(op_random)));
            return std::optional<int>();
        });
        INFO("run " << run);
        for (std::size_t i = 0; i < sleeper.delays.size(); ++i) {
            REQUIRE(sleeper.starts[i] + sleeper.delays[i] <= start + deadline);
        }
        CHECK(result.outcome() != settle::retry_outcome::succeeded);
    }
}

TEST_CASE("a stop token cancels the wait and no further attempt starts", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    std::stop_source stop;
    settle::retry_budget budget;
    const auto policy = settle::retry_policy{steps, 10}.with_budget(budget);
    int calls = 0;
    auto result = settle::retry(
        policy, clock, sleeper,
        [&] {
            if (++calls == 2) {
                stop.request_stop();  // e.g. shutdown while the second attempt runs
            }
            return std::optional<int>();
        },
        stop.get_token());
    CHECK(result.outcome() == settle::retry_outcome::cancelled);
    CHECK(result.attempts() == 2);
    CHECK(calls == 2);
    CHECK(sleeper.delays == std::vector<ns>{1s});
    CHECK(budget.available() == 495);  // the cancelled retry's tokens came back

    // A token stopped before the call: the first attempt still runs, nothing more.
    int later = 0;
    auto first_only = settle::retry(
        policy, clock, sleeper, [&] { return ++later, std::optional<int>(); }, stop.get_token());
    CHECK(first_only.outcome() == settle::retry_outcome::cancelled);
    CHECK(later == 1);
}

TEST_CASE("jittered delays are deterministic for a seeded generator", "[retry]") {
    const settle::jittered backoff{settle::exponential_backoff{100ms, 2.0, 10s},
                                   settle::jitter::equal};
    const auto policy = settle::retry_policy{backoff, 8};
    const auto run = [&](auto& random) {
        settle::manual_clock clock;
        recording_sleeper sleeper(clock);
        auto result =
            settle::retry(policy, clock, sleeper, random, [] { return std::optional<int>(); });
        CHECK(result.attempts() == 8);
        return sleeper.delays;
    };
    std::mt19937_64 a(99);
    std::mt19937_64 b(99);
    const std::vector<ns> first = run(a);
    CHECK(first == run(b));
    CHECK(first.size() == 7);

    // The generator gives one 64-bit seed; the delays are backoff.delay(n, seed), the same
    // values a persisted_retry computes from that seed.
    std::mt19937_64 c(99);
    const std::uint64_t seed = c();
    for (std::uint32_t n = 0; n < first.size(); ++n) {
        CHECK(first[n] == backoff.delay(n, seed));
    }

    // 32-bit generators work too: two draws make the seed.
    std::mt19937 d(5);
    std::mt19937 e(5);
    const std::uint64_t seed32 = (static_cast<std::uint64_t>(e()) << 32U) | e();
    const std::vector<ns> from32 = run(d);
    for (std::uint32_t n = 0; n < from32.size(); ++n) {
        CHECK(from32[n] == backoff.delay(n, seed32));
    }
}

TEST_CASE("retry carries the previous delay for decorrelated jitter", "[retry]") {
    const settle::decorrelated_jitter decorrelated{100ms, 20s};
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    std::mt19937_64 random(3);
    auto result = settle::retry(settle::retry_policy{decorrelated, 30}, clock, sleeper, random,
                                [] { return std::optional<int>(); });
    CHECK(result.attempts() == 30);
    std::mt19937_64 same(3);
    const std::uint64_t seed = same();
    REQUIRE(sleeper.delays.size() == 29);
    for (std::uint32_t n = 0; n < 29; ++n) {
        CHECK(sleeper.delays[n] == decorrelated.delay(n, seed));
    }

    const settle::smooth_decorrelated_jitter smooth{100ms, 20s};
    recording_sleeper smooth_sleeper(clock);
    std::mt19937_64 again(3);
    (void)settle::retry(settle::retry_policy{smooth, 6}, clock, smooth_sleeper, again,
                        [] { return std::optional<int>(); });
    REQUIRE(smooth_sleeper.delays.size() == 5);
    for (std::uint32_t n = 0; n < 5; ++n) {
        CHECK(smooth_sleeper.delays[n] == smooth.delay(n, seed));
    }
}

TEST_CASE("a budget refuses retries but never first attempts", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    settle::retry_budget budget(
        {.capacity = 10, .retry_cost = 5, .timeout_cost = 10, .success_refund = 1});
    const auto policy = settle::retry_policy{steps, 10}.with_budget(budget);
    CHECK(policy.budget() == &budget);
    int calls = 0;
    const auto failing = [&] {
        ++calls;
        return std::optional<int>();
    };

    auto first = settle::retry(policy, clock, sleeper, failing);
    CHECK(first.outcome() == settle::retry_outcome::budget);
    CHECK(first.attempts() == 3);  // two retries paid 5 each; the third was refused
    CHECK(budget.available() == 0);

    auto second = settle::retry(policy, clock, sleeper, failing);
    CHECK(second.outcome() == settle::retry_outcome::budget);
    CHECK(second.attempts() == 1);  // the first attempt ran even with an empty bucket
    CHECK(calls == 4);

    // Successes refill it: +1 for a first-time success.
    for (int i = 0; i < 5; ++i) {
        CHECK(settle::retry(policy, clock, sleeper, [] { return 1; }).is_succeeded());
    }
    CHECK(budget.available() == 5);
    auto one_retry = settle::retry(policy, clock, sleeper, failing);
    CHECK(one_retry.attempts() == 2);
    CHECK(budget.available() == 0);
}

TEST_CASE("a success after a retry refunds that retry and timeouts cost more", "[retry]") {
    settle::manual_clock clock;
    recording_sleeper sleeper(clock);
    settle::retry_budget budget;  // 500, 5, 10, 1
    CHECK(budget.available() == 500);
    const auto policy = settle::retry_policy{steps, 10}.with_budget(budget).retry_if(
        [](const std::exception_ptr& e) {
            try {
                std::rethrow_exception(e);
            } catch (const timeout_error&) {
                return settle::retry_decision::retry_timeout;
            } catch (...) {
                return settle::retry_decision::retry;
            }
        });
    int calls = 0;
    auto result = settle::retry(policy, clock, sleeper, [&] {
        switch (++calls) {
        case 1: throw timeout_error();            // the retry costs 10
        case 2: throw std::runtime_error("503");  // the retry costs 5
        default: return calls;
        }
    });
    CHECK(result.is_succeeded());
    CHECK(result.attempts() == 3);
    CHECK(budget.available() == 490);  // 500 - 10 - 5 + 5 (the successful retry's cost back)

    auto exhausted =
        settle::retry(policy.with_max_attempts(3), clock, sleeper, [] { throw timeout_error(); });
    CHECK(exhausted.outcome() == settle::retry_outcome::exhausted);
    CHECK(budget.available() == 470);  // two timeout retries, no refund
}

TEST_CASE("an exception from the sleeper propagates and returns the budget's tokens", "[retry]") {
    settle::manual_clock clock;
    throwing_sleeper sleeper;
    settle::retry_budget budget;
    const auto policy = settle::retry_policy{steps, 3}.with_budget(budget);
    CHECK_THROWS_AS(
        (void)settle::retry(policy, clock, sleeper, [] { return std::optional<int>(); }),
        std::runtime_error);
    CHECK(budget.available() == 500);
}

TEST_CASE("retry policy rejects bad settings", "[retry]") {
    volatile std::uint32_t zero = 0;
    volatile long long minus = -1;
    CHECK_THROWS_AS(settle::retry_policy(steps, zero), settle::error);
    CHECK_THROWS_AS((void)settle::retry_policy{steps}.with_max_attempts(zero), settle::error);
    CHECK_THROWS_AS((void)settle::retry_policy{steps}.with_deadline(ns(minus)), settle::error);
    CHECK_THROWS_AS((void)settle::retry_policy{steps}.with_deadline(
                        1s, static_cast<settle::deadline_mode>(minus)),
                    settle::error);
}

TEST_CASE("a retry result can be copied moved and assigned", "[retry]") {
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    const auto policy = settle::retry_policy{steps, 2};
    auto ok = settle::retry(policy, clock, sleeper, [] { return std::string("value"); });
    auto failed = settle::retry(policy, clock, sleeper,
                                []() -> std::string { throw std::runtime_error("gone"); });

    const auto copy = ok;
    CHECK(copy.value() == "value");
    CHECK(copy.attempts() == 1);
    CHECK(ok.value() == "value");
    auto moved = std::move(ok);
    CHECK(moved.value() == "value");

    auto failure_copy = failed;
    CHECK(failure_copy.outcome() == settle::retry_outcome::exhausted);
    CHECK(failure_copy.attempts() == 2);
    CHECK(failure_copy.exception() == failed.exception());
    CHECK_THROWS_AS(failure_copy.value(), std::runtime_error);

    failure_copy = moved;  // exception -> value
    CHECK(failure_copy.has_value());
    CHECK(failure_copy.value() == "value");
    CHECK(failure_copy.is_succeeded());
    moved = failed;  // value -> exception
    CHECK_FALSE(moved.has_value());
    CHECK(moved.attempts() == 2);
    auto& self = moved;
    moved = self;
    CHECK_FALSE(moved.has_value());
    moved = std::move(failure_copy);
    CHECK(moved.value() == "value");

    using unique_result = settle::retry_result<std::unique_ptr<int>>;
    STATIC_REQUIRE(std::is_move_constructible_v<unique_result>);
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<unique_result>);
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<settle::retry_result<int>>);
    STATIC_REQUIRE(std::is_copy_constructible_v<settle::retry_result<void>>);
}
