// The Redis backend's own promises, beyond the conformance suites: keys and
// values pass as argument vectors, a lost connection is errc::unavailable and
// the next operation reconnects, a flushed script cache is reloaded, records
// that do not decode are reported and kept, and Redis' own expiry is only a
// backstop behind the record's.
#include "redis/redis_test.hpp"
#include "settle_test.hpp"

#include <settle/idempotency.hpp>
#include <settle/stores/redis.hpp>

#include <chrono>
#include <string>

namespace rd = settle::redis;
using namespace std::chrono_literals;
using redis_test::factory;
using redis_test::raw;
using redis_test::unique_prefix;

namespace {

settle::stored_time t0() {
    return settle::stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1));
}

settle::idempotency_key key_of(std::string_view text) {
    return settle::idempotency_key::parse(text).value();
}

settle::idempotency_store_claim claim(rd::idempotency_table& store,
                                      const settle::idempotency_scope& scope,
                                      const settle::idempotency_key& key, settle::stored_time now,
                                      settle::stored_time lease_end) {
    auto tx = store.begin();
    auto r = store.claim(tx, scope, key, settle::sha256::hash("request"), now, lease_end);
    tx.commit();
    return r;
}

settle::fenced_write complete(rd::idempotency_table& store, const settle::idempotency_scope& scope,
                              const settle::idempotency_key& key, settle::fencing_token token,
                              settle::stored_time until) {
    auto tx = store.begin();
    const auto r =
        store.complete(tx, scope, key, token, {settle::encode(std::string("done")), 201}, until);
    tx.commit();
    return r;
}

}  // namespace

TEST_CASE("redis: a tenant holding command text is stored as bytes, not run",
          "[redis][idempotency]") {
    rd::connection conn(factory());
    const std::string prefix = unique_prefix("argv");
    rd::idempotency_table store(conn, prefix);
    const settle::idempotency_scope scope{"t\r\nSET " + prefix + "injected 1\r\n", "op \"x\""};
    const auto key = key_of("k \" ' \\ *1");
    const auto r = claim(store, scope, key, t0(), t0() + 30s);
    REQUIRE(r.claimed);
    raw server;
    CHECK(server.integer("EXISTS", prefix + "injected") == 0);
    CHECK(server.integer("EXISTS", store.record_key(scope, key)) == 1);
    CHECK(!claim(store, scope, key, t0(), t0() + 30s).claimed);
}

TEST_CASE("redis: the empty prefix and a margin that is not positive are refused",
          "[redis][idempotency][version]") {
    rd::connection conn(factory());
    CHECK(redis_test::thrown([&] { (void)(rd::idempotency_table(conn, "")); }) ==
          settle::errc::invalid_argument);
    CHECK(redis_test::thrown([&] { (void)(rd::idempotency_table(conn, "p:", 0ms)); }) ==
          settle::errc::invalid_argument);
    CHECK(redis_test::thrown([&] {
              (void)(rd::versioned_table<std::string, std::string>(conn, ""));
          }) == settle::errc::invalid_argument);
}

TEST_CASE("redis: no server is errc::unavailable", "[redis]") {
    CHECK(redis_test::thrown([&] {
              (void)rd::connection(rd::connection::unix_socket("/nonexistent/redis.sock"));
          }) == settle::errc::unavailable);
    CHECK(redis_test::thrown([&] {
              (void)rd::connection([]() -> redisContext* { return nullptr; });
          }) == settle::errc::unavailable);
}

TEST_CASE("redis: a lost connection is errc::unavailable and the next operation reconnects",
          "[redis][version]") {
    int made = 0;
    rd::connection conn([&] {
        ++made;
        return redisConnectUnix(redis_test::socket_path().c_str());
    });
    rd::versioned_table<std::string, std::string> store(conn, unique_prefix("lost"));
    auto tx = store.begin();
    REQUIRE(store.insert(tx, "k", "v").is_applied());
    raw server;
    {
        redisReply* id = static_cast<redisReply*>(redisCommand(conn.native(), "CLIENT ID"));
        REQUIRE(id != nullptr);
        const long long client = id->integer;
        freeReplyObject(id);
        REQUIRE(server.integer("CLIENT", "KILL", "ID", std::to_string(client)) == 1);
    }
    CHECK(redis_test::thrown([&] { (void)store.load(tx, "k"); }) == settle::errc::unavailable);
    CHECK(made == 1);
    const auto found = store.load(tx, "k");
    CHECK(made == 2);
    REQUIRE(found.has_value());
    CHECK(found->value == "v");
}

TEST_CASE("redis: a flushed script cache is loaded again", "[redis][version]") {
    rd::connection conn(factory());
    rd::versioned_table<std::string, std::string> store(conn, unique_prefix("flush"));
    auto tx = store.begin();
    const auto first = store.insert(tx, "k", "v1");
    REQUIRE(first.is_applied());
    raw server;
    REQUIRE(server.text("SCRIPT", "FLUSH") == "OK");
    const auto second = store.compare_and_set(tx, "k", first.stamp(), "v2");
    REQUIRE(second.is_applied());
    CHECK(second.stamp() > first.stamp());
    CHECK(store.load(tx, "k")->value == "v2");
}

TEST_CASE("redis: a record that does not decode is reported and kept", "[redis][idempotency]") {
    rd::connection conn(factory());
    rd::idempotency_table store(conn, unique_prefix("corrupt"));
    const settle::idempotency_scope scope{"t", "op"};
    const auto key = key_of("k");
    REQUIRE(claim(store, scope, key, t0(), t0() + 30s).claimed);
    raw server;
    const std::string record = store.record_key(scope, key);
    // "p:<token>:<claimed_at>:<expires_at>::<fingerprint>": field n replaced.
    const auto with_field = [&](std::size_t n, const std::string& value) {
        std::string text = server.text("GET", record);
        std::size_t begin = 0;
        for (std::size_t i = 0; i < n; ++i) {
            begin = text.find(':', begin) + 1;
        }
        return text.replace(begin, text.find(':', begin) - begin, value);
    };
    const std::string no_claim_time = with_field(2, "yesterday");
    REQUIRE(server.text("SET", record, no_claim_time, "KEEPTTL") == "OK");
    CHECK(redis_test::thrown([&] { (void)claim(store, scope, key, t0(), t0() + 30s); }) ==
          settle::errc::decode_failed);
    CHECK(server.text("GET", record) == no_claim_time);
    // An expiry that is not a number cannot say whether the record is live.
    const std::string no_expiry = with_field(3, "soon");
    REQUIRE(server.text("SET", record, no_expiry, "KEEPTTL") == "OK");
    CHECK(redis_test::thrown([&] { (void)claim(store, scope, key, t0(), t0() + 30s); }) ==
          settle::errc::decode_failed);
    CHECK(server.text("GET", record) == no_expiry);
}

TEST_CASE("redis: a record Redis deleted does not let its token come back",
          "[redis][idempotency]") {
    rd::connection conn(factory());
    rd::idempotency_table store(conn, unique_prefix("aba"));
    const settle::idempotency_scope scope{"t", "op"};
    const auto key = key_of("k");
    const auto first = claim(store, scope, key, t0(), t0() + 30s);
    REQUIRE(first.claimed);
    raw server;
    // What Redis' own expiry does once the record's time is up.
    REQUIRE(server.integer("DEL", store.record_key(scope, key)) == 1);
    const auto second = claim(store, scope, key, t0() + 1min, t0() + 2min);
    REQUIRE(second.claimed);
    CHECK(second.record.token > first.record.token);
    CHECK(complete(store, scope, key, first.record.token, t0() + 1h) ==
          settle::fenced_write::stale);
    CHECK(complete(store, scope, key, second.record.token, t0() + 1h) ==
          settle::fenced_write::applied);
}

TEST_CASE("redis: Redis keeps a record for its own expiry plus the margin, no less",
          "[redis][idempotency]") {
    rd::connection conn(factory());
    rd::idempotency_table store(conn, unique_prefix("ttl"), 2min);
    const settle::idempotency_scope scope{"t", "op"};
    const auto key = key_of("k");
    const auto claimed = claim(store, scope, key, t0(), t0() + 30s);
    REQUIRE(claimed.claimed);
    raw server;
    const std::string record = store.record_key(scope, key);
    const long long lease_ttl = server.integer("PTTL", record);
    CHECK(lease_ttl > 145'000);
    CHECK(lease_ttl <= 150'000);
    REQUIRE(complete(store, scope, key, claimed.record.token, t0() + 1h) ==
            settle::fenced_write::applied);
    const long long kept = server.integer("PTTL", record);
    CHECK(kept > 3'715'000);
    CHECK(kept <= 3'720'000);
}

TEST_CASE("redis: records under one prefix leave another prefix's alone", "[redis][idempotency]") {
    rd::connection conn(factory());
    rd::idempotency_table a(conn, unique_prefix("a"));
    rd::idempotency_table b(conn, unique_prefix("b"));
    const settle::idempotency_scope scope{"t", "op"};
    const auto key = key_of("k");
    REQUIRE(claim(a, scope, key, t0(), t0() + 30s).claimed);
    CHECK(claim(b, scope, key, t0(), t0() + 30s).claimed);
}
