// Prints the report of a simulation run, for the test that compares runs
// across processes. Usage: settle_simulation_replay <system> <first seed> <seeds>
// where <system> is billing, ack_before_commit or non_idempotent_side_effect.
#include "systems.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fputs("usage: settle_simulation_replay <system> <first seed> <seeds>\n", stderr);
        return 2;
    }
    const std::string system = argv[1];
    const settle::testing::simulation_options options{
        .first_seed = std::strtoull(argv[2], nullptr, 10),
        .seeds = std::strtoull(argv[3], nullptr, 10)};
    settle::testing::simulation_report report;
    if (system == "billing") {
        report = settle::testing::simulate_consumer(options, [] { return systems::billing{}; });
    } else if (system == "ack_before_commit") {
        report = settle::testing::simulate_consumer(options,
                                                    [] { return systems::ack_before_commit{}; });
    } else if (system == "non_idempotent_side_effect") {
        report = settle::testing::simulate_consumer(
            options, [] { return systems::non_idempotent_side_effect{}; });
    } else {
        std::fprintf(stderr, "unknown system %s\n", system.c_str());
        return 2;
    }
    std::fputs(to_string(report).c_str(), stdout);
    return 0;
}
