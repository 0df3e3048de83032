// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_SHA256_HPP
#define SETTLE_SHA256_HPP

#include <settle/detail/hex.hpp>
#include <settle/error.hpp>
#include <settle/version.hpp>

#include <array>
#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

/// A SHA-256 digest: 32 bytes. Compares and orders bytewise (the order of the
/// hex text). A value type: no allocation, trivially copyable.
class sha256_digest {
public:
    ///@{
    /// A digest's size in bytes and in hex characters, its byte array type, and a digest made from
    /// such an array.
    static constexpr std::size_t byte_size = 32;
    static constexpr std::size_t hex_size = 64;
    using bytes_type = std::array<std::uint8_t, byte_size>;

    /// All zero bytes: a placeholder, not the digest of any known message.
    constexpr sha256_digest() noexcept = default;
    constexpr explicit sha256_digest(const bytes_type& value) noexcept : bytes_(value) {}
    ///@}

    /// The 32 bytes, in the order FIPS 180-4 writes them (H0 big-endian first).
    [[nodiscard]] constexpr const bytes_type& bytes() const noexcept { return bytes_; }

    /// Writes the 64 lowercase hex digits into out; no terminator, no allocation.
    constexpr void write_hex(std::span<char, hex_size> out) const noexcept {
        for (std::size_t i = 0; i < byte_size; ++i) {
            out[2 * i] = detail::hex_digits[bytes_[i] >> 4];
            out[2 * i + 1] = detail::hex_digits[bytes_[i] & 0x0f];
        }
    }

    /// The 64 lowercase hex digits, as sha256sum and openssl print them.
    [[nodiscard]] std::string to_hex() const {
        std::string text(hex_size, '0');
        write_hex(std::span<char, hex_size>(text.data(), hex_size));
        return text;
    }

    /// Exactly 64 hex digits, upper or lower case. Anything else (a prefix such
    /// as "0x", whitespace, a shorter or longer text) is refused with the
    /// position of the first offending character. Reads only text's characters.
    [[nodiscard]] static constexpr parse_result<sha256_digest> from_hex(
        std::string_view text) noexcept {
        constexpr std::string_view subject = "sha256 digest";
        bytes_type digest{};
        const std::size_t checked = text.size() < hex_size ? text.size() : hex_size;
        for (std::size_t i = 0; i < checked; ++i) {
            const unsigned value = detail::hex_value(text[i]);
            if (value == detail::not_hex) {
                return parse_error{subject, i, "expected a hex digit"};
            }
            const auto nibble = static_cast<std::uint8_t>(value);
            digest[i / 2] =
                static_cast<std::uint8_t>(i % 2 == 0 ? nibble << 4 : digest[i / 2] | nibble);
        }
        if (text.size() < hex_size) {
            return parse_error{subject, text.size(), "too short, expected 64 hex digits"};
        }
        if (text.size() > hex_size) {
            return parse_error{subject, hex_size, "too long, expected 64 hex digits"};
        }
        return sha256_digest(digest);
    }

    ///@{
    /// Compared and ordered byte by byte.
    friend constexpr bool operator==(const sha256_digest&, const sha256_digest&) noexcept = default;
    friend constexpr std::strong_ordering operator<=>(const sha256_digest&,
                                                      const sha256_digest&) noexcept = default;
    ///@}

private:
    bytes_type bytes_{};
};

namespace detail {

inline constexpr std::array<std::uint32_t, 8> sha256_initial = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

inline constexpr std::array<std::uint32_t, 64> sha256_round_constants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// FIPS 180-4 limits a message to fewer than 2^64 bits: at most 2^61 - 1 whole bytes.
inline constexpr std::uint64_t sha256_max_bytes = (std::uint64_t{1} << 61) - 1;

// The byte count after n more bytes; throws if the message would exceed the limit.
[[nodiscard]] constexpr std::uint64_t sha256_count(std::uint64_t total, std::size_t n) {
    if (static_cast<std::uint64_t>(n) > sha256_max_bytes - total) {
        throw settle::error(errc::invalid_argument,
                            "sha256: message longer than 2^64 - 1 bits (FIPS 180-4 limit)");
    }
    return total + static_cast<std::uint64_t>(n);
}

template <class Byte>
[[nodiscard]] constexpr std::uint32_t sha256_load(const Byte* p) noexcept {
    return static_cast<std::uint32_t>(static_cast<std::uint8_t>(p[0])) << 24 |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(p[1])) << 16 |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(p[2])) << 8 |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(p[3]));
}

// One application of the compression function (FIPS 180-4, 6.2.2) to a
// 64-byte block. Byte is std::uint8_t, std::byte or char.
template <class Byte>
constexpr void sha256_compress(std::array<std::uint32_t, 8>& hash, const Byte* block) noexcept {
    std::array<std::uint32_t, 16> w{};
    for (std::size_t t = 0; t < 16; ++t) {
        w[t] = sha256_load(block + 4 * t);
    }
    std::uint32_t a = hash[0];
    std::uint32_t b = hash[1];
    std::uint32_t c = hash[2];
    std::uint32_t d = hash[3];
    std::uint32_t e = hash[4];
    std::uint32_t f = hash[5];
    std::uint32_t g = hash[6];
    std::uint32_t h = hash[7];

    // W_t for 16 <= t < 64, kept in a 16-word window: W_t overwrites W_{t-16}.
    const auto schedule = [&w](std::size_t t) noexcept {
        const std::uint32_t w15 = w[(t - 15) & 15];
        const std::uint32_t w2 = w[(t - 2) & 15];
        const std::uint32_t s0 = std::rotr(w15, 7) ^ std::rotr(w15, 18) ^ (w15 >> 3);
        const std::uint32_t s1 = std::rotr(w2, 17) ^ std::rotr(w2, 19) ^ (w2 >> 10);
        w[t & 15] += s0 + w[(t - 7) & 15] + s1;
        return w[t & 15];
    };
    // One round with the working variables renamed instead of shifted: it
    // updates d and h in place; the caller rotates the roles.
    const auto round = [](std::uint32_t a_, std::uint32_t b_, std::uint32_t c_, std::uint32_t& d_,
                          std::uint32_t e_, std::uint32_t f_, std::uint32_t g_, std::uint32_t& h_,
                          std::uint32_t k_plus_w) noexcept {
        const std::uint32_t t1 = h_ + (std::rotr(e_, 6) ^ std::rotr(e_, 11) ^ std::rotr(e_, 25)) +
                                 ((e_ & f_) ^ (~e_ & g_)) + k_plus_w;
        const std::uint32_t t2 = (std::rotr(a_, 2) ^ std::rotr(a_, 13) ^ std::rotr(a_, 22)) +
                                 ((a_ & b_) ^ (a_ & c_) ^ (b_ & c_));
        d_ += t1;
        h_ = t1 + t2;
    };
    // Rounds 0 to 15 use the block's words as they are; eight rounds rename
    // every variable back to its role.
    const auto& k = sha256_round_constants;
    for (std::size_t t = 0; t < 16; t += 8) {
        round(a, b, c, d, e, f, g, h, k[t] + w[t]);
        round(h, a, b, c, d, e, f, g, k[t + 1] + w[t + 1]);
        round(g, h, a, b, c, d, e, f, k[t + 2] + w[t + 2]);
        round(f, g, h, a, b, c, d, e, k[t + 3] + w[t + 3]);
        round(e, f, g, h, a, b, c, d, k[t + 4] + w[t + 4]);
        round(d, e, f, g, h, a, b, c, k[t + 5] + w[t + 5]);
        round(c, d, e, f, g, h, a, b, k[t + 6] + w[t + 6]);
        round(b, c, d, e, f, g, h, a, k[t + 7] + w[t + 7]);
    }
    for (std::size_t t = 16; t < 64; t += 8) {
        round(a, b, c, d, e, f, g, h, k[t] + schedule(t));
        round(h, a, b, c, d, e, f, g, k[t + 1] + schedule(t + 1));
        round(g, h, a, b, c, d, e, f, k[t + 2] + schedule(t + 2));
        round(f, g, h, a, b, c, d, e, k[t + 3] + schedule(t + 3));
        round(e, f, g, h, a, b, c, d, k[t + 4] + schedule(t + 4));
        round(d, e, f, g, h, a, b, c, k[t + 5] + schedule(t + 5));
        round(c, d, e, f, g, h, a, b, k[t + 6] + schedule(t + 6));
        round(b, c, d, e, f, g, h, a, k[t + 7] + schedule(t + 7));
    }
    hash[0] += a;
    hash[1] += b;
    hash[2] += c;
    hash[3] += d;
    hash[4] += e;
    hash[5] += f;
    hash[6] += g;
    hash[7] += h;
}

// Appends n bytes to a message whose state is hash, whose unfinished block is
// block and whose length so far is length.
template <class Byte>
constexpr void sha256_absorb(std::array<std::uint32_t, 8>& hash,
                             std::array<std::uint8_t, 64>& block, std::uint64_t& length,
                             const Byte* data, std::size_t n) {
    auto used = static_cast<std::size_t>(length % 64);
    length = sha256_count(length, n);
    std::size_t i = 0;
    if (used != 0) {
        for (; i < n && used < 64; ++i) {
            block[used++] = static_cast<std::uint8_t>(data[i]);
        }
        if (used < 64) {
            return;
        }
        sha256_compress(hash, block.data());
    }
    for (; n - i >= 64; i += 64) {
        sha256_compress(hash, data + i);
    }
    for (std::size_t j = 0; i < n; ++i, ++j) {
        block[j] = static_cast<std::uint8_t>(data[i]);
    }
}

}  // namespace detail

/// SHA-256 as FIPS 180-4 specifies it, portable C++ with no assembly, usable in
/// constant expressions. Feed bytes with update(), as often as you like, then
/// take the digest with finish(); or use hash() for a message you hold whole.
///
///     const settle::sha256_digest d = settle::sha256{}.update(scope).update(body).finish();
///
/// Costs about 3 ns a byte on a current x86-64 core, a third to a fifth of
/// libcrypto's speed where it can use the CPU's SHA instructions, and nothing
/// else: no allocation, no state outside the object (104 bytes). A message may
/// hold up to 2^61 - 1 bytes (2^64 - 1 bits, the standard's limit); update()
/// throws settle::error with errc::invalid_argument rather than go past it.
/// Copying a hasher copies the message so far, so a copy can finish() a prefix
/// while the original goes on.
class sha256 {
public:
    /// The hasher of the empty message.
    constexpr sha256() noexcept = default;

    /// Appends bytes to the message. Returns *this, so calls chain.
    constexpr sha256& update(std::span<const std::byte> data) {
        detail::sha256_absorb(state_, block_, length_, data.data(), data.size());
        return *this;
    }
    /// Adds bytes to the hash; returns the hasher.
    constexpr sha256& update(std::span<const std::uint8_t> data) {
        detail::sha256_absorb(state_, block_, length_, data.data(), data.size());
        return *this;
    }
    /// Appends the characters of text as bytes, without a terminator.
    constexpr sha256& update(std::string_view text) {
        detail::sha256_absorb(state_, block_, length_, text.data(), text.size());
        return *this;
    }

    /// The digest of everything passed to update() since construction or the
    /// last finish(). Afterwards the hasher is as newly constructed, ready for
    /// the next message.
    [[nodiscard]] constexpr sha256_digest finish() noexcept {
        const std::uint64_t bits = length_ * 8;  // cannot wrap: length_ < 2^61
        auto used = static_cast<std::size_t>(length_ % 64);
        block_[used++] = 0x80;
        if (used > 56) {
            while (used < 64) {
                block_[used++] = 0;
            }
            detail::sha256_compress(state_, block_.data());
            used = 0;
        }
        while (used < 56) {
            block_[used++] = 0;
        }
        for (std::size_t i = 0; i < 8; ++i) {
            block_[56 + i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
        }
        detail::sha256_compress(state_, block_.data());

        sha256_digest::bytes_type out{};
        for (std::size_t i = 0; i < 8; ++i) {
            out[4 * i] = static_cast<std::uint8_t>(state_[i] >> 24);
            out[4 * i + 1] = static_cast<std::uint8_t>(state_[i] >> 16);
            out[4 * i + 2] = static_cast<std::uint8_t>(state_[i] >> 8);
            out[4 * i + 3] = static_cast<std::uint8_t>(state_[i]);
        }
        *this = sha256{};
        return sha256_digest(out);
    }

    /// The digest of one whole message.
    [[nodiscard]] static constexpr sha256_digest hash(std::span<const std::byte> data) {
        return sha256{}.update(data).finish();
    }
    ///@{
    /// The digest of bytes, or of a text's bytes, in one call.
    [[nodiscard]] static constexpr sha256_digest hash(std::span<const std::uint8_t> data) {
        return sha256{}.update(data).finish();
    }
    [[nodiscard]] static constexpr sha256_digest hash(std::string_view text) {
        return sha256{}.update(text).finish();
    }
    ///@}

private:
    std::array<std::uint32_t, 8> state_ = detail::sha256_initial;
    std::array<std::uint8_t, 64> block_{};  // the bytes of an unfinished block
    std::uint64_t length_ = 0;              // bytes so far
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

/// \cond
// Digests are uniformly distributed, so their first bytes make a good hash.
template <>
struct std::hash<settle::sha256_digest> {
    [[nodiscard]] std::size_t operator()(const settle::sha256_digest& digest) const noexcept {
        std::size_t value = 0;
        for (std::size_t i = 0; i < sizeof(std::size_t); ++i) {
            value = value << 8 | digest.bytes()[i];
        }
        return value;
    }
};
/// \endcond

#endif  // SETTLE_SHA256_HPP
