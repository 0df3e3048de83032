// next() against a hand-written switch giving the same answers, for a small
// table (5 states) and a large one (50 states, 200 rows, bench/fsm_large.hpp).
#include <settle/state_machine.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <random>
#include <utility>
#include <vector>

#include "fsm_large.hpp"

namespace {

namespace small {
enum class state { created, authorized, captured, failed, refunded };
enum class event { authorize, capture, fail, refund };
using enum state;
using enum event;

constexpr auto machine = settle::make_state_machine<state, event>(
    {created, authorized, captured, failed, refunded}, {failed, refunded},
    {{created, authorize, authorized},
     {created, fail, failed},
     {authorized, capture, captured},
     {authorized, fail, failed},
     {captured, refund, refunded}});

settle::transition_result<state, event> next_switch(state from, event e) {
    using settle::transition_outcome;
    switch (from) {
    case created:
        switch (e) {
        case authorize: return {transition_outcome::applied, from, e, authorized};
        case fail: return {transition_outcome::applied, from, e, failed};
        default: return {transition_outcome::rejected, from, e, from};
        }
    case authorized:
        switch (e) {
        case capture: return {transition_outcome::applied, from, e, captured};
        case fail: return {transition_outcome::applied, from, e, failed};
        case authorize: return {transition_outcome::duplicate, from, e, from};
        default: return {transition_outcome::rejected, from, e, from};
        }
    case captured:
        switch (e) {
        case refund: return {transition_outcome::applied, from, e, refunded};
        case capture: return {transition_outcome::duplicate, from, e, from};
        default: return {transition_outcome::rejected, from, e, from};
        }
    case failed:
        return {e == fail ? transition_outcome::duplicate : transition_outcome::rejected, from, e,
                from};
    case refunded:
        return {e == refund ? transition_outcome::duplicate : transition_outcome::rejected, from, e,
                from};
    }
    return {transition_outcome::rejected, from, e, from};
}
}  // namespace small

// The same pseudo-random (state, event) pairs for a measured case and its baseline.
template <class State, class Event>
std::vector<std::pair<State, Event>> inputs(int states, int events) {
    std::mt19937 random(42);
    std::vector<std::pair<State, Event>> out(4096);
    for (auto& [s, e] : out) {
        s = static_cast<State>(static_cast<int>(random() % static_cast<unsigned>(states)));
        e = static_cast<Event>(static_cast<int>(random() % static_cast<unsigned>(events)));
    }
    return out;
}

template <class State, class Event, class Next>
void run(benchmark::State& bench, int states, int events, Next next) {
    const auto pairs = inputs<State, Event>(states, events);
    std::size_t i = 0;
    for (auto _ : bench) {
        const auto& [s, e] = pairs[i++ & (pairs.size() - 1)];
        benchmark::DoNotOptimize(next(s, e));
    }
}

void fsm_next_small(benchmark::State& bench) {
    run<small::state, small::event>(bench, 5, 4,
                                    [](auto s, auto e) { return small::machine.next(s, e); });
}
void baseline_switch_small(benchmark::State& bench) {
    run<small::state, small::event>(bench, 5, 4, small::next_switch);
}
void fsm_next_large(benchmark::State& bench) {
    run<large::state, large::event>(bench, 50, 10,
                                    [](auto s, auto e) { return large::machine.next(s, e); });
}
void baseline_switch_large(benchmark::State& bench) {
    run<large::state, large::event>(bench, 50, 10, large::next_switch);
}

}  // namespace

BENCHMARK(fsm_next_small)->Name("fsm/next/small_5_states");
BENCHMARK(baseline_switch_small)->Name("baseline/switch/small_5_states");
BENCHMARK(fsm_next_large)->Name("fsm/next/large_50_states_200_rows");
BENCHMARK(baseline_switch_large)->Name("baseline/switch/large_50_states_200_rows");
