// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_RECONCILE_STORE_SUITE_HPP
#define SETTLE_TESTING_RECONCILE_STORE_SUITE_HPP

// The conformance suite of settle::reconcile_store: every promise the concept
// makes, as cases any backend can be run against (docs/conformance.md).
//
// The fixture is yours: a struct with a member `store` that models the
// concept and starts empty. Build a fresh fixture for every case. The cases
// pass explicit times and open one transaction at a time.

#include <settle/version.hpp>

#include <settle/reconcile.hpp>
#include <settle/testing/conformance.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

namespace detail {

inline stored_time reconcile_at(int seconds) {
    return stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)) +
           std::chrono::seconds(seconds);
}

// The ids due at `now` for records uncertain since before `before`, in the
// store's order, read in a transaction of their own.
template <class S>
std::vector<std::string> reconcile_due(S& s, int before, int now, std::size_t limit = 100) {
    auto tx = s.begin();
    std::vector<std::string> ids;
    for (const uncertain_record& r : s.due(tx, reconcile_at(before), reconcile_at(now), limit)) {
        ids.push_back(r.id);
    }
    tx.commit();
    return ids;
}

template <class S, class F>
auto reconcile_in(S& s, F f) {
    auto tx = s.begin();
    auto out = f(tx);
    tx.commit();
    return out;
}

}  // namespace detail

template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 7> reconcile_store_suite{{
    {"an id longer than settle::max_key_size is refused, the transaction kept",
     [](Fixture& f) {
         using namespace detail;
         const std::string longest(max_key_size, 'o');
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.watch(tx, longest, reconcile_at(10)));
         SETTLE_EXPECT(refused_as_invalid([&] {
                           (void)f.store.watch(tx, std::string(max_key_size + 1, 'o'),
                                               reconcile_at(10));
                       }),
                       "a watch throws settle::error (errc::invalid_argument)");
         tx.commit();
         SETTLE_EXPECT(reconcile_due(f.store, 11, 10) == std::vector<std::string>{longest},
                       "the watch made before the refusal committed");
     }},
    {"a record is watched once and due from the time it was watched",
     [](Fixture& f) {
         using namespace detail;
         static_assert(settle::reconcile_store<std::remove_cvref_t<decltype(f.store)>>);
         SETTLE_EXPECT(reconcile_in(
             f.store, [&](auto& tx) { return f.store.watch(tx, "o1", reconcile_at(10)); }));
         SETTLE_EXPECT(
             !reconcile_in(f.store,
                           [&](auto& tx) { return f.store.watch(tx, "o1", reconcile_at(20)); }),
             "watched already");
         auto tx = f.store.begin();
         const auto due = f.store.due(tx, reconcile_at(11), reconcile_at(10), 10);
         tx.commit();
         SETTLE_EXPECT(due.size() == 1);
         SETTLE_EXPECT(due[0] == (uncertain_record{"o1", reconcile_at(10), 0, reconcile_at(10)}),
                       "the second watch changed nothing");
     }},
    {"due keeps to the cut, the check time and the limit, longest uncertain first",
     [](Fixture& f) {
         using namespace detail;
         for (const auto& watched : {std::pair{"c", 30}, std::pair{"a", 10}, std::pair{"b", 20}}) {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.watch(tx, watched.first, reconcile_at(watched.second)));
             tx.commit();
         }
         SETTLE_EXPECT(reconcile_due(f.store, 20, 100) == std::vector<std::string>{"a"},
                       "uncertain since strictly before the cut");
         SETTLE_EXPECT(
             (reconcile_due(f.store, 31, 100) == std::vector<std::string>{"a", "b", "c"}));
         SETTLE_EXPECT((reconcile_due(f.store, 31, 100, 2) == std::vector<std::string>{"a", "b"}));
         SETTLE_EXPECT(reconcile_due(f.store, 31, 100, 0).empty());
         SETTLE_EXPECT(reconcile_due(f.store, 31, 15) == std::vector<std::string>{"a"},
                       "not before its next check");
     }},
    {"reschedule records the unknown answers and moves the next check",
     [](Fixture& f) {
         using namespace detail;
         (void)reconcile_in(f.store,
                            [&](auto& tx) { return f.store.watch(tx, "o1", reconcile_at(0)); });
         SETTLE_EXPECT(reconcile_in(
             f.store, [&](auto& tx) { return f.store.reschedule(tx, "o1", 2, reconcile_at(50)); }));
         SETTLE_EXPECT(reconcile_due(f.store, 100, 49).empty());
         auto tx = f.store.begin();
         const auto due = f.store.due(tx, reconcile_at(100), reconcile_at(50), 10);
         tx.commit();
         SETTLE_EXPECT(due.size() == 1);
         SETTLE_EXPECT(due[0] == (uncertain_record{"o1", reconcile_at(0), 2, reconcile_at(50)}));
         SETTLE_EXPECT(!reconcile_in(f.store,
                                     [&](auto& tx2) {
                                         return f.store.reschedule(tx2, "o2", 1, reconcile_at(50));
                                     }),
                       "not watched");
     }},
    {"an escalated record is kept aside and never due again",
     [](Fixture& f) {
         using namespace detail;
         (void)reconcile_in(f.store,
                            [&](auto& tx) { return f.store.watch(tx, "o1", reconcile_at(0)); });
         SETTLE_EXPECT(reconcile_in(f.store, [&](auto& tx) {
             return f.store.escalate(tx, "o1", "still unknown", reconcile_at(5));
         }));
         SETTLE_EXPECT(reconcile_due(f.store, 1000, 1000).empty());
         SETTLE_EXPECT(!reconcile_in(f.store, [&](auto& tx) {
             return f.store.escalate(tx, "o1", "again", reconcile_at(6));
         }));
         SETTLE_EXPECT(!reconcile_in(f.store,
                                     [&](auto& tx) {
                                         return f.store.reschedule(tx, "o1", 1, reconcile_at(6));
                                     }),
                       "an escalated record is not rescheduled");
         SETTLE_EXPECT(
             !reconcile_in(f.store,
                           [&](auto& tx) { return f.store.watch(tx, "o1", reconcile_at(7)); }),
             "an escalated record is still kept");
         SETTLE_EXPECT(reconcile_in(f.store, [&](auto& tx) { return f.store.forget(tx, "o1"); }),
                       "an operator forgets it");
     }},
    {"forget removes a record once",
     [](Fixture& f) {
         using namespace detail;
         (void)reconcile_in(f.store,
                            [&](auto& tx) { return f.store.watch(tx, "o1", reconcile_at(0)); });
         SETTLE_EXPECT(reconcile_in(f.store, [&](auto& tx) { return f.store.forget(tx, "o1"); }));
         SETTLE_EXPECT(!reconcile_in(f.store, [&](auto& tx) { return f.store.forget(tx, "o1"); }));
         SETTLE_EXPECT(reconcile_due(f.store, 1000, 1000).empty());
         SETTLE_EXPECT(!reconcile_in(f.store, [&](auto& tx) {
             return f.store.escalate(tx, "o1", "gone", reconcile_at(1));
         }));
     }},
    {"a rolled back watch is forgotten",
     [](Fixture& f) {
         using namespace detail;
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.watch(tx, "o1", reconcile_at(0)));
         }
         SETTLE_EXPECT(reconcile_due(f.store, 1000, 1000).empty());
         SETTLE_EXPECT(reconcile_in(
             f.store, [&](auto& tx) { return f.store.watch(tx, "o1", reconcile_at(0)); }));
     }},
}};

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_RECONCILE_STORE_SUITE_HPP
