// The consumer simulation: correct handlers pass thousands of schedules;
// handlers with a planted bug are found within a bounded number of seeds and
// shrunk to a short schedule.
#include <settle/testing/simulation.hpp>

#include "settle_test.hpp"
#include "systems.hpp"

#include <settle/inbox.hpp>
#include <settle/stores/memory.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace memory = settle::memory;
namespace sim = settle::testing;

using namespace systems;

namespace {

template <class System>
sim::simulation_report planted(std::size_t seeds = 200) {
    return sim::simulate_consumer({.seeds = seeds}, [] { return System{}; });
}

void require_found_and_shrunk(const sim::simulation_report& report) {
    INFO(to_string(report));
    REQUIRE_FALSE(report.passed());
    REQUIRE(report.failure.has_value());
    CHECK(report.failure->steps <= 3);
    CHECK(report.failure->steps < report.failure->original_steps);
    CHECK(report.schedules <= 200);
}

}  // namespace

TEST_CASE("a correct consumer passes thousands of schedules, reaching every fault point") {
    const sim::simulation_report report =
        sim::simulate_consumer({.seeds = 2000}, [] { return billing{}; });
    INFO(to_string(report));
    CHECK(report.passed());
    CHECK(report.schedules == 2000);
    for (const sim::fault_point point : sim::all_fault_points) {
        CHECK((report.reached(point) > 0) == (point != sim::fault_point::lease_expiry &&
                                              point != sim::fault_point::publish_failure));
    }
}

TEST_CASE("an effect written outside the inbox transaction is found and shrunk") {
    require_found_and_shrunk(planted<effect_outside_inbox_transaction>());
}

TEST_CASE("an acknowledgement before the commit is found and shrunk") {
    const auto report = planted<ack_before_commit>();
    require_found_and_shrunk(report);
    CHECK(report.failure->what.find("lost") != std::string::npos);
}

TEST_CASE("a side effect that is not idempotent is found and shrunk") {
    require_found_and_shrunk(planted<non_idempotent_side_effect>());
}

TEST_CASE("a run in which a requested fault point was never reached fails") {
    // One message and one step: no duplicate after an acknowledgement, no
    // reordering, no second worker can happen.
    const sim::simulation_report report =
        sim::simulate_consumer({.seeds = 20, .messages = 1, .steps = 1}, [] { return billing{}; });
    INFO(to_string(report));
    CHECK_FALSE(report.passed());
    CHECK_FALSE(report.failure);
    CHECK(report.reached(sim::fault_point::reorder) == 0);
    CHECK(std::find(report.missed.begin(), report.missed.end(), sim::fault_point::reorder) !=
          report.missed.end());
    CHECK(to_string(report).find("requested but never reached: reorder") != std::string::npos);
}

TEST_CASE("only the requested fault points are injected") {
    const sim::simulation_report report = sim::simulate_consumer(
        {.seeds = 300,
         .faults = {sim::fault_point::duplicate, sim::fault_point::transient_failure}},
        [] { return non_idempotent_side_effect{}; });
    INFO(to_string(report));
    REQUIRE(report.failure);
    for (const sim::fault_point point : sim::all_fault_points) {
        if (point != sim::fault_point::duplicate && point != sim::fault_point::transient_failure &&
            point != sim::fault_point::reorder) {
            CHECK(report.reached(point) == 0);
        }
    }
    CHECK(report.failure->timeline.size() < 8);
}

TEST_CASE("a handler that throws fails the schedule with what it threw") {
    struct throwing : billing {
        void handle(const sim::delivery& m, memory::transaction&) {
            throw std::runtime_error("cannot parse " + m.payload);
        }
    };
    const sim::simulation_report report =
        sim::simulate_consumer({.seeds = 5}, [] { return throwing{}; });
    REQUIRE(report.failure);
    CHECK(report.failure->seed == 1);
    CHECK(report.failure->what.find("the handler threw: cannot parse") != std::string::npos);
}

TEST_CASE("options that cannot make a schedule are refused") {
    CHECK_THROWS_AS(sim::simulate_consumer({.seeds = 0}, [] { return billing{}; }), settle::error);
    CHECK_THROWS_AS(sim::simulate_consumer({.messages = 0}, [] { return billing{}; }),
                    settle::error);
    CHECK_THROWS_AS(sim::simulate_consumer({.keys = 0}, [] { return billing{}; }), settle::error);
}
