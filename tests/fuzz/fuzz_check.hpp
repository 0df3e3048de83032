// What the fuzz targets share: a check that stops the run, and plain readings
// of hex text to test the parsers against.
#ifndef SETTLE_TESTS_FUZZ_FUZZ_CHECK_HPP
#define SETTLE_TESTS_FUZZ_FUZZ_CHECK_HPP

#include <cstdlib>

namespace fuzz {

// Aborts, which libFuzzer reports with the input, unless the condition holds.
inline void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

inline bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline char lowercase(char c) {
    return c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace fuzz

#endif  // SETTLE_TESTS_FUZZ_FUZZ_CHECK_HPP
