// The relay simulation: a publisher that reports what the broker answered
// passes thousands of schedules; one that reports success before the broker
// took the message is found within a bounded number of seeds and shrunk.
#include <settle/testing/simulation.hpp>

#include "settle_test.hpp"

#include <settle/outbox.hpp>
#include <settle/stores/memory.hpp>

#include <string>

namespace memory = settle::memory;
namespace sim = settle::testing;

namespace {

// An order service's outbox, published to a broker.
struct orders {
    memory::database db;
    memory::outbox_table outbox{db};

    memory::outbox_table& store() { return outbox; }

    settle::publish_result publish(const settle::outbox_record& record, sim::broker& broker) {
        try {
            broker.send(record);
            return settle::publish_result::delivered();
        } catch (const settle::error& e) {
            return settle::publish_result::retryable(e.what());
        }
    }
};

// Planted: answers delivered whatever the broker did with the message.
struct reports_success_first : orders {
    settle::publish_result publish(const settle::outbox_record& record, sim::broker& broker) {
        try {
            broker.send(record);
        } catch (const settle::error&) {  // NOLINT(bugprone-empty-catch): the planted bug
        }
        return settle::publish_result::delivered();
    }
};

}  // namespace

TEST_CASE("a correct publisher passes thousands of schedules, reaching every relay fault point") {
    const sim::simulation_report report =
        sim::simulate_relay({.seeds = 2000}, [] { return orders{}; });
    INFO(to_string(report));
    CHECK(report.passed());
    CHECK(report.schedules == 2000);
    for (const sim::fault_point point : sim::all_fault_points) {
        CHECK((report.reached(point) > 0) ==
              (point != sim::fault_point::duplicate && point != sim::fault_point::reorder));
    }
}

TEST_CASE("a publisher that reports success before the broker took the message is found") {
    const sim::simulation_report report =
        sim::simulate_relay({.seeds = 200}, [] { return reports_success_first{}; });
    INFO(to_string(report));
    REQUIRE(report.failure);
    CHECK(report.failure->what.find("never reached the broker") != std::string::npos);
    CHECK(report.failure->steps <= 3);
}
