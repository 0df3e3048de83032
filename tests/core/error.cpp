#include <settle/error.hpp>

#include "settle_test.hpp"

#include <string>
#include <system_error>

TEST_CASE("errc converts to an error_code of the settle category", "[core]") {
    const std::error_code code = settle::errc::decode_failed;
    CHECK(code.category() == settle::error_category());
    CHECK(std::string(code.category().name()) == "settle");
    CHECK(code.value() == static_cast<int>(settle::errc::decode_failed));
    CHECK(code.message() == "decode_failed");
    CHECK(code == settle::errc::decode_failed);
    CHECK(code != settle::errc::unavailable);
}

TEST_CASE("every errc has a distinct name", "[core]") {
    using settle::errc;
    CHECK(settle::to_string(errc::unavailable) == "unavailable");
    CHECK(settle::to_string(errc::backend_failure) == "backend_failure");
    CHECK(settle::to_string(errc::decode_failed) == "decode_failed");
    CHECK(settle::to_string(errc::malformed_input) == "malformed_input");
    CHECK(settle::to_string(errc::invalid_argument) == "invalid_argument");
    CHECK(settle::to_string(errc::aborted) == "aborted");
    CHECK(settle::to_string(static_cast<errc>(999)) == "unknown settle::errc");
    CHECK(settle::error_category().message(999) == "unknown settle::errc");
}

TEST_CASE("settle::error carries its code and message", "[core]") {
    try {
        throw settle::error(settle::errc::malformed_input, "uuid: position 8: expected '-'");
    } catch (const std::system_error& e) {
        CHECK(e.code() == settle::errc::malformed_input);
        CHECK(std::string(e.what()).find("uuid: position 8: expected '-'") != std::string::npos);
    }
    const settle::error from_code(std::make_error_code(std::errc::connection_refused), "connect");
    CHECK(from_code.code() == std::errc::connection_refused);
}
