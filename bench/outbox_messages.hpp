// What the outbox benchmarks append: message n, with a 128-byte payload.
#ifndef SETTLE_BENCH_OUTBOX_MESSAGES_HPP
#define SETTLE_BENCH_OUTBOX_MESSAGES_HPP

#include <settle/outbox.hpp>
#include <settle/uuid.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace outbox_bench {

inline constexpr std::size_t payload_size = 128;

// A distinct, non-nil version 7 id for every n below 2^56, ordered as n is.
inline settle::uuid id_of(std::uint64_t n) {
    std::array<std::byte, 16> bytes{};
    bytes[0] = std::byte{0x01};
    bytes[6] = std::byte{0x70};
    bytes[8] = std::byte{0x80};
    for (std::size_t i = 0; i < 7; ++i) {
        bytes[15 - i] = static_cast<std::byte>((n >> (8 * i)) & 0xFFU);
    }
    return settle::uuid(bytes);
}

inline settle::outbox_message message_of(std::uint64_t n) {
    return settle::outbox_message{
        id_of(n), "orders.placed", {}, settle::bytes(payload_size, std::byte{0x5A}), {}};
}

// The wall clock as the SQL baselines store it: Unix microseconds.
inline std::int64_t now_micros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace outbox_bench

#endif  // SETTLE_BENCH_OUTBOX_MESSAGES_HPP
