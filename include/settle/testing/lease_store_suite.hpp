// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_LEASE_STORE_SUITE_HPP
#define SETTLE_TESTING_LEASE_STORE_SUITE_HPP

// The conformance suite of settle::lease_store and the fence store, run
// through settle::leases and settle::fence (see docs/conformance.md and
// docs/versions.md).
//
// The fixture is a struct with
//   clock      a settle::manual_clock (a data member)
//   leases     a fresh, empty lease store: a versioned_store of
//              settle::lease_record
//   fences     a fresh, empty fence store: a versioned_store of settle::fencing_token
//   key(i)     a key for both stores, distinct for distinct int i >= 0
// Each case begins its own transactions through the stores' begin() and
// never holds two at once.

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/lease.hpp>
#include <settle/testing/conformance.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

namespace detail {

template <class Fixture>
struct lease_store_cases {
    using lease_store_type = std::remove_reference_t<decltype(std::declval<Fixture&>().leases)>;
    using fence_store_type = std::remove_reference_t<decltype(std::declval<Fixture&>().fences)>;
    using grants_type = leases<lease_store_type, manual_clock>;
    using lease_type = typename grants_type::lease_type;

    static constexpr std::chrono::seconds ttl{10};

    static acquire_result<typename lease_store_type::key_type> acquire(Fixture& f, int key,
                                                                       const char* holder) {
        grants_type grants(f.leases, f.clock);
        auto tx = f.leases.begin();
        auto got = grants.acquire(tx, f.key(key), holder, ttl);
        tx.commit();
        return got;
    }

    static lease_type acquired(Fixture& f, int key, const char* holder) {
        auto got = acquire(f, key, holder);
        SETTLE_EXPECT(got.outcome() == acquire_outcome::acquired, "the key was free");
        return got.current();
    }

    static renew_result<typename lease_store_type::key_type> renew(Fixture& f,
                                                                   const lease_type& held) {
        grants_type grants(f.leases, f.clock);
        auto tx = f.leases.begin();
        auto renewed = grants.renew(tx, held, ttl);
        tx.commit();
        return renewed;
    }

    static release_result release(Fixture& f, const lease_type& held) {
        grants_type grants(f.leases, f.clock);
        auto tx = f.leases.begin();
        const release_result released = grants.release(tx, held);
        tx.commit();
        return released;
    }

    static std::optional<lease_type> current(Fixture& f, int key) {
        grants_type grants(f.leases, f.clock);
        auto tx = f.leases.begin();
        std::optional<lease_type> live = grants.current(tx, f.key(key));
        tx.commit();
        return live;
    }

    static fence_result admit(Fixture& f, int resource, fencing_token token) {
        fence<fence_store_type> guard(f.fences);
        auto tx = f.fences.begin();
        const fence_result result = guard.admit(tx, f.key(resource), token);
        tx.commit();
        return result;
    }

    static void first_grant(Fixture& f) {
        const stored_time start = to_stored_time(f.clock.now());
        const lease_type a = acquired(f, 0, "a");
        SETTLE_EXPECT(a.token == fencing_token::first());
        SETTLE_EXPECT(a.holder == "a");
        SETTLE_EXPECT(a.expires_at == start + ttl);
        const std::optional<lease_type> live = current(f, 0);
        SETTLE_EXPECT(live.has_value() && *live == a, "current() shows the grant");
    }

    static void live_lease_held(Fixture& f) {
        const lease_type a = acquired(f, 0, "a");
        f.clock.advance(ttl - std::chrono::nanoseconds(1));
        const auto other = acquire(f, 0, "b");
        SETTLE_EXPECT(other.outcome() == acquire_outcome::held, "until the last instant");
        SETTLE_EXPECT(other.current() == a, "held reports the live lease");
        const auto same = acquire(f, 0, "a");
        SETTLE_EXPECT(same.outcome() == acquire_outcome::held, "not granted twice to its holder");
        SETTLE_EXPECT(acquired(f, 1, "b").token == fencing_token::first(),
                      "other keys are independent");
    }

    static void expired_regranted(Fixture& f) {
        const lease_type a = acquired(f, 0, "a");
        f.clock.advance(ttl);  // expires_at itself is past the lease
        SETTLE_EXPECT(!current(f, 0).has_value());
        const lease_type b = acquired(f, 0, "b");
        SETTLE_EXPECT(b.token > a.token, "the next grant has a greater token");
        SETTLE_EXPECT(b.holder == "b");
    }

    static void renew_extends(Fixture& f) {
        const lease_type a = acquired(f, 0, "a");
        f.clock.advance(ttl / 2);
        const auto renewed = renew(f, a);
        SETTLE_EXPECT(renewed.outcome() == renew_outcome::renewed);
        SETTLE_EXPECT(renewed.current().token == a.token, "renewal keeps the token");
        SETTLE_EXPECT(renewed.current().expires_at == f.clock.now() + ttl);
        f.clock.advance(ttl - std::chrono::seconds(1));  // past the first expiry
        SETTLE_EXPECT(acquire(f, 0, "b").outcome() == acquire_outcome::held);
    }

    static void renew_after_expiry(Fixture& f) {
        const lease_type a = acquired(f, 0, "a");
        f.clock.advance(ttl);
        SETTLE_EXPECT(renew(f, a).outcome() == renew_outcome::stale,
                      "an expired lease is lost even if nobody took it");
        const lease_type b = acquired(f, 0, "b");
        f.clock.advance(ttl + ttl);
        SETTLE_EXPECT(renew(f, b).outcome() == renew_outcome::stale);
        const lease_type c = acquired(f, 0, "c");
        SETTLE_EXPECT(renew(f, a).outcome() == renew_outcome::stale, "nor after a new grant");
        SETTLE_EXPECT(current(f, 0) == std::optional<lease_type>(c));
    }

    // A lease is its grant, not its holder's name: a holder that lost the
    // key and took it again holds a new grant, and its old handle is stale.
    static void renew_superseded_same_holder(Fixture& f) {
        const lease_type first = acquired(f, 0, "a");
        f.clock.advance(ttl);  // first ends, and "a" takes the key again
        const lease_type second = acquired(f, 0, "a");
        SETTLE_EXPECT(second.token > first.token);
        SETTLE_EXPECT(renew(f, first).outcome() == renew_outcome::stale,
                      "the expired grant's handle, though its holder holds the key again");
        SETTLE_EXPECT(current(f, 0) == std::optional<lease_type>(second),
                      "the new grant keeps its expiry");
        SETTLE_EXPECT(release(f, second).outcome() == release_outcome::released);
        const lease_type third = acquired(f, 0, "a");
        SETTLE_EXPECT(renew(f, second).outcome() == renew_outcome::stale,
                      "the released grant's handle, though its holder holds the key again");
        SETTLE_EXPECT(current(f, 0) == std::optional<lease_type>(third));
        SETTLE_EXPECT(renew(f, third).outcome() == renew_outcome::renewed,
                      "the new grant's own handle renews");
    }

    static void release_frees(Fixture& f) {
        const lease_type a = acquired(f, 0, "a");
        SETTLE_EXPECT(release(f, a).outcome() == release_outcome::released);
        SETTLE_EXPECT(!current(f, 0).has_value(), "free at once");
        SETTLE_EXPECT(renew(f, a).outcome() == renew_outcome::stale, "a released lease is gone");
        const lease_type b = acquired(f, 0, "b");
        SETTLE_EXPECT(b.token > a.token, "the token keeps counting across a release");
        SETTLE_EXPECT(release(f, a).outcome() == release_outcome::stale,
                      "a second release is lost");
    }

    static void release_superseded(Fixture& f) {
        const lease_type a = acquired(f, 0, "a");
        f.clock.advance(ttl);
        const lease_type b = acquired(f, 0, "b");
        SETTLE_EXPECT(release(f, a).outcome() == release_outcome::stale);
        SETTLE_EXPECT(current(f, 0) == std::optional<lease_type>(b),
                      "the new holder keeps its lease");
    }

    static void release_superseded_same_holder(Fixture& f) {
        const lease_type first = acquired(f, 0, "a");
        f.clock.advance(ttl);  // first ends, and "a" takes the key again
        const lease_type second = acquired(f, 0, "a");
        SETTLE_EXPECT(release(f, first).outcome() == release_outcome::stale,
                      "the expired grant's handle, though its holder holds the key again");
        SETTLE_EXPECT(current(f, 0) == std::optional<lease_type>(second),
                      "the new grant survives the old handle's release");
        SETTLE_EXPECT(release(f, second).outcome() == release_outcome::released);
        const lease_type third = acquired(f, 0, "a");
        SETTLE_EXPECT(release(f, second).outcome() == release_outcome::stale,
                      "the released grant's handle, though its holder holds the key again");
        SETTLE_EXPECT(current(f, 0) == std::optional<lease_type>(third));
        SETTLE_EXPECT(acquire(f, 0, "b").outcome() == acquire_outcome::held,
                      "nobody else gets the key");
    }

    static void tokens_increase(Fixture& f) {
        std::vector<fencing_token> tokens;
        const char* holders[] = {"a", "b", "c"};
        for (int round = 0; round < 12; ++round) {
            const lease_type l = acquired(f, 0, holders[round % 3]);
            tokens.push_back(l.token);
            if (round % 2 == 0) {
                SETTLE_EXPECT(release(f, l).outcome() == release_outcome::released);
            } else {
                f.clock.advance(ttl);
            }
        }
        for (std::size_t i = 1; i < tokens.size(); ++i) {
            SETTLE_EXPECT(tokens[i] > tokens[i - 1], "every grant's token exceeds the one before");
        }
    }

    static void rolled_back_grant(Fixture& f) {
        {
            grants_type grants(f.leases, f.clock);
            auto tx = f.leases.begin();
            const auto got = grants.acquire(tx, f.key(0), "a", ttl);
            SETTLE_EXPECT(got.outcome() == acquire_outcome::acquired);
        }  // rolled back
        SETTLE_EXPECT(!current(f, 0).has_value(), "a rolled back grant holds nothing");
        SETTLE_EXPECT(acquire(f, 0, "b").outcome() == acquire_outcome::acquired);
    }

    static void fence_orders(Fixture& f) {
        const fencing_token one = fencing_token::first();
        const fencing_token two = one.next();
        SETTLE_EXPECT(admit(f, 0, one).outcome() == fence_outcome::admitted);
        SETTLE_EXPECT(admit(f, 0, one).outcome() == fence_outcome::admitted,
                      "the same holder may write again");
        SETTLE_EXPECT(admit(f, 0, two).outcome() == fence_outcome::admitted);
        const fence_result late = admit(f, 0, one);
        SETTLE_EXPECT(late.outcome() == fence_outcome::stale);
        SETTLE_EXPECT(late.highest() == two, "the refusal names the higher token");
        SETTLE_EXPECT(admit(f, 0, two).outcome() == fence_outcome::admitted,
                      "a refusal leaves the highest token as it was");
        SETTLE_EXPECT(admit(f, 1, one).outcome() == fence_outcome::admitted,
                      "each resource has its own fence");
    }

    static void late_writer_refused(Fixture& f) {
        const lease_type a = acquired(f, 0, "a");
        SETTLE_EXPECT(admit(f, 0, a.token).is_admitted(), "a writes while it holds the lease");
        f.clock.advance(ttl + ttl);  // a pauses past its expiry
        const lease_type b = acquired(f, 0, "b");
        SETTLE_EXPECT(admit(f, 0, b.token).is_admitted());
        SETTLE_EXPECT(admit(f, 0, a.token).outcome() == fence_outcome::stale,
                      "a's late write after b's is refused");
        SETTLE_EXPECT(renew(f, a).outcome() == renew_outcome::stale);
    }

    static void rolled_back_admit(Fixture& f) {
        const fencing_token two = fencing_token(2);
        {
            fence<fence_store_type> guard(f.fences);
            auto tx = f.fences.begin();
            SETTLE_EXPECT(guard.admit(tx, f.key(0), two).is_admitted());
        }  // the protected write was abandoned: the token it carried is not recorded
        SETTLE_EXPECT(admit(f, 0, fencing_token::first()).is_admitted());
    }
};

template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 12> lease_store_every_cases{{
    {"the first grant of a key gets the first token", &lease_store_cases<Fixture>::first_grant},
    {"a live lease is not granted again", &lease_store_cases<Fixture>::live_lease_held},
    {"an expired lease goes to the next holder with a greater token",
     &lease_store_cases<Fixture>::expired_regranted},
    {"renew extends a live lease and keeps its token", &lease_store_cases<Fixture>::renew_extends},
    {"renew of an expired or superseded lease is lost",
     &lease_store_cases<Fixture>::renew_after_expiry},
    {"renew of a superseded grant is lost though its holder holds the key again",
     &lease_store_cases<Fixture>::renew_superseded_same_holder},
    {"release frees the key and the token keeps counting",
     &lease_store_cases<Fixture>::release_frees},
    {"release of a superseded lease changes nothing",
     &lease_store_cases<Fixture>::release_superseded},
    {"release of a superseded grant leaves its holder's new grant alone",
     &lease_store_cases<Fixture>::release_superseded_same_holder},
    {"tokens strictly increase over every grant", &lease_store_cases<Fixture>::tokens_increase},
    {"the fence admits tokens in order and refuses a lower one",
     &lease_store_cases<Fixture>::fence_orders},
    {"a holder whose lease expired cannot write after the next holder",
     &lease_store_cases<Fixture>::late_writer_refused},
}};

template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 2> lease_store_rollback_cases{{
    {"a rolled back grant holds nothing", &lease_store_cases<Fixture>::rolled_back_grant},
    {"a rolled back admit records nothing", &lease_store_cases<Fixture>::rolled_back_admit},
}};

}  // namespace detail

/// The cases, each with the promise it checks as its name: those of every
/// lease and fence store, and when both of the fixture's stores also model
/// settle::transactional, those of rollback.
template <class Fixture>
inline constexpr auto lease_store_suite = detail::with_cases<
    transactional<typename detail::lease_store_cases<Fixture>::lease_store_type> &&
    transactional<typename detail::lease_store_cases<Fixture>::fence_store_type>>(
    detail::lease_store_every_cases<Fixture>, detail::lease_store_rollback_cases<Fixture>);

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_LEASE_STORE_SUITE_HPP
