// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
//
// No include guard, on purpose: see <settle/detail/macro_scope.hpp>.
#undef SETTLE_BEGIN_NAMESPACE
#undef SETTLE_END_NAMESPACE
