// The in-memory tables keep their undo records in storage they reuse: once a
// transaction has grown it, a write to an existing row, its commit and its
// rollback allocate nothing. This file replaces the global operator new of
// the core test binary to count calls made on the current thread. Clang's
// sanitizer runtimes define operator new themselves (a replacement would not
// link), so under them this file is empty; GCC's ASan build and the plain
// Clang build run it.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SETTLE_CORE_TEST_SKIP_ALLOCATION_COUNT 1
#endif
#endif

#ifndef SETTLE_CORE_TEST_SKIP_ALLOCATION_COUNT

#include <settle/stores/memory.hpp>

#include "settle_test.hpp"

#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

namespace {
thread_local std::uint64_t allocations = 0;
}  // namespace

// Every replaceable form but the aligned ones (which keep pairing with each other).
void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    return ::operator new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    ++allocations;
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    return ::operator new(size, tag);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

namespace memory = settle::memory;

namespace {

// Allocations made on this thread while f runs.
template <class F>
std::uint64_t allocations_during(F&& f) {
    const std::uint64_t before = allocations;
    f();
    return allocations - before;
}

}  // namespace

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

#endif  // SETTLE_CORE_TEST_SKIP_ALLOCATION_COUNT
