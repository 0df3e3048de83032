// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_IDEMPOTENCY_HPP
#define SETTLE_IDEMPOTENCY_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/sha256.hpp>
#include <settle/token.hpp>
#include <settle/transaction.hpp>
#include <settle/uuid.hpp>

#include <array>
#include <chrono>
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <settle/detail/macro_scope.hpp>

// Idempotency keys and the guard that makes an operation run at most once per
// (scope, key): the client sends a key with a request; the first request with
// that key runs and its response is stored; a repeat gets the stored response
// back instead of running again; a repeat that arrives while the first is still
// running is told so; the same key with a different request is refused.
//
// Two layers, one mechanism. idempotency_guard::run(scope, key, fingerprint, op)
// is the everyday path. Underneath, claim() / complete() / abandon() let the
// stored response commit in the same transaction as the business write. Both
// work over any backend that models settle::idempotency_store.

SETTLE_BEGIN_NAMESPACE

// ---------------------------------------------------------------------------
// Keys

namespace detail {

[[nodiscard]] constexpr bool idempotency_printable(char c) noexcept {
    return c >= 0x20 && c <= 0x7e;
}

[[nodiscard]] constexpr bool idempotency_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

}  // namespace detail

/// What a client sends to make a request safe to repeat: 1 to 255 printable
/// ASCII characters (0x20 to 0x7E, the characters a structured-field string can
/// carry). Compared and ordered exactly, byte by byte: "Key" and "key" differ.
/// Holds one std::string.
class idempotency_key {
public:
    /// The longest key, in characters.
    static constexpr std::size_t max_size = 255;

    /// The uuid's canonical text: always a valid key. With a UUIDv7 generator,
    /// a client makes fresh keys that sort by creation time:
    ///     settle::idempotency_key key(ids());
    explicit idempotency_key(const uuid& id) : value_(id.to_string()) {}

    /// A key taken as it is (a path segment, a JSON field, a raw header value
    /// as some services send it). Refuses an empty text, a character outside
    /// 0x20..0x7E, and more than 255 characters, saying where.
    [[nodiscard]] static parse_result<idempotency_key> parse(std::string_view text) {
        constexpr std::string_view subject = "idempotency key";
        if (text.empty()) {
            return parse_error{subject, 0, "empty: expected 1 to 255 printable ASCII characters"};
        }
        const std::size_t checked = text.size() < max_size ? text.size() : max_size;
        for (std::size_t i = 0; i < checked; ++i) {
            if (!detail::idempotency_printable(text[i])) {
                return parse_error{subject, i,
                                   "expected a printable ASCII character (0x20 to 0x7E)"};
            }
        }
        if (text.size() > max_size) {
            return parse_error{subject, max_size, "too long: at most 255 characters"};
        }
        return idempotency_key(std::string(text));
    }

    /// The value of an Idempotency-Key header field, as the IETF draft defines
    /// it: a structured-field string (RFC 8941 section 3.3.3), in double quotes,
    /// where \" and \\ stand for " and \. Spaces and tabs around it are
    /// ignored. Refused, with the position: no opening quote, a character
    /// outside 0x20..0x7E, a backslash before anything but " or \, a missing
    /// closing quote, anything after it (parameters included), and a key that
    /// is empty or longer than 255 characters once unescaped.
    [[nodiscard]] static parse_result<idempotency_key> from_header(std::string_view field_value) {
        constexpr std::string_view subject = "Idempotency-Key header";
        std::size_t i = 0;
        while (i < field_value.size() && detail::idempotency_ows(field_value[i])) {
            ++i;
        }
        if (i == field_value.size()) {
            return parse_error{subject, i, "empty: expected a quoted string"};
        }
        if (field_value[i] != '"') {
            return parse_error{subject, i,
                               "expected '\"': the value is a structured-field string "
                               "(idempotency_key::parse takes a raw key)"};
        }
        const std::size_t open = i++;
        std::string value;
        for (;; ++i) {
            if (i == field_value.size()) {
                return parse_error{subject, i, "unterminated string: expected a closing '\"'"};
            }
            char c = field_value[i];
            if (c == '"') {
                break;
            }
            if (c == '\\') {
                if (++i == field_value.size()) {
                    return parse_error{subject, i, "unterminated string: expected a closing '\"'"};
                }
                c = field_value[i];
                if (c != '"' && c != '\\') {
                    return parse_error{subject, i, "only '\"' and '\\' may follow a backslash"};
                }
            } else if (!detail::idempotency_printable(c)) {
                return parse_error{subject, i,
                                   "expected a printable ASCII character (0x20 to 0x7E)"};
            }
            if (value.size() == max_size) {
                return parse_error{subject, i, "too long: at most 255 characters"};
            }
            value += c;
        }
        if (value.empty()) {
            return parse_error{subject, open + 1,
                               "empty: expected 1 to 255 printable ASCII characters"};
        }
        for (++i; i < field_value.size(); ++i) {
            if (field_value[i] == ';') {
                return parse_error{subject, i, "parameters are not accepted"};
            }
            if (!detail::idempotency_ows(field_value[i])) {
                return parse_error{subject, i, "unexpected character after the closing '\"'"};
            }
        }
        return idempotency_key(std::move(value));
    }

    /// The key's text.
    [[nodiscard]] const std::string& value() const noexcept { return value_; }

    /// The key as an Idempotency-Key header value: in double quotes, with a
    /// backslash before each " and each backslash. from_header(key.to_header())
    /// gives the key back.
    [[nodiscard]] std::string to_header() const {
        std::string out;
        out.reserve(value_.size() + 2);
        out += '"';
        for (const char c : value_) {
            if (c == '"' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
        out += '"';
        return out;
    }

    ///@{
    /// Compared and ordered byte by byte.
    friend bool operator==(const idempotency_key&, const idempotency_key&) = default;
    friend std::strong_ordering operator<=>(const idempotency_key& a,
                                            const idempotency_key& b) noexcept {
        return a.value_.compare(b.value_) <=> 0;
    }
    ///@}

    /// Streams the key as it is (for logs and test diagnostics).
    template <class Traits>
    friend std::basic_ostream<char, Traits>& operator<<(std::basic_ostream<char, Traits>& out,
                                                        const idempotency_key& key) {
        return out << key.value_;
    }

private:
    explicit idempotency_key(std::string value) noexcept : value_(std::move(value)) {}

    std::string value_;
};

/// Who may see a stored response, and for which operation. The stored key is
/// (scope, key): one tenant can never replay another's response, nor one
/// operation another's, even with the same key. Name the operation yourself
/// ("orders.create"), so that renaming a function does not change stored keys.
/// Both are compared exactly; the tenant may be empty in a single-tenant service.
struct idempotency_scope {
    ///@{
    /// The tenant and the operation; equal when both are.
    std::string tenant;
    std::string operation;

    friend bool operator==(const idempotency_scope&, const idempotency_scope&) = default;
    ///@}
};

/// The fingerprint of the request fields that matter, in order: SHA-256 over
/// each field's length (8 bytes, big-endian) followed by its bytes, so that
/// ("ab", "c") and ("a", "bc") differ. For a whole payload, settle::sha256::hash
/// does as well. The same key with a different fingerprint is a `mismatch`.
[[nodiscard]] constexpr sha256_digest fingerprint_fields(
    std::initializer_list<std::string_view> fields) {
    sha256 hasher;
    for (const std::string_view field : fields) {
        std::array<std::uint8_t, 8> length{};
        const auto n = static_cast<std::uint64_t>(field.size());
        for (std::size_t i = 0; i < length.size(); ++i) {
            length[i] = static_cast<std::uint8_t>(n >> (56 - 8 * i));
        }
        hasher.update(std::span<const std::uint8_t>(length)).update(field);
    }
    return hasher.finish();
}

// ---------------------------------------------------------------------------
// Records

enum class idempotency_state {
    in_progress,  ///< claimed: the owner is running the operation; lives until its lease ends
    completed,    ///< the response is stored; lives until its retention ends
};

[[nodiscard]] constexpr std::string_view to_string(idempotency_state state) noexcept {
    switch (state) {
    case idempotency_state::in_progress: return "in_progress";
    case idempotency_state::completed: return "completed";
    }
    return "unknown settle::idempotency_state";
}

/// A stored response: the encoded value, and a status if the caller stores one
/// (an HTTP status, an application code) so it can be read without decoding.
struct idempotency_response {
    ///@{
    /// The body and the status; equal when both are.
    bytes body;
    std::optional<int> status;

    friend bool operator==(const idempotency_response&, const idempotency_response&) = default;
    ///@}
};

/// What a store keeps per (scope, key). A record is live while now < expires_at
/// and counts as absent from that instant on: expiry is computed from the
/// record's own times, never left to a backend's lazy TTL.
struct idempotency_record {
    ///@{
    /// The record's state; live() is true while now < expires_at; equal when every field is.
    idempotency_state state = idempotency_state::in_progress;
    sha256_digest fingerprint{};  ///< of the request that claimed the key
    fencing_token token{0};       ///< the claim that wrote this record (0: none yet)
    stored_time claimed_at{};     ///< when that claim was taken
    stored_time expires_at{};     ///< in_progress: the lease's end; completed: the retention's end
    idempotency_response response{};  ///< completed only

    [[nodiscard]] bool live(stored_time now) const noexcept { return now < expires_at; }

    friend bool operator==(const idempotency_record&, const idempotency_record&) = default;
    ///@}
};

/// What a store's claim() did: took the key (record is the new in-progress
/// record, with its token) or found a live record (returned as stored).
struct [[nodiscard]] idempotency_store_claim {
    ///@{
    /// Whether the key was claimed, and the record as stored afterwards.
    bool claimed = false;
    idempotency_record record{};
    ///@}
};

// ---------------------------------------------------------------------------
// Storage

namespace detail {

template <class S>
concept idempotency_store_has_claim = requires(S& s, typename S::transaction& tx,
                                               const idempotency_scope& scope,
                                               const idempotency_key& key,
                                               const sha256_digest& fingerprint, stored_time t) {
    { s.claim(tx, scope, key, fingerprint, t, t) } -> std::same_as<idempotency_store_claim>;
};

template <class S>
concept idempotency_store_has_complete = requires(S& s, typename S::transaction& tx,
                                                  const idempotency_scope& scope,
                                                  const idempotency_key& key, fencing_token token,
                                                  idempotency_response response, stored_time t) {
    { s.complete(tx, scope, key, token, std::move(response), t) } -> std::same_as<fenced_write>;
};

template <class S>
concept idempotency_store_has_abandon = requires(S& s, typename S::transaction& tx,
                                                 const idempotency_scope& scope,
                                                 const idempotency_key& key, fencing_token token) {
    { s.abandon(tx, scope, key, token) } -> std::same_as<fenced_write>;
};

template <class S>
concept idempotency_store_has_purge = requires(S& s, typename S::transaction& tx, stored_time t,
                                               std::size_t limit) {
    { s.purge(tx, t, limit) } -> std::same_as<std::size_t>;
};

}  // namespace detail

/// Where idempotency records live: the smallest set of operations that keeps
/// the guard's promises, each atomic within the caller's transaction. A
/// settle::atomic_operations store (rollback not needed) with:
///
///   s.claim(tx, scope, key, fingerprint, now, lease_end) -> idempotency_store_claim
///       atomically: if (scope, key) has no live record at `now`, writes an
///       in_progress record {fingerprint, a new token, claimed_at = now,
///       expires_at = lease_end} and returns {true, it}; otherwise returns
///       {false, the live record} and changes nothing. A new token is greater
///       than every token ever handed out for (scope, key), even after purge.
///   s.complete(tx, scope, key, token, response, retain_until) -> fenced_write
///       if the record is in_progress with this token, makes it completed with
///       the response and expires_at = retain_until; otherwise changes nothing
///       and returns stale. Whether the lease has ended does not matter: only a
///       take-over fences a claim off.
///   s.abandon(tx, scope, key, token) -> fenced_write
///       if the record is in_progress with this token, removes it; else stale.
///
/// Records that are not live count as absent, so a backend whose records
/// expire by themselves needs nothing more. One that keeps them until they are
/// removed also models settle::purgeable_idempotency_store.
///
/// settle/testing/idempotency_store_suite.hpp checks all of this on a backend.
template <class S>
concept idempotency_store = atomic_operations<S> && detail::idempotency_store_has_claim<S> &&
    detail::idempotency_store_has_complete<S> && detail::idempotency_store_has_abandon<S>;

/// An idempotency store whose records must be removed once they are no longer
/// live, which idempotency_guard::purge does:
///
///   s.purge(tx, now, limit) -> std::size_t
///       removes at most `limit` records that are not live at `now`; returns
///       how many it removed.
template <class S>
concept purgeable_idempotency_store =
    idempotency_store<S> && detail::idempotency_store_has_purge<S>;

namespace detail {

// One static_assert per requirement of settle::idempotency_store, each naming
// the member. Returns whether S is an idempotency_store.
template <class S>
constexpr bool check_idempotency_store() {
    if constexpr (check_atomic_operations<S>()) {
        static_assert(idempotency_store_has_claim<S>,
                      "settle::idempotency_store: `claim(tx, scope, key, fingerprint, now, "
                      "lease_end)` missing or wrong signature; expected "
                      "`settle::idempotency_store_claim claim(transaction&, const "
                      "settle::idempotency_scope&, const settle::idempotency_key&, const "
                      "settle::sha256_digest&, settle::stored_time, settle::stored_time)`");
        static_assert(idempotency_store_has_complete<S>,
                      "settle::idempotency_store: `complete(tx, scope, key, token, response, "
                      "retain_until)` missing or wrong signature; expected `settle::fenced_write "
                      "complete(transaction&, const settle::idempotency_scope&, const "
                      "settle::idempotency_key&, settle::fencing_token, "
                      "settle::idempotency_response, settle::stored_time)`");
        static_assert(idempotency_store_has_abandon<S>,
                      "settle::idempotency_store: `abandon(tx, scope, key, token)` missing or "
                      "wrong signature; expected `settle::fenced_write abandon(transaction&, const "
                      "settle::idempotency_scope&, const settle::idempotency_key&, "
                      "settle::fencing_token)`");
    }
    return idempotency_store<S>;
}

template <class S>
constexpr bool check_purgeable_idempotency_store() {
    if constexpr (atomic_operations<S>) {
        static_assert(
            idempotency_store_has_purge<S>,
            "settle::purgeable_idempotency_store: `purge(tx, now, limit)` missing or wrong "
            "signature; expected `std::size_t purge(transaction&, settle::stored_time, "
            "std::size_t)`");
    }
    return purgeable_idempotency_store<S>;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Outcomes

/// What claim() found. Exhaustive: switch on it without a default.
enum class [[nodiscard]] idempotency_claim_outcome{
    claimed,      ///< the key is yours: run the operation, then complete() or abandon()
    replay,       ///< a completed record for the same request: send its response again
    in_progress,  ///< the same request holds the key and its lease has not ended: retry later
    mismatch,     ///< a live record for this key was made by a different request
};

[[nodiscard]] constexpr std::string_view to_string(idempotency_claim_outcome outcome) noexcept {
    switch (outcome) {
    case idempotency_claim_outcome::claimed: return "claimed";
    case idempotency_claim_outcome::replay: return "replay";
    case idempotency_claim_outcome::in_progress: return "in_progress";
    case idempotency_claim_outcome::mismatch: return "mismatch";
    }
    return "unknown settle::idempotency_claim_outcome";
}

/// What run() did. Exhaustive: switch on it without a default.
enum class [[nodiscard]] idempotency_outcome{
    executed,     ///< op ran now; its response is in the result
    replayed,     ///< op ran before; the stored response is in the result
    in_progress,  ///< the same request is running elsewhere: safe to retry later
    mismatch,     ///< the key was used for a different request: refuse
    stale,        ///< op ran, but its lease ended and another request took the key over before
                  ///< op's response could be stored: op may have run twice. The response is in
                  ///< the result; replays get the new owner's. Make the lease longer than op.
};

[[nodiscard]] constexpr std::string_view to_string(idempotency_outcome outcome) noexcept {
    switch (outcome) {
    case idempotency_outcome::executed: return "executed";
    case idempotency_outcome::replayed: return "replayed";
    case idempotency_outcome::in_progress: return "in_progress";
    case idempotency_outcome::mismatch: return "mismatch";
    case idempotency_outcome::stale: return "stale";
    }
    return "unknown settle::idempotency_outcome";
}

/// The right to run an operation once for (scope, key), until complete() or
/// abandon(). The token fences it: once another claim takes the key over, this
/// one can no longer write.
struct idempotency_claim {
    ///@{
    /// The scope and key claimed, and the claim's fencing token.
    idempotency_scope scope;
    idempotency_key key;
    fencing_token token;
    ///@}
    stored_time lease_expires_at;  ///< finish before this, or be taken over
};

template <class Store, class Clock>
class idempotency_guard;

/// What idempotency_guard::claim returns: the outcome, the claim when it is
/// claimed, and the record: claimed, the new in-progress record; otherwise the
/// live record found (its response for a replay, its expiry for a Retry-After).
/// `if (auto r = guard.claim(tx, ...))` is true when the key is yours.
class [[nodiscard]] idempotency_claim_result {
public:
    ///@{
    /// The outcome, and one test for each of its values; true when the key was claimed. claim() is
    /// the claim when claimed; record() the stored record.
    [[nodiscard]] idempotency_claim_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_claimed() const noexcept {
        return outcome_ == idempotency_claim_outcome::claimed;
    }
    [[nodiscard]] bool is_replay() const noexcept {
        return outcome_ == idempotency_claim_outcome::replay;
    }
    [[nodiscard]] bool is_in_progress() const noexcept {
        return outcome_ == idempotency_claim_outcome::in_progress;
    }
    [[nodiscard]] bool is_mismatch() const noexcept {
        return outcome_ == idempotency_claim_outcome::mismatch;
    }
    explicit operator bool() const noexcept { return is_claimed(); }

    /// claimed: the claim to complete() or abandon(); empty otherwise.
    [[nodiscard]] const std::optional<idempotency_claim>& claim() const& noexcept { return claim_; }
    [[nodiscard]] std::optional<idempotency_claim>&& claim() && noexcept {
        return std::move(claim_);
    }
    [[nodiscard]] const idempotency_record& record() const& noexcept { return record_; }
    [[nodiscard]] idempotency_record&& record() && noexcept { return std::move(record_); }
    ///@}

private:
    template <class, class>
    friend class idempotency_guard;

    idempotency_claim_result(idempotency_claim_outcome outcome,
                             std::optional<idempotency_claim> claim,
                             idempotency_record record) noexcept
        : outcome_(outcome), claim_(std::move(claim)), record_(std::move(record)) {}

    idempotency_claim_outcome outcome_;
    std::optional<idempotency_claim> claim_;
    idempotency_record record_;
};

/// What run() stores of op's result: whether to store it for replays, and the
/// status to store with it. A keep-policy returns this, or just a bool.
struct idempotency_store_decision {
    ///@{
    /// Whether to store the response, and the status to store with it.
    bool store = true;
    std::optional<int> status{};
    ///@}
};

/// What idempotency_guard::run returns, for an op returning T:
///   response(): executed, stale: op's result; replayed: the stored response,
///               decoded; in_progress, mismatch: empty.
///   status():   executed, stale: the status the keep-policy chose; replayed:
///               the stored one.
///   stored():   executed: whether the response was stored for replays (false
///               when the keep-policy said not to). False for the other outcomes.
///   record():   replayed, in_progress, mismatch: the live record found (for a
///               Retry-After from its expires_at, or to show a mismatch).
/// `if (auto r = guard.run(...))` is true when op ran now (executed). A
/// replay has a response too but is not executed: check response() to answer
/// either.
template <class T>
class [[nodiscard]] idempotency_result {
public:
    ///@{
    /// The outcome, one test for each of its values (true when the operation ran now), and what the
    /// run left: the response, its status, whether it was stored, and the record read.
    [[nodiscard]] idempotency_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] bool is_executed() const noexcept {
        return outcome_ == idempotency_outcome::executed;
    }
    [[nodiscard]] bool is_replayed() const noexcept {
        return outcome_ == idempotency_outcome::replayed;
    }
    [[nodiscard]] bool is_in_progress() const noexcept {
        return outcome_ == idempotency_outcome::in_progress;
    }
    [[nodiscard]] bool is_mismatch() const noexcept {
        return outcome_ == idempotency_outcome::mismatch;
    }
    [[nodiscard]] bool is_stale() const noexcept { return outcome_ == idempotency_outcome::stale; }
    explicit operator bool() const noexcept { return is_executed(); }

    [[nodiscard]] const std::optional<T>& response() const& noexcept { return response_; }
    [[nodiscard]] std::optional<T>&& response() && noexcept { return std::move(response_); }
    [[nodiscard]] std::optional<int> status() const noexcept { return status_; }
    [[nodiscard]] bool stored() const noexcept { return stored_; }
    [[nodiscard]] const std::optional<idempotency_record>& record() const& noexcept {
        return record_;
    }
    [[nodiscard]] std::optional<idempotency_record>&& record() && noexcept {
        return std::move(record_);
    }
    ///@}

private:
    template <class, class>
    friend class idempotency_guard;

    idempotency_result(idempotency_outcome outcome, std::optional<T> response,
                       std::optional<int> status, bool stored,
                       std::optional<idempotency_record> record)
        : outcome_(outcome),
          response_(std::move(response)),
          status_(status),
          stored_(stored),
          record_(std::move(record)) {}

    idempotency_outcome outcome_;
    std::optional<T> response_;
    std::optional<int> status_;
    bool stored_;
    std::optional<idempotency_record> record_;
};

/// HTTP statuses, as the IETF Idempotency-Key draft recommends them, with no
/// HTTP dependency.
namespace idempotency_http {
inline constexpr int bad_key = 400;   ///< the key is missing or malformed
inline constexpr int conflict = 409;  ///< in_progress: the first request is still running
inline constexpr int mismatch = 422;  ///< the key was used for a different request

/// The status to send: the response's own (response_status) when executed or
/// replayed, 409 when in progress, 422 on a mismatch.
[[nodiscard]] constexpr int status(idempotency_outcome outcome, int response_status) noexcept {
    switch (outcome) {
    case idempotency_outcome::executed:
    case idempotency_outcome::replayed:
    case idempotency_outcome::stale: return response_status;
    case idempotency_outcome::in_progress: return conflict;
    case idempotency_outcome::mismatch: return mismatch;
    }
    return 500;
}

/// The same for a run() result: its stored status if it has one, else `ok`.
template <class T>
[[nodiscard]] constexpr int status(const idempotency_result<T>& result, int ok = 200) noexcept {
    return status(result.outcome(), result.status().value_or(ok));
}
}  // namespace idempotency_http

/// The response stored in a completed record, decoded as a T. Throws
/// settle::error with errc::decode_failed when the bytes are not a T, and
/// errc::invalid_argument when the record is not completed; the record is
/// never changed.
template <codable T>
[[nodiscard]] T decode_response(const idempotency_record& record) {
    if (record.state != idempotency_state::completed) {
        throw error(errc::invalid_argument,
                    "idempotency: the record is in progress and has no response");
    }
    try {
        return settle::decode<T>(record.response.body);
    } catch (const error& e) {
        if (e.code() != make_error_code(errc::decode_failed)) {
            throw;
        }
        throw error(errc::decode_failed, std::string("idempotency: the stored response cannot "
                                                     "be decoded; the record is kept: ") +
                                             e.what());
    }
}

// ---------------------------------------------------------------------------
// The guard

/// How long records live. Both must be positive.
struct idempotency_options {
    /// How long a claim holds its key. Choose it longer than the operation can
    /// take: after it, a repeat takes the key over and runs the operation again
    /// (the first owner's result is then fenced off, not stored).
    std::chrono::microseconds lease = std::chrono::minutes(1);
    /// How long a completed response is replayed. After it, the same key starts
    /// a new execution.
    std::chrono::microseconds retention = std::chrono::hours(24);
};

namespace detail {

struct idempotency_keep_all {
    [[nodiscard]] constexpr idempotency_store_decision operator()(const auto&) const noexcept {
        return {};
    }
};

[[nodiscard]] inline idempotency_claim_outcome idempotency_classify(
    const idempotency_record& found, const sha256_digest& fingerprint) noexcept {
    if (found.fingerprint != fingerprint) {
        return idempotency_claim_outcome::mismatch;
    }
    return found.state == idempotency_state::completed ? idempotency_claim_outcome::replay
                                                       : idempotency_claim_outcome::in_progress;
}

template <class T>
struct idempotency_always_false : std::false_type {};

}  // namespace detail

/// Runs operations at most once per (scope, key) over an idempotency_store,
/// reading the time from a wall clock (records persist wall-clock times). Holds
/// references to both; copyable; as thread-safe as the store (the in-memory
/// store is). Starts no threads, allocates only what records and keys need.
///
///     settle::idempotency_guard guard(store, clock, {.lease = 30s, .retention = 24h});
///     auto r = guard.run({tenant, "orders.create"}, key, fingerprint,
///                        [&] { return create_order(request); });
///
/// Promises, over a conforming store: op runs at most once per (scope, key)
/// while its record lives, unless its lease ends before it finishes; a repeat
/// gets the stored response; a concurrent repeat gets in_progress; the same key
/// with a different fingerprint gets mismatch; a claim that was taken over can
/// no longer store its result.
template <class Store, class Clock>
class idempotency_guard {
    static_assert(detail::check_idempotency_store<Store>());
    static_assert(wall_clock<Clock>,
                  "settle::idempotency_guard: the clock must be a settle::wall_clock "
                  "(system_clock time points): records persist wall-clock times");

public:
    ///@{
    /// The store, the clock and the transaction type.
    using store_type = Store;
    using clock_type = Clock;
    using transaction = typename Store::transaction;
    ///@}

    /// Throws settle::error (errc::invalid_argument) unless lease and retention
    /// are positive.
    idempotency_guard(Store& store, Clock& clock, idempotency_options options = {})
        : store_(&store), clock_(&clock), options_(options) {
        if (options_.lease <= options_.lease.zero() ||
            options_.retention <= options_.retention.zero()) {
            throw error(errc::invalid_argument,
                        "idempotency_guard: lease and retention must be positive");
        }
    }

    /// The options the guard was made with.
    [[nodiscard]] const idempotency_options& options() const noexcept { return options_; }

    /// Runs op once for (scope, key): claims the key in a short transaction of
    /// its own, runs op outside any transaction, then stores its result in a
    /// second one. Returns exactly one of executed(response), replayed(stored
    /// response), in_progress, mismatch. op returns a value with a
    /// settle::codec; keep(const T&) says whether to store it (a bool, or an
    /// idempotency_store_decision with a status), storing everything by
    /// default. If op (or encoding its result) throws, the claim is abandoned
    /// so a retry can run, and the exception propagates. A stored response that
    /// does not decode as T throws settle::error (errc::decode_failed) and the
    /// record is kept. Failures of the store propagate; the record is then left
    /// in progress until its lease ends.
    template <class Op, class Keep = detail::idempotency_keep_all>
    requires std::invocable<Op&>
    [[nodiscard]] auto run(const idempotency_scope& scope, const idempotency_key& key,
                           const sha256_digest& fingerprint, Op&& op, Keep&& keep = {})
        -> idempotency_result<std::remove_cvref_t<std::invoke_result_t<Op&>>> {
        using T = std::remove_cvref_t<std::invoke_result_t<Op&>>;
        static_assert(codable<T>,
                      "idempotency_guard::run: op must return a value with a settle::codec");
        using result = idempotency_result<T>;

        idempotency_store_claim found = settle::in_transaction(*store_, [&](transaction& tx) {
            const stored_time now = this->now();
            return store_->claim(tx, scope, key, fingerprint, now,
                                 detail::saturating_add(now, options_.lease));
        });
        if (!found.claimed) {
            switch (detail::idempotency_classify(found.record, fingerprint)) {
            case idempotency_claim_outcome::mismatch:
                return result{idempotency_outcome::mismatch, std::nullopt, std::nullopt, false,
                              std::move(found.record)};
            case idempotency_claim_outcome::in_progress:
                return result{idempotency_outcome::in_progress, std::nullopt, std::nullopt, false,
                              std::move(found.record)};
            case idempotency_claim_outcome::claimed:  // not reported by classify
            case idempotency_claim_outcome::replay: break;
            }
            T response = decode_response<T>(found.record);
            const std::optional<int> status = found.record.response.status;
            return result{idempotency_outcome::replayed, std::move(response), status, false,
                          std::move(found.record)};
        }

        const fencing_token token = found.record.token;
        std::optional<T> response;
        idempotency_store_decision decision;
        bytes encoded;
        try {
            response.emplace(std::invoke(op));
            decision = decide(keep, std::as_const(*response));
            if (decision.store) {
                encoded = settle::encode(*response);
            }
        } catch (...) {
            abandon_after_failure(scope, key, token);
            throw;
        }
        const fenced_write written =
            decision.store ? settle::in_transaction(
                                 *store_,
                                 [&](transaction& tx) {
                                     return store_->complete(
                                         tx, scope, key, token,
                                         idempotency_response{std::move(encoded), decision.status},
                                         detail::saturating_add(now(), options_.retention));
                                 })
                           : settle::in_transaction(*store_, [&](transaction& tx) {
                                 return store_->abandon(tx, scope, key, token);
                             });
        if (written == fenced_write::stale) {
            return result{idempotency_outcome::stale, std::move(response), decision.status, false,
                          std::nullopt};
        }
        return result{idempotency_outcome::executed, std::move(response), decision.status,
                      decision.store, std::nullopt};
    }

    /// The claim API: claims (scope, key) in the caller's transaction. When the
    /// outcome is `claimed`, run the operation and then complete() the claim,
    /// in the transaction that makes the business write, or abandon() it. The
    /// claim is visible to other requests once tx commits: commit it before the
    /// operation's slow part, so concurrent repeats see in_progress.
    [[nodiscard]] idempotency_claim_result claim(transaction& tx, const idempotency_scope& scope,
                                                 const idempotency_key& key,
                                                 const sha256_digest& fingerprint) {
        const stored_time now = this->now();
        const stored_time lease_end = detail::saturating_add(now, options_.lease);
        idempotency_store_claim found = store_->claim(tx, scope, key, fingerprint, now, lease_end);
        if (found.claimed) {
            idempotency_claim claim{scope, key, found.record.token, found.record.expires_at};
            return idempotency_claim_result(idempotency_claim_outcome::claimed, std::move(claim),
                                            std::move(found.record));
        }
        return idempotency_claim_result(detail::idempotency_classify(found.record, fingerprint),
                                        std::nullopt, std::move(found.record));
    }

    /// Stores the response for the claim's key in tx, kept for the retention
    /// from now. stale when the claim was taken over (its lease ended), already
    /// completed or abandoned: nothing was stored, and the caller should roll
    /// back the business write it made in tx.
    template <codable T>
    [[nodiscard]] fenced_write complete(transaction& tx, const idempotency_claim& claim,
                                        const T& response,
                                        std::optional<int> status = std::nullopt) {
        return store_->complete(tx, claim.scope, claim.key, claim.token,
                                idempotency_response{settle::encode(response), status},
                                detail::saturating_add(now(), options_.retention));
    }

    /// Gives the key up, so a retry runs the operation. stale when the claim
    /// was taken over or completed: nothing changed.
    [[nodiscard]] fenced_write abandon(transaction& tx, const idempotency_claim& claim) {
        return store_->abandon(tx, claim.scope, claim.key, claim.token);
    }

    /// Removes at most `limit` records that are no longer live; returns how
    /// many. Call it on a schedule, until it returns less than the limit:
    ///
    ///     while (settle::in_transaction(store, [&](auto& tx) {
    ///                return guard.purge(tx, 1000); }) == 1000) {}
    ///
    /// Needs a store that models settle::purgeable_idempotency_store; one whose
    /// records expire by themselves needs no purge.
    [[nodiscard]] std::size_t purge(transaction& tx, std::size_t limit) {
        if constexpr (detail::check_purgeable_idempotency_store<Store>()) {
            return store_->purge(tx, now(), limit);
        } else {
            return 0;
        }
    }

private:
    [[nodiscard]] stored_time now() const { return to_stored_time(clock_->now()); }

    template <class Keep, class T>
    static idempotency_store_decision decide(Keep& keep, const T& response) {
        using R = std::remove_cvref_t<std::invoke_result_t<Keep&, const T&>>;
        if constexpr (std::is_same_v<R, bool>) {
            return {std::invoke(keep, response), std::nullopt};
        } else if constexpr (std::is_same_v<R, idempotency_store_decision>) {
            return std::invoke(keep, response);
        } else {
            static_assert(detail::idempotency_always_false<R>::value,
                          "idempotency_guard::run: keep(response) must return bool or "
                          "settle::idempotency_store_decision");
        }
    }

    // op failed: give the key up so a retry can run. If even that fails the
    // record stays in progress until its lease ends, which is also safe; op's
    // exception is the one the caller sees.
    void abandon_after_failure(const idempotency_scope& scope, const idempotency_key& key,
                               fencing_token token) noexcept {
        try {
            (void)settle::in_transaction(
                *store_, [&](transaction& tx) { return store_->abandon(tx, scope, key, token); });
        } catch (...) {  // NOLINT(bugprone-empty-catch): the record is safe as it is
        }
    }

    Store* store_;
    Clock* clock_;
    idempotency_options options_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_IDEMPOTENCY_HPP
