#include <settle/settle.hpp>
#include <settle/stores/memory.hpp>
#include <settle/testing/conformance.hpp>

#include "settle_test.hpp"

#include <string>
#include <type_traits>

TEST_CASE("version macros match the CMake project version", "[core]") {
    const std::string from_macros = std::to_string(SETTLE_VERSION_MAJOR) + "." +
                                    std::to_string(SETTLE_VERSION_MINOR) + "." +
                                    std::to_string(SETTLE_VERSION_PATCH);
    CHECK(from_macros == SETTLE_PROJECT_VERSION);
    CHECK(SETTLE_VERSION ==
          SETTLE_VERSION_MAJOR * 10000 + SETTLE_VERSION_MINOR * 100 + SETTLE_VERSION_PATCH);
    CHECK(settle::version.major == SETTLE_VERSION_MAJOR);
    CHECK(settle::version.minor == SETTLE_VERSION_MINOR);
    CHECK(settle::version.patch == SETTLE_VERSION_PATCH);
}

#define SETTLE_TEST_STR2(x) #x
#define SETTLE_TEST_STR(x) SETTLE_TEST_STR2(x)

TEST_CASE("public names live in an inline namespace named for the version", "[core]") {
    const std::string expected = "v" + std::to_string(SETTLE_VERSION_MAJOR) + "_" +
                                 std::to_string(SETTLE_VERSION_MINOR) + "_" +
                                 std::to_string(SETTLE_VERSION_PATCH);
    CHECK(std::string(SETTLE_TEST_STR(SETTLE_ABI_NAMESPACE)) == expected);
    STATIC_REQUIRE(std::is_same_v<settle::error, settle::SETTLE_ABI_NAMESPACE::error>);
}

// settle's internal macros live only inside its headers: none is left
// defined in a file that includes them (the umbrella, a backend after it, the
// conformance kit), so none can clash with a user's. Checked as this file
// compiles.
#if defined(SETTLE_BEGIN_NAMESPACE) || defined(SETTLE_END_NAMESPACE)
#error "settle leaked an internal macro"
#endif
