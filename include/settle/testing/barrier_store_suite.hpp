// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_BARRIER_STORE_SUITE_HPP
#define SETTLE_TESTING_BARRIER_STORE_SUITE_HPP

// The conformance suites of settle::barrier_store and
// settle::purgeable_barrier_store: every promise the concepts make, as cases
// any backend can be run against (docs/conformance.md). barrier_store_suite
// checks every phase on every state of a branch; barrier_purge_suite, for a
// backend that settle purges, checks purge.
//
// The fixture is yours: a struct with a member `store` that models the
// concept and starts empty. Build a fresh fixture for every case. The cases
// pass explicit times and open one transaction at a time.

#include <settle/version.hpp>

#include <settle/barrier.hpp>
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

inline stored_time barrier_at(int seconds) {
    return stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1)) +
           std::chrono::seconds(seconds);
}

// One phase in a transaction of its own, committed.
template <class S>
barrier_outcome barrier_enter(S& s, std::string_view xid, std::string_view branch,
                              barrier_phase phase, int at = 0) {
    auto tx = s.begin();
    const barrier_outcome o = s.enter(tx, xid, branch, phase, barrier_at(at));
    tx.commit();
    return o;
}

// What a phase would answer, without keeping it: the transaction is
// destroyed uncommitted, which rolls it back.
template <class S>
barrier_outcome barrier_peek(S& s, std::string_view xid, std::string_view branch,
                             barrier_phase phase) {
    auto tx = s.begin();
    return s.enter(tx, xid, branch, phase, barrier_at(999999));
}

// Brings branch (xid, "b") to a state by committed phases: "" (none),
// "tried", "confirmed", "cancelled" (after a try) or "marked" (empty cancel).
template <class S>
void barrier_prepare(S& s, std::string_view xid, std::string_view state) {
    using p = barrier_phase;
    if (state == "tried" || state == "confirmed" || state == "cancelled") {
        SETTLE_EXPECT(barrier_enter(s, xid, "b", p::try_phase) == barrier_outcome::entered);
    }
    if (state == "confirmed") {
        SETTLE_EXPECT(barrier_enter(s, xid, "b", p::confirm) == barrier_outcome::entered);
    }
    if (state == "cancelled") {
        SETTLE_EXPECT(barrier_enter(s, xid, "b", p::cancel) == barrier_outcome::entered);
    }
    if (state == "marked") {
        SETTLE_EXPECT(barrier_enter(s, xid, "b", p::cancel) == barrier_outcome::empty_cancel);
    }
}

}  // namespace detail

/// The cases of enter, each with the promise it checks as its name.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 10> barrier_store_suite{{
    {"a transaction or branch id longer than settle::max_key_size is refused, the transaction kept",
     [](Fixture& f) {
         using namespace detail;
         const std::string longest(max_key_size, 'x');
         const std::string longer(max_key_size + 1, 'x');
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.enter(tx, longest, longest, barrier_phase::try_phase,
                                     barrier_at(0)) == barrier_outcome::entered);
         SETTLE_EXPECT(refused_as_invalid([&] {
                           (void)f.store.enter(tx, longer, "b", barrier_phase::try_phase,
                                               barrier_at(0));
                       }),
                       "an enter throws settle::error (errc::invalid_argument)");
         SETTLE_EXPECT(refused_as_invalid([&] {
                           (void)f.store.enter(tx, "x", longer, barrier_phase::cancel,
                                               barrier_at(0));
                       }),
                       "an enter throws settle::error (errc::invalid_argument)");
         tx.commit();
         SETTLE_EXPECT(barrier_peek(f.store, longest, longest, barrier_phase::try_phase) ==
                           barrier_outcome::duplicate,
                       "the try made before the refusals committed");
     }},
    {"every phase on every state answers the documented outcome",
     [](Fixture& f) {
         using namespace detail;
         using o = barrier_outcome;
         using p = barrier_phase;
         static_assert(settle::barrier_store<std::remove_cvref_t<decltype(f.store)>>);
         struct row {
             std::string_view state;
             o try_phase, confirm, cancel;
         };
         constexpr std::array<row, 5> table{{
             {"", o::entered, o::not_tried, o::empty_cancel},
             {"tried", o::duplicate, o::entered, o::entered},
             {"confirmed", o::duplicate, o::duplicate, o::branch_confirmed},
             {"cancelled", o::branch_cancelled, o::branch_cancelled, o::duplicate},
             {"marked", o::hanging, o::branch_cancelled, o::duplicate},
         }};
         for (const row& r : table) {
             const std::string xid = "x-" + std::string(r.state);
             barrier_prepare(f.store, xid, r.state);
             SETTLE_EXPECT(barrier_peek(f.store, xid, "b", p::try_phase) == r.try_phase,
                           std::string(r.state));
             SETTLE_EXPECT(barrier_peek(f.store, xid, "b", p::confirm) == r.confirm,
                           std::string(r.state));
             SETTLE_EXPECT(barrier_peek(f.store, xid, "b", p::cancel) == r.cancel,
                           std::string(r.state));
         }
     }},
    {"confirm is idempotent and then refuses a cancel",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         detail::barrier_prepare(f.store, "x", "tried");
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::confirm) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::confirm) == barrier_outcome::duplicate);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::cancel) ==
                       barrier_outcome::branch_confirmed);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::confirm) == barrier_outcome::duplicate,
                       "a refused cancel changed nothing");
     }},
    {"cancel is idempotent and then refuses a confirm",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         detail::barrier_prepare(f.store, "x", "tried");
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::cancel) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::cancel) == barrier_outcome::duplicate);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::confirm) ==
                       barrier_outcome::branch_cancelled);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::cancel) == barrier_outcome::duplicate,
                       "a refused confirm changed nothing");
     }},
    {"an empty cancel leaves a marker that refuses the late try for good",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::cancel) ==
                       barrier_outcome::empty_cancel);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::try_phase) == barrier_outcome::hanging);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::try_phase) == barrier_outcome::hanging,
                       "a refused try recorded nothing");
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::cancel) == barrier_outcome::duplicate);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::confirm) ==
                       barrier_outcome::branch_cancelled);
     }},
    {"a confirm with no try records nothing",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::confirm) == barrier_outcome::not_tried);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::try_phase) == barrier_outcome::entered,
                       "the try still enters");
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::confirm) == barrier_outcome::entered);
     }},
    {"branches are apart: by transaction id and branch id, compared exactly",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         SETTLE_EXPECT(barrier_enter(f.store, "x", "b", p::cancel) ==
                       barrier_outcome::empty_cancel);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "c", p::try_phase) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_enter(f.store, "y", "b", p::try_phase) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_enter(f.store, "X", "b", p::try_phase) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_enter(f.store, "x", "B", p::try_phase) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_enter(f.store, "ab", "c", p::try_phase) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_enter(f.store, "a", "bc", p::try_phase) == barrier_outcome::entered,
                       "the pair is two fields, not their concatenation");
         SETTLE_EXPECT(barrier_peek(f.store, "x", "b", p::try_phase) == barrier_outcome::hanging);
     }},
    {"a rolled back phase is forgotten",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         SETTLE_EXPECT(barrier_peek(f.store, "x", "b", p::cancel) == barrier_outcome::empty_cancel);
         SETTLE_EXPECT(barrier_peek(f.store, "x", "b", p::try_phase) == barrier_outcome::entered,
                       "a rolled back empty cancel leaves no marker");
         detail::barrier_prepare(f.store, "x", "tried");
         SETTLE_EXPECT(barrier_peek(f.store, "x", "b", p::confirm) == barrier_outcome::entered);
         SETTLE_EXPECT(barrier_peek(f.store, "x", "b", p::cancel) == barrier_outcome::entered,
                       "a rolled back confirm leaves the branch tried");
     }},
    {"a transaction sees its own phases",
     [](Fixture& f) {
         using p = barrier_phase;
         auto tx = f.store.begin();
         const stored_time t = detail::barrier_at(0);
         SETTLE_EXPECT(f.store.enter(tx, "x", "b", p::try_phase, t) == barrier_outcome::entered);
         SETTLE_EXPECT(f.store.enter(tx, "x", "b", p::try_phase, t) == barrier_outcome::duplicate);
         SETTLE_EXPECT(f.store.enter(tx, "x", "b", p::confirm, t) == barrier_outcome::entered);
         SETTLE_EXPECT(f.store.enter(tx, "x", "b", p::cancel, t) ==
                       barrier_outcome::branch_confirmed);
         SETTLE_EXPECT(f.store.enter(tx, "y", "b", p::cancel, t) == barrier_outcome::empty_cancel);
         SETTLE_EXPECT(f.store.enter(tx, "y", "b", p::try_phase, t) == barrier_outcome::hanging);
         tx.commit();
     }},
    {"ids are kept byte for byte, long ones too",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         const std::string long_id(300, 'x');
         const std::string quote = "it's \"a\" branch; --";
         SETTLE_EXPECT(barrier_enter(f.store, long_id, quote, p::cancel) ==
                       barrier_outcome::empty_cancel);
         SETTLE_EXPECT(barrier_enter(f.store, long_id, quote, p::try_phase) ==
                       barrier_outcome::hanging);
         SETTLE_EXPECT(barrier_enter(f.store, long_id.substr(1), quote, p::try_phase) ==
                       barrier_outcome::entered);
     }},
}};

/// The cases of purge, for a settle::purgeable_barrier_store.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 3> barrier_purge_suite{{
    {"purge removes ended branches and markers changed before the cut, up to the limit",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         static_assert(settle::purgeable_barrier_store<std::remove_cvref_t<decltype(f.store)>>);
         (void)barrier_enter(f.store, "confirmed", "b", p::try_phase, 1);
         (void)barrier_enter(f.store, "confirmed", "b", p::confirm, 10);
         (void)barrier_enter(f.store, "cancelled", "b", p::try_phase, 1);
         (void)barrier_enter(f.store, "cancelled", "b", p::cancel, 10);
         (void)barrier_enter(f.store, "marked", "b", p::cancel, 10);
         (void)barrier_enter(f.store, "late", "b", p::cancel, 20);
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.purge(tx, barrier_at(20), 0) == 0);
         SETTLE_EXPECT(f.store.purge(tx, barrier_at(20), 2) == 2, "bounded by the limit");
         SETTLE_EXPECT(f.store.purge(tx, barrier_at(20), 2) == 1, "the third ended before 20");
         SETTLE_EXPECT(f.store.purge(tx, barrier_at(20), 2) == 0,
                       "the branch marked at 20 is not before the cut");
         tx.commit();
         SETTLE_EXPECT(barrier_peek(f.store, "late", "b", p::try_phase) ==
                       barrier_outcome::hanging);
         SETTLE_EXPECT(
             barrier_peek(f.store, "marked", "b", p::try_phase) == barrier_outcome::entered,
             "a purged marker is gone");
         SETTLE_EXPECT(barrier_peek(f.store, "confirmed", "b", p::confirm) ==
                       barrier_outcome::not_tried);
     }},
    {"purge never removes a branch still in its try",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         (void)barrier_enter(f.store, "x", "b", p::try_phase, 1);
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.purge(tx, barrier_at(1000), 10) == 0);
         tx.commit();
         SETTLE_EXPECT(barrier_peek(f.store, "x", "b", p::cancel) == barrier_outcome::entered,
                       "its cancel still undoes the try");
     }},
    {"an ended branch is kept from the time it ended, not the time it was tried",
     [](Fixture& f) {
         using namespace detail;
         using p = barrier_phase;
         (void)barrier_enter(f.store, "x", "b", p::try_phase, 1);
         (void)barrier_enter(f.store, "x", "b", p::cancel, 100);
         (void)barrier_enter(f.store, "x", "b", p::cancel, 200);
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.purge(tx, barrier_at(100), 10) == 0,
                       "cancelled at 100, and a duplicate does not move the time");
         SETTLE_EXPECT(f.store.purge(tx, barrier_at(101), 10) == 1);
         tx.commit();
     }},
}};

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_BARRIER_STORE_SUITE_HPP
