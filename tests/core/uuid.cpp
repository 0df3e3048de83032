#include <settle/uuid.hpp>

#include "settle_test.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <vector>

using namespace std::chrono_literals;

namespace {

using ms_time = std::chrono::sys_time<std::chrono::milliseconds>;

constexpr ms_time at_ms(std::int64_t ms) {
    return ms_time(std::chrono::milliseconds(ms));
}

// RFC 9562 Appendix A.6: the example UUIDv7, made at 2022-02-22T19:22:22Z.
constexpr std::string_view rfc_v7_example = "017F22E2-79B0-7CC3-98C4-DC0C0C07398F";
constexpr std::int64_t rfc_v7_example_ms = 1'645'557'742'000;  // 0x017F22E279B0

// A clock whose time points are whole milliseconds of Unix time, as a user might write one.
struct millisecond_clock {
    using time_point = ms_time;
    time_point t{};
    [[nodiscard]] time_point now() const { return t; }
};

// A random source that returns a fixed script of values, then zeros.
struct scripted_random {
    using result_type = std::uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return ~result_type{0}; }
    std::vector<result_type> script;
    std::size_t next = 0;
    result_type operator()() { return next < script.size() ? script[next++] : 0; }
};

// Every bit set: every counter seed is the largest, so every second id overflows.
struct all_ones_random {
    using result_type = std::uint32_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return ~result_type{0}; }
    result_type operator()() { return max(); }
};

// Throws while armed, to show a failed draw changes nothing.
struct failing_random {
    using result_type = std::uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return ~result_type{0}; }
    std::mt19937_64 engine{7};
    bool armed = false;
    result_type operator()() {
        if (armed) {
            throw std::runtime_error("no entropy");
        }
        return engine();
    }
};

unsigned byte_at(const settle::uuid& id, std::size_t i) {
    return std::to_integer<unsigned>(id.bytes()[i]);
}

// The layout bits read straight from the bytes, independent of the accessors.
void check_v7_layout(const settle::uuid& id) {
    INFO(id.to_string());
    CHECK((byte_at(id, 6) >> 4) == 0b0111);
    CHECK((byte_at(id, 8) >> 6) == 0b10);
    CHECK(id.version() == 7);
    CHECK(id.variant() == settle::uuid_variant::rfc9562);
    CHECK(id.timestamp().has_value());
}

std::uint64_t unix_ms_bytes(const settle::uuid& id) {
    std::uint64_t ms = 0;
    for (std::size_t i = 0; i < 6; ++i) {
        ms = (ms << 8) | byte_at(id, i);
    }
    return ms;
}

// The 42-bit counter: rand_a (12 bits) and the top 30 bits of rand_b.
std::uint64_t counter_of(const settle::uuid& id) {
    std::uint64_t counter = byte_at(id, 6) & 0x0FU;
    counter = (counter << 8) | byte_at(id, 7);
    counter = (counter << 6) | (byte_at(id, 8) & 0x3FU);
    for (std::size_t i = 9; i < 12; ++i) {
        counter = (counter << 8) | byte_at(id, i);
    }
    return counter;
}

settle::uuid from_bytes(const std::array<unsigned char, 16>& raw) {
    std::array<std::byte, 16> bytes{};
    for (std::size_t i = 0; i < raw.size(); ++i) {
        bytes[i] = std::byte{raw[i]};
    }
    return settle::uuid(bytes);
}

settle::uuid random_uuid(std::mt19937_64& engine) {
    std::array<std::byte, 16> bytes{};
    for (auto& b : bytes) {
        b = static_cast<std::byte>(engine() & 0xFFU);
    }
    return settle::uuid(bytes);
}

std::string upper(std::string text) {
    for (char& c : text) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return text;
}

}  // namespace

static_assert(settle::wall_clock<std::chrono::system_clock>);
static_assert(settle::wall_clock<settle::manual_clock>);
static_assert(settle::wall_clock<millisecond_clock>);
static_assert(!settle::wall_clock<std::chrono::steady_clock>);

TEST_CASE("uuid is sixteen trivially copyable bytes and nil by default", "[core]") {
    STATIC_REQUIRE(sizeof(settle::uuid) == 16);
    STATIC_REQUIRE(std::is_trivially_copyable_v<settle::uuid>);
    STATIC_REQUIRE(std::is_nothrow_default_constructible_v<settle::uuid>);
    constexpr settle::uuid nil;
    STATIC_REQUIRE(nil == settle::uuid(std::array<std::byte, 16>{}));
    CHECK(nil.to_string() == "00000000-0000-0000-0000-000000000000");
    CHECK(nil.variant() == settle::uuid_variant::ncs);
    CHECK(nil.version() == 0);
    CHECK_FALSE(nil.timestamp().has_value());
}

TEST_CASE("uuid bytes are kept in the order given", "[core]") {
    const auto id = from_bytes({0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba,
                                0x98, 0x76, 0x54, 0x32, 0x10});
    CHECK(id.to_string() == "01234567-89ab-cdef-fedc-ba9876543210");
    CHECK(byte_at(id, 0) == 0x01);
    CHECK(byte_at(id, 15) == 0x10);
}

TEST_CASE("version and variant read the RFC 9562 fields", "[core]") {
    // RFC 9562 Appendix A.3: the example UUIDv4.
    const auto v4 = settle::uuid::parse("919108f7-52d1-4320-9bac-f847db4148a8").value();
    CHECK(v4.version() == 4);
    CHECK(v4.variant() == settle::uuid_variant::rfc9562);
    CHECK_FALSE(v4.timestamp().has_value());

    const auto max = settle::uuid::parse("ffffffff-ffff-ffff-ffff-ffffffffffff").value();
    CHECK(max.version() == 15);
    CHECK(max.variant() == settle::uuid_variant::future);

    struct variant_case {
        unsigned byte8;
        settle::uuid_variant variant;
    };
    const auto c = GENERATE(variant_case{0x00, settle::uuid_variant::ncs},
                            variant_case{0x7f, settle::uuid_variant::ncs},
                            variant_case{0x80, settle::uuid_variant::rfc9562},
                            variant_case{0xbf, settle::uuid_variant::rfc9562},
                            variant_case{0xc0, settle::uuid_variant::microsoft},
                            variant_case{0xdf, settle::uuid_variant::microsoft},
                            variant_case{0xe0, settle::uuid_variant::future},
                            variant_case{0xff, settle::uuid_variant::future});
    CAPTURE(c.byte8);
    std::array<std::byte, 16> bytes{};
    bytes[6] = std::byte{0x70};
    bytes[8] = static_cast<std::byte>(c.byte8);
    const settle::uuid id(bytes);
    CHECK(id.variant() == c.variant);
    CHECK(id.version() == 7);
    // Version 7 bits in another variant are not a UUIDv7: no timestamp.
    CHECK(id.timestamp().has_value() == (c.variant == settle::uuid_variant::rfc9562));
}

TEST_CASE("uuid_variant names are stable", "[core]") {
    STATIC_REQUIRE(settle::to_string(settle::uuid_variant::ncs) == "ncs");
    STATIC_REQUIRE(settle::to_string(settle::uuid_variant::rfc9562) == "rfc9562");
    STATIC_REQUIRE(settle::to_string(settle::uuid_variant::microsoft) == "microsoft");
    STATIC_REQUIRE(settle::to_string(settle::uuid_variant::future) == "future");
}

TEST_CASE("the RFC 9562 example UUIDv7 parses and reports its timestamp", "[core]") {
    constexpr auto parsed = settle::uuid::parse(rfc_v7_example);
    STATIC_REQUIRE(parsed.has_value());
    STATIC_REQUIRE(parsed->version() == 7);
    STATIC_REQUIRE(parsed->timestamp() == at_ms(rfc_v7_example_ms));
    CHECK(parsed->variant() == settle::uuid_variant::rfc9562);
    CHECK(parsed->to_string() == "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
    CHECK(byte_at(*parsed, 0) == 0x01);
    CHECK(byte_at(*parsed, 5) == 0xb0);
    CHECK(byte_at(*parsed, 15) == 0x8f);
}

TEST_CASE("generated ids carry version 7 and the RFC 9562 variant", "[core]") {
    settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
    SECTION("from a 64-bit engine") {
        std::mt19937_64 random(1);
        settle::uuid_v7_generator next(clock, random);
        for (int i = 0; i < 2000; ++i) {
            check_v7_layout(next());
            clock.advance(std::chrono::microseconds(i % 3 * 700));
        }
    }
    SECTION("from a 32-bit engine") {
        std::mt19937 random(2);
        settle::uuid_v7_generator next(clock, random);
        for (int i = 0; i < 2000; ++i) {
            check_v7_layout(next());
            clock.advance(std::chrono::microseconds(i % 3 * 700));
        }
    }
    SECTION("from an engine whose range is not a power of two") {
        std::minstd_rand random(3);
        settle::uuid_v7_generator next(clock, random);
        for (int i = 0; i < 2000; ++i) {
            check_v7_layout(next());
            clock.advance(std::chrono::microseconds(i % 3 * 700));
        }
    }
    SECTION("from std::random_device") {
        std::random_device random;
        settle::uuid_v7_generator next(clock, random);
        for (int i = 0; i < 100; ++i) {
            check_v7_layout(next());
        }
    }
}

TEST_CASE("the timestamp is the clock in big-endian Unix milliseconds", "[core]") {
    struct time_case {
        std::chrono::nanoseconds since_epoch;
        std::array<unsigned, 6> bytes;
    };
    const auto c = GENERATE(time_case{0ns, {0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
                            time_case{999'999ns, {0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
                            time_case{1ms, {0x00, 0x00, 0x00, 0x00, 0x00, 0x01}},
                            time_case{256ms, {0x00, 0x00, 0x00, 0x00, 0x01, 0x00}},
                            time_case{std::chrono::milliseconds(rfc_v7_example_ms),
                                      {0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0}},
                            time_case{std::chrono::milliseconds(rfc_v7_example_ms) + 999'999ns,
                                      {0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0}},
                            time_case{std::chrono::milliseconds(0x0123'4567'89ab),
                                      {0x01, 0x23, 0x45, 0x67, 0x89, 0xab}});
    CAPTURE(c.since_epoch.count());
    settle::manual_clock clock(settle::manual_clock::time_point(c.since_epoch));
    std::mt19937_64 random(4);
    settle::uuid_v7_generator next(clock, random);
    const auto id = next();
    for (std::size_t i = 0; i < 6; ++i) {
        CAPTURE(i);
        CHECK(byte_at(id, i) == c.bytes[i]);
    }
    const auto ms = std::chrono::floor<std::chrono::milliseconds>(clock.now());
    CHECK(unix_ms_bytes(id) == static_cast<std::uint64_t>(ms.time_since_epoch().count()));
    CHECK(id.timestamp() == ms);
    check_v7_layout(id);
}

TEST_CASE("every field of a generated id lands where the layout says", "[core]") {
    settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
    // First id of a millisecond: one draw seeds the 42-bit counter with its low 42 bits
    // (0x123456789ab), one fills the last 32 bits with its low 32 (0xcafef00d); the next id in
    // the millisecond counts on and draws once more.
    scripted_random random{{0xffff'f123'4567'89abULL, 0xdead'beef'cafe'f00dULL, 0x0123'4567ULL}};
    settle::uuid_v7_generator next(clock, random);
    const auto first = next();
    CHECK(first.to_string() == "017f22e2-79b0-748d-8567-89abcafef00d");
    CHECK(counter_of(first) == 0x123'4567'89abULL);
    const auto second = next();
    CHECK(second.to_string() == "017f22e2-79b0-748d-8567-89ac01234567");
    CHECK(random.next == 3);
}

TEST_CASE("100k ids in one millisecond strictly increase", "[core]") {
    settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
    std::mt19937_64 random(5);
    settle::uuid_v7_generator next(clock, random);
    auto previous = next();
    for (int i = 1; i < 100'000; ++i) {
        const auto id = next();
        if (!(previous < id) || counter_of(id) != counter_of(previous) + 1 ||
            id.timestamp() != at_ms(rfc_v7_example_ms)) {
            CAPTURE(i, previous.to_string(), id.to_string());
            FAIL("ids in one millisecond must count up in the same millisecond");
        }
        if (i % 4096 == 0) {
            check_v7_layout(id);
        }
        previous = id;
    }
}

TEST_CASE("counter overflow moves the timestamp one millisecond ahead", "[core]") {
    const auto start = at_ms(rfc_v7_example_ms);
    settle::manual_clock clock{settle::manual_clock::time_point(start)};

    SECTION("a seed three below the top overflows on the fourth id") {
        const std::uint64_t top = (std::uint64_t{1} << 42) - 1;
        scripted_random random{{top - 2, 0x11, 0x22, 0x33, 5, 0x44}};
        settle::uuid_v7_generator next(clock, random);
        const auto a = next();
        const auto b = next();
        const auto c = next();
        const auto d = next();
        CHECK(counter_of(a) == top - 2);
        CHECK(counter_of(b) == top - 1);
        CHECK(counter_of(c) == top);
        CHECK(c.timestamp() == start);
        CHECK(d.timestamp() == start + 1ms);
        CHECK(counter_of(d) == 5);  // reseeded
        CHECK(a < b);
        CHECK(b < c);
        CHECK(c < d);
        // The clock catching up to the millisecond in use continues its count.
        clock.advance(1ms);
        const auto e = next();
        CHECK(e.timestamp() == start + 1ms);
        CHECK(counter_of(e) == 6);
        check_v7_layout(e);
    }

    SECTION("100k ids that all overflow still strictly increase") {
        all_ones_random random;
        settle::uuid_v7_generator next(clock, random);
        auto previous = next();
        for (int i = 1; i < 100'000; ++i) {
            const auto id = next();
            if (!(previous < id) || id.timestamp() != start + std::chrono::milliseconds(i)) {
                CAPTURE(i, previous.to_string(), id.to_string());
                FAIL("an overflowing counter must move the timestamp ahead by one millisecond");
            }
            previous = id;
        }
        check_v7_layout(previous);
    }
}

TEST_CASE("a clock that goes backwards never makes ids decrease", "[core]") {
    const auto start = at_ms(rfc_v7_example_ms);
    settle::manual_clock clock{settle::manual_clock::time_point(start)};
    std::mt19937_64 random(6);
    settle::uuid_v7_generator next(clock, random);
    auto previous = next();

    clock.set(settle::manual_clock::time_point(start - 1h));
    for (int i = 0; i < 1000; ++i) {
        const auto id = next();
        if (!(previous < id) || id.timestamp() != start) {
            CAPTURE(i, previous.to_string(), id.to_string());
            FAIL("the generator must stay on its newest millisecond and count on");
        }
        previous = id;
    }
    clock.set(settle::manual_clock::time_point(start - 1ms));
    const auto still = next();
    CHECK(previous < still);
    CHECK(still.timestamp() == start);

    // Once the clock passes the millisecond in use, ids follow the clock again.
    clock.set(settle::manual_clock::time_point(start + 2ms));
    const auto after = next();
    CHECK(still < after);
    CHECK(after.timestamp() == start + 2ms);

    // A counter that overflows while the clock is behind moves ahead of the newest millisecond.
    all_ones_random ones;
    settle::uuid_v7_generator overflowing(clock, ones);
    const auto a = overflowing();
    clock.set(settle::manual_clock::time_point(start - 1h));
    const auto b = overflowing();
    const auto c = overflowing();
    CHECK(a.timestamp() == start + 2ms);
    CHECK(a < b);
    CHECK(b < c);
    CHECK(b.timestamp() == start + 3ms);
    CHECK(c.timestamp() == start + 4ms);
}

TEST_CASE("ids sort in creation order", "[core]") {
    settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
    std::mt19937_64 random(8);
    std::mt19937_64 steps(9);
    settle::uuid_v7_generator next(clock, random);
    std::vector<settle::uuid> created;
    for (int i = 0; i < 20'000; ++i) {
        created.push_back(next());
        // Mostly tiny steps, some whole milliseconds, now and then a step back.
        const auto step = static_cast<std::int64_t>(steps() % 3000) - 500;
        clock.advance(std::chrono::microseconds(step));
    }
    auto sorted = created;
    std::shuffle(sorted.begin(), sorted.end(), steps);
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == created);

    // The canonical text sorts the same way as the bytes.
    std::vector<std::string> texts;
    for (const auto& id : created) {
        texts.push_back(id.to_string());
    }
    CHECK(std::is_sorted(texts.begin(), texts.end()));
    CHECK(std::adjacent_find(texts.begin(), texts.end()) == texts.end());
}

TEST_CASE("times before 1970 or beyond 48 bits of milliseconds are refused", "[core]") {
    const auto check_refused = [](auto& next, std::string_view why) {
        try {
            (void)next();
            FAIL("the generator accepted a time a UUIDv7 cannot hold");
        } catch (const settle::error& e) {
            CHECK(e.code() == settle::errc::invalid_argument);
            CHECK(std::string_view(e.what()).find(why) != std::string_view::npos);
        }
    };
    constexpr std::string_view before_1970 = "uuid: the clock reads before 1970-01-01T00:00:00Z";
    constexpr std::string_view beyond_48_bits =
        "uuid: the clock reads after 10889-08-02T05:31:50.655Z";

    SECTION("before 1970") {
        settle::manual_clock clock(settle::manual_clock::time_point(-1ns));
        std::mt19937_64 random(10);
        settle::uuid_v7_generator next(clock, random);
        check_refused(next, before_1970);
        clock.set(settle::manual_clock::time_point(-24h * 365));
        check_refused(next, before_1970);
        clock.set(settle::manual_clock::time_point(0ns));
        CHECK(next().timestamp() == at_ms(0));
    }

    SECTION("beyond 48 bits") {
        millisecond_clock clock{at_ms(std::int64_t{1} << 48)};
        std::mt19937_64 random(11);
        settle::uuid_v7_generator next(clock, random);
        check_refused(next, beyond_48_bits);
        clock.t = at_ms((std::int64_t{1} << 48) - 1);  // the last millisecond a UUIDv7 holds
        const auto last = next();
        for (std::size_t i = 0; i < 6; ++i) {
            CHECK(byte_at(last, i) == 0xff);
        }
        CHECK(last.timestamp() == clock.t);
        check_v7_layout(last);
    }

    SECTION("a counter overflow in the last millisecond") {
        millisecond_clock clock{at_ms((std::int64_t{1} << 48) - 1)};
        all_ones_random random;
        settle::uuid_v7_generator next(clock, random);
        CHECK(next().timestamp() == clock.t);
        check_refused(next, "uuid: the counter overflowed in the last millisecond");
    }

    SECTION("a refused reading leaves the generator as it was") {
        settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
        std::mt19937_64 random(12);
        settle::uuid_v7_generator next(clock, random);
        const auto before = next();
        clock.set(settle::manual_clock::time_point(-1ms));
        check_refused(next, before_1970);
        clock.set(settle::manual_clock::time_point(at_ms(1)));  // behind, but valid
        const auto after = next();
        CHECK(before < after);
        CHECK(counter_of(after) == counter_of(before) + 1);
    }
}

TEST_CASE("a throwing random source leaves the generator as it was", "[core]") {
    settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
    failing_random random;
    settle::uuid_v7_generator next(clock, random);
    const auto before = next();
    random.armed = true;
    CHECK_THROWS_AS(next(), std::runtime_error);
    clock.advance(1ms);
    CHECK_THROWS_AS(next(), std::runtime_error);
    clock.advance(-1ms);
    random.armed = false;
    const auto after = next();
    CHECK(before < after);
    CHECK(counter_of(after) == counter_of(before) + 1);
}

TEST_CASE("the generator borrows its clock and random source", "[core]") {
    using generator = settle::uuid_v7_generator<settle::manual_clock, std::mt19937_64>;
    STATIC_REQUIRE(std::is_constructible_v<generator, settle::manual_clock&, std::mt19937_64&>);
    STATIC_REQUIRE(!std::is_constructible_v<generator, settle::manual_clock&&, std::mt19937_64&>);
    STATIC_REQUIRE(!std::is_constructible_v<generator, settle::manual_clock&, std::mt19937_64&&>);
    STATIC_REQUIRE(!std::is_copy_constructible_v<generator>);
    STATIC_REQUIRE(!std::is_copy_assignable_v<generator>);
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<generator>);

    // Class template argument deduction, with the real wall clock.
    std::chrono::system_clock clock;
    std::mt19937_64 random(13);
    settle::uuid_v7_generator next(clock, random);
    STATIC_REQUIRE(
        std::is_same_v<decltype(next),
                       settle::uuid_v7_generator<std::chrono::system_clock, std::mt19937_64>>);
    const auto before = std::chrono::floor<std::chrono::milliseconds>(clock.now());
    const auto id = next();
    const auto after = std::chrono::floor<std::chrono::milliseconds>(clock.now());
    check_v7_layout(id);
    REQUIRE(id.timestamp().has_value());
    CHECK(before <= *id.timestamp());
    CHECK(*id.timestamp() <= after);
}

TEST_CASE("parse accepts upper and lower case hex", "[core]") {
    const std::string lower = "01234567-89ab-cdef-fedc-ba9876543210";
    const auto expected = from_bytes({0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc,
                                      0xba, 0x98, 0x76, 0x54, 0x32, 0x10});
    const auto text =
        GENERATE(as<std::string>{}, "01234567-89ab-cdef-fedc-ba9876543210",
                 "01234567-89AB-CDEF-FEDC-BA9876543210", "01234567-89aB-CdEf-FeDc-bA9876543210");
    CAPTURE(text);
    const auto parsed = settle::uuid::parse(text);
    REQUIRE(parsed);
    CHECK(*parsed == expected);
    CHECK(parsed->to_string() == lower);
}

TEST_CASE("parse refuses malformed text with the position and the reason", "[core]") {
    struct bad_case {
        std::string_view text;
        std::size_t position;
        std::string_view reason;
    };
    constexpr std::string_view hex = "expected a hex digit";
    constexpr std::string_view hyphen = "expected '-'";
    constexpr std::string_view short_ = "too short: expected 36 characters";
    constexpr std::string_view long_ = "too long: expected 36 characters";
    constexpr std::string_view braces = "braces are not accepted: expected 8-4-4-4-12 hex digits";
    constexpr std::string_view urn =
        "the urn:uuid: prefix is not accepted: expected 8-4-4-4-12 hex digits";
    using namespace std::string_view_literals;
    const bad_case cases[] = {
        bad_case{"", 0, short_},
        bad_case{"0", 1, short_},
        bad_case{"017f22e2-79b0-7cc3-98c4-dc0c0c07398", 35, short_},
        bad_case{"017f22e2-79b0-7cc3-98c4-", 24, short_},
        bad_case{"017f22e2-79b0-7cc3-98c4-dc0c0c07398f0", 36, long_},
        bad_case{"017f22e2-79b0-7cc3-98c4-dc0c0c07398f\n", 36, long_},
        bad_case{"017f22e2-79b0-7cc3-98c4-dc0c0c07398f-", 36, long_},
        bad_case{"{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}", 0, braces},
        bad_case{"{", 0, braces},
        bad_case{"urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f", 0, urn},
        bad_case{"URN:UUID:017f22e2-79b0-7cc3-98c4-dc0c0c07398f", 0, urn},
        bad_case{"017f22e279b07cc398c4dc0c0c07398f", 8, hyphen},
        bad_case{"017f22e2-79b07cc3-98c4-dc0c0c07398f", 13, hyphen},
        bad_case{"017f22e2-79b0-7cc398c4-dc0c0c07398f", 18, hyphen},
        bad_case{"017f22e2-79b0-7cc3-98c4dc0c0c07398f", 23, hyphen},
        bad_case{"017f22e2_79b0-7cc3-98c4-dc0c0c07398f", 8, hyphen},
        bad_case{"017f22e-279b0-7cc3-98c4-dc0c0c07398f", 7, hex},
        bad_case{"017f22e2-79b-07cc3-98c4-dc0c0c07398f", 12, hex},
        bad_case{"017f22e2--79b0-7cc3-98c4-dc0c0c0739", 9, hex},
        bad_case{" 017f22e2-79b0-7cc3-98c4-dc0c0c07398f", 0, hex},
        bad_case{"g17f22e2-79b0-7cc3-98c4-dc0c0c07398f", 0, hex},
        bad_case{"017f22e2-79b0-7cc3-98c4-dc0c0c07398g", 35, hex},
        bad_case{"017f22e2-79b0-7Gc3-98c4-dc0c0c07398f", 15, hex},
        bad_case{"017f22e2-79b0-7cc3-98c4-dc0c0c0739\xff"
                 "f",
                 34, hex},
        bad_case{"017f22e2-79b0-7cc3-98c4-dc0c\0c07398f"sv, 28, hex},
        bad_case{"0x7f22e2-79b0-7cc3-98c4-dc0c0c07398f", 1, hex},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        const auto parsed = settle::uuid::parse(c.text);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().subject == "uuid");
        CHECK(parsed.error().position == c.position);
        CHECK(parsed.error().reason == c.reason);
    }
}

TEST_CASE("a parse failure message names the position and the reason", "[core]") {
    const auto parsed = settle::uuid::parse("017f22e279b07cc398c4dc0c0c07398f");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message() == "uuid: position 8: expected '-'");
    CHECK_THROWS_AS((void)parsed.value(), settle::error);
}

TEST_CASE("parse reads nothing past the end of its input", "[core]") {
    // Each prefix lives in a heap block of exactly its length, so AddressSanitizer
    // reports any read past the end.
    const std::string_view valid = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
    for (std::size_t n = 0; n <= valid.size(); ++n) {
        CAPTURE(n);
        const auto block = std::make_unique<char[]>(n == 0 ? 1 : n);
        std::memcpy(block.get(), valid.data(), n);
        const auto parsed = settle::uuid::parse(std::string_view(block.get(), n));
        if (n == valid.size()) {
            CHECK(parsed.has_value());
        } else {
            REQUIRE_FALSE(parsed);
            CHECK(parsed.error().position == n);
        }
    }
}

TEST_CASE("text and uuid round trip", "[core]") {
    std::mt19937_64 engine(14);
    for (int i = 0; i < 10'000; ++i) {
        const auto id = random_uuid(engine);
        const auto text = id.to_string();
        REQUIRE(text.size() == settle::uuid::text_size);
        char buffer[settle::uuid::text_size];
        const std::string_view written = id.write(buffer);
        CHECK(written.data() == buffer);
        CHECK(written == text);
        const auto lower = settle::uuid::parse(text);
        const auto upper_case = settle::uuid::parse(upper(text));
        if (!lower || !upper_case || *lower != id || *upper_case != id) {
            CAPTURE(text);
            FAIL("a formatted uuid must parse back to itself in either case");
        }
    }
}

TEST_CASE("the stream operator writes the canonical text", "[core]") {
    std::ostringstream out;
    out << settle::uuid::parse(rfc_v7_example).value();
    CHECK(out.str() == "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
}

TEST_CASE("std::hash agrees with equality and spreads single-bit differences", "[core]") {
    const std::hash<settle::uuid> hash;
    const auto base = settle::uuid::parse(rfc_v7_example).value();
    CHECK(hash(base) == hash(settle::uuid::parse(upper(base.to_string())).value()));

    std::unordered_set<std::size_t> hashes{hash(base)};
    for (std::size_t bit = 0; bit < 128; ++bit) {
        auto bytes = base.bytes();
        bytes[bit / 8] ^= static_cast<std::byte>(1U << (bit % 8));
        hashes.insert(hash(settle::uuid(bytes)));
    }
    CHECK(hashes.size() == 129);

    settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
    std::mt19937_64 random(15);
    settle::uuid_v7_generator next(clock, random);
    std::unordered_set<settle::uuid> ids;
    for (int i = 0; i < 10'000; ++i) {
        ids.insert(next());
    }
    CHECK(ids.size() == 10'000);
}

TEST_CASE("one generator per thread gives unique ids that increase within each thread",
          "[core][concurrency]") {
    settle::manual_clock clock(settle::manual_clock::time_point(at_ms(rfc_v7_example_ms)));
    constexpr int per_thread = 20'000;
    std::vector<settle::uuid> first;
    std::vector<settle::uuid> second;
    const auto make = [&clock](std::vector<settle::uuid>& out, std::uint64_t seed, bool ticks) {
        std::mt19937_64 random(seed);
        settle::uuid_v7_generator next(clock, random);
        out.reserve(per_thread);
        for (int i = 0; i < per_thread; ++i) {
            out.push_back(next());
            if (ticks && i % 100 == 0) {
                clock.advance(1ms);
            }
        }
    };
    std::thread other([&] { make(second, 17, false); });
    make(first, 16, true);
    other.join();

    CHECK(std::is_sorted(first.begin(), first.end()));
    CHECK(std::adjacent_find(first.begin(), first.end()) == first.end());
    CHECK(std::is_sorted(second.begin(), second.end()));
    CHECK(std::adjacent_find(second.begin(), second.end()) == second.end());
    std::unordered_set<settle::uuid> all(first.begin(), first.end());
    all.insert(second.begin(), second.end());
    CHECK(all.size() == 2 * per_thread);
}
