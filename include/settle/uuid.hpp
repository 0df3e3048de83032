// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_UUID_HPP
#define SETTLE_UUID_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/detail/hex.hpp>
#include <settle/error.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <settle/detail/macro_scope.hpp>

// UUIDs as RFC 9562 defines them, and a generator of version 7: ids that sort
// by creation time, for outbox records and message ids.
//
// A UUIDv7 is 48 bits of big-endian Unix time in milliseconds, the version
// 0b0111, 74 further bits and the variant 0b10. This generator fills the 74 bits
// by RFC 9562 section 6.2 Method 1, a fixed bit-length dedicated counter:
//
//   unix_ts_ms:48 | ver:4 | counter[41:30]:12 | var:2 | counter[29:0]:30 | random:32
//
// The 42-bit counter is seeded with random bits at each new millisecond and
// counts up by one for every further id in that millisecond; the last 32 bits
// are fresh random bits in every id. Ids from one generator strictly increase:
// when the clock stands still or goes backwards the generator stays on the
// newest millisecond it has used and counts on; when the counter would overflow
// it moves its timestamp one millisecond ahead of the clock and reseeds (the
// RFC's "increment the timestamp ahead of the actual time"). Either way the
// embedded time may run ahead of the clock until the clock catches up.

SETTLE_BEGIN_NAMESPACE

/// The layout family of a uuid: the variant field, RFC 9562 section 4.1.
enum class uuid_variant {
    ncs,        ///< 0xxx: reserved for NCS compatibility; includes the nil uuid
    rfc9562,    ///< 10xx: RFC 9562 (and RFC 4122) uuids, versions 1 to 8
    microsoft,  ///< 110x: reserved for Microsoft compatibility
    future,     ///< 111x: reserved for future definition; includes the max uuid
};

/// "ncs", "rfc9562", "microsoft", "future".
[[nodiscard]] constexpr std::string_view to_string(uuid_variant variant) noexcept {
    switch (variant) {
    case uuid_variant::ncs: return "ncs";
    case uuid_variant::rfc9562: return "rfc9562";
    case uuid_variant::microsoft: return "microsoft";
    case uuid_variant::future: return "future";
    }
    return "unknown settle::uuid_variant";
}

namespace detail {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "settle::uuid needs a little- or big-endian platform");

// x in big-endian byte order (a byte swap on little-endian machines).
[[nodiscard]] constexpr std::uint64_t uuid_big_endian(std::uint64_t x) noexcept {
    if constexpr (std::endian::native == std::endian::big) {
        return x;
    } else {
#if defined(__GNUC__) || defined(__clang__)
        return __builtin_bswap64(x);
#else
        x = ((x & 0x00FF'00FF'00FF'00FFU) << 8) | ((x >> 8) & 0x00FF'00FF'00FF'00FFU);
        x = ((x & 0x0000'FFFF'0000'FFFFU) << 16) | ((x >> 16) & 0x0000'FFFF'0000'FFFFU);
        return (x << 32) | (x >> 32);
#endif
    }
}

// The big-endian 64-bit word at octets[8 * half].
[[nodiscard]] constexpr std::uint64_t uuid_load_be64(const std::array<std::byte, 16>& octets,
                                                     std::size_t half) noexcept {
    const auto words = std::bit_cast<std::array<std::uint64_t, 2>>(octets);
    return uuid_big_endian(words[half]);
}

[[nodiscard]] constexpr std::array<std::byte, 16> uuid_bytes_of(std::uint64_t high,
                                                                std::uint64_t low) noexcept {
    return std::bit_cast<std::array<std::byte, 16>>(
        std::array<std::uint64_t, 2>{uuid_big_endian(high), uuid_big_endian(low)});
}

// Where the two hex digits of each byte sit in the canonical text.
inline constexpr std::array<std::size_t, 16> uuid_digit_offsets{0,  2,  4,  6,  9,  11, 14, 16,
                                                                19, 21, 24, 26, 28, 30, 32, 34};

[[nodiscard]] constexpr bool uuid_hyphen_at(std::size_t position) noexcept {
    return position == 8 || position == 13 || position == 18 || position == 23;
}

[[nodiscard]] constexpr bool uuid_starts_with_urn(std::string_view text) noexcept {
    constexpr std::string_view urn = "urn:uuid:";
    if (text.size() < urn.size()) {
        return false;
    }
    for (std::size_t i = 0; i < urn.size(); ++i) {
        const char c = text[i];
        const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        if (lower != urn[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace detail

/// A 128-bit universally unique identifier: 16 bytes in network order.
/// Trivially copyable, no allocation; default-constructed it is the nil uuid.
/// Comparison is bytewise, which for version 7 ids is the order of their
/// timestamps and, from one generator, exactly their creation order. The
/// canonical text sorts the same way as the bytes.
class uuid {
public:
    /// Characters in the canonical text form, 8-4-4-4-12 hex digits with hyphens.
    static constexpr std::size_t text_size = 36;

    /// The nil uuid, 00000000-0000-0000-0000-000000000000.
    constexpr uuid() noexcept = default;
    /// The uuid with these 16 bytes, in network (big-endian) order, as stored.
    constexpr explicit uuid(std::span<const std::byte, 16> octets) noexcept {
        std::copy(octets.begin(), octets.end(), bytes_.begin());
    }

    /// The 16 bytes.
    [[nodiscard]] constexpr const std::array<std::byte, 16>& bytes() const noexcept {
        return bytes_;
    }

    /// The variant field (the top bits of byte 8).
    [[nodiscard]] constexpr uuid_variant variant() const noexcept {
        const auto top = std::to_integer<unsigned>(bytes_[8]) >> 5;
        if (top < 0b100) {
            return uuid_variant::ncs;
        }
        if (top < 0b110) {
            return uuid_variant::rfc9562;
        }
        return top == 0b110 ? uuid_variant::microsoft : uuid_variant::future;
    }

    /// The version field, 0 to 15 (the top four bits of byte 6): 7 for ids from
    /// uuid_v7_generator, 4 for random uuids. Means something only when
    /// variant() is uuid_variant::rfc9562.
    [[nodiscard]] constexpr int version() const noexcept {
        return std::to_integer<int>(bytes_[6] >> 4);
    }

    /// For a version 7 uuid of the RFC 9562 variant, the Unix time in
    /// milliseconds in its first 48 bits; for any other uuid, nullopt.
    [[nodiscard]] constexpr std::optional<std::chrono::sys_time<std::chrono::milliseconds>>
    timestamp() const noexcept {
        if (variant() != uuid_variant::rfc9562 || version() != 7) {
            return std::nullopt;
        }
        const std::uint64_t ms = detail::uuid_load_be64(bytes_, 0) >> 16;
        return std::chrono::sys_time<std::chrono::milliseconds>(
            std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms)));
    }

    /// Writes the canonical lowercase text, exactly text_size characters, into
    /// `out` and returns a view of it. No allocation.
    constexpr std::string_view write(std::span<char, text_size> out) const noexcept {
        for (std::size_t i = 0; i < bytes_.size(); ++i) {
            const auto byte = std::to_integer<unsigned>(bytes_[i]);
            out[detail::uuid_digit_offsets[i]] = detail::hex_digits[byte >> 4];
            out[detail::uuid_digit_offsets[i] + 1] = detail::hex_digits[byte & 0xF];
        }
        out[8] = out[13] = out[18] = out[23] = '-';
        return {out.data(), out.size()};
    }

    /// The canonical lowercase text: "017f22e2-79b0-7cc3-98c4-dc0c0c07398f".
    [[nodiscard]] std::string to_string() const {
        std::string text(text_size, '\0');
        (void)write(std::span<char, text_size>(text.data(), text_size));
        return text;
    }

    /// Reads the canonical 36-character form, hex digits in either case. Refuses
    /// everything else (braces, a urn:uuid: prefix, missing or misplaced
    /// hyphens, other lengths, other characters) with the position of the first
    /// offending character, or the input's length when it is too short. Reads
    /// nothing past the end of `text`; no allocation.
    [[nodiscard]] static constexpr parse_result<uuid> parse(std::string_view text) noexcept {
        if (text.size() == text_size && text[8] == '-' && text[13] == '-' && text[18] == '-' &&
            text[23] == '-') {
            std::array<std::uint64_t, 2> words{};
            unsigned invalid = 0;
            for (std::size_t i = 0; i < 16; ++i) {
                const std::size_t at = detail::uuid_digit_offsets[i];
                const unsigned high = detail::hex_value(text[at]);
                const unsigned low = detail::hex_value(text[at + 1]);
                invalid |= high | low;
                words[i / 8] = (words[i / 8] << 8) | (((high << 4) | low) & 0xFFU);
            }
            if ((invalid & detail::not_hex) == 0) {  // no character was outside the hex digits
                return uuid(detail::uuid_bytes_of(words[0], words[1]));
            }
        }
        return parse_slowly(text);
    }

    ///@{
    /// Compared and ordered byte by byte.
    friend constexpr bool operator==(const uuid&, const uuid&) noexcept = default;
    friend constexpr std::strong_ordering operator<=>(const uuid&, const uuid&) noexcept = default;
    ///@}

    /// Streams the canonical text (for logs and test diagnostics).
    template <class Traits>
    friend std::basic_ostream<char, Traits>& operator<<(std::basic_ostream<char, Traits>& out,
                                                        const uuid& id) {
        std::array<char, text_size> text{};
        return out << id.write(text);
    }

private:
    // Character by character, to find the first offending one.
    [[nodiscard]] static constexpr parse_result<uuid> parse_slowly(std::string_view text) noexcept {
        constexpr std::string_view subject = "uuid";
        if (!text.empty() && text.front() == '{') {
            return parse_error{subject, 0,
                               "braces are not accepted: expected 8-4-4-4-12 hex digits"};
        }
        if (detail::uuid_starts_with_urn(text)) {
            return parse_error{
                subject, 0, "the urn:uuid: prefix is not accepted: expected 8-4-4-4-12 hex digits"};
        }
        std::array<std::byte, 16> octets{};
        const std::size_t scanned = std::min(text.size(), text_size);
        std::size_t nibble = 0;
        for (std::size_t i = 0; i < scanned; ++i) {
            const char c = text[i];
            if (detail::uuid_hyphen_at(i)) {
                if (c != '-') {
                    return parse_error{subject, i, "expected '-'"};
                }
                continue;
            }
            const unsigned value = detail::hex_value(c);
            if (value > 0xFU) {
                return parse_error{subject, i, "expected a hex digit"};
            }
            const unsigned shift = (nibble % 2 == 0) ? 4U : 0U;
            octets[nibble / 2] |= static_cast<std::byte>(value << shift);
            ++nibble;
        }
        if (text.size() < text_size) {
            return parse_error{subject, text.size(), "too short: expected 36 characters"};
        }
        if (text.size() > text_size) {
            return parse_error{subject, text_size, "too long: expected 36 characters"};
        }
        return uuid(octets);
    }

    std::array<std::byte, 16> bytes_{};
};

namespace detail {

inline constexpr std::uint64_t uuid_max_unix_ms = (std::uint64_t{1} << 48) - 1;
inline constexpr std::uint64_t uuid_max_counter = (std::uint64_t{1} << 42) - 1;

[[noreturn]] inline void uuid_throw_before_1970() {
    throw error(errc::invalid_argument,
                "uuid: the clock reads before 1970-01-01T00:00:00Z; a UUIDv7 cannot hold it");
}

[[noreturn]] inline void uuid_throw_counter_exhausted() {
    throw error(errc::invalid_argument,
                "uuid: the counter overflowed in the last millisecond a UUIDv7 can hold "
                "(10889-08-02T05:31:50.655Z)");
}

[[noreturn]] inline void uuid_throw_beyond_48_bits() {
    throw error(errc::invalid_argument,
                "uuid: the clock reads after 10889-08-02T05:31:50.655Z (2^48 - 1 Unix "
                "milliseconds); a UUIDv7 cannot hold it");
}

// Unix milliseconds of `t`, rounded down; refuses what 48 bits cannot hold.
template <class Duration>
[[nodiscard]] std::uint64_t uuid_unix_ms(
    std::chrono::time_point<std::chrono::system_clock, Duration> t) {
    const auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
    if (ms < 0) {
        uuid_throw_before_1970();
    }
    if (static_cast<std::uint64_t>(ms) > uuid_max_unix_ms) {
        uuid_throw_beyond_48_bits();
    }
    return static_cast<std::uint64_t>(ms);
}

// `Bits` uniformly random bits from any uniform random bit generator: one call
// per draw when it yields 64 bits, several when it yields fewer bits, a
// std::uniform_int_distribution when its range is not a power of two.
template <int Bits, class Random>
[[nodiscard]] std::uint64_t uuid_random_bits(Random& random) {
    static_assert(Bits > 0 && Bits <= 64);
    using result_type = std::invoke_result_t<Random&>;
    static_assert(std::numeric_limits<result_type>::digits <= 64,
                  "settle::uuid_v7_generator needs a generator of at most 64-bit results");
    constexpr std::uint64_t low = static_cast<std::uint64_t>(Random::min());
    constexpr std::uint64_t range = static_cast<std::uint64_t>(Random::max()) - low;
    constexpr std::uint64_t mask = Bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << Bits) - 1;
    static_assert(range > 0, "a uniform random bit generator needs min() < max()");
    if constexpr (range == ~std::uint64_t{0}) {
        return static_cast<std::uint64_t>(random()) & mask;
    } else if constexpr ((range & (range + 1)) == 0) {
        constexpr int per_call = std::popcount(range);
        std::uint64_t value = static_cast<std::uint64_t>(random()) - low;
        for (int got = per_call; got < Bits; got += per_call) {
            value = (value << per_call) | (static_cast<std::uint64_t>(random()) - low);
        }
        return value & mask;
    } else {
        return std::uniform_int_distribution<std::uint64_t>(0, mask)(random);
    }
}

}  // namespace detail

/// Makes version 7 uuids from a wall clock and a uniform random bit generator,
/// both borrowed (they must outlive the generator). Every id it returns is
/// greater than the one before, whatever the clock does; see the top of this
/// header for how. Costs one clock read and one 64-bit random draw per id (two
/// in the first id of a millisecond); allocates nothing.
///
/// Not thread-safe: use one generator per thread, or guard one with a mutex.
/// Ids from different generators are unique (by their random bits) but ordered
/// only by their milliseconds. Not copyable: a copy would hand out the same
/// counter values as the original.
template <wall_clock Clock, std::uniform_random_bit_generator Random>
class uuid_v7_generator {
public:
    /// Lvalue references, so that a temporary clock or generator cannot dangle.
    uuid_v7_generator(Clock& clock, Random& random) noexcept : clock_(&clock), random_(&random) {}

    uuid_v7_generator(const uuid_v7_generator&) = delete;
    uuid_v7_generator& operator=(const uuid_v7_generator&) = delete;
    ///@{
    /// Movable, not copyable.
    uuid_v7_generator(uuid_v7_generator&&) noexcept = default;
    uuid_v7_generator& operator=(uuid_v7_generator&&) noexcept = default;
    ///@}
    ~uuid_v7_generator() = default;

    /// The next id. Throws settle::error (errc::invalid_argument) when the clock
    /// reads before 1970 or beyond 48 bits of milliseconds (the year 10889), or
    /// when the counter overflows in the last such millisecond; rethrows what the
    /// clock or the random generator throws. On a throw nothing changes.
    [[nodiscard]] uuid operator()() {
        const std::uint64_t now = detail::uuid_unix_ms(clock_->now());
        std::uint64_t ms = last_ms_;
        std::uint64_t counter = counter_;
        if (!started_ || now > ms) {
            ms = now;
            counter = detail::uuid_random_bits<42>(*random_);
        } else if (counter < detail::uuid_max_counter) {
            ++counter;
        } else {
            if (ms == detail::uuid_max_unix_ms) {
                detail::uuid_throw_counter_exhausted();
            }
            ++ms;
            counter = detail::uuid_random_bits<42>(*random_);
        }
        const std::uint64_t random_tail = detail::uuid_random_bits<32>(*random_);
        started_ = true;
        last_ms_ = ms;
        counter_ = counter;
        const std::uint64_t high = (ms << 16) | 0x7000U | (counter >> 30);
        const std::uint64_t low =
            (std::uint64_t{0b10} << 62) | ((counter & 0x3FFF'FFFFU) << 32) | random_tail;
        return uuid(detail::uuid_bytes_of(high, low));
    }

private:
    Clock* clock_;
    Random* random_;
    std::uint64_t last_ms_ = 0;
    std::uint64_t counter_ = 0;
    bool started_ = false;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

/// \cond
// Hashes all 128 bits; equal uuids hash equal. For unordered containers.
template <>
struct std::hash<settle::uuid> {
    [[nodiscard]] std::size_t operator()(const settle::uuid& id) const noexcept {
        const auto words = std::bit_cast<std::array<std::uint64_t, 2>>(id.bytes());
        // Multiply-xorshift rounds over both halves: a change in any bit spreads over all of h.
        std::uint64_t h = words[0] * 0x9E37'79B9'7F4A'7C15U;
        h ^= (h >> 32) ^ words[1];
        h *= 0xD6E8'FEB8'6659'FD93U;
        h ^= h >> 32;
        h *= 0x9E37'79B9'7F4A'7C15U;
        h ^= h >> 29;
        return static_cast<std::size_t>(h);
    }
};
/// \endcond

#endif  // SETTLE_UUID_HPP
