#include <settle/testing/conformance.hpp>

#include "settle_test.hpp"

#include <array>
#include <map>
#include <string>

// The kit, exercised on a toy concept: a counter store whose add() must be
// visible to get() and whose reset() must forget everything. One suite, run
// against a correct backend and a broken one.
namespace {
template <class Store>
struct counter_fixture {
    Store store;
};

template <class Store>
constexpr std::array<settle::conformance::test_case<counter_fixture<Store>>, 2> counter_suite{{
    {"add is visible to get",
     [](counter_fixture<Store>& f) {
         f.store.add("a", 2);
         f.store.add("a", 3);
         SETTLE_EXPECT(f.store.get("a") == 5);
         SETTLE_EXPECT(f.store.get("b") == 0, "an unknown key counts zero");
     }},
    {"reset forgets every key",
     [](counter_fixture<Store>& f) {
         f.store.add("a", 1);
         f.store.reset();
         SETTLE_EXPECT(f.store.get("a") == 0, "after reset");
     }},
}};

struct good_store {
    std::map<std::string, int> counts;
    void add(const std::string& key, int n) { counts[key] += n; }
    int get(const std::string& key) const {
        const auto it = counts.find(key);
        return it == counts.end() ? 0 : it->second;
    }
    void reset() { counts.clear(); }
};

struct forgetful_reset_store : good_store {
    void reset() {}  // breaks the promise
};
}  // namespace

TEST_CASE("a conforming backend passes every case of a suite", "[core]") {
    for (const auto& c : counter_suite<good_store>) {
        INFO(std::string(c.name));
        counter_fixture<good_store> fixture;
        CHECK_NOTHROW(c.run(fixture));
    }
}

TEST_CASE("a broken backend fails the case that checks the broken promise", "[core]") {
    const auto& suite = counter_suite<forgetful_reset_store>;
    counter_fixture<forgetful_reset_store> first;
    CHECK_NOTHROW(suite[0].run(first));

    counter_fixture<forgetful_reset_store> second;
    try {
        suite[1].run(second);
        FAIL("the broken reset passed");
    } catch (const settle::conformance::failure& e) {
        const std::string what = e.what();
        CHECK(what.find("conformance.cpp:") != std::string::npos);
        CHECK(what.find("expected f.store.get(\"a\") == 0 (after reset)") != std::string::npos);
    }
}
