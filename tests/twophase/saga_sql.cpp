// Sagas on the real databases: the conformance suite on SQLite and
// PostgreSQL, two recoverers racing on PostgreSQL connections, and SQLite
// coordinator processes killed with SIGKILL at random points while they start,
// run and recover sagas; afterwards every saga ends completed with every
// step in effect, or compensated with none. Then message-driven sagas on
// SQLite, their requests in an outbox and their answers through an inbox.
#include <settle/saga.hpp>
#include <settle/saga_coordinator.hpp>

#include <settle/codec.hpp>
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/stores/postgres.hpp>
#include <settle/stores/sqlite.hpp>
#include <settle/testing/saga_store_suite.hpp>

#include "outbox/ids.hpp"
#include "postgres/postgres_test.hpp"
#include "settle_test.hpp"
#include "sqlite/temp_database.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace sqlite = settle::sqlite;

namespace {

struct sqlite_fixture {
    settle_test::temp_database file;
    sqlite::connection conn{file.path()};
    sqlite::saga_table store{conn, "sagas"};

    sqlite_fixture() {
        settle::in_transaction(store, [&](auto& tx) { store.create_tables(tx); });
    }
};

struct postgres_fixture {
    postgres_test::scratch_table table{"saga"};
    settle::postgres::connection conn{postgres_test::conninfo()};
    settle::postgres::saga_table store{conn, table.name()};

    postgres_fixture() { postgres_test::create_tables(store); }
};

void exec(sqlite::connection& conn, const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(conn.native(), sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        const std::string text = message != nullptr ? message : "sqlite3_exec failed";
        sqlite3_free(message);
        throw std::runtime_error(text);
    }
}

std::int64_t count(sqlite::connection& conn, const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(conn.native(), sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const std::int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
}

// The saga every process runs: three steps whose effects are rows of the
// `effects` table, keyed by (saga, step), so each takes effect once however
// often it runs; a compensation deletes its row. Sagas whose id ends in an
// odd digit are refused at step 2 after its effect was written (an answer
// lost after the work was done), so they turn back.
template <class Clock>
auto coordinator(sqlite::connection& conn, sqlite::saga_table& sagas, Clock& clock,
                 std::chrono::microseconds lease) {
    const auto step = [&conn](std::uint32_t index) {
        return settle::saga_step{"step " + std::to_string(index),
                                 [&conn](const settle::saga_call& c) {
                                     const std::string id(c.id);
                                     sqlite::transaction tx(conn);
                                     exec(conn, "INSERT OR IGNORE INTO effects VALUES ('" + id +
                                                    "', " + std::to_string(c.step) + ")");
                                     tx.commit();
                                     if (c.step == 2 && (id.back() - '0') % 2 == 1) {
                                         throw std::domain_error("refused");
                                     }
                                 },
                                 [&conn](const settle::saga_call& c) {
                                     sqlite::transaction tx(conn);
                                     exec(conn, "DELETE FROM effects WHERE saga = '" +
                                                    std::string(c.id) +
                                                    "' AND step = " + std::to_string(c.step));
                                     tx.commit();
                                 }};
    };
    return settle::saga_coordinator(sagas, {"order", {step(0), step(1), step(2)}},
                                    settle::persisted_retry{settle::ladder{1ms}, 3}, clock,
                                    {.lease = lease, .batch_size = 8});
}

}  // namespace

TEST_CASE("sqlite::saga_table passes the saga store conformance suite", "[twophase]") {
    for (const auto& c : settle::conformance::saga_store_suite<sqlite_fixture>) {
        INFO(std::string(c.name));
        sqlite_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
    for (const auto& c : settle::conformance::saga_purge_suite<sqlite_fixture>) {
        INFO(std::string(c.name));
        sqlite_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("postgres::saga_table passes the saga store conformance suite", "[twophase]") {
    for (const auto& c : settle::conformance::saga_store_suite<postgres_fixture>) {
        INFO(std::string(c.name));
        postgres_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
    for (const auto& c : settle::conformance::saga_purge_suite<postgres_fixture>) {
        INFO(std::string(c.name));
        postgres_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("postgres sagas: two recoverers on their own connections compensate each step once",
          "[twophase]") {
    constexpr int sagas = 40;
    postgres_test::scratch_table table("saga_race");
    std::mutex mutex;
    std::map<std::pair<std::string, std::uint32_t>, int> actions;
    std::map<std::pair<std::string, std::uint32_t>, int> compensations;
    const auto step = [&](std::uint32_t index) {
        return settle::saga_step{"step " + std::to_string(index),
                                 [&](const settle::saga_call& c) {
                                     const std::lock_guard lock(mutex);
                                     ++actions[{std::string(c.id), c.step}];
                                     if (c.step == 2) {
                                         throw std::domain_error("refused");
                                     }
                                 },
                                 [&](const settle::saga_call& c) {
                                     const std::lock_guard lock(mutex);
                                     ++compensations[{std::string(c.id), c.step}];
                                 }};
    };
    const settle::saga_definition order{"order", {step(0), step(1), step(2)}};
    settle::manual_clock clock(std::chrono::sys_days(std::chrono::year(2024) / 9 / 1));
    {
        settle::postgres::connection conn(postgres_test::conninfo());
        settle::postgres::saga_table store(conn, table.name());
        postgres_test::create_tables(store);
        auto coordinator = settle::saga_coordinator(
            store, order, settle::persisted_retry{settle::ladder{1s}, 1}, clock, {});
        for (int i = 0; i < sagas; ++i) {
            (void)settle::in_transaction(store, [&](auto& tx) {
                return coordinator.start(tx, "o" + std::to_string(i), "");
            });
        }
    }
    clock.advance(1min);  // every starter died before run: all are due
    std::latch go(2);
    std::size_t compensated = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&] {
            settle::postgres::connection conn(postgres_test::conninfo());
            settle::postgres::saga_table store(conn, table.name());
            auto coordinator = settle::saga_coordinator(
                store, order, settle::persisted_retry{settle::ladder{1s}, 1}, clock, {});
            go.arrive_and_wait();
            while (true) {
                const settle::saga_recover_result r = coordinator.recover();
                const std::lock_guard lock(mutex);
                compensated += r.compensated;
                if (r.picked == 0) {
                    return;
                }
            }
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    CHECK(compensated == sagas);
    for (int i = 0; i < sagas; ++i) {
        for (std::uint32_t s = 0; s < 3; ++s) {
            CHECK(actions[{"o" + std::to_string(i), s}] == 1);
            CHECK(compensations[{"o" + std::to_string(i), s}] == 1);
        }
    }
}

TEST_CASE("postgres sagas: purge finds its batch through the index of ended sagas", "[twophase]") {
    postgres_test::scratch_table table("saga_purge");
    settle::manual_clock clock(std::chrono::sys_days(std::chrono::year(2024) / 9 / 1));
    settle::postgres::connection conn(postgres_test::conninfo());
    settle::postgres::saga_table store(conn, table.name());
    postgres_test::create_tables(store);
    const auto noop = [](const settle::saga_call&) {};
    auto coordinator =
        settle::saga_coordinator(store, {"order", {{"a", noop, noop}}},
                                 settle::persisted_retry{settle::ladder{1s}, 1}, clock, {});
    for (int i = 0; i < 12; ++i) {
        const std::string id = "o" + std::to_string(i);
        (void)settle::in_transaction(store,
                                     [&](auto& tx) { return coordinator.start(tx, id, ""); });
        if (i < 8) {
            CHECK(coordinator.run(id).is_completed());
        }
    }
    clock.advance(coordinator.options().retention + 1min);
    // With sequential scans off, a purge that can use the index does; one that cannot scans
    // the table, and the index counts no scan.
    postgres_test::run(conn.native(), "SET enable_seqscan = off");
    const std::string ended = postgres_test::scalar(
        conn.native(), "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = '\"" +
                           table.name() +
                           "\"'::regclass AND pg_get_expr(indpred, indrelid) LIKE '%completed%'");
    REQUIRE_FALSE(ended.empty());
    auto tx = store.begin();
    CHECK(coordinator.purge(tx, 5) == 5);
    CHECK(postgres_test::scalar(
              conn.native(), "SELECT pg_stat_get_xact_numscans('" + ended + "'::regclass)") == "1");
    CHECK(coordinator.purge(tx, 5) == 3);
    CHECK(coordinator.purge(tx, 5) == 0);
    tx.commit();
    CHECK(postgres_test::scalar(conn.native(), "SELECT count(*) FROM \"" + table.name() +
                                                   "\" WHERE status = 'running'") == "4");
}

TEST_CASE("sqlite sagas: purge finds its batch through the index of ended sagas", "[twophase]") {
    sqlite_fixture f;
    settle::manual_clock clock(std::chrono::sys_days(std::chrono::year(2024) / 9 / 1));
    const auto noop = [](const settle::saga_call&) {};
    auto coordinator =
        settle::saga_coordinator(f.store, {"order", {{"a", noop, noop}}},
                                 settle::persisted_retry{settle::ladder{1s}, 1}, clock, {});
    for (int i = 0; i < 200; ++i) {
        const std::string id = "o" + std::to_string(i);
        (void)settle::in_transaction(f.store,
                                     [&](auto& tx) { return coordinator.start(tx, id, ""); });
        if (i % 20 == 0) {
            CHECK(coordinator.run(id).is_completed());
        }
    }
    clock.advance(coordinator.options().retention + 1min);
    CHECK(settle::in_transaction(f.store, [&](auto& tx) { return coordinator.purge(tx, 4); }) == 4);
    // The purge statement, as the connection prepared it: no step of it scanned the table.
    sqlite3_stmt* purge = nullptr;
    for (sqlite3_stmt* s = sqlite3_next_stmt(f.conn.native(), nullptr); s != nullptr;
         s = sqlite3_next_stmt(f.conn.native(), s)) {
        if (std::string_view(sqlite3_sql(s)).starts_with("DELETE")) {
            purge = s;
        }
    }
    REQUIRE(purge != nullptr);
    CHECK(sqlite3_stmt_status(purge, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0) == 0);
    CHECK(sqlite3_stmt_status(purge, SQLITE_STMTSTATUS_VM_STEP, 0) < 200);
    CHECK(settle::in_transaction(f.store, [&](auto& tx) { return coordinator.purge(tx, 4); }) == 4);
    CHECK(settle::in_transaction(f.store, [&](auto& tx) { return coordinator.purge(tx, 4); }) == 2);
    CHECK(count(f.conn, "SELECT count(*) FROM sagas") == 190);
}

TEST_CASE("sqlite sagas: coordinators killed at random points leave no saga half done",
          "[twophase]") {
    settle_test::temp_database file;
    {
        sqlite::connection conn(file.path());
        sqlite::saga_table sagas(conn, "sagas");
        settle::in_transaction(sagas, [&](auto& tx) { sagas.create_tables(tx); });
        exec(conn, "CREATE TABLE effects (saga TEXT, step INTEGER, PRIMARY KEY (saga, step))");
    }
    constexpr int rounds = 16;
    constexpr int per_round = 10;
    std::mt19937 random(20241204);
    int killed = 0;
    for (int round = 0; round < rounds; ++round) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // A coordinator process: takes up what the last one left (its
            // lease is 1 ms), then starts and runs sagas of its own.
            int code = 0;
            try {
                std::chrono::system_clock clock;
                sqlite::connection conn(file.path());
                // a killed process loses nothing the OS has: no need to wait for the disk
                exec(conn, "PRAGMA synchronous = OFF");
                sqlite::saga_table sagas(conn, "sagas");
                auto orders = coordinator(conn, sagas, clock, 1ms);
                std::this_thread::sleep_for(2ms);
                while (orders.recover().picked > 0) {
                }
                for (int i = 0; i < per_round; ++i) {
                    const std::string id = "r" + std::to_string(round) + "-" + std::to_string(i);
                    settle::in_transaction(sagas,
                                           [&](auto& tx) { (void)orders.start(tx, id, "x"); });
                    (void)orders.run(id);
                }
            } catch (...) {
                code = 1;
            }
            ::_exit(code);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(2000 + random() % 150000));
        if (::kill(child, SIGKILL) == 0) {
            ++killed;
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        CHECK((WIFSIGNALED(status) || WEXITSTATUS(status) == 0));
    }
    // Recovery, an hour later: everything left is due.
    sqlite::connection conn(file.path());
    sqlite::saga_table sagas(conn, "sagas");
    settle::manual_clock clock(std::chrono::system_clock::now() + 1h);
    auto orders = coordinator(conn, sagas, clock, 30s);
    settle::saga_recover_result recovered;
    for (;;) {
        const settle::saga_recover_result r = orders.recover();
        if (r.picked == 0) {
            break;
        }
        recovered.picked += r.picked;
        clock.advance(1s);  // past any attempt's wait
    }
    const std::int64_t total = count(conn, "SELECT count(*) FROM sagas");
    const std::int64_t completed = count(conn,
                                         "SELECT count(*) FROM sagas WHERE status = "
                                         "'completed'");
    const std::int64_t compensated = count(conn,
                                           "SELECT count(*) FROM sagas WHERE status = "
                                           "'compensated'");
    std::printf(
        "sqlite sagas: %d of %d coordinators killed, %lld sagas, %lld completed, %lld "
        "compensated, %zu taken up by the last recovery\n",
        killed, rounds, static_cast<long long>(total), static_cast<long long>(completed),
        static_cast<long long>(compensated), recovered.picked);
    CHECK(total > 0);
    CHECK(completed + compensated == total);
    // completed: all three effects; compensated: none
    CHECK(count(conn,
                "SELECT count(*) FROM sagas s WHERE status = 'completed' AND (SELECT "
                "count(*) FROM effects e WHERE e.saga = s.id) != 3") == 0);
    CHECK(count(conn,
                "SELECT count(*) FROM sagas s WHERE status = 'compensated' AND EXISTS "
                "(SELECT 1 FROM effects e WHERE e.saga = s.id)") == 0);
    CHECK(count(conn, "SELECT count(*) FROM effects WHERE saga NOT IN (SELECT id FROM sagas)") ==
          0);
}

// A message-driven saga on SQLite: the coordinator's saga table, outbox and
// inbox share one database, so each write and the request it sends commit
// together; the participants keep their inbox, answers and effects in
// another.
namespace {

struct sqlite_message_shop {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 9 / 1)};
    settle_test::temp_database file;
    settle_test::temp_database remote_file;
    sqlite::connection conn{file.path()};
    sqlite::saga_table table{conn, "sagas"};
    sqlite::outbox_table outbox_store{conn, "outbox"};
    sqlite::inbox_table inbox{conn, "inbox"};
    settle::outbox<sqlite::outbox_table, settle::manual_clock> outbox{outbox_store, clock};
    settle::idempotent_consumer<sqlite::inbox_table, settle::manual_clock> replies{
        inbox, clock, {.consumer = "sagas"}};
    sqlite::connection remote{remote_file.path()};
    sqlite::inbox_table remote_inbox{remote, "inbox"};
    settle::idempotent_consumer<sqlite::inbox_table, settle::manual_clock> participants{
        remote_inbox, clock, {.consumer = "participants"}};
    std::uint32_t sent = 0;
    std::map<std::string, int> drop;                           // "o1+1": so many answers lost
    std::map<std::string, std::vector<std::string>> requests;  // by saga: "+1#2"
    struct answer {
        std::string message_id, saga;
        std::uint32_t step;
        settle::saga_direction direction;
        settle::saga_answer answer;
    };
    std::vector<answer> wire;
    std::map<std::string, int> seen;

    settle::saga_coordinator<sqlite::saga_table, settle::ladder<2>, settle::manual_clock> sagas{
        table,
        {"order", {{"reserve"}, {"charge"}, {"ship"}}},
        [this](sqlite::transaction& tx, const settle::saga_request& r) {
            const std::string text = std::string(r.id) + "|" + std::to_string(r.step) + "|" +
                                     (r.direction == settle::saga_direction::action ? "+" : "-") +
                                     "|" + std::to_string(r.attempt);
            REQUIRE(outbox.append(tx, outbox_test::id_of(++sent), "saga.request", text));
        },
        settle::persisted_retry{settle::ladder{1s, 10s}, 3},
        clock,
        {.lease = 30s}};

    // Applies a request once per (saga, step, direction): a saga whose id ends
    // in 2 is refused at step 2. Answers a repeat with the answer it gave.
    struct network {
        sqlite_message_shop* shop;
        settle::publish_result publish(const settle::outbox_record& record) {
            const auto text = settle::decode<std::string>(record.payload);
            const auto a = text.find('|');
            const auto b = text.find('|', a + 1);
            const auto c = text.find('|', b + 1);
            const std::string id = text.substr(0, a);
            const std::string step = text.substr(a + 1, b - a - 1);
            const std::string sign = text.substr(b + 1, c - b - 1);
            shop->requests[id].push_back(sign + step + "#" + text.substr(c + 1));
            const std::string key = id + "/" + step + sign;
            const bool action = sign == "+";
            const bool refused = action && step == "2" && id.back() == '2';
            settle::in_transaction(shop->remote_inbox, [&](auto& tx) {
                (void)shop->participants.consume(tx, key, [&](auto&) {
                    exec(shop->remote,
                         action && !refused
                             ? "INSERT INTO effects VALUES ('" + id + "', " + step + ")"
                             : "DELETE FROM effects WHERE saga = '" + id + "' AND step = " + step);
                    exec(shop->remote, "INSERT INTO answers VALUES ('" + key + "', " +
                                           (refused ? "0" : "1") + ")");
                });
            });
            const bool done =
                count(shop->remote, "SELECT ok FROM answers WHERE request = '" + key + "'") == 1;
            if (shop->drop[id + sign + step] > 0) {
                --shop->drop[id + sign + step];
            } else {
                shop->wire.push_back(
                    {"reply " + text, id, static_cast<std::uint32_t>(std::stoul(step)),
                     action ? settle::saga_direction::action : settle::saga_direction::compensation,
                     done ? settle::saga_answer::done : settle::saga_answer::refused});
            }
            return settle::publish_result::delivered();
        }
    } net{this};
    settle::outbox_relay<sqlite::outbox_table, network, settle::ladder<1>, settle::manual_clock>
        relay{outbox_store,
              net,
              settle::persisted_retry{settle::ladder{1s}, 100},
              clock,
              {.owner = "relay"}};

    sqlite_message_shop() {
        settle::in_transaction(table, [&](auto& tx) {
            table.create_tables(tx);
            outbox_store.create_tables(tx);
            inbox.create_tables(tx);
        });
        settle::in_transaction(remote_inbox, [&](auto& tx) { remote_inbox.create_tables(tx); });
        exec(remote, "CREATE TABLE effects (saga TEXT, step INTEGER, PRIMARY KEY (saga, step))");
        exec(remote, "CREATE TABLE answers (request TEXT PRIMARY KEY, ok INTEGER)");
    }
    void receive(const answer& m) {
        settle::in_transaction(table, [&](auto& tx) {
            const settle::inbox_result r = replies.consume(tx, m.message_id, [&](auto& t) {
                ++seen[std::string(settle::to_string(
                    sagas.reply(t, m.saga, m.step, m.direction, m.answer).outcome()))];
            });
            if (r.is_duplicate()) {
                ++seen["duplicate"];
            }
        });
    }
    void pump() {
        for (int round = 0; round < 100; ++round) {
            const bool idle = relay.run_once().idle();
            if (idle && wire.empty()) {
                return;
            }
            std::vector<answer> now;
            now.swap(wire);
            for (const answer& m : now) {
                receive(m);
            }
        }
        FAIL("the saga's messages did not settle");
    }
    settle::saga_record record(const std::string& id) {
        return *settle::in_transaction(table, [&](auto& tx) { return table.load(tx, id); });
    }
};

}  // namespace

TEST_CASE("sqlite message sagas: requests commit with each write; lost answers are sent again",
          "[twophase]") {
    sqlite_message_shop s;
    s.drop["o1+1"] = 1;  // applied, its answer lost
    settle::in_transaction(s.table, [&](auto& tx) {
        REQUIRE(s.sagas.start(tx, "o1", "sku-1"));
        REQUIRE(s.sagas.start(tx, "o2", "sku-2"));
        CHECK_FALSE(s.sagas.start(tx, "o1", "sku-1"));  // once per id, and sends nothing
    });
    s.pump();
    CHECK(s.record("o1").step == 1);
    s.clock.advance(30s);
    CHECK(s.sagas.recover() == settle::saga_recover_result{.picked = 1, .waiting = 1});
    s.pump();
    CHECK(s.requests["o1"] == std::vector<std::string>{"+0#1", "+1#1", "+1#2", "+2#1"});
    CHECK(s.requests["o2"] ==
          std::vector<std::string>{"+0#1", "+1#1", "+2#1", "-2#1", "-1#1", "-0#1"});
    CHECK(s.record("o1").status == settle::saga_status::completed);
    CHECK(s.record("o2").status == settle::saga_status::compensated);
    CHECK(count(s.remote, "SELECT count(*) FROM effects WHERE saga = 'o1'") == 3);
    CHECK(count(s.remote, "SELECT count(*) FROM effects WHERE saga = 'o2'") == 0);
    CHECK(s.seen == std::map<std::string, int>{{"accepted", 9}});
    CHECK(count(s.conn, "SELECT count(*) FROM outbox") == 10);  // every request, once
}

TEST_CASE("sqlite message sagas: an answer whose transaction rolls back sends nothing",
          "[twophase]") {
    sqlite_message_shop s;
    settle::in_transaction(s.table, [&](auto& tx) { REQUIRE(s.sagas.start(tx, "o1", "x")); });
    (void)s.relay.run_once();
    REQUIRE(s.wire.size() == 1);
    const auto m = s.wire.front();
    CHECK_THROWS_AS(settle::in_transaction(s.table,
                                           [&](auto& tx) {
                                               REQUIRE(s.replies
                                                           .consume(tx, m.message_id,
                                                                    [&](auto& t) {
                                                                        REQUIRE(s.sagas.reply(
                                                                            t, m.saga, m.step,
                                                                            m.direction, m.answer));
                                                                    })
                                                           .is_applied());
                                               throw std::runtime_error("the consumer died");
                                           }),
                    std::runtime_error);
    CHECK(s.record("o1").step == 0);
    CHECK(count(s.conn, "SELECT count(*) FROM outbox") == 1);
    s.receive(m);
    s.receive(m);
    CHECK(s.seen == std::map<std::string, int>{{"accepted", 1}, {"duplicate", 1}});
    CHECK(count(s.conn, "SELECT count(*) FROM outbox") == 2);  // step 1's request
    CHECK(s.record("o1").step == 1);
}
