// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_VERSIONED_HPP
#define SETTLE_STORES_MEMORY_VERSIONED_HPP

#include <settle/version.hpp>

#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/stores/memory_database.hpp>
#include <settle/versioned.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace memory {

/// The in-memory settle::versioned_store: versioned rows of T keyed by Key in a
/// memory::database, so a versioned write commits or rolls back with the
/// caller's own rows of that database.
///
/// Stamps come from one counter per table, so every applied write gets a stamp
/// greater than any the table issued before: a key's stamps strictly increase
/// across erase and re-insert. A rolled-back write leaves a gap in the counter,
/// never a reused stamp. A conflict returns the current value with the current
/// stamp (one copy of T).
///
/// Costs: one memory::table lookup per operation, and an undo record per
/// applied write in storage the table reuses, so a compare-and-set allocates
/// nothing unless T's move does; load copies the value. Every operation names
/// an open transaction of the table's database (settle::error with
/// errc::invalid_argument otherwise). T must be copy constructible.
template <class Key, class T, class Compare = std::less<>>
class versioned_table {
    static_assert(std::copy_constructible<T>,
                  "settle::memory::versioned_table: values are copied out by load, so T must be "
                  "copy constructible");

public:
    ///@{
    /// The settle::versioned_store operations on this table (see the concept for what each
    /// guarantees), in transactions of the database it was made with.
    using key_type = Key;
    using value_type = T;
    using transaction = memory::transaction;

    explicit versioned_table(database& db) : db_(&db), rows_(db) {}
    versioned_table(const versioned_table&) = delete;
    versioned_table& operator=(const versioned_table&) = delete;

    /// A new transaction on the table's database (waits for the open one to end).
    [[nodiscard]] transaction begin() { return db_->begin(); }

    [[nodiscard]] std::optional<versioned<T>> load(const transaction& tx, const Key& key) const {
        const row* found = rows_.find(tx, key);
        if (found == nullptr) {
            return std::nullopt;
        }
        return versioned<T>{found->value, found->stamp};
    }
    ///@}

    /// Writes the row only if the key is absent.
    /// A codable key whose encoding is longer than settle::max_key_size is
    /// refused (errc::invalid_argument), as every other backend refuses it.
    [[nodiscard]] write_result<T> insert(transaction& tx, const Key& key, T value) {
        if constexpr (codable<Key>) {
            settle::detail::check_key_size(settle::encode(key).size(),
                                           "memory::versioned_table::insert", "key");
        }
        if (const row* found = rows_.find(tx, key)) {
            return write_result<T>::conflict(found->stamp, found->value);
        }
        const version_stamp stamp = take_stamp();
        rows_.insert(tx, key, row{std::move(value), stamp});
        return write_result<T>::applied(stamp);
    }

    /// Replaces the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> compare_and_set(transaction& tx, const Key& key,
                                                  version_stamp expected, T value) {
        const row* found = rows_.find(tx, key);
        if (found == nullptr) {
            return write_result<T>::missing();
        }
        if (found->stamp != expected) {
            return write_result<T>::conflict(found->stamp, found->value);
        }
        const version_stamp stamp = take_stamp();
        rows_.replace(tx, *found, row{std::move(value), stamp});
        return write_result<T>::applied(stamp);
    }

    /// Removes the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> erase(transaction& tx, const Key& key, version_stamp expected) {
        const row* found = rows_.find(tx, key);
        if (found == nullptr) {
            return write_result<T>::missing();
        }
        if (found->stamp != expected) {
            return write_result<T>::conflict(found->stamp, found->value);
        }
        rows_.erase(tx, key);
        return write_result<T>::applied(expected);
    }

    /// Calls fn(key, const versioned<T>&) for every row in key order.
    template <class F>
    void for_each(const transaction& tx, F&& fn) const {
        rows_.for_each(tx, [&fn](const Key& key, const row& r) {
            std::invoke(fn, key, versioned<T>{r.value, r.stamp});
        });
    }

    /// The number of rows, as the transaction sees them.
    [[nodiscard]] std::size_t size(const transaction& tx) const { return rows_.size(tx); }

private:
    struct row {
        T value;
        version_stamp stamp;
    };

    // Called only after rows_ has checked the transaction, so the counter is
    // touched only while this database is held.
    version_stamp take_stamp() {
        const version_stamp stamp = version_stamp(last_stamp_).next();
        last_stamp_ = stamp.value();
        return stamp;
    }

    database* db_;
    table<Key, row, Compare> rows_;
    std::uint64_t last_stamp_ = 0;
};

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_VERSIONED_HPP
