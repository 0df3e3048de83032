// A seed replays the same schedule: the same report twice in one process,
// and in another process.
#include <settle/testing/simulation.hpp>

#include "settle_test.hpp"
#include "systems.hpp"

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace sim = settle::testing;

namespace {

template <class System>
std::string report_text(std::uint64_t first_seed, std::size_t seeds) {
    return to_string(sim::simulate_consumer({.first_seed = first_seed, .seeds = seeds},
                                            [] { return System{}; }));
}

// What the replay program prints for the same run, in a process of its own.
std::string child_report(const std::string& system, std::uint64_t first_seed, std::size_t seeds) {
    const std::string command = std::string(SETTLE_SIMULATION_REPLAY) + " " + system + " " +
                                std::to_string(first_seed) + " " + std::to_string(seeds);
    const std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    REQUIRE(pipe);
    std::string out;
    std::array<char, 4096> buffer{};
    for (std::size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0;) {
        out.append(buffer.data(), n);
    }
    return out;
}

}  // namespace

TEST_CASE("a seed gives the same schedule and report twice in one process") {
    const std::string passing = report_text<systems::billing>(40, 300);
    CHECK(report_text<systems::billing>(40, 300) == passing);
    const std::string failing = report_text<systems::ack_before_commit>(1, 200);
    CHECK(failing.find("FAILED") != std::string::npos);
    CHECK(report_text<systems::ack_before_commit>(1, 200) == failing);
}

TEST_CASE("different seeds give different schedules") {
    CHECK(report_text<systems::billing>(1, 50) != report_text<systems::billing>(51, 50));
}

TEST_CASE("a seed gives the same report in another process") {
    CHECK(child_report("billing", 7, 100) == report_text<systems::billing>(7, 100));
    CHECK(child_report("non_idempotent_side_effect", 3, 200) ==
          report_text<systems::non_idempotent_side_effect>(3, 200));
}

TEST_CASE("the failing seed replays the failure on its own") {
    const sim::simulation_report found =
        sim::simulate_consumer({.seeds = 200}, [] { return systems::ack_before_commit{}; });
    REQUIRE(found.failure);
    const sim::simulation_report replayed =
        sim::simulate_consumer({.first_seed = found.failure->seed, .seeds = 1},
                               [] { return systems::ack_before_commit{}; });
    REQUIRE(replayed.failure);
    CHECK(replayed.failure->timeline == found.failure->timeline);
}
