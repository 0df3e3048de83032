// Tests a message consumer's handler under duplicates, reordering, crashes and
// storage faults: 2000 seeded schedules through the deterministic simulation.
// Exits non-zero, printing the shrunk failing schedule, if one of them fails.
#include <settle/testing/simulation.hpp>

#include <settle/stores/memory.hpp>

#include <cstdio>
#include <span>
#include <string>

// [consumer-under-test]
struct billing {  // your service, built afresh for every schedule
    settle::memory::database db;
    settle::memory::inbox_table inbox{db};
    settle::memory::table<std::string, long> balances{db};

    settle::memory::inbox_table& store() { return inbox; }

    void handle(const settle::testing::delivery& m, settle::memory::transaction& tx) {
        const long* old = balances.find(tx, m.key);
        balances.put(tx, m.key, (old ? *old : 0) + std::stol(m.payload));
    }

    bool check(settle::memory::transaction& tx, std::span<const settle::testing::message> sent) {
        long sent_total = 0;
        long balance_total = 0;
        for (const settle::testing::message& m : sent) {
            sent_total += std::stol(m.payload);
        }
        balances.for_each(tx, [&](const std::string&, long b) { balance_total += b; });
        return balance_total == sent_total;
    }
};
// [consumer-under-test]

int main() {
    // [run-the-simulation]
    const settle::testing::simulation_report report =
        settle::testing::simulate_consumer({.seeds = 2000}, [] { return billing{}; });
    std::fputs(to_string(report).c_str(), stdout);
    return report.passed() ? 0 : 1;
    // [run-the-simulation]
}
