// Consumers for the simulation tests: a correct billing service, and the
// same service with one bug planted in each.
#ifndef SETTLE_TESTS_SIMULATION_SYSTEMS_HPP
#define SETTLE_TESTS_SIMULATION_SYSTEMS_HPP

#include <settle/testing/simulation.hpp>

#include <settle/stores/memory.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace systems {

namespace memory = settle::memory;
namespace sim = settle::testing;

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

}  // namespace systems

#endif  // SETTLE_TESTS_SIMULATION_SYSTEMS_HPP
