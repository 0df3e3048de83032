// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_ERROR_HPP
#define SETTLE_ERROR_HPP

#include <settle/version.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

/// Failures, as opposed to outcomes. A duplicate request or a version conflict
/// is an outcome and comes back as a value; the conditions below mean the
/// operation could not be carried out, and are thrown as settle::error.
enum class errc {
    /// The backend could not be reached or lost its connection. Retrying later may help.
    unavailable = 1,
    /// The backend answered with an error it should not have (a constraint, a schema mismatch).
    backend_failure,
    /// Stored bytes could not be decoded into the requested type. The record is kept as it was.
    decode_failed,
    /// Text from outside (an id, a digest, a header field) is not in the required format.
    malformed_input,
    /// An argument or configuration breaks a documented precondition.
    invalid_argument,
    /// The backend gave the transaction up over concurrent work or a time limit
    /// (a deadlock, a serialization failure, a lock or statement timeout) and
    /// kept nothing of it. Running the whole transaction again may succeed.
    aborted,
};

SETTLE_END_NAMESPACE

/// \cond
// Declared before any use, so settle::errc converts to std::error_code everywhere.
template <>
struct std::is_error_code_enum<settle::errc> : std::true_type {};
/// \endcond

SETTLE_BEGIN_NAMESPACE

/// A short, stable name for logs: "unavailable", "decode_failed", ...
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::unavailable: return "unavailable";
    case errc::backend_failure: return "backend_failure";
    case errc::decode_failed: return "decode_failed";
    case errc::malformed_input: return "malformed_input";
    case errc::invalid_argument: return "invalid_argument";
    case errc::aborted: return "aborted";
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

/// The category of every settle::errc. One object per program.
[[nodiscard]] inline const std::error_category& error_category() noexcept {
    static const detail::error_category instance;
    return instance;
}

[[nodiscard]] inline std::error_code make_error_code(errc code) noexcept {
    return {static_cast<int>(code), settle::error_category()};
}

/// The one exception type settle throws. code() says which failure, what() says
/// what exactly went wrong ("uuid: position 8: expected '-'").
class error : public std::system_error {
public:
    ///@{
    /// Made from an error code and a message.
    error(std::error_code code, const std::string& what) : std::system_error(code, what) {}
    error(errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
    ///@}
};

/// Why a piece of text was refused: what was being parsed, where, and what was
/// wrong there. All three are exact; reason and subject point at static text.
struct parse_error {
    std::string_view subject;  ///< what was being parsed: "uuid", "sha256 digest"
    std::size_t position;      ///< offset of the first offending character, or the input's length
    std::string_view reason;   ///< "expected a hex digit", "too short", ...

    /// "uuid: position 8: expected '-'"
    [[nodiscard]] std::string message() const {
        return std::string(subject) + ": position " + std::to_string(position) + ": " +
               std::string(reason);
    }
    /// Equal when every field is equal.
    friend bool operator==(const parse_error&, const parse_error&) = default;
};

/// What parsing text from outside returns: the value, or the parse_error that
/// says why there is none. Checking it costs no exception:
///
///     auto id = settle::uuid::parse(text);
///     if (!id) return bad_request(id.error().message());
///
/// value() on a failed result throws settle::error with errc::malformed_input.
template <class T>
class [[nodiscard]] parse_result {
public:
    ///@{
    /// A value or a parse_error. has_value() and operator bool say which; *, -> and value() give
    /// the value (value() throws settle::error on a parse error).
    constexpr parse_result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : state_(std::in_place_index<0>, std::move(value)) {}
    constexpr parse_result(parse_error error) noexcept : state_(std::in_place_index<1>, error) {}

    [[nodiscard]] constexpr bool has_value() const noexcept { return state_.index() == 0; }
    constexpr explicit operator bool() const noexcept { return has_value(); }

    /// Precondition: has_value(); std::bad_variant_access otherwise.
    [[nodiscard]] constexpr const T& operator*() const& { return std::get<0>(state_); }
    [[nodiscard]] constexpr T&& operator*() && { return std::get<0>(std::move(state_)); }
    [[nodiscard]] constexpr const T* operator->() const { return &std::get<0>(state_); }

    [[nodiscard]] constexpr const T& value() const& {
        check();
        return std::get<0>(state_);
    }
    [[nodiscard]] constexpr T&& value() && {
        check();
        return std::get<0>(std::move(state_));
    }
    ///@}

    /// Precondition: !has_value(); std::bad_variant_access otherwise.
    [[nodiscard]] constexpr const parse_error& error() const { return std::get<1>(state_); }

private:
    constexpr void check() const {
        if (!has_value()) {
            throw settle::error(errc::malformed_input, error().message());
        }
    }

    std::variant<T, parse_error> state_;
};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_ERROR_HPP
