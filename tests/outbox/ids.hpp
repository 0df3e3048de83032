// Message ids the outbox tests can name by number.
#ifndef SETTLE_TESTS_OUTBOX_IDS_HPP
#define SETTLE_TESTS_OUTBOX_IDS_HPP

#include <settle/uuid.hpp>

#include <array>
#include <cstddef>

namespace outbox_test {

// A distinct, non-nil version 7 id for every n, ordered as n is.
inline settle::uuid id_of(unsigned n) {
    std::array<std::byte, 16> bytes{};
    bytes[0] = std::byte{0x01};
    bytes[6] = std::byte{0x70};
    bytes[8] = std::byte{0x80};
    bytes[14] = static_cast<std::byte>(n >> 8);
    bytes[15] = static_cast<std::byte>(n & 0xFFU);
    return settle::uuid(bytes);
}

}  // namespace outbox_test

#endif  // SETTLE_TESTS_OUTBOX_IDS_HPP
