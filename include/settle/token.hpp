// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TOKEN_HPP
#define SETTLE_TOKEN_HPP

#include <settle/version.hpp>

#include <settle/error.hpp>

#include <compare>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <settle/detail/macro_scope.hpp>

// The counters that order writes: version stamps (which version of a value a
// write was based on) and fencing tokens (which grant of a lease or claim a
// writer holds). Both are one counter type, told apart by a tag so that a
// stamp is never passed where a token is expected.

SETTLE_BEGIN_NAMESPACE

/// A 64-bit counter that only moves up. Stores issue values from first()
/// upward; 0 is never issued, so a backend may use it for "none". Never wraps:
/// next() on last() throws. Trivially copyable, 8 bytes, no allocation.
/// Tag::name names the counter in error messages.
template <class Tag>
class counter {
public:
    /// The integer type of the value.
    using rep = std::uint64_t;

    /// A value read back from storage or from a client. Any value is representable.
    constexpr explicit counter(rep value) noexcept : value_(value) {}

    /// The lowest value a store issues: 1.
    [[nodiscard]] static constexpr counter first() noexcept { return counter(1); }
    /// The highest value there is: 2^64 - 1.
    [[nodiscard]] static constexpr counter last() noexcept {
        return counter(std::numeric_limits<rep>::max());
    }

    ///@{
    /// The value; whether a next value exists.
    [[nodiscard]] constexpr rep value() const noexcept { return value_; }
    [[nodiscard]] constexpr bool has_next() const noexcept { return *this != last(); }
    ///@}

    /// The value after this one. Throws settle::error (errc::invalid_argument)
    /// at last() instead of wrapping to 0; at a billion a second that takes
    /// 584 years.
    [[nodiscard]] constexpr counter next() const {
        if (!has_next()) {
            throw settle::error(errc::invalid_argument,
                                std::string(Tag::name) + "::next: the last one has no successor");
        }
        return counter(value_ + 1);
    }

    ///@{
    /// Compared and ordered by value.
    friend constexpr bool operator==(counter, counter) noexcept = default;
    friend constexpr std::strong_ordering operator<=>(counter, counter) noexcept = default;
    ///@}

private:
    rep value_;
};

/// Tells version_stamp apart from other counters.
struct version_stamp_tag {
    /// The name in messages.
    static constexpr std::string_view name = "version_stamp";
};
/// Tells fencing_token apart from other counters.
struct fencing_token_tag {
    /// The name in messages.
    static constexpr std::string_view name = "fencing_token";
};

/// The version of one key's value. Every write that applies gives the key a
/// stamp greater than any it had before (see settle::versioned_store).
using version_stamp = counter<version_stamp_tag>;

/// The grant a lease or a claim was made with. Each new grant of a key gets a
/// token greater than every earlier grant's, so a resource that remembers the
/// highest token it has seen can refuse a writer whose grant was superseded
/// (see settle::fence). Every claim in settle hands one out: leases,
/// idempotency claims and outbox claims.
using fencing_token = counter<fencing_token_tag>;

/// What a write made under a grant found: an idempotency completion, an outbox
/// delivery, a reschedule. Exhaustive: switch on it without a default.
enum class [[nodiscard]] fenced_write{
    applied,  ///< the grant was still the current one: the write was made
    stale,    ///< someone newer holds the record (taken over, finished, released or purged):
              ///< nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(fenced_write write) noexcept {
    switch (write) {
    case fenced_write::applied: return "applied";
    case fenced_write::stale: return "stale";
    }
    return "unknown settle::fenced_write";
}

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TOKEN_HPP
