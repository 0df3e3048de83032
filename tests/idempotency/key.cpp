#include <settle/idempotency.hpp>

#include "service.hpp"
#include "settle_test.hpp"

#include <settle/clock.hpp>
#include <settle/uuid.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct refusal {
    std::string text;
    std::size_t position;
    std::string_view reason;
};

std::string repeat(char c, std::size_t n) {
    return std::string(n, c);
}

}  // namespace

TEST_CASE("a raw key of 1 to 255 printable characters is taken as it is", "[idempotency]") {
    const std::string text =
        GENERATE(std::string("a"), std::string(" "), std::string("~"),
                 std::string("8e03978e-40d5-43e8-bc93-6894a57f9324"),
                 std::string("with \"quotes\" and \\backslashes\\"), std::string(255, 'k'));
    const auto parsed = settle::idempotency_key::parse(text);
    REQUIRE(parsed.has_value());
    CHECK(parsed->value() == text);
}

TEST_CASE("a raw key that is empty or too long or not printable is refused with where and why",
          "[idempotency]") {
    const std::vector<refusal> cases = {
        {"", 0, "empty: expected 1 to 255 printable ASCII characters"},
        {"ab\x01", 2, "expected a printable ASCII character (0x20 to 0x7E)"},
        {"ab\x7f", 2, "expected a printable ASCII character (0x20 to 0x7E)"},
        {"ab\tc", 2, "expected a printable ASCII character (0x20 to 0x7E)"},
        {"caf\xc3\xa9", 3, "expected a printable ASCII character (0x20 to 0x7E)"},
        {std::string("a\0b", 3), 1, "expected a printable ASCII character (0x20 to 0x7E)"},
        {repeat('k', 256), 255, "too long: at most 255 characters"},
        {repeat('k', 1000), 255, "too long: at most 255 characters"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        const auto parsed = settle::idempotency_key::parse(c.text);
        REQUIRE_FALSE(parsed.has_value());
        CHECK(parsed.error().subject == "idempotency key");
        CHECK(parsed.error().position == c.position);
        CHECK(parsed.error().reason == c.reason);
    }
}

TEST_CASE("value on a refused key throws malformed_input with the reason", "[idempotency]") {
    try {
        (void)settle::idempotency_key::parse("").value();
        FAIL("an empty key was accepted");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::malformed_input);
        CHECK(std::string(e.what()).find("idempotency key: position 0: empty") !=
              std::string::npos);
    }
}

TEST_CASE("a header value is a quoted string with escapes", "[idempotency]") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"("abc")", "abc"},
        {R"("8e03978e-40d5-43e8-bc93-6894a57f9324")", "8e03978e-40d5-43e8-bc93-6894a57f9324"},
        {R"("a\"b\\c")", R"(a"b\c)"},
        {R"("\\")", R"(\)"},
        {R"("a b")", "a b"},
        {"  \"abc\" \t", "abc"},
        {"\t\"abc\"", "abc"},
        {'"' + repeat('k', 255) + '"', repeat('k', 255)},
        {'"' + repeat('k', 254) + R"(\"")", repeat('k', 254) + '"'},
    };
    for (const auto& [header, expected] : cases) {
        CAPTURE(header);
        const auto parsed = settle::idempotency_key::from_header(header);
        REQUIRE(parsed.has_value());
        CHECK(parsed->value() == expected);
    }
}

TEST_CASE("a malformed header value is refused with where and why", "[idempotency]") {
    const std::vector<refusal> cases = {
        {"", 0, "empty: expected a quoted string"},
        {"   ", 3, "empty: expected a quoted string"},
        {"abc", 0,
         "expected '\"': the value is a structured-field string (idempotency_key::parse takes a "
         "raw key)"},
        {" 'abc'", 1,
         "expected '\"': the value is a structured-field string (idempotency_key::parse takes a "
         "raw key)"},
        {R"("abc)", 4, "unterminated string: expected a closing '\"'"},
        {R"("abc\)", 5, "unterminated string: expected a closing '\"'"},
        {R"("a\bc")", 3, "only '\"' and '\\' may follow a backslash"},
        {"\"a\x01\"", 2, "expected a printable ASCII character (0x20 to 0x7E)"},
        {"\"a\tb\"", 2, "expected a printable ASCII character (0x20 to 0x7E)"},
        {"\"caf\xc3\xa9\"", 4, "expected a printable ASCII character (0x20 to 0x7E)"},
        {R"("")", 1, "empty: expected 1 to 255 printable ASCII characters"},
        {R"(  "" )", 3, "empty: expected 1 to 255 printable ASCII characters"},
        {R"("abc";v=1)", 5, "parameters are not accepted"},
        {R"("abc" ;v=1)", 6, "parameters are not accepted"},
        {R"("abc" x)", 6, "unexpected character after the closing '\"'"},
        {R"("abc", "def")", 5, "unexpected character after the closing '\"'"},
        {'"' + repeat('k', 256) + '"', 256, "too long: at most 255 characters"},
        {'"' + repeat('k', 255) + R"(\"")", 257, "too long: at most 255 characters"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        const auto parsed = settle::idempotency_key::from_header(c.text);
        REQUIRE_FALSE(parsed.has_value());
        CHECK(parsed.error().subject == "Idempotency-Key header");
        CHECK(parsed.error().position == c.position);
        CHECK(parsed.error().reason == c.reason);
    }
}

TEST_CASE("to_header quotes a key so that from_header reads it back", "[idempotency]") {
    const std::string text =
        GENERATE(std::string("abc"), std::string(R"(a"b\c)"), std::string(255, '"'),
                 std::string(255, '\\'), std::string(" leading and trailing "));
    const auto k = settle::idempotency_key::parse(text).value();
    const std::string header = k.to_header();
    CHECK(header.front() == '"');
    CHECK(header.back() == '"');
    const auto back = settle::idempotency_key::from_header(header);
    REQUIRE(back.has_value());
    CHECK(*back == k);
    CHECK(settle::idempotency_key::parse("a\"b").value().to_header() == R"("a\"b")");
}

TEST_CASE("a uuid makes a key of its canonical text", "[idempotency]") {
    settle::manual_clock clock(std::chrono::sys_days(std::chrono::year(2024) / 3 / 1));
    std::mt19937_64 random(7);
    settle::uuid_v7_generator ids(clock, random);
    const settle::uuid id = ids();
    const settle::idempotency_key k(id);
    CHECK(k.value() == id.to_string());
    CHECK(k.value().size() == settle::uuid::text_size);
    CHECK(settle::idempotency_key::parse(k.value()).value() == k);
    CHECK(settle::idempotency_key::from_header(k.to_header()).value() == k);
    const settle::idempotency_key next(ids());
    CHECK(k < next);  // v7 keys from one generator sort by creation
}

TEST_CASE("keys compare exactly", "[idempotency]") {
    const auto parse = [](std::string_view text) {
        return settle::idempotency_key::parse(text).value();
    };
    CHECK(parse("key") == parse("key"));
    CHECK(parse("Key") != parse("key"));
    CHECK(parse("key ") != parse("key"));
    CHECK(parse("Key") < parse("key"));
    CHECK(parse("a") < parse("ab"));
    std::ostringstream out;
    out << parse("k-1");
    CHECK(out.str() == "k-1");
}

TEST_CASE("fingerprint_fields tells apart fields that concatenate alike", "[idempotency]") {
    CHECK(settle::fingerprint_fields({"ab", "c"}) != settle::fingerprint_fields({"a", "bc"}));
    CHECK(settle::fingerprint_fields({"abc"}) != settle::fingerprint_fields({"abc", ""}));
    CHECK(settle::fingerprint_fields({"a", "b"}) == settle::fingerprint_fields({"a", "b"}));
    CHECK(settle::fingerprint_fields({"a", "b"}) != settle::fingerprint_fields({"b", "a"}));
    CHECK(settle::fingerprint_fields({}) == settle::sha256::hash(std::string_view()));
    // Each field is its 8-byte big-endian length, then its bytes.
    const std::string framed =
        std::string("\0\0\0\0\0\0\0\x02", 8) + "ab" + std::string("\0\0\0\0\0\0\0\x00", 8);
    CHECK(settle::fingerprint_fields({"ab", ""}) == settle::sha256::hash(framed));
    constexpr settle::sha256_digest at_compile_time = settle::fingerprint_fields({"a", "b"});
    STATIC_REQUIRE(at_compile_time != settle::sha256_digest{});
}

TEST_CASE("every outcome has a name for logs", "[idempotency]") {
    using settle::to_string;
    CHECK(to_string(settle::idempotency_outcome::executed) == "executed");
    CHECK(to_string(settle::idempotency_outcome::replayed) == "replayed");
    CHECK(to_string(settle::idempotency_outcome::in_progress) == "in_progress");
    CHECK(to_string(settle::idempotency_outcome::mismatch) == "mismatch");
    CHECK(to_string(settle::idempotency_claim_outcome::claimed) == "claimed");
    CHECK(to_string(settle::idempotency_claim_outcome::replay) == "replay");
    CHECK(to_string(settle::idempotency_claim_outcome::in_progress) == "in_progress");
    CHECK(to_string(settle::idempotency_claim_outcome::mismatch) == "mismatch");
    CHECK(to_string(settle::idempotency_state::in_progress) == "in_progress");
    CHECK(to_string(settle::idempotency_state::completed) == "completed");
    CHECK(to_string(settle::fenced_write::applied) == "applied");
    CHECK(to_string(settle::fenced_write::stale) == "stale");
    STATIC_REQUIRE(to_string(settle::idempotency_outcome::replayed) == "replayed");
}

TEST_CASE("each outcome maps to the HTTP status a service should send", "[idempotency]") {
    namespace http = settle::idempotency_http;
    using settle::idempotency_outcome;
    STATIC_REQUIRE(http::bad_key == 400);
    STATIC_REQUIRE(http::status(idempotency_outcome::executed, 201) == 201);
    STATIC_REQUIRE(http::status(idempotency_outcome::replayed, 201) == 201);
    STATIC_REQUIRE(http::status(idempotency_outcome::in_progress, 201) == 409);
    STATIC_REQUIRE(http::status(idempotency_outcome::mismatch, 201) == 422);

    idempotency_test::service s;
    const auto scope = idempotency_test::scope_a();
    const auto executed = s.guard.run(scope, idempotency_test::key("plain"),
                                      idempotency_test::fp("a"), [] { return 1; });
    CHECK(http::status(executed) == 200);
    CHECK(http::status(executed, 201) == 201);
    const auto accepted = [](const int&) {
        return settle::idempotency_store_decision{.store = true, .status = 202};
    };
    (void)s.guard.run(
        scope, idempotency_test::key("accepted"), idempotency_test::fp("a"), [] { return 1; },
        accepted);
    const auto replayed = s.guard.run(scope, idempotency_test::key("accepted"),
                                      idempotency_test::fp("a"), [] { return 2; });
    CHECK(replayed.is_replayed());
    CHECK(http::status(replayed) == 202);
    const auto busy =
        s.guard.run(scope, idempotency_test::key("busy"), idempotency_test::fp("a"), [&] {
            const auto inner = s.guard.run(scope, idempotency_test::key("busy"),
                                           idempotency_test::fp("a"), [] { return 3; });
            CHECK(inner.is_in_progress());
            CHECK(http::status(inner) == 409);
            return 4;
        });
    CHECK(busy.is_executed());
}
