// The PostgreSQL errors a service must ride out: a deadlock, a serialization
// failure, lock and statement timeouts map to errc::aborted, a read-only
// server to errc::unavailable, each with its SQLSTATE in the message; the
// relay's run() and optimistic_update wait them out and carry on.
#include <settle/stores/postgres.hpp>

#include "outbox/ids.hpp"
#include "postgres/postgres_test.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/optimistic.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/sleeper.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
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

using outbox_test::message_of;

struct failure {
    settle::errc code;
    std::string what;
};

failure failure_of(const settle::error& e) {
    return {static_cast<settle::errc>(e.code().value()), e.what()};
}

// What `fn` threw as settle::error.
template <class F>
failure thrown(F&& fn) {
    try {
        fn();
    } catch (const settle::error& e) {
        return failure_of(e);
    }
    FAIL("expected a settle::error");
    return {};
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// Makes the first row `event` (UPDATE, INSERT) on `table` fail with SQLSTATE
// `code`, once: at the statement (a BEFORE trigger), or at COMMIT (a deferred
// constraint trigger). A sequence counts the firings, since a counter in a
// table would roll back with the failed transaction. Drops what it made when
// it goes.
class injected_failure {
public:
    enum class when { statement, commit };

    injected_failure(const std::string& table, std::string_view event, std::string_view code,
                     when at)
        : conn_(PQconnectdb(conninfo().c_str())), name_(table + "_fail") {
        run(conn_, "CREATE SEQUENCE \"" + name_ + "\"");
        run(conn_, "CREATE FUNCTION \"" + name_ +
                       "\"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF nextval('\"" + name_ +
                       "\"') = 1 THEN RAISE EXCEPTION 'injected failure' USING ERRCODE = '" +
                       std::string(code) + "'; END IF; RETURN NEW; END $$");
        if (at == when::statement) {
            run(conn_, "CREATE TRIGGER \"" + name_ + "\" BEFORE " + std::string(event) + " ON \"" +
                           table + "\" FOR EACH ROW EXECUTE FUNCTION \"" + name_ + "\"()");
        } else {
            run(conn_, "CREATE CONSTRAINT TRIGGER \"" + name_ + "\" AFTER " + std::string(event) +
                           " ON \"" + table +
                           "\" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION \"" +
                           name_ + "\"()");
        }
    }
    injected_failure(const injected_failure&) = delete;
    injected_failure& operator=(const injected_failure&) = delete;
    ~injected_failure() {
        PQclear(PQexec(conn_, ("SET client_min_messages = warning; DROP FUNCTION IF EXISTS \"" +
                               name_ + "\"() CASCADE; DROP SEQUENCE IF EXISTS \"" + name_ + "\"")
                                  .c_str()));
        PQfinish(conn_);
    }

    // How often the trigger fired.
    [[nodiscard]] int fired() const {
        return std::stoi(scalar(conn_,
                                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
                                "FROM \"" +
                                    name_ + "\""));
    }

private:
    PGconn* conn_;
    std::string name_;
};

// A transaction on a connection of its own that holds an ACCESS EXCLUSIVE
// lock on a table until release() (or until it goes).
class table_lock {
public:
    explicit table_lock(const std::string& table) : conn_(PQconnectdb(conninfo().c_str())) {
        run(conn_, "BEGIN");
        run(conn_, "LOCK TABLE \"" + table + "\" IN ACCESS EXCLUSIVE MODE");
    }
    table_lock(const table_lock&) = delete;
    table_lock& operator=(const table_lock&) = delete;
    ~table_lock() { PQfinish(conn_); }

    void release() { run(conn_, "COMMIT"); }

private:
    PGconn* conn_;
};

// Records what run() waited out.
struct failure_log {
    std::vector<failure>* seen;
    void on_transient_failure(const settle::error& e) { seen->push_back(failure_of(e)); }
};

// Waits no time: calls `between` on run()'s first wait, and ends run() once
// `done` says so, or after 50 waits.
struct scripted_sleeper {
    std::function<void()> between;
    std::function<bool()> done;
    int waits = 0;

    bool sleep_for(std::chrono::nanoseconds, std::stop_token) {
        ++waits;
        if (between) {
            std::exchange(between, nullptr)();
        }
        return !done() && waits < 50;
    }
};

// An outbox table holding one due record, appended on a connection of its own.
void seed_outbox(const std::string& table) {
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, table);
    create_tables(store);
    auto tx = store.begin();
    REQUIRE(store.append(tx, message_of(1), t0).is_appended());
    tx.commit();
}

// Runs a relay on `conn` until it has delivered the seeded record, `between`
// called on its first wait; returns what it waited out. What run() throws
// fails the test.
std::vector<failure> relay_until_delivered(pg::connection& conn, const std::string& table,
                                           std::function<void()> between = {}) {
    pg::outbox_table store(conn, table);
    settle::memory::publisher publisher;
    std::chrono::system_clock clock;
    std::vector<failure> seen;
    settle::outbox_relay relay(store, publisher,
                               settle::persisted_retry{settle::constant_backoff{0s}, 3}, clock,
                               {.owner = "relay"}, failure_log{&seen});
    scripted_sleeper sleeper{std::move(between), [&] { return publisher.published().size() == 1; }};
    std::stop_source stop;
    relay.run(stop.get_token(), sleeper);
    CHECK(publisher.published().size() == 1);
    return seen;
}

}  // namespace

TEST_CASE("a deadlock between appends of two ordering keys is aborted, 40P01",
          "[postgres][faults]") {
    scratch_table name("outbox");
    pg::connection a_conn(conninfo());
    pg::connection b_conn(conninfo());
    pg::outbox_table a(a_conn, name.name());
    pg::outbox_table b(b_conn, name.name());
    create_tables(a);

    // A appends keys x then y, B appends y then x: each waits for the other.
    auto a_tx = a.begin();
    auto b_tx = b.begin();
    REQUIRE(a.append(a_tx, message_of(1, "x"), t0).is_appended());
    REQUIRE(b.append(b_tx, message_of(2, "y"), t0).is_appended());
    std::optional<failure> a_failed;
    std::optional<failure> b_failed;
    std::thread a_second([&] {
        try {
            (void)a.append(a_tx, message_of(3, "y"), t0);
        } catch (const settle::error& e) {
            a_failed = failure_of(e);
        }
    });
    std::this_thread::sleep_for(100ms);  // A waits for y
    try {
        (void)b.append(b_tx, message_of(4, "x"), t0);
    } catch (const settle::error& e) {
        b_failed = failure_of(e);
    }
    a_second.join();

    // The server picks one to abort; the other goes on.
    REQUIRE(a_failed.has_value() != b_failed.has_value());
    const failure& lost = a_failed ? *a_failed : *b_failed;
    CHECK(lost.code == settle::errc::aborted);
    CHECK(contains(lost.what, "postgres::outbox_table::append"));
    CHECK(contains(lost.what, "SQLSTATE 40P01"));
    (a_failed ? b_tx : a_tx).commit();
}

TEST_CASE("a serialization failure is aborted, 40001", "[postgres][faults]") {
    scratch_table name("vs");
    pg::connection a_conn(conninfo());
    pg::connection b_conn(conninfo());
    pg::versioned_table<std::string, std::string> a(a_conn, name.name());
    pg::versioned_table<std::string, std::string> b(b_conn, name.name());
    create_tables(a);
    {
        auto tx = a.begin();
        REQUIRE(a.insert(tx, "x", "0").is_applied());
        tx.commit();
    }
    run(b_conn.native(), "SET default_transaction_isolation = serializable");
    auto b_tx = b.begin();
    const auto read = b.load(b_tx, "x");  // B's snapshot
    REQUIRE(read.has_value());
    {
        auto tx = a.begin();
        REQUIRE(a.compare_and_set(tx, "x", read->stamp, "1").is_applied());
        tx.commit();
    }
    const failure f = thrown([&] { (void)b.compare_and_set(b_tx, "x", read->stamp, "2"); });
    CHECK(f.code == settle::errc::aborted);
    CHECK(contains(f.what, "SQLSTATE 40001"));
}

TEST_CASE("a lock timeout is aborted, 55P03", "[postgres][faults]") {
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, std::string> table(conn, name.name());
    create_tables(table);
    run(conn.native(), "SET lock_timeout = '50ms'");
    table_lock lock(name.name());
    const failure f = thrown([&] {
        auto tx = table.begin();
        (void)table.load(tx, "x");
    });
    CHECK(f.code == settle::errc::aborted);
    CHECK(contains(f.what, "SQLSTATE 55P03"));
    lock.release();
    auto tx = table.begin();  // the same session goes on
    CHECK_FALSE(table.load(tx, "x").has_value());
}

TEST_CASE("a statement timeout is aborted, 57014", "[postgres][faults]") {
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, std::string> table(conn, name.name());
    create_tables(table);
    run(conn.native(), "SET statement_timeout = '50ms'");
    table_lock lock(name.name());
    const failure f = thrown([&] {
        auto tx = table.begin();
        (void)table.load(tx, "x");
    });
    CHECK(f.code == settle::errc::aborted);
    CHECK(contains(f.what, "SQLSTATE 57014"));
}

TEST_CASE("a read-only server is unavailable, 25006, and the next transaction reconnects",
          "[postgres][faults]") {
    scratch_table name("outbox");
    pg::connection conn(conninfo());
    pg::outbox_table store(conn, name.name());
    create_tables(store);
    // What a standby answers; the setting lives as long as the session.
    run(conn.native(), "SET default_transaction_read_only = on");
    const int session = PQbackendPID(conn.native());
    const failure f = thrown([&] {
        auto tx = store.begin();
        (void)store.append(tx, message_of(1), t0);
    });
    CHECK(f.code == settle::errc::unavailable);
    CHECK(contains(f.what, "SQLSTATE 25006"));

    auto tx = store.begin();  // on a new session
    CHECK(PQbackendPID(conn.native()) != session);
    CHECK(store.append(tx, message_of(1), t0).is_appended());
    tx.commit();
}

TEST_CASE("a relay's run() waits out an aborted claim and then delivers", "[postgres][faults]") {
    const std::string code = GENERATE(as<std::string>{}, "40001", "40P01", "55P03", "57014");
    CAPTURE(code);
    scratch_table name("outbox");
    seed_outbox(name.name());
    injected_failure inject(name.name(), "UPDATE", code, injected_failure::when::statement);
    pg::connection conn(conninfo());
    const auto seen = relay_until_delivered(conn, name.name());
    CHECK(inject.fired() >= 2);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].code == settle::errc::aborted);
    CHECK(contains(seen[0].what, "SQLSTATE " + code));
}

TEST_CASE("a relay's run() waits out a lock timeout and then delivers", "[postgres][faults]") {
    scratch_table name("outbox");
    seed_outbox(name.name());
    pg::connection conn(conninfo());
    run(conn.native(), "SET lock_timeout = '50ms'");
    table_lock lock(name.name());
    const auto seen = relay_until_delivered(conn, name.name(), [&] { lock.release(); });
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].code == settle::errc::aborted);
    CHECK(contains(seen[0].what, "SQLSTATE 55P03"));
}

TEST_CASE("a relay's run() waits out a statement timeout and then delivers", "[postgres][faults]") {
    scratch_table name("outbox");
    seed_outbox(name.name());
    pg::connection conn(conninfo());
    run(conn.native(), "SET statement_timeout = '50ms'");
    table_lock lock(name.name());
    const auto seen = relay_until_delivered(conn, name.name(), [&] { lock.release(); });
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].code == settle::errc::aborted);
    CHECK(contains(seen[0].what, "SQLSTATE 57014"));
}

TEST_CASE("a relay's run() waits out a read-only server, reconnects and delivers",
          "[postgres][faults]") {
    scratch_table name("outbox");
    seed_outbox(name.name());
    pg::connection conn(conninfo());
    run(conn.native(), "SET default_transaction_read_only = on");
    const auto seen = relay_until_delivered(conn, name.name());
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].code == settle::errc::unavailable);
    CHECK(contains(seen[0].what, "SQLSTATE 25006"));
}

TEST_CASE("optimistic_update retries a commit the server aborted", "[postgres][faults]") {
    const std::string code = GENERATE(as<std::string>{}, "40001", "40P01");
    CAPTURE(code);
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, int> table(conn, name.name());
    create_tables(table);
    {
        auto tx = table.begin();
        REQUIRE(table.insert(tx, "x", 1).is_applied());
        tx.commit();
    }
    // The first compare-and-set fails at COMMIT: nothing of it was kept.
    injected_failure inject(name.name(), "UPDATE", code, injected_failure::when::commit);
    settle::manual_clock clock;
    settle::manual_sleeper sleeper(clock);
    int calls = 0;
    const auto r = settle::optimistic_update(
        table, std::string("x"),
        [&](const int& v) {
            ++calls;
            return v + 1;
        },
        settle::retry_policy{settle::constant_backoff{0ms}, 3}, clock, sleeper);
    CHECK(r.is_applied());
    CHECK(r.attempts() == 2);
    CHECK(calls == 2);
    CHECK(inject.fired() == 2);
    auto tx = table.begin();
    CHECK(table.load(tx, "x")->value == 2);
}

TEST_CASE("statements lost to DISCARD ALL are aborted, 26000, and prepared again",
          "[postgres][faults]") {
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, std::string> table(conn, name.name());
    create_tables(table);
    {
        auto tx = table.begin();
        CHECK_FALSE(table.load(tx, "x").has_value());  // prepared here
        tx.commit();
    }
    run(conn.native(), "DISCARD ALL");
    const failure f = thrown([&] {
        auto tx = table.begin();
        (void)table.load(tx, "x");
    });
    CHECK(f.code == settle::errc::aborted);
    CHECK(contains(f.what, "postgres::versioned_table::load"));
    CHECK(contains(f.what, "SQLSTATE 26000"));

    auto tx = table.begin();  // prepares again
    CHECK_FALSE(table.load(tx, "x").has_value());
    CHECK(table.insert(tx, "x", "1").is_applied());
    tx.commit();
}

TEST_CASE("a statement deallocated on its own is prepared again under a new name",
          "[postgres][faults]") {
    scratch_table name("vs");
    pg::connection conn(conninfo());
    pg::versioned_table<std::string, std::string> table(conn, name.name());
    create_tables(table);
    {
        auto tx = table.begin();
        CHECK_FALSE(table.load(tx, "x").has_value());
        CHECK(table.insert(tx, "x", "1").is_applied());
        tx.commit();
    }
    // Lose the insert's statement only: the load's stays prepared.
    const std::string insert = scalar(
        conn.native(), "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'INSERT%'");
    REQUIRE_FALSE(insert.empty());
    run(conn.native(), "DEALLOCATE \"" + insert + "\"");
    const failure f = thrown([&] {
        auto tx = table.begin();
        (void)table.insert(tx, "y", "1");
    });
    CHECK(f.code == settle::errc::aborted);
    CHECK(contains(f.what, "SQLSTATE 26000"));

    auto tx = table.begin();
    CHECK(table.load(tx, "x")->value == "1");
    CHECK(table.insert(tx, "y", "2").is_applied());
    tx.commit();
}

TEST_CASE("a relay's run() waits out statements lost to DISCARD ALL and then delivers",
          "[postgres][faults]") {
    scratch_table name("outbox");
    seed_outbox(name.name());
    pg::connection conn(conninfo());
    {
        // Prepares the claim on conn; nothing is due yet at this time.
        pg::outbox_table store(conn, name.name());
        auto tx = store.begin();
        CHECK(store.claim(tx, "relay", t0 - 1h, t0, 1).empty());
        tx.commit();
    }
    run(conn.native(), "DISCARD ALL");
    const auto seen = relay_until_delivered(conn, name.name());
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].code == settle::errc::aborted);
    CHECK(contains(seen[0].what, "SQLSTATE 26000"));
}
