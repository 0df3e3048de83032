// Message ids and messages the outbox tests can name by number.
#ifndef SETTLE_TESTS_OUTBOX_IDS_HPP
#define SETTLE_TESTS_OUTBOX_IDS_HPP

#include <settle/codec.hpp>
#include <settle/outbox.hpp>
#include <settle/uuid.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace outbox_test {

// A distinct, non-nil version 7 id for every n, ordered as n is.
inline settle::uuid id_of(std::uint32_t n) {
    std::array<std::byte, 16> bytes{};
    bytes[0] = std::byte{0x01};
    bytes[6] = std::byte{0x70};
    bytes[8] = std::byte{0x80};
    for (std::size_t i = 0; i < 4; ++i) {
        bytes[15 - i] = static_cast<std::byte>((n >> (8 * i)) & 0xFFU);
    }
    return settle::uuid(bytes);
}

// Message n: id_of(n), its payload n encoded, under an optional ordering key.
inline settle::outbox_message message_of(std::uint32_t n, std::string ordering_key = {}) {
    return settle::outbox_message{
        id_of(n), "orders.placed", std::move(ordering_key), settle::encode(n), {}};
}

}  // namespace outbox_test

#endif  // SETTLE_TESTS_OUTBOX_IDS_HPP
