// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_LEASE_HPP
#define SETTLE_LEASE_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/token.hpp>
#include <settle/versioned.hpp>

#include <chrono>
#include <compare>
#include <concepts>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <settle/detail/macro_scope.hpp>

// Leases with fencing tokens: the distributed lock, done safely.
//
// A lease says "holder H may work on key K until time T". It cannot stop H
// from working past T: H may pause (a garbage collection, a swapped-out VM, a
// partition) and wake after another holder took over, still believing it
// holds the lease. So every grant carries a fencing token that strictly
// increases, and the resource H writes to checks it (settle::fence): a write
// carrying a token lower than one the resource has already seen is refused.
// The lease keeps contenders apart while everyone is timely; the token keeps
// the resource safe when someone is not.

SETTLE_BEGIN_NAMESPACE

/// What a lease store keeps per key: the latest grant. Never erased, so the
/// token keeps counting across releases. The lease is free when holder is
/// empty or expires_at has passed.
struct lease_record {
    ///@{
    /// The holder, its token and the lease's end; equal when every field is.
    std::string holder;
    fencing_token token;
    stored_time expires_at;

    friend bool operator==(const lease_record&, const lease_record&) = default;
    ///@}
};

/// A fencing token persists as its value: 8 bytes, big-endian. Zero, which no
/// grant carries, is refused.
template <>
struct codec<fencing_token> {
    ///@{
    /// Encodes or decodes a fencing token: its value.
    [[nodiscard]] static bytes encode(fencing_token token) { return settle::encode(token.value()); }
    [[nodiscard]] static fencing_token decode(std::span<const std::byte> in) {
        const auto value = settle::decode<fencing_token::rep>(in);
        if (value == 0) {
            detail::throw_decode_error("fencing_token", "0 is not a token");
        }
        return fencing_token(value);
    }
    ///@}
};

/// A lease record persists as its token and its expiry in Unix microseconds
/// (8 bytes each, big-endian), then the holder's bytes: what a SQL backend's
/// versioned table stores for a lease store.
template <>
struct codec<lease_record> {
    ///@{
    /// Encodes or decodes a lease record: the token, the end time and the holder, in `fixed` bytes
    /// plus the holder's.
    static constexpr std::size_t fixed = sizeof(fencing_token::rep) + sizeof(std::int64_t);

    [[nodiscard]] static bytes encode(const lease_record& record) {
        bytes out = settle::encode(record.token);
        const bytes expires =
            settle::encode(std::int64_t{record.expires_at.time_since_epoch().count()});
        out.insert(out.end(), expires.begin(), expires.end());
        const auto* holder = reinterpret_cast<const std::byte*>(record.holder.data());
        out.insert(out.end(), holder, holder + record.holder.size());
        return out;
    }
    [[nodiscard]] static lease_record decode(std::span<const std::byte> in) {
        if (in.size() < fixed) {
            detail::throw_decode_error("lease_record", "expected at least " +
                                                           std::to_string(fixed) + " bytes, got " +
                                                           std::to_string(in.size()));
        }
        return lease_record{settle::decode<std::string>(in.subspan(fixed)),
                            settle::decode<fencing_token>(in.first(sizeof(fencing_token::rep))),
                            stored_time(std::chrono::microseconds(settle::decode<std::int64_t>(
                                in.subspan(sizeof(fencing_token::rep), sizeof(std::int64_t)))))};
    }
    ///@}
};

/// A lease: who holds which key, with which token, until when.
template <class Key>
struct lease {
    ///@{
    /// The leased key, the holder, its token and the lease's end; equal when every field is.
    Key key;
    std::string holder;
    fencing_token token;
    stored_time expires_at;

    friend bool operator==(const lease&, const lease&) = default;
    ///@}
};

/// A lease store: a versioned_store of lease_record. Any backend of
/// versioned_store serves, with this value type.
template <class S>
concept lease_store = versioned_store<S> && std::same_as<typename S::value_type, lease_record>;

/// A fence store: a versioned_store of fencing_token, the highest token seen
/// per resource. Any backend of versioned_store serves, with this value type.
template <class S>
concept fence_store = versioned_store<S> && std::same_as<typename S::value_type, fencing_token>;

enum class [[nodiscard]] acquire_outcome{
    acquired,  ///< the lease is yours, with a new token
    held,      ///< a live lease is held (by `current().holder`, possibly you); nothing changed
};

enum class [[nodiscard]] renew_outcome{
    renewed,  ///< the lease now runs until the new expiry; same token
    stale,    ///< it expired, was released, or was granted again since: stop working
};

enum class [[nodiscard]] release_outcome{
    released,  ///< the key is free; the next grant gets a greater token
    stale,     ///< the lease was granted again since; nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(acquire_outcome o) noexcept {
    switch (o) {
    case acquire_outcome::acquired: return "acquired";
    case acquire_outcome::held: return "held";
    }
    return "unknown settle::acquire_outcome";
}

[[nodiscard]] constexpr std::string_view to_string(renew_outcome o) noexcept {
    switch (o) {
    case renew_outcome::renewed: return "renewed";
    case renew_outcome::stale: return "stale";
    }
    return "unknown settle::renew_outcome";
}

[[nodiscard]] constexpr std::string_view to_string(release_outcome o) noexcept {
    switch (o) {
    case release_outcome::released: return "released";
    case release_outcome::stale: return "stale";
    }
    return "unknown settle::release_outcome";
}

template <class Store, wall_clock Clock>
class leases;

/// What leases::acquire returns. acquired: current() is your new lease.
/// held: current() is the live lease that stands in the way (its holder,
/// token and expiry). `if (auto got = grants.acquire(tx, ...))` is true when
/// the lease is yours.
template <class Key>
class [[nodiscard]] acquire_result {
public:
    ///@{
    /// The outcome, and one test for each of its values; true when acquired now. current() is the
    /// lease as stored afterwards.
    [[nodiscard]] acquire_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_acquired() const noexcept {
        return outcome_ == acquire_outcome::acquired;
    }
    [[nodiscard]] bool is_held() const noexcept { return outcome_ == acquire_outcome::held; }
    explicit operator bool() const noexcept { return is_acquired(); }
    [[nodiscard]] const lease<Key>& current() const noexcept { return current_; }
    ///@}

private:
    template <class S, wall_clock C>
    friend class leases;

    acquire_result(acquire_outcome outcome, lease<Key> current)
        : outcome_(outcome), current_(std::move(current)) {}

    acquire_outcome outcome_;
    lease<Key> current_;
};

/// What leases::renew returns. renewed: current() is the lease with its new
/// expiry. stale: current() is the lease as given; stop working under it.
template <class Key>
class [[nodiscard]] renew_result {
public:
    ///@{
    /// The outcome, and one test for each of its values; true when renewed. current() is the lease
    /// as stored afterwards.
    [[nodiscard]] renew_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_renewed() const noexcept { return outcome_ == renew_outcome::renewed; }
    [[nodiscard]] bool is_stale() const noexcept { return outcome_ == renew_outcome::stale; }
    explicit operator bool() const noexcept { return is_renewed(); }
    [[nodiscard]] const lease<Key>& current() const noexcept { return current_; }
    ///@}

private:
    template <class S, wall_clock C>
    friend class leases;

    renew_result(renew_outcome outcome, lease<Key> current)
        : outcome_(outcome), current_(std::move(current)) {}

    renew_outcome outcome_;
    lease<Key> current_;
};

/// What leases::release returns: whether the key was freed.
class [[nodiscard]] release_result {
public:
    ///@{
    /// The outcome, and one test for each of its values; true when released.
    [[nodiscard]] release_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_released() const noexcept {
        return outcome_ == release_outcome::released;
    }
    [[nodiscard]] bool is_stale() const noexcept { return outcome_ == release_outcome::stale; }
    explicit operator bool() const noexcept { return is_released(); }
    ///@}

private:
    template <class S, wall_clock C>
    friend class leases;

    explicit release_result(release_outcome outcome) noexcept : outcome_(outcome) {}

    release_outcome outcome_;
};

namespace detail {

// One static_assert per requirement of settle::lease_store. Returns whether
// S is one.
template <class S>
constexpr bool check_lease_store() {
    if constexpr (check_versioned_store<S>()) {
        static_assert(std::same_as<typename S::value_type, lease_record>,
                      "settle::lease_store: member type `value_type` is not settle::lease_record");
    }
    return lease_store<S>;
}

// The same for the store of settle::fence.
template <class S>
constexpr bool check_fence_store() {
    if constexpr (check_versioned_store<S>()) {
        static_assert(std::same_as<typename S::value_type, fencing_token>,
                      "settle::fence_store: member type `value_type` is not "
                      "settle::fencing_token");
    }
    return fence_store<S>;
}

}  // namespace detail

/// Grants, renews and releases leases kept in a lease store, reading the time
/// from a clock. Every operation runs in the caller's transaction: commit it
/// before relying on the outcome (a lease nobody else can see protects
/// nothing). Each operation is one load and at most one compare-and-set; if
/// the compare-and-set meets a newer stamp (another contender got there
/// first), it reads again and decides again.
///
/// Lease records outlive the process and are shared between processes, so
/// they hold wall-clock time (settle::stored_time): every contender's clock
/// must be a settle::wall_clock, with a skew well below the lease duration. Fencing makes a
/// wrong clock cost liveness, never safety: see settle::fence.
///
///     settle::leases grants(lease_table, clock);
///     auto tx = lease_table.begin();
///     auto got = grants.acquire(tx, "report-42", "worker-1", 30s);
///     tx.commit();
///     if (got) do_work(got.current().token);
template <class Store, wall_clock Clock>
class leases {
    static_assert(detail::check_lease_store<Store>());

public:
    ///@{
    /// The store's key and transaction types, and the time types of leases.
    using key_type = typename Store::key_type;
    using transaction = typename Store::transaction;
    using time_point = stored_time;
    using duration = std::chrono::microseconds;
    using lease_type = lease<key_type>;
    ///@}

    /// Both must outlive this object.
    leases(Store& store, Clock& clock) noexcept : store_(&store), clock_(&clock) {}

    /// Grants `holder` the lease on `key` until now + ttl, unless a live lease
    /// is held (by anyone, `holder` included: a live lease is never granted
    /// twice). A grant's token is one more than the previous grant's.
    /// Throws settle::error (errc::invalid_argument) for an empty holder or a
    /// ttl that is not positive.
    [[nodiscard]] acquire_result<key_type> acquire(transaction& tx, const key_type& key,
                                                   std::string_view holder, duration ttl) {
        if (holder.empty()) {
            throw settle::error(errc::invalid_argument, "leases::acquire: the holder is empty");
        }
        check_ttl(ttl, "leases::acquire: the ttl must be positive");
        for (int passes = 0;; ++passes) {
            const time_point now = to_stored_time(clock_->now());
            std::optional<versioned<record>> seen = store_->load(tx, key);
            if (seen && is_live(seen->value, now)) {
                return acquire_result<key_type>(acquire_outcome::held, to_lease(key, seen->value));
            }
            record next{std::string(holder),
                        seen ? seen->value.token.next() : fencing_token::first(),
                        detail::saturating_add(now, ttl)};
            lease_type granted = to_lease(key, next);
            const auto written =
                seen ? store_->compare_and_set(tx, key, seen->stamp, std::move(next))
                     : store_->insert(tx, key, std::move(next));
            if (written.outcome() == write_outcome::applied) {
                return acquire_result<key_type>(acquire_outcome::acquired, std::move(granted));
            }
            detail::count_conflict(passes, "leases::acquire");
        }
    }

    /// Extends a live lease to now + ttl, keeping its token. Lost when the
    /// lease expired (even if nobody took it since), was released, or was
    /// granted again. Throws settle::error (errc::invalid_argument) for a ttl
    /// that is not positive.
    [[nodiscard]] renew_result<key_type> renew(transaction& tx, const lease_type& held,
                                               duration ttl) {
        check_ttl(ttl, "leases::renew: the ttl must be positive");
        for (int passes = 0;; ++passes) {
            const time_point now = to_stored_time(clock_->now());
            std::optional<versioned<record>> seen = store_->load(tx, held.key);
            if (!seen || !is_same_grant(seen->value, held) || !is_live(seen->value, now)) {
                return renew_result<key_type>(renew_outcome::stale, held);
            }
            record next = seen->value;
            next.expires_at = detail::saturating_add(now, ttl);
            lease_type renewed = to_lease(held.key, next);
            const auto written =
                store_->compare_and_set(tx, held.key, seen->stamp, std::move(next));
            if (written.outcome() == write_outcome::applied) {
                return renew_result<key_type>(renew_outcome::renewed, std::move(renewed));
            }
            detail::count_conflict(passes, "leases::renew");
        }
    }

    /// Frees the key now, if the record still shows this grant (expired or
    /// not), so the next contender need not wait for the expiry. The token is
    /// kept, so the next grant's token is greater.
    [[nodiscard]] release_result release(transaction& tx, const lease_type& held) {
        for (int passes = 0;; ++passes) {
            const time_point now = to_stored_time(clock_->now());
            std::optional<versioned<record>> seen = store_->load(tx, held.key);
            if (!seen || !is_same_grant(seen->value, held)) {
                return release_result(release_outcome::stale);
            }
            record next = seen->value;
            next.holder.clear();
            next.expires_at = now < next.expires_at ? now : next.expires_at;
            const auto written =
                store_->compare_and_set(tx, held.key, seen->stamp, std::move(next));
            if (written.outcome() == write_outcome::applied) {
                return release_result(release_outcome::released);
            }
            detail::count_conflict(passes, "leases::release");
        }
    }

    /// The live lease on `key`, if any.
    [[nodiscard]] std::optional<lease_type> current(transaction& tx, const key_type& key) const {
        std::optional<versioned<record>> seen = store_->load(tx, key);
        if (!seen || !is_live(seen->value, to_stored_time(clock_->now()))) {
            return std::nullopt;
        }
        return to_lease(key, seen->value);
    }

private:
    using record = lease_record;

    static void check_ttl(duration ttl, const char* message) {
        if (ttl <= duration::zero()) {
            throw settle::error(errc::invalid_argument, message);
        }
    }
    static bool is_live(const record& r, time_point now) noexcept {
        return !r.holder.empty() && now < r.expires_at;
    }
    static bool is_same_grant(const record& r, const lease_type& l) noexcept {
        return !r.holder.empty() && r.token == l.token && r.holder == l.holder;
    }
    static lease_type to_lease(const key_type& key, const record& r) {
        return lease_type{key, r.holder, r.token, r.expires_at};
    }

    Store* store_;
    Clock* clock_;
};

// ---------------------------------------------------------------------------
// Fencing: the check on the resource side.

enum class [[nodiscard]] fence_outcome{
    admitted,  ///< the token is the highest seen for the resource: go ahead and write
    stale,     ///< a higher token was seen: the writer's lease was superseded; write nothing
};

[[nodiscard]] constexpr std::string_view to_string(fence_outcome o) noexcept {
    switch (o) {
    case fence_outcome::admitted: return "admitted";
    case fence_outcome::stale: return "stale";
    }
    return "unknown settle::fence_outcome";
}

template <class Store>
class fence;

/// What fence::admit returns. admitted: highest() is the token admitted.
/// stale: highest() is the higher token that was seen before.
class [[nodiscard]] fence_result {
public:
    ///@{
    /// The outcome, and one test for each of its values; true when the token was admitted.
    /// highest() is the highest token the fence has seen.
    [[nodiscard]] fence_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_admitted() const noexcept { return outcome_ == fence_outcome::admitted; }
    [[nodiscard]] bool is_stale() const noexcept { return outcome_ == fence_outcome::stale; }
    explicit operator bool() const noexcept { return is_admitted(); }
    [[nodiscard]] fencing_token highest() const noexcept { return highest_; }
    ///@}

private:
    template <class S>
    friend class fence;

    fence_result(fence_outcome outcome, fencing_token highest) noexcept
        : outcome_(outcome), highest_(highest) {}

    fence_outcome outcome_;
    fencing_token highest_;
};

/// The resource-side guard: remembers, per resource, the highest fencing token
/// that has written to it, in a versioned_store of fencing_token, and refuses
/// writes carrying a lower one. Check in the same transaction as the protected
/// write, so the write and the recorded token commit or roll back together:
///
///     settle::fence guard(fence_table);
///     auto tx = db.begin();
///     if (guard.admit(tx, "report-42", lease.token)) reports.put(tx, ...);
///     tx.commit();
///
/// Tokens compared on one resource must come from one lease key. Costs one
/// load and one compare-and-set per admitted write; the write happens even
/// when the token equals the highest, so two writers checking the same token
/// in concurrent transactions of a weaker-isolated backend are ordered by it.
template <class Store>
class fence {
    static_assert(detail::check_fence_store<Store>());

public:
    ///@{
    /// The store's key and transaction types; the fence works over that store.
    using key_type = typename Store::key_type;
    using transaction = typename Store::transaction;

    explicit fence(Store& store) noexcept : store_(&store) {}
    ///@}

    /// Admits `token` if no higher token has been admitted for `resource`,
    /// and records it as the highest.
    [[nodiscard]] fence_result admit(transaction& tx, const key_type& resource,
                                     fencing_token token) {
        for (int passes = 0;; ++passes) {
            std::optional<versioned<fencing_token>> seen = store_->load(tx, resource);
            if (seen && token < seen->value) {
                return fence_result(fence_outcome::stale, seen->value);
            }
            const auto written =
                seen ? store_->compare_and_set(tx, resource, seen->stamp, fencing_token(token))
                     : store_->insert(tx, resource, fencing_token(token));
            if (written.outcome() == write_outcome::applied) {
                return fence_result(fence_outcome::admitted, token);
            }
            detail::count_conflict(passes, "fence::admit");
        }
    }

    /// The highest token admitted for `resource`, if any.
    [[nodiscard]] std::optional<fencing_token> highest(transaction& tx,
                                                       const key_type& resource) const {
        std::optional<versioned<fencing_token>> seen = store_->load(tx, resource);
        if (!seen) {
            return std::nullopt;
        }
        return seen->value;
    }

private:
    Store* store_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_LEASE_HPP
