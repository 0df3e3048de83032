// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_DETAIL_HEX_HPP
#define SETTLE_DETAIL_HEX_HPP

#include <settle/version.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace detail {

// Hex text as ids and digests write it: lowercase digits.
inline constexpr std::string_view hex_digits = "0123456789abcdef";

// What hex_value returns for a character that is not a hex digit.
inline constexpr unsigned not_hex = 0x10;

// For each byte value: its value as a hex digit in either case, or not_hex.
inline constexpr std::array<std::uint8_t, 256> hex_values = [] {
    std::array<std::uint8_t, 256> table{};
    for (std::size_t c = 0; c < table.size(); ++c) {
        table[c] = not_hex;
        if (c >= '0' && c <= '9') {
            table[c] = static_cast<std::uint8_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            table[c] = static_cast<std::uint8_t>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            table[c] = static_cast<std::uint8_t>(c - 'A' + 10);
        }
    }
    return table;
}();

// 0..15 for a hex digit in either case, not_hex for anything else.
[[nodiscard]] constexpr unsigned hex_value(char c) noexcept {
    return hex_values[static_cast<unsigned char>(c)];
}

}  // namespace detail

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_DETAIL_HEX_HPP
