// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_VERSION_HPP
#define SETTLE_VERSION_HPP

/// \file
/// The version of settle: macros for the preprocessor, and settle::version.

///@{
/// The release this header belongs to. CMake reads these three lines, so the
/// package version and the macros cannot drift apart.
#define SETTLE_VERSION_MAJOR 0
#define SETTLE_VERSION_MINOR 1
#define SETTLE_VERSION_PATCH 0
///@}

/// One integer for preprocessor comparisons: major * 10000 + minor * 100 + patch.
#define SETTLE_VERSION \
    (SETTLE_VERSION_MAJOR * 10000 + SETTLE_VERSION_MINOR * 100 + SETTLE_VERSION_PATCH)

/// Every public name lives in an inline namespace named for the exact version
/// (settle::v0_1_0). Users write settle::name; the linker sees the version, so
/// two versions of settle in one program cannot silently share a definition.
/// Kept equal to the three numbers above (tests/core/version.cpp checks it).
#define SETTLE_ABI_NAMESPACE v0_1_0

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

/// A version as three numbers.
struct version_info {
    ///@{
    /// The major, minor and patch numbers.
    int major;
    int minor;
    int patch;
    ///@}
};

/// The version of the headers this translation unit was compiled against.
inline constexpr version_info version{SETTLE_VERSION_MAJOR, SETTLE_VERSION_MINOR,
                                      SETTLE_VERSION_PATCH};

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_VERSION_HPP
