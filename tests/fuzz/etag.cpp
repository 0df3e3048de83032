// The entity-tag parsers on arbitrary bytes. A single entity-tag is accepted
// exactly when a plain description of the grammar accepts it, and then prints
// back as its input; a list parses the same for If-Match and If-None-Match,
// prints back to an equal list, and evaluate_preconditions agrees with the
// parsed list. Refusals name a position inside the input and a reason.
#include <settle/etag.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using fuzz::check;

namespace {

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / %x80-FF
bool is_entity_tag(std::string_view text) {
    if (text.substr(0, 2) == "W/") {
        text.remove_prefix(2);
    }
    if (text.size() < 2 || text.front() != '"' || text.back() != '"') {
        return false;
    }
    for (const char c : text.substr(1, text.size() - 2)) {
        const auto byte = static_cast<unsigned char>(c);
        if (!(byte == 0x21 || (byte >= 0x23 && byte <= 0x7E) || byte >= 0x80)) {
            return false;
        }
    }
    return true;
}

std::string print(const settle::etag_list& list) {
    if (list.is_any()) {
        return "*";
    }
    std::string out;
    for (const settle::entity_tag& tag : list.tags()) {
        if (!out.empty()) {
            out += ", ";
        }
        out += tag.to_string();
    }
    return out;
}

void check_error(const settle::parse_error& error, std::string_view subject, std::size_t size) {
    check(error.subject == subject);
    check(error.position <= size);
    check(!error.reason.empty());
}

void check_single(std::string_view text) {
    const auto parsed = settle::entity_tag::parse(text);
    check(parsed.has_value() == is_entity_tag(trim(text)));
    if (!parsed) {
        check_error(parsed.error(), "entity-tag", text.size());
        return;
    }
    check(parsed->to_string() == trim(text));
    check(settle::entity_tag::parse(parsed->to_string()).value() == *parsed);
    check(settle::weak_match(*parsed, *parsed));
    check(settle::strong_match(*parsed, *parsed) == !parsed->is_weak());
    const auto stamp = settle::parse_stamp(*parsed);
    if (stamp) {
        check(settle::entity_tag::strong(*stamp) == *parsed);
    } else {
        check_error(stamp.error(), "entity-tag stamp", parsed->to_string().size());
    }
}

void check_list(std::string_view field, const std::optional<settle::entity_tag>& current) {
    const auto if_match = settle::parse_if_match(field);
    const auto if_none_match = settle::parse_if_none_match(field);
    check(if_match.has_value() == if_none_match.has_value());
    const auto match = settle::evaluate_preconditions({.if_match = field}, current);
    const auto none =
        settle::evaluate_preconditions({.if_none_match = field, .get_or_head = true}, current);
    check(match.has_value() == if_match.has_value());
    check(none.has_value() == if_match.has_value());
    if (!if_match) {
        check_error(if_match.error(), "If-Match", field.size());
        check_error(if_none_match.error(), "If-None-Match", field.size());
        check(if_match.error().position == if_none_match.error().position);
        check(match.error() == if_match.error());
        return;
    }
    check(*if_match == *if_none_match);
    check(settle::parse_if_match(print(*if_match)).value() == *if_match);
    const bool holds = settle::if_match_holds(*if_match, current);
    check(*match ==
          (holds ? settle::precondition::proceed : settle::precondition::precondition_failed));
    const bool none_holds = settle::if_none_match_holds(*if_none_match, current);
    check(*none ==
          (none_holds ? settle::precondition::proceed : settle::precondition::not_modified));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_single(text);

    // The field as a whole, against no representation, two fixed tags and
    // the first tag of the field itself (so matches happen).
    check_list(text, std::nullopt);
    check_list(text, settle::entity_tag::strong(settle::version_stamp(1)));
    check_list(text, settle::entity_tag::weak(settle::version_stamp(1)));
    if (const auto list = settle::parse_if_match(text); list && !list->tags().empty()) {
        check_list(text, list->tags().front());
    }
    return 0;
}
