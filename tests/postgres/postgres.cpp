// The PostgreSQL backend's own promises: writes join the user's transaction,
// names are checked, the schema is idempotent, failures map to settle::errc,
// lost connections are replaced, and concurrent writers and relays stay apart.
#include <settle/stores/postgres.hpp>

#include "outbox/ids.hpp"
#include "postgres/postgres_test.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/idempotency.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/sha256.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace pg = settle::postgres;
using postgres_test::conninfo;
using postgres_test::create_tables;
using postgres_test::run;
using postgres_test::scalar;
using postgres_test::scratch_table;

namespace {

const settle::stored_time t0 = std::chrono::sys_days(std::chrono::year(2024) / 1 / 1);

using outbox_test::id_of;
using outbox_test::message_of;

settle::errc code_of(const settle::error& e) {
    return static_cast<settle::errc>(e.code().value());
}

// What `fn` threw as settle::error: its code and message.
template <class F>
std::pair<settle::errc, std::string> thrown(F&& fn) {
    try {
        fn();
    } catch (const settle::error& e) {
        return {code_of(e), e.what()};
    }
    FAIL("expected a settle::error");
    return {};
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

int count_of(PGconn* conn, const std::string& sql) {
    return std::stoi(scalar(conn, sql));
}

// How many relations (tables, indexes, sequences) a statement built from
// `name` could have made: those whose name begins with `name` as the server
// would store it (cut to 63 bytes), or is where `name` begins (the "orders"
// of "orders; DROP TABLE x"). 0 for an empty name.
int relations_named_like(PGconn* conn, const std::string& name) {
    if (name.empty()) {
        return 0;
    }
    const std::string stored = name.substr(0, 63);
    const char* values[] = {stored.c_str()};
    PGresult* r =
        PQexecParams(conn,
                     "SELECT count(*) FROM pg_class WHERE starts_with(relname::text, $1) OR "
                     "starts_with($1, relname::text)",
                     1, nullptr, values, nullptr, nullptr, 0);
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    const std::string value = ok ? PQgetvalue(r, 0, 0) : PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) {
        throw std::runtime_error("relations_named_like: " + value);
    }
    return std::stoi(value);
}

// Holds every insert into `table` from `conn`'s session up for 0.5 s after
// it is issued and before its row exists (a BEFORE INSERT trigger that
// sleeps): a writer descheduled at the worst moment. Other sessions insert
// at full speed. Drops its trigger function when it goes.
class slow_inserts {
public:
    slow_inserts(pg::connection& conn, const std::string& table)
        : conn_(&conn), function_(table + "_slow") {
        run(conn.native(), "CREATE FUNCTION \"" + function_ +
                               "\"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF "
                               "current_setting('settle_test.slow', true) = 'on' THEN PERFORM "
                               "pg_sleep(0.5); END IF; RETURN NEW; END $$");
        run(conn.native(), "CREATE TRIGGER slow BEFORE INSERT ON \"" + table +
                               "\" FOR EACH ROW EXECUTE FUNCTION \"" + function_ + "\"()");
        run(conn.native(), "SET settle_test.slow = 'on'");
    }
    slow_inserts(const slow_inserts&) = delete;
    slow_inserts& operator=(const slow_inserts&) = delete;
    ~slow_inserts() {
        PQclear(PQexec(conn_->native(), ("DROP FUNCTION \"" + function_ + "\"() CASCADE").c_str()));
    }

private:
    pg::connection* conn_;
    std::string function_;
};

}  // namespace

TEST_CASE("a business row and an outbox append commit together and roll back together",
          "[postgres][outbox]") {
    scratch_table outbox_name("outbox");
    scratch_table orders("orders");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, outbox_name.name());
    create_tables(store);
    run(conn.native(), "CREATE TABLE \"" + orders.name() + "\" (id INTEGER PRIMARY KEY)");
    const std::string count_orders = "SELECT count(*) FROM \"" + orders.name() + "\"";

    {
        pg::transaction tx(conn);
        run(tx.native(), "INSERT INTO \"" + orders.name() + "\" VALUES (1)");
        (void)store.append(tx, message_of(1), t0);
    }  // rolled back
    CHECK(count_of(conn.native(), count_orders) == 0);
    {
        auto tx = store.begin();
        CHECK_FALSE(store.find(tx, id_of(1)).has_value());
        CHECK(store.claim(tx, "relay", t0 + 1h, t0 + 2h, 10).empty());
        tx.commit();
    }

    pg::transaction tx(conn);
    run(tx.native(), "INSERT INTO \"" + orders.name() + "\" VALUES (2)");
    const std::uint64_t sequence = store.append(tx, message_of(2), t0).sequence();
    tx.commit();
    CHECK_FALSE(tx.open());
    CHECK(tx.native() == nullptr);
    CHECK(count_of(conn.native(), count_orders) == 1);
    auto check = store.begin();
    const auto found = store.find(check, id_of(2));
    REQUIRE(found.has_value());
    CHECK(found->sequence == sequence);
    CHECK(found->payload == settle::encode(std::uint32_t{2}));
    check.commit();
}

TEST_CASE("an append of an existing id is a duplicate and leaves the transaction usable",
          "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name());
    create_tables(store);
    auto tx = store.begin();
    (void)store.append(tx, message_of(1), t0);
    CHECK(store.append(tx, message_of(1), t0).is_duplicate());
    CHECK(store.append(tx, message_of(2), t0).is_appended());
    tx.commit();
    auto check = store.begin();
    CHECK(store.find(check, id_of(1)).has_value());
    CHECK(store.find(check, id_of(2)).has_value());
}

TEST_CASE("table names that are not plain identifiers are refused and nothing is created",
          "[postgres]") {
    pg::connection conn(conninfo());
    const std::vector<std::string> names = {
        "orders; DROP TABLE x", "a\"b", "", std::string(64, 'a'), std::string(56, 'a'), "1abc",
        "caf\xc3\xa9",          "a b"};
    for (const std::string& name : names) {
        INFO(name);
        CHECK(thrown([&] { pg::versioned_table<std::string, std::string>(conn, name); }).first ==
              settle::errc::invalid_argument);
        CHECK(thrown([&] { pg::lease_table<std::string>(conn, name); }).first ==
              settle::errc::invalid_argument);
        CHECK(thrown([&] { pg::fence_table<std::string>(conn, name); }).first ==
              settle::errc::invalid_argument);
        CHECK(thrown([&] { pg::idempotency_table(conn, name); }).first ==
              settle::errc::invalid_argument);
        CHECK(thrown([&] { pg::outbox_table(conn, name); }).first ==
              settle::errc::invalid_argument);
        CHECK(thrown([&] { pg::inbox_table(conn, name); }).first == settle::errc::invalid_argument);
        // Only the names tried: other tests create tables meanwhile.
        CHECK(relations_named_like(conn.native(), name) == 0);
    }
    // The longest name allowed, 55 bytes, with its case kept.
    scratch_table longest("Long", 55);
    REQUIRE(longest.name().size() == 55);
    pg::outbox_table store(conn, longest.name());
    create_tables(store);
    CHECK(count_of(conn.native(),
                   "SELECT count(*) FROM pg_class WHERE relname = '" + longest.name() + "'") == 1);
}

TEST_CASE("each store's schema can be applied twice", "[postgres]") {
    scratch_table v("vs");
    scratch_table i("idem");
    scratch_table o("outbox");
    scratch_table n("inbox");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, std::string> versions(conn, v.name());
    pg::idempotency_table records(conn, i.name());
    pg::outbox_table outbox(conn, o.name());
    pg::inbox_table inbox(conn, n.name());
    for (int pass = 0; pass < 2; ++pass) {
        auto tx = versions.begin();
        versions.create_tables(tx);
        records.create_tables(tx);
        outbox.create_tables(tx);
        inbox.create_tables(tx);
        tx.commit();
    }
    for (const std::string& ddl : {versions.ddl(), records.ddl(), outbox.ddl(), inbox.ddl()}) {
        INFO(ddl);
        run(conn.native(), ddl);  // as a migration would
    }
    // Three passes, each table's indexes once: primary keys, the outbox's
    // sequence, and the indexes the stores search by.
    const std::vector<std::pair<std::string, int>> indexes = {
        {v.name(), 1}, {i.name(), 2}, {o.name(), 5}, {n.name(), 2}};
    for (const auto& [table, expected] : indexes) {
        INFO(table);
        CHECK(
            std::stoi(scalar(conn.native(), "SELECT count(*) FROM pg_indexes WHERE tablename = '" +
                                                table + "'")) == expected);
    }
    auto tx = versions.begin();
    CHECK(versions.insert(tx, "a", "b").is_applied());
    tx.commit();
}

TEST_CASE("stored bytes that do not decode throw decode_failed and stay as they are",
          "[postgres]") {
    pg::connection conn(conninfo());

    SECTION("a versioned value") {
        scratch_table name("vs");
        pg::versioned_table<std::string, std::uint32_t> store(conn, name.name());
        create_tables(store);
        run(conn.native(), "INSERT INTO \"" + name.name() +
                               "\" VALUES ('\\x6b'::bytea, "
                               "'\\x0102'::bytea, 7)");  // key "k", 2 bytes where 4 belong
        auto tx = store.begin();
        CHECK(thrown([&] { (void)store.load(tx, "k"); }).first == settle::errc::decode_failed);
        CHECK(thrown([&] { (void)store.insert(tx, "k", 1); }).first == settle::errc::decode_failed);
        CHECK(thrown([&] {
                  (void)store.compare_and_set(tx, "k", settle::version_stamp(3), 1);
              }).first == settle::errc::decode_failed);
        tx.commit();
        CHECK(scalar(conn.native(), "SELECT value FROM \"" + name.name() + "\"") == "\\x0102");
    }
    SECTION("an outbox record's headers") {
        scratch_table name("outbox");
        pg::outbox_table store(conn, name.name());
        create_tables(store);
        auto tx = store.begin();
        (void)store.append(tx, message_of(1), t0);
        tx.commit();
        run(conn.native(), "UPDATE \"" + name.name() + "\" SET headers = '\\x000000'::bytea");
        auto read = store.begin();
        CHECK(thrown([&] { (void)store.find(read, id_of(1)); }).first ==
              settle::errc::decode_failed);
        read.commit();
        CHECK(scalar(conn.native(), "SELECT headers FROM \"" + name.name() + "\"") == "\\x000000");
    }
    SECTION("an idempotency record's fingerprint") {
        scratch_table name("idem");
        pg::idempotency_table store(conn, name.name());
        create_tables(store);
        const settle::idempotency_scope scope{"t", "op"};
        const auto key = settle::idempotency_key::parse("k-1").value();
        const auto now = settle::stored_time(std::chrono::seconds(1'700'000'000));
        auto tx = store.begin();
        (void)store.claim(tx, scope, key, settle::sha256::hash("r"), now, now + 1h);
        tx.commit();
        run(conn.native(), "UPDATE \"" + name.name() + "\" SET fingerprint = '\\x00'::bytea");
        auto read = store.begin();
        CHECK(thrown([&] { (void)store.find(read, scope, key); }).first ==
              settle::errc::decode_failed);
        CHECK(thrown([&] {
                  (void)store.claim(read, scope, key, settle::sha256::hash("r"), now, now + 1h);
              }).first == settle::errc::decode_failed);
    }
}

TEST_CASE("idempotency times are stored as Unix microseconds", "[postgres][idempotency]") {
    scratch_table name("idem");
    pg::connection conn(conninfo());
    pg::idempotency_table store(conn, name.name());
    create_tables(store);
    const settle::idempotency_scope scope{"tenant", "orders.create"};
    const auto key = settle::idempotency_key::parse("order-7").value();
    const auto now = settle::stored_time(std::chrono::microseconds(1'700'000'000'123'456LL));
    const auto end = now + std::chrono::microseconds(1);
    auto tx = store.begin();
    const auto claimed = store.claim(tx, scope, key, settle::sha256::hash("req"), now, end);
    REQUIRE(claimed.claimed);
    CHECK(store.complete(tx, scope, key, claimed.record.token, {settle::bytes{}, 201}, end) ==
          settle::fenced_write::applied);
    tx.commit();
    auto read = store.begin();
    const auto found = store.find(read, scope, key);
    REQUIRE(found.has_value());
    CHECK(found->claimed_at == now);
    CHECK(found->expires_at == end);
    CHECK(found->response.status == 201);
    CHECK(found->state == settle::idempotency_state::completed);
    read.commit();
    // The columns hold microseconds, whatever system_clock's own tick is.
    CHECK(scalar(conn.native(), "SELECT claimed_at FROM \"" + name.name() + "\"") ==
          "1700000000123456");
    CHECK(scalar(conn.native(), "SELECT expires_at FROM \"" + name.name() + "\"") ==
          "1700000000123457");
}

TEST_CASE("database errors are backend_failure with the server's message", "[postgres]") {
    pg::connection conn(conninfo());
    const std::string missing = postgres_test::unique_name("missing");
    pg::versioned_table<std::string, std::string> store(conn, missing);
    auto tx = store.begin();
    const auto [code, what] = thrown([&] { (void)store.load(tx, "k"); });
    CHECK(code == settle::errc::backend_failure);
    CHECK(contains(what, "postgres::versioned_table::load"));
    CHECK(contains(what, missing));
    CHECK(contains(what, "does not exist"));
    CHECK(contains(what, "SQLSTATE 42P01"));
    const auto [commit_code, commit_what] = thrown([&] { tx.commit(); });
    CHECK(commit_code == settle::errc::backend_failure);
    CHECK(contains(commit_what, "rolled back"));
    CHECK_FALSE(tx.open());
    auto again = pg::transaction(conn);  // the connection is fine
    run(again.native(), "SELECT 1");
    again.commit();
}

TEST_CASE("misuse of transactions is refused with invalid_argument", "[postgres]") {
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::connection other(conninfo());
    pg::versioned_table<std::string, std::string> store(conn, name.name());
    pg::outbox_table outbox(conn, name.name());
    create_tables(store);

    pg::transaction foreign(other);
    CHECK(thrown([&] { (void)store.load(foreign, "k"); }).first == settle::errc::invalid_argument);
    foreign.rollback();

    auto tx = store.begin();
    CHECK(thrown([&] { (void)store.begin(); }).first == settle::errc::invalid_argument);
    CHECK(thrown([&] { (void)outbox.wait_for_append(1ms); }).first ==
          settle::errc::invalid_argument);
    tx.commit();
    CHECK(thrown([&] { (void)store.load(tx, "k"); }).first == settle::errc::invalid_argument);
    CHECK(thrown([&] { tx.commit(); }).first == settle::errc::invalid_argument);
    tx.rollback();  // nothing to do, no throw

    auto moved_from = store.begin();
    auto moved = std::move(moved_from);
    CHECK_FALSE(moved_from.open());  // NOLINT(bugprone-use-after-move): the promise under test
    CHECK(moved.open());
    moved.commit();
}

TEST_CASE("a transaction ended on native() refuses further writes", "[postgres]") {
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, std::string> store(conn, name.name());
    create_tables(store);

    auto tx = store.begin();
    run(tx.native(), "COMMIT");
    const auto [code, message] = thrown([&] { (void)store.insert(tx, "k", "v"); });
    CHECK(code == settle::errc::invalid_argument);
    CHECK(contains(message, "ended by a COMMIT or ROLLBACK run on native()"));
    CHECK(thrown([&] { tx.commit(); }).first == settle::errc::invalid_argument);
    tx.rollback();
    CHECK(count_of(conn.native(), "SELECT count(*) FROM \"" + name.name() + "\"") == 0);

    run(conn.native(), "BEGIN");  // the user's own transaction, begun on the handle
    CHECK(thrown([&] { (void)store.begin(); }).first == settle::errc::invalid_argument);
    run(conn.native(), "ROLLBACK");
    auto again = store.begin();
    CHECK(store.insert(again, "k", "v").outcome() == settle::write_outcome::applied);
    again.commit();
}

TEST_CASE("an insert's stamp exceeds every stamp its key had, even racing an erase",
          "[postgres][concurrency]") {
    scratch_table name("vs");
    pg::connection slow_conn(conninfo());
    pg::connection fast_conn(conninfo());
    pg::versioned_table<std::string, std::string> slow(slow_conn, name.name());
    pg::versioned_table<std::string, std::string> fast(fast_conn, name.name());
    create_tables(slow);
    // The window in which a stamp drawn too early goes stale.
    const slow_inserts stalled(slow_conn, name.name());

    settle::version_stamp late{0};
    std::thread writer([&] {
        auto tx = slow.begin();
        late = slow.insert(tx, "k", "late").stamp();
        tx.commit();
    });
    std::this_thread::sleep_for(150ms);
    settle::version_stamp early{0};
    {
        auto tx = fast.begin();
        early = fast.insert(tx, "k", "early").stamp();
        tx.commit();
    }
    {
        auto tx = fast.begin();
        CHECK(fast.erase(tx, "k", early).outcome() == settle::write_outcome::applied);
        tx.commit();
    }
    writer.join();
    CHECK(late > early);
}

TEST_CASE("idempotency tokens increase in commit order, even racing an abandon",
          "[postgres][idempotency][concurrency]") {
    scratch_table name("idem");
    pg::connection slow_conn(conninfo());
    pg::connection fast_conn(conninfo());
    pg::idempotency_table slow(slow_conn, name.name());
    pg::idempotency_table fast(fast_conn, name.name());
    create_tables(slow);
    // Without the per-key lock, a token drawn in the window could commit after
    // a greater one that was claimed and abandoned meanwhile.
    const slow_inserts stalled(slow_conn, name.name());

    const settle::idempotency_scope scope{"tenant", "orders.create"};
    const auto key = settle::idempotency_key::parse("order-7").value();
    const auto fingerprint = settle::sha256::hash("request");
    const auto now = settle::to_stored_time(std::chrono::system_clock::now());
    std::mutex mutex;
    std::vector<settle::fencing_token>
        committed;  // the tokens of successful claims, in commit order
    const auto claim = [&](pg::idempotency_table& store) {
        auto tx = store.begin();
        const auto got = store.claim(tx, scope, key, fingerprint, now, now + 1h);
        tx.commit();
        if (got.claimed) {
            const std::lock_guard lock(mutex);
            committed.push_back(got.record.token);
        }
        return got;
    };
    std::thread writer([&] { (void)claim(slow); });
    std::this_thread::sleep_for(150ms);
    if (const auto got = claim(fast); got.claimed) {
        auto tx = fast.begin();
        CHECK(fast.abandon(tx, scope, key, got.record.token) == settle::fenced_write::applied);
        tx.commit();
    }
    writer.join();
    REQUIRE_FALSE(committed.empty());
    CHECK(std::is_sorted(committed.begin(), committed.end()));
    CHECK(std::adjacent_find(committed.begin(), committed.end()) == committed.end());
}

TEST_CASE("a failure reason of any bytes is kept as it is", "[postgres][outbox]") {
    scratch_table name("ob");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        (void)store.append(tx, message_of(1), t0);
        (void)store.append(tx, message_of(2), t0);
        tx.commit();
    }
    auto tx = store.begin();
    const auto claimed = store.claim(tx, "relay", t0, t0 + 30s, 10);
    REQUIRE(claimed.size() == 2);
    const auto token_of = [&](unsigned n) {
        return claimed[0].id == id_of(n) ? claimed[0].claim_token : claimed[1].claim_token;
    };
    constexpr char raw[] = "not UTF-8: \xff\xfe, a NUL: \0, the end";
    const std::string reason(raw, sizeof raw - 1);
    CHECK(store.reschedule(tx, id_of(1), token_of(1), reason, t0 + 1s) ==
          settle::fenced_write::applied);
    CHECK(store.dead_letter(tx, id_of(2), token_of(2), reason, t0) ==
          settle::fenced_write::applied);
    tx.commit();
    auto read = store.begin();
    CHECK(store.find(read, id_of(1))->last_error == reason);
    CHECK(store.find(read, id_of(2))->last_error == reason);
    read.commit();
}

TEST_CASE("a session libpq replaced by itself gets its statements prepared again", "[postgres]") {
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, std::string> store(conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        CHECK(store.insert(tx, "k", "v").outcome() == settle::write_outcome::applied);
        tx.commit();
    }
    PQreset(conn.native());  // a new server session: nothing prepared on it
    auto tx = store.begin();
    const auto found = store.load(tx, "k");
    REQUIRE(found.has_value());
    CHECK(found->value == "v");
    tx.commit();
}

TEST_CASE("a connection that cannot be made is unavailable", "[postgres]") {
    CHECK(thrown([] {
              pg::connection c("host=/nonexistent/settle dbname=none connect_timeout=1");
          }).first == settle::errc::unavailable);
    CHECK(thrown([] { pg::connection c(pg::connection::factory([] { return nullptr; })); }).first ==
          settle::errc::unavailable);
}

TEST_CASE("a lost connection is unavailable and the next transaction reconnects", "[postgres]") {
    scratch_table name("vs");
    pg::connection admin(conninfo());
    int connects = 0;
    pg::connection conn(pg::connection::factory([&connects] {
        ++connects;
        return PQconnectdb(conninfo().c_str());
    }));
    pg::versioned_table<std::string, std::string> store(conn, name.name());
    create_tables(store);
    const auto kill = [&] {
        run(admin.native(),
            "SELECT pg_terminate_backend(" + std::to_string(PQbackendPID(conn.native())) + ")");
    };

    SECTION("in the middle of a transaction") {
        {
            auto tx = store.begin();
            CHECK(store.insert(tx, "k", "v").is_applied());
            kill();
            CHECK(thrown([&] { (void)store.load(tx, "k"); }).first == settle::errc::unavailable);
        }  // destroyed on a dead connection: no throw
        auto tx = store.begin();
        CHECK(connects == 2);
        CHECK_FALSE(store.load(tx, "k").has_value());  // the insert never committed
        tx.commit();
    }
    SECTION("between transactions") {
        kill();
        auto tx = store.begin();  // BEGIN finds the connection dead and replaces it
        CHECK(connects == 2);
        CHECK(store.insert(tx, "k", "v").is_applied());
        tx.commit();
    }
    SECTION("at commit") {
        auto tx = store.begin();
        CHECK(store.insert(tx, "k", "v").is_applied());
        kill();
        CHECK(thrown([&] { tx.commit(); }).first == settle::errc::unavailable);
        CHECK_FALSE(tx.open());
    }
}

TEST_CASE("an append wakes a store waiting on another connection", "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection writer_conn(conninfo());
    pg::outbox_table writer(writer_conn, name.name(), pg::wakeup::notify);
    create_tables(writer);

    pg::connection waiter_conn(conninfo());
    pg::outbox_table waiter(waiter_conn, name.name());
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(waiter.wait_for_append(50ms));  // listens from now on
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);

    {
        auto tx = writer.begin();
        (void)writer.append(tx, message_of(1), t0);
    }  // rolled back: no notification
    CHECK_FALSE(waiter.wait_for_append(50ms));

    std::latch waiting(1);
    std::atomic<bool> woken{false};
    std::chrono::steady_clock::duration took{};
    std::thread thread([&] {
        waiting.count_down();
        const auto began = std::chrono::steady_clock::now();
        woken = waiter.wait_for_append(20s);
        took = std::chrono::steady_clock::now() - began;
    });
    waiting.wait();
    std::this_thread::sleep_for(20ms);
    auto tx = writer.begin();
    (void)writer.append(tx, message_of(2), t0);
    tx.commit();
    thread.join();
    CHECK(woken);
    CHECK(took < 5s);
    CHECK_FALSE(waiter.wait_for_append(10ms));  // the notification was consumed
}

TEST_CASE("a wait for an append with an endless timeout lasts until the append",
          "[postgres][outbox]") {
    // now() + milliseconds::max() overflows; a deadline computed that way
    // would lie in the past and end the wait at once.
    scratch_table name("outbox");
    pg::connection writer_conn(conninfo());
    pg::outbox_table writer(writer_conn, name.name(), pg::wakeup::notify);
    create_tables(writer);
    pg::connection waiter_conn(conninfo());
    pg::outbox_table waiter(waiter_conn, name.name());
    CHECK_FALSE(waiter.wait_for_append(10ms));  // listens from now on

    std::atomic<bool> returned{false};
    bool woken = false;
    std::thread thread([&] {
        woken = waiter.wait_for_append(std::chrono::milliseconds::max());
        returned = true;
    });
    std::this_thread::sleep_for(200ms);
    CHECK_FALSE(returned.load());
    auto tx = writer.begin();
    (void)writer.append(tx, message_of(1), t0);
    tx.commit();
    thread.join();
    CHECK(woken);
}

TEST_CASE("an append_waiter with an endless wait returns when stopped", "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name());
    create_tables(store);
    pg::append_waiter waiter(store);
    std::stop_source stop;
    std::atomic<bool> returned{false};
    bool slept = true;
    std::thread thread([&] {
        slept = waiter.sleep_for(std::chrono::nanoseconds::max(), stop.get_token());
        returned = true;
    });
    std::this_thread::sleep_for(200ms);
    CHECK_FALSE(returned.load());
    stop.request_stop();
    thread.join();
    CHECK_FALSE(slept);
}

TEST_CASE("a polling store's appends wake nobody", "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection writer_conn(conninfo());
    pg::outbox_table writer(writer_conn, name.name());
    create_tables(writer);
    pg::connection waiter_conn(conninfo());
    pg::outbox_table waiter(waiter_conn, name.name());
    CHECK_FALSE(waiter.wait_for_append(10ms));  // listens from now on
    auto tx = writer.begin();
    (void)writer.append(tx, message_of(1), t0);
    tx.commit();
    CHECK_FALSE(waiter.wait_for_append(200ms));
}

TEST_CASE("a relay idling on an append_waiter publishes an append at once", "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection writer_conn(conninfo());
    pg::outbox_table writer(writer_conn, name.name(), pg::wakeup::notify);
    create_tables(writer);

    pg::connection relay_conn(conninfo());
    pg::outbox_table store(relay_conn, name.name());
    std::atomic<int> published{0};
    std::chrono::steady_clock::time_point delivered_at{};
    settle::memory::publisher publisher([&](const settle::outbox_record&) {
        delivered_at = std::chrono::steady_clock::now();
        published.fetch_add(1);
        return settle::publish_result::delivered();
    });
    std::chrono::system_clock clock;
    // Idle waits of a minute: only a wake-up can publish in time.
    settle::outbox_relay relay(store, publisher, settle::persisted_retry{settle::ladder{1s}, 3},
                               clock, {.owner = "relay", .idle_min = 60s, .idle_max = 60s});
    pg::append_waiter waiter(store);
    std::stop_source stop;
    std::thread running([&] { relay.run(stop.get_token(), waiter); });
    std::this_thread::sleep_for(200ms);  // the relay found nothing and waits

    const auto appended_at = std::chrono::steady_clock::now();
    auto tx = writer.begin();
    (void)writer.append(tx, message_of(1), t0);
    tx.commit();
    for (int i = 0; i < 500 && published.load() == 0; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    stop.request_stop();
    running.join();
    REQUIRE(published.load() == 1);
    CHECK(delivered_at - appended_at < 5s);
}

TEST_CASE("racing compare-and-sets on one key apply exactly one per round",
          "[postgres][version][concurrency]") {
    scratch_table name("vs");
    constexpr int threads = 4;
    constexpr int rounds = 20;
    pg::connection setup(conninfo());
    pg::versioned_table<std::string, std::string> table(setup, name.name());
    create_tables(table);
    {
        auto tx = table.begin();
        CHECK(table.insert(tx, "hot", "0").is_applied());
        tx.commit();
    }
    std::barrier sync(threads);
    std::array<std::array<bool, rounds>, threads> applied{};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            pg::connection conn(conninfo());
            pg::versioned_table<std::string, std::string> store(conn, name.name());
            for (int r = 0; r < rounds; ++r) {
                sync.arrive_and_wait();  // everyone reads the same stamp
                auto read = store.begin();
                const auto seen = store.load(read, "hot");
                read.commit();
                sync.arrive_and_wait();
                auto tx = store.begin();
                const auto written =
                    store.compare_and_set(tx, "hot", seen->stamp, std::to_string(t));
                tx.commit();
                applied[static_cast<std::size_t>(t)][static_cast<std::size_t>(r)] =
                    written.is_applied();
            }
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    for (std::size_t r = 0; r < rounds; ++r) {
        int winners = 0;
        for (std::size_t t = 0; t < threads; ++t) {
            winners += applied[t][r] ? 1 : 0;
        }
        INFO("round " << r);
        CHECK(winners == 1);
    }
}

TEST_CASE("appends for one ordering key commit in sequence order",
          "[postgres][outbox][concurrency]") {
    scratch_table name("outbox");
    pg::connection first_conn(conninfo());
    pg::connection second_conn(conninfo());
    pg::outbox_table first(first_conn, name.name());
    pg::outbox_table second(second_conn, name.name());
    create_tables(first);

    auto tx = first.begin();
    const std::uint64_t older = first.append(tx, message_of(1, "order-1"), t0).sequence();
    std::atomic<bool> committed{false};
    std::atomic<bool> waited{false};
    std::uint64_t younger = 0;
    std::thread thread([&] {
        auto other = second.begin();
        (void)second.append(other, message_of(3), t0);  // no key: not held up
        younger = second.append(other, message_of(2, "order-1"), t0).sequence();
        waited = committed.load();
        other.commit();
    });
    std::this_thread::sleep_for(200ms);  // the second append waits for this transaction
    committed = true;
    tx.commit();
    thread.join();
    CHECK(waited);
    CHECK(younger > older);
}

TEST_CASE("two relays on separate connections deliver every record exactly once",
          "[postgres][outbox][concurrency]") {
    scratch_table name("outbox");
    constexpr unsigned records = 200;
    pg::connection setup(conninfo());
    pg::outbox_table store(setup, name.name());
    create_tables(store);
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 6 / 1)};
    {
        settle::outbox outbox(store, clock);
        auto tx = store.begin();
        for (unsigned n = 0; n < records; ++n) {
            REQUIRE(outbox.append(
                tx, message_of(n, n % 5 == 0 ? "" : "order-" + std::to_string(n % 8))));
        }
        tx.commit();
    }
    settle::memory::publisher publisher;
    std::latch ready(2);
    std::vector<std::thread> relays;
    for (int r = 0; r < 2; ++r) {
        relays.emplace_back([&, r] {
            pg::connection conn(conninfo());
            pg::outbox_table own(conn, name.name());
            settle::outbox_relay relay(
                own, publisher, settle::persisted_retry{settle::constant_backoff{0s}, 5}, clock,
                {.owner = "relay-" + std::to_string(r), .batch_size = 7, .lease = 1h});
            ready.arrive_and_wait();
            for (int idle = 0; idle < 20000 && publisher.size() < records;) {
                if (relay.run_once().idle()) {
                    ++idle;
                    std::this_thread::yield();  // the other relay holds what is left
                }
            }
        });
    }
    for (auto& relay : relays) {
        relay.join();
    }
    const auto published = publisher.published();
    CHECK(published.size() == records);
    CHECK(publisher.attempts() == records);
    std::set<settle::uuid> ids;
    std::map<std::string, std::uint64_t> last_of_key;
    for (const auto& record : published) {
        CHECK(ids.insert(record.id).second);
        if (!record.ordering_key.empty()) {
            CHECK(record.sequence > last_of_key[record.ordering_key]);
            last_of_key[record.ordering_key] = record.sequence;
        }
    }
    auto tx = store.begin();
    CHECK(
        store.statistics(tx, std::chrono::floor<std::chrono::microseconds>(clock.now())).backlog ==
        0);
}

namespace {

// Makes every lock wait on `conn`'s session a failure after 1 s: a statement
// that should skip locked rows but waits for them throws instead of hanging.
void refuse_lock_waits(pg::connection& conn) {
    run(conn.native(), "SET lock_timeout = '1s'");
}

// Four rows are due for purging. Another transaction's purge (`other`, on its
// own connection) takes two and stays open: a purge through `store` must
// take the other two at once, and the first two once that transaction ends.
// `purge(table, tx, limit)` purges everything due.
template <class Table, class Purge>
void check_purge_skips_held_rows(pg::connection& conn, Table& store, Table& other, Purge purge) {
    refuse_lock_waits(conn);
    auto held = other.begin();  // another purge, still running
    REQUIRE(purge(other, held, 2) == 2);

    auto tx = store.begin();
    CHECK(purge(store, tx, 10) == 2);
    tx.commit();
    held.rollback();
    auto after = store.begin();
    CHECK(purge(store, after, 10) == 2);  // the two the other purge let go
    after.commit();
}

}  // namespace

TEST_CASE("a purge racing a relay removes only what was delivered, and each record once",
          "[postgres][outbox][concurrency]") {
    scratch_table name("outbox");
    constexpr std::size_t records = 200;
    pg::connection setup(conninfo());
    pg::outbox_table store(setup, name.name());
    create_tables(store);
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 6 / 1)};
    {
        settle::outbox outbox(store, clock);
        auto tx = store.begin();
        for (unsigned n = 0; n < records; ++n) {
            REQUIRE(outbox.append(
                tx, message_of(n, n % 3 == 0 ? "" : "order-" + std::to_string(n % 4))));
        }
        tx.commit();
    }
    settle::memory::publisher publisher;
    std::atomic<bool> relay_done{false};
    std::thread relay_thread([&] {
        pg::connection conn(conninfo());
        pg::outbox_table own(conn, name.name());
        settle::outbox_relay relay(own, publisher,
                                   settle::persisted_retry{settle::constant_backoff{0s}, 5}, clock,
                                   {.owner = "relay", .batch_size = 5, .lease = 1h});
        while (publisher.size() < records && !relay.run_once().idle()) {
        }
        relay_done = true;
    });
    // Everything delivered is due at once; the purge runs in small batches
    // on its own connection while the relay claims and marks.
    pg::connection purge_conn(conninfo());
    pg::outbox_table purger(purge_conn, name.name());
    refuse_lock_waits(purge_conn);
    const settle::stored_time due = settle::to_stored_time(clock.now()) + 1h;
    std::size_t purged = 0;
    std::size_t ahead_of_delivery = 0;
    while (true) {
        // Read before the purge: once the relay is done, all it marked has
        // committed, so a purge that then removes nothing has seen it all.
        const bool finished = relay_done;
        auto tx = purger.begin();
        const std::size_t removed = purger.purge(tx, due, 3);
        tx.commit();
        purged += removed;
        // A removed record was delivered, so published, before the purge
        // committed.
        ahead_of_delivery += purged > publisher.size() ? 1U : 0U;
        if (removed == 0 && finished) {
            break;
        }
    }
    relay_thread.join();
    CHECK(ahead_of_delivery == 0);
    CHECK(purged == records);
    CHECK(publisher.published().size() == records);
    CHECK(publisher.attempts() == records);
    auto tx = store.begin();
    const auto left = store.statistics(tx, settle::to_stored_time(clock.now()));
    CHECK(left.backlog == 0);
    CHECK(left.dead == 0);
}

TEST_CASE("a store's objects take no name another relation holds", "[postgres]") {
    // Relations named as stores used to name their sequences and indexes
    // ("<table>_stamp", "<table>_due", ...), made before the stores' tables.
    scratch_table v("vs");
    scratch_table i("idem");
    scratch_table o("outbox");
    scratch_table n("inbox");
    pg::connection conn(conninfo());
    std::vector<std::string> taken;
    for (const auto& [table, suffixes] :
         std::vector<std::pair<std::string, std::vector<std::string>>>{
             {v.name(), {"_stamp", "_stamp_seq"}},
             {i.name(), {"_token", "_expires", "_token_seq", "_expires_idx"}},
             {o.name(), {"_due", "_key", "_done", "_sequence_seq", "_finished_at_idx"}},
             {n.name(), {"_purge", "_consumer_applied_at_idx"}}}) {
        for (const std::string& suffix : suffixes) {
            taken.push_back(table + suffix);
            run(conn.native(), "CREATE TABLE \"" + taken.back() + "\" (id INTEGER)");
        }
    }
    pg::versioned_table<std::string, std::string> versions(conn, v.name());
    pg::idempotency_table records(conn, i.name());
    pg::outbox_table outbox(conn, o.name());
    pg::inbox_table inbox(conn, n.name());
    auto tx = versions.begin();
    versions.create_tables(tx);
    records.create_tables(tx);
    outbox.create_tables(tx);
    inbox.create_tables(tx);
    const auto first = versions.insert(tx, "a", "b");
    REQUIRE(first.is_applied());
    CHECK(versions.compare_and_set(tx, "a", first.stamp(), "c").is_applied());
    const settle::idempotency_scope scope{"tenant", "orders.create"};
    const auto key = settle::idempotency_key::parse("order-1").value();
    CHECK(records.claim(tx, scope, key, settle::sha256::hash("request"), t0, t0 + 1s).claimed);
    CHECK(outbox.append(tx, message_of(1, "order-1"), t0).is_appended());
    CHECK(outbox.claim(tx, "relay", t0, t0 + 30s, 10).size() == 1);
    CHECK(inbox.mark(tx, "billing", "message-1", t0) == settle::inbox_mark::first_time);
    tx.commit();
    for (const std::string& name : taken) {
        run(conn.native(), "DROP TABLE \"" + name + "\"");
    }
}

TEST_CASE("two schemas hold stores of one name that never meet", "[postgres]") {
    pg::connection conn(conninfo());
    pg::connection other_conn(conninfo());
    const std::string first = postgres_test::unique_name("schema");
    const std::string second = postgres_test::unique_name("schema");
    run(conn.native(), "CREATE SCHEMA " + first + "; CREATE SCHEMA " + second);
    struct dropped {
        PGconn* conn;
        std::string sql;
        ~dropped() { PQclear(PQexec(conn, sql.c_str())); }
    } drop{conn.native(), "DROP SCHEMA " + first + " CASCADE; DROP SCHEMA " + second + " CASCADE"};

    pg::outbox_table outbox_a(conn, first + ".outbox");
    pg::outbox_table outbox_b(other_conn, second + ".outbox");
    pg::idempotency_table records_a(conn, first + ".idempotency");
    pg::idempotency_table records_b(other_conn, second + ".idempotency");
    {
        auto tx = outbox_a.begin();
        outbox_a.create_tables(tx);
        records_a.create_tables(tx);
        tx.commit();
        auto other = outbox_b.begin();
        outbox_b.create_tables(other);
        records_b.create_tables(other);
        other.commit();
    }
    refuse_lock_waits(other_conn);
    const settle::idempotency_scope scope{"tenant", "orders.create"};
    const auto key = settle::idempotency_key::parse("order-1").value();
    // The first schema's transaction holds the locks of ordering key
    // "order-1" and of idempotency key "order-1"; the second schema's
    // transaction takes its own at once, with the same id and key.
    auto held = outbox_a.begin();
    REQUIRE(outbox_a.append(held, message_of(1, "order-1"), t0).is_appended());
    REQUIRE(records_a.claim(held, scope, key, settle::sha256::hash("a"), t0, t0 + 1s).claimed);
    auto tx = outbox_b.begin();
    CHECK(outbox_b.append(tx, message_of(1, "order-1"), t0).is_appended());
    CHECK(records_b.claim(tx, scope, key, settle::sha256::hash("b"), t0, t0 + 1s).claimed);
    tx.commit();
    held.commit();
    auto check = outbox_a.begin();
    CHECK(outbox_a.claim(check, "relay", t0, t0 + 30s, 10).size() == 1);
    check.commit();
    CHECK(scalar(conn.native(), "SELECT count(*) FROM " + second + ".outbox") == "1");
}

TEST_CASE("an outbox claim skips records another transaction holds, without waiting",
          "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::connection other_conn(conninfo());
    pg::outbox_table store(conn, name.name());
    pg::outbox_table other(other_conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        for (unsigned n = 1; n <= 4; ++n) {
            (void)store.append(tx, message_of(n), t0);
        }
        tx.commit();
    }
    refuse_lock_waits(conn);
    // Another relay's claim of 1 and 2, its transaction still open.
    auto held = other.begin();
    const auto theirs = other.claim(held, "relay-a", t0, t0 + 30s, 2);
    REQUIRE(theirs.size() == 2);
    std::set<settle::uuid> taken;
    for (const auto& r : theirs) {
        taken.insert(r.id);
    }
    CHECK(taken == std::set<settle::uuid>{id_of(1), id_of(2)});

    auto tx = store.begin();
    const auto ours = store.claim(tx, "relay-b", t0, t0 + 30s, 10);
    tx.commit();
    std::set<settle::uuid> got;
    for (const auto& r : ours) {
        got.insert(r.id);
    }
    CHECK(got == std::set<settle::uuid>{id_of(3), id_of(4)});
    held.rollback();
    auto after = store.begin();
    CHECK(store.claim(after, "relay-b", t0, t0 + 30s, 10).size() == 2);  // 1 and 2, let go
    after.commit();
}

TEST_CASE("an outbox purge skips records another transaction holds, without waiting",
          "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::connection other_conn(conninfo());
    pg::outbox_table store(conn, name.name());
    pg::outbox_table other(other_conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        for (unsigned n = 1; n <= 4; ++n) {
            (void)store.append(tx, message_of(n), t0);
        }
        for (const auto& r : store.claim(tx, "relay", t0, t0 + 30s, 10)) {
            REQUIRE(store.mark_delivered(tx, r.id, r.claim_token, t0 + 1s) ==
                    settle::fenced_write::applied);
        }
        tx.commit();
    }
    check_purge_skips_held_rows(conn, store, other, [](auto& table, auto& tx, std::size_t limit) {
        return table.purge(tx, t0 + 1h, limit);
    });
}

TEST_CASE("an idempotency purge skips records another transaction holds, without waiting",
          "[postgres][idempotency]") {
    scratch_table name("idem");
    pg::connection conn(conninfo());
    pg::connection other_conn(conninfo());
    pg::idempotency_table store(conn, name.name());
    pg::idempotency_table other(other_conn, name.name());
    create_tables(store);
    const settle::idempotency_scope scope{"tenant", "orders.create"};
    const auto now = settle::stored_time(std::chrono::seconds(1'700'000'000));
    {
        auto tx = store.begin();
        for (int n = 1; n <= 4; ++n) {
            const auto key = settle::idempotency_key::parse("order-" + std::to_string(n)).value();
            REQUIRE(store.claim(tx, scope, key, settle::sha256::hash("request"), now, now + 1s)
                        .claimed);
        }
        tx.commit();
    }
    check_purge_skips_held_rows(conn, store, other,
                                [now](auto& table, auto& tx, std::size_t limit) {
                                    return table.purge(tx, now + 1h, limit);
                                });
}

TEST_CASE("an inbox purge skips marks another transaction holds, without waiting",
          "[postgres][outbox]") {
    scratch_table name("inbox");
    pg::connection conn(conninfo());
    pg::connection other_conn(conninfo());
    pg::inbox_table store(conn, name.name());
    pg::inbox_table other(other_conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        for (int n = 1; n <= 4; ++n) {
            REQUIRE(store.mark(tx, "billing", "message-" + std::to_string(n), t0) ==
                    settle::inbox_mark::first_time);
        }
        tx.commit();
    }
    check_purge_skips_held_rows(conn, store, other, [](auto& table, auto& tx, std::size_t limit) {
        return table.purge(tx, "billing", t0 + 1h, limit);
    });
}

TEST_CASE("delete_on_delivery deletes a delivered record under its claim and keeps the rest",
          "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name(), pg::wakeup::poll,
                           settle::outbox_retention::delete_on_delivery);
    create_tables(store);
    {
        auto tx = store.begin();
        for (unsigned n = 1; n <= 4; ++n) {
            (void)store.append(tx, message_of(n), t0);
        }
        tx.commit();
    }
    auto tx = store.begin();
    const auto first = store.claim(tx, "relay-a", t0, t0 + 30s, 2);
    REQUIRE(first.size() == 2);
    // relay-a's lease ends; relay-b claims 1 and 2 again, fencing relay-a out.
    const auto second = store.claim(tx, "relay-b", t0 + 31s, t0 + 61s, 2);
    REQUIRE(second.size() == 2);
    CHECK(store.mark_delivered(tx, first[0].id, first[0].claim_token, t0 + 32s) ==
          settle::fenced_write::stale);
    const std::array<settle::outbox_claim, 1> stale{{{first[1].id, first[1].claim_token}}};
    CHECK(store.mark_delivered(tx, stale, t0 + 32s) ==
          std::vector<settle::fenced_write>{settle::fenced_write::stale});
    CHECK(store.find(tx, first[0].id).has_value());  // a fenced-out relay deleted nothing
    CHECK(store.find(tx, first[1].id).has_value());

    CHECK(store.mark_delivered(tx, second[0].id, second[0].claim_token, t0 + 33s) ==
          settle::fenced_write::applied);
    const std::array<settle::outbox_claim, 1> held{{{second[1].id, second[1].claim_token}}};
    CHECK(store.mark_delivered(tx, held, t0 + 33s) ==
          std::vector<settle::fenced_write>{settle::fenced_write::applied});
    CHECK_FALSE(store.find(tx, id_of(1)).has_value());
    CHECK_FALSE(store.find(tx, id_of(2)).has_value());
    for (unsigned n = 3; n <= 4; ++n) {
        const auto kept = store.find(tx, id_of(n));
        REQUIRE(kept.has_value());
        CHECK(kept->status == settle::outbox_status::pending);
    }
    CHECK(count_of(tx.native(), "SELECT count(*) FROM \"" + name.name() + "\"") == 2);
    tx.commit();
}

TEST_CASE("delete_on_delivery frees an ordering key's next record", "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name(), pg::wakeup::poll,
                           settle::outbox_retention::delete_on_delivery);
    create_tables(store);
    auto tx = store.begin();
    for (unsigned n = 1; n <= 2; ++n) {
        settle::outbox_message m = message_of(n);
        m.ordering_key = "order-1";
        (void)store.append(tx, std::move(m), t0);
    }
    const auto head = store.claim(tx, "relay", t0, t0 + 30s, 10);
    REQUIRE(head.size() == 1);
    CHECK(head[0].id == id_of(1));
    CHECK(store.mark_delivered(tx, head[0].id, head[0].claim_token, t0) ==
          settle::fenced_write::applied);
    const auto next = store.claim(tx, "relay", t0, t0 + 30s, 10);
    REQUIRE(next.size() == 1);
    CHECK(next[0].id == id_of(2));
    tx.commit();
}

TEST_CASE("a batch of one delivery keeps its statement's plan", "[postgres][outbox]") {
    const auto retention =
        GENERATE(settle::outbox_retention::keep, settle::outbox_retention::delete_on_delivery);
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name(), pg::wakeup::poll, retention);
    create_tables(store);
    constexpr unsigned rounds = 12;
    {
        auto tx = store.begin();
        for (unsigned n = 1; n <= 1000; ++n) {
            (void)store.append(tx, message_of(n), t0);
        }
        tx.commit();
    }
    run(conn.native(), "ANALYZE \"" + name.name() + "\"");  // a table the planner knows
    for (unsigned n = 1; n <= rounds; ++n) {
        auto tx = store.begin();
        const auto claimed = store.claim(tx, "relay", t0, t0 + 30s, 1);
        REQUIRE(claimed.size() == 1);
        const std::array<settle::outbox_claim, 1> claims{{{claimed[0].id, claimed[0].claim_token}}};
        CHECK(store.mark_delivered(tx, claims, t0) ==
              std::vector<settle::fenced_write>{settle::fenced_write::applied});
        tx.commit();
    }
    // The server plans a prepared statement for its first five runs, then
    // keeps a generic plan unless planning each run looks cheaper.
    const std::string marks =
        "FROM pg_prepared_statements WHERE statement LIKE '%status = ''in_flight''%' AND "
        "(statement LIKE 'UPDATE%delivered%' OR statement LIKE 'DELETE%') AND statement NOT "
        "LIKE '%SKIP LOCKED%'";
    CHECK(count_of(conn.native(), "SELECT coalesce(sum(custom_plans), 0) " + marks) <= 5);
    CHECK(count_of(conn.native(), "SELECT coalesce(sum(generic_plans), 0) " + marks) >=
          static_cast<int>(rounds) - 5);
}

TEST_CASE("a claim keeps its statement's plan over a large backlog", "[postgres][outbox]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name());
    create_tables(store);
    // A backlog of 20000 due records, the broker down, as the planner sees it.
    run(conn.native(), "INSERT INTO \"" + name.name() +
                           "\" (id, topic, payload, headers, created_at, next_attempt_at, status) "
                           "SELECT ('01000000-0000-7000-8000-' || lpad(to_hex(g), 12, "
                           "'0'))::uuid, 'orders.placed', '\\x5a', '', g, g, 'pending' FROM "
                           "generate_series(1, 20000) g");
    run(conn.native(), "ANALYZE \"" + name.name() + "\"");
    constexpr unsigned rounds = 12;
    std::uint64_t last = 0;
    for (unsigned n = 1; n <= rounds; ++n) {
        auto tx = store.begin();
        const auto claimed = store.claim(tx, "relay", t0, t0 + 30s, 16);
        REQUIRE(claimed.size() == 16);
        std::vector<settle::outbox_claim> claims;
        for (const auto& record : claimed) {
            CHECK(record.sequence > last);  // in due order, batch after batch
            last = record.sequence;
            claims.push_back({record.id, record.claim_token});
        }
        CHECK(store.mark_delivered(tx, claims, t0) ==
              std::vector<settle::fenced_write>(16, settle::fenced_write::applied));
        tx.commit();
    }
    const std::string claims =
        "FROM pg_prepared_statements WHERE statement LIKE '%FOR UPDATE SKIP LOCKED%' AND "
        "statement LIKE '%SET status = ''in_flight''%'";
    CHECK(count_of(conn.native(), "SELECT coalesce(sum(custom_plans), 0) " + claims) <= 5);
    CHECK(count_of(conn.native(), "SELECT coalesce(sum(generic_plans), 0) " + claims) >=
          static_cast<int>(rounds) - 5);
}
