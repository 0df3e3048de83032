// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.

// Every conformance suite that applies, run against the SQLite backend: each
// case on a fresh database file.
#include <settle/stores/sqlite.hpp>
#include <settle/testing/idempotency_store_suite.hpp>
#include <settle/testing/inbox_store_suite.hpp>
#include <settle/testing/lease_store_suite.hpp>
#include <settle/testing/outbox_store_suite.hpp>
#include <settle/testing/versioned_store_suite.hpp>

#include "settle_test.hpp"
#include "temp_database.hpp"

#include <string>

namespace sqlite = settle::sqlite;

namespace {

// Creates a store's tables in a transaction of its own.
template <class Store>
void create(Store& store) {
    auto tx = store.begin();
    store.create_tables(tx);
    tx.commit();
}

struct versioned_fixture {
    settle_test::temp_database file;
    sqlite::connection conn{file.path()};
    // "values" is an SQL keyword: the name is quoted, never spliced bare.
    sqlite::versioned_table<std::string, std::string> store{conn, "values"};

    versioned_fixture() { create(store); }
    static std::string key(int i) { return "key-" + std::to_string(i); }
    static std::string value(int i) { return "value-" + std::to_string(i); }
};

struct lease_fixture {
    settle_test::temp_database file;
    sqlite::connection conn{file.path()};
    settle::manual_clock clock;
    sqlite::lease_table<std::string> leases{conn, "leases"};
    sqlite::fence_table<std::string> fences{conn, "fences"};

    lease_fixture() {
        create(leases);
        create(fences);
    }
    static std::string key(int i) { return "job-" + std::to_string(i); }
};

struct idempotency_fixture {
    settle_test::temp_database file;
    sqlite::connection conn{file.path()};
    sqlite::idempotency_table store{conn, "idempotency_keys"};

    idempotency_fixture() { create(store); }
};

struct outbox_fixture {
    settle_test::temp_database file;
    sqlite::connection conn{file.path()};
    sqlite::outbox_table store{conn, "outbox"};

    outbox_fixture() { create(store); }
};

struct inbox_fixture {
    settle_test::temp_database file;
    sqlite::connection conn{file.path()};
    sqlite::inbox_table store{conn, "inbox"};

    inbox_fixture() { create(store); }
};

}  // namespace

TEST_CASE("sqlite::versioned_table conforms to versioned_store", "[sqlite]") {
    STATIC_REQUIRE(settle::versioned_store<sqlite::versioned_table<std::string, std::string>>);
    for (const auto& c : settle::conformance::versioned_store_suite<versioned_fixture>) {
        INFO(std::string(c.name));
        versioned_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("sqlite::lease_table and fence_table conform to the lease suite", "[sqlite]") {
    STATIC_REQUIRE(settle::lease_store<sqlite::lease_table<std::string>>);
    for (const auto& c : settle::conformance::lease_store_suite<lease_fixture>) {
        INFO(std::string(c.name));
        lease_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("sqlite::idempotency_table conforms to idempotency_store", "[sqlite]") {
    for (const auto& c : settle::conformance::idempotency_store_suite<idempotency_fixture>) {
        INFO(std::string(c.name));
        idempotency_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("sqlite::outbox_table conforms to outbox_store", "[sqlite]") {
    for (const auto& c : settle::conformance::outbox_store_suite<outbox_fixture>) {
        INFO(std::string(c.name));
        outbox_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("sqlite::inbox_table conforms to inbox_store and purgeable_inbox_store", "[sqlite]") {
    for (const auto& c : settle::conformance::inbox_store_suite<inbox_fixture>) {
        INFO(std::string(c.name));
        inbox_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
    for (const auto& c : settle::conformance::inbox_purge_suite<inbox_fixture>) {
        INFO(std::string(c.name));
        inbox_fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}
