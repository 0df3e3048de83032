#include <settle/error.hpp>

#include "settle_test.hpp"

#include <string>

namespace {
constexpr settle::parse_result<int> digit(char c) {
    if (c < '0' || c > '9') {
        return settle::parse_error{"digit", 0, "expected 0-9"};
    }
    return c - '0';
}
}  // namespace

TEST_CASE("parse_result holds a value or says why not", "[core]") {
    const auto seven = digit('7');
    REQUIRE(seven);
    CHECK(seven.has_value());
    CHECK(*seven == 7);
    CHECK(seven.value() == 7);

    const auto bad = digit('x');
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == settle::parse_error{"digit", 0, "expected 0-9"});
    CHECK(bad.error().message() == "digit: position 0: expected 0-9");
}

TEST_CASE("value() of a failed parse throws malformed_input with the message", "[core]") {
    const auto bad = digit('x');
    try {
        (void)bad.value();
        FAIL("value() returned");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::malformed_input);
        CHECK(std::string(e.what()).find("digit: position 0: expected 0-9") != std::string::npos);
    }
}

TEST_CASE("parse_result works in constant expressions", "[core]") {
    STATIC_REQUIRE(*digit('4') == 4);
    STATIC_REQUIRE(digit('x').error().position == 0);
}
