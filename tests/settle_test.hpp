// What every test file includes: Catch2 2.13 or 3, whichever the build found.
#ifndef SETTLE_TESTS_SETTLE_TEST_HPP
#define SETTLE_TESTS_SETTLE_TEST_HPP

#if SETTLE_CATCH_MAJOR >= 3
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#endif  // SETTLE_TESTS_SETTLE_TEST_HPP
