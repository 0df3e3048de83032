// The conformance suites of every store concept, run against the PostgreSQL
// backend: each case on fresh tables of its own, dropped afterwards.
#include <settle/testing/idempotency_store_suite.hpp>
#include <settle/testing/inbox_store_suite.hpp>
#include <settle/testing/lease_store_suite.hpp>
#include <settle/testing/outbox_store_suite.hpp>
#include <settle/testing/versioned_store_suite.hpp>

#include "mysql/mysql_test.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/stores/mysql.hpp>

#include <string>

namespace my = settle::mysql;
using mysql_test::create_tables;
using mysql_test::options;
using mysql_test::scratch_table;

namespace {

struct versioned_fixture {
    scratch_table table{"vs"};
    my::connection conn{options()};
    my::versioned_table<std::string, std::string> store{conn, table.name()};

    versioned_fixture() { create_tables(store); }
    static std::string key(int i) { return "key-" + std::to_string(i); }
    static std::string value(int i) { return "value-" + std::to_string(i); }
};

struct lease_fixture {
    settle::manual_clock clock;
    scratch_table lease_name{"lease"};
    scratch_table fence_name{"fence"};
    my::connection conn{options()};
    my::lease_table<std::string> leases{conn, lease_name.name()};
    my::fence_table<std::string> fences{conn, fence_name.name()};

    lease_fixture() {
        create_tables(leases);
        create_tables(fences);
    }
    static std::string key(int i) { return "job-" + std::to_string(i); }
};

struct idempotency_fixture {
    scratch_table table{"idem"};
    my::connection conn{options()};
    my::idempotency_table store{conn, table.name()};

    idempotency_fixture() { create_tables(store); }
};

struct outbox_fixture {
    scratch_table table{"outbox"};
    my::connection conn{options()};
    my::outbox_table store{conn, table.name()};

    outbox_fixture() { create_tables(store); }
};

struct inbox_fixture {
    scratch_table table{"inbox"};
    my::connection conn{options()};
    my::inbox_table store{conn, table.name()};

    inbox_fixture() { create_tables(store); }
};

template <class Fixture, class Suite>
void run_suite(const Suite& suite) {
    for (const auto& c : suite) {
        INFO(std::string(c.name));
        Fixture fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

}  // namespace

TEST_CASE("mysql::versioned_table passes the versioned store conformance suite",
          "[mysql][version]") {
    run_suite<versioned_fixture>(settle::conformance::versioned_store_suite<versioned_fixture>);
}

TEST_CASE("mysql lease and fence tables pass the lease store conformance suite",
          "[mysql][version]") {
    run_suite<lease_fixture>(settle::conformance::lease_store_suite<lease_fixture>);
}

TEST_CASE("mysql::idempotency_table passes the idempotency store conformance suite",
          "[mysql][idempotency]") {
    run_suite<idempotency_fixture>(
        settle::conformance::idempotency_store_suite<idempotency_fixture>);
}

TEST_CASE("mysql::outbox_table passes the outbox store conformance suite", "[mysql][outbox]") {
    run_suite<outbox_fixture>(settle::conformance::outbox_store_suite<outbox_fixture>);
}

TEST_CASE("mysql::inbox_table passes the inbox store conformance suites", "[mysql][outbox]") {
    run_suite<inbox_fixture>(settle::conformance::inbox_store_suite<inbox_fixture>);
    run_suite<inbox_fixture>(settle::conformance::inbox_purge_suite<inbox_fixture>);
}
