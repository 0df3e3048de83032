// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_OUTBOX_STORE_SUITE_HPP
#define SETTLE_TESTING_OUTBOX_STORE_SUITE_HPP

// The conformance suite of an outbox backend: every promise of
// settle::outbox_appender and settle::outbox_store, and of the operator tasks
// (requeue, dead_letters, purge, statistics, find), as a case any backend can
// be run against (docs/conformance.md).
//
// The fixture is yours: a struct with a member `store` that models
// settle::outbox_appender and settle::outbox_store, offers the operator
// tasks, and starts empty. Build a fresh fixture for every
// case. The cases pass explicit times, so no clock is involved, and open one
// transaction at a time.

#include <settle/version.hpp>

#include <settle/outbox.hpp>
#include <settle/testing/conformance.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

namespace detail {

inline stored_time outbox_t0() {
    return std::chrono::sys_days(std::chrono::year(2024) / 1 / 1);
}

inline stored_time outbox_at(int seconds) {
    return outbox_t0() + std::chrono::seconds(seconds);
}

// A distinct, non-nil id for every n.
inline uuid outbox_id(unsigned n) {
    std::array<std::byte, 16> bytes{};
    bytes[0] = std::byte{0x01};
    bytes[6] = std::byte{0x70};
    bytes[8] = std::byte{0x80};
    for (std::size_t i = 0; i < 4; ++i) {
        bytes[15 - i] = static_cast<std::byte>((n >> (8 * i)) & 0xFFU);
    }
    return uuid(bytes);
}

inline outbox_message outbox_message_of(unsigned n, std::string_view ordering_key = {}) {
    bytes payload;
    for (const char c : "payload " + std::to_string(n)) {
        payload.push_back(static_cast<std::byte>(c));
    }
    payload.push_back(std::byte{0});  // payloads are bytes, not text
    payload.push_back(std::byte{0xFF});
    return outbox_message{outbox_id(n), "orders.placed", std::string(ordering_key),
                          std::move(payload),
                          outbox_headers{{"content-type", "application/octet-stream"},
                                         {"trace-id", std::to_string(n)}}};
}

// Each helper runs one operation in a transaction of its own and commits it.
template <class S>
std::uint64_t outbox_append(S& s, unsigned n, stored_time now, std::string_view key = {}) {
    auto tx = s.begin();
    const outbox_append_result appended = s.append(tx, outbox_message_of(n, key), now);
    tx.commit();
    SETTLE_EXPECT(appended.is_appended() && appended.sequence() > 0, "a new id is appended");
    return appended.sequence();
}

template <class S>
std::vector<outbox_record> outbox_claim(S& s, std::string_view owner, stored_time now,
                                        stored_time lease_until, std::size_t limit = 100) {
    auto tx = s.begin();
    std::vector<outbox_record> records = s.claim(tx, owner, now, lease_until, limit);
    tx.commit();
    return records;
}

// The token under which `claimed` holds record n.
inline fencing_token outbox_token(const std::vector<outbox_record>& claimed, unsigned n) {
    for (const outbox_record& r : claimed) {
        if (r.id == outbox_id(n)) {
            return r.claim_token;
        }
    }
    SETTLE_EXPECT(false, "the claim took the record");
    return fencing_token(0);
}

template <class S>
fenced_write outbox_delivered(S& s, unsigned n, fencing_token token, stored_time now) {
    auto tx = s.begin();
    const fenced_write w = s.mark_delivered(tx, outbox_id(n), token, now);
    tx.commit();
    return w;
}

// Marks claims delivered in one call if the store offers it (the relay then
// uses it), else one at a time: the answers must be the same.
template <class S>
std::vector<fenced_write> outbox_delivered_together(
    S& s, const std::vector<::settle::outbox_claim>& claims, stored_time now) {
    auto tx = s.begin();
    std::vector<fenced_write> writes;
    if constexpr (::settle::detail::outbox_store_marks_delivered_together<S>) {
        writes = s.mark_delivered(tx, std::span<const ::settle::outbox_claim>(claims), now);
    } else {
        for (const ::settle::outbox_claim& c : claims) {
            writes.push_back(s.mark_delivered(tx, c.id, c.token, now));
        }
    }
    tx.commit();
    return writes;
}

template <class S>
fenced_write outbox_reschedule(S& s, unsigned n, fencing_token token, stored_time at,
                               std::string_view error = "broker timeout") {
    auto tx = s.begin();
    const fenced_write w = s.reschedule(tx, outbox_id(n), token, error, at);
    tx.commit();
    return w;
}

template <class S>
fenced_write outbox_dead(S& s, unsigned n, fencing_token token, stored_time now,
                         std::string_view reason = "unknown topic") {
    auto tx = s.begin();
    const fenced_write w = s.dead_letter(tx, outbox_id(n), token, reason, now);
    tx.commit();
    return w;
}

template <class S>
fenced_write outbox_release(S& s, unsigned n, fencing_token token) {
    auto tx = s.begin();
    const fenced_write w = s.release(tx, outbox_id(n), token);
    tx.commit();
    return w;
}

template <class S>
bool outbox_requeue(S& s, unsigned n, stored_time now) {
    auto tx = s.begin();
    const bool requeued = s.requeue(tx, outbox_id(n), now);
    tx.commit();
    return requeued;
}

template <class S>
std::optional<outbox_record> outbox_find(S& s, unsigned n) {
    auto tx = s.begin();
    std::optional<outbox_record> record = s.find(tx, outbox_id(n));
    tx.commit();
    return record;
}

// The ids of the records, in the order given.
inline std::vector<uuid> outbox_ids(const std::vector<outbox_record>& records) {
    std::vector<uuid> ids;
    for (const auto& r : records) {
        ids.push_back(r.id);
    }
    return ids;
}

inline std::vector<uuid> outbox_ids_of(std::initializer_list<unsigned> ns) {
    std::vector<uuid> ids;
    for (const unsigned n : ns) {
        ids.push_back(outbox_id(n));
    }
    return ids;
}

// The same ids in any order.
inline bool outbox_same_set(std::vector<uuid> a, std::vector<uuid> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
}

}  // namespace detail

/// The cases, each with the promise it checks as its name.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 33> outbox_store_suite{{
    {"an appended record is pending and due at once",
     [](Fixture& f) {
         using namespace detail;
         using store = std::remove_cvref_t<decltype(f.store)>;
         static_assert(settle::outbox_appender<store> && settle::outbox_store<store>);
         const std::uint64_t sequence = outbox_append(f.store, 1, outbox_t0(), "order-1");
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r.has_value());
         const outbox_message m = outbox_message_of(1, "order-1");
         SETTLE_EXPECT(r->id == m.id);
         SETTLE_EXPECT(r->sequence == sequence);
         SETTLE_EXPECT(r->topic == m.topic);
         SETTLE_EXPECT(r->ordering_key == "order-1");
         SETTLE_EXPECT(r->payload == m.payload, "the payload's bytes, zero bytes included");
         SETTLE_EXPECT(r->headers == m.headers, "the headers, in order");
         SETTLE_EXPECT(r->created_at == outbox_t0());
         SETTLE_EXPECT(r->next_attempt_at == outbox_t0());
         SETTLE_EXPECT(r->attempts == 0);
         SETTLE_EXPECT(r->status == outbox_status::pending);
         SETTLE_EXPECT(r->last_error.empty());
         SETTLE_EXPECT(r->claim_owner.empty());
         SETTLE_EXPECT(r->claim_token == fencing_token(0), "never claimed");
         const auto claimed = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_ids(claimed) == outbox_ids_of({1}), "due at its creation time");
     }},
    {"appends get increasing sequences",
     [](Fixture& f) {
         using namespace detail;
         const std::uint64_t a = outbox_append(f.store, 1, outbox_t0());
         const std::uint64_t b = outbox_append(f.store, 2, outbox_t0(), "order-1");
         auto tx = f.store.begin();
         const std::uint64_t c = f.store.append(tx, outbox_message_of(3), outbox_t0()).sequence();
         const std::uint64_t d = f.store.append(tx, outbox_message_of(4), outbox_t0()).sequence();
         tx.commit();
         SETTLE_EXPECT(a < b);
         SETTLE_EXPECT(b < c);
         SETTLE_EXPECT(c < d);
     }},
    {"a rolled back append leaves nothing to claim",
     [](Fixture& f) {
         using namespace detail;
         {
             auto tx = f.store.begin();
             (void)f.store.append(tx, outbox_message_of(1), outbox_t0());
             (void)f.store.append(tx, outbox_message_of(2, "order-1"), outbox_t0());
             SETTLE_EXPECT(f.store.find(tx, outbox_id(1)).has_value(),
                           "a transaction sees its own append");
         }  // destroyed without commit: rolled back
         SETTLE_EXPECT(!outbox_find(f.store, 1).has_value());
         SETTLE_EXPECT(!outbox_find(f.store, 2).has_value());
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(3600), outbox_at(3630)).empty());
         outbox_append(f.store, 3, outbox_t0(), "order-1");
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30))) ==
                           outbox_ids_of({3}),
                       "a rolled back record does not block its ordering key");
     }},
    {"an ordering key longer than settle::max_key_size is refused, the transaction kept",
     [](Fixture& f) {
         using namespace detail;
         const std::string longest(max_key_size, 'k');
         auto tx = f.store.begin();
         (void)f.store.append(tx, outbox_message_of(1, longest), outbox_t0());
         SETTLE_EXPECT(refused_as_invalid([&] {
                           (void)f.store.append(
                               tx, outbox_message_of(2, std::string(max_key_size + 1, 'k')),
                               outbox_t0());
                       }),
                       "an append throws settle::error (errc::invalid_argument)");
         tx.commit();
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30))) ==
                       outbox_ids_of({1}));
     }},
    {"a nil id is refused",
     [](Fixture& f) {
         using namespace detail;
         bool refused = false;
         try {
             auto tx = f.store.begin();
             outbox_message nil = outbox_message_of(2);
             nil.id = uuid{};
             (void)f.store.append(tx, std::move(nil), outbox_t0());
         } catch (const settle::error& e) {
             refused = e.code() == errc::invalid_argument;
         }
         SETTLE_EXPECT(refused, "a nil id throws settle::error (errc::invalid_argument)");
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(3600), outbox_at(3630)).empty());
     }},
    {"appending an existing id is a duplicate that changes nothing",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0(), "order-1");
         outbox_append(f.store, 2, outbox_t0());
         const auto claimed = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 1);
         SETTLE_EXPECT(outbox_ids(claimed) == outbox_ids_of({1}));
         SETTLE_EXPECT(outbox_delivered(f.store, 2, fencing_token(0), outbox_t0()) ==
                       fenced_write::stale);
         const auto one = outbox_find(f.store, 1);
         const auto two = outbox_find(f.store, 2);
         auto tx = f.store.begin();
         outbox_message changed = outbox_message_of(1, "order-2");
         changed.topic = "orders.cancelled";
         const outbox_append_result in_flight = f.store.append(tx, changed, outbox_at(5));
         SETTLE_EXPECT(in_flight.is_duplicate() && !in_flight.is_appended() && !in_flight);
         SETTLE_EXPECT(in_flight.outcome() == outbox_append_outcome::duplicate);
         SETTLE_EXPECT(in_flight.sequence() == 0);
         SETTLE_EXPECT(f.store.append(tx, outbox_message_of(2), outbox_at(5)).is_duplicate(),
                       "a pending record's id");
         const outbox_append_result three = f.store.append(tx, outbox_message_of(3), outbox_at(5));
         SETTLE_EXPECT(three.is_appended(), "the transaction stays usable after a duplicate");
         SETTLE_EXPECT(f.store.append(tx, outbox_message_of(3), outbox_at(6)).is_duplicate(),
                       "an id appended earlier in the same transaction");
         tx.commit();
         SETTLE_EXPECT(outbox_find(f.store, 1) == one, "the in-flight record is unchanged");
         SETTLE_EXPECT(outbox_find(f.store, 2) == two, "the pending record is unchanged");
         SETTLE_EXPECT(outbox_find(f.store, 3)->sequence == three.sequence());
         SETTLE_EXPECT(outbox_delivered(f.store, 1, outbox_token(claimed, 1), outbox_at(6)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(7), outbox_at(37)).size() == 2,
                       "2 and 3, and no second record 1");
         auto later = f.store.begin();
         SETTLE_EXPECT(f.store.append(later, outbox_message_of(1), outbox_at(8)).is_duplicate(),
                       "a delivered record's id");
         later.commit();
         SETTLE_EXPECT(outbox_find(f.store, 1)->status == outbox_status::delivered);
     }},
    {"a claim takes due records in flight under the owner",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         outbox_append(f.store, 2, outbox_t0());
         const auto claimed = outbox_claim(f.store, "relay-a", outbox_at(1), outbox_at(31));
         SETTLE_EXPECT(outbox_same_set(outbox_ids(claimed), outbox_ids_of({1, 2})));
         for (const auto& r : claimed) {
             SETTLE_EXPECT(r.status == outbox_status::in_flight);
             SETTLE_EXPECT(r.claim_owner == "relay-a");
             SETTLE_EXPECT(r.claim_token == fencing_token::first(), "a first claim's token");
             SETTLE_EXPECT(r.claim_expires_at == outbox_at(31));
             SETTLE_EXPECT(r.attempts == 1, "a claim counts an attempt");
             SETTLE_EXPECT(r.payload == outbox_message_of(r.id == outbox_id(1) ? 1 : 2).payload);
             SETTLE_EXPECT(outbox_find(f.store, r.id == outbox_id(1) ? 1 : 2) == r,
                           "the stored record is the one returned");
         }
     }},
    {"a claim takes at most limit records",
     [](Fixture& f) {
         using namespace detail;
         for (unsigned n = 1; n <= 5; ++n) {
             outbox_append(f.store, n, outbox_t0());
         }
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 0).empty());
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 2).size() == 2);
         SETTLE_EXPECT(outbox_claim(f.store, "relay-b", outbox_t0(), outbox_at(30), 10).size() ==
                       3);
     }},
    {"a record under a live claim is invisible to every claim",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30)).size() == 1);
         SETTLE_EXPECT(outbox_claim(f.store, "relay-b", outbox_at(1), outbox_at(31)).empty());
         SETTLE_EXPECT(outbox_claim(f.store, "relay-b", outbox_at(29), outbox_at(59)).empty(),
                       "just before the lease ends");
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(29), outbox_at(59)).empty(),
                       "the owner does not claim it twice");
     }},
    {"a claim whose lease ended is due again",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto first = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         const auto taken = outbox_claim(f.store, "relay-b", outbox_at(30), outbox_at(60));
         SETTLE_EXPECT(outbox_ids(taken) == outbox_ids_of({1}), "due the instant the lease ends");
         SETTLE_EXPECT(taken[0].claim_owner == "relay-b");
         SETTLE_EXPECT(taken[0].claim_token > first[0].claim_token);
         SETTLE_EXPECT(taken[0].claim_expires_at == outbox_at(60));
         SETTLE_EXPECT(taken[0].attempts == 2);
     }},
    {"a record is not due before its next attempt time",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, outbox_token(c, 1), outbox_at(60)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(59), outbox_at(89)).empty());
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(60), outbox_at(90)).size() == 1);
     }},
    {"a claim takes the earliest due records first",
     [](Fixture& f) {
         using namespace detail;
         for (unsigned n = 1; n <= 3; ++n) {
             outbox_append(f.store, n, outbox_t0());
         }
         const auto one = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 1);
         SETTLE_EXPECT(outbox_ids(one) == outbox_ids_of({1}),
                       "the lowest sequence among records due at the same time");
         const auto rest = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_reschedule(f.store, 1, outbox_token(one, 1), outbox_at(50));
         (void)outbox_reschedule(f.store, 2, outbox_token(rest, 2), outbox_at(40));
         (void)outbox_reschedule(f.store, 3, outbox_token(rest, 3), outbox_at(45));
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_at(60), outbox_at(90),
                                               2)) == outbox_ids_of({2, 3}));
     }},
    {"each claim of a record gets a token greater than every earlier claim's",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         std::vector<fencing_token> tokens;
         const auto claim = [&](stored_time now) {
             const auto c = outbox_claim(f.store, "relay-a", now, now + std::chrono::seconds(30));
             SETTLE_EXPECT(outbox_ids(c) == outbox_ids_of({1}));
             SETTLE_EXPECT(outbox_find(f.store, 1)->claim_token == c[0].claim_token,
                           "the stored token is the one returned");
             tokens.push_back(c[0].claim_token);
             return c[0].claim_token;
         };
         SETTLE_EXPECT(outbox_release(f.store, 1, claim(outbox_t0())) == fenced_write::applied);
         SETTLE_EXPECT(outbox_find(f.store, 1)->claim_token == tokens.back(),
                       "an outcome keeps the token: release gives back the attempt, not the token");
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, claim(outbox_t0()), outbox_at(1)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_dead(f.store, 1, claim(outbox_at(1)), outbox_at(2)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_requeue(f.store, 1, outbox_at(3)));
         SETTLE_EXPECT(outbox_find(f.store, 1)->claim_token == tokens.back(),
                       "requeue does not reset the token");
         (void)claim(outbox_at(3));
         (void)claim(outbox_at(33));  // the lease ended: taken over
         for (std::size_t i = 1; i < tokens.size(); ++i) {
             SETTLE_EXPECT(tokens[i - 1] < tokens[i]);
         }
         SETTLE_EXPECT(tokens.front() >= fencing_token::first());
     }},
    {"an outcome applies only under the token of the record's latest claim",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto first = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         const auto taken = outbox_claim(f.store, "relay-b", outbox_at(40), outbox_at(70));
         SETTLE_EXPECT(taken.size() == 1);
         const fencing_token old = outbox_token(first, 1);
         SETTLE_EXPECT(outbox_delivered(f.store, 1, old, outbox_at(41)) == fenced_write::stale);
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, old, outbox_at(99)) == fenced_write::stale);
         SETTLE_EXPECT(outbox_dead(f.store, 1, old, outbox_at(41)) == fenced_write::stale);
         SETTLE_EXPECT(outbox_release(f.store, 1, old) == fenced_write::stale);
         SETTLE_EXPECT(outbox_delivered(f.store, 1, taken[0].claim_token.next(), outbox_at(41)) ==
                           fenced_write::stale,
                       "a token no claim was given");
         SETTLE_EXPECT(outbox_find(f.store, 1) == taken[0], "the new claim is untouched");
         SETTLE_EXPECT(outbox_delivered(f.store, 1, taken[0].claim_token, outbox_at(42)) ==
                       fenced_write::applied);
     }},
    {"a claim taken over under the same owner name fences off the earlier one",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         outbox_append(f.store, 2, outbox_t0());
         // One relay name for both claims: a restarted relay, or two relays
         // configured alike. The first claim's lease ends; the second takes over.
         const auto first = outbox_claim(f.store, "relay", outbox_t0(), outbox_at(30));
         const auto taken = outbox_claim(f.store, "relay", outbox_at(40), outbox_at(70));
         SETTLE_EXPECT(outbox_same_set(outbox_ids(taken), outbox_ids_of({1, 2})));
         const fencing_token old = outbox_token(first, 1);
         SETTLE_EXPECT(outbox_delivered(f.store, 1, old, outbox_at(41)) == fenced_write::stale);
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, old, outbox_at(99)) == fenced_write::stale);
         SETTLE_EXPECT(outbox_dead(f.store, 1, old, outbox_at(41)) == fenced_write::stale);
         SETTLE_EXPECT(outbox_release(f.store, 1, old) == fenced_write::stale);
         SETTLE_EXPECT((outbox_delivered_together(f.store, {{outbox_id(2), outbox_token(first, 2)}},
                                                  outbox_at(41)) ==
                        std::vector<fenced_write>{fenced_write::stale}),
                       "delivering many at once is fenced the same way");
         for (const unsigned n : {1U, 2U}) {
             const auto r = outbox_find(f.store, n);
             SETTLE_EXPECT(r->status == outbox_status::in_flight &&
                               r->claim_token == outbox_token(taken, n) &&
                               r->claim_expires_at == outbox_at(70) && r->last_error.empty(),
                           "the late outcomes overwrote nothing");
         }
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, outbox_token(taken, 1), outbox_at(80),
                                         "503 from broker") == fenced_write::applied);
         SETTLE_EXPECT(outbox_find(f.store, 1)->last_error == "503 from broker");
     }},
    {"an outcome applies after the lease ended when nobody took over",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_delivered(f.store, 1, outbox_token(c, 1), outbox_at(3600)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_find(f.store, 1)->status == outbox_status::delivered);
     }},
    {"outcomes on unknown or unclaimed records are stale",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());  // pending, never claimed
         for (const unsigned n : {1U, 9U}) {
             for (const fencing_token token : {fencing_token(0), fencing_token::first()}) {
                 SETTLE_EXPECT(outbox_delivered(f.store, n, token, outbox_t0()) ==
                               fenced_write::stale);
                 SETTLE_EXPECT(outbox_reschedule(f.store, n, token, outbox_t0()) ==
                               fenced_write::stale);
                 SETTLE_EXPECT(outbox_dead(f.store, n, token, outbox_t0()) == fenced_write::stale);
                 SETTLE_EXPECT(outbox_release(f.store, n, token) == fenced_write::stale);
             }
         }
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r && r->status == outbox_status::pending && r->attempts == 0);
         SETTLE_EXPECT(!outbox_find(f.store, 9).has_value(), "no record is made up");
     }},
    {"a delivered record is settled for good",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_delivered(f.store, 1, outbox_token(c, 1), outbox_at(2)) ==
                       fenced_write::applied);
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r->status == outbox_status::delivered);
         SETTLE_EXPECT(r->finished_at == outbox_at(2));
         SETTLE_EXPECT(r->claim_owner.empty());
         SETTLE_EXPECT(r->attempts == 1);
         SETTLE_EXPECT(outbox_delivered(f.store, 1, outbox_token(c, 1), outbox_at(3)) ==
                       fenced_write::stale);
         SETTLE_EXPECT(
             outbox_claim(f.store, "relay-b", outbox_at(86400), outbox_at(86430)).empty());
         SETTLE_EXPECT(!outbox_requeue(f.store, 1, outbox_at(10)));
     }},
    {"delivering many records at once answers each as one at a time would",
     [](Fixture& f) {
         using namespace detail;
         for (unsigned n = 1; n <= 5; ++n) {
             outbox_append(f.store, n, outbox_t0());
         }
         const auto a = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 2);    // 1, 2
         const auto lost = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(1), 1);  // 3
         const auto b =
             outbox_claim(f.store, "relay-b", outbox_at(1), outbox_at(31), 1);            // 3 again
         const auto c = outbox_claim(f.store, "relay-a", outbox_at(1), outbox_at(2), 1);  // 4
         SETTLE_EXPECT(outbox_ids(b) == outbox_ids_of({3}));
         const std::vector<::settle::outbox_claim> claims{
             {outbox_id(1), outbox_token(a, 1)},     {outbox_id(3), outbox_token(lost, 3)},
             {outbox_id(5), fencing_token::first()}, {outbox_id(9), fencing_token::first()},
             {outbox_id(2), outbox_token(a, 2)},     {outbox_id(1), outbox_token(a, 1)},
             {outbox_id(4), outbox_token(c, 4)},
         };
         const auto writes = outbox_delivered_together(f.store, claims, outbox_at(5));
         constexpr auto applied = fenced_write::applied;
         constexpr auto stale = fenced_write::stale;
         SETTLE_EXPECT((writes == std::vector<fenced_write>{applied, stale, stale, stale, applied,
                                                            stale, applied}),
                       "claims taken over, pending, unknown or repeated are stale; an ended "
                       "lease nobody took over still applies");
         for (const unsigned n : {1U, 2U, 4U}) {
             const auto r = outbox_find(f.store, n);
             SETTLE_EXPECT(r->status == outbox_status::delivered &&
                           r->finished_at == outbox_at(5) && r->claim_owner.empty());
         }
         const auto other = outbox_find(f.store, 3);
         SETTLE_EXPECT(other->status == outbox_status::in_flight &&
                       other->claim_token == outbox_token(b, 3));
         SETTLE_EXPECT(outbox_find(f.store, 5)->status == outbox_status::pending);
         SETTLE_EXPECT(!outbox_find(f.store, 9).has_value(), "no record is made up");
     }},
    {"a claim delivered before is stale when delivered again among others, at the same time",
     [](Fixture& f) {
         using namespace detail;
         for (unsigned n = 1; n <= 3; ++n) {
             outbox_append(f.store, n, outbox_t0());
         }
         const auto a = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_delivered(f.store, 1, outbox_token(a, 1), outbox_at(5)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(
             (outbox_delivered_together(
                  f.store, {{outbox_id(1), outbox_token(a, 1)}, {outbox_id(2), outbox_token(a, 2)}},
                  outbox_at(5)) ==
              std::vector<fenced_write>{fenced_write::stale, fenced_write::applied}),
             "the record delivered in the first call is left as it was");
         SETTLE_EXPECT((outbox_delivered_together(f.store,
                                                  {{outbox_id(3), outbox_token(a, 3)},
                                                   {outbox_id(2), outbox_token(a, 2)},
                                                   {outbox_id(1), outbox_token(a, 1)}},
                                                  outbox_at(5)) ==
                        std::vector<fenced_write>{fenced_write::applied, fenced_write::stale,
                                                  fenced_write::stale}));
         for (const unsigned n : {2U, 3U}) {
             const auto r = outbox_find(f.store, n);
             SETTLE_EXPECT(!r.has_value() || (r->status == outbox_status::delivered &&
                                              r->finished_at == outbox_at(5)));
         }
     }},
    {"a rescheduled record is pending at the given time with the error",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, outbox_token(c, 1), outbox_at(5),
                                         "503 from broker") == fenced_write::applied);
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r->status == outbox_status::pending);
         SETTLE_EXPECT(r->next_attempt_at == outbox_at(5));
         SETTLE_EXPECT(r->last_error == "503 from broker");
         SETTLE_EXPECT(r->attempts == 1, "the attempt stays counted");
         SETTLE_EXPECT(r->claim_owner.empty());
         SETTLE_EXPECT(
             outbox_reschedule(f.store, 1, outbox_token(c, 1), outbox_at(9)) == fenced_write::stale,
             "the claim ended with the reschedule");
     }},
    {"a released record is due as if it had not been claimed",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto c = outbox_claim(f.store, "relay-a", outbox_at(1), outbox_at(31));
         SETTLE_EXPECT(outbox_release(f.store, 1, outbox_token(c, 1)) == fenced_write::applied);
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r->status == outbox_status::pending);
         SETTLE_EXPECT(r->attempts == 0, "the claim's attempt is given back");
         SETTLE_EXPECT(r->next_attempt_at == outbox_t0());
         SETTLE_EXPECT(r->claim_owner.empty());
         const auto again = outbox_claim(f.store, "relay-b", outbox_at(2), outbox_at(32));
         SETTLE_EXPECT(outbox_ids(again) == outbox_ids_of({1}), "another relay takes it at once");
     }},
    {"a dead letter keeps its payload and reason and is never claimed",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_dead(f.store, 1, outbox_token(c, 1), outbox_at(3),
                                   "schema rejected") == fenced_write::applied);
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r->status == outbox_status::dead);
         SETTLE_EXPECT(r->last_error == "schema rejected");
         SETTLE_EXPECT(r->payload == outbox_message_of(1).payload);
         SETTLE_EXPECT(r->headers == outbox_message_of(1).headers);
         SETTLE_EXPECT(r->finished_at == outbox_at(3));
         SETTLE_EXPECT(r->claim_owner.empty());
         SETTLE_EXPECT(
             outbox_claim(f.store, "relay-b", outbox_at(86400), outbox_at(86430)).empty());
     }},
    {"a requeued dead letter is due at once with a fresh count",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_dead(f.store, 1, outbox_token(c, 1), outbox_at(3), "schema rejected");
         SETTLE_EXPECT(outbox_requeue(f.store, 1, outbox_at(100)));
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r->status == outbox_status::pending);
         SETTLE_EXPECT(r->attempts == 0);
         SETTLE_EXPECT(r->next_attempt_at == outbox_at(100));
         SETTLE_EXPECT(r->last_error == "schema rejected", "the reason stays for the operator");
         SETTLE_EXPECT(r->payload == outbox_message_of(1).payload);
         SETTLE_EXPECT(!outbox_requeue(f.store, 1, outbox_at(101)), "it is no dead letter now");
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(99), outbox_at(129)).empty());
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(100), outbox_at(130)).size() ==
                       1);
     }},
    {"requeue leaves every record that is not a dead letter alone",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         outbox_append(f.store, 2, outbox_t0());
         outbox_append(f.store, 3, outbox_at(100));
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_delivered(f.store, 1, outbox_token(c, 1), outbox_at(1));
         const auto in_flight = outbox_find(f.store, 2);
         const auto pending = outbox_find(f.store, 3);
         SETTLE_EXPECT(!outbox_requeue(f.store, 1, outbox_at(5)), "delivered");
         SETTLE_EXPECT(!outbox_requeue(f.store, 2, outbox_at(5)), "in flight");
         SETTLE_EXPECT(!outbox_requeue(f.store, 3, outbox_at(5)), "pending");
         SETTLE_EXPECT(!outbox_requeue(f.store, 9, outbox_at(5)), "unknown");
         SETTLE_EXPECT(outbox_find(f.store, 2) == in_flight);
         SETTLE_EXPECT(outbox_find(f.store, 3) == pending);
         SETTLE_EXPECT(outbox_find(f.store, 1)->status == outbox_status::delivered);
     }},
    {"dead letters are listed oldest first in pages",
     [](Fixture& f) {
         using namespace detail;
         for (unsigned n = 1; n <= 5; ++n) {
             outbox_append(f.store, n, outbox_t0());
         }
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         for (const unsigned n : {4U, 1U, 3U}) {
             (void)outbox_dead(f.store, n, outbox_token(c, n), outbox_at(1));
         }
         (void)outbox_delivered(f.store, 2, outbox_token(c, 2), outbox_at(1));
         auto tx = f.store.begin();
         const auto first = f.store.dead_letters(tx, 0, 2);
         SETTLE_EXPECT(outbox_ids(first) == outbox_ids_of({1, 3}));
         SETTLE_EXPECT(first[0].last_error == "unknown topic");
         const auto second = f.store.dead_letters(tx, first.back().sequence, 2);
         SETTLE_EXPECT(outbox_ids(second) == outbox_ids_of({4}));
         SETTLE_EXPECT(f.store.dead_letters(tx, second.back().sequence, 2).empty());
         SETTLE_EXPECT(f.store.dead_letters(tx, 0, 0).empty());
         tx.commit();
     }},
    {"a record waits while an older record with its ordering key is undelivered",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0(), "order-1");
         outbox_append(f.store, 2, outbox_t0(), "order-1");
         outbox_append(f.store, 3, outbox_t0(), "order-2");
         outbox_append(f.store, 4, outbox_t0());
         outbox_append(f.store, 5, outbox_t0());
         const auto first = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_same_set(outbox_ids(first), outbox_ids_of({1, 3, 4, 5})),
                       "one record per key; unordered records are free");
         SETTLE_EXPECT(outbox_claim(f.store, "relay-b", outbox_at(1), outbox_at(31)).empty(),
                       "2 waits while 1 is in flight");
         (void)outbox_reschedule(f.store, 1, outbox_token(first, 1), outbox_at(10));
         SETTLE_EXPECT(outbox_claim(f.store, "relay-b", outbox_at(5), outbox_at(35)).empty(),
                       "2 waits while 1 is pending, though 2 is due");
         const auto again = outbox_claim(f.store, "relay-b", outbox_at(10), outbox_at(40));
         SETTLE_EXPECT(outbox_ids(again) == outbox_ids_of({1}));
         SETTLE_EXPECT(outbox_delivered(f.store, 1, outbox_token(again, 1), outbox_at(11)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_at(11), outbox_at(41))) ==
                       outbox_ids_of({2}));
     }},
    {"a dead letter blocks its ordering key until requeued",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0(), "order-1");
         outbox_append(f.store, 2, outbox_t0(), "order-1");
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_dead(f.store, 1, outbox_token(c, 1), outbox_at(1));
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(86400), outbox_at(86430)).empty(),
                       "2 stays behind the dead letter");
         SETTLE_EXPECT(outbox_requeue(f.store, 1, outbox_at(86400)));
         const auto again = outbox_claim(f.store, "relay-a", outbox_at(86400), outbox_at(86430));
         SETTLE_EXPECT(outbox_ids(again) == outbox_ids_of({1}));
         (void)outbox_delivered(f.store, 1, outbox_token(again, 1), outbox_at(86401));
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_at(86401),
                                               outbox_at(86431))) == outbox_ids_of({2}));
     }},
    {"records of a key are claimable one after another as each is delivered",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0(), "order-1");
         auto tx = f.store.begin();
         (void)f.store.append(tx, outbox_message_of(2, "order-1"), outbox_at(1));
         (void)f.store.append(tx, outbox_message_of(3, "order-1"), outbox_at(1));
         tx.commit();
         for (unsigned n = 1; n <= 3; ++n) {
             const auto claimed = outbox_claim(f.store, "relay-a", outbox_at(10), outbox_at(40));
             SETTLE_EXPECT(outbox_ids(claimed) == outbox_ids_of({n}));
             (void)outbox_delivered(f.store, n, outbox_token(claimed, n), outbox_at(10));
         }
         outbox_append(f.store, 4, outbox_at(20), "order-1");
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_at(20), outbox_at(50))) ==
                           outbox_ids_of({4}),
                       "a key whose records were all delivered is free");
     }},
    {"claims and outcomes roll back with their transaction",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0(), "order-1");
         outbox_append(f.store, 2, outbox_t0(), "order-1");
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.claim(tx, "relay-a", outbox_t0(), outbox_at(30), 10).size() ==
                           1);
         }
         const auto claimed = outbox_claim(f.store, "relay-b", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_ids(claimed) == outbox_ids_of({1}), "the rolled back claim is gone");
         SETTLE_EXPECT(claimed[0].attempts == 1);
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.mark_delivered(tx, outbox_id(1), claimed[0].claim_token,
                                                  outbox_at(1)) == fenced_write::applied);
         }
         SETTLE_EXPECT(outbox_find(f.store, 1) == claimed[0]);
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(1), outbox_at(31)).empty(),
                       "2 still waits behind 1");
         {
             auto tx = f.store.begin();
             (void)f.store.dead_letter(tx, outbox_id(1), claimed[0].claim_token, "x", outbox_at(1));
         }
         SETTLE_EXPECT(outbox_find(f.store, 1) == claimed[0]);
         (void)outbox_dead(f.store, 1, outbox_token(claimed, 1), outbox_at(2));
         const auto dead = outbox_find(f.store, 1);
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.requeue(tx, outbox_id(1), outbox_at(3)));
         }
         SETTLE_EXPECT(outbox_find(f.store, 1) == dead);
     }},
    {"purge removes only delivered records finished before the cut",
     [](Fixture& f) {
         using namespace detail;
         for (unsigned n = 1; n <= 6; ++n) {
             outbox_append(f.store, n, outbox_t0());
         }
         const auto c = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 5);
         (void)outbox_delivered(f.store, 1, outbox_token(c, 1), outbox_at(10));
         (void)outbox_delivered(f.store, 2, outbox_token(c, 2), outbox_at(10));
         (void)outbox_delivered(f.store, 3, outbox_token(c, 3), outbox_at(20));
         (void)outbox_dead(f.store, 4, outbox_token(c, 4), outbox_at(5));  // 5 in flight, 6 pending
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.purge(tx, outbox_at(20), 0) == 0);
         SETTLE_EXPECT(f.store.purge(tx, outbox_at(20), 1) == 1, "bounded by the limit");
         SETTLE_EXPECT(f.store.purge(tx, outbox_at(20), 10) == 1, "3 finished at the cut");
         SETTLE_EXPECT(f.store.purge(tx, outbox_at(20), 10) == 0);
         tx.commit();
         SETTLE_EXPECT(!outbox_find(f.store, 1).has_value());
         SETTLE_EXPECT(!outbox_find(f.store, 2).has_value());
         SETTLE_EXPECT(outbox_find(f.store, 3).has_value());
         SETTLE_EXPECT(outbox_find(f.store, 4).has_value(), "dead letters are kept");
         SETTLE_EXPECT(outbox_find(f.store, 5).has_value());
         SETTLE_EXPECT(outbox_find(f.store, 6).has_value());
         auto later = f.store.begin();
         SETTLE_EXPECT(f.store.purge(later, outbox_at(86400), 10) == 1);
         later.commit();
         SETTLE_EXPECT(outbox_find(f.store, 4).has_value());
         SETTLE_EXPECT(outbox_find(f.store, 5).has_value());
         SETTLE_EXPECT(outbox_find(f.store, 6).has_value());
         SETTLE_EXPECT(outbox_append(f.store, 7, outbox_at(86400)) > 6,
                       "sequences keep increasing after purge");
     }},
    {"statistics count the backlog the live claims and the dead letters",
     [](Fixture& f) {
         using namespace detail;
         {
             auto tx = f.store.begin();
             SETTLE_EXPECT(f.store.statistics(tx, outbox_t0()) == outbox_statistics{},
                           "all zero when empty");
         }
         outbox_append(f.store, 1, outbox_t0());
         outbox_append(f.store, 2, outbox_at(10));
         outbox_append(f.store, 3, outbox_at(20));
         outbox_append(f.store, 4, outbox_at(30));
         outbox_append(f.store, 5, outbox_at(40));
         const auto c =
             outbox_claim(f.store, "relay-a", outbox_at(30), outbox_at(60), 3);  // 1, 2, 3
         (void)outbox_delivered(f.store, 1, outbox_token(c, 1), outbox_at(31));
         (void)outbox_dead(f.store, 2, outbox_token(c, 2), outbox_at(31));
         (void)outbox_claim(f.store, "relay-b", outbox_at(40), outbox_at(45), 1);  // 4
         auto tx = f.store.begin();
         const outbox_statistics at_50 = f.store.statistics(tx, outbox_at(50));
         SETTLE_EXPECT(at_50.backlog == 3, "3 and 4 in flight, 5 pending");
         SETTLE_EXPECT(at_50.in_flight == 1, "4's lease ended at 45");
         SETTLE_EXPECT(at_50.dead == 1);
         SETTLE_EXPECT(at_50.oldest_pending_age == std::chrono::seconds(30), "3, created at 20");
         tx.commit();
     }},
    {"statistics stop counting a claim as in flight the instant its lease ends",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         outbox_append(f.store, 2, outbox_t0());
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 1);  // 1
         {
             auto tx = f.store.begin();
             const outbox_statistics before =
                 f.store.statistics(tx, outbox_at(30) - std::chrono::microseconds(1));
             SETTLE_EXPECT(before.in_flight == 1, "live until the last instant of its lease");
             const outbox_statistics at_end = f.store.statistics(tx, outbox_at(30));
             SETTLE_EXPECT(at_end.in_flight == 0,
                           "a claim whose lease ends now is claimable again, so not in flight");
             SETTLE_EXPECT(at_end.backlog == 2, "it stays in the backlog");
             tx.commit();
         }
         const auto taken = outbox_claim(f.store, "relay-b", outbox_at(30), outbox_at(60));
         SETTLE_EXPECT(outbox_same_set(outbox_ids(taken), outbox_ids_of({1, 2})),
                       "the claim agrees: the record is due again at that instant");
         auto tx = f.store.begin();
         SETTLE_EXPECT(f.store.statistics(tx, outbox_at(30)).in_flight == 2);
         SETTLE_EXPECT(f.store.statistics(tx, outbox_at(60)).in_flight == 0);
         tx.commit();
     }},
}};

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TESTING_OUTBOX_STORE_SUITE_HPP
