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
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
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
struct undo_entry {
    virtual ~undo_entry() = default;
    virtual void undo() noexcept = 0;
};
template <class F>
struct undo_fn final : undo_entry {
    explicit undo_fn(F f) : fn(std::move(f)) {}
    void undo() noexcept override { fn(); }
    F fn;
};
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
    // Called right after a table changed: remembers how to undo the change,
    // or undoes it at once and rethrows if even that cannot be remembered.
    template <class F>
    void on_rollback(F undo);

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
    // The open transaction's undo log: one transaction is open at a time, so
    // they share it, and its storage outlives each of them.
    std::vector<std::unique_ptr<detail::undo_entry>> undo_;
};

inline void transaction::commit() {
    if (!open()) {
        throw settle::error(errc::invalid_argument, "memory::transaction: commit after it ended");
    }
    db_->undo_.clear();
    std::exchange(db_, nullptr)->release();
}

template <class F>
void transaction::on_rollback(F undo) {
    std::unique_ptr<detail::undo_entry> entry;
    try {
        entry = std::make_unique<detail::undo_fn<F>>(std::move(undo));
    } catch (...) {
        undo();
        throw;
    }
    try {
        db_->undo_.push_back(std::move(entry));
    } catch (...) {
        entry->undo();
        throw;
    }
}

inline void transaction::rollback() noexcept {
    if (!open()) {
        return;
    }
    auto& log = db_->undo_;
    for (auto undo = log.rbegin(); undo != log.rend(); ++undo) {
        (*undo)->undo();
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
/// writes undoable. Costs one std::map node per row and one small allocation
/// per write for its undo entry; rolling back allocates nothing.
template <class Key, class Value, class Compare = std::less<>>
class table {
public:
    /// A table in the given database.
    explicit table(database& db) : db_(&db) {}
    table(const table&) = delete;
    table& operator=(const table&) = delete;

    /// The row at key, or nullptr. The pointer is valid until the transaction
    /// writes to this table again or ends.
    [[nodiscard]] const Value* find(const transaction& tx, const Key& key) const {
        tx.check(*db_, "find");
        const auto it = rows_.find(key);
        return it == rows_.end() ? nullptr : &it->second;
    }

    /// Inserts the row if the key is absent. Returns whether it did.
    bool insert(transaction& tx, const Key& key, Value value) {
        tx.check(*db_, "insert");
        const auto [it, inserted] = rows_.try_emplace(key, std::move(value));
        if (inserted) {
            tx.on_rollback([this, key] { rows_.erase(key); });
        }
        return inserted;
    }

    /// Inserts the row or replaces the one at key.
    void put(transaction& tx, const Key& key, Value value) {
        tx.check(*db_, "put");
        const auto it = rows_.find(key);
        if (it == rows_.end()) {
            rows_.emplace(key, std::move(value));
            tx.on_rollback([this, key] { rows_.erase(key); });
        } else {
            tx.on_rollback(
                [this, key, old = std::exchange(it->second, std::move(value))]() mutable {
                    rows_.find(key)->second = std::move(old);
                });
        }
    }

    /// Removes the row at key. Returns whether there was one.
    bool erase(transaction& tx, const Key& key) {
        tx.check(*db_, "erase");
        const auto it = rows_.find(key);
        if (it == rows_.end()) {
            return false;
        }
        tx.on_rollback(
            [this, node = rows_.extract(it)]() mutable { rows_.insert(std::move(node)); });
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
    database* db_;
    std::map<Key, Value, Compare> rows_;
};

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_DATABASE_HPP
