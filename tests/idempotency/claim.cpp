#include <settle/idempotency.hpp>
#include <settle/transaction.hpp>

#include "service.hpp"
#include "settle_test.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

using namespace idempotency_test;
using settle::fenced_write;
using settle::idempotency_claim_outcome;

TEST_CASE("a claim hands out a fencing token and a lease", "[idempotency]") {
    service s;
    const auto r = s.claim(scope_a(), key("k1"), fp("a"));
    REQUIRE(r.outcome() == idempotency_claim_outcome::claimed);
    CHECK(r.is_claimed());
    CHECK(static_cast<bool>(r));
    REQUIRE(r.claim().has_value());
    CHECK(r.claim()->scope == scope_a());
    CHECK(r.claim()->key == key("k1"));
    CHECK(r.claim()->token == r.record().token);
    CHECK(r.claim()->lease_expires_at == start_time() + lease);
    CHECK(r.record().state == settle::idempotency_state::in_progress);
    CHECK(r.record().fingerprint == fp("a"));
    CHECK(s.record(scope_a(), key("k1")) == r.record());  // committed
}

TEST_CASE("a claim reports replay and in progress and mismatch with the record found",
          "[idempotency]") {
    service s;
    const auto first = s.claim(scope_a(), key("k1"), fp("a"));
    REQUIRE(first.claim().has_value());

    const auto busy = s.claim(scope_a(), key("k1"), fp("a"));
    CHECK(busy.outcome() == idempotency_claim_outcome::in_progress);
    CHECK(busy.is_in_progress());
    CHECK_FALSE(busy.is_claimed());
    CHECK_FALSE(static_cast<bool>(busy));
    CHECK_FALSE(busy.claim().has_value());
    CHECK(busy.record() == first.record());
    CHECK(s.claim(scope_a(), key("k1"), fp("b")).outcome() == idempotency_claim_outcome::mismatch);

    auto tx = s.store.begin();
    CHECK(s.guard.complete(tx, *first.claim(), std::string("done"), 201) == fenced_write::applied);
    tx.commit();

    const auto replay = s.claim(scope_a(), key("k1"), fp("a"));
    CHECK(replay.outcome() == idempotency_claim_outcome::replay);
    CHECK(replay.is_replay());
    CHECK(settle::decode_response<std::string>(replay.record()) == "done");
    CHECK(replay.record().response.status == 201);
    const auto other = s.claim(scope_a(), key("k1"), fp("b"));
    CHECK(other.outcome() == idempotency_claim_outcome::mismatch);
    CHECK(other.is_mismatch());
    CHECK(other.record() == replay.record());
}

TEST_CASE("a completion commits atomically with the business write", "[idempotency]") {
    service s;
    const auto r = s.claim(scope_a(), key("k1"), fp("a"));
    REQUIRE(r.claim().has_value());

    SECTION("committed together") {
        auto tx = s.store.begin();
        s.orders.put(tx, "o-1", "placed");
        CHECK(s.guard.complete(tx, *r.claim(), std::string("o-1")) == fenced_write::applied);
        tx.commit();
        CHECK(s.order("o-1") == "placed");
        CHECK(s.record(scope_a(), key("k1"))->state == settle::idempotency_state::completed);
    }
    SECTION("rolled back together") {
        {
            auto tx = s.store.begin();
            s.orders.put(tx, "o-1", "placed");
            CHECK(s.guard.complete(tx, *r.claim(), std::string("o-1")) == fenced_write::applied);
            tx.rollback();
        }
        CHECK_FALSE(s.order("o-1").has_value());
        CHECK(s.record(scope_a(), key("k1")) == r.record());  // still in progress, still ours
        auto tx = s.store.begin();
        CHECK(s.guard.complete(tx, *r.claim(), std::string("o-1")) == fenced_write::applied);
        tx.commit();
    }
}

TEST_CASE("a stale completion lets the caller roll back its business write", "[idempotency]") {
    service s;
    const auto stale = s.claim(scope_a(), key("k1"), fp("a"));
    REQUIRE(stale.claim().has_value());
    s.clock.advance(lease);
    const auto owner = s.claim(scope_a(), key("k1"), fp("a"));
    REQUIRE(owner.outcome() == idempotency_claim_outcome::claimed);
    CHECK(owner.claim()->token > stale.claim()->token);

    {
        auto tx = s.store.begin();
        s.orders.put(tx, "stale-order", "placed");
        const auto write = s.guard.complete(tx, *stale.claim(), std::string("stale-order"));
        CHECK(write == fenced_write::stale);
        if (write == fenced_write::stale) {
            tx.rollback();
        }
    }
    CHECK_FALSE(s.order("stale-order").has_value());

    auto tx = s.store.begin();
    s.orders.put(tx, "owner-order", "placed");
    CHECK(s.guard.complete(tx, *owner.claim(), std::string("owner-order")) ==
          fenced_write::applied);
    tx.commit();
    const auto replay = s.claim(scope_a(), key("k1"), fp("a"));
    CHECK(settle::decode_response<std::string>(replay.record()) == "owner-order");
    CHECK(s.order("owner-order") == "placed");
}

TEST_CASE("abandon gives the key up for a retry and only once", "[idempotency]") {
    service s;
    const auto r = s.claim(scope_a(), key("k1"), fp("a"));
    REQUIRE(r.claim().has_value());
    auto tx = s.store.begin();
    CHECK(s.guard.abandon(tx, *r.claim()) == fenced_write::applied);
    CHECK(s.guard.abandon(tx, *r.claim()) == fenced_write::stale);
    tx.commit();
    const auto retry = s.claim(scope_a(), key("k1"), fp("b"));
    CHECK(retry.outcome() == idempotency_claim_outcome::claimed);
}

TEST_CASE("a claim joins the caller's transaction", "[idempotency]") {
    service s;
    {
        auto tx = s.store.begin();
        const auto r = s.guard.claim(tx, scope_a(), key("k1"), fp("a"));
        CHECK(r.outcome() == idempotency_claim_outcome::claimed);
        s.orders.put(tx, "o-1", "reserved");
        // destroyed without commit: both writes roll back
    }
    CHECK_FALSE(s.order("o-1").has_value());
    CHECK_FALSE(s.record(scope_a(), key("k1")).has_value());
}

TEST_CASE("decode_response refuses a record that has no response", "[idempotency]") {
    service s;
    const auto r = s.claim(scope_a(), key("k1"), fp("a"));
    try {
        (void)settle::decode_response<std::string>(r.record());
        FAIL("an in-progress record decoded");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
    }
}

namespace {
// Records that expire by themselves: claim, complete and abandon, no purge.
// An idempotency_store, not an purgeable_idempotency_store.
class expiring_store {
public:
    using transaction = settle::memory::transaction;

    explicit expiring_store(settle::memory::database& db) : table_(db) {}

    transaction begin() { return table_.begin(); }
    settle::idempotency_store_claim claim(transaction& tx, const settle::idempotency_scope& scope,
                                          const settle::idempotency_key& k,
                                          const settle::sha256_digest& fingerprint,
                                          settle::stored_time now, settle::stored_time lease_end) {
        return table_.claim(tx, scope, k, fingerprint, now, lease_end);
    }
    settle::fenced_write complete(transaction& tx, const settle::idempotency_scope& scope,
                                  const settle::idempotency_key& k, settle::fencing_token token,
                                  settle::idempotency_response response,
                                  settle::stored_time retain_until) {
        return table_.complete(tx, scope, k, token, std::move(response), retain_until);
    }
    settle::fenced_write abandon(transaction& tx, const settle::idempotency_scope& scope,
                                 const settle::idempotency_key& k, settle::fencing_token token) {
        return table_.abandon(tx, scope, k, token);
    }

private:
    settle::memory::idempotency_table table_;
};
}  // namespace

TEST_CASE("purge is a role of its own that a store with expiring records need not play",
          "[idempotency]") {
    STATIC_REQUIRE(settle::purgeable_idempotency_store<settle::memory::idempotency_table>);
    STATIC_REQUIRE(settle::idempotency_store<expiring_store>);
    STATIC_REQUIRE_FALSE(settle::purgeable_idempotency_store<expiring_store>);
    STATIC_REQUIRE_FALSE(settle::idempotency_store<int>);

    settle::memory::database db;
    expiring_store store(db);
    settle::manual_clock clock(start_time());
    settle::idempotency_guard guard(store, clock, {.lease = lease, .retention = retention});
    const auto first = guard.run(scope_a(), key("k1"), fp("a"), [] { return 1; });
    CHECK(first.is_executed());
    const auto claimed = settle::in_transaction(store, [&](settle::memory::transaction& tx) {
        return guard.claim(tx, scope_a(), key("k1"), fp("a"));
    });
    CHECK(claimed.is_replay());
    CHECK(settle::decode_response<int>(claimed.record()) == 1);
}
