// The MySQL backend's own rules, beyond the conformance suites: the
// transaction wrapper, refused input, the errors a service rides out (a
// deadlock, a server restart), per-key append order and SKIP LOCKED claims.
#include <settle/stores/mysql.hpp>

#include "mysql/mysql_test.hpp"
#include "outbox/ids.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/idempotency.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace my = settle::mysql;
using mysql_test::create_tables;
using mysql_test::options;
using mysql_test::raw_connection;
using mysql_test::run;
using mysql_test::scalar;
using mysql_test::scratch_table;
using mysql_test::t0;
using mysql_test::thrown;
using outbox_test::message_of;

TEST_CASE("mysql: misuse of transactions is refused and an open one rolls back when destroyed",
          "[mysql]") {
    scratch_table name("vs");
    my::connection conn(options());
    my::versioned_table<std::string, std::string> store(conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        CHECK(store.insert(tx, "a", "1").is_applied());
        CHECK(thrown([&] { (void)store.begin(); }) == settle::errc::invalid_argument);
    }  // destroyed open: rolled back
    {
        auto tx = store.begin();
        CHECK_FALSE(store.load(tx, "a"));
        tx.commit();
        CHECK(thrown([&] { (void)store.load(tx, "a"); }) == settle::errc::invalid_argument);
    }
    run(conn.native(), "START TRANSACTION");
    CHECK(thrown([&] { (void)store.begin(); }) == settle::errc::invalid_argument);
    run(conn.native(), "ROLLBACK");
    auto tx = store.begin();
    run(tx.native(), "COMMIT");
    CHECK(thrown([&] { (void)store.insert(tx, "b", "2"); }) == settle::errc::aborted);
}

TEST_CASE("mysql: bad names and over-long keys are refused and nothing is stored", "[mysql]") {
    my::connection conn(options());
    for (const char* bad : {"", "1abc", "a-b", "a`b", "x; DROP TABLE y"}) {
        CHECK(thrown([&] { my::inbox_table(conn, bad); }) == settle::errc::invalid_argument);
    }
    scratch_table name("inbox");
    my::inbox_table inbox(conn, name.name());
    create_tables(inbox);
    auto tx = inbox.begin();
    CHECK(thrown([&] {
              (void)inbox.mark(tx, "c", std::string(settle::max_key_size + 1, 'm'), t0);
          }) == settle::errc::invalid_argument);
    CHECK(inbox.mark(tx, "c", std::string(settle::max_key_size, 'm'), t0) ==
          settle::inbox_mark::first_time);
    tx.commit();
    raw_connection raw;
    CHECK(scalar(raw.get(), "SELECT COUNT(*) FROM `" + name.name() + "`") == "1");
}

TEST_CASE("mysql: a deadlock between two business transactions is aborted and a retry commits",
          "[mysql][concurrency]") {
    scratch_table name("vs");
    my::connection first_conn(options());
    my::connection second_conn(options());
    my::versioned_table<std::string, std::string> first(first_conn, name.name());
    my::versioned_table<std::string, std::string> second(second_conn, name.name());
    create_tables(first);
    {
        auto tx = first.begin();
        REQUIRE(first.insert(tx, "a", "0").is_applied());
        REQUIRE(first.insert(tx, "b", "0").is_applied());
        tx.commit();
    }
    // Each locks one row, then wants the other's: InnoDB gives one of them up.
    std::atomic<int> aborted{0};
    std::atomic<int> locked{0};
    const auto business = [&](my::versioned_table<std::string, std::string>& store,
                              const std::string& mine, const std::string& theirs) -> bool {
        for (int attempt = 0; attempt < 10; ++attempt) {
            try {
                auto tx = store.begin();
                const auto own = store.load(tx, mine);
                if (!store.compare_and_set(tx, mine, own->stamp, "x").is_applied()) {
                    continue;  // the other committed to it meanwhile: start again
                }
                if (attempt == 0) {
                    ++locked;
                    while (locked.load() < 2) {
                        std::this_thread::yield();
                    }
                }
                const auto other = store.load(tx, theirs);
                (void)store.compare_and_set(tx, theirs, other->stamp, "y");
                tx.commit();
                return true;
            } catch (const settle::error& e) {
                REQUIRE(e.code() == settle::errc::aborted);
                ++aborted;
            }
        }
        return false;
    };
    bool second_done = false;
    std::thread other([&] { second_done = business(second, "b", "a"); });
    const bool first_done = business(first, "a", "b");
    other.join();
    CHECK(first_done);
    CHECK(second_done);
    CHECK(aborted >= 1);
    raw_connection raw;
    CHECK(scalar(raw.get(), "SELECT COUNT(*) FROM `" + name.name() + "` WHERE value = 'y'") != "0");
}

TEST_CASE("mysql: appends for one ordering key commit in sequence order",
          "[mysql][outbox][concurrency]") {
    scratch_table name("outbox");
    my::connection first_conn(options());
    my::connection second_conn(options());
    my::outbox_table first(first_conn, name.name());
    my::outbox_table second(second_conn, name.name());
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

TEST_CASE("mysql: a claim skips records another transaction holds, without waiting",
          "[mysql][outbox][concurrency]") {
    scratch_table name("outbox");
    my::connection first_conn(options());
    my::connection second_conn(options());
    my::outbox_table first(first_conn, name.name());
    my::outbox_table second(second_conn, name.name());
    create_tables(first);
    {
        auto tx = first.begin();
        for (std::uint32_t n = 1; n <= 4; ++n) {
            REQUIRE(first.append(tx, message_of(n), t0).is_appended());
        }
        tx.commit();
    }
    auto held = first.begin();
    const auto mine = first.claim(held, "relay-1", t0, t0 + 30s, 2);
    REQUIRE(mine.size() == 2);
    auto tx = second.begin();
    const auto theirs = second.claim(tx, "relay-2", t0, t0 + 30s, 4);  // would wait if locked
    REQUIRE(theirs.size() == 2);
    for (const auto& r : theirs) {
        for (const auto& m : mine) {
            CHECK(r.id != m.id);
        }
    }
    tx.commit();
    held.commit();
}

TEST_CASE(
    "mysql: a server restart is unavailable, then the next transaction reconnects and "
    "prepares its statements again",
    "[mysql][outbox]") {
    const char* script = std::getenv("SETTLE_MYSQL_SCRIPT");
    const char* dir = std::getenv("SETTLE_MYSQL_DIR");
    REQUIRE(script != nullptr);
    REQUIRE(dir != nullptr);
    scratch_table name("outbox");
    my::connection conn(options());
    my::outbox_table store(conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        REQUIRE(store.append(tx, message_of(1), t0).is_appended());
        tx.commit();
    }
    {
        auto tx = store.begin();
        REQUIRE(store.append(tx, message_of(2), t0).is_appended());
        REQUIRE(std::system((std::string(script) + " restart " + dir).c_str()) == 0);
        CHECK(thrown([&] { (void)store.append(tx, message_of(3), t0); }) ==
              settle::errc::unavailable);
    }
    auto tx = store.begin();  // reconnects; the statements are prepared on the new session
    CHECK(store.append(tx, message_of(4), t0).is_appended());
    CHECK(store.find(tx, outbox_test::id_of(1)));
    CHECK_FALSE(store.find(tx, outbox_test::id_of(2)));  // its transaction never committed
    tx.commit();
}

namespace {

// Claims and marks delivered every due record of `store`, one claim at a time.
void deliver_all(my::outbox_table& store) {
    for (;;) {
        auto tx = store.begin();
        const auto claimed = store.claim(tx, "relay", t0, t0 + 30s, 16);
        for (const auto& r : claimed) {
            REQUIRE(store.mark_delivered(tx, r.id, r.claim_token, t0) ==
                    settle::fenced_write::applied);
        }
        tx.commit();
        if (claimed.empty()) {
            return;
        }
    }
}

// Appends `younger` for `key` on `second` while `first` holds an append of
// the key in an open transaction, after a purge on `second`; returns whether
// the purge finished while the key was held and whether the second append
// waited for the first to commit.
struct race {
    bool purged_while_held = false;
    bool waited = false;
    std::uint64_t older = 0;
    std::uint64_t younger = 0;
};

race append_during_purge(my::outbox_table& first, my::outbox_table& second, std::uint32_t n) {
    race out;
    std::atomic<bool> committed{false};
    auto tx = first.begin();
    out.older = first.append(tx, message_of(n, "order-1"), t0).sequence();
    std::thread thread([&] {
        {
            auto purge = second.begin();
            (void)second.purge(purge, t0, 100);  // no record delivered before t0: keys only
            out.purged_while_held = !committed.load();
            purge.commit();
        }
        auto other = second.begin();
        out.younger = second.append(other, message_of(n + 1, "order-1"), t0).sequence();
        out.waited = committed.load();
        other.commit();
    });
    std::this_thread::sleep_for(300ms);
    committed = true;
    tx.commit();
    thread.join();
    return out;
}

}  // namespace

TEST_CASE("mysql: purge removes idle ordering keys, and appends of a key stay in order across it",
          "[mysql][outbox][concurrency]") {
    scratch_table name("outbox");
    my::connection first_conn(options());
    my::connection second_conn(options());
    my::outbox_table first(first_conn, name.name());
    my::outbox_table second(second_conn, name.name());
    create_tables(first);
    raw_connection raw;
    const std::string keys = "SELECT COUNT(*) FROM `" + name.name() + "_keys`";
    {
        auto tx = first.begin();
        REQUIRE(first.append(tx, message_of(1, "order-1"), t0).is_appended());
        REQUIRE(first.append(tx, message_of(2, "order-2"), t0).is_appended());
        tx.commit();
    }
    deliver_all(first);
    {
        auto tx = first.begin();
        REQUIRE(first.append(tx, message_of(3, "order-2"), t0).is_appended());  // undelivered
        CHECK(first.purge(tx, t0 + 1s, 100) == 2);
        tx.commit();
    }
    CHECK(scalar(raw.get(), keys) == "1");  // order-1 removed, order-2 kept

    // The key's row is gone: two appends of the key still wait for each other.
    const race after_removal = append_during_purge(first, second, 10);
    CHECK(after_removal.waited);
    CHECK(after_removal.younger > after_removal.older);

    // The key is idle (its records delivered) but an append holds its row: the
    // purge skips it without waiting, and the next append of the key still
    // waits for the first.
    deliver_all(first);
    const race while_held = append_during_purge(first, second, 20);
    CHECK(while_held.purged_while_held);
    CHECK(while_held.waited);
    CHECK(while_held.younger > while_held.older);
    deliver_all(first);
    {
        auto tx = first.begin();
        (void)first.purge(tx, t0 + 1s, 100);
        tx.commit();
    }
    CHECK(scalar(raw.get(), keys) == "0");  // every key idle
}

namespace {

// The statements the server has run for the session behind `conn`, this
// count's own included.
long statements(MYSQL* conn) {
    const std::string row = scalar(conn,
                                   "SELECT VARIABLE_VALUE FROM "
                                   "information_schema.SESSION_STATUS WHERE VARIABLE_NAME "
                                   "= 'QUESTIONS'");
    return std::stol(row);
}

// The statements `fn` sends on `conn`.
template <class F>
long statements_of(my::connection& conn, F&& fn) {
    const long before = statements(conn.native());
    fn();
    return statements(conn.native()) - before - 1;
}

struct take_everything {
    settle::publish_result publish(const settle::outbox_record&) {
        return settle::publish_result::delivered();
    }
};

}  // namespace

TEST_CASE("mysql: the statements each operation sends", "[mysql][outbox]") {
    my::connection conn(options());
    SECTION("an idempotency claim and complete on a fresh key") {
        scratch_table name("idem");
        my::idempotency_table store(conn, name.name());
        create_tables(store);
        const settle::idempotency_scope scope{"tenant", "orders.create"};
        const auto fingerprint = settle::fingerprint_fields({"order", "42"});
        for (int n = 0; n < 2; ++n) {  // the first prepares the statements
            const auto key = settle::idempotency_key::parse("key-" + std::to_string(n)).value();
            const long sent = statements_of(conn, [&] {
                auto tx = store.begin();
                const auto token =
                    store.claim(tx, scope, key, fingerprint, t0, t0 + 30s).record.token;
                tx.commit();
                auto second = store.begin();
                CHECK(store.complete(second, scope, key, token, {}, t0 + 1h) ==
                      settle::fenced_write::applied);
                second.commit();
            });
            INFO("claim + complete: " << sent);
            CHECK(sent ==
                  8);  // BEGIN, INSERT, REPLACE (token), UPDATE, COMMIT; BEGIN, UPDATE, COMMIT
        }
    }
    SECTION("a relay pass") {
        scratch_table name("outbox");
        my::outbox_table store(conn, name.name());
        create_tables(store);
        take_everything publisher;
        settle::manual_clock clock(t0);
        for (const std::size_t batch : {std::size_t{1}, std::size_t{16}}) {
            {
                auto tx = store.begin();
                for (std::uint32_t n = 0; n < 3 * batch; ++n) {
                    REQUIRE(
                        store
                            .append(tx, message_of(static_cast<std::uint32_t>(batch * 100 + n)), t0)
                            .is_appended());
                }
                tx.commit();
            }
            settle::outbox_relay relay(store, publisher,
                                       settle::persisted_retry{settle::ladder{1s, 5s}, 5}, clock,
                                       {.owner = "relay", .batch_size = batch});
            for (int pass = 0; pass < 2; ++pass) {
                const long sent =
                    statements_of(conn, [&] { CHECK(relay.run_once().delivered == batch); });
                INFO("batch " << batch << ": " << sent);
                // BEGIN, the due pick, the lock by id, the claim's UPDATE, COMMIT; BEGIN,
                // mark_delivered (one UPDATE for one claim, a savepoint and an UPDATE for more),
                // COMMIT
                CHECK(sent == (batch == 1 ? 8 : 9));
            }
        }
    }
}

// A claim rewrites up to 256 rows; an index over a column it sets would move
// an entry per record (half the pages the claim's UPDATE writes).
TEST_CASE("mysql: an outbox claim sets no indexed column", "[mysql][outbox]") {
    scratch_table name("outbox");
    my::connection conn(options());
    my::outbox_table store(conn, name.name());
    create_tables(store);
    raw_connection raw;
    CHECK(scalar(raw.get(),
                 "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                 "DATABASE() AND TABLE_NAME = '" +
                     name.name() +
                     "' AND COLUMN_NAME IN ('status', 'attempts', 'claim_owner', "
                     "'claim_token', 'claim_expires_at')") == "0");
}

// A claim of a few records over a large backlog, all due, and a delivered
// history reads the claims' index in order: an optimizer that judged most
// rows due could scan the table and sort it instead.
TEST_CASE("mysql: a claim over a due backlog and a delivered history reads a few rows",
          "[mysql][outbox]") {
    scratch_table name("outbox");
    my::connection conn(options());
    my::outbox_table store(conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        for (std::uint32_t n = 1; n <= 3000; ++n) {
            REQUIRE(store.append(tx, message_of(n), t0).is_appended());
        }
        tx.commit();
    }
    raw_connection raw;
    run(raw.get(), "UPDATE `" + name.name() +
                       "` SET status = 'delivered', finished_at = 1 WHERE sequence <= 1500");
    run(raw.get(), "ANALYZE TABLE `" + name.name() + "`");
    const auto rows_read = [&] {
        return std::stol(scalar(conn.native(),
                                "SELECT SUM(VARIABLE_VALUE) FROM "
                                "information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN "
                                "('HANDLER_READ_KEY', 'HANDLER_READ_NEXT', 'HANDLER_READ_PREV', "
                                "'HANDLER_READ_FIRST', 'HANDLER_READ_RND_NEXT')"));
    };
    auto tx = store.begin();
    const long before = rows_read();
    const auto claimed = store.claim(tx, "relay", t0 + 1s, t0 + 30s, 16);
    const long read = rows_read() - before;
    tx.commit();
    REQUIRE(claimed.size() == 16);
    CHECK(claimed[0].id == outbox_test::id_of(1501));
    INFO("rows read: " << read);
    CHECK(read < 200);
}

// The per-key check of a claim looks for an older undelivered record of the
// key; over the key's delivered history it read a row for each, every claim.
TEST_CASE("mysql: a claim reads none of an ordering key's delivered records", "[mysql][outbox]") {
    scratch_table name("outbox");
    my::connection conn(options());
    my::outbox_table store(conn, name.name());
    create_tables(store);
    {
        auto tx = store.begin();
        for (std::uint32_t n = 1; n <= 500; ++n) {
            REQUIRE(store.append(tx, message_of(n, "order-1"), t0).is_appended());
        }
        tx.commit();
    }
    raw_connection raw;
    run(raw.get(), "UPDATE `" + name.name() + "` SET status = 'delivered', finished_at = 1");
    {
        auto tx = store.begin();
        REQUIRE(store.append(tx, message_of(501, "order-1"), t0).is_appended());
        REQUIRE(store.append(tx, message_of(502, "order-1"), t0).is_appended());
        tx.commit();
    }
    const auto rows_read = [&] {
        return std::stol(scalar(conn.native(),
                                "SELECT SUM(VARIABLE_VALUE) FROM "
                                "information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN "
                                "('HANDLER_READ_KEY', 'HANDLER_READ_NEXT', 'HANDLER_READ_PREV')"));
    };
    auto tx = store.begin();
    const long before = rows_read();
    const auto claimed = store.claim(tx, "relay", t0, t0 + 30s, 16);
    const long read = rows_read() - before;
    tx.commit();
    REQUIRE(claimed.size() == 1);
    CHECK(claimed[0].id == outbox_test::id_of(501));
    INFO("rows read: " << read);
    CHECK(read < 50);
}

TEST_CASE("mysql: delete_on_delivery deletes a delivered record under its claim and keeps the rest",
          "[mysql][outbox]") {
    using outbox_test::id_of;
    scratch_table name("outbox");
    my::connection conn(options());
    my::outbox_table store(conn, name.name(), settle::outbox_retention::delete_on_delivery);
    create_tables(store);
    raw_connection raw;
    const std::string rows = "SELECT COUNT(*) FROM `" + name.name() + "`";
    {
        auto tx = store.begin();
        for (std::uint32_t n = 1; n <= 6; ++n) {
            REQUIRE(store.append(tx, message_of(n), t0).is_appended());
        }
        tx.commit();
    }
    auto tx = store.begin();
    const auto first = store.claim(tx, "relay-a", t0, t0 + 30s, 4);
    REQUIRE(first.size() == 4);
    // relay-a's lease ends; relay-b claims 1 to 4 again, fencing relay-a out.
    const auto second = store.claim(tx, "relay-b", t0 + 31s, t0 + 61s, 4);
    REQUIRE(second.size() == 4);
    CHECK(store.mark_delivered(tx, first[0].id, first[0].claim_token, t0 + 32s) ==
          settle::fenced_write::stale);
    const std::array<settle::outbox_claim, 2> stale{
        {{first[1].id, first[1].claim_token}, {first[2].id, first[2].claim_token}}};
    CHECK(store.mark_delivered(tx, stale, t0 + 32s) ==
          std::vector<settle::fenced_write>{settle::fenced_write::stale,
                                            settle::fenced_write::stale});
    for (std::uint32_t n = 1; n <= 4; ++n) {
        CHECK(store.find(tx, id_of(n)).has_value());  // a fenced-out relay deleted nothing
    }

    CHECK(store.mark_delivered(tx, second[0].id, second[0].claim_token, t0 + 33s) ==
          settle::fenced_write::applied);
    const std::array<settle::outbox_claim, 3> held{{{second[1].id, second[1].claim_token},
                                                    {second[2].id, second[2].claim_token},
                                                    {first[3].id, first[3].claim_token}}};
    CHECK(store.mark_delivered(tx, held, t0 + 33s) ==
          std::vector<settle::fenced_write>{settle::fenced_write::applied,
                                            settle::fenced_write::applied,
                                            settle::fenced_write::stale});
    for (std::uint32_t n = 1; n <= 3; ++n) {
        CHECK_FALSE(store.find(tx, id_of(n)).has_value());
    }
    const auto in_flight = store.find(tx, id_of(4));
    REQUIRE(in_flight.has_value());
    CHECK(in_flight->status == settle::outbox_status::in_flight);
    for (std::uint32_t n = 5; n <= 6; ++n) {
        const auto kept = store.find(tx, id_of(n));
        REQUIRE(kept.has_value());
        CHECK(kept->status == settle::outbox_status::pending);
    }
    tx.commit();
    CHECK(scalar(raw.get(), rows) == "3");
}

TEST_CASE("mysql: delete_on_delivery frees an ordering key's next record, and purge its key row",
          "[mysql][outbox]") {
    using outbox_test::id_of;
    scratch_table name("outbox");
    my::connection conn(options());
    my::outbox_table store(conn, name.name(), settle::outbox_retention::delete_on_delivery);
    create_tables(store);
    raw_connection raw;
    {
        auto tx = store.begin();
        for (std::uint32_t n = 1; n <= 2; ++n) {
            REQUIRE(store.append(tx, message_of(n, "order-1"), t0).is_appended());
        }
        tx.commit();
    }
    {
        auto tx = store.begin();
        const auto head = store.claim(tx, "relay", t0, t0 + 30s, 10);
        REQUIRE(head.size() == 1);
        CHECK(head[0].id == id_of(1));
        CHECK(store.mark_delivered(tx, head[0].id, head[0].claim_token, t0) ==
              settle::fenced_write::applied);
        const auto next = store.claim(tx, "relay", t0, t0 + 30s, 10);
        REQUIRE(next.size() == 1);
        CHECK(next[0].id == id_of(2));
        CHECK(store.mark_delivered(tx, next[0].id, next[0].claim_token, t0) ==
              settle::fenced_write::applied);
        tx.commit();
    }
    auto tx = store.begin();
    CHECK(store.purge(tx, t0 + 1s, 100) == 0);  // no delivered record left to remove
    tx.commit();
    CHECK(scalar(raw.get(), "SELECT COUNT(*) FROM `" + name.name() + "_keys`") == "0");
}
