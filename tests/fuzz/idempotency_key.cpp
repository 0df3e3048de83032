// settle::idempotency_key on arbitrary bytes: parse() accepts exactly 1 to 255
// printable ASCII characters and otherwise says where the first fault is;
// from_header() never reads past its input, accepts only what to_header() could
// have written (give or take surrounding spaces), and round-trips what it accepts.
#include <settle/idempotency.hpp>

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using fuzz::check;

namespace {

bool printable(char c) {
    return c >= 0x20 && c <= 0x7e;
}

void check_refusal(const settle::parse_error& error, std::string_view subject, std::size_t size) {
    check(error.subject == subject);
    check(!error.reason.empty());
    check(error.position <= size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // parse(), against a plain description of a raw key.
    std::size_t first_bad = 0;
    while (first_bad < size && first_bad < 255 && printable(text[first_bad])) {
        ++first_bad;
    }
    const bool well_formed = size >= 1 && size <= 255 && first_bad == size;
    const auto raw = settle::idempotency_key::parse(text);
    check(raw.has_value() == well_formed);
    if (raw) {
        check(raw->value() == text);
        const std::string header = raw->to_header();
        const auto back = settle::idempotency_key::from_header(header);
        check(back.has_value() && *back == *raw);
        check(settle::idempotency_key::from_header(" \t" + header + "\t ").value() == *raw);
    } else {
        check_refusal(raw.error(), "idempotency key", size);
        std::size_t expected = 255;
        if (size == 0) {
            expected = 0;
        } else if (first_bad < size && first_bad < 255) {
            expected = first_bad;
        }
        check(raw.error().position == expected);
    }

    // from_header(): whatever it accepts is a valid key that writes back to a
    // header equal to the input without its surrounding spaces and tabs.
    const auto header = settle::idempotency_key::from_header(text);
    if (header) {
        check(settle::idempotency_key::parse(header->value()).value() == *header);
        std::size_t begin = 0;
        std::size_t end = size;
        while (begin < end && (text[begin] == ' ' || text[begin] == '\t')) {
            ++begin;
        }
        while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) {
            --end;
        }
        check(header->to_header() == text.substr(begin, end - begin));
    } else {
        check_refusal(header.error(), "Idempotency-Key header", size);
    }
    return 0;
}
