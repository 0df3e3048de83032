// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_INBOX_STORE_SUITE_HPP
#define SETTLE_TESTING_INBOX_STORE_SUITE_HPP

// The conformance suites of settle::inbox_store and
// settle::purgeable_inbox_store: every promise the concepts make, as cases
// any backend can be run against (docs/conformance.md). inbox_store_suite
// checks marks; inbox_purge_suite, for a backend that settle purges, checks
// purge.
//
// The fixture is yours: a struct with a member `store` that models the
// concept and starts empty. Build a fresh fixture for every case. The cases
// pass explicit times and open one transaction at a time.

#include <settle/version.hpp>

#include <settle/inbox.hpp>
#include <settle/testing/conformance.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

namespace detail {

inline stored_time inbox_t0() {
    return std::chrono::sys_days(std::chrono::year(2024) / 1 / 1);
}

inline stored_time inbox_at(int seconds) {
    return inbox_t0() + std::chrono::seconds(seconds);
}

// One mark in a transaction of its own, committed.
template <class S>
inbox_mark inbox_mark_now(S& s, std::string_view consumer, std::string_view message_id,
                          stored_time now) {
    auto tx = s.begin();
    const inbox_mark m = s.mark(tx, consumer, message_id, now);
    tx.commit();
    return m;
}

// What a mark would answer, without keeping it: the transaction is destroyed
// uncommitted, which rolls it back.
template <class S>
inbox_mark inbox_peek(S& s, std::string_view consumer, std::string_view message_id) {
    auto tx = s.begin();
    return s.mark(tx, consumer, message_id, inbox_at(999999));
}

}  // namespace detail

/// The cases of mark, each with the promise it checks as its name.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 5> inbox_store_suite{{
    {"a consumer or message id longer than settle::max_key_size is refused, the transaction kept",
     [](Fixture& f) {
         using namespace detail;
         const std::string longest(max_key_size, 'm');
         const std::string longer(max_key_size + 1, 'm');
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.mark(tx, longest, longest, inbox_t0()) == inbox_mark::first_time);
         SETTLE_EXPECT(
             refused_as_invalid([&] { (void)f.store.mark(tx, longer, "m-1", inbox_t0()); }),
             "a mark throws settle::error (errc::invalid_argument)");
         SETTLE_EXPECT(
             refused_as_invalid([&] { (void)f.store.mark(tx, "billing", longer, inbox_t0()); }),
             "a mark throws settle::error (errc::invalid_argument)");
         tx.commit();
         SETTLE_EXPECT(inbox_peek(f.store, longest, longest) == inbox_mark::duplicate,
                       "the mark made before the refusals committed");
     }},
    {"the first mark of a message is first time and every later one a duplicate",
     [](Fixture& f) {
         using namespace detail;
         static_assert(settle::inbox_store<std::remove_cvref_t<decltype(f.store)>>);
         SETTLE_EXPECT(inbox_mark_now(f.store, "billing", "m-1", inbox_t0()) ==
                       inbox_mark::first_time);
         SETTLE_EXPECT(inbox_mark_now(f.store, "billing", "m-1", inbox_at(1)) ==
                       inbox_mark::duplicate);
         SETTLE_EXPECT(inbox_mark_now(f.store, "billing", "m-1", inbox_at(86400)) ==
                       inbox_mark::duplicate);
         SETTLE_EXPECT(inbox_mark_now(f.store, "billing", "m-2", inbox_at(2)) ==
                       inbox_mark::first_time);
     }},
    {"consumers keep their marks apart",
     [](Fixture& f) {
         using namespace detail;
         SETTLE_EXPECT(inbox_mark_now(f.store, "billing", "m-1", inbox_t0()) ==
                       inbox_mark::first_time);
         SETTLE_EXPECT(inbox_mark_now(f.store, "shipping", "m-1", inbox_t0()) ==
                       inbox_mark::first_time);
         SETTLE_EXPECT(
             inbox_mark_now(f.store, "Billing", "m-1", inbox_t0()) == inbox_mark::first_time,
             "names are compared exactly");
         SETTLE_EXPECT(inbox_mark_now(f.store, "a", "bc", inbox_t0()) == inbox_mark::first_time);
         SETTLE_EXPECT(inbox_mark_now(f.store, "ab", "c", inbox_t0()) == inbox_mark::first_time,
                       "the pair is two fields, not their concatenation");
         SETTLE_EXPECT(inbox_peek(f.store, "shipping", "m-1") == inbox_mark::duplicate);
     }},
    {"a rolled back mark is forgotten",
     [](Fixture& f) {
         using namespace detail;
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.mark(tx, "billing", "m-1", inbox_t0()) ==
                           inbox_mark::first_time);
         }
         SETTLE_EXPECT(
             inbox_mark_now(f.store, "billing", "m-1", inbox_at(1)) == inbox_mark::first_time,
             "a handler that failed is applied on redelivery");
     }},
    {"a transaction sees its own mark",
     [](Fixture& f) {
         using namespace detail;
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.mark(tx, "billing", "m-1", inbox_t0()) == inbox_mark::first_time);
         SETTLE_EXPECT(f.store.mark(tx, "billing", "m-1", inbox_t0()) == inbox_mark::duplicate);
         tx.commit();
     }},
}};

/// The cases of purge, for a settle::purgeable_inbox_store.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 3> inbox_purge_suite{{
    {"purge removes a consumer's marks applied before the cut up to the limit",
     [](Fixture& f) {
         using namespace detail;
         static_assert(settle::purgeable_inbox_store<std::remove_cvref_t<decltype(f.store)>>);
         (void)inbox_mark_now(f.store, "billing", "m-1", inbox_at(10));
         (void)inbox_mark_now(f.store, "billing", "m-2", inbox_at(10));
         (void)inbox_mark_now(f.store, "billing", "m-3", inbox_at(10));
         (void)inbox_mark_now(f.store, "billing", "m-4", inbox_at(20));
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.purge(tx, "billing", inbox_at(20), 0) == 0);
         SETTLE_EXPECT(f.store.purge(tx, "billing", inbox_at(20), 2) == 2, "bounded by the limit");
         SETTLE_EXPECT(f.store.purge(tx, "billing", inbox_at(20), 10) == 1,
                       "m-4 was applied at the cut");
         SETTLE_EXPECT(f.store.purge(tx, "billing", inbox_at(20), 10) == 0);
         tx.commit();
         SETTLE_EXPECT(inbox_peek(f.store, "billing", "m-4") == inbox_mark::duplicate);
         SETTLE_EXPECT(inbox_peek(f.store, "billing", "m-1") == inbox_mark::first_time,
                       "a purged mark is gone");
     }},
    {"purge removes no other consumer's marks",
     [](Fixture& f) {
         using namespace detail;
         for (const std::string_view consumer : {"billing", "shipping", "Billing", "bill"}) {
             (void)inbox_mark_now(f.store, consumer, "m-1", inbox_at(10));
             (void)inbox_mark_now(f.store, consumer, "m-2", inbox_at(10));
         }
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.purge(tx, "billing", inbox_at(20), 10) == 2,
                       "only billing's two marks");
         SETTLE_EXPECT(f.store.purge(tx, "billing", inbox_at(20), 10) == 0);
         tx.commit();
         SETTLE_EXPECT(inbox_peek(f.store, "billing", "m-1") == inbox_mark::first_time);
         for (const std::string_view consumer : {"shipping", "Billing", "bill"}) {
             SETTLE_EXPECT(inbox_peek(f.store, consumer, "m-1") == inbox_mark::duplicate,
                           "another consumer's marks live as long as its own retention says");
             SETTLE_EXPECT(inbox_peek(f.store, consumer, "m-2") == inbox_mark::duplicate);
         }
     }},
    {"a duplicate mark keeps the time the message was first applied",
     [](Fixture& f) {
         using namespace detail;
         (void)inbox_mark_now(f.store, "billing", "m-1", inbox_at(10));
         SETTLE_EXPECT(inbox_mark_now(f.store, "billing", "m-1", inbox_at(100)) ==
                       inbox_mark::duplicate);
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.purge(tx, "billing", inbox_at(11), 10) == 1,
                       "the mark keeps the time it was first applied");
         tx.commit();
     }},
}};

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_INBOX_STORE_SUITE_HPP
