// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_VERSIONED_HPP
#define SETTLE_VERSIONED_HPP

#include <settle/version.hpp>

#include <settle/error.hpp>
#include <settle/token.hpp>
#include <settle/transaction.hpp>

#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <settle/detail/macro_scope.hpp>

// Optimistic version stamps: "what version did you see, and is it still the
// current one". A write names the stamp it was based on; a store applies it
// only if that stamp is still current. Nothing here allocates except where a
// value of the caller's type is copied. The retry loops built on it,
// optimistic_update and read_at_least, are in <settle/optimistic.hpp>.

SETTLE_BEGIN_NAMESPACE

// ---------------------------------------------------------------------------
// Stamps and versioned values.

/// A value together with the stamp it was read at (or written with).
template <class T>
struct versioned {
    ///@{
    /// The value and its stamp; equal when both are.
    T value;
    version_stamp stamp;

    friend bool operator==(const versioned&, const versioned&) = default;
    ///@}
};

template <class T>
versioned(T, version_stamp) -> versioned<T>;

// ---------------------------------------------------------------------------
// Write outcomes.

/// What a conditional write found. Exhaustive: switch on it without a default.
enum class [[nodiscard]] write_outcome{
    applied,   ///< the write took effect
    conflict,  ///< the key's stamp is not the expected one (insert: the key exists); nothing
               ///< changed
    missing,   ///< the key is absent; nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(write_outcome outcome) noexcept {
    switch (outcome) {
    case write_outcome::applied: return "applied";
    case write_outcome::conflict: return "conflict";
    case write_outcome::missing: return "missing";
    }
    return "unknown settle::write_outcome";
}

/// What insert, compare_and_set and erase return.
///   applied:  stamp() is the key's new stamp (erase: the stamp of the row it removed).
///   conflict: stamp() is the key's current stamp; current_value() holds the
///             current value when the backend could return it cheaply.
///   missing:  stamp() is version_stamp(0); current_value() is empty.
template <class T>
class [[nodiscard]] write_result {
public:
    ///@{
    /// A result for each outcome; the outcome and one test for each of its values (true when
    /// applied); the stamp; the value stored now, on a conflict.
    [[nodiscard]] static constexpr write_result applied(version_stamp stamp) noexcept {
        return write_result(write_outcome::applied, stamp, std::nullopt);
    }
    [[nodiscard]] static constexpr write_result conflict(version_stamp current,
                                                         std::optional<T> current_value = {}) {
        return write_result(write_outcome::conflict, current, std::move(current_value));
    }
    [[nodiscard]] static constexpr write_result missing() noexcept {
        return write_result(write_outcome::missing, version_stamp(0), std::nullopt);
    }

    [[nodiscard]] constexpr write_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] constexpr bool is_applied() const noexcept {
        return outcome_ == write_outcome::applied;
    }
    [[nodiscard]] constexpr bool is_conflict() const noexcept {
        return outcome_ == write_outcome::conflict;
    }
    [[nodiscard]] constexpr bool is_missing() const noexcept {
        return outcome_ == write_outcome::missing;
    }
    constexpr explicit operator bool() const noexcept { return is_applied(); }
    [[nodiscard]] constexpr version_stamp stamp() const noexcept { return stamp_; }
    [[nodiscard]] constexpr const std::optional<T>& current_value() const& noexcept {
        return current_;
    }
    [[nodiscard]] constexpr std::optional<T>&& current_value() && noexcept {
        return std::move(current_);
    }
    ///@}

private:
    constexpr write_result(
        write_outcome outcome, version_stamp stamp,
        std::optional<T> current) noexcept(std::is_nothrow_move_constructible_v<T>)
        : outcome_(outcome), stamp_(stamp), current_(std::move(current)) {}

    write_outcome outcome_;
    version_stamp stamp_;
    std::optional<T> current_;
};

namespace detail {

// An operation that reads, decides and compare-and-sets within one transaction
// starts again when the write meets a newer stamp. That happens only when
// another transaction committed in between, so a record that changes under it
// this often means a backend whose reads do not see committed writes (an
// isolation level above read committed), not contention: it is reported
// instead of looping for ever.
inline constexpr int max_conflict_passes = 64;

inline void count_conflict(int passes, const char* operation) {
    if (passes + 1 >= max_conflict_passes) {
        throw settle::error(
            errc::backend_failure,
            std::string(operation) + ": the record changed under every compare-and-set (64 times)");
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Store concepts.

namespace detail {

template <class S>
concept vs_has_types = requires {
    typename S::key_type;
    typename S::value_type;
};
template <class S>
concept vs_has_load = requires(S& s, typename S::transaction& tx, const typename S::key_type& key) {
    { s.load(tx, key) } -> std::same_as<std::optional<versioned<typename S::value_type>>>;
};
template <class S>
concept vs_has_insert = requires(S& s, typename S::transaction& tx, const typename S::key_type& key,
                                 typename S::value_type&& v) {
    { s.insert(tx, key, std::move(v)) } -> std::same_as<write_result<typename S::value_type>>;
};
template <class S>
concept vs_has_compare_and_set = requires(S& s, typename S::transaction& tx,
                                          const typename S::key_type& key, version_stamp expected,
                                          typename S::value_type&& v) {
    {
        s.compare_and_set(tx, key, expected, std::move(v))
        } -> std::same_as<write_result<typename S::value_type>>;
};
template <class S>
concept vs_has_erase = requires(S& s, typename S::transaction& tx, const typename S::key_type& key,
                                version_stamp expected) {
    { s.erase(tx, key, expected) } -> std::same_as<write_result<typename S::value_type>>;
};

}  // namespace detail

/// What a reader of versioned values needs: a settle::atomic_operations store
/// (rollback not needed) with the types and load. A lagging replica is a versioned_reader.
///
///   typename S::key_type, S::value_type
///   s.load(tx, key)   -> std::optional<settle::versioned<value_type>>
template <class S>
concept versioned_reader =
    atomic_operations<S> && detail::vs_has_types<S> && detail::vs_has_load<S>;

/// Storage for versioned values. Every operation runs in the caller's
/// transaction and commits or rolls back with it. Each write is atomic with
/// respect to every other transaction, and returns a write_result<value_type>:
///
///   s.insert(tx, key, value)                    only if the key is absent:
///                                               applied(new stamp) or conflict
///   s.compare_and_set(tx, key, expected, value) only if the key's stamp equals
///                                               expected: applied(new stamp),
///                                               conflict or missing
///   s.erase(tx, key, expected)                  only at the expected stamp:
///                                               applied, conflict or missing
///
/// Guarantees a backend must keep (versioned_store_suite checks them):
/// - a write that does not apply changes nothing;
/// - every applied write gives the key a stamp greater than every stamp it
///   had before, across erase and re-insert too, so a stamp read before an
///   erase can never match the key again;
/// - load sees the transaction's own writes and every committed one.
template <class S>
concept versioned_store = versioned_reader<S> && detail::vs_has_insert<S> &&
    detail::vs_has_compare_and_set<S> && detail::vs_has_erase<S>;

namespace detail {

// One static_assert per requirement, each naming the member, so a backend
// that misses one is told which. Returns whether S is a versioned_reader.
template <class S>
constexpr bool check_versioned_reader() {
    if constexpr (check_atomic_operations<S>()) {
        static_assert(vs_has_types<S>,
                      "settle::versioned_reader: member types `key_type` and `value_type` missing "
                      "(a store names the keys and values it holds)");
        if constexpr (vs_has_types<S>) {
            static_assert(vs_has_load<S>,
                          "settle::versioned_reader: `load(tx, key)` missing or wrong signature; "
                          "expected `std::optional<settle::versioned<value_type>> "
                          "load(transaction&, const key_type&)`");
        }
    }
    return versioned_reader<S>;
}

template <class S>
constexpr bool check_versioned_store() {
    if constexpr (check_versioned_reader<S>()) {
        static_assert(vs_has_insert<S>,
                      "settle::versioned_store: `insert(tx, key, value)` missing or wrong "
                      "signature; expected `settle::write_result<value_type> insert(transaction&, "
                      "const key_type&, value_type&&)`");
        static_assert(vs_has_compare_and_set<S>,
                      "settle::versioned_store: `compare_and_set(tx, key, expected, value)` "
                      "missing or wrong signature; expected `settle::write_result<value_type> "
                      "compare_and_set(transaction&, const key_type&, settle::version_stamp, "
                      "value_type&&)`");
        static_assert(vs_has_erase<S>,
                      "settle::versioned_store: `erase(tx, key, expected)` missing or wrong "
                      "signature; expected `settle::write_result<value_type> erase(transaction&, "
                      "const key_type&, settle::version_stamp)`");
    }
    return versioned_store<S>;
}

}  // namespace detail

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_VERSIONED_HPP
