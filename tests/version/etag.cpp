#include <settle/etag.hpp>

#include "settle_test.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

using settle::entity_tag;
using settle::precondition;
using settle::version_stamp;

namespace {

entity_tag tag(std::string_view text) {
    return entity_tag::parse(text).value();
}

settle::parse_error tag_error(std::string_view text) {
    const auto parsed = entity_tag::parse(text);
    REQUIRE_FALSE(parsed.has_value());
    return parsed.error();
}

settle::parse_error list_error(std::string_view field) {
    const auto parsed = settle::parse_if_match(field);
    REQUIRE_FALSE(parsed.has_value());
    return parsed.error();
}

std::vector<std::string> texts(const settle::etag_list& list) {
    std::vector<std::string> out;
    for (const entity_tag& t : list.tags()) {
        out.push_back(t.to_string());
    }
    return out;
}

}  // namespace

TEST_CASE("a version stamp formats as a strong or weak entity-tag", "[version]") {
    CHECK(entity_tag::strong(version_stamp(17)).to_string() == "\"17\"");
    CHECK(entity_tag::weak(version_stamp(17)).to_string() == "W/\"17\"");
    CHECK(entity_tag::strong(version_stamp::last()).to_string() == "\"18446744073709551615\"");
    CHECK_FALSE(entity_tag::strong(version_stamp(1)).is_weak());
    CHECK(entity_tag::weak(version_stamp(1)).is_weak());
    CHECK(entity_tag::weak(version_stamp(1)).opaque() == "1");
}

TEST_CASE("the stamp of a strong entity-tag parses back", "[version]") {
    for (const auto value :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{907}, version_stamp::last().value()}) {
        CAPTURE(value);
        CHECK(settle::parse_stamp(entity_tag::strong(version_stamp(value))).value() ==
              version_stamp(value));
    }
    struct bad {
        std::string_view text;
        std::size_t position;
        std::string_view reason;
    };
    const bad cases[] = {
        {"W/\"17\"", 0, "a weak entity-tag names no exact version"},
        {"\"\"", 1, "expected a decimal digit"},
        {"\"017\"", 1, "leading zero"},
        {"\"1x\"", 2, "expected a decimal digit"},
        {"\"-1\"", 1, "expected a decimal digit"},
        {"\"18446744073709551616\"", 20, "the stamp does not fit in 64 bits"},
        {"\"99999999999999999999999\"", 20, "the stamp does not fit in 64 bits"},
    };
    for (const bad& b : cases) {
        CAPTURE(b.text);
        const auto parsed = settle::parse_stamp(tag(b.text));
        REQUIRE_FALSE(parsed.has_value());
        CHECK(parsed.error().subject == "entity-tag stamp");
        CHECK(parsed.error().position == b.position);
        CHECK(parsed.error().reason == b.reason);
    }
}

TEST_CASE("entity-tags parse as RFC 9110 writes them", "[version]") {
    CHECK(tag("\"xyzzy\"").opaque() == "xyzzy");
    CHECK_FALSE(tag("\"xyzzy\"").is_weak());
    CHECK(tag("W/\"xyzzy\"").opaque() == "xyzzy");
    CHECK(tag("W/\"xyzzy\"").is_weak());
    CHECK(tag("\"\"").opaque().empty());
    CHECK(tag(" \t\"a\" ").to_string() == "\"a\"");
    CHECK(tag("\"!#~/W\"").opaque() == "!#~/W");
    const std::string obs_text = "\"\x80\xff\"";
    CHECK(tag(obs_text).opaque() == "\x80\xff");
    CHECK(tag("W/\"x\"") == entity_tag::parse("W/\"x\"").value());
    CHECK_FALSE(tag("W/\"x\"") == tag("\"x\""));
}

TEST_CASE("malformed entity-tags are refused with position and reason", "[version]") {
    struct bad {
        std::string_view text;
        std::size_t position;
        std::string_view reason;
    };
    const bad cases[] = {
        {"", 0, "expected an entity-tag: '\"' or 'W/\"'"},
        {"xyzzy", 0, "expected an entity-tag: '\"' or 'W/\"'"},
        {"\"xyzzy", 6, "missing the closing '\"'"},
        {"\"", 1, "missing the closing '\"'"},
        {"w/\"x\"", 0, "the weak prefix is 'W/', with a capital W"},
        {"W\"x\"", 1, "expected '/' after 'W'"},
        {"W", 1, "expected '/' after 'W'"},
        {"W/x", 2, "expected '\"' after 'W/'"},
        {"W/ \"x\"", 2, "expected '\"' after 'W/'"},
        {"\"a b\"", 2, "character not allowed in an entity-tag"},
        {"\"a\x7f\"", 2, "character not allowed in an entity-tag"},
        {"\"a\tb\"", 2, "character not allowed in an entity-tag"},
        {std::string_view("\"a\0\"", 4), 2, "character not allowed in an entity-tag"},
        {"\"a\"b", 3, "unexpected character after the entity-tag"},
        {"\"a\", \"b\"", 3, "unexpected character after the entity-tag"},
        {"*", 0, "expected an entity-tag: '\"' or 'W/\"'"},
    };
    for (const bad& b : cases) {
        CAPTURE(b.text);
        const settle::parse_error e = tag_error(b.text);
        CHECK(e.subject == "entity-tag");
        CHECK(e.position == b.position);
        CHECK(e.reason == b.reason);
    }
    CHECK(tag_error("\"x").message() == "entity-tag: position 2: missing the closing '\"'");
    CHECK_THROWS_AS(entity_tag::parse("x").value(), settle::error);
}

TEST_CASE("strong and weak comparison follow the RFC 9110 table", "[version]") {
    // RFC 9110 section 8.8.3.2.
    struct row {
        std::string_view a;
        std::string_view b;
        bool strong;
        bool weak;
    };
    const row table[] = {
        {"W/\"1\"", "W/\"1\"", false, true},
        {"W/\"1\"", "W/\"2\"", false, false},
        {"W/\"1\"", "\"1\"", false, true},
        {"\"1\"", "\"1\"", true, true},
    };
    for (const row& r : table) {
        CAPTURE(r.a, r.b);
        CHECK(settle::strong_match(tag(r.a), tag(r.b)) == r.strong);
        CHECK(settle::strong_match(tag(r.b), tag(r.a)) == r.strong);
        CHECK(settle::weak_match(tag(r.a), tag(r.b)) == r.weak);
        CHECK(settle::weak_match(tag(r.b), tag(r.a)) == r.weak);
    }
    CHECK_FALSE(settle::strong_match(tag("\"1\""), tag("\"2\"")));
    CHECK_FALSE(settle::strong_match(tag("\"a\""), tag("\"A\"")));
}

TEST_CASE("If-Match and If-None-Match lists parse with optional whitespace", "[version]") {
    const auto star = settle::parse_if_match("*").value();
    CHECK(star.is_any());
    CHECK(star.tags().empty());
    CHECK(settle::parse_if_none_match(" \t* ").value().is_any());

    const auto three = settle::parse_if_match("\"xyzzy\", \"r2d2xxxx\", \"c3piozzzz\"").value();
    CHECK_FALSE(three.is_any());
    CHECK(texts(three) == std::vector<std::string>{"\"xyzzy\"", "\"r2d2xxxx\"", "\"c3piozzzz\""});

    const auto weak =
        settle::parse_if_none_match("W/\"xyzzy\", W/\"r2d2xxxx\", W/\"c3piozzzz\"").value();
    CHECK(texts(weak) ==
          std::vector<std::string>{"W/\"xyzzy\"", "W/\"r2d2xxxx\"", "W/\"c3piozzzz\""});

    CHECK(texts(settle::parse_if_match("\"a\",\"b\"\t,\tW/\"c\"").value()) ==
          std::vector<std::string>{"\"a\"", "\"b\"", "W/\"c\""});
    CHECK(texts(settle::parse_if_match(", ,\"a\" , ,, \"b\",").value()) ==
          std::vector<std::string>{"\"a\"", "\"b\""});
    const auto empty = settle::parse_if_match("").value();
    CHECK_FALSE(empty.is_any());
    CHECK(empty.tags().empty());
    CHECK(settle::parse_if_match(" , ").value() == empty);
    CHECK(settle::parse_if_match("\"a\"").value() == settle::etag_list::of({tag("\"a\"")}));
}

TEST_CASE("malformed If-Match and If-None-Match fields are refused", "[version]") {
    struct bad {
        std::string_view field;
        std::size_t position;
        std::string_view reason;
    };
    const bad cases[] = {
        {"xyzzy", 0, "expected an entity-tag: '\"' or 'W/\"'"},
        {"\"a\" \"b\"", 4, "expected ',' between entity-tags"},
        {"\"a\";\"b\"", 3, "expected ',' between entity-tags"},
        {"*, \"a\"", 1, "'*' cannot be combined with entity-tags"},
        {"\"a\", *", 5, "'*' cannot be combined with entity-tags"},
        {"**", 1, "'*' cannot be combined with entity-tags"},
        {"\"a\", \"b", 7, "missing the closing '\"'"},
        {"\"a\", w/\"b\"", 5, "the weak prefix is 'W/', with a capital W"},
        {"\"a b\"", 2, "character not allowed in an entity-tag"},
        {"\"a\"\n", 3, "expected ',' between entity-tags"},
    };
    for (const bad& b : cases) {
        CAPTURE(b.field);
        const settle::parse_error e = list_error(b.field);
        CHECK(e.subject == "If-Match");
        CHECK(e.position == b.position);
        CHECK(e.reason == b.reason);
        const auto none = settle::parse_if_none_match(b.field);
        REQUIRE_FALSE(none.has_value());
        CHECK(none.error().subject == "If-None-Match");
        CHECK(none.error().position == b.position);
    }
}

TEST_CASE("If-Match holds only for a strong match or star with a representation", "[version]") {
    const std::optional<entity_tag> current = tag("\"xyzzy\"");
    const std::optional<entity_tag> weak_current = tag("W/\"xyzzy\"");
    const std::optional<entity_tag> none;
    const auto list = [](std::string_view f) { return settle::parse_if_match(f).value(); };

    CHECK(settle::if_match_holds(list("\"xyzzy\""), current));
    CHECK(settle::if_match_holds(list("\"r2d2xxxx\", \"xyzzy\""), current));
    CHECK_FALSE(settle::if_match_holds(list("\"r2d2xxxx\""), current));
    CHECK_FALSE(settle::if_match_holds(list("W/\"xyzzy\""), current));
    CHECK_FALSE(settle::if_match_holds(list("\"xyzzy\""), weak_current));
    CHECK(settle::if_match_holds(list("*"), current));
    CHECK(settle::if_match_holds(list("*"), weak_current));
    CHECK_FALSE(settle::if_match_holds(list("*"), none));
    CHECK_FALSE(settle::if_match_holds(list("\"xyzzy\""), none));
    CHECK_FALSE(settle::if_match_holds(list(""), current));
}

TEST_CASE("If-None-Match fails on a weak match or star with a representation", "[version]") {
    const std::optional<entity_tag> current = tag("\"xyzzy\"");
    const std::optional<entity_tag> none;
    const auto list = [](std::string_view f) { return settle::parse_if_none_match(f).value(); };

    CHECK_FALSE(settle::if_none_match_holds(list("\"xyzzy\""), current));
    CHECK_FALSE(settle::if_none_match_holds(list("W/\"xyzzy\""), current));
    CHECK_FALSE(settle::if_none_match_holds(list("\"a\", W/\"xyzzy\""), current));
    CHECK_FALSE(settle::if_none_match_holds(list("\"xyzzy\""), tag("W/\"xyzzy\"")));
    CHECK(settle::if_none_match_holds(list("\"r2d2xxxx\", \"c3piozzzz\""), current));
    CHECK_FALSE(settle::if_none_match_holds(list("*"), current));
    CHECK(settle::if_none_match_holds(list("*"), none));
    CHECK(settle::if_none_match_holds(list("\"xyzzy\""), none));
    CHECK(settle::if_none_match_holds(list(""), current));
}

TEST_CASE("preconditions answer proceed 412 or 304 in RFC 9110 order", "[version]") {
    const std::optional<entity_tag> v3 = entity_tag::strong(version_stamp(3));
    const std::optional<entity_tag> none;
    const auto eval = [](settle::conditional_request r, const std::optional<entity_tag>& cur) {
        return settle::evaluate_preconditions(r, cur).value();
    };

    CHECK(eval({}, v3) == precondition::proceed);
    CHECK(eval({}, none) == precondition::proceed);

    // A write that names the version it read.
    CHECK(eval({.if_match = "\"3\""}, v3) == precondition::proceed);
    CHECK(eval({.if_match = "\"2\""}, v3) == precondition::precondition_failed);
    CHECK(eval({.if_match = "W/\"3\""}, v3) == precondition::precondition_failed);
    CHECK(eval({.if_match = "\"3\""}, none) == precondition::precondition_failed);
    CHECK(eval({.if_match = "*"}, v3) == precondition::proceed);
    CHECK(eval({.if_match = "*"}, none) == precondition::precondition_failed);

    // Create only if absent.
    CHECK(eval({.if_none_match = "*"}, none) == precondition::proceed);
    CHECK(eval({.if_none_match = "*"}, v3) == precondition::precondition_failed);

    // A conditional GET.
    CHECK(eval({.if_none_match = "\"3\"", .get_or_head = true}, v3) == precondition::not_modified);
    CHECK(eval({.if_none_match = "W/\"3\"", .get_or_head = true}, v3) ==
          precondition::not_modified);
    CHECK(eval({.if_none_match = "\"2\"", .get_or_head = true}, v3) == precondition::proceed);
    CHECK(eval({.if_none_match = "\"3\"", .get_or_head = false}, v3) ==
          precondition::precondition_failed);

    // If-Match is evaluated first.
    CHECK(eval({.if_match = "\"2\"", .if_none_match = "\"9\"", .get_or_head = true}, v3) ==
          precondition::precondition_failed);
    CHECK(eval({.if_match = "\"3\"", .if_none_match = "\"3\"", .get_or_head = true}, v3) ==
          precondition::not_modified);
    CHECK(eval({.if_match = "\"3\"", .if_none_match = "\"4\""}, v3) == precondition::proceed);
}

TEST_CASE("a malformed precondition field is refused even when the other decides", "[version]") {
    const std::optional<entity_tag> v3 = entity_tag::strong(version_stamp(3));
    const auto bad_match = settle::evaluate_preconditions({.if_match = "3"}, v3);
    REQUIRE_FALSE(bad_match.has_value());
    CHECK(bad_match.error().subject == "If-Match");
    CHECK(bad_match.error().position == 0);

    const auto bad_none =
        settle::evaluate_preconditions({.if_match = "\"2\"", .if_none_match = "\"3"}, v3);
    REQUIRE_FALSE(bad_none.has_value());
    CHECK(bad_none.error().subject == "If-None-Match");
    CHECK(bad_none.error().message() == "If-None-Match: position 2: missing the closing '\"'");
}

TEST_CASE("precondition outcomes have stable names", "[version]") {
    STATIC_REQUIRE(settle::to_string(precondition::proceed) == "proceed");
    STATIC_REQUIRE(settle::to_string(precondition::not_modified) == "not_modified");
    STATIC_REQUIRE(settle::to_string(precondition::precondition_failed) == "precondition_failed");
}
