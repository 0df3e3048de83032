// The consumer simulation: correct handlers pass thousands of schedules;
// handlers with a planted bug are found within a bounded number of seeds and
// shrunk to a short schedule.
#include <settle/testing/simulation.hpp>

#include "settle_test.hpp"

#include <settle/inbox.hpp>
#include <settle/stores/memory.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace memory = settle::memory;
namespace sim = settle::testing;

namespace {

// A billing service: balances per key, and the inbox, in one database.
struct billing {
    memory::database db;
    memory::inbox_table inbox{db};
    memory::table<std::string, std::int64_t> balances{db};

    memory::inbox_table& store() { return inbox; }

    void handle(const sim::delivery& m, memory::transaction& tx) {
        const std::int64_t* old = balances.find(tx, m.key);
        balances.put(tx, m.key, (old ? *old : 0) + std::stoll(m.payload));
    }

    bool check(memory::transaction& tx, std::span<const sim::message> sent) const {
        std::map<std::string, std::int64_t> expected;
        for (const sim::message& m : sent) {
            expected[m.key] += std::stoll(m.payload);
        }
        for (const auto& [key, sum] : expected) {
            const std::int64_t* got = balances.find(tx, key);
            if (!got || *got != sum) {
                return false;
            }
        }
        return balances.size(tx) == expected.size();
    }
};

// Planted: the effect is written in a transaction of its own, in a ledger
// database apart from the inbox.
struct effect_outside_inbox_transaction : billing {
    memory::database ledger_db;
    memory::table<std::string, std::int64_t> ledger{ledger_db};

    void handle(const sim::delivery& m, memory::transaction&) {
        ledger_db.transact([&](memory::transaction& own) {
            const std::int64_t* old = ledger.find(own, m.key);
            ledger.put(own, m.key, (old ? *old : 0) + std::stoll(m.payload));
        });
    }

    bool check(memory::transaction&, std::span<const sim::message> sent) {
        std::int64_t expected = 0;
        for (const sim::message& m : sent) {
            expected += std::stoll(m.payload);
        }
        return ledger_db.transact([&](memory::transaction& own) {
            std::int64_t got = 0;
            ledger.for_each(own, [&](const std::string&, std::int64_t v) { got += v; });
            return got == expected;
        });
    }
};

// Planted: acknowledges the message before the transaction commits.
struct ack_before_commit : billing {
    void handle(const sim::delivery& m, memory::transaction& tx) {
        m.ack();
        billing::handle(m, tx);
    }
};

// Planted: sends an e-mail (a call to another service) from the handler.
struct non_idempotent_side_effect : billing {
    std::vector<std::string> emails_sent;

    void handle(const sim::delivery& m, memory::transaction& tx) {
        billing::handle(m, tx);
        emails_sent.push_back(m.id);
    }

    bool check(memory::transaction& tx, std::span<const sim::message> sent) const {
        return billing::check(tx, sent) && emails_sent.size() == sent.size();
    }
};

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
        CHECK(report.reached(point) > 0);
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
