// The consumer simulation over SQLite: the same schedules, with the inbox and
// the balances in one SQLite database, faults injected around its real commits.
#include <settle/testing/simulation.hpp>

#include "settle_test.hpp"

#include <settle/stores/sqlite.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>

namespace sqlite = settle::sqlite;
namespace sim = settle::testing;

namespace {

// Runs one statement with text parameters; returns the first column of its
// first row, if it has one.
std::int64_t run(sqlite3* db, const char* sql, std::initializer_list<std::string> params = {}) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
        throw std::runtime_error(sqlite3_errmsg(db));
    }
    const std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> statement(raw, sqlite3_finalize);
    int index = 0;
    for (const std::string& p : params) {
        sqlite3_bind_text(raw, ++index, p.c_str(), static_cast<int>(p.size()), SQLITE_TRANSIENT);
    }
    const int rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) {
        return sqlite3_column_int64(raw, 0);
    }
    if (rc != SQLITE_DONE) {
        throw std::runtime_error(sqlite3_errmsg(db));
    }
    return 0;
}

// The billing service on SQLite: its balances and its inbox in one database.
struct billing {
    sqlite::connection conn{":memory:"};
    sqlite::inbox_table inbox{conn, "inbox"};

    billing() {
        settle::in_transaction(inbox, [&](sqlite::transaction& tx) {
            inbox.create_tables(tx);
            run(tx.native(), "CREATE TABLE balances (key TEXT PRIMARY KEY, amount INTEGER)");
        });
    }

    sqlite::inbox_table& store() { return inbox; }

    void handle(const sim::delivery& m, sqlite::transaction& tx) {
        run(tx.native(),
            "INSERT INTO balances (key, amount) VALUES (?1, CAST(?2 AS INTEGER)) "
            "ON CONFLICT (key) DO UPDATE SET amount = amount + excluded.amount",
            {m.key, m.payload});
    }

    bool check(sqlite::transaction& tx, std::span<const sim::message> sent) {
        std::map<std::string, std::int64_t> expected;
        for (const sim::message& m : sent) {
            expected[m.key] += std::stoll(m.payload);
        }
        for (const auto& [key, sum] : expected) {
            if (run(tx.native(), "SELECT amount FROM balances WHERE key = ?1", {key}) != sum) {
                return false;
            }
        }
        return run(tx.native(), "SELECT count(*) FROM balances") ==
               static_cast<std::int64_t>(expected.size());
    }
};

// Planted: counts a notification outside the database for every message handled.
struct non_idempotent_side_effect : billing {
    std::size_t notifications = 0;

    void handle(const sim::delivery& m, sqlite::transaction& tx) {
        billing::handle(m, tx);
        ++notifications;
    }

    bool check(sqlite::transaction& tx, std::span<const sim::message> sent) {
        return billing::check(tx, sent) && notifications == sent.size();
    }
};

}  // namespace

TEST_CASE("on SQLite, a correct consumer passes hundreds of schedules") {
    const sim::simulation_report report =
        sim::simulate_consumer({.seeds = 300}, [] { return billing{}; });
    INFO(to_string(report));
    CHECK(report.passed());
    CHECK(report.schedules == 300);
}

TEST_CASE("on SQLite, a side effect that is not idempotent is found and shrunk") {
    const sim::simulation_report report =
        sim::simulate_consumer({.seeds = 100}, [] { return non_idempotent_side_effect{}; });
    INFO(to_string(report));
    REQUIRE(report.failure);
    CHECK(report.failure->steps <= 3);
}
