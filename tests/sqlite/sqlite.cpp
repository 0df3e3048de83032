// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.

// What the SQLite backend promises beyond the conformance suites: stores join
// the caller's transaction, table names are checked, the schema is idempotent,
// corrupt rows and SQL errors map to settle::errc, and several connections on
// one file stay consistent.
#include <settle/stores/sqlite.hpp>

#include "outbox/ids.hpp"
#include "settle_test.hpp"
#include "temp_database.hpp"

#include <settle/outbox_relay.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sqlite = settle::sqlite;
using namespace std::chrono_literals;

namespace {

template <class Store>
void create(Store& store) {
    auto tx = store.begin();
    store.create_tables(tx);
    tx.commit();
}

// Runs SQL on the handle; fails the test on an error.
void exec(sqlite3* db, const char* sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    const std::string text = message == nullptr ? "" : message;
    sqlite3_free(message);
    INFO(sql << ": " << text);
    REQUIRE(rc == SQLITE_OK);
}

// The first column of the first row of `sql`, as an integer.
std::int64_t scalar(sqlite3* db, const char* sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const std::int64_t value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return value;
}

// How many tables and indexes the database holds, SQLite's own aside
// (sqlite_sequence, the automatic indexes of UNIQUE constraints).
std::int64_t schema_objects(sqlite3* db) {
    return scalar(db,
                  "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'");
}

settle::stored_time at(int seconds) {
    return settle::stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)) +
           std::chrono::seconds(seconds);
}

using outbox_test::id_of;
using outbox_test::message_of;

// What threads threw, to report after they are joined.
class thread_failures {
public:
    void add(const std::exception& e) {
        const std::lock_guard lock(mutex_);
        what_.emplace_back(e.what());
    }
    [[nodiscard]] std::vector<std::string> what() const {
        const std::lock_guard lock(mutex_);
        return what_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> what_;
};

settle::errc code_of(const settle::error& e) {
    return static_cast<settle::errc>(e.code().value());
}

}  // namespace

TEST_CASE("sqlite: a business row and an outbox append commit or roll back together", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::outbox_table outbox(conn, "outbox");
    create(outbox);
    exec(conn.native(), "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL)");

    {
        sqlite::transaction tx(conn);
        exec(tx.native(), "INSERT INTO orders (id, total) VALUES (1, 100)");
        (void)outbox.append(tx, message_of(1, "order-1"), at(0));
    }  // destroyed open: rolled back
    CHECK(scalar(conn.native(), "SELECT count(*) FROM orders") == 0);
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == 0);

    {
        sqlite::transaction tx(conn);
        exec(tx.native(), "INSERT INTO orders (id, total) VALUES (2, 200)");
        (void)outbox.append(tx, message_of(2, "order-2"), at(0));
        tx.rollback();
        CHECK(!tx.open());
    }
    CHECK(scalar(conn.native(), "SELECT count(*) FROM orders") == 0);
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == 0);

    sqlite::transaction tx(conn);
    exec(tx.native(), "INSERT INTO orders (id, total) VALUES (3, 300)");
    (void)outbox.append(tx, message_of(3, "order-3"), at(0));
    tx.commit();
    CHECK(!tx.open());

    // A second connection on the file sees both.
    sqlite::connection other(file.path());
    CHECK(scalar(other.native(), "SELECT count(*) FROM orders WHERE id = 3") == 1);
    sqlite::outbox_table seen(other, "outbox");
    auto check = seen.begin();
    const auto record = seen.find(check, id_of(3));
    REQUIRE(record.has_value());
    CHECK(record->ordering_key == "order-3");
    CHECK(settle::decode<std::uint32_t>(record->payload) == 3);
    check.commit();
}

TEST_CASE("sqlite: a versioned write and an inbox mark join the caller's transaction", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::versioned_table<std::string, std::int64_t> balances(conn, "balances");
    sqlite::inbox_table inbox(conn, "inbox");
    create(balances);
    create(inbox);
    {
        auto tx = balances.begin();
        CHECK(inbox.mark(tx, "billing", "m-1", at(0)) == settle::inbox_mark::first_time);
        CHECK(balances.insert(tx, "alice", 10).is_applied());
    }
    auto tx = balances.begin();
    CHECK(!balances.load(tx, "alice").has_value());
    CHECK(inbox.mark(tx, "billing", "m-1", at(0)) == settle::inbox_mark::first_time);
    tx.commit();
}

TEST_CASE("sqlite: table names that are not plain identifiers are refused", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    const std::vector<std::string> bad = {"orders; DROP TABLE x",
                                          "a\"b",
                                          "",
                                          std::string(64, 'a'),
                                          std::string(settle::detail::sql_identifier_max + 1, 'a'),
                                          "1abc",
                                          "a b",
                                          "a-b",
                                          "t\xC3\xA9"};
    for (const std::string& name : bad) {
        INFO(name);
        const auto refused = [](auto make) {
            try {
                make();
            } catch (const settle::error& e) {
                return code_of(e) == settle::errc::invalid_argument;
            }
            return false;
        };
        CHECK(refused([&] { sqlite::versioned_table<std::string, std::string> s(conn, name); }));
        CHECK(refused([&] { sqlite::lease_table<std::string> s(conn, name); }));
        CHECK(refused([&] { sqlite::fence_table<std::string> s(conn, name); }));
        CHECK(refused([&] { sqlite::idempotency_table s(conn, name); }));
        CHECK(refused([&] { sqlite::outbox_table s(conn, name); }));
        CHECK(refused([&] { sqlite::inbox_table s(conn, name); }));
    }
    CHECK(schema_objects(conn.native()) == 0);

    // The longest name and keywords are fine.
    sqlite::outbox_table longest(conn, std::string(settle::detail::sql_identifier_max, 'o'));
    sqlite::inbox_table keyword(conn, "select");
    create(longest);
    create(keyword);
    CHECK(schema_objects(conn.native()) == 5 + 2);
}

TEST_CASE("sqlite: the schema is idempotent", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::versioned_table<std::string, std::string> values(conn, "values");
    sqlite::idempotency_table keys(conn, "keys");
    sqlite::outbox_table outbox(conn, "outbox");
    sqlite::inbox_table inbox(conn, "inbox");
    for (int round = 0; round < 2; ++round) {
        auto tx = values.begin();
        values.create_tables(tx);
        keys.create_tables(tx);
        outbox.create_tables(tx);
        inbox.create_tables(tx);
        tx.commit();
    }
    const std::int64_t objects = schema_objects(conn.native());
    CHECK(objects == 1 + 2 + 5 + 2);
    for (const std::string& ddl : {values.ddl(), keys.ddl(), outbox.ddl(), inbox.ddl()}) {
        exec(conn.native(), ddl.c_str());  // as a migration tool would run it
        CHECK(ddl.find("IF NOT EXISTS") != std::string::npos);
    }
    CHECK(schema_objects(conn.native()) == objects);

    // The stores still work after the schema was applied again.
    auto tx = outbox.begin();
    (void)outbox.append(tx, message_of(1), at(0));
    tx.commit();
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == 1);
}

TEST_CASE("sqlite: stamps keep increasing across erase of the last row and reconnection",
          "[sqlite]") {
    settle_test::temp_database file;
    settle::version_stamp last(0);
    {
        sqlite::connection conn(file.path());
        sqlite::versioned_table<std::string, std::string> values(conn, "values");
        create(values);
        auto tx = values.begin();
        const auto inserted = values.insert(tx, "k", "v1");
        const auto replaced = values.compare_and_set(tx, "k", inserted.stamp(), "v2");
        REQUIRE(replaced.is_applied());
        REQUIRE(values.erase(tx, "k", replaced.stamp()).is_applied());
        tx.commit();
        last = replaced.stamp();
        CHECK(scalar(conn.native(), "SELECT count(*) FROM \"values\"") == 0);
    }
    sqlite::connection conn(file.path());
    sqlite::versioned_table<std::string, std::string> values(conn, "values");
    auto tx = values.begin();
    const auto again = values.insert(tx, "other", "v3");
    tx.commit();
    CHECK(again.stamp() > last);
}

TEST_CASE("sqlite: idempotency times are stored as Unix microseconds", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::idempotency_table keys(conn, "keys");
    create(keys);
    const auto scope = settle::idempotency_scope{"tenant", "orders.create"};
    const auto key = settle::idempotency_key::parse("k-1").value();
    const auto now = settle::stored_time(std::chrono::microseconds(1'700'000'000'123'456LL));
    auto tx = keys.begin();
    const auto claimed =
        keys.claim(tx, scope, key, settle::sha256::hash("request"), now, now + 30s);
    REQUIRE(claimed.claimed);
    REQUIRE(keys.complete(tx, scope, key, claimed.record.token,
                          settle::idempotency_response{settle::encode(std::string("ok")), 201},
                          now + 24h + 1us) == settle::fenced_write::applied);
    const auto found = keys.find(tx, scope, key);
    tx.commit();
    REQUIRE(found.has_value());
    CHECK(found->claimed_at == now);
    CHECK(found->expires_at == now + 24h + 1us);
    CHECK(found->state == settle::idempotency_state::completed);
    // The columns hold microseconds, whatever system_clock's own tick is.
    CHECK(scalar(conn.native(), "SELECT claimed_at FROM keys") == 1'700'000'000'123'456LL);
    CHECK(scalar(conn.native(), "SELECT expires_at FROM keys") ==
          1'700'000'000'123'456LL + 86'400'000'001LL);
    CHECK(found->response.status == 201);
    CHECK(found->fingerprint == settle::sha256::hash("request"));
}

TEST_CASE("sqlite: stored bytes that do not decode throw decode_failed and stay", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::fence_table<std::string> fences(conn, "fences");
    sqlite::idempotency_table keys(conn, "keys");
    sqlite::outbox_table outbox(conn, "outbox");
    create(fences);
    create(keys);
    create(outbox);
    {
        auto tx = fences.begin();
        REQUIRE(fences.insert(tx, "report", settle::fencing_token(7)).is_applied());
        const auto scope = settle::idempotency_scope{"", "op"};
        const auto key = settle::idempotency_key::parse("k").value();
        const settle::stored_time t0{};
        REQUIRE(keys.claim(tx, scope, key, settle::sha256::hash("r"), t0, t0 + 1h).claimed);
        (void)outbox.append(tx, message_of(1), at(0));
        tx.commit();
    }
    exec(conn.native(), "UPDATE fences SET value = x'0102'");          // not 8 bytes
    exec(conn.native(), "UPDATE keys SET fingerprint = x'00'");        // not 32 bytes
    exec(conn.native(), "UPDATE outbox SET headers = x'000000ff41'");  // a truncated field

    const auto fails = [](auto op) {
        try {
            op();
        } catch (const settle::error& e) {
            INFO(e.what());
            return code_of(e) == settle::errc::decode_failed;
        }
        return false;
    };
    auto tx = fences.begin();
    CHECK(fails([&] { (void)fences.load(tx, "report"); }));
    CHECK(fails([&] { (void)fences.insert(tx, "report", settle::fencing_token(9)); }));
    CHECK(fails([&] {
        (void)keys.find(tx, settle::idempotency_scope{"", "op"},
                        settle::idempotency_key::parse("k").value());
    }));
    CHECK(fails([&] { (void)outbox.find(tx, id_of(1)); }));
    CHECK(tx.open());
    tx.commit();
    CHECK(scalar(conn.native(), "SELECT count(*) FROM fences WHERE value = x'0102'") == 1);
    CHECK(scalar(conn.native(), "SELECT count(*) FROM keys WHERE fingerprint = x'00'") == 1);
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox WHERE headers = x'000000ff41'") == 1);
}

TEST_CASE("sqlite: errors map to settle::errc", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());

    SECTION("a SQL error is a backend_failure naming the operation, table and cause") {
        sqlite::outbox_table never_created(conn, "missing_outbox");
        auto tx = never_created.begin();
        try {
            (void)never_created.append(tx, message_of(1), at(0));
            FAIL("no error");
        } catch (const settle::error& e) {
            CHECK(code_of(e) == settle::errc::backend_failure);
            const std::string what = e.what();
            INFO(what);
            CHECK(what.find("sqlite::outbox_table::append") != std::string::npos);
            CHECK(what.find("missing_outbox") != std::string::npos);
            CHECK(what.find("no such table") != std::string::npos);
        }
        CHECK(tx.open());  // a failed statement leaves the transaction usable
    }

    SECTION("a database held past the busy timeout is unavailable") {
        sqlite::connection holder(file.path());
        sqlite::connection waiter(file.path(), 20ms);
        sqlite::transaction held(holder);
        try {
            sqlite::transaction blocked(waiter);
            FAIL("no error");
        } catch (const settle::error& e) {
            CHECK(code_of(e) == settle::errc::unavailable);
        }
        held.commit();
        sqlite::transaction now_free(waiter);
        CHECK(now_free.open());
    }

    SECTION("a file that cannot be opened is unavailable") {
        try {
            sqlite::connection nowhere(file.path() + ".missing/directory/db");
            FAIL("no error");
        } catch (const settle::error& e) {
            CHECK(code_of(e) == settle::errc::unavailable);
        }
    }

    SECTION("misused transactions are invalid arguments") {
        sqlite::inbox_table inbox(conn, "inbox");
        create(inbox);
        const auto invalid = [](auto op) {
            try {
                op();
            } catch (const settle::error& e) {
                INFO(e.what());
                return code_of(e) == settle::errc::invalid_argument;
            }
            return false;
        };

        sqlite::connection other(file.path());
        sqlite::transaction foreign(other);
        CHECK(invalid([&] { (void)inbox.mark(foreign, "c", "m", at(0)); }));
        foreign.rollback();

        auto ended = inbox.begin();
        ended.commit();
        CHECK(invalid([&] { (void)inbox.mark(ended, "c", "m", at(0)); }));
        CHECK(invalid([&] { ended.commit(); }));

        auto first = inbox.begin();
        CHECK(invalid([&] { sqlite::transaction nested(conn); }));
        auto moved = std::move(first);
        CHECK(!first.open());
        CHECK(invalid([&] { (void)inbox.mark(first, "c", "m", at(0)); }));
        exec(moved.native(), "COMMIT");  // ended behind the transaction's back
        CHECK(invalid([&] { (void)inbox.mark(moved, "c", "m", at(0)); }));
        CHECK(invalid([&] { moved.commit(); }));
        CHECK(!moved.open());

        CHECK(invalid([] { sqlite::connection null(static_cast<sqlite3*>(nullptr)); }));
    }
}

TEST_CASE("sqlite: a transaction that ended behind its object never acts on a newer one",
          "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::inbox_table inbox(conn, "inbox");
    create(inbox);
    exec(conn.native(), "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    const auto invalid = [](auto op) {
        try {
            op();
        } catch (const settle::error& e) {
            INFO(e.what());
            return code_of(e) == settle::errc::invalid_argument;
        }
        return false;
    };
    const auto marks = [&] { return scalar(conn.native(), "SELECT count(*) FROM inbox"); };

    // The last ends it the way SQLite does by itself: an OR ROLLBACK conflict.
    for (const char* end : {"ROLLBACK", "COMMIT", "INSERT OR ROLLBACK INTO t VALUES (1), (1)"}) {
        for (const std::string how : {"rollback", "commit", "destruction"}) {
            INFO(end << ", then " << how);
            exec(conn.native(), "DELETE FROM inbox");
            std::optional<sqlite::transaction> stale(inbox.begin());
            (void)sqlite3_exec(stale->native(), end, nullptr, nullptr, nullptr);
            REQUIRE(sqlite3_get_autocommit(conn.native()) != 0);

            // Refused while the stale object is open, so it cannot act on a newer one.
            CHECK(invalid([&] { sqlite::transaction newer(conn); }));
            CHECK(invalid([&] { (void)inbox.mark(*stale, "c", "stale", at(0)); }));
            sqlite::transaction moved(std::move(*stale));
            CHECK(invalid([&] { sqlite::transaction newer(conn); }));
            if (how == "rollback") {
                moved.rollback();
            } else if (how == "commit") {
                CHECK(invalid([&] { moved.commit(); }));
            } else {
                sqlite::transaction gone(std::move(moved));
            }
            CHECK(!moved.open());

            auto newer = inbox.begin();
            CHECK(inbox.mark(newer, "c", "newer", at(0)) == settle::inbox_mark::first_time);
            moved.rollback();  // ended: touches nothing
            stale.reset();
            CHECK(invalid([&] { (void)inbox.mark(moved, "c", "stale", at(0)); }));
            CHECK(invalid([&] { moved.commit(); }));
            REQUIRE(newer.open());
            newer.commit();
            CHECK(marks() == 1);
        }
    }
}

TEST_CASE("sqlite: a duplicate outbox id is a duplicate with extended result codes on",
          "[sqlite]") {
    settle_test::temp_database file;
    sqlite3* handle = nullptr;
    REQUIRE(sqlite3_open(file.path().c_str(), &handle) == SQLITE_OK);
    REQUIRE(sqlite3_extended_result_codes(handle, 1) == SQLITE_OK);
    sqlite::connection conn(handle);
    sqlite::outbox_table outbox(conn, "outbox");
    create(outbox);
    auto tx = outbox.begin();
    CHECK(outbox.append(tx, message_of(1), at(0)).is_appended());
    CHECK(outbox.append(tx, message_of(1), at(1)).is_duplicate());
    CHECK(tx.open());
    tx.commit();
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == 1);
}

TEST_CASE("sqlite: a claim takes over an expired idempotency record that does not decode",
          "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::idempotency_table keys(conn, "keys");
    create(keys);
    const auto scope = settle::idempotency_scope{"", "op"};
    const auto key = settle::idempotency_key::parse("k").value();
    const auto request = settle::sha256::hash("r");
    const settle::stored_time t0{};
    settle::fencing_token first_token{0};
    {
        auto tx = keys.begin();
        const auto first = keys.claim(tx, scope, key, request, t0, t0 + 1h);
        REQUIRE(first.claimed);
        first_token = first.record.token;
        tx.commit();
    }
    exec(conn.native(), "UPDATE keys SET fingerprint = x'00'");  // not 32 bytes

    auto tx = keys.begin();
    try {  // live: the record must be read, and cannot be
        (void)keys.claim(tx, scope, key, request, t0 + 30min, t0 + 2h);
        FAIL("no error");
    } catch (const settle::error& e) {
        CHECK(code_of(e) == settle::errc::decode_failed);
    }
    const auto taken = keys.claim(tx, scope, key, request, t0 + 1h, t0 + 2h);  // expired
    CHECK(taken.claimed);
    CHECK(taken.record.token > first_token);
    const auto found = keys.find(tx, scope, key);
    tx.commit();
    REQUIRE(found.has_value());
    CHECK(found->fingerprint == request);
    CHECK(found->token == taken.record.token);
}

TEST_CASE("sqlite: a connection adopts and configures the caller's handle", "[sqlite]") {
    settle_test::temp_database file;
    sqlite3* handle = nullptr;
    REQUIRE(sqlite3_open(file.path().c_str(), &handle) == SQLITE_OK);
    sqlite::connection conn(handle);
    CHECK(conn.native() == handle);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(handle, "PRAGMA journal_mode", -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))) == "wal");
    sqlite3_finalize(s);
    CHECK(scalar(handle, "PRAGMA foreign_keys") == 1);

    sqlite::inbox_table inbox(conn, "inbox");
    create(inbox);
    sqlite::transaction tx(conn);
    CHECK(tx.native() == handle);
    CHECK(inbox.mark(tx, "c", "m", at(0)) == settle::inbox_mark::first_time);
    tx.commit();
}

TEST_CASE("sqlite: racing compare-and-sets on one key apply exactly once per round",
          "[sqlite][concurrency]") {
    settle_test::temp_database file;
    {
        sqlite::connection conn(file.path());
        sqlite::versioned_table<std::string, std::int64_t> counters(conn, "counters");
        create(counters);
        auto tx = counters.begin();
        REQUIRE(counters.insert(tx, "hits", 0).is_applied());
        tx.commit();
    }
    constexpr int threads = 4;
    constexpr int rounds = 25;
    std::barrier sync(threads);
    std::array<std::atomic<int>, rounds> applied{};
    thread_failures failures;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            try {
                sqlite::connection conn(file.path());
                sqlite::versioned_table<std::string, std::int64_t> counters(conn, "counters");
                for (int round = 0; round < rounds; ++round) {
                    std::optional<settle::versioned<std::int64_t>> seen;
                    {
                        auto tx = counters.begin();
                        seen = counters.load(tx, "hits");
                        tx.commit();
                    }
                    sync.arrive_and_wait();  // every thread read the same stamp
                    auto tx = counters.begin();
                    const auto written =
                        counters.compare_and_set(tx, "hits", seen->stamp, seen->value + 1);
                    tx.commit();
                    if (written.is_applied()) {
                        ++applied[static_cast<std::size_t>(round)];
                    }
                    sync.arrive_and_wait();  // the round is over before anyone reads again
                }
            } catch (const std::exception& e) {
                failures.add(e);
                sync.arrive_and_drop();  // the others go on without this thread
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    CHECK(failures.what().empty());
    for (int round = 0; round < rounds; ++round) {
        INFO("round " << round);
        CHECK(applied[static_cast<std::size_t>(round)] == 1);
    }
    sqlite::connection conn(file.path());
    sqlite::versioned_table<std::string, std::int64_t> counters(conn, "counters");
    auto tx = counters.begin();
    CHECK(counters.load(tx, "hits")->value == rounds);
    tx.commit();
}

TEST_CASE("sqlite: racing claims of one idempotency key take it once", "[sqlite][concurrency]") {
    settle_test::temp_database file;
    {
        sqlite::connection conn(file.path());
        sqlite::idempotency_table keys(conn, "keys");
        create(keys);
    }
    constexpr int threads = 4;
    std::latch ready(threads);
    std::atomic<int> claimed{0};
    thread_failures failures;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            ready.arrive_and_wait();
            try {
                sqlite::connection conn(file.path());
                sqlite::idempotency_table keys(conn, "keys");
                const auto now = settle::to_stored_time(std::chrono::system_clock::now());
                for (int k = 0; k < 20; ++k) {
                    auto tx = keys.begin();
                    const auto got = keys.claim(
                        tx, settle::idempotency_scope{"t", "op"},
                        settle::idempotency_key::parse("key-" + std::to_string(k)).value(),
                        settle::sha256::hash("same request"), now, now + 1h);
                    tx.commit();
                    if (got.claimed) {
                        ++claimed;
                    }
                }
            } catch (const std::exception& e) {
                failures.add(e);
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    CHECK(failures.what().empty());
    CHECK(claimed == 20);
}

TEST_CASE("sqlite: two relays on separate connections deliver every record exactly once",
          "[sqlite][concurrency]") {
    settle_test::temp_database file;
    constexpr unsigned records = 120;
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 6 / 1)};
    {
        sqlite::connection conn(file.path());
        sqlite::outbox_table store(conn, "outbox");
        create(store);
        settle::outbox<sqlite::outbox_table, settle::manual_clock> outbox(store, clock);
        auto tx = store.begin();
        for (unsigned n = 0; n < records; ++n) {
            (void)outbox.append(tx,
                                message_of(n, n % 5 == 0 ? "" : "order-" + std::to_string(n % 8)));
        }
        tx.commit();
    }
    settle::memory::publisher publisher;  // thread-safe
    std::latch ready(2);
    thread_failures failures;
    std::vector<std::thread> relays;
    for (int r = 0; r < 2; ++r) {
        relays.emplace_back([&, r] {
            ready.arrive_and_wait();
            try {
                sqlite::connection conn(file.path());
                sqlite::outbox_table store(conn, "outbox");
                settle::outbox_relay relay(
                    store, publisher, settle::persisted_retry{settle::constant_backoff{0s}, 5},
                    clock, {.owner = "relay-" + std::to_string(r), .batch_size = 7, .lease = 1h});
                for (int idle = 0; idle < 100000;) {
                    if (!relay.run_once().idle()) {
                        continue;
                    }
                    auto tx = store.begin();
                    const auto left =
                        store
                            .statistics(tx, std::chrono::time_point_cast<std::chrono::microseconds>(
                                                clock.now()))
                            .backlog;
                    tx.commit();
                    if (left == 0) {
                        return;
                    }
                    ++idle;
                    std::this_thread::yield();  // the other relay holds what is left
                }
            } catch (const std::exception& e) {
                failures.add(e);
            }
        });
    }
    for (auto& r : relays) {
        r.join();
    }
    CHECK(failures.what().empty());
    const auto delivered = publisher.published();
    CHECK(delivered.size() == records);
    CHECK(publisher.attempts() == records);
    std::map<settle::uuid, int> times;
    std::map<std::string, std::uint64_t> last_of_key;
    for (const auto& record : delivered) {
        ++times[record.id];
        CHECK(record.attempts == 1);
    }
    CHECK(times.size() == records);
    for (const auto& [id, count] : times) {
        CHECK(count == 1);
    }
    // Records of one key were published in sequence order.
    for (const auto& record : delivered) {
        if (record.ordering_key.empty()) {
            continue;
        }
        auto& last = last_of_key[record.ordering_key];
        CHECK(record.sequence > last);
        last = record.sequence;
    }
}

TEST_CASE("sqlite: index names collide with no settle table nor another table's index",
          "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    // "orders" has the indexes due, key, done and dead; other tables may be
    // named as "<table>_<index>" used to be, or have an index of that name.
    sqlite::outbox_table outbox(conn, "orders");
    sqlite::inbox_table inbox(conn, "orders_due");
    sqlite::idempotency_table keys(conn, "orders_key");
    SECTION("settle tables") {
        auto tx = outbox.begin();
        inbox.create_tables(tx);
        keys.create_tables(tx);
        outbox.create_tables(tx);
        CHECK(inbox.mark(tx, "consumer", "m-1", at(0)) == settle::inbox_mark::first_time);
        tx.commit();
    }
    SECTION("a user's index on a table of their own") {
        exec(conn.native(), "CREATE TABLE mine (x INTEGER); CREATE INDEX orders_done ON mine (x)");
        create(outbox);
    }
    CHECK(scalar(conn.native(),
                 "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders' "
                 "AND name NOT LIKE 'sqlite!_%' ESCAPE '!'") == 4);
    auto tx = outbox.begin();
    CHECK(outbox.append(tx, message_of(1), at(0)).outcome() ==
          settle::outbox_append_outcome::appended);
    tx.commit();
}

TEST_CASE("sqlite: marking more claims than one statement lists answers each in order",
          "[sqlite]") {
    const auto retention =
        GENERATE(settle::outbox_retention::keep, settle::outbox_retention::delete_on_delivery);
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::outbox_table store(conn, "outbox", retention);
    create(store);
    constexpr unsigned records = 600;  // three statements: 256, 256 and 88 listed
    std::vector<settle::outbox_record> claimed;
    {
        auto tx = store.begin();
        for (unsigned n = 0; n < records; ++n) {
            (void)store.append(tx, message_of(n), at(0));
        }
        claimed = store.claim(tx, "relay", at(1), at(60), records);
        tx.commit();
    }
    REQUIRE(claimed.size() == records);
    std::vector<settle::outbox_claim> claims;
    for (unsigned n = 0; n < records; ++n) {
        settle::fencing_token token = claimed[n].claim_token;
        if (n % 7 == 3) {
            token = settle::fencing_token(token.value() + 1);  // never issued: stale
        }
        claims.push_back({claimed[n].id, token});
    }
    claims.push_back({claimed[300].id, claimed[300].claim_token});  // given twice
    auto tx = store.begin();
    const std::vector<settle::fenced_write> writes =
        store.mark_delivered(tx, std::span<const settle::outbox_claim>(claims), at(2));
    tx.commit();
    REQUIRE(writes.size() == claims.size());
    for (unsigned n = 0; n < records; ++n) {
        INFO(n);
        CHECK(writes[n] ==
              (n % 7 == 3 ? settle::fenced_write::stale : settle::fenced_write::applied));
    }
    CHECK(writes.back() == settle::fenced_write::stale);
    const std::int64_t delivered = records - (records + 3) / 7;
    if (retention == settle::outbox_retention::keep) {
        CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox WHERE status = 'delivered'") ==
              delivered);
    } else {
        CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == records - delivered);
    }
}

TEST_CASE(
    "sqlite: delete_on_delivery deletes a delivered record under its claim and keeps the "
    "rest",
    "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::outbox_table store(conn, "outbox", settle::outbox_retention::delete_on_delivery);
    create(store);
    auto tx = store.begin();
    for (unsigned n = 1; n <= 6; ++n) {
        (void)store.append(tx, message_of(n), at(0));
    }
    const auto first = store.claim(tx, "relay-a", at(0), at(30), 4);
    REQUIRE(first.size() == 4);
    // relay-a's lease ends; relay-b claims 1 to 4 again, fencing relay-a out.
    const auto second = store.claim(tx, "relay-b", at(31), at(61), 4);
    REQUIRE(second.size() == 4);
    CHECK(store.mark_delivered(tx, first[0].id, first[0].claim_token, at(32)) ==
          settle::fenced_write::stale);
    const std::array<settle::outbox_claim, 2> stale{
        {{first[1].id, first[1].claim_token}, {first[2].id, first[2].claim_token}}};
    CHECK(store.mark_delivered(tx, stale, at(32)) ==
          std::vector<settle::fenced_write>{settle::fenced_write::stale,
                                            settle::fenced_write::stale});
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == 6);  // a fenced-out relay
                                                                       // deleted nothing

    CHECK(store.mark_delivered(tx, second[0].id, second[0].claim_token, at(33)) ==
          settle::fenced_write::applied);
    const std::array<settle::outbox_claim, 3> held{{{second[1].id, second[1].claim_token},
                                                    {second[2].id, second[2].claim_token},
                                                    {first[3].id, first[3].claim_token}}};
    CHECK(store.mark_delivered(tx, held, at(33)) ==
          std::vector<settle::fenced_write>{settle::fenced_write::applied,
                                            settle::fenced_write::applied,
                                            settle::fenced_write::stale});
    for (unsigned n = 1; n <= 3; ++n) {
        CHECK_FALSE(store.find(tx, id_of(n)).has_value());
    }
    const auto in_flight = store.find(tx, id_of(4));
    REQUIRE(in_flight.has_value());
    CHECK(in_flight->status == settle::outbox_status::in_flight);
    for (unsigned n = 5; n <= 6; ++n) {
        const auto kept = store.find(tx, id_of(n));
        REQUIRE(kept.has_value());
        CHECK(kept->status == settle::outbox_status::pending);
    }
    CHECK(scalar(conn.native(), "SELECT count(*) FROM outbox") == 3);
    tx.commit();
}

TEST_CASE("sqlite: delete_on_delivery frees an ordering key's next record", "[sqlite]") {
    settle_test::temp_database file;
    sqlite::connection conn(file.path());
    sqlite::outbox_table store(conn, "outbox", settle::outbox_retention::delete_on_delivery);
    create(store);
    auto tx = store.begin();
    for (unsigned n = 1; n <= 2; ++n) {
        (void)store.append(tx, message_of(n, "order-1"), at(0));
    }
    const auto head = store.claim(tx, "relay", at(0), at(30), 10);
    REQUIRE(head.size() == 1);
    CHECK(head[0].id == id_of(1));
    CHECK(store.mark_delivered(tx, head[0].id, head[0].claim_token, at(1)) ==
          settle::fenced_write::applied);
    const auto next = store.claim(tx, "relay", at(1), at(30), 10);
    REQUIRE(next.size() == 1);
    CHECK(next[0].id == id_of(2));
    tx.commit();
}
