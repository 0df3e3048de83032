// The in-memory tables keep their undo records in storage they reuse: once a
// transaction has grown it, a write to an existing row, its commit and its
// rollback allocate nothing.
#include "counting_new.hpp"

#if SETTLE_TEST_COUNTS_ALLOCATIONS

#include <settle/stores/memory.hpp>

#include "settle_test.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace memory = settle::memory;
using counting_new::allocations_during;

TEST_CASE("a write to an existing row allocates nothing once the undo storage has grown",
          "[core]") {
    memory::database db;
    memory::table<int, long> rows{db};
    memory::table<std::string, int> named{db};
    const std::string long_key(64, 'k');  // beyond the small-string buffer
    const auto writes = [&](bool keep) {
        auto tx = db.begin();
        rows.put(tx, 1, 10);
        rows.replace(tx, *rows.find(tx, 2), 20);
        named.put(tx, long_key, 1);
        CHECK(named.find(tx, std::string_view(long_key)) != nullptr);
        if (keep) {
            tx.commit();
        } else {
            tx.rollback();
        }
    };
    db.transact([&](memory::transaction& tx) {
        rows.put(tx, 1, 1);
        rows.put(tx, 2, 2);
        named.put(tx, long_key, 0);
    });
    writes(true);  // grows the undo storage
    CHECK(allocations_during([&] { writes(true); }) == 0);
    CHECK(allocations_during([&] { writes(false); }) == 0);
    db.transact([&](memory::transaction& tx) {
        CHECK(*rows.find(tx, 1) == 10);
        CHECK(*rows.find(tx, 2) == 20);
    });
}

TEST_CASE("a compare-and-set allocates nothing once the undo storage has grown", "[core]") {
    memory::database db;
    memory::versioned_table<int, long> table{db};
    settle::version_stamp stamp =
        db.transact([&](memory::transaction& tx) { return table.insert(tx, 7, 0).stamp(); });
    const auto compare_and_set = [&] {
        auto tx = db.begin();
        const auto written = table.compare_and_set(tx, 7, stamp, 1);
        tx.commit();
        REQUIRE(written.is_applied());
        stamp = written.stamp();
    };
    compare_and_set();
    CHECK(allocations_during(compare_and_set) == 0);
}

#endif  // SETTLE_TEST_COUNTS_ALLOCATIONS
