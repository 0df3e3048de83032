// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_VERSIONED_STORE_SUITE_HPP
#define SETTLE_TESTING_VERSIONED_STORE_SUITE_HPP

// The conformance suite of settle::versioned_store (see docs/conformance.md).
//
// The fixture is a struct with
//   store      a fresh, empty backend (a data member)
//   key(i)     a key_type, distinct for distinct int i >= 0
//   value(i)   a value_type, distinct for distinct int i >= 0, with ==
// Each case begins its own transactions through store.begin() and never
// holds two at once.

#include <settle/version.hpp>

#include <settle/testing/conformance.hpp>
#include <settle/versioned.hpp>

#include <array>
#include <optional>
#include <string>
#include <type_traits>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

namespace detail {

template <class Fixture>
struct versioned_store_cases {
    using store_type = std::remove_reference_t<decltype(std::declval<Fixture&>().store)>;
    static_assert(::settle::detail::check_versioned_store<store_type>());
    using value_type = typename store_type::value_type;
    using loaded = std::optional<versioned<value_type>>;

    static loaded load(Fixture& f, int key) {
        auto tx = f.store.begin();
        loaded found = f.store.load(tx, f.key(key));
        tx.commit();
        return found;
    }

    // Inserts key with value(v) and commits; returns the new stamp.
    static version_stamp put(Fixture& f, int key, int v) {
        auto tx = f.store.begin();
        const auto written = f.store.insert(tx, f.key(key), f.value(v));
        tx.commit();
        SETTLE_EXPECT(written.outcome() == write_outcome::applied, "inserting an absent key");
        return written.stamp();
    }

    static bool holds(Fixture& f, int key, int v, version_stamp stamp) {
        const loaded found = load(f, key);
        return found.has_value() && found->value == f.value(v) && found->stamp == stamp;
    }

    static void absent_load(Fixture& f) { SETTLE_EXPECT(!load(f, 0).has_value()); }

    // Checked on stores keyed by std::string, whose encoding is the string's
    // bytes; other key types pass.
    static void long_key(Fixture& f) {
        if constexpr (std::is_same_v<typename store_type::key_type, std::string>) {
            const std::string longest(max_key_size, 'k');
            auto tx = f.store.begin();
            SETTLE_EXPECT(f.store.insert(tx, longest, f.value(1)).outcome() ==
                          write_outcome::applied);
            SETTLE_EXPECT(refused_as_invalid([&] {
                              (void)f.store.insert(tx, std::string(max_key_size + 1, 'k'),
                                                   f.value(2));
                          }),
                          "an insert throws settle::error (errc::invalid_argument)");
            tx.commit();
            auto check = f.store.begin();
            SETTLE_EXPECT(f.store.load(check, longest).has_value(),
                          "the insert made before the refusal committed");
        }
    }

    static void insert_then_load(Fixture& f) {
        auto tx = f.store.begin();
        const auto written = f.store.insert(tx, f.key(0), f.value(1));
        SETTLE_EXPECT(written.outcome() == write_outcome::applied);
        SETTLE_EXPECT(written.stamp() >= version_stamp::first(), "stamps start at first()");
        const loaded own = f.store.load(tx, f.key(0));
        SETTLE_EXPECT(own.has_value(), "a transaction sees its own insert");
        SETTLE_EXPECT(own->value == f.value(1) && own->stamp == written.stamp());
        tx.commit();
        SETTLE_EXPECT(holds(f, 0, 1, written.stamp()), "after commit");
    }

    static void insert_present(Fixture& f) {
        const version_stamp stamp = put(f, 0, 1);
        auto tx = f.store.begin();
        const auto again = f.store.insert(tx, f.key(0), f.value(2));
        tx.commit();
        SETTLE_EXPECT(again.outcome() == write_outcome::conflict);
        SETTLE_EXPECT(again.stamp() == stamp, "the conflict reports the current stamp");
        SETTLE_EXPECT(!again.current_value() || *again.current_value() == f.value(1),
                      "a returned current value is the current one");
        SETTLE_EXPECT(holds(f, 0, 1, stamp), "value and stamp unchanged");
    }

    static void cas_applies(Fixture& f) {
        const version_stamp first = put(f, 0, 1);
        auto tx = f.store.begin();
        const auto written = f.store.compare_and_set(tx, f.key(0), first, f.value(2));
        tx.commit();
        SETTLE_EXPECT(written.outcome() == write_outcome::applied);
        SETTLE_EXPECT(written.stamp() > first, "the new stamp is greater");
        SETTLE_EXPECT(holds(f, 0, 2, written.stamp()));
    }

    static void cas_stale(Fixture& f) {
        const version_stamp first = put(f, 0, 1);
        auto tx = f.store.begin();
        const auto second = f.store.compare_and_set(tx, f.key(0), first, f.value(2));
        SETTLE_EXPECT(second.outcome() == write_outcome::applied);
        tx.commit();

        auto later = f.store.begin();
        const auto stale = f.store.compare_and_set(later, f.key(0), first, f.value(3));
        later.commit();
        SETTLE_EXPECT(stale.outcome() == write_outcome::conflict);
        SETTLE_EXPECT(stale.stamp() == second.stamp(), "the conflict reports the current stamp");
        SETTLE_EXPECT(!stale.current_value() || *stale.current_value() == f.value(2),
                      "a returned current value is the current one");
        SETTLE_EXPECT(holds(f, 0, 2, second.stamp()), "value and stamp unchanged");
    }

    static void cas_never_issued(Fixture& f) {
        const version_stamp first = put(f, 0, 1);
        auto tx = f.store.begin();
        const auto ahead = f.store.compare_and_set(tx, f.key(0), version_stamp::last(), f.value(2));
        tx.commit();
        SETTLE_EXPECT(ahead.outcome() == write_outcome::conflict,
                      "a stamp from the future is not the current one");
        SETTLE_EXPECT(ahead.stamp() == first);
        SETTLE_EXPECT(holds(f, 0, 1, first));
    }

    static void cas_absent(Fixture& f) {
        auto tx = f.store.begin();
        const auto written =
            f.store.compare_and_set(tx, f.key(0), version_stamp::first(), f.value(1));
        tx.commit();
        SETTLE_EXPECT(written.outcome() == write_outcome::missing);
        SETTLE_EXPECT(!load(f, 0).has_value(), "nothing was created");
    }

    static void erase_current(Fixture& f) {
        const version_stamp stamp = put(f, 0, 1);
        auto tx = f.store.begin();
        const auto erased = f.store.erase(tx, f.key(0), stamp);
        SETTLE_EXPECT(erased.outcome() == write_outcome::applied);
        SETTLE_EXPECT(!f.store.load(tx, f.key(0)).has_value(), "a transaction sees its own erase");
        tx.commit();
        SETTLE_EXPECT(!load(f, 0).has_value(), "after commit");
    }

    static void erase_stale(Fixture& f) {
        const version_stamp first = put(f, 0, 1);
        auto tx = f.store.begin();
        const auto second = f.store.compare_and_set(tx, f.key(0), first, f.value(2));
        SETTLE_EXPECT(second.outcome() == write_outcome::applied);
        const auto stale = f.store.erase(tx, f.key(0), first);
        tx.commit();
        SETTLE_EXPECT(stale.outcome() == write_outcome::conflict);
        SETTLE_EXPECT(stale.stamp() == second.stamp(), "the conflict reports the current stamp");
        SETTLE_EXPECT(!stale.current_value() || *stale.current_value() == f.value(2));
        SETTLE_EXPECT(holds(f, 0, 2, second.stamp()), "value and stamp unchanged");
    }

    static void erase_absent(Fixture& f) {
        auto tx = f.store.begin();
        const auto erased = f.store.erase(tx, f.key(0), version_stamp::first());
        tx.commit();
        SETTLE_EXPECT(erased.outcome() == write_outcome::missing);
    }

    static void stamps_increase(Fixture& f) {
        version_stamp previous = put(f, 0, 0);
        const version_stamp before_erase_first = previous;
        for (int i = 1; i <= 3; ++i) {
            auto tx = f.store.begin();
            const auto written = f.store.compare_and_set(tx, f.key(0), previous, f.value(i));
            tx.commit();
            SETTLE_EXPECT(written.outcome() == write_outcome::applied);
            SETTLE_EXPECT(written.stamp() > previous, "each write gives a greater stamp");
            previous = written.stamp();
        }
        auto tx = f.store.begin();
        const auto erased = f.store.erase(tx, f.key(0), previous);
        tx.commit();
        SETTLE_EXPECT(erased.outcome() == write_outcome::applied);

        const version_stamp reborn = put(f, 0, 9);
        SETTLE_EXPECT(reborn > previous, "a re-inserted key's stamp exceeds its old ones");
        auto later = f.store.begin();
        const auto old = f.store.compare_and_set(later, f.key(0), before_erase_first, f.value(8));
        const auto last_before_erase =
            f.store.compare_and_set(later, f.key(0), previous, f.value(8));
        later.commit();
        SETTLE_EXPECT(old.outcome() == write_outcome::conflict &&
                          last_before_erase.outcome() == write_outcome::conflict,
                      "a stamp read before an erase never matches again");
        SETTLE_EXPECT(holds(f, 0, 9, reborn));
    }

    static void rollback_leaves_nothing(Fixture& f) {
        const version_stamp first = put(f, 0, 1);
        const version_stamp other = put(f, 1, 1);
        {
            auto tx = f.store.begin();
            const auto a = f.store.compare_and_set(tx, f.key(0), first, f.value(2));
            const auto b = f.store.erase(tx, f.key(1), other);
            const auto c = f.store.insert(tx, f.key(2), f.value(3));
            SETTLE_EXPECT(a.is_applied() && b.is_applied() && c.is_applied());
        }  // destroyed without commit
        SETTLE_EXPECT(holds(f, 0, 1, first), "the compare-and-set was rolled back");
        SETTLE_EXPECT(holds(f, 1, 1, other), "the erase was rolled back");
        SETTLE_EXPECT(!load(f, 2).has_value(), "the insert was rolled back");

        auto tx = f.store.begin();
        const auto again = f.store.compare_and_set(tx, f.key(0), first, f.value(4));
        tx.commit();
        SETTLE_EXPECT(again.outcome() == write_outcome::applied,
                      "the stamp read before the rolled back write is still current");
    }

    static void own_writes(Fixture& f) {
        auto tx = f.store.begin();
        const auto inserted = f.store.insert(tx, f.key(0), f.value(1));
        const auto replaced = f.store.compare_and_set(tx, f.key(0), inserted.stamp(), f.value(2));
        SETTLE_EXPECT(inserted.is_applied() && replaced.is_applied(),
                      "a compare-and-set at the stamp of the transaction's own insert applies");
        const loaded own = f.store.load(tx, f.key(0));
        SETTLE_EXPECT(own.has_value() && own->value == f.value(2) &&
                      own->stamp == replaced.stamp());
        tx.commit();
        SETTLE_EXPECT(holds(f, 0, 2, replaced.stamp()), "after commit");
    }

    static void keys_independent(Fixture& f) {
        const version_stamp a = put(f, 0, 1);
        const version_stamp b = put(f, 1, 2);
        auto tx = f.store.begin();
        const auto written = f.store.compare_and_set(tx, f.key(0), a, f.value(3));
        const auto cross = f.store.compare_and_set(tx, f.key(1), a, f.value(4));
        tx.commit();
        SETTLE_EXPECT(written.is_applied());
        SETTLE_EXPECT(a == b || cross.outcome() == write_outcome::conflict,
                      "another key's stamp does not apply here");
        SETTLE_EXPECT(holds(f, 1, a == b ? 4 : 2, a == b ? cross.stamp() : b),
                      "writing one key leaves the other as it was");
    }
};

template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 14> versioned_store_every_cases{{
    {"load of an absent key finds nothing", &versioned_store_cases<Fixture>::absent_load},
    {"a key longer than settle::max_key_size is refused, the transaction kept",
     &versioned_store_cases<Fixture>::long_key},
    {"insert stores the value at a stamp that load returns",
     &versioned_store_cases<Fixture>::insert_then_load},
    {"insert of a present key conflicts and changes nothing",
     &versioned_store_cases<Fixture>::insert_present},
    {"compare-and-set at the current stamp applies with a greater stamp",
     &versioned_store_cases<Fixture>::cas_applies},
    {"a stale compare-and-set changes nothing and reports the current stamp",
     &versioned_store_cases<Fixture>::cas_stale},
    {"a compare-and-set naming a stamp never issued conflicts",
     &versioned_store_cases<Fixture>::cas_never_issued},
    {"compare-and-set of an absent key reports missing and creates nothing",
     &versioned_store_cases<Fixture>::cas_absent},
    {"erase at the current stamp removes the key", &versioned_store_cases<Fixture>::erase_current},
    {"erase at a stale stamp changes nothing and reports the current stamp",
     &versioned_store_cases<Fixture>::erase_stale},
    {"erase of an absent key reports missing", &versioned_store_cases<Fixture>::erase_absent},
    {"stamps strictly increase across erase and re-insert",
     &versioned_store_cases<Fixture>::stamps_increase},
    {"writing one key leaves other keys as they were",
     &versioned_store_cases<Fixture>::keys_independent},
    {"a transaction sees its own writes and builds on them",
     &versioned_store_cases<Fixture>::own_writes},
}};

template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 1> versioned_store_rollback_cases{{
    {"a rolled back transaction leaves no write behind",
     &versioned_store_cases<Fixture>::rollback_leaves_nothing},
}};

}  // namespace detail

/// The cases, each with the promise it checks as its name: those of every
/// settle::versioned_store, and when the fixture's store also models
/// settle::transactional, those of rollback.
template <class Fixture>
inline constexpr auto versioned_store_suite =
    detail::with_cases<transactional<typename detail::versioned_store_cases<Fixture>::store_type>>(
        detail::versioned_store_every_cases<Fixture>,
        detail::versioned_store_rollback_cases<Fixture>);

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_VERSIONED_STORE_SUITE_HPP
