// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_ETAG_HPP
#define SETTLE_ETAG_HPP

#include <settle/version.hpp>

#include <settle/error.hpp>
#include <settle/token.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

// HTTP validators from version stamps (RFC 9110 §8.8.3, §13.1.1, §13.1.2,
// §13.2.2): entity-tags, their strong and weak comparison, and the If-Match /
// If-None-Match preconditions that turn a stale write into a 412 and a
// repeated GET into a 304. Parsers never read outside their input and refuse
// malformed text with a settle::parse_error saying where and why.

SETTLE_BEGIN_NAMESPACE

namespace detail::etag {
struct access;
}

/// An entity-tag: an opaque string, strong or weak (W/"..."). Strong tags
/// promise byte-identical representations, weak ones only equivalent ones.
/// Holds the opaque text in a std::string.
class entity_tag {
public:
    /// "17": the strong tag of a version stamp, in decimal.
    [[nodiscard]] static entity_tag strong(version_stamp stamp) {
        return entity_tag(std::to_string(stamp.value()), false);
    }
    /// W/"17": the weak tag of a version stamp.
    [[nodiscard]] static entity_tag weak(version_stamp stamp) {
        return entity_tag(std::to_string(stamp.value()), true);
    }

    /// Exactly one entity-tag (an ETag field value), surrounding spaces and tabs
    /// allowed: "xyzzy", W/"xyzzy", "". The weak prefix is case-sensitive; the
    /// opaque text may hold any visible ASCII but '"', and bytes 0x80-0xFF.
    [[nodiscard]] static parse_result<entity_tag> parse(std::string_view text);

    /// Whether the tag is weak (W/"...").
    [[nodiscard]] bool is_weak() const noexcept { return weak_; }
    /// The text between the quotes.
    [[nodiscard]] std::string_view opaque() const noexcept { return opaque_; }
    /// The field value: "17" or W/"17".
    [[nodiscard]] std::string to_string() const {
        return (weak_ ? std::string("W/\"") : std::string("\"")) + opaque_ + '"';
    }

    /// Identical text (same opaque text, same strength). Use strong_match or
    /// weak_match to compare validators.
    friend bool operator==(const entity_tag&, const entity_tag&) = default;

private:
    friend struct detail::etag::access;

    entity_tag(std::string opaque, bool weak) : opaque_(std::move(opaque)), weak_(weak) {}

    std::string opaque_;
    bool weak_;
};

/// RFC 9110 §8.8.3.2: both strong, and the same opaque text.
[[nodiscard]] inline bool strong_match(const entity_tag& a, const entity_tag& b) noexcept {
    return !a.is_weak() && !b.is_weak() && a.opaque() == b.opaque();
}

/// RFC 9110 §8.8.3.2: the same opaque text, whatever either tag's strength.
[[nodiscard]] inline bool weak_match(const entity_tag& a, const entity_tag& b) noexcept {
    return a.opaque() == b.opaque();
}

/// The version stamp in a strong tag made by entity_tag::strong: decimal
/// digits without leading zeros, at most 2^64 - 1. Weak tags are refused: they
/// never satisfy If-Match, so they cannot name the version a write expects.
[[nodiscard]] parse_result<version_stamp> parse_stamp(const entity_tag& tag);

/// An If-Match or If-None-Match field value: "*" (any current
/// representation), or a list of entity-tags.
class etag_list {
public:
    /// "*"
    [[nodiscard]] static etag_list any() { return etag_list(true, {}); }
    ///@{
    /// A list of the given tags; is_any() tells "*"; equal when both are.
    [[nodiscard]] static etag_list of(std::vector<entity_tag> tags) {
        return etag_list(false, std::move(tags));
    }

    [[nodiscard]] bool is_any() const noexcept { return any_; }
    /// Empty for "*", and for a field holding no element at all.
    [[nodiscard]] const std::vector<entity_tag>& tags() const noexcept { return tags_; }

    friend bool operator==(const etag_list&, const etag_list&) = default;
    ///@}

private:
    etag_list(bool any, std::vector<entity_tag> tags) : tags_(std::move(tags)), any_(any) {}

    std::vector<entity_tag> tags_;
    bool any_;
};

/// Parses an If-Match / If-None-Match field value (RFC 9110 §13.1.1-2, list
/// syntax §5.6.1): "*" alone, or entity-tags separated by commas with optional
/// spaces and tabs. Empty list elements (", ,") are skipped, as the RFC asks of
/// recipients, so an empty field is an empty list. A request with the field
/// on several lines: join the values with ", " first. Errors name the field.
[[nodiscard]] parse_result<etag_list> parse_if_match(std::string_view field);
[[nodiscard]] parse_result<etag_list> parse_if_none_match(std::string_view field);

/// RFC 9110 §13.1.1: true when `current` (the selected representation's tag;
/// nullopt when the resource has none) satisfies If-Match: "*" and any
/// current representation, or a listed tag that strong-matches it.
[[nodiscard]] bool if_match_holds(const etag_list& condition,
                                  const std::optional<entity_tag>& current) noexcept;

/// RFC 9110 §13.1.2: false when "*" meets a current representation, or a
/// listed tag weak-matches `current`; true otherwise.
[[nodiscard]] bool if_none_match_holds(const etag_list& condition,
                                       const std::optional<entity_tag>& current) noexcept;

/// What a server does after evaluating a request's preconditions. Exhaustive.
enum class precondition {
    proceed,              ///< perform the method
    not_modified,         ///< answer 304 Not Modified (GET or HEAD whose If-None-Match failed)
    precondition_failed,  ///< answer 412 Precondition Failed
};

[[nodiscard]] constexpr std::string_view to_string(precondition p) noexcept {
    switch (p) {
    case precondition::proceed: return "proceed";
    case precondition::not_modified: return "not_modified";
    case precondition::precondition_failed: return "precondition_failed";
    }
    return "unknown settle::precondition";
}

/// The entity-tag preconditions of a request: each field's value, if the
/// request carries that field, and whether the method is GET or HEAD.
struct conditional_request {
    ///@{
    /// The request's conditional header fields (absent when not sent) and whether the request is a
    /// GET or a HEAD.
    std::optional<std::string_view> if_match{};
    std::optional<std::string_view> if_none_match{};
    bool get_or_head = false;
    ///@}
};

/// RFC 9110 §13.2.2, steps 1 and 3, for the resource whose current tag is
/// `current` (nullopt: it has no current representation):
///   1. If-Match present and false           -> precondition_failed
///   3. If-None-Match present and false      -> not_modified for GET/HEAD,
///                                              precondition_failed otherwise
///   otherwise                                -> proceed
/// Both fields are parsed before anything is evaluated, so a malformed field is
/// always refused (a parse_error naming it), even when the other one decides.
/// The date preconditions (If-Unmodified-Since, If-Modified-Since) are left to
/// the caller. Allocates nothing.
[[nodiscard]] parse_result<precondition> evaluate_preconditions(
    const conditional_request& request, const std::optional<entity_tag>& current);

// ---------------------------------------------------------------------------

namespace detail::etag {

inline constexpr std::string_view tag_subject = "entity-tag";
inline constexpr std::string_view stamp_subject = "entity-tag stamp";
inline constexpr std::string_view if_match_subject = "If-Match";
inline constexpr std::string_view if_none_match_subject = "If-None-Match";

struct tag_view {
    bool weak;
    std::string_view opaque;
};

struct access {
    [[nodiscard]] static entity_tag make(const tag_view& tag) {
        return entity_tag(std::string(tag.opaque), tag.weak);
    }
};

[[nodiscard]] constexpr bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

// etagc = %x21 / %x23-7E / obs-text
[[nodiscard]] constexpr bool is_etagc(char c) noexcept {
    const auto byte = static_cast<unsigned char>(c);
    return byte == 0x21 || (byte >= 0x23 && byte <= 0x7E) || byte >= 0x80;
}

[[nodiscard]] constexpr std::size_t skip_ows(std::string_view text, std::size_t pos) noexcept {
    while (pos < text.size() && is_ows(text[pos])) {
        ++pos;
    }
    return pos;
}

// Reads one entity-tag starting at text[pos]. On success returns an empty
// reason and leaves pos just past the closing quote; otherwise returns the
// reason and leaves pos at the offending character (or the end).
[[nodiscard]] constexpr std::string_view read_tag(std::string_view text, std::size_t& pos,
                                                  tag_view& out) noexcept {
    out.weak = false;
    if (pos < text.size() && text[pos] == 'W') {
        ++pos;
        if (pos == text.size() || text[pos] != '/') {
            return "expected '/' after 'W'";
        }
        ++pos;
        if (pos == text.size() || text[pos] != '"') {
            return "expected '\"' after 'W/'";
        }
        out.weak = true;
    } else if (pos == text.size() || text[pos] != '"') {
        if (pos < text.size() && text[pos] == 'w' && pos + 1 < text.size() &&
            text[pos + 1] == '/') {
            return "the weak prefix is 'W/', with a capital W";
        }
        return "expected an entity-tag: '\"' or 'W/\"'";
    }
    ++pos;  // the opening quote
    const std::size_t begin = pos;
    while (pos < text.size() && text[pos] != '"') {
        if (!is_etagc(text[pos])) {
            return "character not allowed in an entity-tag";
        }
        ++pos;
    }
    if (pos == text.size()) {
        return "missing the closing '\"'";
    }
    out.opaque = text.substr(begin, pos - begin);
    ++pos;  // the closing quote
    return {};
}

// Walks a list field: calls on_tag(tag_view) for each element. Returns the
// parse_error, or nullopt with `any` set for "*".
template <class OnTag>
[[nodiscard]] constexpr std::optional<parse_error> walk_list(std::string_view subject,
                                                             std::string_view field, bool& any,
                                                             OnTag&& on_tag) {
    any = false;
    std::size_t pos = skip_ows(field, 0);
    if (pos < field.size() && field[pos] == '*') {
        pos = skip_ows(field, pos + 1);
        if (pos != field.size()) {
            return parse_error{subject, pos, "'*' cannot be combined with entity-tags"};
        }
        any = true;
        return std::nullopt;
    }
    while (true) {
        pos = skip_ows(field, pos);
        if (pos == field.size()) {
            return std::nullopt;
        }
        if (field[pos] == ',') {  // an empty element
            ++pos;
            continue;
        }
        if (field[pos] == '*') {
            return parse_error{subject, pos, "'*' cannot be combined with entity-tags"};
        }
        tag_view tag{};
        const std::string_view reason = read_tag(field, pos, tag);
        if (!reason.empty()) {
            return parse_error{subject, pos, reason};
        }
        on_tag(tag);
        pos = skip_ows(field, pos);
        if (pos == field.size()) {
            return std::nullopt;
        }
        if (field[pos] != ',') {
            return parse_error{subject, pos, "expected ',' between entity-tags"};
        }
        ++pos;
    }
}

[[nodiscard]] inline parse_result<etag_list> parse_list(std::string_view subject,
                                                        std::string_view field) {
    std::vector<entity_tag> tags;
    bool any = false;
    std::optional<parse_error> error =
        walk_list(subject, field, any, [&](const tag_view& t) { tags.push_back(access::make(t)); });
    if (error) {
        return *error;
    }
    return any ? etag_list::any() : etag_list::of(std::move(tags));
}

// If-Match (strong comparison) or If-None-Match (weak comparison) against
// `current`: does any element match? Sets `any` for "*".
[[nodiscard]] inline std::optional<parse_error> scan_list(std::string_view subject,
                                                          std::string_view field,
                                                          const std::optional<entity_tag>& current,
                                                          bool strong, bool& any, bool& matched) {
    matched = false;
    return walk_list(subject, field, any, [&](const tag_view& t) {
        if (current && (!strong || (!t.weak && !current->is_weak())) &&
            t.opaque == current->opaque()) {
            matched = true;
        }
    });
}

}  // namespace detail::etag

inline parse_result<entity_tag> entity_tag::parse(std::string_view text) {
    using namespace detail::etag;
    std::size_t pos = skip_ows(text, 0);
    tag_view tag{};
    const std::string_view reason = read_tag(text, pos, tag);
    if (!reason.empty()) {
        return parse_error{tag_subject, pos, reason};
    }
    pos = skip_ows(text, pos);
    if (pos != text.size()) {
        return parse_error{tag_subject, pos, "unexpected character after the entity-tag"};
    }
    return access::make(tag);
}

inline parse_result<version_stamp> parse_stamp(const entity_tag& tag) {
    using detail::etag::stamp_subject;
    if (tag.is_weak()) {
        return parse_error{stamp_subject, 0, "a weak entity-tag names no exact version"};
    }
    const std::string_view digits = tag.opaque();
    if (digits.empty()) {
        return parse_error{stamp_subject, 1, "expected a decimal digit"};
    }
    if (digits.size() > 1 && digits[0] == '0') {
        return parse_error{stamp_subject, 1, "leading zero"};
    }
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        const char c = digits[i];
        if (c < '0' || c > '9') {
            return parse_error{stamp_subject, i + 1, "expected a decimal digit"};
        }
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (version_stamp::last().value() - digit) / 10) {
            return parse_error{stamp_subject, i + 1, "the stamp does not fit in 64 bits"};
        }
        value = value * 10 + digit;
    }
    return version_stamp(value);
}

inline parse_result<etag_list> parse_if_match(std::string_view field) {
    return detail::etag::parse_list(detail::etag::if_match_subject, field);
}

inline parse_result<etag_list> parse_if_none_match(std::string_view field) {
    return detail::etag::parse_list(detail::etag::if_none_match_subject, field);
}

inline bool if_match_holds(const etag_list& condition,
                           const std::optional<entity_tag>& current) noexcept {
    if (!current) {
        return false;
    }
    if (condition.is_any()) {
        return true;
    }
    for (const entity_tag& tag : condition.tags()) {
        if (strong_match(tag, *current)) {
            return true;
        }
    }
    return false;
}

inline bool if_none_match_holds(const etag_list& condition,
                                const std::optional<entity_tag>& current) noexcept {
    if (!current) {
        return true;
    }
    if (condition.is_any()) {
        return false;
    }
    for (const entity_tag& tag : condition.tags()) {
        if (weak_match(tag, *current)) {
            return false;
        }
    }
    return true;
}

inline parse_result<precondition> evaluate_preconditions(const conditional_request& request,
                                                         const std::optional<entity_tag>& current) {
    using namespace detail::etag;
    bool match_any = false;
    bool match_found = false;
    if (request.if_match) {
        if (auto error = scan_list(if_match_subject, *request.if_match, current, true, match_any,
                                   match_found)) {
            return *error;
        }
    }
    bool none_any = false;
    bool none_found = false;
    if (request.if_none_match) {
        if (auto error = scan_list(if_none_match_subject, *request.if_none_match, current, false,
                                   none_any, none_found)) {
            return *error;
        }
    }
    if (request.if_match) {
        const bool holds = current.has_value() && (match_any || match_found);
        if (!holds) {
            return precondition::precondition_failed;
        }
    }
    if (request.if_none_match) {
        const bool holds = !current.has_value() || (!none_any && !none_found);
        if (!holds) {
            return request.get_or_head ? precondition::not_modified
                                       : precondition::precondition_failed;
        }
    }
    return precondition::proceed;
}

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_ETAG_HPP
