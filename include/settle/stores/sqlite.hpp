// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_SQLITE_HPP
#define SETTLE_STORES_SQLITE_HPP

// The SQLite backend: every storage concept of settle as tables in a SQLite
// database, so the bookkeeping commits in the same transaction as your own
// rows. Link with -lsqlite3 (3.37 or later: the stores use RETURNING, from
// 3.35, and sqlite3_changes64, from 3.37).
//
//   connection                 owns the sqlite3* (opened here, or adopted)
//   transaction                BEGIN IMMEDIATE ... COMMIT on a connection
//   versioned_table<Key, T>    settle::versioned_store (lease_table, fence_table)
//   idempotency_table          settle::idempotency_store
//   outbox_table, inbox_table  settle::outbox_store, settle::inbox_store
//   barrier_table              settle::barrier_store (try/confirm/cancel)
//   reconcile_table            settle::reconcile_store (reconciliation)
//   saga_table                 settle::saga_store (sagas)
//
// SQLite runs one writing transaction at a time per database file, and every
// transaction here is a writing one (BEGIN IMMEDIATE), so transactions on one
// file run one after another: serializable, with no lost update and no
// deadlock. A transaction that cannot get the file within the busy timeout
// fails with settle::error (errc::unavailable). docs/backends.md has the
// schema and the reasons for it.
//
// Every store keeps its prepared statements (prepared on first use, reused,
// reset after each use), so a hot path never parses SQL. A store holds a
// reference to its connection: use it only while the connection lives (it may
// be destroyed after it). A connection, its transaction and its stores belong
// to one thread at a time; give each thread its own connection.

#include <settle/version.hpp>

#include <settle/barrier.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/lease.hpp>
#include <settle/outbox.hpp>
#include <settle/reconcile.hpp>
#include <settle/saga.hpp>
#include <settle/stores/detail/sql.hpp>
#include <settle/versioned.hpp>

#include <sqlite3.h>

#if SQLITE_VERSION_NUMBER < 3037000
#error "settle/stores/sqlite.hpp needs SQLite 3.37 or later (RETURNING, sqlite3_changes64)"
#endif

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace sqlite {

namespace detail {

// Throws the settle::error for SQLite result `rc`: unavailable when the
// database is busy past the timeout or cannot be opened, backend_failure
// otherwise; the message names the operation, the table and SQLite's message.
[[noreturn]] inline void fail(sqlite3* db, int rc, std::string_view who, std::string_view table) {
    const int primary = rc & 0xff;
    const errc code = primary == SQLITE_BUSY || primary == SQLITE_CANTOPEN ? errc::unavailable
                                                                           : errc::backend_failure;
    std::string message(who);
    if (!table.empty()) {
        message += " on table ";
        message += table;
    }
    message += ": ";
    message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    message += " (SQLite result " + std::to_string(rc) + ")";
    throw settle::error(code, message);
}

// One SQL statement, prepared on first use on the given connection and kept
// (SQLITE_PREPARE_PERSISTENT) until destroyed. Move-only.
class statement {
public:
    explicit statement(std::string sql) : sql_(std::move(sql)) {}
    statement(statement&& other) noexcept
        : sql_(std::move(other.sql_)), prepared_(std::exchange(other.prepared_, nullptr)) {}
    statement& operator=(statement&&) = delete;
    ~statement() { sqlite3_finalize(prepared_); }

    [[nodiscard]] sqlite3_stmt* prepared(sqlite3* db, std::string_view who,
                                         std::string_view table) {
        if (prepared_ == nullptr) {
            const int rc = sqlite3_prepare_v3(db, sql_.c_str(), static_cast<int>(sql_.size() + 1),
                                              SQLITE_PREPARE_PERSISTENT, &prepared_, nullptr);
            if (rc != SQLITE_OK) {
                sqlite3_finalize(std::exchange(prepared_, nullptr));
                fail(db, rc, who, table);
            }
        }
        return prepared_;
    }

private:
    std::string sql_;
    sqlite3_stmt* prepared_ = nullptr;
};

// A statement in use: binds, steps and reads columns; resets the statement
// and clears its bindings when destroyed. Bound text and bytes are not
// copied: they must outlive the last step.
class running {
public:
    running(sqlite3* db, statement& s, std::string_view who, std::string_view table)
        : db_(db), stmt_(s.prepared(db, who, table)), who_(who), table_(table) {}
    running(const running&) = delete;
    running& operator=(const running&) = delete;
    ~running() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

    void bind(int index, std::int64_t value) { check(sqlite3_bind_int64(stmt_, index, value)); }
    void bind(int index, std::span<const std::byte> value) {
        check(value.empty()
                  ? sqlite3_bind_zeroblob(stmt_, index, 0)
                  : sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_STATIC));
    }
    void bind(int index, std::string_view value) {
        check(value.empty() ? sqlite3_bind_text(stmt_, index, "", 0, SQLITE_STATIC)
                            : sqlite3_bind_text64(stmt_, index, value.data(), value.size(),
                                                  SQLITE_STATIC, SQLITE_UTF8));
    }
    void bind_null(int index) { check(sqlite3_bind_null(stmt_, index)); }

    // One step: true with a row to read, false when done; throws on an error.
    [[nodiscard]] bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) {
            return true;
        }
        if (rc != SQLITE_DONE) {
            fail(db_, rc, who_, table_);
        }
        return false;
    }
    [[noreturn]] void raise(int rc) const { fail(db_, rc, who_, table_); }

    [[nodiscard]] bool is_null(int column) const noexcept {
        return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
    }
    [[nodiscard]] std::int64_t integer(int column) const noexcept {
        return sqlite3_column_int64(stmt_, column);
    }
    [[nodiscard]] std::span<const std::byte> blob(int column) const noexcept {
        const void* data = sqlite3_column_blob(stmt_, column);
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
        return {static_cast<const std::byte*>(data), data == nullptr ? 0 : size};
    }
    [[nodiscard]] std::string text(int column) const {
        const unsigned char* data = sqlite3_column_text(stmt_, column);
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
        return data == nullptr ? std::string()
                               : std::string(reinterpret_cast<const char*>(data), size);
    }
    // Rows the last INSERT, UPDATE or DELETE changed.
    [[nodiscard]] std::int64_t changes() const noexcept { return sqlite3_changes64(db_); }
    // The rowid of the row the last INSERT inserted (not one a trigger inserted).
    [[nodiscard]] std::int64_t last_rowid() const noexcept {
        return sqlite3_last_insert_rowid(db_);
    }

private:
    void check(int rc) const {
        if (rc != SQLITE_OK) {
            fail(db_, rc, who_, table_);
        }
    }

    sqlite3* db_;
    sqlite3_stmt* stmt_;
    std::string_view who_;
    std::string_view table_;
};

// A count or limit as a bound integer: values above INT64_MAX saturate.
[[nodiscard]] constexpr std::int64_t saturated(std::uint64_t n) noexcept {
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(n < max ? n : max);
}

}  // namespace detail

/// A SQLite database handle, configured for settle: journal_mode=WAL (readers
/// do not block the writer), a busy timeout (how long a transaction waits for
/// another connection's write transaction before errc::unavailable), and
/// foreign keys on. Owns the handle: closes it when destroyed (sqlite3_close_v2,
/// so a store destroyed later still finalizes its statements safely). Neither
/// copyable nor movable: stores and transactions refer to it.
class connection {
public:
    /// How long a transaction waits for another connection's write, unless told otherwise.
    static constexpr std::chrono::milliseconds default_busy_timeout{5000};

    /// Opens (creating if need be) the database file at `path`. Throws
    /// settle::error: unavailable if it cannot be opened, backend_failure if
    /// it cannot be configured.
    explicit connection(const std::string& path,
                        std::chrono::milliseconds busy_timeout = default_busy_timeout) {
        sqlite3* db = nullptr;
        const int rc =
            sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
        if (rc != SQLITE_OK) {
            const std::string who = "sqlite::connection: opening \"" + path + "\"";
            try {
                detail::fail(db, rc, who, {});
            } catch (...) {
                sqlite3_close_v2(db);
                throw;
            }
        }
        adopt(db, busy_timeout);
    }

    /// Takes ownership of a handle the caller opened, and configures it as
    /// above; the handle is closed if that fails. A null handle throws
    /// errc::invalid_argument.
    explicit connection(sqlite3* handle,
                        std::chrono::milliseconds busy_timeout = default_busy_timeout) {
        if (handle == nullptr) {
            throw settle::error(errc::invalid_argument, "sqlite::connection: the handle is null");
        }
        adopt(handle, busy_timeout);
    }

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Closes the handle; a transaction still open on it is rolled back.
    ~connection() { sqlite3_close_v2(db_); }

    /// The sqlite3 handle, for your own SQL.
    [[nodiscard]] sqlite3* native() const noexcept { return db_; }

private:
    friend class transaction;

    void adopt(sqlite3* db, std::chrono::milliseconds busy_timeout) {
        db_ = db;
        try {
            const auto ms = std::clamp<std::chrono::milliseconds::rep>(
                busy_timeout.count(), 0, std::numeric_limits<int>::max());
            int rc = sqlite3_busy_timeout(db_, static_cast<int>(ms));
            if (rc == SQLITE_OK) {
                rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON", nullptr,
                                  nullptr, nullptr);
            }
            if (rc != SQLITE_OK) {
                detail::fail(db_, rc, "sqlite::connection: configuring the connection", {});
            }
        } catch (...) {
            sqlite3_close_v2(db_);
            throw;
        }
    }

    sqlite3* db_ = nullptr;
    bool busy_ = false;  // a settle transaction object is open on it
};

/// A write transaction on a connection: BEGIN IMMEDIATE when constructed, so
/// it holds the database's one write lock from the start (a read never has to
/// upgrade, so two transactions cannot deadlock). Run your own SQL on
/// native(); settle's stores join it when you pass it to them. Destroying it
/// open rolls it back. Movable (the moved-from one is ended), not copyable.
/// It must end (commit, rollback or destruction) before its connection is
/// destroyed, and before another begins on the connection: the connection
/// counts it open until then, even if it ended without this object (COMMIT or
/// ROLLBACK run on native(), or an error after which SQLite rolled it back),
/// so that it never acts on a newer transaction.
class transaction {
public:
    /// Begins. Throws settle::error: invalid_argument if the connection is
    /// already in a transaction (a settle one, or one of your own),
    /// unavailable if another connection's write transaction outlasts the
    /// busy timeout, backend_failure otherwise.
    explicit transaction(connection& on) : conn_(&on) {
        if (on.busy_ || sqlite3_get_autocommit(on.native()) == 0) {
            throw settle::error(errc::invalid_argument,
                                "sqlite::transaction: the connection is already in a transaction");
        }
        run("BEGIN IMMEDIATE", "sqlite::transaction: BEGIN IMMEDIATE");
        on.busy_ = true;
        open_ = true;
    }

    /// Takes over the other transaction, which is ended.
    transaction(transaction&& other) noexcept
        : conn_(other.conn_), open_(std::exchange(other.open_, false)) {}
    transaction& operator=(transaction&&) = delete;

    ~transaction() { rollback(); }

    /// Commits; afterwards !open(), whether it succeeded or not (a failed
    /// commit is rolled back). Throws settle::error: invalid_argument if the
    /// transaction has ended (also when it ended without this object: COMMIT
    /// or ROLLBACK run on native(), or an error after which SQLite rolled it
    /// back), unavailable or backend_failure if SQLite refuses the commit.
    void commit() {
        if (!open_) {
            throw settle::error(errc::invalid_argument,
                                "sqlite::transaction::commit: the transaction has ended");
        }
        end();
        if (sqlite3_get_autocommit(native()) != 0) {
            throw settle::error(errc::invalid_argument,
                                "sqlite::transaction::commit: the transaction ended without "
                                "this object (COMMIT or ROLLBACK on native(), or an error after "
                                "which SQLite rolled it back)");
        }
        try {
            run("COMMIT", "sqlite::transaction::commit");
        } catch (...) {
            if (sqlite3_get_autocommit(native()) == 0) {
                (void)sqlite3_exec(native(), "ROLLBACK", nullptr, nullptr, nullptr);
            }
            throw;
        }
    }

    /// Rolls back if still open; never throws.
    void rollback() noexcept {
        if (open_) {
            end();
            if (sqlite3_get_autocommit(native()) == 0) {
                (void)sqlite3_exec(native(), "ROLLBACK", nullptr, nullptr, nullptr);
            }
        }
    }

    /// Whether the transaction is still open (not committed, rolled back or moved from).
    [[nodiscard]] bool open() const noexcept { return open_; }
    /// The connection's handle, for your own statements in this transaction.
    [[nodiscard]] sqlite3* native() const noexcept { return conn_->native(); }

private:
    // Marks this object, and the connection, as out of a transaction.
    void end() noexcept {
        open_ = false;
        conn_->busy_ = false;
    }

    // BEGIN, COMMIT and ROLLBACK are parsed each time (sqlite3_exec): a few
    // microseconds per transaction, next to the fsync of a commit.
    void run(const char* sql, std::string_view who) const {
        const int rc = sqlite3_exec(native(), sql, nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) {
            detail::fail(native(), rc, who, {});
        }
    }

    connection* conn_;
    bool open_ = false;
};

namespace detail {

// What every store shares: its connection, its validated table name, the
// check that a transaction is open on that connection, and begin().
class table_base {
public:
    using transaction = sqlite::transaction;

    // A new transaction on the store's connection.
    [[nodiscard]] transaction begin() { return transaction(*conn_); }

    // The table name as given (validated).
    [[nodiscard]] const std::string& table_name() const noexcept { return name_; }

protected:
    table_base(connection& conn, std::string_view name, const char* who)
        : conn_(&conn), quoted_(settle::detail::quoted_sql_identifier(name, who)), name_(name) {}

    // The connection's handle, once tx is checked: open, and on this store's
    // connection. Throws settle::error (errc::invalid_argument) otherwise.
    [[nodiscard]] sqlite3* joined(const transaction& tx, std::string_view who) const {
        if (tx.native() != conn_->native()) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) + ": the transaction is on another connection");
        }
        if (!tx.open() || sqlite3_get_autocommit(tx.native()) != 0) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) + ": the transaction has ended");
        }
        return tx.native();
    }

    // The name of this table's index `suffix`, quoted: "<table>:<suffix>".
    // A validated table name holds no ':', so no other settle table, nor
    // another settle table's index, can have this name.
    [[nodiscard]] std::string index_name(std::string_view suffix) const {
        return '"' + name_ + ':' + std::string(suffix) + '"';
    }

    // Runs the (idempotent) schema in tx.
    void apply(const transaction& tx, const std::string& ddl, std::string_view who) const {
        sqlite3* db = joined(tx, who);
        const int rc = sqlite3_exec(db, ddl.c_str(), nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) {
            fail(db, rc, who, name_);
        }
    }

    connection* conn_;
    std::string quoted_;
    std::string name_;
};

}  // namespace detail

// ---------------------------------------------------------------------------
// Versioned values

/// settle::versioned_store in a SQLite table: Key and T are stored encoded by
/// settle::codec (keys are equal when their encodings are). Schema:
///
///     stamp  INTEGER PRIMARY KEY AUTOINCREMENT   the row's version stamp
///     key    BLOB NOT NULL UNIQUE
///     value  BLOB NOT NULL
///
/// Every applied write inserts a new row (compare-and-set replaces the row), so
/// its stamp is a fresh AUTOINCREMENT rowid: greater than any the table ever
/// issued, across erase and re-insert, even of its last row (SQLite keeps the
/// high-water mark in sqlite_sequence). A rolled-back write's stamp may be
/// issued again, since it never became visible. Stamps stop at 2^63 - 1.
/// A conflict returns the current value (one decode).
///
/// Costs: load is one indexed SELECT; insert and erase one statement when they
/// apply, compare-and-set one; a write that does not apply adds a SELECT.
/// Stored bytes that do not decode throw settle::error (errc::decode_failed),
/// leaving the row as it was.
template <class Key, class T>
requires codable<Key> && codable<T>
class versioned_table : public detail::table_base {
public:
    ///@{
    /// The key and value types; a table of the given name on the connection; its schema (ddl(), and
    /// create_tables() runs it in the caller's transaction); and the settle::versioned_store
    /// operations (see the concept for what each guarantees).
    using key_type = Key;
    using value_type = T;

    // Throws settle::error (errc::invalid_argument) if table_name is not a
    // plain identifier. Touches no table until first used.
    versioned_table(connection& conn, std::string_view table_name)
        : table_base(conn, table_name, "sqlite::versioned_table"),
          load_("SELECT stamp, value FROM " + quoted_ + " WHERE key = ?1"),
          insert_("INSERT INTO " + quoted_ +
                  " (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING RETURNING stamp"),
          replace_("INSERT OR REPLACE INTO " + quoted_ + " (key, value) SELECT ?1, ?3 WHERE " +
                   "EXISTS (SELECT 1 FROM " + quoted_ +
                   " WHERE key = ?1 AND stamp = ?2) RETURNING stamp"),
          erase_("DELETE FROM " + quoted_ + " WHERE key = ?1 AND stamp = ?2") {}

    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + quoted_ +
               " (stamp INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL UNIQUE, value BLOB "
               "NOT NULL);";
    }
    void create_tables(transaction& tx) const {
        apply(tx, ddl(), "sqlite::versioned_table::create_tables");
    }

    [[nodiscard]] std::optional<versioned<T>> load(transaction& tx, const Key& key) {
        const bytes k = settle::encode(key);
        return current(tx, k, "sqlite::versioned_table::load");
    }

    // Writes the row only if the key is absent.
    [[nodiscard]] write_result<T> insert(transaction& tx, const Key& key, T value) {
        constexpr std::string_view who = "sqlite::versioned_table::insert";
        const bytes k = settle::encode(key);
        settle::detail::check_key_size(k.size(), who, "key");
        const bytes v = settle::encode(value);
        {
            detail::running s(joined(tx, who), insert_, who, name_);
            s.bind(1, k);
            s.bind(2, v);
            if (s.step()) {
                return write_result<T>::applied(stamp_of(s.integer(0)));
            }
        }
        return not_applied(tx, k, who);
    }

    // Replaces the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> compare_and_set(transaction& tx, const Key& key,
                                                  version_stamp expected, T value) {
        constexpr std::string_view who = "sqlite::versioned_table::compare_and_set";
        const bytes k = settle::encode(key);
        const bytes v = settle::encode(value);
        {
            detail::running s(joined(tx, who), replace_, who, name_);
            s.bind(1, k);
            s.bind(2, static_cast<std::int64_t>(expected.value()));
            s.bind(3, v);
            if (s.step()) {
                return write_result<T>::applied(stamp_of(s.integer(0)));
            }
        }
        return not_applied(tx, k, who);
    }

    // Removes the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> erase(transaction& tx, const Key& key, version_stamp expected) {
        constexpr std::string_view who = "sqlite::versioned_table::erase";
        const bytes k = settle::encode(key);
        {
            detail::running s(joined(tx, who), erase_, who, name_);
            s.bind(1, k);
            s.bind(2, static_cast<std::int64_t>(expected.value()));
            (void)s.step();
            if (s.changes() == 1) {
                return write_result<T>::applied(expected);
            }
        }
        return not_applied(tx, k, who);
    }
    ///@}

private:
    static version_stamp stamp_of(std::int64_t rowid) noexcept {
        return version_stamp(static_cast<version_stamp::rep>(rowid));
    }

    std::optional<versioned<T>> current(const transaction& tx, const bytes& k,
                                        std::string_view who) {
        detail::running s(joined(tx, who), load_, who, name_);
        s.bind(1, k);
        if (!s.step()) {
            return std::nullopt;
        }
        return versioned<T>{settle::decode<T>(s.blob(1)), stamp_of(s.integer(0))};
    }

    // A write that did not apply: missing or conflict, with the current row.
    write_result<T> not_applied(const transaction& tx, const bytes& k, std::string_view who) {
        std::optional<versioned<T>> found = current(tx, k, who);
        if (!found) {
            return write_result<T>::missing();
        }
        return write_result<T>::conflict(found->stamp, std::move(found->value));
    }

    detail::statement load_;
    detail::statement insert_;
    detail::statement replace_;
    detail::statement erase_;
};

/// The lease store (settle::leases): lease records in a versioned table.
template <class Key>
using lease_table = versioned_table<Key, lease_record>;

/// The fence store (settle::fence): the highest token seen per resource, in
/// the same database as the rows it protects.
template <class Key>
using fence_table = versioned_table<Key, fencing_token>;

// ---------------------------------------------------------------------------
// Idempotency records

/// settle::idempotency_store in a SQLite table. Schema:
///
///     token            INTEGER PRIMARY KEY AUTOINCREMENT   the claim's fencing token
///     tenant, operation, key   TEXT NOT NULL, UNIQUE together
///     state            TEXT: 'in_progress' or 'completed'
///     fingerprint      BLOB, 32 bytes
///     claimed_at, expires_at   INTEGER: Unix microseconds (settle::stored_time)
///     response         BLOB, response_status INTEGER (NULL: none)
///     index on expires_at, for purge
///
/// A claim that takes a key (new, or over an expired record) inserts a new row,
/// so its token is a fresh AUTOINCREMENT rowid: greater than every token the
/// table ever issued, even after purge. Tokens stop at 2^63 - 1.
///
/// Costs: claim is an indexed SELECT plus, when it takes the key, one INSERT;
/// complete and abandon one indexed statement; purge one DELETE through the
/// expires_at index. A stored record that does not decode throws settle::error
/// (errc::decode_failed) and stays as it was, except that claim takes over an
/// expired one: it reads expires_at alone before decoding the rest.
class idempotency_table : public detail::table_base {
public:
    /// Throws settle::error (errc::invalid_argument) if table_name is not a
    /// plain identifier. Touches no table until first used.
    idempotency_table(connection& conn, std::string_view table_name)
        : table_base(conn, table_name, "sqlite::idempotency_table"),
          find_(
              "SELECT token, state, fingerprint, claimed_at, expires_at, response, "
              "response_status FROM " +
              quoted_ + " WHERE tenant = ?1 AND operation = ?2 AND key = ?3"),
          claim_("INSERT OR REPLACE INTO " + quoted_ +
                 " (tenant, operation, key, state, fingerprint, claimed_at, expires_at, response, "
                 "response_status) VALUES (?1, ?2, ?3, 'in_progress', ?4, ?5, ?6, x'', NULL) "
                 "RETURNING token"),
          complete_("UPDATE " + quoted_ +
                    " SET state = 'completed', expires_at = ?5, response = ?6, response_status = "
                    "?7 WHERE tenant = ?1 AND operation = ?2 AND key = ?3 AND token = ?4 AND "
                    "state = 'in_progress'"),
          abandon_("DELETE FROM " + quoted_ +
                   " WHERE tenant = ?1 AND operation = ?2 AND key = ?3 AND token = ?4 AND state "
                   "= 'in_progress'"),
          purge_("DELETE FROM " + quoted_ + " WHERE token IN (SELECT token FROM " + quoted_ +
                 " WHERE expires_at <= ?1 LIMIT ?2)") {}

    ///@{
    /// The table's schema (ddl(), and create_tables() runs it in the caller's transaction), and the
    /// settle::idempotency_store operations (see the concept for what each guarantees).
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + quoted_ +
               " (token INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, operation TEXT "
               "NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('in_progress', "
               "'completed')), fingerprint BLOB NOT NULL, claimed_at INTEGER NOT NULL, expires_at "
               "INTEGER NOT NULL, response BLOB NOT NULL, response_status INTEGER, UNIQUE "
               "(tenant, operation, key));\nCREATE INDEX IF NOT EXISTS " +
               index_name("expires") + " ON " + quoted_ + " (expires_at);";
    }
    void create_tables(transaction& tx) const {
        apply(tx, ddl(), "sqlite::idempotency_table::create_tables");
    }

    [[nodiscard]] idempotency_store_claim claim(transaction& tx, const idempotency_scope& scope,
                                                const idempotency_key& key,
                                                const sha256_digest& fingerprint, stored_time now,
                                                stored_time lease_end) {
        constexpr std::string_view who = "sqlite::idempotency_table::claim";
        settle::detail::check_key_size(scope.tenant.size(), who, "tenant");
        settle::detail::check_key_size(scope.operation.size(), who, "operation");
        {
            // Liveness from expires_at alone: an expired row is taken over
            // even if the rest of it does not decode.
            detail::running found(joined(tx, who), find_, who, name_);
            if (select_row(found, scope, key) &&
                now < settle::detail::from_sql_micros(found.integer(4))) {
                return {false, record_of(found)};
            }
        }
        detail::running s(joined(tx, who), claim_, who, name_);
        s.bind(1, scope.tenant);
        s.bind(2, scope.operation);
        s.bind(3, key.value());
        s.bind(4, std::as_bytes(std::span(fingerprint.bytes())));
        s.bind(5, settle::detail::to_sql_micros(now));
        s.bind(6, settle::detail::to_sql_micros(lease_end));
        if (!s.step()) {
            s.raise(SQLITE_INTERNAL);
        }
        return {true, idempotency_record{idempotency_state::in_progress,
                                         fingerprint,
                                         fencing_token(static_cast<std::uint64_t>(s.integer(0))),
                                         now,
                                         lease_end,
                                         {}}};
    }

    [[nodiscard]] fenced_write complete(transaction& tx, const idempotency_scope& scope,
                                        const idempotency_key& key, fencing_token token,
                                        idempotency_response response, stored_time retain_until) {
        constexpr std::string_view who = "sqlite::idempotency_table::complete";
        detail::running s(joined(tx, who), complete_, who, name_);
        bind_row(s, scope, key, token);
        s.bind(5, settle::detail::to_sql_micros(retain_until));
        s.bind(6, response.body);
        if (response.status) {
            s.bind(7, std::int64_t{*response.status});
        } else {
            s.bind_null(7);
        }
        (void)s.step();
        return s.changes() == 1 ? fenced_write::applied : fenced_write::stale;
    }

    [[nodiscard]] fenced_write abandon(transaction& tx, const idempotency_scope& scope,
                                       const idempotency_key& key, fencing_token token) {
        constexpr std::string_view who = "sqlite::idempotency_table::abandon";
        detail::running s(joined(tx, who), abandon_, who, name_);
        bind_row(s, scope, key, token);
        (void)s.step();
        return s.changes() == 1 ? fenced_write::applied : fenced_write::stale;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time now, std::size_t limit) {
        constexpr std::string_view who = "sqlite::idempotency_table::purge";
        if (limit == 0) {
            return 0;
        }
        detail::running s(joined(tx, who), purge_, who, name_);
        s.bind(1, settle::detail::to_sql_micros(now));
        s.bind(2, detail::saturated(limit));
        (void)s.step();
        return static_cast<std::size_t>(s.changes());
    }
    ///@}

    /// The record stored for (scope, key), live or not, or nullopt. For
    /// inspection and tests; the guard never needs it.
    [[nodiscard]] std::optional<idempotency_record> find(transaction& tx,
                                                         const idempotency_scope& scope,
                                                         const idempotency_key& key) {
        constexpr std::string_view who = "sqlite::idempotency_table::find";
        detail::running s(joined(tx, who), find_, who, name_);
        if (!select_row(s, scope, key)) {
            return std::nullopt;
        }
        return record_of(s);
    }

private:
    static void bind_row(detail::running& s, const idempotency_scope& scope,
                         const idempotency_key& key, fencing_token token) {
        s.bind(1, scope.tenant);
        s.bind(2, scope.operation);
        s.bind(3, key.value());
        // A token above INT64_MAX was never issued: it matches no row.
        s.bind(4, static_cast<std::int64_t>(token.value()));
    }

    // Runs find_ (in s) for (scope, key): true with the row to read.
    static bool select_row(detail::running& s, const idempotency_scope& scope,
                           const idempotency_key& key) {
        s.bind(1, scope.tenant);
        s.bind(2, scope.operation);
        s.bind(3, key.value());
        return s.step();
    }

    // The row find_ stands on, decoded.
    static idempotency_record record_of(const detail::running& s) {
        idempotency_record record;
        record.token = fencing_token(static_cast<std::uint64_t>(s.integer(0)));
        const std::string state = s.text(1);
        if (state == "in_progress") {
            record.state = idempotency_state::in_progress;
        } else if (state == "completed") {
            record.state = idempotency_state::completed;
        } else {
            settle::detail::throw_decode_error("sqlite idempotency record",
                                               "unknown state \"" + state + "\"");
        }
        const std::span<const std::byte> fingerprint = s.blob(2);
        if (fingerprint.size() != sha256_digest::byte_size) {
            settle::detail::throw_wrong_size("sqlite idempotency fingerprint",
                                             sha256_digest::byte_size, fingerprint.size());
        }
        sha256_digest::bytes_type digest{};
        std::transform(fingerprint.begin(), fingerprint.end(), digest.begin(),
                       [](std::byte b) { return std::to_integer<std::uint8_t>(b); });
        record.fingerprint = sha256_digest(digest);
        record.claimed_at = settle::detail::from_sql_micros(s.integer(3));
        record.expires_at = settle::detail::from_sql_micros(s.integer(4));
        const std::span<const std::byte> body = s.blob(5);
        record.response.body.assign(body.begin(), body.end());
        if (!s.is_null(6)) {
            const std::int64_t status = s.integer(6);
            if (status < std::numeric_limits<int>::min() ||
                status > std::numeric_limits<int>::max()) {
                settle::detail::throw_decode_error("sqlite idempotency record",
                                                   "the response status is out of range");
            }
            record.response.status = static_cast<int>(status);
        }
        return record;
    }

    detail::statement find_;
    detail::statement claim_;
    detail::statement complete_;
    detail::statement abandon_;
    detail::statement purge_;
};

static_assert(settle::idempotency_store<idempotency_table>);

// ---------------------------------------------------------------------------
// Outbox and inbox

namespace detail {

inline constexpr const char* outbox_columns =
    "id, sequence, topic, ordering_key, payload, headers, created_at, attempts, "
    "next_attempt_at, status, last_error, claim_owner, claim_token, claim_expires_at, finished_at";

}  // namespace detail

/// settle::outbox_appender and settle::outbox_store, with every operator
/// task, in a SQLite table. Schema (the columns of
/// settle::outbox_record; times are BIGINT Unix microseconds, 0 for none):
///
///     sequence  INTEGER PRIMARY KEY AUTOINCREMENT   never reused, even after purge
///     id        BLOB NOT NULL UNIQUE, 16 bytes
///     topic, ordering_key ('' for none), payload, headers (BLOB, see above),
///     created_at, attempts, next_attempt_at, status (TEXT), last_error,
///     claim_owner, claim_token, claim_expires_at, finished_at
///     indexes: <name>:due (next_attempt_at, sequence) of pending and in-flight
///              records, for claim; <name>:key (ordering_key, sequence) of
///              undelivered records, for the ordering check; <name>:done
///              (finished_at) of delivered records, for purge; <name>:dead
///              (sequence) of dead letters, for dead_letters and statistics
///
/// Appends run in write transactions, one at a time per database, so sequences
/// are assigned in commit order: a record never becomes visible before an older
/// one of its ordering key, with no locking of your own. A claim is one
/// UPDATE ... RETURNING over the due index, raising each record's claim_token
/// by one; each outcome one UPDATE by id, applied only while the record is in
/// flight under the outcome's token (a batch's deliveries: one UPDATE ... FROM
/// the list of claims per 256; with outbox_retention::delete_on_delivery, a
/// DELETE instead, under the same check). An append is one INSERT, no RETURNING: its
/// sequence is the rowid SQLite reports.
/// statistics reads every pending and in-flight record. A stored record that
/// does not decode throws settle::error (errc::decode_failed).
class outbox_table : public detail::table_base {
public:
    /// Throws settle::error (errc::invalid_argument) if table_name is not a
    /// plain identifier. Touches no table until first used.
    /// With outbox_retention::delete_on_delivery, mark_delivered deletes the
    /// row (DELETE ... WHERE claim_token = ...) instead of updating it.
    outbox_table(connection& conn, std::string_view table_name,
                 outbox_retention retention = outbox_retention::keep)
        : table_base(conn, table_name, "sqlite::outbox_table"),
          retention_(retention),
          append_(
              "INSERT INTO " + quoted_ +
              " (id, topic, ordering_key, payload, headers, created_at, next_attempt_at, "
              "status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 'pending') ON CONFLICT (id) DO NOTHING"),
          claim_("UPDATE " + quoted_ +
                 " SET status = 'in_flight', claim_owner = ?2, claim_token = claim_token + 1, "
                 "claim_expires_at = ?3, attempts = min(attempts + 1, 4294967295) WHERE sequence "
                 "IN (SELECT o.sequence FROM " +
                 quoted_ +
                 " AS o WHERE o.status IN ('pending', 'in_flight') AND o.next_attempt_at <= ?1 "
                 "AND (o.status = 'pending' OR o.claim_expires_at <= ?1) AND (o.ordering_key = "
                 "'' OR NOT EXISTS (SELECT 1 FROM " +
                 quoted_ +
                 " AS p WHERE p.ordering_key = o.ordering_key AND p.sequence < o.sequence AND "
                 "p.status <> 'delivered')) ORDER BY o.next_attempt_at, o.sequence LIMIT ?4) "
                 "RETURNING " +
                 detail::outbox_columns),
          delivered_(retention == outbox_retention::keep
                         ? outcome("status = 'delivered', finished_at = ?3")
                         : "DELETE FROM " + quoted_ +
                               " WHERE id = ?1 AND status = 'in_flight' AND claim_token = ?2"),
          delivered_together_(delivered_listed()),
          reschedule_(outcome("status = 'pending', next_attempt_at = ?3, last_error = ?4")),
          dead_(outcome("status = 'dead', last_error = ?3, finished_at = ?4")),
          release_(outcome("status = 'pending', attempts = max(attempts - 1, 0)")),
          requeue_("UPDATE " + quoted_ +
                   " SET status = 'pending', attempts = 0, next_attempt_at = ?2, finished_at = 0 "
                   "WHERE id = ?1 AND status = 'dead'"),
          purge_("DELETE FROM " + quoted_ + " WHERE sequence IN (SELECT sequence FROM " + quoted_ +
                 " WHERE status = 'delivered' AND finished_at < ?1 ORDER BY finished_at LIMIT "
                 "?2)"),
          statistics_(
              "SELECT count(*), coalesce(sum(status = 'in_flight' AND claim_expires_at > "
              "?1), 0), min(created_at), (SELECT count(*) FROM " +
              quoted_ + " WHERE status = 'dead') FROM " + quoted_ +
              " WHERE status IN ('pending', 'in_flight')"),
          find_(std::string("SELECT ") + detail::outbox_columns + " FROM " + quoted_ +
                " WHERE id = ?1"),
          dead_letters_(std::string("SELECT ") + detail::outbox_columns + " FROM " + quoted_ +
                        " WHERE status = 'dead' AND sequence > ?1 ORDER BY sequence LIMIT ?2") {}

    ///@{
    /// The table's schema: ddl(), and create_tables() runs it in the caller's transaction.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + quoted_ +
               " (sequence INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE CHECK "
               "(length(id) = 16), topic TEXT NOT NULL, ordering_key TEXT NOT NULL DEFAULT '', "
               "payload BLOB NOT NULL, headers BLOB NOT NULL, created_at INTEGER NOT NULL, "
               "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, status "
               "TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead')), "
               "last_error TEXT NOT NULL DEFAULT '', claim_owner TEXT NOT NULL DEFAULT '', "
               "claim_token INTEGER NOT NULL DEFAULT 0, claim_expires_at INTEGER NOT NULL DEFAULT "
               "0, "
               " finished_at INTEGER NOT NULL "
               "DEFAULT 0);\nCREATE INDEX IF NOT EXISTS " +
               index_name("due") + " ON " + quoted_ +
               " (next_attempt_at, sequence) WHERE status IN ('pending', 'in_flight');\nCREATE "
               "INDEX IF NOT EXISTS " +
               index_name("key") + " ON " + quoted_ +
               " (ordering_key, sequence) WHERE status <> 'delivered';\nCREATE INDEX IF NOT "
               "EXISTS " +
               index_name("done") + " ON " + quoted_ +
               " (finished_at) WHERE status = 'delivered';\nCREATE INDEX IF NOT EXISTS " +
               index_name("dead") + " ON " + quoted_ + " (sequence) WHERE status = 'dead';";
    }
    void create_tables(transaction& tx) const {
        apply(tx, ddl(), "sqlite::outbox_table::create_tables");
    }
    ///@}

    /// A nil id throws settle::error (errc::invalid_argument) and stores
    /// nothing; an id already stored is a duplicate.
    outbox_append_result append(transaction& tx, outbox_message message, stored_time now) {
        constexpr std::string_view who = "sqlite::outbox_table::append";
        if (message.id == uuid{}) {
            throw settle::error(errc::invalid_argument, std::string(who) + ": the id is nil");
        }
        settle::detail::check_key_size(message.ordering_key.size(), who, "ordering key");
        const bytes headers = settle::detail::encode_outbox_headers(message.headers, who.data());
        detail::running s(joined(tx, who), append_, who, name_);
        s.bind(1, std::span<const std::byte>(message.id.bytes()));
        s.bind(2, message.topic);
        s.bind(3, message.ordering_key);
        s.bind(4, message.payload);
        s.bind(5, headers);
        s.bind(6, settle::detail::to_sql_micros(now));
        (void)s.step();
        if (s.changes() == 1) {
            return outbox_append_result::appended(static_cast<std::uint64_t>(s.last_rowid()));
        }
        return outbox_append_result::duplicate();  // ON CONFLICT DO NOTHING inserted nothing
    }

    ///@{
    /// The settle::outbox_store operations (see the concept for what each guarantees), in the
    /// caller's transaction, and what operators read: statistics, one record, the dead letters.
    [[nodiscard]] std::vector<outbox_record> claim(transaction& tx, std::string_view owner,
                                                   stored_time now, stored_time lease_until,
                                                   std::size_t limit) {
        constexpr std::string_view who = "sqlite::outbox_table::claim";
        if (owner.empty()) {
            throw settle::error(errc::invalid_argument, std::string(who) + ": the owner is empty");
        }
        std::vector<outbox_record> claimed;
        if (limit == 0) {
            return claimed;
        }
        detail::running s(joined(tx, who), claim_, who, name_);
        s.bind(1, settle::detail::to_sql_micros(now));
        s.bind(2, owner);
        s.bind(3, settle::detail::to_sql_micros(lease_until));
        s.bind(4, detail::saturated(limit));
        while (s.step()) {
            claimed.push_back(record_of(s));
        }
        // RETURNING gives rows in no particular order.
        std::sort(claimed.begin(), claimed.end(),
                  [](const outbox_record& a, const outbox_record& b) {
                      return std::tie(a.next_attempt_at, a.sequence) <
                             std::tie(b.next_attempt_at, b.sequence);
                  });
        return claimed;
    }

    [[nodiscard]] fenced_write mark_delivered(transaction& tx, const uuid& id, fencing_token token,
                                              stored_time now) {
        constexpr std::string_view who = "sqlite::outbox_table::mark_delivered";
        detail::running s(joined(tx, who), delivered_, who, name_);
        if (retention_ == outbox_retention::keep) {
            s.bind(3, settle::detail::to_sql_micros(now));
        }
        return settle_outcome(s, id, token);
    }

    /// mark_delivered for each of `claims`: one UPDATE ... FROM (or DELETE
    /// ... WHERE (id, claim_token) IN) a list of (id, token) pairs per 256
    /// claims (the statement above for a single
    /// claim); the answers in their order (a claim given twice is applied
    /// once, then stale).
    [[nodiscard]] std::vector<fenced_write> mark_delivered(transaction& tx,
                                                           std::span<const outbox_claim> claims,
                                                           stored_time now) {
        constexpr std::string_view who = "sqlite::outbox_table::mark_delivered";
        if (claims.size() == 1) {
            return {mark_delivered(tx, claims[0].id, claims[0].token, now)};
        }
        sqlite3* db = joined(tx, who);
        std::vector<outbox_claim> issued;  // tokens above INT64_MAX were never issued: stale
        issued.reserve(claims.size());
        for (const outbox_claim& claim : claims) {
            if (claim.token.value() <=
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                issued.push_back(claim);
            }
        }
        std::vector<settle::detail::applied_claim> applied;
        applied.reserve(issued.size());
        for (std::size_t from = 0; from < issued.size(); from += listed_most) {
            const std::size_t n = std::min(issued.size() - from, listed_most);
            std::size_t rank = 0;  // the statement listing 2 << rank claims, the last repeated
            while ((std::size_t{2} << rank) < n) {
                ++rank;
            }
            detail::running s(db, delivered_together_[rank], who, name_);
            if (retention_ == outbox_retention::keep) {
                s.bind(1, settle::detail::to_sql_micros(now));
            }
            for (std::size_t i = 0; i < (std::size_t{2} << rank); ++i) {
                const outbox_claim& claim = issued[from + std::min(i, n - 1)];
                s.bind(static_cast<int>(2 + 2 * i), std::span<const std::byte>(claim.id.bytes()));
                s.bind(static_cast<int>(3 + 2 * i), static_cast<std::int64_t>(claim.token.value()));
            }
            while (s.step()) {
                const std::span<const std::byte> id = s.blob(0);
                if (id.size() != 16) {
                    settle::detail::throw_wrong_size("sqlite outbox id", 16, id.size());
                }
                applied.emplace_back(uuid(id.first<16>()), token_of(s.integer(1)).value());
            }
        }
        return settle::detail::answer_claims(claims, std::move(applied));
    }

    [[nodiscard]] fenced_write reschedule(transaction& tx, const uuid& id, fencing_token token,
                                          std::string_view error, stored_time next_attempt_at) {
        constexpr std::string_view who = "sqlite::outbox_table::reschedule";
        detail::running s(joined(tx, who), reschedule_, who, name_);
        s.bind(3, settle::detail::to_sql_micros(next_attempt_at));
        s.bind(4, error);
        return settle_outcome(s, id, token);
    }

    [[nodiscard]] fenced_write dead_letter(transaction& tx, const uuid& id, fencing_token token,
                                           std::string_view reason, stored_time now) {
        constexpr std::string_view who = "sqlite::outbox_table::dead_letter";
        detail::running s(joined(tx, who), dead_, who, name_);
        s.bind(3, reason);
        s.bind(4, settle::detail::to_sql_micros(now));
        return settle_outcome(s, id, token);
    }

    [[nodiscard]] fenced_write release(transaction& tx, const uuid& id, fencing_token token) {
        constexpr std::string_view who = "sqlite::outbox_table::release";
        detail::running s(joined(tx, who), release_, who, name_);
        return settle_outcome(s, id, token);
    }

    [[nodiscard]] bool requeue(transaction& tx, const uuid& id, stored_time now) {
        constexpr std::string_view who = "sqlite::outbox_table::requeue";
        detail::running s(joined(tx, who), requeue_, who, name_);
        s.bind(1, std::span<const std::byte>(id.bytes()));
        s.bind(2, settle::detail::to_sql_micros(now));
        (void)s.step();
        return s.changes() == 1;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time delivered_before,
                                    std::size_t limit) {
        constexpr std::string_view who = "sqlite::outbox_table::purge";
        if (limit == 0) {
            return 0;
        }
        detail::running s(joined(tx, who), purge_, who, name_);
        s.bind(1, settle::detail::to_sql_micros(delivered_before));
        s.bind(2, detail::saturated(limit));
        (void)s.step();
        return static_cast<std::size_t>(s.changes());
    }

    [[nodiscard]] outbox_statistics statistics(transaction& tx, stored_time now) {
        constexpr std::string_view who = "sqlite::outbox_table::statistics";
        detail::running s(joined(tx, who), statistics_, who, name_);
        s.bind(1, settle::detail::to_sql_micros(now));
        outbox_statistics result;
        if (!s.step()) {
            s.raise(SQLITE_INTERNAL);
        }
        result.backlog = static_cast<std::size_t>(s.integer(0));
        result.in_flight = static_cast<std::size_t>(s.integer(1));
        result.dead = static_cast<std::size_t>(s.integer(3));
        if (!s.is_null(2)) {
            const stored_time oldest = settle::detail::from_sql_micros(s.integer(2));
            if (oldest < now) {
                result.oldest_pending_age = now - oldest;
            }
        }
        return result;
    }

    [[nodiscard]] std::optional<outbox_record> find(transaction& tx, const uuid& id) {
        constexpr std::string_view who = "sqlite::outbox_table::find";
        detail::running s(joined(tx, who), find_, who, name_);
        s.bind(1, std::span<const std::byte>(id.bytes()));
        if (!s.step()) {
            return std::nullopt;
        }
        return record_of(s);
    }

    [[nodiscard]] std::vector<outbox_record> dead_letters(transaction& tx,
                                                          std::uint64_t after_sequence,
                                                          std::size_t limit) {
        constexpr std::string_view who = "sqlite::outbox_table::dead_letters";
        std::vector<outbox_record> result;
        if (limit == 0) {
            return result;
        }
        detail::running s(joined(tx, who), dead_letters_, who, name_);
        s.bind(1, detail::saturated(after_sequence));
        s.bind(2, detail::saturated(limit));
        while (s.step()) {
            result.push_back(record_of(s));
        }
        return result;
    }
    ///@}

private:
    // An outcome: `set`, and the claim cleared, while the record is in
    // flight under the claim whose token is ?2 (the id is ?1).
    [[nodiscard]] std::string outcome(std::string_view set) const {
        return "UPDATE " + quoted_ + " SET " + std::string(set) +
               ", claim_owner = '', claim_expires_at = 0 WHERE id = ?1 AND status = 'in_flight' "
               "AND claim_token = ?2";
    }

    // The most claims one statement of delivered_together_ lists.
    static constexpr std::size_t listed_most = 256;

    // Statement k marks delivered the records in flight under the claims
    // (?2k+2, ?2k+3) of a list of 2 << k (k < 8); ?1 is the time.
    [[nodiscard]] std::vector<detail::statement> delivered_listed() const {
        std::vector<detail::statement> listed;
        std::string pairs = "(?2, ?3)";
        for (std::size_t size = 2; size <= listed_most; size *= 2) {
            for (std::size_t i = size / 2; i < size; ++i) {
                pairs +=
                    ", (?" + std::to_string(2 + 2 * i) + ", ?" + std::to_string(3 + 2 * i) + ')';
            }
            listed.emplace_back(
                retention_ == outbox_retention::keep
                    ? "UPDATE " + quoted_ +
                          " SET status = 'delivered', finished_at = ?1, claim_owner = '', "
                          "claim_expires_at = 0 FROM (VALUES " +
                          pairs +
                          ") AS c WHERE id = c.column1 AND claim_token = c.column2 AND "
                          "status = 'in_flight' RETURNING id, claim_token"
                    : "DELETE FROM " + quoted_ + " WHERE (id, claim_token) IN (VALUES " + pairs +
                          ") AND status = 'in_flight' RETURNING id, claim_token");
        }
        return listed;
    }

    [[nodiscard]] static fenced_write settle_outcome(detail::running& s, const uuid& id,
                                                     fencing_token token) {
        if (token.value() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return fenced_write::stale;  // never issued: claims count up from 1 in a BIGINT
        }
        s.bind(1, std::span<const std::byte>(id.bytes()));
        s.bind(2, static_cast<std::int64_t>(token.value()));
        (void)s.step();
        return s.changes() == 1 ? fenced_write::applied : fenced_write::stale;
    }

    [[nodiscard]] static outbox_record record_of(const detail::running& s) {
        const std::span<const std::byte> id = s.blob(0);
        if (id.size() != 16) {
            settle::detail::throw_wrong_size("sqlite outbox id", 16, id.size());
        }
        const std::span<const std::byte> payload = s.blob(4);
        const std::int64_t attempts = s.integer(7);
        if (attempts < 0 || attempts > std::numeric_limits<std::uint32_t>::max()) {
            settle::detail::throw_decode_error("sqlite outbox record", "attempts is out of range");
        }
        return outbox_record{uuid(id.first<16>()),
                             static_cast<std::uint64_t>(s.integer(1)),
                             s.text(2),
                             s.text(3),
                             bytes(payload.begin(), payload.end()),
                             settle::detail::decode_outbox_headers(s.blob(5)),
                             settle::detail::from_sql_micros(s.integer(6)),
                             static_cast<std::uint32_t>(attempts),
                             settle::detail::from_sql_micros(s.integer(8)),
                             settle::detail::outbox_status_of(s.text(9)),
                             s.text(10),
                             s.text(11),
                             token_of(s.integer(12)),
                             settle::detail::from_sql_micros(s.integer(13)),
                             settle::detail::from_sql_micros(s.integer(14))};
    }

    [[nodiscard]] static fencing_token token_of(std::int64_t stored) {
        if (stored < 0) {
            settle::detail::throw_decode_error("sqlite outbox record", "claim_token is negative");
        }
        return fencing_token(static_cast<std::uint64_t>(stored));
    }

    outbox_retention retention_;
    detail::statement append_;
    detail::statement claim_;
    detail::statement delivered_;
    std::vector<detail::statement> delivered_together_;
    detail::statement reschedule_;
    detail::statement dead_;
    detail::statement release_;
    detail::statement requeue_;
    detail::statement purge_;
    detail::statement statistics_;
    detail::statement find_;
    detail::statement dead_letters_;
};

static_assert(settle::outbox_appender<outbox_table>);
static_assert(settle::outbox_store<outbox_table>);
static_assert(settle::detail::outbox_store_marks_delivered_together<outbox_table>);

/// settle::inbox_store and settle::purgeable_inbox_store in a SQLite table.
/// Schema:
///
///     consumer, message_id   TEXT NOT NULL, the primary key (WITHOUT ROWID)
///     applied_at             INTEGER: Unix microseconds
///     index <name>:purge     (consumer, applied_at), for purge
///
/// mark is one INSERT ... ON CONFLICT DO NOTHING on the primary key; purge one
/// DELETE of one consumer's oldest records through the purge index.
class inbox_table : public detail::table_base {
public:
    /// Throws settle::error (errc::invalid_argument) if table_name is not a
    /// plain identifier. Touches no table until first used.
    inbox_table(connection& conn, std::string_view table_name)
        : table_base(conn, table_name, "sqlite::inbox_table"),
          mark_("INSERT INTO " + quoted_ +
                " (consumer, message_id, applied_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"),
          purge_("DELETE FROM " + quoted_ + " WHERE consumer = ?1 AND message_id IN (SELECT " +
                 "message_id FROM " + quoted_ + " WHERE consumer = ?1 AND applied_at < ?2 " +
                 "LIMIT ?3)") {}

    ///@{
    /// The table's schema (ddl(), and create_tables() runs it in the caller's transaction), and the
    /// settle::inbox_store operations (see the concept for what each guarantees).
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + quoted_ +
               " (consumer TEXT NOT NULL, message_id TEXT NOT NULL, applied_at INTEGER NOT NULL, "
               "PRIMARY KEY (consumer, message_id)) WITHOUT ROWID;\nCREATE INDEX IF NOT EXISTS " +
               index_name("purge") + " ON " + quoted_ + " (consumer, applied_at);";
    }
    void create_tables(transaction& tx) const {
        apply(tx, ddl(), "sqlite::inbox_table::create_tables");
    }

    [[nodiscard]] inbox_mark mark(transaction& tx, std::string_view consumer,
                                  std::string_view message_id, stored_time now) {
        constexpr std::string_view who = "sqlite::inbox_table::mark";
        settle::detail::check_key_size(consumer.size(), who, "consumer");
        settle::detail::check_key_size(message_id.size(), who, "message id");
        detail::running s(joined(tx, who), mark_, who, name_);
        s.bind(1, consumer);
        s.bind(2, message_id);
        s.bind(3, settle::detail::to_sql_micros(now));
        (void)s.step();
        return s.changes() == 1 ? inbox_mark::first_time : inbox_mark::duplicate;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, std::string_view consumer,
                                    stored_time applied_before, std::size_t limit) {
        constexpr std::string_view who = "sqlite::inbox_table::purge";
        if (limit == 0) {
            return 0;
        }
        detail::running s(joined(tx, who), purge_, who, name_);
        s.bind(1, consumer);
        s.bind(2, settle::detail::to_sql_micros(applied_before));
        s.bind(3, detail::saturated(limit));
        (void)s.step();
        return static_cast<std::size_t>(s.changes());
    }
    ///@}

private:
    detail::statement mark_;
    detail::statement purge_;
};

static_assert(settle::purgeable_inbox_store<inbox_table>);

// ---------------------------------------------------------------------------
// Try/confirm/cancel barrier

/// settle::barrier_store and settle::purgeable_barrier_store in a SQLite table.
/// Schema:
///
///     transaction_id, branch_id  TEXT NOT NULL, the primary key (WITHOUT ROWID)
///     state                      TEXT NOT NULL: tried, confirmed, cancelled,
///                                cancel_marker (an empty cancel)
///     changed_at                 INTEGER: Unix microseconds of the last change
///     index <name>:ended         (changed_at), for purge
///
/// A try and a cancel insert first (INSERT ... ON CONFLICT DO NOTHING on the
/// primary key); a confirm, and a cancel that met a record, update the record
/// only while it is tried. A call that changes nothing reads the state once.
/// SQLite runs write transactions one at a time, so no two calls interleave.
class barrier_table : public detail::table_base {
public:
    /// Throws settle::error (errc::invalid_argument) if table_name is not a
    /// plain identifier. Touches no table until first used.
    barrier_table(connection& conn, std::string_view table_name)
        : table_base(conn, table_name, "sqlite::barrier_table"),
          insert_("INSERT INTO " + quoted_ +
                  " (transaction_id, branch_id, state, changed_at) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT DO NOTHING"),
          update_("UPDATE " + quoted_ +
                  " SET state = ?3, changed_at = ?4 WHERE transaction_id = ?1 AND branch_id = ?2 "
                  "AND state = 'tried'"),
          select_("SELECT state FROM " + quoted_ + " WHERE transaction_id = ?1 AND branch_id = ?2"),
          purge_("DELETE FROM " + quoted_ + " WHERE (transaction_id, branch_id) IN (SELECT " +
                 "transaction_id, branch_id FROM " + quoted_ +
                 " WHERE state <> 'tried' AND changed_at < ?1 LIMIT ?2)") {}

    ///@{
    /// The table's schema (ddl(), and create_tables() runs it in the caller's transaction), and the
    /// settle::barrier_store operations (see the concept for what each guarantees).
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + quoted_ +
               " (transaction_id TEXT NOT NULL, branch_id TEXT NOT NULL, state TEXT NOT NULL, "
               "changed_at INTEGER NOT NULL, PRIMARY KEY (transaction_id, branch_id)) "
               "WITHOUT ROWID;\nCREATE INDEX IF NOT EXISTS " +
               index_name("ended") + " ON " + quoted_ + " (changed_at);";
    }
    void create_tables(transaction& tx) const {
        apply(tx, ddl(), "sqlite::barrier_table::create_tables");
    }

    [[nodiscard]] barrier_outcome enter(transaction& tx, std::string_view transaction_id,
                                        std::string_view branch_id, barrier_phase phase,
                                        stored_time now) {
        constexpr std::string_view who = "sqlite::barrier_table::enter";
        settle::detail::check_key_size(transaction_id.size(), who, "transaction id");
        settle::detail::check_key_size(branch_id.size(), who, "branch id");
        sqlite3* db = joined(tx, who);
        using settle::detail::barrier_state;
        if (phase != barrier_phase::confirm) {
            const barrier_state first = phase == barrier_phase::try_phase
                                            ? barrier_state::tried
                                            : barrier_state::cancel_marker;
            if (write(db, insert_, transaction_id, branch_id, first, now)) {
                return settle::detail::step(std::nullopt, phase).outcome;
            }
        }
        if (phase != barrier_phase::try_phase) {
            const barrier_state next = phase == barrier_phase::confirm ? barrier_state::confirmed
                                                                       : barrier_state::cancelled;
            if (write(db, update_, transaction_id, branch_id, next, now)) {
                return barrier_outcome::entered;
            }
        }
        std::optional<barrier_state> state;
        {
            detail::running s(db, select_, who, name_);
            s.bind(1, transaction_id);
            s.bind(2, branch_id);
            if (s.step()) {
                state = settle::detail::barrier_state_from(s.text(0));
                if (!state) {
                    throw settle::error(errc::decode_failed,
                                        std::string(who) + " on table " + name_ +
                                            ": a branch has a state settle does not write");
                }
            }
        }
        const settle::detail::barrier_step step = settle::detail::step(state, phase);
        if (step.next) {
            throw settle::error(errc::aborted,
                                std::string(who) + " on table " + name_ +
                                    ": the branch changed while it was entered; run the "
                                    "transaction again");
        }
        return step.outcome;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time ended_before, std::size_t limit) {
        constexpr std::string_view who = "sqlite::barrier_table::purge";
        if (limit == 0) {
            return 0;
        }
        detail::running s(joined(tx, who), purge_, who, name_);
        s.bind(1, settle::detail::to_sql_micros(ended_before));
        s.bind(2, detail::saturated(limit));
        (void)s.step();
        return static_cast<std::size_t>(s.changes());
    }
    ///@}

private:
    // Runs the insert or the update; returns whether it changed a row.
    bool write(sqlite3* db, detail::statement& statement, std::string_view transaction_id,
               std::string_view branch_id, settle::detail::barrier_state state, stored_time now) {
        constexpr std::string_view who = "sqlite::barrier_table::enter";
        detail::running s(db, statement, who, name_);
        s.bind(1, transaction_id);
        s.bind(2, branch_id);
        s.bind(3, settle::detail::barrier_state_text(state));
        s.bind(4, settle::detail::to_sql_micros(now));
        (void)s.step();
        return s.changes() == 1;
    }

    detail::statement insert_;
    detail::statement update_;
    detail::statement select_;
    detail::statement purge_;
};

static_assert(settle::purgeable_barrier_store<barrier_table>);

// ---------------------------------------------------------------------------
// Reconciliation

/// settle::reconcile_store in a SQLite table. Schema:
///
///     id               TEXT PRIMARY KEY (WITHOUT ROWID)
///     uncertain_since  INTEGER: Unix microseconds
///     unknown_answers  INTEGER
///     next_check_at    INTEGER: Unix microseconds
///     escalated_at     INTEGER, NULL while watched
///     reason           TEXT, why it was escalated
///     index <name>:due (uncertain_since), for due
///
/// watch is one INSERT ... ON CONFLICT DO NOTHING on the key; due one SELECT,
/// longest uncertain first (then by id); forget one DELETE; reschedule and
/// escalate one UPDATE each, of a watched record only.
class reconcile_table : public detail::table_base {
public:
    /// Throws settle::error (errc::invalid_argument) if table_name is not a
    /// plain identifier. Touches no table until first used.
    reconcile_table(connection& conn, std::string_view table_name)
        : table_base(conn, table_name, "sqlite::reconcile_table"),
          watch_("INSERT INTO " + quoted_ +
                 " (id, uncertain_since, unknown_answers, next_check_at) VALUES (?1, ?2, 0, ?2) "
                 "ON CONFLICT DO NOTHING"),
          due_("SELECT id, uncertain_since, unknown_answers, next_check_at FROM " + quoted_ +
               " WHERE escalated_at IS NULL AND uncertain_since < ?1 AND next_check_at <= ?2 "
               "ORDER BY uncertain_since, id LIMIT ?3"),
          forget_("DELETE FROM " + quoted_ + " WHERE id = ?1"),
          reschedule_("UPDATE " + quoted_ +
                      " SET unknown_answers = ?2, next_check_at = ?3 WHERE id = ?1 AND "
                      "escalated_at IS NULL"),
          escalate_("UPDATE " + quoted_ +
                    " SET escalated_at = ?2, reason = ?3 WHERE id = ?1 AND escalated_at IS NULL") {}

    ///@{
    /// The table's schema (ddl(), and create_tables() runs it in the caller's transaction), and the
    /// settle::reconcile_store operations (see the concept for what each guarantees).
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + quoted_ +
               " (id TEXT NOT NULL PRIMARY KEY, uncertain_since INTEGER NOT NULL, "
               "unknown_answers INTEGER NOT NULL, next_check_at INTEGER NOT NULL, escalated_at "
               "INTEGER, reason TEXT) WITHOUT ROWID;\nCREATE INDEX IF NOT EXISTS " +
               index_name("due") + " ON " + quoted_ + " (uncertain_since);";
    }
    void create_tables(transaction& tx) const {
        apply(tx, ddl(), "sqlite::reconcile_table::create_tables");
    }

    [[nodiscard]] bool watch(transaction& tx, std::string_view id, stored_time now) {
        constexpr std::string_view who = "sqlite::reconcile_table::watch";
        settle::detail::check_key_size(id.size(), who, "id");
        detail::running s(joined(tx, who), watch_, who, name_);
        s.bind(1, id);
        s.bind(2, settle::detail::to_sql_micros(now));
        (void)s.step();
        return s.changes() == 1;
    }

    [[nodiscard]] std::vector<uncertain_record> due(transaction& tx, stored_time uncertain_before,
                                                    stored_time now, std::size_t limit) {
        constexpr std::string_view who = "sqlite::reconcile_table::due";
        detail::running s(joined(tx, who), due_, who, name_);
        s.bind(1, settle::detail::to_sql_micros(uncertain_before));
        s.bind(2, settle::detail::to_sql_micros(now));
        s.bind(3, detail::saturated(limit));
        std::vector<uncertain_record> out;
        while (s.step()) {
            out.push_back({s.text(0), settle::detail::from_sql_micros(s.integer(1)),
                           static_cast<std::uint32_t>(std::clamp<std::int64_t>(
                               s.integer(2), 0, std::numeric_limits<std::uint32_t>::max())),
                           settle::detail::from_sql_micros(s.integer(3))});
        }
        return out;
    }

    [[nodiscard]] bool forget(transaction& tx, std::string_view id) {
        constexpr std::string_view who = "sqlite::reconcile_table::forget";
        detail::running s(joined(tx, who), forget_, who, name_);
        s.bind(1, id);
        (void)s.step();
        return s.changes() == 1;
    }

    [[nodiscard]] bool reschedule(transaction& tx, std::string_view id,
                                  std::uint32_t unknown_answers, stored_time next_check_at) {
        constexpr std::string_view who = "sqlite::reconcile_table::reschedule";
        detail::running s(joined(tx, who), reschedule_, who, name_);
        s.bind(1, id);
        s.bind(2, std::int64_t{unknown_answers});
        s.bind(3, settle::detail::to_sql_micros(next_check_at));
        (void)s.step();
        return s.changes() == 1;
    }

    [[nodiscard]] bool escalate(transaction& tx, std::string_view id, std::string_view reason,
                                stored_time now) {
        constexpr std::string_view who = "sqlite::reconcile_table::escalate";
        detail::running s(joined(tx, who), escalate_, who, name_);
        s.bind(1, id);
        s.bind(2, settle::detail::to_sql_micros(now));
        s.bind(3, reason);
        (void)s.step();
        return s.changes() == 1;
    }
    ///@}

private:
    detail::statement watch_;
    detail::statement due_;
    detail::statement forget_;
    detail::statement reschedule_;
    detail::statement escalate_;
};

static_assert(settle::reconcile_store<reconcile_table>);

// ---------------------------------------------------------------------------
// Sagas

/// settle::saga_store and settle::purgeable_saga_store in a SQLite table.
/// Schema:
///
///     id           TEXT PRIMARY KEY (WITHOUT ROWID)
///     type         TEXT
///     status       TEXT: running, compensating, completed, compensated, failed
///     step         INTEGER
///     attempts     INTEGER
///     data         BLOB, kept byte for byte
///     next_run_at  INTEGER: Unix microseconds
///     version      INTEGER
///     last_error   TEXT
///     index <name>:due (type, next_run_at) of running and compensating sagas, for due
///     index <name>:ended (next_run_at) of completed and compensated sagas, for purge
///
/// create is one INSERT ... ON CONFLICT DO NOTHING on the key; load one
/// SELECT; update one UPDATE ... WHERE id = ? AND version = ?; due one
/// SELECT, the earliest next run first (then by id); purge one DELETE of a
/// batch found through the ended index. A status settle never writes throws
/// settle::error (errc::decode_failed), the row kept.
class saga_table : public detail::table_base {
public:
    /// Throws settle::error (errc::invalid_argument) if table_name is not a
    /// plain identifier. Touches no table until first used.
    saga_table(connection& conn, std::string_view table_name)
        : table_base(conn, table_name, "sqlite::saga_table"),
          create_("INSERT INTO " + quoted_ +
                  " (id, type, status, step, attempts, data, next_run_at, version, last_error) "
                  "VALUES (?1, ?2, 'running', 0, 0, ?3, ?4, 1, '') ON CONFLICT DO NOTHING"),
          load_("SELECT " + std::string(columns) + " FROM " + quoted_ + " WHERE id = ?1"),
          update_("UPDATE " + quoted_ +
                  " SET status = ?3, step = ?4, attempts = ?5, next_run_at = ?6, last_error = "
                  "?7, version = version + 1 WHERE id = ?1 AND version = ?2"),
          due_("SELECT " + std::string(columns) + " FROM " + quoted_ +
               " WHERE type = ?1 AND status IN ('running', 'compensating') AND next_run_at <= ?2 "
               "ORDER BY next_run_at, id LIMIT ?3"),
          purge_("DELETE FROM " + quoted_ + " WHERE id IN (SELECT id FROM " + quoted_ +
                 " WHERE status IN ('completed', 'compensated') AND next_run_at < ?1 LIMIT ?2)") {}

    /// The statements that create the table and its index unless they exist:
    /// safe to apply again.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + quoted_ +
               " (id TEXT NOT NULL PRIMARY KEY, type TEXT NOT NULL, status TEXT NOT NULL, step "
               "INTEGER NOT NULL, attempts INTEGER NOT NULL, data BLOB NOT NULL, next_run_at "
               "INTEGER NOT NULL, version INTEGER NOT NULL, last_error TEXT NOT NULL) WITHOUT "
               "ROWID;\nCREATE INDEX IF NOT EXISTS " +
               index_name("due") + " ON " + quoted_ +
               " (type, next_run_at) WHERE status IN ('running', 'compensating');\nCREATE INDEX "
               "IF NOT EXISTS " +
               index_name("ended") + " ON " + quoted_ +
               " (next_run_at) WHERE status IN ('completed', 'compensated');";
    }
    /// Runs ddl() in the caller's transaction.
    void create_tables(transaction& tx) const {
        apply(tx, ddl(), "sqlite::saga_table::create_tables");
    }

    ///@{
    /// The settle::saga_store operations (see the concept for what each guarantees).
    [[nodiscard]] bool create(transaction& tx, std::string_view id, std::string_view type,
                              std::string_view data, stored_time next_run_at) {
        constexpr std::string_view who = "sqlite::saga_table::create";
        settle::detail::check_key_size(id.size(), who, "saga id");
        settle::detail::check_key_size(type.size(), who, "saga type");
        detail::running s(joined(tx, who), create_, who, name_);
        s.bind(1, id);
        s.bind(2, type);
        s.bind(3, std::as_bytes(std::span(data.data(), data.size())));
        s.bind(4, settle::detail::to_sql_micros(next_run_at));
        (void)s.step();
        return s.changes() == 1;
    }

    [[nodiscard]] std::optional<saga_record> load(transaction& tx, std::string_view id) {
        constexpr std::string_view who = "sqlite::saga_table::load";
        detail::running s(joined(tx, who), load_, who, name_);
        s.bind(1, id);
        if (!s.step()) {
            return std::nullopt;
        }
        return read(s);
    }

    [[nodiscard]] fenced_write update(transaction& tx, const saga_record& record) {
        constexpr std::string_view who = "sqlite::saga_table::update";
        detail::running s(joined(tx, who), update_, who, name_);
        s.bind(1, std::string_view(record.id));
        s.bind(2, static_cast<std::int64_t>(record.version.value()));
        s.bind(3, settle::detail::saga_status_text(record.status));
        s.bind(4, std::int64_t{record.step});
        s.bind(5, std::int64_t{record.attempts});
        s.bind(6, settle::detail::to_sql_micros(record.next_run_at));
        s.bind(7, std::string_view(record.last_error));
        (void)s.step();
        return s.changes() == 1 ? fenced_write::applied : fenced_write::stale;
    }

    [[nodiscard]] std::vector<saga_record> due(transaction& tx, std::string_view type,
                                               stored_time now, std::size_t limit) {
        constexpr std::string_view who = "sqlite::saga_table::due";
        detail::running s(joined(tx, who), due_, who, name_);
        s.bind(1, type);
        s.bind(2, settle::detail::to_sql_micros(now));
        s.bind(3, detail::saturated(limit));
        std::vector<saga_record> out;
        while (s.step()) {
            out.push_back(read(s));
        }
        return out;
    }

    [[nodiscard]] std::size_t purge(transaction& tx,
                                    std::chrono::system_clock::time_point ended_before,
                                    std::size_t limit) {
        constexpr std::string_view who = "sqlite::saga_table::purge";
        if (limit == 0) {
            return 0;
        }
        detail::running s(joined(tx, who), purge_, who, name_);
        // Stored times are whole microseconds: before ended_before is before
        // it rounded up.
        s.bind(1, settle::detail::to_sql_micros(
                      std::chrono::ceil<std::chrono::microseconds>(ended_before)));
        s.bind(2, detail::saturated(limit));
        (void)s.step();
        return static_cast<std::size_t>(s.changes());
    }
    ///@}

private:
    static constexpr std::string_view columns =
        "id, type, status, step, attempts, data, next_run_at, version, last_error";

    [[nodiscard]] saga_record read(const detail::running& s) const {
        saga_record r;
        r.id = s.text(0);
        r.type = s.text(1);
        const std::string status = s.text(2);
        const auto parsed = settle::detail::saga_status_from(status);
        if (!parsed) {
            throw settle::error(errc::decode_failed,
                                "sqlite::saga_table: saga `" + r.id + "` on table " + name_ +
                                    " has the unknown status `" + status + "`");
        }
        r.status = *parsed;
        const auto count = [&](int column) {
            return static_cast<std::uint32_t>(std::clamp<std::int64_t>(
                s.integer(column), 0, std::numeric_limits<std::uint32_t>::max()));
        };
        r.step = count(3);
        r.attempts = count(4);
        const std::span<const std::byte> data = s.blob(5);
        r.data.assign(reinterpret_cast<const char*>(data.data()), data.size());
        r.next_run_at = settle::detail::from_sql_micros(s.integer(6));
        r.version = version_stamp(static_cast<std::uint64_t>(s.integer(7)));
        r.last_error = s.text(8);
        return r;
    }

    detail::statement create_;
    detail::statement load_;
    detail::statement update_;
    detail::statement due_;
    detail::statement purge_;
};

static_assert(settle::purgeable_saga_store<saga_table>);

}  // namespace sqlite

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_SQLITE_HPP
