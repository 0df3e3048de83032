// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_OUTBOX_STORE_SUITE_HPP
#define SETTLE_TESTING_OUTBOX_STORE_SUITE_HPP

// The conformance suite of settle::outbox_store: every promise the concept
// makes, as a case any backend can be run against (docs/conformance.md).
//
// The fixture is yours: a struct with a member `store` that models
// settle::outbox_store and starts empty. Build a fresh fixture for every
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
    const std::uint64_t sequence = s.append(tx, outbox_message_of(n, key), now);
    tx.commit();
    return sequence;
}

template <class S>
std::vector<outbox_record> outbox_claim(S& s, std::string_view owner, stored_time now,
                                        stored_time lease_until, std::size_t limit = 100) {
    auto tx = s.begin();
    std::vector<outbox_record> records = s.claim(tx, owner, now, lease_until, limit);
    tx.commit();
    return records;
}

template <class S>
fenced_write outbox_delivered(S& s, unsigned n, std::string_view owner, stored_time now) {
    auto tx = s.begin();
    const fenced_write w = s.mark_delivered(tx, outbox_id(n), owner, now);
    tx.commit();
    return w;
}

// Marks ids delivered in one call if the store offers it (the relay then
// uses it), else one at a time: the answers must be the same.
template <class S>
std::vector<fenced_write> outbox_delivered_together(S& s, const std::vector<uuid>& ids,
                                                    std::string_view owner, stored_time now) {
    auto tx = s.begin();
    std::vector<fenced_write> writes;
    if constexpr (::settle::detail::outbox_store_marks_delivered_together<S>) {
        writes = s.mark_delivered(tx, std::span<const uuid>(ids), owner, now);
    } else {
        for (const uuid& id : ids) {
            writes.push_back(s.mark_delivered(tx, id, owner, now));
        }
    }
    tx.commit();
    return writes;
}

template <class S>
fenced_write outbox_reschedule(S& s, unsigned n, std::string_view owner, stored_time at,
                               std::string_view error = "broker timeout") {
    auto tx = s.begin();
    const fenced_write w = s.reschedule(tx, outbox_id(n), owner, at, error);
    tx.commit();
    return w;
}

template <class S>
fenced_write outbox_dead(S& s, unsigned n, std::string_view owner, stored_time now,
                         std::string_view reason = "unknown topic") {
    auto tx = s.begin();
    const fenced_write w = s.dead_letter(tx, outbox_id(n), owner, reason, now);
    tx.commit();
    return w;
}

template <class S>
fenced_write outbox_release(S& s, unsigned n, std::string_view owner) {
    auto tx = s.begin();
    const fenced_write w = s.release(tx, outbox_id(n), owner);
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

// The cases, each with the promise it checks as its name.
template <class Fixture>
inline constexpr std::array<test_case<Fixture>, 27> outbox_store_suite{{
    {"an appended record is pending and due at once",
     [](Fixture& f) {
         using namespace detail;
         static_assert(settle::outbox_store<std::remove_cvref_t<decltype(f.store)>>);
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
         const auto claimed = outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_ids(claimed) == outbox_ids_of({1}), "due at its creation time");
     }},
    {"appends get increasing sequences",
     [](Fixture& f) {
         using namespace detail;
         const std::uint64_t a = outbox_append(f.store, 1, outbox_t0());
         const std::uint64_t b = outbox_append(f.store, 2, outbox_t0(), "order-1");
         auto tx = f.store.begin();
         const std::uint64_t c = f.store.append(tx, outbox_message_of(3), outbox_t0());
         const std::uint64_t d = f.store.append(tx, outbox_message_of(4), outbox_t0());
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
    {"a nil or existing id is refused",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         bool refused = false;
         try {
             auto tx = f.store.begin();
             outbox_message nil = outbox_message_of(2);
             nil.id = uuid{};
             (void)f.store.append(tx, std::move(nil), outbox_t0());
         } catch (const settle::error&) {
             refused = true;
         }
         SETTLE_EXPECT(refused, "a nil id throws settle::error");
         refused = false;
         try {
             auto tx = f.store.begin();
             (void)f.store.append(tx, outbox_message_of(1), outbox_at(5));
         } catch (const settle::error&) {
             refused = true;
         }
         SETTLE_EXPECT(refused, "an existing id throws settle::error");
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r && r->created_at == outbox_t0(), "the existing record is unchanged");
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
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         const auto taken = outbox_claim(f.store, "relay-b", outbox_at(30), outbox_at(60));
         SETTLE_EXPECT(outbox_ids(taken) == outbox_ids_of({1}), "due the instant the lease ends");
         SETTLE_EXPECT(taken[0].claim_owner == "relay-b");
         SETTLE_EXPECT(taken[0].claim_expires_at == outbox_at(60));
         SETTLE_EXPECT(taken[0].attempts == 2);
     }},
    {"a record is not due before its next attempt time",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, "relay-a", outbox_at(60)) ==
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
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30),
                                               1)) == outbox_ids_of({1}),
                       "the lowest sequence among records due at the same time");
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_reschedule(f.store, 1, "relay-a", outbox_at(50));
         (void)outbox_reschedule(f.store, 2, "relay-a", outbox_at(40));
         (void)outbox_reschedule(f.store, 3, "relay-a", outbox_at(45));
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_at(60), outbox_at(90),
                                               2)) == outbox_ids_of({2, 3}));
     }},
    {"an outcome applies only while its owner holds the claim",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         const auto taken = outbox_claim(f.store, "relay-b", outbox_at(40), outbox_at(70));
         SETTLE_EXPECT(taken.size() == 1);
         SETTLE_EXPECT(outbox_delivered(f.store, 1, "relay-a", outbox_at(41)) ==
                       fenced_write::stale);
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, "relay-a", outbox_at(99)) ==
                       fenced_write::stale);
         SETTLE_EXPECT(outbox_dead(f.store, 1, "relay-a", outbox_at(41)) == fenced_write::stale);
         SETTLE_EXPECT(outbox_release(f.store, 1, "relay-a") == fenced_write::stale);
         SETTLE_EXPECT(outbox_find(f.store, 1) == taken[0], "the new owner's claim is untouched");
         SETTLE_EXPECT(outbox_delivered(f.store, 1, "relay-b", outbox_at(42)) ==
                       fenced_write::applied);
     }},
    {"an outcome applies after the lease ended when nobody took over",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_delivered(f.store, 1, "relay-a", outbox_at(3600)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_find(f.store, 1)->status == outbox_status::delivered);
     }},
    {"outcomes on unknown or unclaimed records are stale",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());  // pending, never claimed
         for (const unsigned n : {1U, 9U}) {
             SETTLE_EXPECT(outbox_delivered(f.store, n, "relay-a", outbox_t0()) ==
                           fenced_write::stale);
             SETTLE_EXPECT(outbox_reschedule(f.store, n, "relay-a", outbox_t0()) ==
                           fenced_write::stale);
             SETTLE_EXPECT(outbox_dead(f.store, n, "relay-a", outbox_t0()) == fenced_write::stale);
             SETTLE_EXPECT(outbox_release(f.store, n, "relay-a") == fenced_write::stale);
         }
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r && r->status == outbox_status::pending && r->attempts == 0);
         SETTLE_EXPECT(!outbox_find(f.store, 9).has_value(), "no record is made up");
     }},
    {"a delivered record is settled for good",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_delivered(f.store, 1, "relay-a", outbox_at(2)) ==
                       fenced_write::applied);
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r->status == outbox_status::delivered);
         SETTLE_EXPECT(r->finished_at == outbox_at(2));
         SETTLE_EXPECT(r->claim_owner.empty());
         SETTLE_EXPECT(r->attempts == 1);
         SETTLE_EXPECT(outbox_delivered(f.store, 1, "relay-a", outbox_at(3)) ==
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
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 2);   // 1, 2
         (void)outbox_claim(f.store, "relay-b", outbox_at(1), outbox_at(31), 1);  // 3
         (void)outbox_claim(f.store, "relay-a", outbox_at(1), outbox_at(2), 1);   // 4, lease ends
         const auto writes = outbox_delivered_together(
             f.store, outbox_ids_of({1, 3, 5, 9, 2, 1, 4}), "relay-a", outbox_at(5));
         constexpr auto applied = fenced_write::applied;
         constexpr auto stale = fenced_write::stale;
         SETTLE_EXPECT((writes == std::vector<fenced_write>{applied, stale, stale, stale, applied,
                                                            stale, applied}),
                       "ids held by another owner, pending, unknown or repeated are stale; an "
                       "ended lease nobody took over still applies");
         for (const unsigned n : {1U, 2U, 4U}) {
             const auto r = outbox_find(f.store, n);
             SETTLE_EXPECT(r->status == outbox_status::delivered &&
                           r->finished_at == outbox_at(5) && r->claim_owner.empty());
         }
         const auto other = outbox_find(f.store, 3);
         SETTLE_EXPECT(other->status == outbox_status::in_flight &&
                       other->claim_owner == "relay-b");
         SETTLE_EXPECT(outbox_find(f.store, 5)->status == outbox_status::pending);
         SETTLE_EXPECT(!outbox_find(f.store, 9).has_value(), "no record is made up");
     }},
    {"a rescheduled record is pending at the given time with the error",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_reschedule(f.store, 1, "relay-a", outbox_at(5), "503 from broker") ==
                       fenced_write::applied);
         const auto r = outbox_find(f.store, 1);
         SETTLE_EXPECT(r->status == outbox_status::pending);
         SETTLE_EXPECT(r->next_attempt_at == outbox_at(5));
         SETTLE_EXPECT(r->last_error == "503 from broker");
         SETTLE_EXPECT(r->attempts == 1, "the attempt stays counted");
         SETTLE_EXPECT(r->claim_owner.empty());
         SETTLE_EXPECT(
             outbox_reschedule(f.store, 1, "relay-a", outbox_at(9)) == fenced_write::stale,
             "the claim ended with the reschedule");
     }},
    {"a released record is due as if it had not been claimed",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0());
         (void)outbox_claim(f.store, "relay-a", outbox_at(1), outbox_at(31));
         SETTLE_EXPECT(outbox_release(f.store, 1, "relay-a") == fenced_write::applied);
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
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         SETTLE_EXPECT(outbox_dead(f.store, 1, "relay-a", outbox_at(3), "schema rejected") ==
                       fenced_write::applied);
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
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_dead(f.store, 1, "relay-a", outbox_at(3), "schema rejected");
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
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_delivered(f.store, 1, "relay-a", outbox_at(1));
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
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         for (const unsigned n : {4U, 1U, 3U}) {
             (void)outbox_dead(f.store, n, "relay-a", outbox_at(1));
         }
         (void)outbox_delivered(f.store, 2, "relay-a", outbox_at(1));
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
         (void)outbox_reschedule(f.store, 1, "relay-a", outbox_at(10));
         SETTLE_EXPECT(outbox_claim(f.store, "relay-b", outbox_at(5), outbox_at(35)).empty(),
                       "2 waits while 1 is pending, though 2 is due");
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-b", outbox_at(10), outbox_at(40))) ==
                       outbox_ids_of({1}));
         SETTLE_EXPECT(outbox_delivered(f.store, 1, "relay-b", outbox_at(11)) ==
                       fenced_write::applied);
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_at(11), outbox_at(41))) ==
                       outbox_ids_of({2}));
     }},
    {"a dead letter blocks its ordering key until requeued",
     [](Fixture& f) {
         using namespace detail;
         outbox_append(f.store, 1, outbox_t0(), "order-1");
         outbox_append(f.store, 2, outbox_t0(), "order-1");
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30));
         (void)outbox_dead(f.store, 1, "relay-a", outbox_at(1));
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(86400), outbox_at(86430)).empty(),
                       "2 stays behind the dead letter");
         SETTLE_EXPECT(outbox_requeue(f.store, 1, outbox_at(86400)));
         SETTLE_EXPECT(outbox_ids(outbox_claim(f.store, "relay-a", outbox_at(86400),
                                               outbox_at(86430))) == outbox_ids_of({1}));
         (void)outbox_delivered(f.store, 1, "relay-a", outbox_at(86401));
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
             (void)outbox_delivered(f.store, n, "relay-a", outbox_at(10));
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
             SETTLE_EXPECT(f.store.mark_delivered(tx, outbox_id(1), "relay-b", outbox_at(1)) ==
                           fenced_write::applied);
         }
         SETTLE_EXPECT(outbox_find(f.store, 1) == claimed[0]);
         SETTLE_EXPECT(outbox_claim(f.store, "relay-a", outbox_at(1), outbox_at(31)).empty(),
                       "2 still waits behind 1");
         {
             auto tx = f.store.begin();
             (void)f.store.dead_letter(tx, outbox_id(1), "relay-b", "x", outbox_at(1));
         }
         SETTLE_EXPECT(outbox_find(f.store, 1) == claimed[0]);
         (void)outbox_dead(f.store, 1, "relay-b", outbox_at(2));
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
         (void)outbox_claim(f.store, "relay-a", outbox_t0(), outbox_at(30), 5);
         (void)outbox_delivered(f.store, 1, "relay-a", outbox_at(10));
         (void)outbox_delivered(f.store, 2, "relay-a", outbox_at(10));
         (void)outbox_delivered(f.store, 3, "relay-a", outbox_at(20));
         (void)outbox_dead(f.store, 4, "relay-a", outbox_at(5));  // 5 in flight, 6 pending
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
         (void)outbox_claim(f.store, "relay-a", outbox_at(30), outbox_at(60), 3);  // 1, 2, 3
         (void)outbox_delivered(f.store, 1, "relay-a", outbox_at(31));
         (void)outbox_dead(f.store, 2, "relay-a", outbox_at(31));
         (void)outbox_claim(f.store, "relay-b", outbox_at(40), outbox_at(45), 1);  // 4
         auto tx = f.store.begin();
         const outbox_statistics at_50 = f.store.statistics(tx, outbox_at(50));
         SETTLE_EXPECT(at_50.backlog == 3, "3 and 4 in flight, 5 pending");
         SETTLE_EXPECT(at_50.in_flight == 1, "4's lease ended at 45");
         SETTLE_EXPECT(at_50.dead == 1);
         SETTLE_EXPECT(at_50.oldest_pending_age == std::chrono::seconds(30), "3, created at 20");
         tx.commit();
     }},
}};

}  // namespace conformance

SETTLE_END_NAMESPACE

#endif  // SETTLE_TESTING_OUTBOX_STORE_SUITE_HPP
