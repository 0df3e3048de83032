#include <settle/versioned.hpp>

#include "settle_test.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

using settle::version_stamp;

TEST_CASE("version stamps start at one and count up", "[version]") {
    STATIC_REQUIRE(version_stamp::first().value() == 1);
    STATIC_REQUIRE(version_stamp::first().next().value() == 2);
    STATIC_REQUIRE(version_stamp(41).next() == version_stamp(42));
    STATIC_REQUIRE(version_stamp::last().value() == UINT64_MAX);
    STATIC_REQUIRE(std::is_trivially_copyable_v<version_stamp>);
    STATIC_REQUIRE(sizeof(version_stamp) == sizeof(std::uint64_t));
    STATIC_REQUIRE_FALSE(std::is_convertible_v<std::uint64_t, version_stamp>);
    STATIC_REQUIRE_FALSE(std::is_default_constructible_v<version_stamp>);
}

TEST_CASE("version stamps compare by their counter", "[version]") {
    STATIC_REQUIRE(version_stamp(1) < version_stamp(2));
    STATIC_REQUIRE(version_stamp(2) > version_stamp(1));
    STATIC_REQUIRE(version_stamp(7) == version_stamp(7));
    STATIC_REQUIRE(version_stamp(7) != version_stamp(8));
    STATIC_REQUIRE(version_stamp(0) < version_stamp::first());
    STATIC_REQUIRE(version_stamp::last() > version_stamp(UINT64_MAX - 1));
}

TEST_CASE("the last version stamp has no successor and never wraps", "[version]") {
    STATIC_REQUIRE(version_stamp(UINT64_MAX - 1).has_next());
    STATIC_REQUIRE(version_stamp(UINT64_MAX - 1).next() == version_stamp::last());
    STATIC_REQUIRE_FALSE(version_stamp::last().has_next());
    try {
        (void)version_stamp::last().next();
        FAIL("next() wrapped");
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
        CHECK(std::string(e.what()).find("version_stamp::next") != std::string::npos);
    }
}

TEST_CASE("a versioned value pairs a value with its stamp", "[version]") {
    const settle::versioned current{std::string("paid"), version_stamp(3)};
    STATIC_REQUIRE(std::is_same_v<decltype(current), const settle::versioned<std::string>>);
    CHECK(current.value == "paid");
    CHECK(current.stamp == version_stamp(3));
    CHECK(current == settle::versioned<std::string>{"paid", version_stamp(3)});
    CHECK_FALSE(current == settle::versioned<std::string>{"paid", version_stamp(4)});
    CHECK_FALSE(current == settle::versioned<std::string>{"shipped", version_stamp(3)});
}

TEST_CASE("write results report each outcome with its stamp", "[version]") {
    using result = settle::write_result<int>;
    const result applied = result::applied(version_stamp(5));
    CHECK(applied.outcome() == settle::write_outcome::applied);
    CHECK(applied.is_applied());
    CHECK(static_cast<bool>(applied));
    CHECK(applied.stamp() == version_stamp(5));
    CHECK_FALSE(applied.current_value().has_value());

    const result conflict = result::conflict(version_stamp(9), 42);
    CHECK(conflict.outcome() == settle::write_outcome::conflict);
    CHECK(conflict.is_conflict());
    CHECK_FALSE(conflict.is_applied());
    CHECK_FALSE(conflict.is_missing());
    CHECK_FALSE(static_cast<bool>(conflict));
    CHECK(conflict.stamp() == version_stamp(9));
    CHECK(conflict.current_value() == std::optional<int>(42));
    CHECK_FALSE(result::conflict(version_stamp(9)).current_value().has_value());

    const result missing = result::missing();
    CHECK(missing.outcome() == settle::write_outcome::missing);
    CHECK(missing.is_missing());
    CHECK_FALSE(missing.is_conflict());
    CHECK_FALSE(static_cast<bool>(missing));
    CHECK(missing.stamp() == version_stamp(0));
    CHECK_FALSE(missing.current_value().has_value());
}

TEST_CASE("outcomes have stable names", "[version]") {
    STATIC_REQUIRE(settle::to_string(settle::write_outcome::applied) == "applied");
    STATIC_REQUIRE(settle::to_string(settle::write_outcome::conflict) == "conflict");
    STATIC_REQUIRE(settle::to_string(settle::write_outcome::missing) == "missing");
    STATIC_REQUIRE(settle::to_string(static_cast<settle::write_outcome>(99)) ==
                   "unknown settle::write_outcome");
}
