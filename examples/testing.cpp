// Tests a message consumer's handler, an idempotent request handler and an
// outbox publisher under duplicates, reordering, crashes, leases that end
// mid-operation, a failing broker and storage faults: 2000 seeded schedules
// each through the deterministic simulation.
// Exits non-zero, printing the shrunk failing schedule, if one of them fails.
#include <settle/testing/simulation.hpp>

#include <settle/idempotency.hpp>
#include <settle/outbox.hpp>
#include <settle/sha256.hpp>
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

// [requests-under-test]
struct payments {  // charges each request's account once
    settle::memory::database db;
    settle::memory::idempotency_table requests{db};
    settle::memory::table<std::string, long> charged{db};

    settle::memory::idempotency_table& store() { return requests; }

    bool handle(const settle::testing::message& r, auto& guard, auto& store) {
        const settle::idempotency_scope scope{r.key, "payments.charge"};
        const auto key = settle::idempotency_key::parse(r.id).value();
        const auto claim = settle::in_transaction(store, [&](auto& tx) {
            return guard.claim(tx, scope, key, settle::sha256::hash(r.payload));
        });
        if (!claim) {
            return claim.is_replay();  // in progress elsewhere: the client retries later
        }
        auto tx = store.begin();  // the charge and the stored response commit together
        const long* old = charged.find(tx, r.key);
        charged.put(tx, r.key, (old ? *old : 0) + std::stol(r.payload));
        if (guard.complete(tx, *claim.claim(), std::string("charged")) ==
            settle::fenced_write::stale) {
            return false;  // the lease ended and another worker took over: roll back
        }
        tx.commit();
        return true;
    }

    bool check(settle::memory::transaction& tx, std::span<const settle::testing::message> sent) {
        long sent_total = 0;
        long charged_total = 0;
        for (const settle::testing::message& r : sent) {
            sent_total += std::stol(r.payload);
        }
        charged.for_each(tx, [&](const std::string&, long c) { charged_total += c; });
        return charged_total == sent_total;
    }
};
// [requests-under-test]

// [publisher-under-test]
struct orders {  // an outbox, and the publisher that sends it to the broker
    settle::memory::database db;
    settle::memory::outbox_table outbox{db};

    settle::memory::outbox_table& store() { return outbox; }

    settle::publish_result publish(const settle::outbox_record& record,
                                   settle::testing::broker& broker) {
        try {
            broker.send(record);  // returns once the broker has the message
            return settle::publish_result::delivered();
        } catch (const settle::error& e) {
            return settle::publish_result::retryable(e.what());
        }
    }
};
// [publisher-under-test]

int main() {
    // [run-the-simulation]
    const settle::testing::simulation_report report =
        settle::testing::simulate_consumer({.seeds = 2000}, [] { return billing{}; });
    std::fputs(to_string(report).c_str(), stdout);
    // [run-the-simulation]
    // [run-the-requests]
    const auto requests =
        settle::testing::simulate_requests({.seeds = 2000}, [] { return payments{}; });
    std::fputs(to_string(requests).c_str(), stdout);
    // [run-the-requests]
    // [run-the-relay]
    const auto relay = settle::testing::simulate_relay({.seeds = 2000}, [] { return orders{}; });
    std::fputs(to_string(relay).c_str(), stdout);
    // [run-the-relay]
    return report.passed() && requests.passed() && relay.passed() ? 0 : 1;
}
