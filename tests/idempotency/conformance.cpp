#include <settle/testing/idempotency_store_suite.hpp>

#include "settle_test.hpp"

#include <settle/stores/memory.hpp>
#include <settle/stores/memory_idempotency.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct memory_fixture {
    settle::memory::database db;
    settle::memory::idempotency_table store{db};
};

// A backend with a classic bug: complete() checks that a claim exists but not
// whose it is, so a worker whose lease was taken over overwrites the result.
struct unfenced_store : settle::memory::idempotency_table {
    using settle::memory::idempotency_table::idempotency_table;

    settle::fenced_write complete(transaction& tx, const settle::idempotency_scope& scope,
                                  const settle::idempotency_key& key, settle::fencing_token,
                                  settle::idempotency_response response,
                                  settle::stored_time retain_until) {
        const auto current = find(tx, scope, key);
        if (!current || current->state != settle::idempotency_state::in_progress) {
            return settle::fenced_write::stale;
        }
        return settle::memory::idempotency_table::complete(tx, scope, key, current->token,
                                                           std::move(response), retain_until);
    }
};

struct unfenced_fixture {
    settle::memory::database db;
    unfenced_store store{db};
};

}  // namespace

TEST_CASE("the in-memory store passes the idempotency store conformance suite", "[idempotency]") {
    for (const auto& c : settle::conformance::idempotency_store_suite<memory_fixture>) {
        INFO(std::string(c.name));
        memory_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("a store without fencing fails the cases that check fencing", "[idempotency]") {
    std::vector<std::string> failed;
    for (const auto& c : settle::conformance::idempotency_store_suite<unfenced_fixture>) {
        unfenced_fixture fixture;
        try {
            c.run(fixture);
        } catch (const settle::conformance::failure& e) {
            failed.emplace_back(c.name);
            CHECK(std::string(e.what()).find("idempotency_store_suite.hpp:") != std::string::npos);
        }
    }
    const std::vector<std::string> expected = {
        "a stale owner cannot complete after a take over",
        "tokens keep increasing for a key after its record is purged",
    };
    CHECK(failed == expected);
}
