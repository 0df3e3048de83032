// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_DATABASE_HPP
#define SETTLE_STORES_MEMORY_DATABASE_HPP

#include <settle/error.hpp>
#include <settle/version.hpp>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

/// The reference in-memory backend: tables that live in a process, with
/// transactions that commit atomically or not at all. Tests and examples use it
/// to show that a business write and its bookkeeping (an outbox append, an
/// inbox mark, a version bump) commit or roll back together; each building
/// block keeps its own memory::table rows in the same database.
///
/// Isolation is the strongest there is: transactions on one database run one at
/// a time (begin() waits for the one before to end), so every transaction sees
/// a state that no other transaction is changing. Nothing survives the process.
namespace memory {

class database;

namespace detail {
// The undo log is split in two: the database lists, in write order, which
// table wrote, and each table keeps how to undo its own writes, typed, in a
// vector it reuses from one transaction to the next. A write then allocates
// nothing for its undo record once the vectors have grown.
class table_log {
public:
    // Undoes this table's newest write that is not yet undone.
    virtual void undo_last() noexcept = 0;
    // Drops this table's undo records: the transaction committed.
    virtual void forget() noexcept = 0;

protected:
    table_log() = default;
    table_log(const table_log&) = default;
    table_log& operator=(const table_log&) = default;
    ~table_log() = default;
};

// Makes room for one more element, growing geometrically, so that the
// push_back that follows does not reallocate.
template <class Vector>
void make_room(Vector& v) {
    if (v.size() == v.capacity()) [[unlikely]] {
        v.reserve(v.empty() ? 16 : v.size() * 2);
    }
}
}  // namespace detail

/// One unit of work on a database. Writes made through it to any table of that
/// database become visible to others only when commit() returns; rollback(),
/// or destroying the transaction while open, undoes them all in reverse order.
/// Holds the database exclusively while open: it stays with the thread that
/// began it, so it is neither copyable nor movable (the database's lock must
/// be released by the thread that took it). begin() returns it by value all
/// the same: `auto tx = db.begin();` constructs it in place.
class transaction {
public:
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction() { rollback(); }

    /// Keeps every write. Precondition: open().
    void commit();
    /// Undoes every write made through this transaction; does nothing if not open().
    void rollback() noexcept;

    /// Whether the transaction is still open (not committed, rolled back or moved from).
    [[nodiscard]] bool open() const noexcept { return db_ != nullptr; }

private:
    friend class database;
    template <class, class, class>
    friend class table;

    explicit transaction(database& db) noexcept : db_(&db) {}
    void check(const database& db, const char* operation) const;
    // Before a table writes: room in the database's log, so that logged()
    // cannot fail once the write is made.
    void prepare_write();
    // Right after a table wrote and kept how to undo it.
    void logged(detail::table_log& table) noexcept;

    database* db_;
};

/// Owns the lock that serialises transactions. Tables name the database they
/// belong to; a table must outlive the transactions that write to it.
class database {
public:
    database() = default;
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    /// Starts a transaction, waiting while another one is open. A thread that
    /// already holds an open transaction on this database gets settle::error
    /// (errc::invalid_argument) instead of a deadlock.
    [[nodiscard]] transaction begin() {
        if (owner_.load(std::memory_order_acquire) == std::this_thread::get_id()) {
            throw settle::error(errc::invalid_argument,
                                "memory::database: this thread already has an open transaction");
        }
        mutex_.lock();
        owner_.store(std::this_thread::get_id(), std::memory_order_release);
        return transaction(*this);
    }

    /// Runs fn(tx) in a new transaction and commits it; if fn throws, rolls back
    /// and rethrows. Returns what fn returns.
    template <class F>
    requires std::invocable<F&, transaction&>
    decltype(auto) transact(F&& fn) {
        transaction tx = begin();
        if constexpr (std::is_void_v<std::invoke_result_t<F&, transaction&>>) {
            std::invoke(fn, tx);
            tx.commit();
        } else {
            decltype(auto) result = std::invoke(fn, tx);
            tx.commit();
            return result;
        }
    }

private:
    friend class transaction;

    void release() noexcept {
        owner_.store(std::thread::id(), std::memory_order_release);
        mutex_.unlock();
    }

    std::mutex mutex_;
    std::atomic<std::thread::id> owner_{};
    // The open transaction's undo log, the tables that wrote in write order:
    // one transaction is open at a time, so they share it, and its storage
    // outlives each of them.
    std::vector<detail::table_log*> undo_;
};

inline void transaction::commit() {
    if (!open()) {
        throw settle::error(errc::invalid_argument, "memory::transaction: commit after it ended");
    }
    for (detail::table_log* table : db_->undo_) {
        table->forget();
    }
    db_->undo_.clear();
    std::exchange(db_, nullptr)->release();
}

inline void transaction::prepare_write() {
    detail::make_room(db_->undo_);
}

inline void transaction::logged(detail::table_log& table) noexcept {
    db_->undo_.push_back(&table);  // cannot reallocate: prepare_write made room
}

inline void transaction::rollback() noexcept {
    if (!open()) {
        return;
    }
    auto& log = db_->undo_;
    for (auto table = log.rbegin(); table != log.rend(); ++table) {
        (*table)->undo_last();
    }
    log.clear();
    std::exchange(db_, nullptr)->release();
}

inline void transaction::check(const database& db, const char* operation) const {
    if (db_ != &db) {
        throw settle::error(errc::invalid_argument,
                            std::string("memory::table::") + operation +
                                (open() ? ": the transaction belongs to another database"
                                        : ": the transaction has ended"));
    }
}

/// Rows of Value keyed by Key, in key order, belonging to one database. Every
/// access names an open transaction of that database (settle::error with
/// errc::invalid_argument otherwise), which is what makes reads consistent and
/// writes undoable. Costs one std::map node per row; a write keeps its undo
/// record in storage the table reuses across transactions (it grows to the
/// largest transaction's writes), so it allocates nothing more once that
/// storage has grown. find and erase also take any key the comparison accepts
/// (with the default std::less<>, a std::string_view for a std::string key),
/// so a lookup need not build a Key. Rolling back allocates nothing.
template <class Key, class Value, class Compare = std::less<>>
class table : private detail::table_log {
    // A key find and erase take: Key, or with a transparent comparison any
    // type it compares with Key.
    template <class K>
    static constexpr bool lookup_key = std::same_as<K, Key> || requires {
        typename Compare::is_transparent;
    };

public:
    /// A table in the given database.
    explicit table(database& db) : db_(&db) {}
    table(const table&) = delete;
    table& operator=(const table&) = delete;

    /// The row at key, or nullptr. The pointer is valid until the row is
    /// erased or the transaction ends.
    [[nodiscard]] const Value* find(const transaction& tx, const Key& key) const {
        return find<Key>(tx, key);
    }
    /// find by anything the table's comparison accepts as a key (a
    /// `std::string_view` for a `std::string` key), without converting it.
    template <class K = Key>
    requires lookup_key<K>
    [[nodiscard]] const Value* find(const transaction& tx, const K& key) const {
        tx.check(*db_, "find");
        const auto it = rows_.find(key);
        return it == rows_.end() ? nullptr : &it->second;
    }

    /// Inserts the row if the key is absent. Returns whether it did.
    bool insert(transaction& tx, const Key& key, Value value) {
        tx.check(*db_, "insert");
        prepare_write(tx);
        const auto [it, inserted] = rows_.try_emplace(key, std::move(value));
        if (inserted) {
            log_.emplace_back(inserted_row{&it->first});
            tx.logged(*this);
        }
        return inserted;
    }

    /// Inserts the row or replaces the one at key.
    void put(transaction& tx, const Key& key, Value value) {
        tx.check(*db_, "put");
        prepare_write(tx);
        const auto it = rows_.lower_bound(key);
        if (it == rows_.end() || rows_.key_comp()(key, it->first)) {
            const auto added = rows_.emplace_hint(it, key, std::move(value));
            log_.emplace_back(inserted_row{&added->first});
            tx.logged(*this);
        } else {
            replace_row(tx, it->second, std::move(value));
        }
    }

    /// Replaces the row `row` with value, as put does, without looking the
    /// key up again. Precondition: `row` is what find returned for this table
    /// in this transaction, and the row has not been erased since.
    void replace(transaction& tx, const Value& row, Value value) {
        tx.check(*db_, "replace");
        prepare_write(tx);
        // The row lives in rows_, which this non-const member may change.
        replace_row(tx, const_cast<Value&>(row), std::move(value));
    }

    /// Removes the row at key. Returns whether there was one.
    bool erase(transaction& tx, const Key& key) { return erase<Key>(tx, key); }
    /// erase by anything the table's comparison accepts as a key, without
    /// converting it.
    template <class K = Key>
    requires lookup_key<K>
    bool erase(transaction& tx, const K& key) {
        tx.check(*db_, "erase");
        const auto it = rows_.find(key);
        if (it == rows_.end()) {
            return false;
        }
        prepare_write(tx);
        log_.emplace_back(erased_row{rows_.extract(it)});
        tx.logged(*this);
        return true;
    }

    /// Calls fn(key, value) for every row in key order; stops early when fn
    /// returns false (fn may also return void). fn must not write to this table.
    template <class F>
    void for_each(const transaction& tx, F&& fn) const {
        tx.check(*db_, "for_each");
        for (const auto& [key, value] : rows_) {
            if constexpr (std::is_void_v<std::invoke_result_t<F&, const Key&, const Value&>>) {
                std::invoke(fn, key, value);
            } else if (!std::invoke(fn, key, value)) {
                return;
            }
        }
    }

    /// The number of rows, as the transaction sees them.
    [[nodiscard]] std::size_t size(const transaction& tx) const {
        tx.check(*db_, "size");
        return rows_.size();
    }

private:
    using rows_type = std::map<Key, Value, Compare>;

    // How to undo one write. A row's node stays where it is while it is in
    // the table, and an erased row's node is kept here and put back, so the
    // pointers stay valid until the write is undone or forgotten.
    struct inserted_row {
        const Key* key;
    };
    struct replaced_row {
        Value* row;
        Value old;
    };
    struct erased_row {
        typename rows_type::node_type node;
    };
    using undo_record = std::variant<inserted_row, replaced_row, erased_row>;

    // Room for one undo record here and one entry in the database's log.
    void prepare_write(transaction& tx) {
        tx.prepare_write();
        detail::make_room(log_);
    }

    // Keeps the old value (moved, or copied if moving could throw) before
    // writing the new one.
    void replace_row(transaction& tx, Value& row, Value value) {
        log_.emplace_back(replaced_row{&row, std::move_if_noexcept(row)});
        tx.logged(*this);
        row = std::move(value);
    }

    void undo_last() noexcept override {
        std::visit(
            [this](auto& record) {
                using record_type = std::remove_reference_t<decltype(record)>;
                if constexpr (std::is_same_v<record_type, inserted_row>) {
                    rows_.erase(rows_.find(*record.key));
                } else if constexpr (std::is_same_v<record_type, replaced_row>) {
                    *record.row = std::move(record.old);
                } else {
                    rows_.insert(std::move(record.node));
                }
            },
            log_.back());
        log_.pop_back();
    }

    void forget() noexcept override { log_.clear(); }

    database* db_;
    rows_type rows_;
    std::vector<undo_record> log_;  // this table's writes in the open transaction
};

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_DATABASE_HPP
