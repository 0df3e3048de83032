// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_ERROR_HPP
#define SETTLE_ERROR_HPP

#include <settle/version.hpp>

#include <string>
#include <string_view>
#include <system_error>

SETTLE_BEGIN_NAMESPACE

// Failures, as opposed to outcomes. A duplicate request or a version conflict
// is an outcome and comes back as a value; the conditions below mean the
// operation could not be carried out, and are thrown as settle::error.
enum class errc {
    // The backend could not be reached or lost its connection. Retrying later may help.
    unavailable = 1,
    // The backend answered with an error it should not have (a constraint, a schema mismatch).
    backend_failure,
    // Stored bytes could not be decoded into the requested type. The record is kept as it was.
    decode_failed,
    // Text from outside (an id, a digest, a header field) is not in the required format.
    malformed_input,
    // An argument or configuration breaks a documented precondition.
    invalid_argument,
};

// A short, stable name for logs: "unavailable", "decode_failed", ...
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::unavailable: return "unavailable";
    case errc::backend_failure: return "backend_failure";
    case errc::decode_failed: return "decode_failed";
    case errc::malformed_input: return "malformed_input";
    case errc::invalid_argument: return "invalid_argument";
    }
    return "unknown settle::errc";
}

namespace detail {

class error_category final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "settle"; }

    [[nodiscard]] std::string message(int value) const override {
        return std::string(to_string(static_cast<errc>(value)));
    }
};

}  // namespace detail

// The category of every settle::errc. One object per program.
[[nodiscard]] inline const std::error_category& error_category() noexcept {
    static const detail::error_category instance;
    return instance;
}

[[nodiscard]] inline std::error_code make_error_code(errc code) noexcept {
    return {static_cast<int>(code), settle::error_category()};
}

// The one exception type settle throws. code() says which failure, what() says
// what exactly went wrong ("uuid: position 8: expected '-'").
class error : public std::system_error {
public:
    error(std::error_code code, const std::string& what) : std::system_error(code, what) {}
    error(errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
};

SETTLE_END_NAMESPACE

template <>
struct std::is_error_code_enum<settle::errc> : std::true_type {};

#endif  // SETTLE_ERROR_HPP
