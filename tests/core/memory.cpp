#include <settle/stores/memory.hpp>

#include "settle_test.hpp"

#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace memory = settle::memory;

namespace {
// A business table and its bookkeeping, as an order service would keep them.
struct shop {
    memory::database db;
    memory::table<int, std::string> orders{db};
    memory::table<int, int> outbox{db};
};
}  // namespace

TEST_CASE("a committed transaction keeps writes to every table", "[core]") {
    shop s;
    auto tx = s.db.begin();
    CHECK(s.orders.insert(tx, 1, "created"));
    CHECK(s.outbox.insert(tx, 100, 1));
    tx.commit();
    CHECK_FALSE(tx.open());

    s.db.transact([&](memory::transaction& read) {
        REQUIRE(s.orders.find(read, 1) != nullptr);
        CHECK(*s.orders.find(read, 1) == "created");
        CHECK(*s.outbox.find(read, 100) == 1);
    });
}

TEST_CASE("a rolled back transaction leaves every table as it was", "[core]") {
    shop s;
    s.db.transact([&](memory::transaction& tx) {
        s.orders.put(tx, 1, "created");
        s.orders.put(tx, 2, "paid");
    });

    auto tx = s.db.begin();
    s.orders.put(tx, 1, "paid");     // replace
    CHECK(s.orders.erase(tx, 2));    // erase
    s.orders.put(tx, 3, "created");  // new row
    CHECK(s.orders.insert(tx, 4, "created"));
    CHECK_FALSE(s.orders.insert(tx, 1, "ignored"));
    s.orders.put(tx, 3, "cancelled");  // the same row twice
    CHECK(s.outbox.insert(tx, 7, 3));
    CHECK(*s.orders.find(tx, 1) == "paid");
    CHECK(s.orders.find(tx, 2) == nullptr);
    tx.rollback();

    s.db.transact([&](memory::transaction& read) {
        CHECK(s.orders.size(read) == 2);
        CHECK(*s.orders.find(read, 1) == "created");
        CHECK(*s.orders.find(read, 2) == "paid");
        CHECK(s.orders.find(read, 3) == nullptr);
        CHECK(s.orders.find(read, 4) == nullptr);
        CHECK(s.outbox.size(read) == 0);
    });
}

TEST_CASE("a transaction destroyed while open rolls back", "[core]") {
    shop s;
    {
        auto tx = s.db.begin();
        s.orders.put(tx, 1, "created");
    }
    auto tx = s.db.begin();
    CHECK(s.orders.size(tx) == 0);
}

TEST_CASE("transact rolls back and rethrows when the work throws", "[core]") {
    shop s;
    CHECK_THROWS_AS(s.db.transact([&](memory::transaction& tx) {
        s.orders.put(tx, 1, "created");
        s.outbox.put(tx, 1, 1);
        throw std::runtime_error("payment service down");
    }),
                    std::runtime_error);
    const auto count = s.db.transact(
        [&](memory::transaction& tx) { return s.orders.size(tx) + s.outbox.size(tx); });
    CHECK(count == 0);
}

TEST_CASE("for_each visits rows in key order and can stop early", "[core]") {
    shop s;
    auto tx = s.db.begin();
    for (int key : {3, 1, 2}) {
        s.orders.put(tx, key, std::to_string(key));
    }
    std::vector<int> seen;
    s.orders.for_each(tx, [&](int key, const std::string&) { seen.push_back(key); });
    CHECK(seen == std::vector<int>{1, 2, 3});
    seen.clear();
    s.orders.for_each(tx, [&](int key, const std::string&) {
        seen.push_back(key);
        return key < 2;
    });
    CHECK(seen == std::vector<int>{1, 2});
}

TEST_CASE("tables hold move-only values and roll them back", "[core]") {
    memory::database db;
    memory::table<int, std::unique_ptr<int>> boxes(db);
    db.transact([&](memory::transaction& tx) { boxes.put(tx, 1, std::make_unique<int>(7)); });
    {
        auto tx = db.begin();
        boxes.put(tx, 1, std::make_unique<int>(8));
        boxes.erase(tx, 1);
    }
    auto tx = db.begin();
    REQUIRE(boxes.find(tx, 1) != nullptr);
    CHECK(**boxes.find(tx, 1) == 7);
}

TEST_CASE("replace writes the row find returned and rolls back like put", "[core]") {
    shop s;
    s.db.transact([&](memory::transaction& tx) { s.orders.put(tx, 1, "created"); });
    {
        auto tx = s.db.begin();
        const std::string* row = s.orders.find(tx, 1);
        REQUIRE(row != nullptr);
        s.orders.replace(tx, *row, "paid");
        CHECK(*s.orders.find(tx, 1) == "paid");
        CHECK(row == s.orders.find(tx, 1));  // in place: find's pointer stays valid
        s.orders.replace(tx, *row, "shipped");
    }
    s.db.transact([&](memory::transaction& tx) {
        CHECK(*s.orders.find(tx, 1) == "created");
        s.orders.replace(tx, *s.orders.find(tx, 1), "paid");
    });
    auto tx = s.db.begin();
    CHECK(*s.orders.find(tx, 1) == "paid");
}

TEST_CASE("one row written, erased and written again rolls back to where it was", "[core]") {
    shop s;
    s.db.transact([&](memory::transaction& tx) { s.orders.put(tx, 1, "created"); });
    {
        auto tx = s.db.begin();
        s.orders.put(tx, 1, "paid");
        CHECK(s.orders.erase(tx, 1));
        CHECK(s.orders.insert(tx, 1, "again"));
        s.orders.put(tx, 1, "again, paid");
        CHECK(s.orders.erase(tx, 1));
        s.orders.put(tx, 2, "other");
        CHECK(s.orders.erase(tx, 2));
    }
    auto tx = s.db.begin();
    CHECK(s.orders.size(tx) == 1);
    REQUIRE(s.orders.find(tx, 1) != nullptr);
    CHECK(*s.orders.find(tx, 1) == "created");
}

TEST_CASE("find and erase take any key the comparison accepts", "[core]") {
    memory::database db;
    memory::table<std::string, int> counts{db};
    db.transact([&](memory::transaction& tx) { CHECK(counts.insert(tx, "order-1", 1)); });
    auto tx = db.begin();
    const std::string_view key = "order-1";
    REQUIRE(counts.find(tx, key) != nullptr);
    CHECK(*counts.find(tx, key) == 1);
    CHECK(counts.find(tx, std::string_view("order-2")) == nullptr);
    CHECK(counts.erase(tx, key));
    CHECK_FALSE(counts.erase(tx, key));
    tx.rollback();
    auto read = db.begin();
    CHECK(counts.find(read, key) != nullptr);
    read.rollback();

    // A comparison that is not transparent takes what converts to the key.
    memory::table<std::string, int, std::less<std::string>> strict{db};
    auto write = db.begin();
    CHECK(strict.insert(write, "order-1", 1));
    CHECK(strict.find(write, "order-1") != nullptr);
    CHECK(strict.erase(write, "order-1"));
}

TEST_CASE("a transaction stays where it was begun", "[core]") {
    // Moved to another thread, a transaction could commit there and unlock a
    // mutex that thread does not own. It is built in place instead.
    STATIC_REQUIRE_FALSE(std::is_move_constructible_v<memory::transaction>);
    STATIC_REQUIRE_FALSE(std::is_move_assignable_v<memory::transaction>);
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<memory::transaction>);
    STATIC_REQUIRE(
        std::is_same_v<decltype(std::declval<memory::database&>().begin()), memory::transaction>);
    memory::database db;
    auto tx = db.begin();
    CHECK(tx.open());
    tx.commit();
}

TEST_CASE("misuse of a transaction is refused with a clear error", "[core]") {
    shop s;
    memory::database other;
    memory::table<int, int> elsewhere(other);

    auto tx = s.db.begin();
    try {
        (void)s.db.begin();
        FAIL("a second transaction on the same thread was started");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
        CHECK(std::string(e.what()).find("already has an open transaction") != std::string::npos);
    }
    try {
        elsewhere.put(tx, 1, 1);
        FAIL("a table accepted a transaction of another database");
    } catch (const settle::error& e) {
        CHECK(std::string(e.what()).find("memory::table::put: the transaction belongs to another "
                                         "database") != std::string::npos);
    }
    tx.commit();
    CHECK_THROWS_AS(tx.commit(), settle::error);
    try {
        (void)s.orders.find(tx, 1);
        FAIL("a table accepted an ended transaction");
    } catch (const settle::error& e) {
        CHECK(std::string(e.what()).find("memory::table::find: the transaction has ended") !=
              std::string::npos);
    }
}

TEST_CASE("concurrent transactions commit or roll back as wholes", "[core][concurrency]") {
    // Each transfer moves one unit from one account to another and writes one
    // outbox row; a third of them roll back. Readers check the invariants in
    // every state they can see: money is conserved and each committed
    // transfer left exactly one outbox row.
    memory::database db;
    memory::table<int, long> accounts(db);
    memory::table<int, int> outbox(db);
    constexpr int account_count = 8;
    constexpr long opening = 1000;
    db.transact([&](memory::transaction& tx) {
        for (int a = 0; a < account_count; ++a) {
            accounts.put(tx, a, opening);
        }
    });

    constexpr int writers = 2;
    constexpr int transfers = 2000;
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            std::mt19937 random(static_cast<unsigned>(w));
            std::uniform_int_distribution<int> pick(0, account_count - 1);
            for (int i = 0; i < transfers; ++i) {
                auto tx = db.begin();
                const int from = pick(random);
                const int to = pick(random);
                accounts.put(tx, from, *accounts.find(tx, from) - 1);
                accounts.put(tx, to, *accounts.find(tx, to) + 1);
                outbox.insert(tx, w * transfers + i, from);
                if (i % 3 == 0) {
                    tx.rollback();
                } else {
                    tx.commit();
                }
            }
        });
    }
    bool consistent = true;
    std::thread reader([&] {
        for (int i = 0; i < 500; ++i) {
            db.transact([&](memory::transaction& tx) {
                long total = 0;
                accounts.for_each(tx, [&](int, long balance) { total += balance; });
                consistent = consistent && total == account_count * opening;
            });
        }
    });
    for (auto& t : threads) {
        t.join();
    }
    reader.join();
    CHECK(consistent);
    db.transact([&](memory::transaction& tx) {
        long total = 0;
        accounts.for_each(tx, [&](int, long balance) { total += balance; });
        CHECK(total == account_count * opening);
        const auto committed =
            static_cast<std::size_t>(writers * (transfers - (transfers + 2) / 3));
        CHECK(outbox.size(tx) == committed);
    });
}
