// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_SAGA_STORE_SUITE_HPP
#define SETTLE_TESTING_SAGA_STORE_SUITE_HPP

// The conformance suites of settle::saga_store and
// settle::purgeable_saga_store: every promise the concepts make, as cases any
// backend can be run against (docs/conformance.md). saga_store_suite checks
// the saga store; saga_purge_suite, for a backend that settle purges, checks
// purge.
//
// The fixture is yours: a struct with a member `store` that models the
// concept and starts empty. Build a fresh fixture for every case. The cases
// pass explicit times and open one transaction at a time.

#include <settle/version.hpp>

#include <settle/saga.hpp>
#include <settle/testing/conformance.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

namespace detail {

inline stored_time saga_at(int seconds) {
    return stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)) +
           std::chrono::seconds(seconds);
}

template <class S, class F>
auto saga_in(S& s, F f) {
    auto tx = s.begin();
    auto out = f(tx);
    tx.commit();
    return out;
}

template <class S>
std::optional<saga_record> saga_load(S& s, std::string_view id) {
    return saga_in(s, [&](auto& tx) { return s.load(tx, id); });
}

template <class S>
bool saga_create(S& s, std::string_view id, std::string_view type, int next_run_at) {
    return saga_in(s, [&](auto& tx) {
        return s.create(tx, id, type, std::string_view("in\0put", 6), saga_at(next_run_at));
    });
}

// The ids due at `now` for `type`, in the store's order.
template <class S>
std::vector<std::string> saga_due(S& s, std::string_view type, int now, std::size_t limit = 100) {
    std::vector<std::string> ids;
    for (const saga_record& r :
         saga_in(s, [&](auto& tx) { return s.due(tx, type, saga_at(now), limit); })) {
        ids.push_back(r.id);
    }
    return ids;
}

// Creates saga `id` of type "order" and moves it to `status`, with the next
// run (for an ended saga, when it ended) at `at`.
template <class S>
void saga_put(S& s, std::string_view id, saga_status status, int at) {
    (void)saga_create(s, id, "order", at);
    saga_record r = *saga_load(s, id);
    r.status = status;
    r.next_run_at = saga_at(at);
    SETTLE_EXPECT(saga_in(s, [&](auto& tx) { return s.update(tx, r); }) == fenced_write::applied);
}

template <class S>
std::size_t saga_purge(S& s, int ended_before, std::size_t limit) {
    return saga_in(s, [&](auto& tx) { return s.purge(tx, saga_at(ended_before), limit); });
}

}  // namespace detail

/// The cases of the saga store.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 6> saga_store_suite{{
    {"an id or type longer than settle::max_key_size is refused, the transaction kept",
     [](Fixture& f) {
         using namespace detail;
         const std::string longest(max_key_size, 's');
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.create(tx, longest, longest, "", saga_at(0)));
         SETTLE_EXPECT(refused_as_invalid([&] {
                           (void)f.store.create(tx, std::string(max_key_size + 1, 's'), "t", "",
                                                saga_at(0));
                       }),
                       "a create throws settle::error (errc::invalid_argument)");
         SETTLE_EXPECT(refused_as_invalid([&] {
                           (void)f.store.create(tx, "s2", std::string(max_key_size + 1, 't'), "",
                                                saga_at(0));
                       }),
                       "a create throws settle::error (errc::invalid_argument)");
         tx.commit();
         SETTLE_EXPECT(saga_due(f.store, longest, 0) == std::vector<std::string>{longest},
                       "the create made before the refusals committed");
     }},
    {"a saga is created once, running from step 0 at the first version",
     [](Fixture& f) {
         using namespace detail;
         static_assert(settle::saga_store<std::remove_cvref_t<decltype(f.store)>>);
         SETTLE_EXPECT(saga_create(f.store, "s1", "order", 10));
         SETTLE_EXPECT(!saga_create(f.store, "s1", "other", 20), "kept already");
         saga_record expected;
         expected.id = "s1";
         expected.type = "order";
         expected.data = std::string("in\0put", 6);
         expected.next_run_at = saga_at(10);
         SETTLE_EXPECT(saga_load(f.store, "s1") == std::optional(expected),
                       "the second create changed nothing; the data is kept byte for byte");
         SETTLE_EXPECT(!saga_load(f.store, "s2"));
     }},
    {"update is a compare-and-set on the version",
     [](Fixture& f) {
         using namespace detail;
         (void)saga_create(f.store, "s1", "order", 10);
         saga_record r = *saga_load(f.store, "s1");
         saga_record changed = r;
         changed.status = saga_status::compensating;
         changed.step = 3;
         changed.attempts = 2;
         changed.next_run_at = saga_at(99);
         changed.last_error = "step `charge`: declined";
         changed.id = "s1";
         SETTLE_EXPECT(saga_in(f.store, [&](auto& tx) { return f.store.update(tx, changed); }) ==
                       fenced_write::applied);
         saga_record expected = changed;
         expected.version = r.version.next();
         SETTLE_EXPECT(saga_load(f.store, "s1") == std::optional(expected));
         changed.step = 1;
         SETTLE_EXPECT(saga_in(f.store, [&](auto& tx) { return f.store.update(tx, changed); }) ==
                           fenced_write::stale,
                       "the version it names is no longer current");
         SETTLE_EXPECT(saga_load(f.store, "s1") == std::optional(expected), "nothing changed");
         changed.id = "s2";
         SETTLE_EXPECT(saga_in(f.store, [&](auto& tx) { return f.store.update(tx, changed); }) ==
                           fenced_write::stale,
                       "no such saga");
     }},
    {"update keeps the id, type and data",
     [](Fixture& f) {
         using namespace detail;
         (void)saga_create(f.store, "s1", "order", 10);
         saga_record changed = *saga_load(f.store, "s1");
         changed.type = "other";
         changed.data = "changed";
         changed.step = 1;
         SETTLE_EXPECT(saga_in(f.store, [&](auto& tx) { return f.store.update(tx, changed); }) ==
                       fenced_write::applied);
         const saga_record r = *saga_load(f.store, "s1");
         SETTLE_EXPECT(r.type == "order" && r.data == std::string("in\0put", 6) && r.step == 1);
     }},
    {"due keeps to the type, the next run, the unended and the limit, earliest first",
     [](Fixture& f) {
         using namespace detail;
         (void)saga_create(f.store, "c", "order", 30);
         (void)saga_create(f.store, "a", "order", 10);
         (void)saga_create(f.store, "b", "order", 20);
         (void)saga_create(f.store, "x", "refund", 0);
         for (const auto& [id, status] :
              {std::pair{"d", saga_status::completed}, std::pair{"e", saga_status::compensated},
               std::pair{"g", saga_status::failed}, std::pair{"h", saga_status::compensating}}) {
             (void)saga_create(f.store, id, "order", 0);
             saga_record r = *saga_load(f.store, id);
             r.status = status;
             SETTLE_EXPECT(saga_in(f.store, [&](auto& tx) { return f.store.update(tx, r); }) ==
                           fenced_write::applied);
         }
         SETTLE_EXPECT((saga_due(f.store, "order", 20) == std::vector<std::string>{"h", "a", "b"}),
                       "at or before now, compensating included, ended left out");
         SETTLE_EXPECT((saga_due(f.store, "order", 100, 2) == std::vector<std::string>{"h", "a"}));
         SETTLE_EXPECT(saga_due(f.store, "order", 100, 0).empty());
         SETTLE_EXPECT(saga_due(f.store, "refund", 100) == std::vector<std::string>{"x"});
     }},
    {"a rolled back create or update leaves nothing",
     [](Fixture& f) {
         using namespace detail;
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.create(tx, "s1", "order", "", saga_at(0)));
         }
         SETTLE_EXPECT(!saga_load(f.store, "s1"));
         (void)saga_create(f.store, "s1", "order", 0);
         const saga_record r = *saga_load(f.store, "s1");
         {
             auto tx = f.store.begin();
             saga_record changed = r;
             changed.step = 1;
             SETTLE_EXPECT(f.store.update(tx, changed) == fenced_write::applied);
         }
         SETTLE_EXPECT(saga_load(f.store, "s1") == std::optional(r));
     }},
}};

/// The cases of purge, for a settle::purgeable_saga_store.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 3> saga_purge_suite{{
    {"purge removes completed and compensated sagas ended before the cut, up to the limit",
     [](Fixture& f) {
         using namespace detail;
         static_assert(settle::purgeable_saga_store<std::remove_cvref_t<decltype(f.store)>>);
         saga_put(f.store, "done", saga_status::completed, 10);
         saga_put(f.store, "undone", saga_status::compensated, 10);
         saga_put(f.store, "also", saga_status::completed, 19);
         saga_put(f.store, "late", saga_status::compensated, 20);
         SETTLE_EXPECT(saga_purge(f.store, 20, 0) == 0);
         SETTLE_EXPECT(saga_purge(f.store, 20, 2) == 2, "bounded by the limit");
         SETTLE_EXPECT(saga_purge(f.store, 20, 2) == 1, "the third ended before 20");
         SETTLE_EXPECT(saga_purge(f.store, 20, 2) == 0,
                       "the saga that ended at 20 is not before the cut");
         SETTLE_EXPECT(!saga_load(f.store, "done") && !saga_load(f.store, "undone") &&
                       !saga_load(f.store, "also"));
         SETTLE_EXPECT(saga_load(f.store, "late").has_value());
         SETTLE_EXPECT(saga_create(f.store, "done", "order", 0), "a purged id is free again");
     }},
    {"purge never removes a saga still going, or one set aside as failed",
     [](Fixture& f) {
         using namespace detail;
         saga_put(f.store, "running", saga_status::running, 1);
         saga_put(f.store, "compensating", saga_status::compensating, 1);
         saga_put(f.store, "failed", saga_status::failed, 1);
         SETTLE_EXPECT(saga_purge(f.store, 1000, 10) == 0);
         SETTLE_EXPECT(saga_load(f.store, "running") && saga_load(f.store, "compensating") &&
                       saga_load(f.store, "failed"));
         SETTLE_EXPECT((saga_due(f.store, "order", 1000) ==
                        std::vector<std::string>{"compensating", "running"}),
                       "both still due");
     }},
    {"a rolled back purge leaves every saga",
     [](Fixture& f) {
         using namespace detail;
         saga_put(f.store, "done", saga_status::completed, 10);
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.purge(tx, saga_at(100), 10) == 1);
         }
         SETTLE_EXPECT(saga_load(f.store, "done").has_value());
     }},
}};

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_SAGA_STORE_SUITE_HPP
