// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
//
// No include guard, on purpose. Every settle header includes this file after
// its own includes and <settle/detail/macro_unscope.hpp> at its end, so the
// macros below exist only inside settle's headers and never leak into yours.
#include <settle/version.hpp>

#define SETTLE_BEGIN_NAMESPACE \
    namespace settle {         \
    inline namespace SETTLE_ABI_NAMESPACE {
#define SETTLE_END_NAMESPACE \
    }                        \
    }
