// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_DETAIL_SQL_HPP
#define SETTLE_STORES_DETAIL_SQL_HPP

// What the SQL backends share: table names checked before they reach a
// statement, the persisted form of a time, and of an outbox record's headers
// and status.

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/outbox.hpp>
#include <settle/token.hpp>
#include <settle/uuid.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// An outbox record's headers persist as one binary value: for each header,
// its name's and its value's byte lengths (4 bytes, big-endian) each followed
// by the bytes. Throws settle::error (errc::invalid_argument) naming `who`
// for a name or value of 4 GiB or more.
[[nodiscard]] inline bytes encode_outbox_headers(const outbox_headers& headers, const char* who) {
    bytes out;
    for (const outbox_header& h : headers) {
        for (const std::string* part : {&h.name, &h.value}) {
            if (part->size() > std::numeric_limits<std::uint32_t>::max()) {
                throw settle::error(errc::invalid_argument,
                                    std::string(who) + ": a header is 4 GiB or more");
            }
            for (int shift = 24; shift >= 0; shift -= 8) {
                out.push_back(static_cast<std::byte>((part->size() >> shift) & 0xFFU));
            }
            for (const char c : *part) {
                out.push_back(static_cast<std::byte>(c));
            }
        }
    }
    return out;
}

// The headers encode_outbox_headers wrote; settle::error (errc::decode_failed)
// if `in` is cut short.
[[nodiscard]] inline outbox_headers decode_outbox_headers(std::span<const std::byte> in) {
    outbox_headers headers;
    const auto part = [&in]() {
        if (in.size() < 4) {
            throw_decode_error("outbox headers", "a length is cut short");
        }
        std::size_t size = 0;
        for (const std::byte b : in.first(4)) {
            size = (size << 8U) | std::to_integer<std::size_t>(b);
        }
        in = in.subspan(4);
        if (in.size() < size) {
            throw_decode_error("outbox headers", "a name or value is cut short");
        }
        std::string text(reinterpret_cast<const char*>(in.data()), size);
        in = in.subspan(size);
        return text;
    };
    while (!in.empty()) {
        std::string name = part();
        headers.push_back({std::move(name), part()});
    }
    return headers;
}

// The outbox status stored as `text` (its to_string); settle::error
// (errc::decode_failed) for any other text.
[[nodiscard]] inline outbox_status outbox_status_of(const std::string& text) {
    for (const outbox_status s : {outbox_status::pending, outbox_status::in_flight,
                                  outbox_status::delivered, outbox_status::dead}) {
        if (text == to_string(s)) {
            return s;
        }
    }
    throw_decode_error("outbox_record", "unknown status \"" + text + "\"");
}

// A claim as a batch delivery mark found it changed: (id, claim token).
using applied_claim = std::pair<uuid, std::uint64_t>;

// The answer to each claim of a batch delivery mark, given the claims the
// statement changed: applied for a claim among them (once: the same claim
// given again is stale), stale for every other.
[[nodiscard]] inline std::vector<fenced_write> answer_claims(std::span<const outbox_claim> claims,
                                                             std::vector<applied_claim> applied) {
    std::sort(applied.begin(), applied.end());
    std::vector<bool> answered(applied.size());
    std::vector<fenced_write> out;
    out.reserve(claims.size());
    for (const outbox_claim& claim : claims) {
        const applied_claim key{claim.id, claim.token.value()};
        const auto found = std::lower_bound(applied.begin(), applied.end(), key);
        const auto at = static_cast<std::size_t>(found - applied.begin());
        const bool first = found != applied.end() && *found == key && !answered[at];
        if (first) {
            answered[at] = true;
        }
        out.push_back(first ? fenced_write::applied : fenced_write::stale);
    }
    return out;
}

}  // namespace detail

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_DETAIL_SQL_HPP
