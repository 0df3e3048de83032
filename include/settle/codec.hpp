// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_CODEC_HPP
#define SETTLE_CODEC_HPP

#include <settle/version.hpp>

#include <settle/detail/hex.hpp>
#include <settle/error.hpp>

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

/// A persisted payload: what an outbox record carries, what an idempotency
/// record stores as its response.
using bytes = std::vector<std::byte>;

/// The customisation point that turns a T into bytes and back. Specialise it
/// for your own types, next to the type and before any use:
///
///     template <>
///     struct settle::codec<order_placed> {
///         static settle::bytes encode(const order_placed& event);
///         static order_placed decode(std::span<const std::byte> in);
///     };
///
/// decode must accept exactly what encode produces, and refuse anything else by
/// throwing settle::error with errc::decode_failed, never by returning garbage.
///
/// Built in, each with a fixed format that does not depend on the platform's
/// byte order:
/// - std::string and settle::bytes: the bytes as they are (no UTF-8 check).
/// - bool: one byte, 0x00 or 0x01; any other byte is refused.
/// - every integer type: sizeof(T) bytes, two's complement, big-endian (network
///   byte order). Use the fixed-width aliases (std::int32_t, ...) for payloads
///   read on other platforms: long and wchar_t change width between them.
/// - float and double: the IEEE 754 binary32 / binary64 bit pattern as a
///   big-endian integer; every pattern round-trips, NaN payloads and -0.0
///   included. long double has no codec: its format varies by platform.
/// - enums with a fixed underlying type (every enum class, and enum E : T): as
///   their underlying type. Any value of that type is accepted, as the language
///   allows; specialise codec for the enum to refuse values it does not name.
///   Enums without a fixed underlying type have no codec, because a value
///   outside their enumerators' range would be undefined behaviour; nor do
///   enums over bool (specialise codec for them).
/// A decode that fails names the format and what was wrong:
/// "uint32: expected 4 bytes, got 3". Decoding never reads outside its input.
template <class T>
struct codec;

namespace detail {

template <class T>
concept codec_is_specialised = requires {
    sizeof(codec<T>);
};

template <class T>
concept codec_encodes_to_bytes = requires(const T& value) {
    { codec<T>::encode(value) } -> std::same_as<bytes>;
};

template <class T>
concept codec_decodes_from_bytes = requires(std::span<const std::byte> in) {
    { codec<T>::decode(in) } -> std::same_as<T>;
};

}  // namespace detail

/// T has a complete codec: codec<T> is specialised, with
///   static settle::bytes encode(const T&)   and
///   static T decode(std::span<const std::byte>).
/// When it does not hold, the compiler names which of the three is missing.
template <class T>
concept codable = detail::codec_is_specialised<T> && detail::codec_encodes_to_bytes<T> &&
    detail::codec_decodes_from_bytes<T>;

/// The bytes that persist `value`; codec<T>::encode.
template <codable T>
[[nodiscard]] bytes encode(const T& value) {
    return codec<T>::encode(value);
}

/// The T that `in` holds; codec<T>::decode. Throws settle::error with
/// errc::decode_failed when `in` is not exactly an encoded T.
template <codable T>
[[nodiscard]] T decode(std::span<const std::byte> in) {
    return codec<T>::decode(in);
}

namespace detail {

[[noreturn]] inline void throw_decode_error(std::string_view format, std::string_view what) {
    std::string message(format);
    message += ": ";
    message += what;
    throw error(errc::decode_failed, message);
}

[[noreturn]] inline void throw_wrong_size(std::string_view format, std::size_t expected,
                                          std::size_t got) {
    throw_decode_error(format, "expected " + std::to_string(expected) +
                                   (expected == 1 ? " byte, got " : " bytes, got ") +
                                   std::to_string(got));
}

// "int8", "uint32", ...: the wire format of an integer type, for messages.
template <std::integral T>
[[nodiscard]] constexpr std::string_view integer_format() noexcept {
    constexpr bool is_signed = std::is_signed_v<T>;
    switch (sizeof(T)) {
    case 1: return is_signed ? "int8" : "uint8";
    case 2: return is_signed ? "int16" : "uint16";
    case 4: return is_signed ? "int32" : "uint32";
    case 8: return is_signed ? "int64" : "uint64";
    case 16: return is_signed ? "int128" : "uint128";
    default: return is_signed ? "signed integer" : "unsigned integer";
    }
}

// Big-endian store and load of an unsigned integer; no alignment needed.
template <std::unsigned_integral U>
void store_big_endian(U value, std::byte* out) noexcept {
    for (std::size_t i = sizeof(U); i-- > 0;) {
        out[i] = static_cast<std::byte>(static_cast<unsigned char>(value & 0xffu));
        value = static_cast<U>(value >> 8);
    }
}

template <std::unsigned_integral U>
[[nodiscard]] U load_big_endian(const std::byte* in) noexcept {
    U value = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i) {
        value = static_cast<U>(static_cast<U>(value << 8) | std::to_integer<U>(in[i]));
    }
    return value;
}

// The integer codec, shared by integers and enums.
template <std::integral I>
[[nodiscard]] bytes encode_integer(I value) {
    bytes out(sizeof(I));
    store_big_endian(static_cast<std::make_unsigned_t<I>>(value), out.data());
    return out;
}

// `prefix` goes before the format in messages: "enum as uint16: ...".
template <std::integral I>
[[nodiscard]] I decode_integer(std::span<const std::byte> in, std::string_view prefix = {}) {
    if (in.size() != sizeof(I)) {
        throw_wrong_size(std::string(prefix) + std::string(integer_format<I>()), sizeof(I),
                         in.size());
    }
    // Two's complement: converting back to a signed type is exact since C++20.
    return static_cast<I>(load_big_endian<std::make_unsigned_t<I>>(in.data()));
}

// Built-in codecs are for cv-unqualified types: decode<const int> is refused at
// compile time rather than half-instantiated.
template <class T>
concept unqualified = std::same_as<T, std::remove_cv_t<T>>;

// Integer types other than bool, which has a codec of its own.
template <class T>
concept integer = std::integral<T> && unqualified<T> && !std::same_as<T, bool>;

// float and double; long double's format varies by platform.
template <class F>
concept binary_float = std::same_as<F, float> || std::same_as<F, double>;

// An enum whose every underlying value is a valid value of the enum.
template <class E>
concept fixed_enum = std::is_enum_v<E> && unqualified<E> && requires {
    E{std::underlying_type_t<E>{}};
} && !std::is_same_v<std::underlying_type_t<E>, bool>;

template <class F>
using float_bits = std::conditional_t<sizeof(F) == 4, std::uint32_t, std::uint64_t>;

}  // namespace detail

/// Pass-through: the string's bytes, any content. Costs one copy.
template <>
struct codec<std::string> {
    ///@{
    /// Encodes or decodes a std::string: its bytes, as they are.
    [[nodiscard]] static bytes encode(const std::string& value) {
        const auto* first = reinterpret_cast<const std::byte*>(value.data());
        return bytes(first, first + value.size());
    }
    [[nodiscard]] static std::string decode(std::span<const std::byte> in) {
        return std::string(reinterpret_cast<const char*>(in.data()), in.size());
    }
    ///@}
};

/// Pass-through. Costs one copy.
template <>
struct codec<bytes> {
    ///@{
    /// Encodes or decodes settle::bytes: a copy.
    [[nodiscard]] static bytes encode(const bytes& value) { return value; }
    [[nodiscard]] static bytes decode(std::span<const std::byte> in) {
        return bytes(in.begin(), in.end());
    }
    ///@}
};

/// One byte: 0x00 for false, 0x01 for true. Any other byte is refused.
template <>
struct codec<bool> {
    ///@{
    /// Encodes or decodes a bool: one byte, 0 or 1.
    [[nodiscard]] static bytes encode(bool value) {
        return bytes{value ? std::byte{1} : std::byte{0}};
    }
    [[nodiscard]] static bool decode(std::span<const std::byte> in) {
        if (in.size() != 1) {
            detail::throw_wrong_size("bool", 1, in.size());
        }
        if (in[0] == std::byte{0} || in[0] == std::byte{1}) {
            return in[0] == std::byte{1};
        }
        const auto value = std::to_integer<unsigned>(in[0]);
        const std::string what = std::string("expected 0x00 or 0x01, got 0x") +
                                 detail::hex_digits[value >> 4] + detail::hex_digits[value & 0xfu];
        detail::throw_decode_error("bool", what);
    }
    ///@}
};

/// sizeof(T) bytes, two's complement, big-endian. No allocation beyond the result.
template <detail::integer T>
struct codec<T> {
    ///@{
    /// Encodes or decodes an integer: its value, big-endian, in the type's size.
    [[nodiscard]] static bytes encode(T value) { return detail::encode_integer(value); }
    [[nodiscard]] static T decode(std::span<const std::byte> in) {
        return detail::decode_integer<T>(in);
    }
    ///@}
};

/// The underlying integer's encoding. Any value of the underlying type decodes.
template <detail::fixed_enum E>
struct codec<E> {
    ///@{
    /// Encodes or decodes an enumeration: its underlying integer's value.
    [[nodiscard]] static bytes encode(E value) {
        return detail::encode_integer(static_cast<std::underlying_type_t<E>>(value));
    }
    [[nodiscard]] static E decode(std::span<const std::byte> in) {
        return static_cast<E>(detail::decode_integer<std::underlying_type_t<E>>(in, "enum as "));
    }
    ///@}
};

/// IEEE 754 binary32 (float) or binary64 (double), the bit pattern big-endian.
/// Every bit pattern round-trips exactly, NaN payloads included.
template <detail::binary_float F>
struct codec<F> {
    static_assert(std::numeric_limits<F>::is_iec559, "settle::codec needs IEEE 754 floats");
    static_assert(sizeof(F) == sizeof(detail::float_bits<F>));

    ///@{
    /// Encodes or decodes a floating-point number: its bit pattern, big-endian.
    [[nodiscard]] static bytes encode(F value) {
        bytes out(sizeof(F));
        detail::store_big_endian(std::bit_cast<detail::float_bits<F>>(value), out.data());
        return out;
    }
    [[nodiscard]] static F decode(std::span<const std::byte> in) {
        if (in.size() != sizeof(F)) {
            detail::throw_wrong_size(sizeof(F) == 4 ? "float32" : "float64", sizeof(F), in.size());
        }
        return std::bit_cast<F>(detail::load_big_endian<detail::float_bits<F>>(in.data()));
    }
    ///@}
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_CODEC_HPP
