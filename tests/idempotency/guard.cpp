#include <settle/idempotency.hpp>

#include "service.hpp"
#include "settle_test.hpp"

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

using namespace idempotency_test;
using settle::idempotency_outcome;

TEST_CASE("the first run executes and a repeat replays the stored response", "[idempotency]") {
    service s;
    int calls = 0;
    const auto op = [&] {
        ++calls;
        return std::string("order-") + std::to_string(calls);
    };

    const auto first = s.guard.run(scope_a(), key("k1"), fp("buy 1"), op);
    CHECK(first.outcome() == idempotency_outcome::executed);
    CHECK(first.is_executed());
    CHECK(static_cast<bool>(first));
    CHECK(first.stored());
    CHECK(first.response() == "order-1");
    CHECK_FALSE(first.record().has_value());

    s.clock.advance(1h);
    const auto again = s.guard.run(scope_a(), key("k1"), fp("buy 1"), op);
    CHECK(again.outcome() == idempotency_outcome::replayed);
    CHECK_FALSE(again.is_executed());
    CHECK(again.is_replayed());
    CHECK_FALSE(static_cast<bool>(again));
    CHECK(again.response() == "order-1");
    CHECK_FALSE(again.stored());
    REQUIRE(again.record().has_value());
    CHECK(again.record()->state == settle::idempotency_state::completed);
    CHECK(again.record()->claimed_at == start_time());
    CHECK(again.record()->expires_at == start_time() + retention);
    CHECK(calls == 1);
}

TEST_CASE("the same key with a different fingerprint is refused as mismatch", "[idempotency]") {
    service s;
    int calls = 0;
    const auto op = [&] {
        ++calls;
        return 7;
    };
    (void)s.guard.run(scope_a(), key("k1"), fp("buy 1"), op);

    const auto other = s.guard.run(scope_a(), key("k1"), fp("buy 2"), op);
    CHECK(other.outcome() == idempotency_outcome::mismatch);
    CHECK_FALSE(other.response().has_value());
    REQUIRE(other.record().has_value());
    CHECK(other.record()->fingerprint == fp("buy 1"));
    CHECK(settle::decode_response<int>(*other.record()) == 7);
    CHECK(calls == 1);
}

TEST_CASE("a repeat while the first run holds the key gets in progress", "[idempotency]") {
    service s;
    int inner_calls = 0;
    settle::idempotency_outcome inner = idempotency_outcome::executed;
    settle::idempotency_outcome mismatched = idempotency_outcome::executed;
    std::optional<settle::idempotency_record> seen;
    const auto first = s.guard.run(scope_a(), key("k1"), fp("buy 1"), [&] {
        s.clock.advance(lease - 1ns);  // the lease has not ended yet
        const auto r = s.guard.run(scope_a(), key("k1"), fp("buy 1"), [&] {
            ++inner_calls;
            return 2;
        });
        inner = r.outcome();
        seen = r.record();
        // A different request with the key gets mismatch, not in_progress.
        mismatched = s.guard.run(scope_a(), key("k1"), fp("buy 2"), [] { return 3; }).outcome();
        return 1;
    });
    CHECK(first.outcome() == idempotency_outcome::executed);
    CHECK(inner == idempotency_outcome::in_progress);
    CHECK(mismatched == idempotency_outcome::mismatch);
    CHECK(inner_calls == 0);
    REQUIRE(seen.has_value());
    CHECK(seen->state == settle::idempotency_state::in_progress);
    CHECK(seen->expires_at == start_time() + lease);  // for a Retry-After
}

TEST_CASE("when op throws the claim is abandoned and the exception propagates", "[idempotency]") {
    service s;
    CHECK_THROWS_AS(s.guard.run(scope_a(), key("k1"), fp("buy 1"),
                                []() -> int { throw std::runtime_error("payment gateway down"); }),
                    std::runtime_error);
    CHECK_FALSE(s.record(scope_a(), key("k1")).has_value());

    const auto retry = s.guard.run(scope_a(), key("k1"), fp("buy 1"), [] { return 5; });
    CHECK(retry.outcome() == idempotency_outcome::executed);
    CHECK(retry.response() == 5);
}

TEST_CASE("a keep policy chooses which results are stored", "[idempotency]") {
    service s;
    int calls = 0;
    const auto declined = [&] {
        ++calls;
        return -1;
    };
    const auto only_positive = [](const int& r) { return r > 0; };

    SECTION("a result the policy declines is returned and not stored") {
        const auto r = s.guard.run(scope_a(), key("k1"), fp("a"), declined, only_positive);
        CHECK(r.outcome() == idempotency_outcome::executed);
        CHECK(r.response() == -1);
        CHECK_FALSE(r.stored());
        CHECK_FALSE(s.record(scope_a(), key("k1")).has_value());
        const auto again = s.guard.run(scope_a(), key("k1"), fp("a"), declined, only_positive);
        CHECK(again.outcome() == idempotency_outcome::executed);
        CHECK(calls == 2);
    }
    SECTION("a decision stores a status that replays read back") {
        const auto with_status = [](const int& r) {
            return settle::idempotency_store_decision{.store = true, .status = r > 0 ? 201 : 500};
        };
        const auto r = s.guard.run(
            scope_a(), key("k1"), fp("a"), [] { return 9; }, with_status);
        CHECK(r.stored());
        CHECK(r.status() == 201);
        const auto again = s.guard.run(scope_a(), key("k1"), fp("a"), [] { return 10; });
        CHECK(again.outcome() == idempotency_outcome::replayed);
        CHECK(again.response() == 9);
        CHECK(again.status() == 201);
        CHECK(again.record()->response.status == 201);
        CHECK(settle::idempotency_http::status(again) == 201);
    }
    SECTION("by default every result is stored without a status") {
        const auto r = s.guard.run(scope_a(), key("k1"), fp("a"), declined);
        CHECK(r.stored());
        CHECK_FALSE(r.status().has_value());
        CHECK_FALSE(s.record(scope_a(), key("k1"))->response.status.has_value());
    }
}

TEST_CASE("after the retention ends the same key starts a new execution", "[idempotency]") {
    service s;
    int calls = 0;
    const auto op = [&] { return ++calls; };
    (void)s.guard.run(scope_a(), key("k1"), fp("a"), op);

    s.clock.advance(retention - 1ns);
    const auto before = s.guard.run(scope_a(), key("k1"), fp("a"), op);
    CHECK(before.outcome() == idempotency_outcome::replayed);
    CHECK(before.response() == 1);

    s.clock.advance(1ns);
    const auto after = s.guard.run(scope_a(), key("k1"), fp("b"), op);
    CHECK(after.outcome() == idempotency_outcome::executed);
    CHECK(after.response() == 2);
    CHECK(s.record(scope_a(), key("k1"))->fingerprint == fp("b"));
}

TEST_CASE("expiry comes from the record's own times not from the guard that reads it",
          "[idempotency]") {
    service s;
    settle::idempotency_guard short_lived(s.store, s.clock, {.lease = 1s, .retention = 1h});
    settle::idempotency_guard long_lived(s.store, s.clock, {.lease = 1h, .retention = 48h});
    (void)short_lived.run(scope_a(), key("k1"), fp("a"), [] { return 1; });
    s.clock.advance(1h);
    const auto r = long_lived.run(scope_a(), key("k1"), fp("a"), [] { return 2; });
    CHECK(r.outcome() == idempotency_outcome::executed);
    CHECK(r.response() == 2);
}

TEST_CASE("a worker whose lease ended cannot overwrite the new owner's response", "[idempotency]") {
    service s;
    const auto first = s.guard.run(scope_a(), key("k1"), fp("a"), [&] {
        // The first worker stalls past its lease; a retry takes the key over.
        s.clock.advance(lease + 1s);
        const auto takeover =
            s.guard.run(scope_a(), key("k1"), fp("a"), [] { return std::string("new owner"); });
        CHECK(takeover.outcome() == idempotency_outcome::executed);
        CHECK(takeover.stored());
        return std::string("stale worker");
    });
    CHECK(first.outcome() == idempotency_outcome::stale);
    CHECK(first.response() == "stale worker");
    CHECK_FALSE(first.stored());
    CHECK(settle::idempotency_http::status(first) == 200);

    const auto replay =
        s.guard.run(scope_a(), key("k1"), fp("a"), [] { return std::string("never"); });
    CHECK(replay.outcome() == idempotency_outcome::replayed);
    CHECK(replay.response() == "new owner");
}

TEST_CASE("one tenant never replays another tenant's response", "[idempotency]") {
    service s;
    const settle::idempotency_scope tenant_a{"tenant-a", "orders.create"};
    const settle::idempotency_scope tenant_b{"tenant-b", "orders.create"};
    const settle::idempotency_scope other_operation{"tenant-a", "orders.cancel"};
    const auto as = [](std::string text) { return [text] { return text; }; };

    CHECK(s.guard.run(tenant_a, key("k1"), fp("a"), as("A")).response() == "A");
    const auto b = s.guard.run(tenant_b, key("k1"), fp("a"), as("B"));
    CHECK(b.outcome() == idempotency_outcome::executed);
    CHECK(b.response() == "B");
    const auto c = s.guard.run(other_operation, key("k1"), fp("a"), as("C"));
    CHECK(c.outcome() == idempotency_outcome::executed);
    CHECK(c.response() == "C");

    CHECK(s.guard.run(tenant_a, key("k1"), fp("a"), as("x")).response() == "A");
    CHECK(s.guard.run(tenant_b, key("k1"), fp("a"), as("x")).response() == "B");
    CHECK(s.guard.run(other_operation, key("k1"), fp("a"), as("x")).response() == "C");
}

TEST_CASE("a stored response that cannot be decoded raises decode_failed and is kept",
          "[idempotency]") {
    service s;
    (void)s.guard.run(scope_a(), key("k1"), fp("a"), [] { return std::string("abc"); });
    const auto before = s.record(scope_a(), key("k1"));

    int calls = 0;
    try {
        (void)s.guard.run(scope_a(), key("k1"), fp("a"), [&] {
            ++calls;
            return std::uint32_t{1};
        });
        FAIL("a three-byte response decoded as a uint32");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::decode_failed);
        const std::string what = e.what();
        CHECK(what.find("idempotency: the stored response cannot be decoded") != std::string::npos);
        CHECK(what.find("uint32: expected 4 bytes, got 3") != std::string::npos);
    }
    CHECK(calls == 0);
    CHECK(s.record(scope_a(), key("k1")) == before);
    const auto replay = s.guard.run(scope_a(), key("k1"), fp("a"), [] { return std::string(); });
    CHECK(replay.response() == "abc");
}

TEST_CASE("op runs outside any transaction so it can open its own", "[idempotency]") {
    service s;
    const auto r = s.guard.run(scope_a(), key("k1"), fp("a"), [&] {
        settle::in_transaction(
            s.store, [&](settle::memory::transaction& tx) { s.orders.put(tx, "o-1", "placed"); });
        return std::string("o-1");
    });
    CHECK(r.outcome() == idempotency_outcome::executed);
    CHECK(s.order("o-1") == "placed");
}

TEST_CASE("the guard refuses a lease or retention that is not positive", "[idempotency]") {
    service s;
    using settle::idempotency_options;
    const idempotency_options bad = GENERATE(idempotency_options{.lease = 0s, .retention = 1h},
                                             idempotency_options{.lease = 1s, .retention = 0s},
                                             idempotency_options{.lease = -1s, .retention = 1h});
    try {
        settle::idempotency_guard g(s.store, s.clock, bad);
        FAIL("accepted lease " << bad.lease.count() << " retention " << bad.retention.count());
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
    }
    const settle::idempotency_guard defaults(s.store, s.clock);
    CHECK(defaults.options().lease == 1min);
    CHECK(defaults.options().retention == 24h);
}

TEST_CASE("purge removes records whose time has passed in batches", "[idempotency]") {
    service s;
    for (const char* k : {"k1", "k2", "k3"}) {
        (void)s.guard.run(scope_a(), key(k), fp("a"), [] { return 1; });
    }
    const auto held = s.claim(scope_a(), key("held"), fp("a"));
    REQUIRE(held.outcome() == settle::idempotency_claim_outcome::claimed);

    CHECK(s.purge(10) == 0);
    s.clock.advance(lease);  // the claim's lease is over, the responses are retained
    CHECK(s.purge(10) == 1);
    s.clock.advance(retention);
    CHECK(s.purge(2) == 2);
    CHECK(s.purge(2) == 1);
    CHECK(s.purge(2) == 0);
    CHECK(settle::in_transaction(
              s.store, [&](settle::memory::transaction& tx) { return s.store.size(tx); }) == 0);
}

TEST_CASE("a retention past the end of stored time saturates instead of overflowing",
          "[idempotency]") {
    settle::memory::database db;
    settle::memory::idempotency_table store{db};
    settle::manual_clock clock;
    settle::idempotency_guard guard(store, clock,
                                    {std::chrono::minutes(1), std::chrono::microseconds::max()});
    const auto r = guard.run(scope_a(), key("k1"), fp("a"), [] { return 1; });
    CHECK(r.stored());
    const auto record = settle::in_transaction(store, [&](settle::memory::transaction& tx) {
        return store.find(tx, scope_a(), key("k1"));
    });
    REQUIRE(record.has_value());
    CHECK(record->expires_at == settle::stored_time::max());
    CHECK(guard.run(scope_a(), key("k1"), fp("a"), [] { return 2; }).response() == 1);
}

TEST_CASE("times at the end of the clock's range are stored without overflowing", "[idempotency]") {
    service s;
    s.clock.set(settle::manual_clock::time_point::max() - 1h);
    const auto r = s.guard.run(scope_a(), key("k1"), fp("a"), [] { return 1; });
    CHECK(r.stored());
    const auto record = s.record(scope_a(), key("k1"));
    REQUIRE(record.has_value());
    CHECK(record->expires_at == settle::to_stored_time(s.clock.now()) + 24h);
    CHECK(s.guard.run(scope_a(), key("k1"), fp("a"), [] { return 2; }).response() == 1);
}
