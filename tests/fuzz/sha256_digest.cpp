// settle::sha256_digest::from_hex on arbitrary bytes either refuses them, saying
// where, or accepts exactly 64 hex digits and gives them back in lowercase; and
// settle::sha256 gives the same digest however the input is split.
#include <settle/sha256.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

using fuzz::check;
using fuzz::is_hex;
using fuzz::lowercase;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // The parser, against a plain description of the format.
    std::size_t first_bad = 0;
    while (first_bad < size && first_bad < 64 && is_hex(text[first_bad])) {
        ++first_bad;
    }
    const bool well_formed = size == 64 && first_bad == 64;
    const auto parsed = settle::sha256_digest::from_hex(text);
    check(parsed.has_value() == well_formed);
    if (parsed) {
        std::string lower(text);
        for (char& c : lower) {
            c = lowercase(c);
        }
        check(parsed->to_hex() == lower);
        check(settle::sha256_digest(parsed->bytes()) == *parsed);
    } else {
        const settle::parse_error& error = parsed.error();
        check(error.subject == "sha256 digest");
        check(!error.reason.empty());
        check(error.position <= size);
        // The first offending character: a non-hex one within the first 64,
        // else the end of a short text, else the 65th character.
        std::size_t expected = 64;
        if (first_bad < size && first_bad < 64) {
            expected = first_bad;
        } else if (size < 64) {
            expected = size;
        }
        check(error.position == expected);
    }

    // The hasher: one shot, two chunks split where the first byte says, and
    // the same bytes seen as std::byte.
    const std::span<const std::uint8_t> bytes(data, size);
    const settle::sha256_digest whole = settle::sha256::hash(bytes);
    const std::size_t split = size == 0 ? 0 : static_cast<std::size_t>(data[0]) * size / 256;
    settle::sha256 hasher;
    hasher.update(bytes.first(split)).update(text.substr(split));
    check(hasher.finish() == whole);
    check(settle::sha256::hash(std::as_bytes(bytes)) == whole);
    check(hasher.finish() == settle::sha256::hash(std::string_view()));
    return 0;
}
