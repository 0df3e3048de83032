// The consumer and request simulations over PostgreSQL: the same schedules,
// with the inbox or the idempotency records and the balances in one database
// on the test server, faults injected around its real commits. Each schedule
// empties the tables first.
#include <settle/testing/simulation.hpp>

#include "postgres/postgres_test.hpp"
#include "settle_test.hpp"

#include <settle/idempotency.hpp>
#include <settle/sha256.hpp>
#include <settle/stores/postgres.hpp>

#include <map>
#include <span>
#include <string>

namespace pg = settle::postgres;
namespace sim = settle::testing;
using postgres_test::conninfo;
using postgres_test::scratch_table;

namespace {

// The tables every schedule uses, dropped when the test ends.
struct database {
    scratch_table inbox_name{"sim_inbox"};
    scratch_table requests_name{"sim_requests"};
    scratch_table balances{"sim_balances"};
    pg::connection conn{conninfo()};

    database() {
        postgres_test::run(conn.native(), "CREATE TABLE \"" + balances.name() +
                                              "\" (key TEXT PRIMARY KEY, amount BIGINT NOT NULL)");
    }

    void add(pg::transaction& tx, const sim::message& m) const {
        postgres_test::run(tx.native(), "INSERT INTO \"" + balances.name() + "\" VALUES ('" +
                                            m.key + "', " + m.payload +
                                            ") ON CONFLICT (key) DO UPDATE SET amount = \"" +
                                            balances.name() + "\".amount + excluded.amount");
    }

    bool holds(pg::transaction& tx, std::span<const sim::message> sent) const {
        std::map<std::string, std::int64_t> expected;
        for (const sim::message& m : sent) {
            expected[m.key] += std::stoll(m.payload);
        }
        for (const auto& [key, sum] : expected) {
            const std::string got =
                postgres_test::scalar(tx.native(), "SELECT amount FROM \"" + balances.name() +
                                                       "\" WHERE key = '" + key + "'");
            if (got != std::to_string(sum)) {
                return false;
            }
        }
        return postgres_test::scalar(tx.native(), "SELECT count(*) FROM \"" + balances.name() +
                                                      "\"") == std::to_string(expected.size());
    }
};

struct billing {
    database* db;
    pg::inbox_table inbox{db->conn, db->inbox_name.name()};

    explicit billing(database& d) : db(&d) {
        settle::in_transaction(inbox, [&](pg::transaction& tx) {
            inbox.create_tables(tx);
            postgres_test::run(tx.native(), "TRUNCATE \"" + db->inbox_name.name() + "\", \"" +
                                                db->balances.name() + "\"");
        });
    }

    pg::inbox_table& store() { return inbox; }
    void handle(const sim::delivery& m, pg::transaction& tx) { db->add(tx, m); }
    bool check(pg::transaction& tx, std::span<const sim::message> sent) {
        return db->holds(tx, sent);
    }
};

struct payments {
    database* db;
    pg::idempotency_table requests{db->conn, db->requests_name.name()};

    explicit payments(database& d) : db(&d) {
        settle::in_transaction(requests, [&](pg::transaction& tx) {
            requests.create_tables(tx);
            postgres_test::run(tx.native(), "TRUNCATE \"" + db->requests_name.name() + "\", \"" +
                                                db->balances.name() + "\"");
        });
    }

    pg::idempotency_table& store() { return requests; }

    bool handle(const sim::message& r, auto& guard, auto& store) {
        const settle::idempotency_scope scope{r.key, "payments.charge"};
        const auto key = settle::idempotency_key::parse(r.id).value();
        const auto claim = settle::in_transaction(store, [&](auto& tx) {
            return guard.claim(tx, scope, key, settle::sha256::hash(r.payload));
        });
        if (!claim) {
            return claim.is_replay();
        }
        auto tx = store.begin();
        db->add(tx, r);
        if (guard.complete(tx, *claim.claim(), std::string("charged")) ==
            settle::fenced_write::stale) {
            return false;
        }
        tx.commit();
        return true;
    }

    bool check(pg::transaction& tx, std::span<const sim::message> sent) {
        return db->holds(tx, sent);
    }
};

}  // namespace

TEST_CASE("on PostgreSQL, a correct consumer passes a hundred schedules") {
    database db;
    const sim::simulation_report report =
        sim::simulate_consumer({.seeds = 100}, [&] { return billing(db); });
    INFO(to_string(report));
    CHECK(report.passed());
    CHECK(report.schedules == 100);
}

TEST_CASE("on PostgreSQL, a correct request handler passes a hundred schedules") {
    database db;
    const sim::simulation_report report =
        sim::simulate_requests({.seeds = 100}, [&] { return payments(db); });
    INFO(to_string(report));
    CHECK(report.passed());
    CHECK(report.schedules == 100);
}
