// Decodes arbitrary bytes as every built-in codable type. Each decode either
// refuses with settle::error and errc::decode_failed, or returns a value whose
// encoding is exactly the input: nothing in between, nothing read out of bounds.
#include <settle/codec.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

namespace {

enum class wide_enum : std::int64_t {};
enum class narrow_enum : std::uint8_t {};
enum plain_enum : std::int16_t {};

template <class T>
void check(std::span<const std::byte> in) {
    T value;
    try {
        value = settle::decode<T>(in);
    } catch (const settle::error& e) {
        if (e.code() != settle::errc::decode_failed) {
            std::abort();
        }
        return;
    }
    const settle::bytes again = settle::encode(value);
    if (again.size() != in.size()) {
        std::abort();
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (again[i] != in[i]) {
            std::abort();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    check<std::string>(in);
    check<settle::bytes>(in);
    check<bool>(in);
    check<char>(in);
    check<std::int8_t>(in);
    check<std::uint8_t>(in);
    check<std::int16_t>(in);
    check<std::uint16_t>(in);
    check<std::int32_t>(in);
    check<std::uint32_t>(in);
    check<std::int64_t>(in);
    check<std::uint64_t>(in);
    check<char8_t>(in);
    check<char16_t>(in);
    check<char32_t>(in);
    check<wchar_t>(in);
    check<float>(in);
    check<double>(in);
    check<wide_enum>(in);
    check<narrow_enum>(in);
    check<plain_enum>(in);
    check<std::byte>(in);
    return 0;
}
