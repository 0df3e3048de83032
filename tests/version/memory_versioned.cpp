#include <settle/stores/memory_versioned.hpp>
#include <settle/testing/versioned_store_suite.hpp>
#include <settle/transaction.hpp>

#include "settle_test.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace memory = settle::memory;
using settle::version_stamp;
using settle::write_outcome;

namespace {

using string_table = memory::versioned_table<std::string, std::string>;

struct memory_fixture {
    memory::database db;
    string_table store{db};
    static std::string key(int i) { return "key-" + std::to_string(i); }
    static std::string value(int i) { return "value-" + std::to_string(i); }
};

struct int_fixture {
    memory::database db;
    memory::versioned_table<int, long> store{db};
    static int key(int i) { return i; }
    static long value(int i) { return 1000L + i; }
};

// A backend that forgets to compare the stamp: it passes everything but the
// cases that write with a stale stamp.
struct careless_store {
    using key_type = std::string;
    using value_type = std::string;
    using transaction = memory::transaction;

    memory::database* db;
    string_table rows{*db};

    transaction begin() { return rows.begin(); }
    std::optional<settle::versioned<std::string>> load(const transaction& tx,
                                                       const std::string& key) const {
        return rows.load(tx, key);
    }
    settle::write_result<std::string> insert(transaction& tx, const std::string& key,
                                             std::string value) {
        return rows.insert(tx, key, std::move(value));
    }
    settle::write_result<std::string> compare_and_set(transaction& tx, const std::string& key,
                                                      version_stamp, std::string value) {
        const auto current = rows.load(tx, key);
        if (!current) {
            return settle::write_result<std::string>::missing();
        }
        return rows.compare_and_set(tx, key, current->stamp, std::move(value));
    }
    settle::write_result<std::string> erase(transaction& tx, const std::string& key,
                                            version_stamp expected) {
        return rows.erase(tx, key, expected);
    }
};

struct careless_fixture {
    memory::database db;
    careless_store store{&db};
    static std::string key(int i) { return std::to_string(i); }
    static std::string value(int i) { return std::to_string(i); }
};

// Backends missing one operation each.
struct no_erase_store {
    using key_type = int;
    using value_type = int;
    struct transaction {
        void commit() {}
    };
    transaction begin() { return {}; }
    std::optional<settle::versioned<int>> load(transaction&, int) { return std::nullopt; }
    settle::write_result<int> insert(transaction&, int, int) {
        return settle::write_result<int>::missing();
    }
    settle::write_result<int> compare_and_set(transaction&, int, version_stamp, int) {
        return settle::write_result<int>::missing();
    }
};

struct full_store : no_erase_store {
    settle::write_result<int> erase(transaction&, int, version_stamp) {
        return settle::write_result<int>::missing();
    }
};

struct wrong_load_store : full_store {
    std::optional<int> load(transaction&, int) { return std::nullopt; }
};

}  // namespace

TEST_CASE("the versioned store concept names each operation", "[version]") {
    STATIC_REQUIRE(settle::versioned_store<string_table>);
    STATIC_REQUIRE(settle::versioned_store<memory::versioned_table<int, long>>);
    STATIC_REQUIRE(settle::versioned_store<full_store>);
    STATIC_REQUIRE(settle::versioned_reader<no_erase_store>);
    STATIC_REQUIRE_FALSE(settle::versioned_store<no_erase_store>);
    STATIC_REQUIRE_FALSE(settle::detail::vs_has_erase<no_erase_store>);
    STATIC_REQUIRE(settle::detail::vs_has_compare_and_set<no_erase_store>);
    STATIC_REQUIRE_FALSE(settle::versioned_reader<wrong_load_store>);
    STATIC_REQUIRE_FALSE(settle::detail::vs_has_load<wrong_load_store>);
    STATIC_REQUIRE_FALSE(settle::versioned_store<int>);
}

TEST_CASE("the in-memory versioned table conforms to versioned_store", "[version]") {
    for (const auto& c : settle::conformance::versioned_store_suite<memory_fixture>) {
        INFO(std::string(c.name));
        memory_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
    for (const auto& c : settle::conformance::versioned_store_suite<int_fixture>) {
        INFO(std::string(c.name));
        int_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("a backend that ignores the expected stamp fails the stale write cases", "[version]") {
    int failed = 0;
    for (const auto& c : settle::conformance::versioned_store_suite<careless_fixture>) {
        careless_fixture fixture;
        try {
            c.run(fixture);
        } catch (const settle::conformance::failure& e) {
            ++failed;
            const std::string name(c.name);
            INFO(name << ": " << e.what());
            CHECK((name.find("stale compare-and-set") != std::string::npos ||
                   name.find("never issued") != std::string::npos ||
                   name.find("across erase") != std::string::npos ||
                   name.find("other keys") != std::string::npos));
        }
    }
    CHECK(failed >= 2);
}

TEST_CASE("a versioned write commits or rolls back with the caller's own rows", "[version]") {
    memory::database db;
    memory::table<int, std::string> orders(db);
    memory::versioned_table<int, long> balances(db);
    version_stamp stamp = settle::in_transaction(balances, [&](memory::transaction& tx) {
        const auto inserted = balances.insert(tx, 7, 100);
        REQUIRE(inserted.is_applied());
        return inserted.stamp();
    });

    {
        auto tx = db.begin();
        orders.put(tx, 1, "placed");
        const auto paid = balances.compare_and_set(tx, 7, stamp, 60);
        REQUIRE(paid.is_applied());
        tx.rollback();
    }
    settle::in_transaction(balances, [&](memory::transaction& tx) {
        CHECK(orders.find(tx, 1) == nullptr);
        CHECK(balances.load(tx, 7) == std::optional(settle::versioned<long>{100, stamp}));
    });

    {
        auto tx = db.begin();
        orders.put(tx, 1, "placed");
        const auto paid = balances.compare_and_set(tx, 7, stamp, 60);
        REQUIRE(paid.is_applied());
        tx.commit();
        stamp = paid.stamp();
    }
    settle::in_transaction(balances, [&](memory::transaction& tx) {
        CHECK(*orders.find(tx, 1) == "placed");
        CHECK(balances.load(tx, 7) == std::optional(settle::versioned<long>{60, stamp}));
    });
}

TEST_CASE("a conflict in the in-memory table returns the current value", "[version]") {
    memory_fixture f;
    auto tx = f.store.begin();
    const auto first = f.store.insert(tx, "a", "one");
    const auto second = f.store.compare_and_set(tx, "a", first.stamp(), "two");
    const auto stale = f.store.compare_and_set(tx, "a", first.stamp(), "three");
    REQUIRE(stale.outcome() == write_outcome::conflict);
    CHECK(stale.stamp() == second.stamp());
    CHECK(stale.current_value() == std::optional<std::string>("two"));
    const auto twice = f.store.insert(tx, "a", "four");
    CHECK(twice.current_value() == std::optional<std::string>("two"));
    const auto stale_erase = f.store.erase(tx, "a", first.stamp());
    CHECK(stale_erase.current_value() == std::optional<std::string>("two"));
    tx.commit();
}

TEST_CASE("stamps of a rolled back write are never issued again", "[version]") {
    memory_fixture f;
    version_stamp abandoned(0);
    {
        auto tx = f.store.begin();
        abandoned = f.store.insert(tx, "a", "one").stamp();
    }
    auto tx = f.store.begin();
    const auto inserted = f.store.insert(tx, "a", "two");
    CHECK(inserted.stamp() > abandoned);
    CHECK(f.store.compare_and_set(tx, "a", abandoned, "three").outcome() ==
          write_outcome::conflict);
    tx.commit();
}

TEST_CASE("the in-memory versioned table lists rows in key order", "[version]") {
    memory_fixture f;
    auto tx = f.store.begin();
    (void)f.store.insert(tx, "b", "2");
    (void)f.store.insert(tx, "a", "1");
    std::string seen;
    f.store.for_each(tx, [&](const std::string& key, const settle::versioned<std::string>& v) {
        seen += key + "=" + v.value + ";";
    });
    CHECK(seen == "a=1;b=2;");
    CHECK(f.store.size(tx) == 2);
    tx.commit();
}

TEST_CASE("the in-memory versioned table refuses a foreign or ended transaction", "[version]") {
    memory_fixture f;
    memory::database other;
    auto foreign = other.begin();
    CHECK_THROWS_AS((void)f.store.load(foreign, "a"), settle::error);
    CHECK_THROWS_AS((void)f.store.insert(foreign, "a", "x"), settle::error);
    foreign.commit();
    auto tx = f.store.begin();
    tx.commit();
    CHECK_THROWS_AS((void)f.store.compare_and_set(tx, "a", version_stamp(1), "x"), settle::error);
    CHECK_THROWS_AS((void)f.store.erase(tx, "a", version_stamp(1)), settle::error);
    auto check = f.store.begin();
    CHECK(f.store.size(check) == 0);
    check.commit();
}
