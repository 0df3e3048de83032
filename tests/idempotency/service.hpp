// What the idempotency tests share: a service with a manual clock, an
// in-memory database holding the idempotency records and a business table,
// and a guard over them.
#ifndef SETTLE_TESTS_IDEMPOTENCY_SERVICE_HPP
#define SETTLE_TESTS_IDEMPOTENCY_SERVICE_HPP

#include <settle/clock.hpp>
#include <settle/idempotency.hpp>
#include <settle/sha256.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_idempotency.hpp>
#include <settle/transaction.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace idempotency_test {

using namespace std::chrono_literals;

inline constexpr auto lease = 30s;
inline constexpr auto retention = 24h;

inline settle::manual_clock::time_point start_time() {
    return std::chrono::sys_days(std::chrono::year(2024) / 3 / 1);
}

inline settle::idempotency_key key(std::string_view text) {
    return settle::idempotency_key::parse(text).value();
}

inline settle::sha256_digest fp(std::string_view request) {
    return settle::sha256::hash(request);
}

struct service {
    using guard_type =
        settle::idempotency_guard<settle::memory::idempotency_table, settle::manual_clock>;

    settle::manual_clock clock{start_time()};
    settle::memory::database db;
    settle::memory::idempotency_table store{db};
    settle::memory::table<std::string, std::string> orders{db};
    guard_type guard{store, clock, {.lease = lease, .retention = retention}};

    // guard.claim in a transaction of its own, committed before it returns.
    settle::idempotency_claim_result claim(const settle::idempotency_scope& scope,
                                           const settle::idempotency_key& k,
                                           const settle::sha256_digest& fingerprint) {
        return settle::in_transaction(store, [&](settle::memory::transaction& tx) {
            return guard.claim(tx, scope, k, fingerprint);
        });
    }

    // guard.purge in a transaction of its own.
    std::size_t purge(std::size_t limit) {
        return settle::in_transaction(
            store, [&](settle::memory::transaction& tx) { return guard.purge(tx, limit); });
    }

    // The record stored for (scope, key), read in a transaction of its own.
    std::optional<settle::idempotency_record> record(const settle::idempotency_scope& scope,
                                                     const settle::idempotency_key& k) {
        return settle::in_transaction(
            store, [&](settle::memory::transaction& tx) { return store.find(tx, scope, k); });
    }

    std::optional<std::string> order(const std::string& id) {
        return settle::in_transaction(
            store, [&](settle::memory::transaction& tx) -> std::optional<std::string> {
                const std::string* row = orders.find(tx, id);
                return row == nullptr ? std::nullopt : std::optional<std::string>(*row);
            });
    }
};

inline settle::idempotency_scope scope_a() {
    return {"tenant-a", "orders.create"};
}

}  // namespace idempotency_test

#endif  // SETTLE_TESTS_IDEMPOTENCY_SERVICE_HPP
