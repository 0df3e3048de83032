#include <settle/sha256.hpp>

#include "settle_test.hpp"

#include <openssl/evp.h>

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace {

// The FIPS 180-2 / NIST example messages (csrc.nist.gov, "SHA256.pdf" and "SHA2_Additional.pdf").
constexpr std::string_view abc = "abc";
constexpr std::string_view msg448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr std::string_view msg896 =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
    "qrsmnopqrstnopqrstu";

constexpr std::string_view empty_hex =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view abc_hex =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::string_view msg448_hex =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr std::string_view msg896_hex =
    "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1";
constexpr std::string_view million_a_hex =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

std::string libcrypto_sha256_hex(std::span<const std::uint8_t> bytes) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int size = 0;
    REQUIRE(EVP_Digest(bytes.data(), bytes.size(), out.data(), &size, EVP_sha256(), nullptr) == 1);
    REQUIRE(size == 32);
    settle::sha256_digest::bytes_type digest{};
    for (std::size_t i = 0; i < digest.size(); ++i) {
        digest[i] = out[i];
    }
    return settle::sha256_digest(digest).to_hex();
}

std::vector<std::uint8_t> random_bytes(std::mt19937_64& random, std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (auto& b : bytes) {
        b = static_cast<std::uint8_t>(random());
    }
    return bytes;
}

std::string as_text(std::span<const std::uint8_t> bytes) {
    return {bytes.begin(), bytes.end()};
}

// Compile time: a one-block message, a multi-block message and a chain of updates.
// (GCC 12 cannot dereference a temporary parse_result in a namespace-scope constant
// expression, so the expected digests are named.)
constexpr auto abc_digest = settle::sha256::hash(abc);
constexpr auto abc_parsed = settle::sha256_digest::from_hex(abc_hex);
constexpr auto msg896_parsed = settle::sha256_digest::from_hex(msg896_hex);
static_assert(abc_parsed && abc_digest == *abc_parsed);
static_assert(msg896_parsed && settle::sha256::hash(msg896) == *msg896_parsed);
static_assert(settle::sha256{}.update("ab").update(std::string_view()).update("c").finish() ==
              abc_digest);
static_assert(settle::sha256::hash(std::array{std::byte{'a'}, std::byte{'b'}, std::byte{'c'}}) ==
              abc_digest);
static_assert(settle::sha256::hash(std::array<std::uint8_t, 3>{'a', 'b', 'c'}) == abc_digest);
static_assert(!settle::sha256_digest::from_hex("abc"));
static_assert(sizeof(settle::sha256_digest) == 32);

}  // namespace

TEST_CASE("sha256 matches the published FIPS 180 example vectors", "[core]") {
    CHECK(settle::sha256::hash(std::string_view()).to_hex() == empty_hex);
    CHECK(settle::sha256::hash(abc).to_hex() == abc_hex);
    CHECK(settle::sha256::hash(msg448).to_hex() == msg448_hex);
    CHECK(settle::sha256::hash(msg896).to_hex() == msg896_hex);
    CHECK(settle::sha256{}.finish().to_hex() == empty_hex);
}

TEST_CASE("sha256 of one million a matches the published vector", "[core]") {
    const std::string million(1'000'000, 'a');
    CHECK(settle::sha256::hash(million).to_hex() == million_a_hex);

    settle::sha256 hasher;
    const std::string_view all = million;
    for (std::size_t at = 0; at < all.size(); at += 997) {
        hasher.update(all.substr(at, 997));
    }
    CHECK(hasher.finish().to_hex() == million_a_hex);
}

TEST_CASE("sha256 digests are computed at compile time", "[core]") {
    constexpr settle::sha256_digest digest = settle::sha256::hash("abc");
    STATIC_REQUIRE(digest == *abc_parsed);
    constexpr auto expected448 = settle::sha256_digest::from_hex(msg448_hex);
    STATIC_REQUIRE(settle::sha256::hash(msg448) == *expected448);
    CHECK(digest.to_hex() == abc_hex);
}

TEST_CASE("sha256 bytes chars and std::byte give the same digest", "[core]") {
    std::mt19937_64 random(7);
    const auto bytes = random_bytes(random, 300);  // has bytes >= 0x80, negative as char
    const std::string text = as_text(bytes);
    const std::vector<std::byte> as_bytes(
        reinterpret_cast<const std::byte*>(bytes.data()),
        reinterpret_cast<const std::byte*>(bytes.data()) + bytes.size());
    const auto expected = libcrypto_sha256_hex(bytes);
    CHECK(settle::sha256::hash(std::span<const std::uint8_t>(bytes)).to_hex() == expected);
    CHECK(settle::sha256::hash(text).to_hex() == expected);
    CHECK(settle::sha256::hash(std::span<const std::byte>(as_bytes)).to_hex() == expected);
    CHECK(settle::sha256{}
              .update(std::span<const std::uint8_t>(bytes).first(100))
              .update(std::string_view(text).substr(100, 100))
              .update(std::span<const std::byte>(as_bytes).subspan(200))
              .finish()
              .to_hex() == expected);
}

TEST_CASE("sha256 split at every position equals the one shot digest", "[core]") {
    std::mt19937_64 random(42);
    const auto bytes = random_bytes(random, 321);  // five blocks and a partial one
    const std::span<const std::uint8_t> all(bytes);
    const auto whole = settle::sha256::hash(all);
    for (std::size_t split = 0; split <= all.size(); ++split) {
        CAPTURE(split);
        settle::sha256 hasher;
        hasher.update(all.first(split)).update(all.subspan(split));
        CHECK(hasher.finish() == whole);
    }

    const auto shorter = all.first(150);
    const auto short_whole = settle::sha256::hash(shorter);
    for (std::size_t first = 0; first <= shorter.size(); ++first) {
        for (std::size_t second = first; second <= shorter.size(); ++second) {
            settle::sha256 hasher;
            hasher.update(shorter.first(first))
                .update(shorter.subspan(first, second - first))
                .update(shorter.subspan(second));
            if (hasher.finish() != short_whole) {
                CAPTURE(first, second);
                FAIL("a three-way split changed the digest");
            }
        }
    }

    settle::sha256 byte_by_byte;
    for (std::size_t i = 0; i < all.size(); ++i) {
        byte_by_byte.update(all.subspan(i, 1));
    }
    CHECK(byte_by_byte.finish() == whole);
}

TEST_CASE("sha256 agrees with libcrypto at every length around the padding boundaries", "[core]") {
    std::mt19937_64 random(2024);
    const auto bytes = random_bytes(random, 300);
    for (std::size_t size = 0; size <= bytes.size(); ++size) {
        CAPTURE(size);
        const std::span<const std::uint8_t> message(bytes.data(), size);
        CHECK(settle::sha256::hash(message).to_hex() == libcrypto_sha256_hex(message));
    }
}

TEST_CASE("sha256 agrees with libcrypto on random inputs of random lengths", "[core]") {
    std::mt19937_64 random(0x5e771e);
    std::uniform_int_distribution<std::size_t> size_of(0, 5000);
    for (int round = 0; round < 300; ++round) {
        const auto bytes = random_bytes(random, size_of(random));
        CAPTURE(round, bytes.size());
        const std::span<const std::uint8_t> message(bytes);
        const auto expected = libcrypto_sha256_hex(message);
        CHECK(settle::sha256::hash(message).to_hex() == expected);

        // The same message fed in random pieces.
        settle::sha256 hasher;
        std::size_t at = 0;
        while (at < bytes.size()) {
            std::uniform_int_distribution<std::size_t> piece_of(0, bytes.size() - at);
            const std::size_t piece = piece_of(random);
            hasher.update(message.subspan(at, piece));
            at += piece;
        }
        CHECK(hasher.finish().to_hex() == expected);
    }
}

TEST_CASE("sha256 finish leaves the hasher as new", "[core]") {
    settle::sha256 hasher;
    hasher.update("some earlier message that spans more than one block of sixty-four bytes.");
    (void)hasher.finish();
    CHECK(hasher.finish().to_hex() == empty_hex);
    CHECK(hasher.update(abc).finish().to_hex() == abc_hex);
    hasher.update("ab");
    (void)hasher.finish();
    CHECK(hasher.update(msg448).finish().to_hex() == msg448_hex);
}

TEST_CASE("sha256 copy finishes a prefix while the original goes on", "[core]") {
    settle::sha256 hasher;
    hasher.update(msg896.substr(0, 70));
    settle::sha256 prefix = hasher;
    hasher.update(msg896.substr(70));
    CHECK(prefix.finish() == settle::sha256::hash(msg896.substr(0, 70)));
    CHECK(hasher.finish().to_hex() == msg896_hex);
}

TEST_CASE("sha256 refuses a message longer than the FIPS 180-4 limit", "[core]") {
    constexpr std::uint64_t max_bytes = (std::uint64_t{1} << 61) - 1;  // 2^64 - 1 bits
    CHECK(settle::detail::sha256_max_bytes == max_bytes);
    CHECK(settle::detail::sha256_count(0, 0) == 0);
    CHECK(settle::detail::sha256_count(max_bytes - 10, 10) == max_bytes);
    CHECK(settle::detail::sha256_count(max_bytes, 0) == max_bytes);
    CHECK_THROWS_AS((void)settle::detail::sha256_count(max_bytes - 10, 11), settle::error);
    CHECK_THROWS_AS((void)settle::detail::sha256_count(max_bytes, 1), settle::error);
    CHECK_THROWS_AS((void)settle::detail::sha256_count(1, SIZE_MAX), settle::error);
    try {
        (void)settle::detail::sha256_count(max_bytes, 1);
    } catch (const settle::error& e) {
        CHECK(e.code() == settle::errc::invalid_argument);
    }
}

TEST_CASE("sha256_digest hex is lowercase and round trips", "[core]") {
    const auto digest = settle::sha256::hash(abc);
    CHECK(digest.to_hex() == abc_hex);
    CHECK(digest.to_hex().size() == 64);

    std::array<char, 66> buffer{};
    buffer.fill('#');
    digest.write_hex(std::span(buffer).subspan<1, 64>());
    CHECK(buffer.front() == '#');
    CHECK(buffer.back() == '#');
    CHECK(std::string_view(buffer.data() + 1, 64) == abc_hex);

    const auto lower = settle::sha256_digest::from_hex(abc_hex);
    REQUIRE(lower);
    CHECK(*lower == digest);
    const auto upper = settle::sha256_digest::from_hex(
        "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
    REQUIRE(upper);
    CHECK(*upper == digest);
    const auto mixed = settle::sha256_digest::from_hex(
        "Ba7816bF8f01cFeA414140De5dAe2223b00361a396177a9Cb410fF61f20015aD");
    REQUIRE(mixed);
    CHECK(*mixed == digest);

    CHECK(digest.bytes()[0] == 0xba);
    CHECK(digest.bytes()[31] == 0xad);
    CHECK(settle::sha256_digest(digest.bytes()) == digest);

    std::mt19937_64 random(99);
    for (int i = 0; i < 100; ++i) {
        const auto d = settle::sha256::hash(std::span<const std::uint8_t>(random_bytes(random, 9)));
        const auto back = settle::sha256_digest::from_hex(d.to_hex());
        REQUIRE(back);
        CHECK(*back == d);
    }
    CHECK(settle::sha256_digest().to_hex() == std::string(64, '0'));
}

TEST_CASE("sha256_digest from_hex refuses anything but 64 hex digits", "[core]") {
    using settle::parse_error;
    const auto refused = [](std::string_view text) {
        const auto result = settle::sha256_digest::from_hex(text);
        REQUIRE_FALSE(result);
        return result.error();
    };
    const std::string good(abc_hex);

    CHECK(refused("") == parse_error{"sha256 digest", 0, "too short, expected 64 hex digits"});
    CHECK(refused(good.substr(0, 63)) ==
          parse_error{"sha256 digest", 63, "too short, expected 64 hex digits"});
    CHECK(refused(good.substr(0, 1)) ==
          parse_error{"sha256 digest", 1, "too short, expected 64 hex digits"});
    CHECK(refused(good + "0") ==
          parse_error{"sha256 digest", 64, "too long, expected 64 hex digits"});
    CHECK(refused(good + "\n") ==
          parse_error{"sha256 digest", 64, "too long, expected 64 hex digits"});
    CHECK(refused(good + good) ==
          parse_error{"sha256 digest", 64, "too long, expected 64 hex digits"});

    // A bad character is reported where it is, before a wrong length is.
    CHECK(refused("0x" + good.substr(0, 62)) ==
          parse_error{"sha256 digest", 1, "expected a hex digit"});
    CHECK(refused("ab z") == parse_error{"sha256 digest", 2, "expected a hex digit"});
    CHECK(refused(" " + good) == parse_error{"sha256 digest", 0, "expected a hex digit"});

    for (const char bad : {'g', 'G', 'z', ' ', '-', '/', ':', '@', '`', '\0', '\x7f', '\xff'}) {
        for (std::size_t position = 0; position < 64; ++position) {
            std::string text = good;
            text[position] = bad;
            CAPTURE(static_cast<int>(bad), position);
            CHECK(refused(text) == parse_error{"sha256 digest", position, "expected a hex digit"});
        }
    }

    CHECK(refused("xyz").message() == "sha256 digest: position 0: expected a hex digit");
    CHECK_THROWS_AS((void)settle::sha256_digest::from_hex("xyz").value(), settle::error);
}

TEST_CASE("sha256_digest compares and orders like its hex text", "[core]") {
    std::mt19937_64 random(5);
    std::vector<settle::sha256_digest> digests;
    for (int i = 0; i < 50; ++i) {
        digests.push_back(
            settle::sha256::hash(std::span<const std::uint8_t>(random_bytes(random, 4))));
    }
    digests.push_back(settle::sha256_digest());
    for (const auto& x : digests) {
        for (const auto& y : digests) {
            const auto by_text = x.to_hex() <=> y.to_hex();
            CHECK((x <=> y) == by_text);
            CHECK((x == y) == (x.to_hex() == y.to_hex()));
        }
    }
    CHECK(settle::sha256_digest() < settle::sha256::hash(abc));
}

TEST_CASE("sha256_digest works as an unordered key", "[core]") {
    std::unordered_set<settle::sha256_digest> seen;
    CHECK(seen.insert(settle::sha256::hash(abc)).second);
    CHECK(seen.insert(settle::sha256::hash(msg448)).second);
    CHECK_FALSE(seen.insert(*settle::sha256_digest::from_hex(abc_hex)).second);
    CHECK(seen.size() == 2);
    const std::hash<settle::sha256_digest> hash;
    CHECK(hash(settle::sha256::hash(abc)) != hash(settle::sha256::hash(msg448)));
}
