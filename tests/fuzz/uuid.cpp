// settle::uuid::parse on arbitrary bytes either accepts exactly the canonical
// 8-4-4-4-12 form, gives it back in lowercase and parses its own text to the
// same uuid, or refuses it at the first offending position.
#include <settle/uuid.hpp>

#include "fuzz_check.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using fuzz::check;
using fuzz::is_hex;
using fuzz::lowercase;

namespace {

// Where a plain reading of the format first goes wrong, or the length if nowhere.
std::size_t first_offence(std::string_view text) {
    for (std::size_t i = 0; i < text.size() && i < 36; ++i) {
        const bool hyphen = i == 8 || i == 13 || i == 18 || i == 23;
        if (hyphen ? text[i] != '-' : !is_hex(text[i])) {
            return i;
        }
    }
    return text.size() < 36 ? text.size() : 36;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const bool well_formed = size == 36 && first_offence(text) == 36;

    const auto parsed = settle::uuid::parse(text);
    check(parsed.has_value() == well_formed);
    if (parsed) {
        std::string lower(text);
        for (char& c : lower) {
            c = lowercase(c);
        }
        const std::string formatted = parsed->to_string();
        check(formatted == lower);
        std::array<char, settle::uuid::text_size> buffer{};
        check(parsed->write(buffer) == formatted);
        const auto again = settle::uuid::parse(formatted);
        check(again.has_value() && *again == *parsed);
        check(settle::uuid(parsed->bytes()) == *parsed);
    } else {
        const settle::parse_error& error = parsed.error();
        check(error.subject == "uuid");
        check(!error.reason.empty());
        check(error.position == first_offence(text));
    }
    return 0;
}
