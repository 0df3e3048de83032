// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_IDEMPOTENCY_STORE_SUITE_HPP
#define SETTLE_TESTING_IDEMPOTENCY_STORE_SUITE_HPP

// The conformance suite of settle::idempotency_store: every promise the concept
// makes, as a case any backend can be run against (docs/conformance.md).
//
// The fixture is yours: a struct with a member `store` that models
// settle::idempotency_store and starts empty; the purge cases run when it
// models settle::purgeable_idempotency_store too. Build a fresh fixture for every
// case. The cases pass explicit times, so no clock is involved, and open one
// transaction at a time.

#include <settle/version.hpp>

#include <settle/idempotency.hpp>
#include <settle/testing/conformance.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

namespace detail {

inline stored_time idempotency_t0() {
    return stored_time(std::chrono::sys_days(std::chrono::year(2024) / 1 / 1));
}

inline idempotency_scope idempotency_scope_of(std::string_view tenant, std::string_view operation) {
    return {std::string(tenant), std::string(operation)};
}

inline idempotency_scope idempotency_scope_a() {
    return idempotency_scope_of("tenant-a", "orders.create");
}

inline idempotency_key idempotency_key_of(std::string_view text) {
    return idempotency_key::parse(text).value();
}

inline sha256_digest idempotency_fp(std::string_view request) {
    return sha256::hash(request);
}

inline idempotency_response idempotency_response_of(std::string_view text,
                                                    std::optional<int> status = std::nullopt) {
    bytes body;
    for (const char c : text) {
        body.push_back(static_cast<std::byte>(c));
    }
    return {std::move(body), status};
}

// Each helper runs one operation in a transaction of its own and commits it.
template <class S>
idempotency_store_claim idempotency_claim_now(S& s, const idempotency_scope& scope,
                                              const idempotency_key& key, const sha256_digest& fp,
                                              stored_time now, stored_time lease_end) {
    auto tx = s.begin();
    idempotency_store_claim r = s.claim(tx, scope, key, fp, now, lease_end);
    tx.commit();
    return r;
}

template <class S>
fenced_write idempotency_complete_now(S& s, const idempotency_scope& scope,
                                      const idempotency_key& key, fencing_token token,
                                      idempotency_response response, stored_time retain_until) {
    auto tx = s.begin();
    const fenced_write r = s.complete(tx, scope, key, token, std::move(response), retain_until);
    tx.commit();
    return r;
}

template <class S>
fenced_write idempotency_abandon_now(S& s, const idempotency_scope& scope,
                                     const idempotency_key& key, fencing_token token) {
    auto tx = s.begin();
    const fenced_write r = s.abandon(tx, scope, key, token);
    tx.commit();
    return r;
}

template <class S>
std::size_t idempotency_purge_now(S& s, stored_time now, std::size_t limit) {
    auto tx = s.begin();
    const std::size_t r = s.purge(tx, now, limit);
    tx.commit();
    return r;
}

// What a claim at `now` would find, without keeping the claim: the claim's
// transaction is destroyed uncommitted, which rolls it back. A store that
// cannot roll back (settle::atomic_operations only) keeps a claim it took, so
// on such a store a peek may only look at a key that holds a live record,
// where the claim finds the record and writes nothing: a peek that claimed
// there fails the case.
template <class S>
idempotency_store_claim idempotency_peek(S& s, const idempotency_scope& scope,
                                         const idempotency_key& key, stored_time now) {
    auto tx = s.begin();
    idempotency_store_claim found =
        s.claim(tx, scope, key, idempotency_fp("peek"), now, now + std::chrono::hours(1));
    SETTLE_EXPECT(transactional<S> || !found.claimed,
                  "a peek on a store that cannot roll back claimed the key and kept the claim; "
                  "the case must claim it for real instead");
    return found;
}

// The cases every idempotency_store passes.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 15> idempotency_store_cases{{
    {"a tenant or operation longer than settle::max_key_size is refused, the transaction kept",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto t1 = t0 + std::chrono::hours(1);
         const auto key = idempotency_key_of("k1");
         const std::string longest(max_key_size, 't');
         const std::string longer(max_key_size + 1, 't');
         auto tx = f.store.begin();
         SETTLE_EXPECT(
             f.store.claim(tx, {longest, longest}, key, idempotency_fp("a"), t0, t1).claimed);
         for (const idempotency_scope& scope :
              {idempotency_scope{longer, "op"}, idempotency_scope{"tenant", longer}}) {
             SETTLE_EXPECT(refused_as_invalid([&] {
                               (void)f.store.claim(tx, scope, key, idempotency_fp("a"), t0, t1);
                           }),
                           "a claim throws settle::error (errc::invalid_argument)");
         }
         tx.commit();
         SETTLE_EXPECT(!idempotency_peek(f.store, {longest, longest}, key, t0).claimed,
                       "the claim made before the refusals committed");
     }},
    {"a claim on an unknown key takes it",
     [](Fixture& f) {
         using namespace detail;
         static_assert(settle::idempotency_store<std::remove_cvref_t<decltype(f.store)>>);
         const auto t0 = idempotency_t0();
         const auto r =
             idempotency_claim_now(f.store, idempotency_scope_a(), idempotency_key_of("k1"),
                                   idempotency_fp("a"), t0, t0 + std::chrono::seconds(30));
         SETTLE_EXPECT(r.claimed);
         SETTLE_EXPECT(r.record.state == idempotency_state::in_progress);
         SETTLE_EXPECT(r.record.fingerprint == idempotency_fp("a"));
         SETTLE_EXPECT(r.record.claimed_at == t0);
         SETTLE_EXPECT(r.record.expires_at == t0 + std::chrono::seconds(30));
     }},
    {"a claim on a live in progress record reports it and changes nothing",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto first =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         const auto second =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("b"),
                                   t0 + std::chrono::seconds(10), t0 + std::chrono::seconds(40));
         SETTLE_EXPECT(!second.claimed);
         SETTLE_EXPECT(second.record == first.record, "the first claim's record, unchanged");
         const auto again =
             idempotency_peek(f.store, idempotency_scope_a(), key, t0 + std::chrono::seconds(29));
         SETTLE_EXPECT(!again.claimed);
         SETTLE_EXPECT(again.record == first.record, "still the first claim's record");
     }},
    {"a record lives until the instant its expiry is reached",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto end = t0 + std::chrono::seconds(30);
         const auto first = idempotency_claim_now(f.store, idempotency_scope_a(), key,
                                                  idempotency_fp("a"), t0, end);
         const auto before = idempotency_peek(f.store, idempotency_scope_a(), key,
                                              end - std::chrono::microseconds(1));
         SETTLE_EXPECT(!before.claimed, "one microsecond before the lease ends");
         const auto at =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("b"), end,
                                   end + std::chrono::hours(1));
         SETTLE_EXPECT(at.claimed, "at the instant the lease ends");
         SETTLE_EXPECT(at.record.token > first.record.token);
     }},
    {"a claim takes over an in progress record whose lease ended with a greater token",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto first =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         const auto later = t0 + std::chrono::seconds(31);
         const auto second =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("b"), later,
                                   later + std::chrono::seconds(30));
         SETTLE_EXPECT(second.claimed);
         SETTLE_EXPECT(second.record.token > first.record.token);
         SETTLE_EXPECT(second.record.fingerprint == idempotency_fp("b"));
         SETTLE_EXPECT(second.record.claimed_at == later);
         SETTLE_EXPECT(second.record.expires_at == later + std::chrono::seconds(30));
         const auto third =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("b"), later,
                                   later + std::chrono::seconds(30));
         SETTLE_EXPECT(!third.claimed, "the new claim is live");
         SETTLE_EXPECT(third.record == second.record);
     }},
    {"complete by the current owner stores the response and its status",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto claimed =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         const auto retain_until = t0 + std::chrono::hours(24);
         SETTLE_EXPECT(idempotency_complete_now(f.store, idempotency_scope_a(), key,
                                                claimed.record.token,
                                                idempotency_response_of("created", 201),
                                                retain_until) == fenced_write::applied);
         const auto found =
             idempotency_peek(f.store, idempotency_scope_a(), key, t0 + std::chrono::hours(1));
         SETTLE_EXPECT(!found.claimed, "a completed record is live until its retention ends");
         SETTLE_EXPECT(found.record.state == idempotency_state::completed);
         SETTLE_EXPECT(found.record.response == idempotency_response_of("created", 201));
         SETTLE_EXPECT(found.record.fingerprint == idempotency_fp("a"));
         SETTLE_EXPECT(found.record.token == claimed.record.token);
         SETTLE_EXPECT(found.record.claimed_at == t0);
         SETTLE_EXPECT(found.record.expires_at == retain_until);
     }},
    {"a claim takes over a completed record whose retention ended",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto first =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         const auto retain_until = t0 + std::chrono::hours(24);
         SETTLE_EXPECT(idempotency_complete_now(f.store, idempotency_scope_a(), key,
                                                first.record.token, idempotency_response_of("r"),
                                                retain_until) == fenced_write::applied);
         const auto second =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"),
                                   retain_until, retain_until + std::chrono::seconds(30));
         SETTLE_EXPECT(second.claimed);
         SETTLE_EXPECT(second.record.state == idempotency_state::in_progress);
         SETTLE_EXPECT(second.record.token > first.record.token);
         SETTLE_EXPECT(second.record.response == idempotency_response{},
                       "the old response is gone");
     }},
    {"a stale owner cannot complete after a take over",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto stale =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         const auto later = t0 + std::chrono::minutes(1);
         const auto owner =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), later,
                                   later + std::chrono::seconds(30));
         SETTLE_EXPECT(owner.claimed);
         SETTLE_EXPECT(
             idempotency_complete_now(f.store, idempotency_scope_a(), key, stale.record.token,
                                      idempotency_response_of("stale"),
                                      later + std::chrono::hours(24)) == fenced_write::stale,
             "before the new owner completes");
         SETTLE_EXPECT(
             idempotency_complete_now(f.store, idempotency_scope_a(), key, owner.record.token,
                                      idempotency_response_of("owner"),
                                      later + std::chrono::hours(24)) == fenced_write::applied);
         SETTLE_EXPECT(
             idempotency_complete_now(f.store, idempotency_scope_a(), key, stale.record.token,
                                      idempotency_response_of("stale"),
                                      later + std::chrono::hours(24)) == fenced_write::stale,
             "after the new owner completed");
         const auto found = idempotency_peek(f.store, idempotency_scope_a(), key, later);
         SETTLE_EXPECT(found.record.response == idempotency_response_of("owner"));
     }},
    {"complete of an unknown key is refused and creates nothing",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         SETTLE_EXPECT(
             idempotency_complete_now(f.store, idempotency_scope_a(), key, fencing_token::first(),
                                      idempotency_response_of("r"),
                                      t0 + std::chrono::hours(24)) == fenced_write::stale);
         SETTLE_EXPECT(idempotency_claim_now(f.store, idempotency_scope_a(), key,
                                             idempotency_fp("a"), t0, t0 + std::chrono::hours(1))
                           .claimed,
                       "the key is still free");
     }},
    {"a completed record cannot be completed again",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto claimed =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         SETTLE_EXPECT(
             idempotency_complete_now(f.store, idempotency_scope_a(), key, claimed.record.token,
                                      idempotency_response_of("first"),
                                      t0 + std::chrono::hours(24)) == fenced_write::applied);
         SETTLE_EXPECT(
             idempotency_complete_now(f.store, idempotency_scope_a(), key, claimed.record.token,
                                      idempotency_response_of("second"),
                                      t0 + std::chrono::hours(48)) == fenced_write::stale);
         const auto found = idempotency_peek(f.store, idempotency_scope_a(), key, t0);
         SETTLE_EXPECT(found.record.response == idempotency_response_of("first"));
         SETTLE_EXPECT(found.record.expires_at == t0 + std::chrono::hours(24));
     }},
    {"abandon by the owner frees the key",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto claimed =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         SETTLE_EXPECT(idempotency_abandon_now(f.store, idempotency_scope_a(), key,
                                               claimed.record.token) == fenced_write::applied);
         const auto again =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("b"), t0,
                                   t0 + std::chrono::seconds(30));
         SETTLE_EXPECT(again.claimed, "at the same instant, before the old lease would end");
         SETTLE_EXPECT(again.record.token > claimed.record.token);
         SETTLE_EXPECT(idempotency_abandon_now(f.store, idempotency_scope_a(), key,
                                               claimed.record.token) == fenced_write::stale,
                       "abandoning twice");
     }},
    {"abandon with a stale token changes nothing",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto stale =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         const auto later = t0 + std::chrono::minutes(1);
         const auto owner =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), later,
                                   later + std::chrono::seconds(30));
         SETTLE_EXPECT(idempotency_abandon_now(f.store, idempotency_scope_a(), key,
                                               stale.record.token) == fenced_write::stale);
         const auto found = idempotency_peek(f.store, idempotency_scope_a(), key, later);
         SETTLE_EXPECT(!found.claimed);
         SETTLE_EXPECT(found.record == owner.record, "the new owner's claim is intact");
     }},
    {"a completed record cannot be abandoned",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto claimed =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         SETTLE_EXPECT(idempotency_complete_now(f.store, idempotency_scope_a(), key,
                                                claimed.record.token, idempotency_response_of("r"),
                                                t0 + std::chrono::hours(24)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(idempotency_abandon_now(f.store, idempotency_scope_a(), key,
                                               claimed.record.token) == fenced_write::stale);
         const auto found = idempotency_peek(f.store, idempotency_scope_a(), key, t0);
         SETTLE_EXPECT(found.record.state == idempotency_state::completed);
     }},
    {"scopes and keys keep records apart",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto lease_end = t0 + std::chrono::seconds(30);
         const idempotency_scope scopes[] = {
             idempotency_scope_of("tenant-a", "orders.create"),
             idempotency_scope_of("tenant-b", "orders.create"),
             idempotency_scope_of("tenant-a", "orders.cancel"),
             idempotency_scope_of("ab", "c"),
             idempotency_scope_of("a", "bc"),
             idempotency_scope_of("", "abc"),
         };
         for (const auto& scope : scopes) {
             for (const char* key : {"key", "Key", "key "}) {
                 SETTLE_EXPECT(idempotency_claim_now(f.store, scope, idempotency_key_of(key),
                                                     idempotency_fp("a"), t0, lease_end)
                                   .claimed,
                               "every (tenant, operation, key) is a record of its own");
             }
         }
         const auto a = idempotency_peek(f.store, scopes[0], idempotency_key_of("key"), t0);
         const auto b = idempotency_peek(f.store, scopes[1], idempotency_key_of("key"), t0);
         SETTLE_EXPECT(!a.claimed && !b.claimed);
         SETTLE_EXPECT(a.record.token != b.record.token);
     }},
    {"a response of any bytes is stored exactly",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         idempotency_response every_byte;
         for (int b = 0; b < 256; ++b) {
             every_byte.body.push_back(static_cast<std::byte>(b));
         }
         every_byte.status = -1;
         const std::pair<const char*, idempotency_response> cases[] = {
             {"every-byte", every_byte},
             {"empty", idempotency_response{}},
         };
         for (const auto& [name, response] : cases) {
             const auto key = idempotency_key_of(name);
             const auto claimed =
                 idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                       t0 + std::chrono::seconds(30));
             SETTLE_EXPECT(idempotency_complete_now(
                               f.store, idempotency_scope_a(), key, claimed.record.token, response,
                               t0 + std::chrono::hours(1)) == fenced_write::applied);
             const auto found = idempotency_peek(f.store, idempotency_scope_a(), key, t0);
             SETTLE_EXPECT(found.record.state == idempotency_state::completed);
             SETTLE_EXPECT(found.record.response == response, name);
         }
     }},
}};

// The cases of a store that also models settle::transactional.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 1> idempotency_rollback_cases{{
    {"writes roll back with an uncommitted transaction",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto lease_end = t0 + std::chrono::seconds(30);
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(
                 f.store.claim(tx, idempotency_scope_a(), key, idempotency_fp("a"), t0, lease_end)
                     .claimed);
         }
         const auto claimed = idempotency_claim_now(f.store, idempotency_scope_a(), key,
                                                    idempotency_fp("b"), t0, lease_end);
         SETTLE_EXPECT(claimed.claimed, "a claim that was not committed left the key free");
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.complete(tx, idempotency_scope_a(), key, claimed.record.token,
                                            idempotency_response_of("r"),
                                            t0 + std::chrono::hours(24)) == fenced_write::applied);
         }
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.abandon(tx, idempotency_scope_a(), key, claimed.record.token) ==
                           fenced_write::applied);
         }
         const auto found = idempotency_peek(f.store, idempotency_scope_a(), key, t0);
         SETTLE_EXPECT(!found.claimed);
         SETTLE_EXPECT(found.record == claimed.record,
                       "neither the completion nor the abandon was committed");
     }},
}};

// The cases of a store that also models purgeable_idempotency_store.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 2> purgeable_idempotency_store_cases{{
    {"purge removes only records that are no longer live and at most limit per call",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto scope = idempotency_scope_a();
         const auto now = t0 + std::chrono::minutes(10);
         // Expired: two leases and one retention. Live: one lease, one retention.
         for (const char* name : {"lease-1", "lease-2"}) {
             (void)idempotency_claim_now(f.store, scope, idempotency_key_of(name),
                                         idempotency_fp("a"), t0, t0 + std::chrono::minutes(1));
         }
         const auto done =
             idempotency_claim_now(f.store, scope, idempotency_key_of("retained"),
                                   idempotency_fp("a"), t0, t0 + std::chrono::minutes(1));
         SETTLE_EXPECT(idempotency_complete_now(f.store, scope, idempotency_key_of("retained"),
                                                done.record.token, idempotency_response_of("r"),
                                                t0 + std::chrono::minutes(5)) ==
                       fenced_write::applied);
         (void)idempotency_claim_now(f.store, scope, idempotency_key_of("live-lease"),
                                     idempotency_fp("a"), t0, now + std::chrono::minutes(1));
         const auto kept =
             idempotency_claim_now(f.store, scope, idempotency_key_of("live-done"),
                                   idempotency_fp("a"), t0, t0 + std::chrono::minutes(1));
         SETTLE_EXPECT(idempotency_complete_now(f.store, scope, idempotency_key_of("live-done"),
                                                kept.record.token, idempotency_response_of("r"),
                                                now + std::chrono::hours(1)) ==
                       fenced_write::applied);

         SETTLE_EXPECT(idempotency_purge_now(f.store, now, 0) == 0, "limit 0");
         SETTLE_EXPECT(idempotency_purge_now(f.store, now, 2) == 2, "the first batch");
         SETTLE_EXPECT(idempotency_purge_now(f.store, now, 2) == 1, "the rest");
         SETTLE_EXPECT(idempotency_purge_now(f.store, now, 2) == 0, "nothing left to purge");
         SETTLE_EXPECT(
             !idempotency_peek(f.store, scope, idempotency_key_of("live-lease"), now).claimed);
         const auto live = idempotency_peek(f.store, scope, idempotency_key_of("live-done"), now);
         SETTLE_EXPECT(!live.claimed);
         SETTLE_EXPECT(live.record.response == idempotency_response_of("r"));
     }},
    {"tokens keep increasing for a key after its record is purged",
     [](Fixture& f) {
         using namespace detail;
         const auto t0 = idempotency_t0();
         const auto key = idempotency_key_of("k1");
         const auto first =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), t0,
                                   t0 + std::chrono::seconds(30));
         const auto later = t0 + std::chrono::minutes(1);
         SETTLE_EXPECT(idempotency_purge_now(f.store, later, 10) == 1);
         const auto second =
             idempotency_claim_now(f.store, idempotency_scope_a(), key, idempotency_fp("a"), later,
                                   later + std::chrono::seconds(30));
         SETTLE_EXPECT(second.claimed);
         SETTLE_EXPECT(second.record.token > first.record.token);
         SETTLE_EXPECT(
             idempotency_complete_now(f.store, idempotency_scope_a(), key, first.record.token,
                                      idempotency_response_of("x"),
                                      later + std::chrono::hours(1)) == fenced_write::stale,
             "the purged claim's token is fenced off");
     }},
}};

template <class Fixture>
constexpr auto idempotency_suite_of() {
    using store = std::remove_cvref_t<decltype(std::declval<Fixture&>().store)>;
    constexpr auto every = with_cases<transactional<store>>(idempotency_store_cases<Fixture>,
                                                            idempotency_rollback_cases<Fixture>);
    if constexpr (purgeable_idempotency_store<store>) {
        return with_cases<true>(every, purgeable_idempotency_store_cases<Fixture>);
    } else {
        return every;
    }
}

}  // namespace detail

/// The cases, each with the promise it checks as its name: those of every
/// settle::idempotency_store, when the fixture's store also models
/// settle::transactional those of rollback, and when it models
/// settle::purgeable_idempotency_store those of purge.
template <class Fixture>
inline constexpr auto idempotency_store_suite = detail::idempotency_suite_of<Fixture>();

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_IDEMPOTENCY_STORE_SUITE_HPP
