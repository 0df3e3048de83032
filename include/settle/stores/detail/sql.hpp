// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_DETAIL_SQL_HPP
#define SETTLE_STORES_DETAIL_SQL_HPP

// What the SQL backends share: table names checked before they reach a
// statement, and the persisted form of a time.

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace detail {

// The longest table name: PostgreSQL keeps 63 bytes of an identifier
// (NAMEDATALEN - 1), and a store names its indexes and sequences after its
// table with suffixes of up to 8 bytes ("_expires").
inline constexpr std::size_t sql_identifier_max = 55;

// Whether `name` is a plain SQL identifier: an ASCII letter or underscore,
// then letters, digits or underscores, at most 55 bytes. Only such names are
// ever spliced into a statement (quoted, so keywords and case are kept);
// every value travels as a bound parameter.
[[nodiscard]] constexpr bool is_sql_identifier(std::string_view name) noexcept {
    if (name.empty() || name.size() > sql_identifier_max) {
        return false;
    }
    const auto letter = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    };
    if (!letter(name.front())) {
        return false;
    }
    for (const char c : name) {
        if (!letter(c) && !(c >= '0' && c <= '9')) {
            return false;
        }
    }
    return true;
}

// `name` in double quotes, ready to splice; throws settle::error
// (errc::invalid_argument) naming `who` if it is not a plain identifier.
[[nodiscard]] inline std::string quoted_sql_identifier(std::string_view name, const char* who) {
    if (!is_sql_identifier(name)) {
        throw settle::error(errc::invalid_argument,
                            std::string(who) + ": the table name \"" + std::string(name) +
                                "\" is not a plain identifier (ASCII letters, digits and _, "
                                "not starting with a digit, at most 55 bytes)");
    }
    std::string quoted;
    quoted.reserve(name.size() + 2);
    quoted += '"';
    quoted += name;
    quoted += '"';
    return quoted;
}

// Times persist as BIGINT Unix microseconds (settle::stored_time): exact,
// ordered, and the same in every backend.

[[nodiscard]] constexpr std::int64_t to_sql_micros(stored_time t) noexcept {
    return t.time_since_epoch().count();
}

[[nodiscard]] constexpr stored_time from_sql_micros(std::int64_t micros) noexcept {
    return stored_time(std::chrono::microseconds(micros));
}

}  // namespace detail

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_DETAIL_SQL_HPP
