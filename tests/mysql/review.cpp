// The MySQL backend under what a reviewer throws at it: text that is not
// UTF-8, an empty batch, batch deliveries racing takeovers on another
// connection, relays racing appenders of ordering keys, concurrent claims of
// one idempotency key, tokens across a server crash, and transactions a
// deadlock rolled back.
#include <settle/stores/mysql.hpp>

#include "mysql/mysql_test.hpp"
#include "outbox/ids.hpp"
#include "settle_test.hpp"

#include <settle/idempotency.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
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
using outbox_test::id_of;
using outbox_test::message_of;

TEST_CASE("mysql: a topic or owner that is not UTF-8 is refused, never stored altered",
          "[mysql][outbox]") {
    scratch_table name("outbox");
    my::connection conn(options());
    my::outbox_table store(conn, name.name());
    create_tables(store);
    for (const char* mode : {"STRICT_TRANS_TABLES", ""}) {
        CAPTURE(mode);
        auto tx = store.begin();
        run(tx.native(), std::string("SET SESSION sql_mode = '") + mode + "'");
        for (const std::string& bad :
             {std::string("orders\xff"), std::string("caf\xc3"), std::string("\xed\xa0\x80"),
              std::string("a\xc0\xaf"
                          "b")}) {
            auto message = message_of(1);
            message.topic = bad;
            CHECK(thrown([&] { (void)store.append(tx, message, t0); }) ==
                  settle::errc::invalid_argument);
        }
        CHECK(!store.find(tx, id_of(1)).has_value());
        auto fine = message_of(2);
        fine.topic = "z\xc3\xbcrich.\xf0\x9f\x98\x80";  // two- and four-byte sequences
        REQUIRE(store.append(tx, fine, t0).is_appended());
        CHECK(store.find(tx, id_of(2))->topic == fine.topic);
        CHECK(thrown([&] { (void)store.claim(tx, "relay\xfe", t0, t0 + 30s, 1); }) ==
              settle::errc::invalid_argument);
        const auto claimed = store.claim(tx, "relay-\xc3\xa9", t0, t0 + 30s, 1);
        REQUIRE(claimed.size() == 1);
        CHECK(store.find(tx, id_of(2))->claim_owner == "relay-\xc3\xa9");
        run(tx.native(), "SET SESSION sql_mode = DEFAULT");
        // rolled back: the next round starts empty
    }
}

namespace {

// One delivery answer: the claim given, the relay that gave it, and the answer.
struct answer {
    settle::outbox_claim claim;
    char relay;
    settle::fenced_write write;
};

// Delivers `claims` in one batch and commits; the answers are appended to `out`.
void deliver(my::outbox_table& store, const std::vector<settle::outbox_claim>& claims,
             settle::stored_time now, char relay, std::vector<answer>& out) {
    auto tx = store.begin();
    const auto writes = store.mark_delivered(tx, claims, now);
    tx.commit();
    for (std::size_t i = 0; i < claims.size(); ++i) {
        out.push_back({claims[i], relay, writes[i]});
    }
}

}  // namespace

TEST_CASE("mysql: batch deliveries racing takeovers on another connection answer each claim once",
          "[mysql][outbox][concurrency]") {
    constexpr std::uint32_t records = 700;
    for (const auto retention :
         {settle::outbox_retention::keep, settle::outbox_retention::delete_on_delivery}) {
        CAPTURE(retention == settle::outbox_retention::keep);
        scratch_table name("outbox");
        my::connection a_conn(options());
        my::connection b_conn(options());
        my::outbox_table a(a_conn, name.name(), retention);
        my::outbox_table b(b_conn, name.name(), retention);
        create_tables(a);
        {
            auto tx = a.begin();
            for (std::uint32_t n = 0; n < records; ++n) {
                REQUIRE(a.append(tx, message_of(n), t0).is_appended());
            }
            tx.commit();
        }
        // Relay A claims everything; its leases end at t0 + 10s, and relay B
        // takes records over, oldest first, while A delivers them in that order.
        std::vector<settle::outbox_claim> mine;
        {
            auto tx = a.begin();
            for (;;) {
                const auto got = a.claim(tx, "relay-a", t0, t0 + 10s, 256);
                if (got.empty()) {
                    break;
                }
                for (const auto& r : got) {
                    mine.push_back({r.id, r.claim_token});
                }
            }
            tx.commit();
        }
        REQUIRE(mine.size() == records);
        std::sort(mine.begin(), mine.end(),
                  [](const auto& x, const auto& y) { return x.id < y.id; });  // oldest first
        const settle::stored_time a_now = t0 + 12s;
        const settle::stored_time b_now = t0 + 13s;
        std::vector<answer> a_answers;
        std::vector<answer> b_answers;
        std::string a_error;
        std::string b_error;
        std::atomic<bool> b_claimed_once{false};
        std::thread relay_b([&] {
            try {
                for (;;) {
                    std::vector<settle::outbox_claim> taken;
                    {
                        auto tx = b.begin();
                        for (const auto& r : b.claim(tx, "relay-b", t0 + 11s, t0 + 100s, 37)) {
                            taken.push_back({r.id, r.claim_token});
                        }
                        tx.commit();
                    }
                    b_claimed_once = true;
                    if (taken.empty()) {
                        return;
                    }
                    taken.push_back(taken.front());  // a claim given twice
                    deliver(b, taken, b_now, 'b', b_answers);
                }
            } catch (const std::exception& e) {
                b_error = e.what();
            }
        });
        while (!b_claimed_once) {
            std::this_thread::yield();
        }
        try {
            // Batches of 300 (locking read, over 256 with repeats), 170 and 230
            // (one UPDATE when every claim applies), each with claims repeated.
            std::size_t from = 0;
            for (const std::size_t n : {std::size_t{300}, std::size_t{170}, std::size_t{230}}) {
                std::vector<settle::outbox_claim> batch(
                    mine.begin() + static_cast<std::ptrdiff_t>(from),
                    mine.begin() + static_cast<std::ptrdiff_t>(from + n));
                batch.insert(batch.end(), batch.begin(), batch.begin() + 5);
                deliver(a, batch, a_now, 'a', a_answers);
                from += n;
            }
        } catch (const std::exception& e) {
            a_error = e.what();
        }
        relay_b.join();
        CHECK(a_error.empty());
        CHECK(b_error.empty());

        // Each record: exactly one claim applied, the first time it was given;
        // a record relay B took over is B's to deliver, and A's claim is stale.
        std::map<settle::uuid, std::vector<answer>> by_record;
        for (const auto* list : {&a_answers, &b_answers}) {
            for (const answer& x : *list) {
                by_record[x.claim.id].push_back(x);
            }
        }
        REQUIRE(by_record.size() == records);
        std::size_t taken_over = 0;
        auto tx = a.begin();
        for (const auto& [id, answers] : by_record) {
            const auto applied = std::count_if(answers.begin(), answers.end(), [](const answer& x) {
                return x.write == settle::fenced_write::applied;
            });
            CHECK(applied == 1);
            const bool b_claimed = std::any_of(answers.begin(), answers.end(),
                                               [](const answer& x) { return x.relay == 'b'; });
            taken_over += b_claimed ? 1 : 0;
            const auto winner = std::find_if(answers.begin(), answers.end(), [](const answer& x) {
                return x.write == settle::fenced_write::applied;
            });
            if (winner == answers.end()) {
                continue;
            }
            CHECK(winner->relay == (b_claimed ? 'b' : 'a'));
            const auto stored = a.find(tx, id);
            if (retention == settle::outbox_retention::keep) {
                REQUIRE(stored.has_value());
                CHECK(stored->status == settle::outbox_status::delivered);
                CHECK(stored->finished_at == (winner->relay == 'a' ? a_now : b_now));
            } else {
                CHECK(!stored.has_value());
            }
        }
        tx.commit();
        CHECK(taken_over > 0);
        CHECK(taken_over < records);
    }
}

TEST_CASE("mysql: after a deadlock rolled a transaction back, its next write is refused",
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
    std::atomic<int> locked{0};
    std::atomic<int> victims{0};
    std::atomic<int> refused{0};
    std::atomic<int> unexpected{0};  // Catch's checks are for the main thread only
    const auto business = [&](my::versioned_table<std::string, std::string>& store,
                              const std::string& mine, const std::string& theirs) {
        auto tx = store.begin();
        const auto own = store.load(tx, mine);
        if (!store.compare_and_set(tx, mine, own->stamp, "x").is_applied()) {
            ++unexpected;
        }
        ++locked;
        while (locked.load() < 2) {
            std::this_thread::yield();
        }
        try {
            const auto other = store.load(tx, theirs);
            (void)store.compare_and_set(tx, theirs, other->stamp, "y");
        } catch (const settle::error& e) {
            if (e.code() != settle::errc::aborted) {
                ++unexpected;
            }
            ++victims;
            // The server has rolled back and left the transaction: a write now
            // would commit on its own.
            try {
                (void)store.insert(tx, "orphan-" + mine, "z");
            } catch (const settle::error& again) {
                if (again.code() == settle::errc::aborted) {
                    ++refused;
                }
            }
            tx.rollback();
            return;
        }
        tx.commit();
    };
    std::thread other([&] { business(second, "b", "a"); });
    business(first, "a", "b");
    other.join();
    CHECK(unexpected == 0);
    REQUIRE(victims == 1);
    CHECK(refused == 1);
    raw_connection raw;
    CHECK(scalar(raw.get(),
                 "SELECT COUNT(*) FROM `" + name.name() + "` WHERE `key` LIKE '%orphan%'") == "0");
}

TEST_CASE(
    "mysql: concurrent claims of one idempotency key on four connections: one wins, "
    "tokens only grow",
    "[mysql][concurrency]") {
    constexpr int clients = 4;
    constexpr int rounds = 25;
    scratch_table name("idem");
    std::vector<std::unique_ptr<my::connection>> conns;
    std::vector<std::unique_ptr<my::idempotency_table>> stores;
    for (int i = 0; i < clients; ++i) {
        conns.push_back(std::make_unique<my::connection>(options()));
        stores.push_back(std::make_unique<my::idempotency_table>(*conns.back(), name.name()));
    }
    create_tables(*stores.front());
    const settle::idempotency_scope scope{"tenant", "payments.capture"};
    const auto fingerprint = settle::fingerprint_fields({"payment", "7"});
    const auto key = settle::idempotency_key::parse("pay-7").value();
    // Each round, every client claims the key at once; a round's lease ends
    // before the next round's time, so each round has a winner that takes
    // the record over (the first round inserts it).
    std::vector<std::vector<settle::idempotency_store_claim>> seen(
        clients, std::vector<settle::idempotency_store_claim>(rounds));
    std::vector<std::string> errors(clients);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            for (int round = 0; round < rounds; ++round) {
                ++ready;
                while (ready.load() < clients * (round + 1)) {
                    std::this_thread::yield();
                }
                try {
                    const settle::stored_time now = t0 + std::chrono::seconds(10 * round);
                    auto tx = stores[static_cast<std::size_t>(c)]->begin();
                    seen[static_cast<std::size_t>(c)][static_cast<std::size_t>(round)] =
                        stores[static_cast<std::size_t>(c)]->claim(tx, scope, key, fingerprint, now,
                                                                   now + 5s);
                    tx.commit();
                } catch (const std::exception& e) {
                    errors[static_cast<std::size_t>(c)] = e.what();
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    for (const auto& e : errors) {
        CHECK(e == std::string());
    }
    std::uint64_t last = 0;
    for (std::size_t round = 0; round < rounds; ++round) {
        CAPTURE(round);
        int winners = 0;
        std::uint64_t token = 0;
        for (std::size_t c = 0; c < clients; ++c) {
            if (seen[c][round].claimed) {
                ++winners;
                token = seen[c][round].record.token.value();
            }
        }
        REQUIRE(winners == 1);
        CHECK(token > last);
        for (std::size_t c = 0; c < clients; ++c) {
            // The losers saw the winner's record, in progress, under its token.
            CHECK(seen[c][round].record.token.value() == token);
            CHECK(seen[c][round].record.state == settle::idempotency_state::in_progress);
        }
        last = token;
    }
}

TEST_CASE("mysql: tokens and stamps keep growing across purge, erase and a server crash",
          "[mysql]") {
    const char* script = std::getenv("SETTLE_MYSQL_SCRIPT");
    const char* dir = std::getenv("SETTLE_MYSQL_DIR");
    REQUIRE(script != nullptr);
    REQUIRE(dir != nullptr);
    scratch_table idem_name("idem");
    scratch_table vs_name("vs");
    // Four sessions draw; after the crash, a new session (the server counts
    // its ids from the start again) draws.
    std::vector<std::unique_ptr<my::connection>> conns;
    for (int i = 0; i < 4; ++i) {
        conns.push_back(std::make_unique<my::connection>(options()));
    }
    const settle::idempotency_scope scope{"tenant", "payments.capture"};
    const auto fingerprint = settle::fingerprint_fields({"payment", "7"});
    const auto key = settle::idempotency_key::parse("pay-7").value();
    std::uint64_t token = 0;
    std::uint64_t stamp = 0;
    for (const auto& c : conns) {
        my::idempotency_table idem(*c, idem_name.name());
        my::versioned_table<std::string, std::string> vs(*c, vs_name.name());
        auto tx = idem.begin();
        idem.create_tables(tx);
        vs.create_tables(tx);
        const auto claim = idem.claim(tx, scope, key, fingerprint, t0, t0 + 1s);
        REQUIRE(claim.claimed);
        CHECK(claim.record.token.value() > token);
        token = claim.record.token.value();
        CHECK(idem.purge(tx, t0 + 1s, 10) == 1);
        const auto written = vs.insert(tx, "balance", "1");
        REQUIRE(written.is_applied());
        CHECK(written.stamp().value() > stamp);
        stamp = written.stamp().value();
        REQUIRE(vs.erase(tx, "balance", written.stamp()).is_applied());
        tx.commit();
    }
    conns.clear();
    REQUIRE(std::system((std::string(script) + " restart " + dir).c_str()) == 0);
    my::connection conn(options());
    my::idempotency_table idem(conn, idem_name.name());
    my::versioned_table<std::string, std::string> vs(conn, vs_name.name());
    auto tx = idem.begin();
    const auto claim = idem.claim(tx, scope, key, fingerprint, t0, t0 + 1s);
    REQUIRE(claim.claimed);
    CHECK(claim.record.token.value() > token);
    const auto written = vs.insert(tx, "balance", "2");
    REQUIRE(written.is_applied());
    CHECK(written.stamp().value() > stamp);
    tx.commit();
}

TEST_CASE("mysql: delivering an empty batch answers nothing and changes nothing",
          "[mysql][outbox]") {
    for (const auto retention :
         {settle::outbox_retention::keep, settle::outbox_retention::delete_on_delivery}) {
        scratch_table name("outbox");
        my::connection conn(options());
        my::outbox_table store(conn, name.name(), retention);
        create_tables(store);
        auto tx = store.begin();
        REQUIRE(store.append(tx, message_of(1), t0).is_appended());
        REQUIRE(store.claim(tx, "relay", t0, t0 + 30s, 1).size() == 1);
        CHECK(store.mark_delivered(tx, std::span<const settle::outbox_claim>(), t0).empty());
        CHECK(store.find(tx, id_of(1))->status == settle::outbox_status::in_flight);
        tx.commit();
    }
}

TEST_CASE(
    "mysql: relays racing appenders never hand out a record of a key before an older one "
    "is delivered",
    "[mysql][outbox][concurrency]") {
    constexpr std::uint32_t per_appender = 60;
    const std::array<std::string, 3> keys{"k0", "k1", "k2"};
    scratch_table name("outbox");
    std::vector<std::unique_ptr<my::connection>> conns;
    std::vector<std::unique_ptr<my::outbox_table>> stores;
    for (int i = 0; i < 4; ++i) {
        conns.push_back(std::make_unique<my::connection>(options()));
        stores.push_back(std::make_unique<my::outbox_table>(*conns.back(), name.name()));
    }
    create_tables(*stores.front());

    // What has committed, as the threads saw it: appends are logged after
    // their commit, deliveries before theirs, so a claim that sees a record
    // delivered finds it logged.
    std::mutex m;
    std::map<std::string, std::map<std::uint64_t, bool>> log;  // key -> sequence -> delivered
    std::vector<std::string> violations;
    std::atomic<int> appending{2};
    std::vector<std::string> errors(4);

    std::vector<std::thread> threads;
    for (std::uint32_t a = 0; a < 2; ++a) {
        threads.emplace_back([&, a] {
            try {
                auto& store = *stores[a];
                for (std::uint32_t n = 0; n < per_appender; ++n) {
                    const std::string& key = keys[n % keys.size()];
                    auto tx = store.begin();
                    const auto sequence =
                        store.append(tx, message_of(a * 1000 + 3 * n, key), t0).sequence();
                    // More of the transaction after the keyed append: an append of
                    // the key on the other connection must wait for all of it.
                    for (std::uint32_t j = 1; j < 3; ++j) {
                        (void)store.append(tx, message_of(a * 1000 + 3 * n + j), t0);
                    }
                    tx.commit();
                    const std::lock_guard<std::mutex> lock(m);
                    log[key].emplace(sequence, false);  // a relay may have logged it delivered
                }
            } catch (const std::exception& e) {
                errors[a] = e.what();
            }
            --appending;
        });
    }
    for (std::uint32_t r = 2; r < 4; ++r) {
        threads.emplace_back([&, r] {
            try {
                auto& store = *stores[r];
                int idle = 0;
                for (std::uint32_t pass = 0; idle < 3; ++pass) {
                    std::vector<settle::outbox_record> claimed;
                    {
                        auto tx = store.begin();
                        claimed = store.claim(tx, "relay-" + std::to_string(r), t0, t0 + 1h, 4);
                        tx.commit();
                    }
                    if (claimed.empty()) {
                        idle += appending.load() == 0 ? 1 : 0;
                        std::this_thread::yield();
                        continue;
                    }
                    idle = 0;
                    {
                        const std::lock_guard<std::mutex> lock(m);
                        for (const auto& rec : claimed) {
                            if (rec.ordering_key.empty()) {
                                continue;
                            }
                            for (const auto& [sequence, delivered] : log[rec.ordering_key]) {
                                if (sequence < rec.sequence && !delivered) {
                                    violations.push_back(
                                        rec.ordering_key + " " + std::to_string(rec.sequence) +
                                        " claimed before " + std::to_string(sequence));
                                }
                            }
                        }
                    }
                    // Every third pass gives its first record back undelivered.
                    auto tx = store.begin();
                    std::vector<settle::outbox_claim> batch;
                    for (std::size_t i = 0; i < claimed.size(); ++i) {
                        if (i == 0 && pass % 3 == 0) {
                            if (store.release(tx, claimed[i].id, claimed[i].claim_token) !=
                                settle::fenced_write::applied) {
                                throw std::runtime_error("a release was stale");
                            }
                        } else {
                            batch.push_back({claimed[i].id, claimed[i].claim_token});
                        }
                    }
                    const auto writes = store.mark_delivered(tx, batch, t0);
                    {
                        const std::lock_guard<std::mutex> lock(m);
                        for (std::size_t i = 0; i < batch.size(); ++i) {
                            if (writes[i] != settle::fenced_write::applied) {
                                throw std::runtime_error("a delivery was stale");
                            }
                            const auto& rec =
                                *std::find_if(claimed.begin(), claimed.end(),
                                              [&](const auto& x) { return x.id == batch[i].id; });
                            log[rec.ordering_key][rec.sequence] = true;
                        }
                    }
                    tx.commit();
                }
            } catch (const std::exception& e) {
                errors[r] = e.what();
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    for (const auto& e : errors) {
        CHECK(e == std::string());
    }
    for (const auto& v : violations) {
        FAIL_CHECK(v);
    }
    std::size_t delivered = 0;
    for (const auto& [key, records] : log) {
        for (const auto& [sequence, done] : records) {
            delivered += done ? 1 : 0;
        }
    }
    CHECK(delivered == 2 * 3 * per_appender);
    auto tx = stores.front()->begin();
    CHECK(stores.front()->statistics(tx, t0).backlog == 0);
    tx.commit();
}

TEST_CASE("mysql: after a deadlock met on native(), commit is aborted, not a silent no-op",
          "[mysql][concurrency]") {
    scratch_table name("vs");
    my::connection first_conn(options());
    my::connection second_conn(options());
    my::versioned_table<std::string, std::string> first(first_conn, name.name());
    my::versioned_table<std::string, std::string> second(second_conn, name.name());
    create_tables(first);
    const std::string table = "`" + name.name() + "`";
    {
        auto tx = first.begin();
        REQUIRE(first.insert(tx, "a", "0").is_applied());
        REQUIRE(first.insert(tx, "b", "0").is_applied());
        tx.commit();
    }
    std::atomic<int> locked{0};
    std::atomic<int> victims{0};
    std::atomic<int> refused{0};
    const auto business = [&](my::versioned_table<std::string, std::string>& store,
                              const std::string& mine, const std::string& theirs) {
        auto tx = store.begin();
        run(tx.native(), "UPDATE " + table + " SET value = 'x' WHERE `key` = '" + mine + "'");
        ++locked;
        while (locked.load() < 2) {
            std::this_thread::yield();
        }
        const std::string sql =
            "UPDATE " + table + " SET value = 'y' WHERE `key` = '" + theirs + "'";
        if (mysql_real_query(tx.native(), sql.data(), sql.size()) != 0) {
            ++victims;  // the user's own statement met the deadlock
        }
        try {
            tx.commit();
        } catch (const settle::error& e) {
            if (e.code() == settle::errc::aborted) {
                ++refused;
            }
        }
    };
    std::thread other([&] { business(second, "b", "a"); });
    business(first, "a", "b");
    other.join();
    REQUIRE(victims == 1);
    CHECK(refused == 1);
}
