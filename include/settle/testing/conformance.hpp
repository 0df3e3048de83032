// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTING_CONFORMANCE_HPP
#define SETTLE_TESTING_CONFORMANCE_HPP

// The conformance kit: how settle writes, once per storage concept, a test
// suite that any backend can be run against, settle's own and yours.
//
// A suite is a list of named cases. Each case takes a fixture (whatever the
// suite needs: a fresh backend, a way to begin transactions) and checks what
// the concept promises with SETTLE_EXPECT, which throws
// settle::conformance::failure naming the broken expectation, the file and the
// line. Any test framework runs a suite by running each case and reporting
// what it throws; see docs/conformance.md for Catch2 and GoogleTest.

#include <settle/version.hpp>

#include <settle/error.hpp>

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace conformance {

/// A backend broke a promise of its concept. what() reads
/// "file:line: expected <expression>" plus any detail the case added.
class failure : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// One case of a suite, run against a fresh Fixture.
template <class Fixture>
struct test_case {
    ///@{
    /// The check's name, and the function that runs it on a fixture.
    std::string_view name;
    void (*run)(Fixture&);
    ///@}
};

namespace detail {
[[noreturn]] inline void fail(const char* file, int line, std::string_view expression,
                              std::string_view detail) {
    std::string message =
        std::string(file) + ":" + std::to_string(line) + ": expected " + std::string(expression);
    if (!detail.empty()) {
        message += " (";
        message += detail;
        message += ")";
    }
    throw failure(message);
}

// The cases of `every`, followed by those of `some` when Include: how a suite
// adds the cases of what only some stores of its concept promise (rollback,
// purge).
template <bool Include, class Fixture, std::size_t N, std::size_t M>
constexpr auto with_cases(const std::array<test_case<Fixture>, N>& every,
                          const std::array<test_case<Fixture>, M>& some) {
    if constexpr (Include) {
        std::array<test_case<Fixture>, N + M> all{};
        std::size_t i = 0;
        for (const auto& c : every) {
            all[i++] = c;
        }
        for (const auto& c : some) {
            all[i++] = c;
        }
        return all;
    } else {
        return every;
    }
}

// Whether fn() throws settle::error with errc::invalid_argument.
template <class Fn>
bool refused_as_invalid(Fn&& fn) {
    try {
        fn();
    } catch (const settle::error& e) {
        return e.code() == errc::invalid_argument;
    }
    return false;
}
}  // namespace detail

}  // namespace conformance

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

/// Inside a conformance case: throws settle::conformance::failure unless the
/// condition holds. The optional second argument says more ("after rollback").
#define SETTLE_EXPECT(condition, ...)                                           \
    do {                                                                        \
        if (!(condition)) {                                                     \
            ::settle::conformance::detail::fail(__FILE__, __LINE__, #condition, \
                                                std::string_view{__VA_ARGS__}); \
        }                                                                       \
    } while (false)

#endif  // SETTLE_TESTING_CONFORMANCE_HPP
