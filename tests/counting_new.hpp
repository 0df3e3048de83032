// Counts the calls of the global operator new made on the current thread,
// for tests that a path allocates nothing. Include it in exactly one file of
// a test binary: it replaces the binary's global operator new and delete.
// Clang's sanitizer runtimes define operator new themselves (a replacement
// would not link): there SETTLE_TEST_COUNTS_ALLOCATIONS is 0 and the header
// defines nothing, so the including file skips its tests. GCC's ASan build
// and the plain Clang build count.
#ifndef SETTLE_TESTS_COUNTING_NEW_HPP
#define SETTLE_TESTS_COUNTING_NEW_HPP

#define SETTLE_TEST_COUNTS_ALLOCATIONS 1
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#undef SETTLE_TEST_COUNTS_ALLOCATIONS
#define SETTLE_TEST_COUNTS_ALLOCATIONS 0
#endif
#endif

#if SETTLE_TEST_COUNTS_ALLOCATIONS

#include <cstdint>
#include <cstdlib>
#include <new>

namespace counting_new {
inline thread_local std::uint64_t allocations = 0;

// Allocations made on this thread while f runs.
template <class F>
std::uint64_t allocations_during(F&& f) {
    const std::uint64_t before = allocations;
    f();
    return allocations - before;
}
}  // namespace counting_new

// Every replaceable form but the aligned ones (which keep pairing with each other).
void* operator new(std::size_t size) {
    ++counting_new::allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    return ::operator new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    ++counting_new::allocations;
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
    return ::operator new(size, tag);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

#endif  // SETTLE_TEST_COUNTS_ALLOCATIONS
#endif  // SETTLE_TESTS_COUNTING_NEW_HPP
