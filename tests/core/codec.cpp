#include <settle/codec.hpp>

#include "settle_test.hpp"

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

settle::bytes make_bytes(std::initializer_list<unsigned> values) {
    settle::bytes out;
    for (const unsigned v : values) {
        out.push_back(static_cast<std::byte>(v));
    }
    return out;
}

// A copy of `in` in a heap block of exactly its size, so that AddressSanitizer
// reports a decoder that reads one byte too far.
struct exact_buffer {
    explicit exact_buffer(const settle::bytes& in)
        : size(in.size()), data(std::make_unique<std::byte[]>(in.size())) {
        for (std::size_t i = 0; i < size; ++i) {
            data[i] = in[i];
        }
    }
    [[nodiscard]] std::span<const std::byte> span() const { return {data.get(), size}; }

    std::size_t size;
    std::unique_ptr<std::byte[]> data;
};

// The message of the settle::error that decoding `in` as T throws, after
// checking that it is one, with errc::decode_failed.
template <class T>
std::string refusal(const settle::bytes& in) {
    const exact_buffer buffer(in);
    try {
        (void)settle::decode<T>(buffer.span());
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::decode_failed);
        return e.what();
    }
    FAIL("decode accepted bytes it should refuse");
    return {};
}

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.rfind(prefix, 0) == 0;
}

template <class T>
void check_round_trip(T value) {
    const settle::bytes encoded = settle::encode(value);
    CHECK(encoded.size() == sizeof(T));
    const exact_buffer buffer(encoded);
    CHECK(settle::decode<T>(buffer.span()) == value);
}

template <class T>
void check_integer_round_trips(std::mt19937_64& random) {
    using limits = std::numeric_limits<T>;
    for (const T value : {limits::min(), limits::max(), T{0}, T{1},
                          static_cast<T>(limits::max() - 1), static_cast<T>(limits::min() + 1)}) {
        check_round_trip(value);
    }
    using wide = std::conditional_t<std::is_signed_v<T>, long long, unsigned long long>;
    std::uniform_int_distribution<wide> any(limits::min(), limits::max());
    for (int i = 0; i < 1000; ++i) {
        const T value = static_cast<T>(any(random));
        CAPTURE(+value);
        check_round_trip(value);
    }
}

// Bit-exact: the decoded value has the same bit pattern, so NaN payloads and
// the sign of zero are checked too.
template <class F, class Bits>
void check_float_bits(Bits bits) {
    const F value = std::bit_cast<F>(bits);
    const settle::bytes encoded = settle::encode(value);
    REQUIRE(encoded.size() == sizeof(F));
    for (std::size_t i = 0; i < sizeof(F); ++i) {
        const auto expected = static_cast<unsigned>((bits >> (8 * (sizeof(F) - 1 - i))) & 0xffu);
        CHECK(std::to_integer<unsigned>(encoded[i]) == expected);
    }
    const exact_buffer buffer(encoded);
    CHECK(std::bit_cast<Bits>(settle::decode<F>(buffer.span())) == bits);
}

enum class color : std::uint16_t { red = 0x0102, green = 0xfffe };
enum class delta : std::int8_t { down = -1, up = 1 };
enum plain_sized : std::uint32_t { plain_one = 1 };
enum plain_unsized { unsized_a, unsized_b };  // no fixed underlying type: no codec

struct no_codec {};
enum class over_bool : bool { no, yes };
struct encode_only {};
struct wrong_decode {};

// The example of the guide: a small struct, its fields one after the other.
enum class currency : std::uint16_t { eur = 978, usd = 840 };

struct money {
    std::int64_t cents;
    currency unit;
    friend bool operator==(const money&, const money&) = default;
};

template <class T>
concept can_encode = requires(const T& value) {
    settle::encode(value);
};

template <class T>
concept can_decode = requires(std::span<const std::byte> in) {
    settle::decode<T>(in);
};

// A codec that accepts only the enumerators it knows.
enum class phase : std::uint8_t { pending, done };

}  // namespace

template <>
struct settle::codec<encode_only> {
    static settle::bytes encode(const encode_only&) { return {}; }
};

template <>
struct settle::codec<wrong_decode> {
    static settle::bytes encode(const wrong_decode&) { return {}; }
    static wrong_decode decode(const settle::bytes&) { return {}; }  // must take a span
};

template <>
struct settle::codec<money> {
    static settle::bytes encode(const money& m) {
        settle::bytes out = settle::encode(m.cents);        // 8 bytes, big-endian
        const settle::bytes unit = settle::encode(m.unit);  // 2 bytes, as its std::uint16_t
        out.insert(out.end(), unit.begin(), unit.end());
        return out;
    }
    static money decode(std::span<const std::byte> in) {
        if (in.size() != 10) {
            throw settle::error(settle::errc::decode_failed,
                                "money: expected 10 bytes, got " + std::to_string(in.size()));
        }
        return {settle::decode<std::int64_t>(in.first(8)), settle::decode<currency>(in.subspan(8))};
    }
};

template <>
struct settle::codec<phase> {
    static settle::bytes encode(phase p) { return settle::encode(static_cast<std::uint8_t>(p)); }
    static phase decode(std::span<const std::byte> in) {
        const auto value = settle::decode<std::uint8_t>(in);
        if (value > static_cast<std::uint8_t>(phase::done)) {
            throw settle::error(settle::errc::decode_failed,
                                "phase: no phase " + std::to_string(value));
        }
        return static_cast<phase>(value);
    }
};

TEST_CASE("codable holds for every built in type", "[core]") {
    STATIC_REQUIRE(settle::codable<std::string>);
    STATIC_REQUIRE(settle::codable<settle::bytes>);
    STATIC_REQUIRE(settle::codable<bool>);
    STATIC_REQUIRE(settle::codable<char>);
    STATIC_REQUIRE(settle::codable<signed char>);
    STATIC_REQUIRE(settle::codable<unsigned char>);
    STATIC_REQUIRE(settle::codable<char8_t>);
    STATIC_REQUIRE(settle::codable<char16_t>);
    STATIC_REQUIRE(settle::codable<char32_t>);
    STATIC_REQUIRE(settle::codable<wchar_t>);
    STATIC_REQUIRE(settle::codable<short>);
    STATIC_REQUIRE(settle::codable<unsigned short>);
    STATIC_REQUIRE(settle::codable<int>);
    STATIC_REQUIRE(settle::codable<unsigned>);
    STATIC_REQUIRE(settle::codable<long>);
    STATIC_REQUIRE(settle::codable<unsigned long>);
    STATIC_REQUIRE(settle::codable<long long>);
    STATIC_REQUIRE(settle::codable<unsigned long long>);
    STATIC_REQUIRE(settle::codable<std::int8_t>);
    STATIC_REQUIRE(settle::codable<std::uint64_t>);
    STATIC_REQUIRE(settle::codable<float>);
    STATIC_REQUIRE(settle::codable<double>);
    STATIC_REQUIRE(settle::codable<color>);
    STATIC_REQUIRE(settle::codable<delta>);
    STATIC_REQUIRE(settle::codable<plain_sized>);
    STATIC_REQUIRE(settle::codable<std::byte>);
}

TEST_CASE("codable is false for a type without a complete codec", "[core]") {
    STATIC_REQUIRE(!settle::codable<no_codec>);
    STATIC_REQUIRE(!settle::codable<encode_only>);
    STATIC_REQUIRE(!settle::codable<wrong_decode>);
    STATIC_REQUIRE(!settle::codable<plain_unsized>);
    STATIC_REQUIRE(!settle::codable<over_bool>);
    STATIC_REQUIRE(!settle::codable<long double>);
    STATIC_REQUIRE(!settle::codable<const char*>);
    STATIC_REQUIRE(!settle::codable<char[4]>);
    STATIC_REQUIRE(!settle::codable<std::vector<int>>);
    STATIC_REQUIRE(!settle::codable<const int>);
    STATIC_REQUIRE(!settle::codable<const color>);
    STATIC_REQUIRE(!settle::codable<const float>);
    STATIC_REQUIRE(!settle::codable<int&>);
    // The free functions are constrained, so asking for them is not a hard error.
    STATIC_REQUIRE(!can_encode<no_codec>);
    STATIC_REQUIRE(!can_decode<no_codec>);
    STATIC_REQUIRE(!can_decode<encode_only>);
    STATIC_REQUIRE(can_encode<money>);
    STATIC_REQUIRE(can_decode<money>);
}

TEST_CASE("integers encode in network byte order", "[core]") {
    CHECK(settle::encode(std::uint32_t{0x01020304}) == make_bytes({0x01, 0x02, 0x03, 0x04}));
    CHECK(settle::encode(std::int16_t{-1}) == make_bytes({0xff, 0xff}));
    CHECK(settle::encode(std::int32_t{-2}) == make_bytes({0xff, 0xff, 0xff, 0xfe}));
    CHECK(settle::encode(std::int8_t{-128}) == make_bytes({0x80}));
    CHECK(settle::encode(std::uint8_t{0xab}) == make_bytes({0xab}));
    CHECK(settle::encode(std::uint16_t{0x0102}) == make_bytes({0x01, 0x02}));
    CHECK(settle::encode(std::uint64_t{0x0102030405060708}) ==
          make_bytes({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}));
    CHECK(settle::encode(std::numeric_limits<std::int64_t>::min()) ==
          make_bytes({0x80, 0, 0, 0, 0, 0, 0, 0}));
    CHECK(settle::encode(std::numeric_limits<std::int64_t>::max()) ==
          make_bytes({0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
    CHECK(settle::encode(std::int32_t{0}) == make_bytes({0, 0, 0, 0}));
    CHECK(settle::encode(char32_t{0x1f600}) == make_bytes({0x00, 0x01, 0xf6, 0x00}));
    CHECK(settle::encode('A') == make_bytes({0x41}));

    CHECK(settle::decode<std::uint32_t>(make_bytes({0x01, 0x02, 0x03, 0x04})) == 0x01020304u);
    CHECK(settle::decode<std::int16_t>(make_bytes({0xff, 0xff})) == -1);
    CHECK(settle::decode<std::int16_t>(make_bytes({0x80, 0x00})) == -32768);
    CHECK(settle::decode<std::int64_t>(
              make_bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})) == -2);
}

TEST_CASE("bool encodes as one byte zero or one", "[core]") {
    CHECK(settle::encode(false) == make_bytes({0x00}));
    CHECK(settle::encode(true) == make_bytes({0x01}));
    CHECK(settle::decode<bool>(make_bytes({0x00})) == false);
    CHECK(settle::decode<bool>(make_bytes({0x01})) == true);
}

TEST_CASE("floats encode their IEEE 754 bits big endian", "[core]") {
    CHECK(settle::encode(1.0) == make_bytes({0x3f, 0xf0, 0, 0, 0, 0, 0, 0}));
    CHECK(settle::encode(-2.5) == make_bytes({0xc0, 0x04, 0, 0, 0, 0, 0, 0}));
    CHECK(settle::encode(-0.0) == make_bytes({0x80, 0, 0, 0, 0, 0, 0, 0}));
    CHECK(settle::encode(std::numeric_limits<double>::infinity()) ==
          make_bytes({0x7f, 0xf0, 0, 0, 0, 0, 0, 0}));
    CHECK(settle::encode(1.0f) == make_bytes({0x3f, 0x80, 0x00, 0x00}));
    CHECK(settle::encode(-2.5f) == make_bytes({0xc0, 0x20, 0x00, 0x00}));
    CHECK(settle::encode(-std::numeric_limits<float>::infinity()) ==
          make_bytes({0xff, 0x80, 0x00, 0x00}));

    CHECK(settle::decode<double>(make_bytes({0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18})) ==
          3.141592653589793);
    CHECK(settle::decode<float>(make_bytes({0x3f, 0x80, 0x00, 0x00})) == 1.0f);
    const double negative_zero = settle::decode<double>(make_bytes({0x80, 0, 0, 0, 0, 0, 0, 0}));
    CHECK(negative_zero == 0.0);
    CHECK(std::signbit(negative_zero));
}

TEST_CASE("enums encode as their underlying type", "[core]") {
    CHECK(settle::encode(color::red) == make_bytes({0x01, 0x02}));
    CHECK(settle::encode(color::green) == make_bytes({0xff, 0xfe}));
    CHECK(settle::encode(delta::down) == make_bytes({0xff}));
    CHECK(settle::encode(plain_one) == make_bytes({0, 0, 0, 1}));
    CHECK(settle::encode(std::byte{0x7f}) == make_bytes({0x7f}));

    CHECK(settle::decode<color>(make_bytes({0x01, 0x02})) == color::red);
    CHECK(settle::decode<delta>(make_bytes({0xff})) == delta::down);
    CHECK(settle::decode<plain_sized>(make_bytes({0, 0, 0, 1})) == plain_one);
    // A value the enum does not name is still a value of its type, and round-trips.
    const color unnamed = settle::decode<color>(make_bytes({0x12, 0x34}));
    CHECK(static_cast<std::uint16_t>(unnamed) == 0x1234);
    CHECK(settle::encode(unnamed) == make_bytes({0x12, 0x34}));
}

TEST_CASE("strings and bytes pass through unchanged", "[core]") {
    const std::string text("pay\0\xff\x80 once", 11);
    const settle::bytes encoded = settle::encode(text);
    REQUIRE(encoded.size() == text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        CHECK(std::to_integer<unsigned char>(encoded[i]) == static_cast<unsigned char>(text[i]));
    }
    CHECK(settle::decode<std::string>(encoded) == text);

    const settle::bytes raw = make_bytes({0x00, 0xff, 0x10, 0x00});
    CHECK(settle::encode(raw) == raw);
    CHECK(settle::decode<settle::bytes>(raw) == raw);

    CHECK(settle::encode(std::string()).empty());
    CHECK(settle::encode(settle::bytes()).empty());
    CHECK(settle::decode<std::string>(std::span<const std::byte>()).empty());
    CHECK(settle::decode<settle::bytes>(std::span<const std::byte>()).empty());
}

TEST_CASE("decoding reads from any position of a larger buffer", "[core]") {
    // Odd offsets: the decoder must not assume alignment.
    const settle::bytes buffer =
        make_bytes({0xee, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xee});
    const std::span<const std::byte> all(buffer);
    CHECK(settle::decode<std::uint64_t>(all.subspan(1, 8)) == 0x0102030405060708u);
    CHECK(settle::decode<std::uint32_t>(all.subspan(3, 4)) == 0x03040506u);
    CHECK(settle::decode<std::uint16_t>(all.subspan(5, 2)) == 0x0506u);
    CHECK(settle::decode<float>(all.subspan(1, 4)) == std::bit_cast<float>(0x01020304u));
    CHECK(settle::decode<std::string>(all.subspan(1, 2)) == std::string("\x01\x02"));
}

TEST_CASE("integers round trip over their whole range", "[core]") {
    std::mt19937_64 random(20240603);
    check_integer_round_trips<std::int8_t>(random);
    check_integer_round_trips<std::uint8_t>(random);
    check_integer_round_trips<std::int16_t>(random);
    check_integer_round_trips<std::uint16_t>(random);
    check_integer_round_trips<std::int32_t>(random);
    check_integer_round_trips<std::uint32_t>(random);
    check_integer_round_trips<std::int64_t>(random);
    check_integer_round_trips<std::uint64_t>(random);
    check_integer_round_trips<char>(random);
    check_integer_round_trips<char16_t>(random);
    check_integer_round_trips<char32_t>(random);
    check_integer_round_trips<wchar_t>(random);
    check_integer_round_trips<long>(random);
    check_round_trip(true);
    check_round_trip(false);
    check_round_trip(color::green);
    check_round_trip(static_cast<delta>(-128));
}

TEST_CASE("floats round trip bit for bit", "[core]") {
    SECTION("special values") {
        for (const float f :
             {0.0f, -0.0f, 1.0f, std::numeric_limits<float>::min(),
              std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
              std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::infinity(),
              -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
            check_float_bits<float>(std::bit_cast<std::uint32_t>(f));
        }
        for (const double d :
             {0.0, -0.0, 1.0, std::numeric_limits<double>::min(),
              std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(),
              std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::infinity(),
              -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
            check_float_bits<double>(std::bit_cast<std::uint64_t>(d));
        }
    }
    SECTION("NaN payloads and signs") {
        check_float_bits<float>(std::uint32_t{0x7fc00001});  // quiet, payload 1
        check_float_bits<float>(std::uint32_t{0xffc12345});  // negative quiet NaN
        check_float_bits<double>(std::uint64_t{0x7ff8000000000001});
        check_float_bits<double>(std::uint64_t{0xfff8dead0000beef});
    }
    SECTION("random bit patterns") {
        std::mt19937_64 random(7);
        for (int i = 0; i < 2000; ++i) {
            const std::uint64_t bits = random();
            CAPTURE(bits);
            check_float_bits<double>(bits);
            check_float_bits<float>(static_cast<std::uint32_t>(bits >> 32));
            // Every NaN pattern: exponent all ones, a random nonzero payload.
            check_float_bits<double>((bits | 0x7ff0000000000000u) | 1u);
            check_float_bits<float>(static_cast<std::uint32_t>(bits) | 0x7f800001u);
        }
    }
}

TEST_CASE("decoding the wrong number of bytes is refused", "[core]") {
    CHECK(starts_with(refusal<std::uint32_t>(make_bytes({1, 2, 3})),
                      "uint32: expected 4 bytes, got 3"));
    CHECK(starts_with(refusal<std::uint32_t>(make_bytes({1, 2, 3, 4, 5})),
                      "uint32: expected 4 bytes, got 5"));
    CHECK(starts_with(refusal<std::int8_t>({}), "int8: expected 1 byte, got 0"));
    CHECK(starts_with(refusal<std::uint8_t>(make_bytes({1, 2})), "uint8: expected 1 byte, got 2"));
    CHECK(starts_with(refusal<std::int16_t>(make_bytes({1})), "int16: expected 2 bytes, got 1"));
    CHECK(starts_with(refusal<std::uint16_t>({}), "uint16: expected 2 bytes, got 0"));
    CHECK(starts_with(refusal<std::int32_t>(make_bytes({1, 2, 3, 4, 5, 6, 7, 8})),
                      "int32: expected 4 bytes, got 8"));
    CHECK(starts_with(refusal<std::int64_t>(make_bytes({1, 2, 3, 4})),
                      "int64: expected 8 bytes, got 4"));
    CHECK(starts_with(refusal<std::uint64_t>(make_bytes({1, 2, 3, 4, 5, 6, 7, 8, 9})),
                      "uint64: expected 8 bytes, got 9"));
    CHECK(starts_with(refusal<bool>({}), "bool: expected 1 byte, got 0"));
    CHECK(starts_with(refusal<bool>(make_bytes({1, 1})), "bool: expected 1 byte, got 2"));
    CHECK(starts_with(refusal<float>(make_bytes({0x3f, 0x80, 0})),
                      "float32: expected 4 bytes, got 3"));
    CHECK(starts_with(refusal<float>(make_bytes({0x3f, 0x80, 0, 0, 0, 0, 0, 0})),
                      "float32: expected 4 bytes, got 8"));
    CHECK(starts_with(refusal<double>(make_bytes({0x3f, 0x80, 0, 0})),
                      "float64: expected 8 bytes, got 4"));
    CHECK(starts_with(refusal<double>({}), "float64: expected 8 bytes, got 0"));
    CHECK(starts_with(refusal<color>(make_bytes({1, 2, 3})),
                      "enum as uint16: expected 2 bytes, got 3"));
    CHECK(starts_with(refusal<delta>({}), "enum as int8: expected 1 byte, got 0"));
}

TEST_CASE("bool refuses every byte but zero and one", "[core]") {
    CHECK(starts_with(refusal<bool>(make_bytes({0x02})), "bool: expected 0x00 or 0x01, got 0x02"));
    CHECK(starts_with(refusal<bool>(make_bytes({0xff})), "bool: expected 0x00 or 0x01, got 0xff"));
    CHECK(starts_with(refusal<bool>(make_bytes({0x80})), "bool: expected 0x00 or 0x01, got 0x80"));
    for (unsigned b = 2; b < 256; ++b) {
        CAPTURE(b);
        CHECK_THROWS_AS(settle::decode<bool>(make_bytes({b})), settle::error);
    }
}

TEST_CASE("a user codec composes the built in ones", "[core]") {
    const money price{-1999, currency::eur};
    const settle::bytes encoded = settle::encode(price);
    CHECK(encoded == make_bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf8, 0x31, 0x03, 0xd2}));
    CHECK(settle::decode<money>(encoded) == price);
    CHECK(starts_with(refusal<money>(make_bytes({0, 1, 2})), "money: expected 10 bytes, got 3"));
}

TEST_CASE("a user codec for an enum replaces the built in one", "[core]") {
    CHECK(settle::encode(phase::done) == make_bytes({0x01}));
    CHECK(settle::decode<phase>(make_bytes({0x00})) == phase::pending);
    CHECK(starts_with(refusal<phase>(make_bytes({0x02})), "phase: no phase 2"));
    CHECK(starts_with(refusal<phase>({}), "uint8: expected 1 byte, got 0"));
}
