// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_POSTGRES_HPP
#define SETTLE_STORES_POSTGRES_HPP

// The PostgreSQL backend (libpq; link with -lpq): versioned tables, lease and
// fence tables, idempotency records, outbox and inbox, each a table in the
// user's own database, written through the user's own connection, inside the
// user's own transaction, the try/confirm/cancel barrier and reconciliation. Needs
// PostgreSQL 10 or later. docs/backends.md
// describes the schema, the isolation and the locks.

#include <settle/version.hpp>

#include <settle/barrier.hpp>
#include <settle/clock.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/lease.hpp>
#include <settle/outbox.hpp>
#include <settle/reconcile.hpp>
#include <settle/saga.hpp>
#include <settle/sleeper.hpp>
#include <settle/stores/detail/sql.hpp>
#include <settle/uuid.hpp>
#include <settle/versioned.hpp>

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace postgres {

namespace detail {

// A table name as the stores take it: `table` or `schema.table`, each part a
// plain identifier, spliced as `"table"` or `"schema"."table"`. Throws
// settle::error (errc::invalid_argument) naming `who` for any other name.
[[nodiscard]] inline std::string quoted_table_name(std::string_view name, const char* who) {
    const std::size_t dot = name.find('.');
    if (dot == std::string_view::npos) {
        return settle::detail::quoted_sql_identifier(name, who);
    }
    return settle::detail::quoted_sql_identifier(name.substr(0, dot), who) + "." +
           settle::detail::quoted_sql_identifier(name.substr(dot + 1), who);
}

// The type OIDs of the parameters the stores bind (catalog/pg_type.h).
inline constexpr Oid bytea_oid = 17;
inline constexpr Oid int8_oid = 20;
inline constexpr Oid int4_oid = 23;
inline constexpr Oid text_oid = 25;
inline constexpr Oid uuid_oid = 2950;
inline constexpr Oid uuid_array_oid = 2951;
inline constexpr Oid int8_array_oid = 1016;

// One bound parameter in PostgreSQL's binary format.
struct param {
    Oid type;
    std::string value;
    bool null = false;
};

[[nodiscard]] inline std::string big_endian(std::uint64_t value, std::size_t size) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        out[size - 1 - i] = static_cast<char>(value & 0xFFU);
        value >>= 8U;
    }
    return out;
}

[[nodiscard]] inline param int8(std::int64_t value) {
    return {int8_oid, big_endian(static_cast<std::uint64_t>(value), 8)};
}

// An instant as stored: BIGINT Unix microseconds.
[[nodiscard]] inline param micros(stored_time t) {
    return int8(settle::detail::to_sql_micros(t));
}

[[nodiscard]] inline param int4(std::optional<std::int32_t> value) {
    if (!value) {
        return {int4_oid, {}, true};
    }
    return {int4_oid, big_endian(static_cast<std::uint32_t>(*value), 4)};
}

[[nodiscard]] inline param text(std::string_view value) {
    return {text_oid, std::string(value)};
}

// Text kept byte for byte in a BYTEA column: no encoding check can refuse it.
[[nodiscard]] inline param text_bytes(std::string_view value) {
    return {bytea_oid, std::string(value)};
}

[[nodiscard]] inline param bytea(std::span<const std::byte> value) {
    return {bytea_oid, std::string(reinterpret_cast<const char*>(value.data()), value.size())};
}

[[nodiscard]] inline param uuid_param(const uuid& id) {
    return {uuid_oid, bytea(id.bytes()).value};
}

// One parameter of each element of `items` as an array in the binary
// format: dimensions, no nulls, the element type, one dimension of
// items.size() from 1, then each element's length and bytes.
template <class T, class Element>
[[nodiscard]] param binary_array(Oid array_type, Oid element_type, std::span<const T> items,
                                 std::string_view what, Element element) {
    if (items.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
        throw settle::error(errc::invalid_argument, std::string(what) + ": too many elements");
    }
    std::string out = big_endian(1, 4) + big_endian(0, 4) + big_endian(element_type, 4) +
                      big_endian(items.size(), 4) + big_endian(1, 4);
    for (const T& item : items) {
        const param p = element(item);
        out += big_endian(p.value.size(), 4);
        out += p.value;
    }
    return {array_type, std::move(out)};
}

// A stored count or time as the BIGINT it is bound as; counts beyond it are
// clamped (a limit), stamps and tokens beyond it wrap to negatives that match
// no row (a store never issues them).
[[nodiscard]] inline param limit(std::size_t value) {
    constexpr auto most = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return int8(static_cast<std::int64_t>(std::min(value, most)));
}

[[nodiscard]] inline param unsigned8(std::uint64_t value) {
    return int8(static_cast<std::int64_t>(value));
}

// The parts of an advisory lock's key, each prefixed with its length, so
// that no two lists of parts give one text. The server hashes it with the
// table's OID (lock_statement), so tables in two schemas never share a key.
[[nodiscard]] inline std::string lock_text(std::initializer_list<std::string_view> parts) {
    std::string text;
    for (const std::string_view part : parts) {
        text += std::to_string(part.size());
        text += ':';
        text += part;
    }
    return text;
}

// Takes the transaction-level advisory lock of lock_text $1 in table $2 (its
// quoted name, resolved as the statements resolve it).
inline constexpr const char* lock_statement =
    "SELECT pg_advisory_xact_lock(hashtextextended($1, $2::regclass::oid::bigint))";

// The SQLSTATE of a failed result, or "" if it has none.
[[nodiscard]] inline std::string_view sqlstate(const PGresult* result) noexcept {
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    return state != nullptr ? state : "";
}

// 25006, read_only_sql_transaction: a write reached a server that takes none,
// a standby after a failover, until the session is replaced.
[[nodiscard]] inline bool read_only_server(std::string_view code) noexcept {
    return code == "25006";
}

// 26000, invalid_sql_statement_name: a statement settle prepared on the
// session is gone (DISCARD ALL, DEALLOCATE, a pooler that moved the client to
// another server session); the next transaction prepares them again.
[[nodiscard]] inline bool statements_lost(std::string_view code) noexcept {
    return code == "26000";
}

// The settle::errc of a failure with SQLSTATE `code` on `conn`:
//   unavailable  the connection is lost (class 08, 57P01-57P03 shutdowns), or
//                the server is read-only (25006): another session may succeed
//   aborted      the server gave the transaction up and kept nothing:
//                serialization failure (40001), deadlock (40P01), lock
//                timeout (55P03), statement timeout or cancel (57014), a
//                prepared statement of settle's gone from the session (26000)
//   backend_failure  anything else
[[nodiscard]] inline errc classify(PGconn* conn, std::string_view code) noexcept {
    if (PQstatus(conn) == CONNECTION_BAD || code.starts_with("08") || code == "57P01" ||
        code == "57P02" || code == "57P03" || read_only_server(code)) {
        return errc::unavailable;
    }
    if (code == "40001" || code == "40P01" || code == "55P03" || code == "57014" ||
        statements_lost(code)) {
        return errc::aborted;
    }
    return errc::backend_failure;
}

[[noreturn]] inline void fail(PGconn* conn, const PGresult* result, std::string_view what) {
    std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
    if (message.empty()) {
        message = PQerrorMessage(conn);
    }
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
        message.pop_back();
    }
    const std::string_view code = sqlstate(result);
    std::string text = std::string(what) + ": " + message;
    if (!code.empty()) {
        text += " (SQLSTATE " + std::string(code) + ")";
    }
    throw settle::error(classify(conn, code), text);
}

// A statement's result, in binary format; throws settle::error
// (errc::backend_failure) when a column does not hold what the schema says.
class result {
public:
    explicit result(PGresult* r) noexcept : r_(r) {}

    [[nodiscard]] int rows() const noexcept { return PQntuples(r_.get()); }

    // The command tag: "COMMIT", "ROLLBACK", "INSERT 0 1", ...
    [[nodiscard]] std::string_view command() const noexcept { return PQcmdStatus(r_.get()); }

    // The rows an INSERT, UPDATE or DELETE touched.
    [[nodiscard]] std::uint64_t affected() const noexcept {
        const std::string_view n = PQcmdTuples(r_.get());
        std::uint64_t count = 0;
        (void)std::from_chars(n.data(), n.data() + n.size(), count);
        return count;
    }

    [[nodiscard]] bool null(int row, int column) const noexcept {
        return PQgetisnull(r_.get(), row, column) != 0;
    }

    [[nodiscard]] std::span<const std::byte> raw(int row, int column) const noexcept {
        const auto size = static_cast<std::size_t>(PQgetlength(r_.get(), row, column));
        return {reinterpret_cast<const std::byte*>(PQgetvalue(r_.get(), row, column)), size};
    }

    [[nodiscard]] std::int64_t int8(int row, int column) const {
        return static_cast<std::int64_t>(integer(row, column, 8));
    }

    [[nodiscard]] std::int32_t int4(int row, int column) const {
        return static_cast<std::int32_t>(static_cast<std::uint32_t>(integer(row, column, 4)));
    }

    [[nodiscard]] std::string text(int row, int column) const {
        const auto in = raw(row, column);
        return {reinterpret_cast<const char*>(in.data()), in.size()};
    }

    [[nodiscard]] bytes bytea(int row, int column) const {
        const auto in = raw(row, column);
        return {in.begin(), in.end()};
    }

    [[nodiscard]] uuid uuid_at(int row, int column) const {
        const auto in = raw(row, column);
        if (in.size() != 16) {
            width_mismatch(column);
        }
        return uuid(in.first<16>());
    }

private:
    [[nodiscard]] std::uint64_t integer(int row, int column, std::size_t size) const {
        const auto in = raw(row, column);
        if (in.size() != size) {
            width_mismatch(column);
        }
        std::uint64_t value = 0;
        for (const std::byte b : in) {
            value = (value << 8U) | std::to_integer<std::uint64_t>(b);
        }
        return value;
    }

    [[noreturn]] void width_mismatch(int column) const {
        throw settle::error(errc::backend_failure,
                            std::string("postgres: column ") + PQfname(r_.get(), column) +
                                " does not have the type settle's schema gives it");
    }

    struct clear {
        void operator()(PGresult* r) const noexcept { PQclear(r); }
    };
    std::unique_ptr<PGresult, clear> r_;
};

// `raw` as a result, or settle::error if it is a failure.
[[nodiscard]] inline result checked(PGconn* conn, std::string_view what, PGresult* raw) {
    result out(raw);
    const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        fail(conn, raw, what);
    }
    return out;
}

// Parameters laid out as libpq takes them, all in binary format.
struct bound {
    bound(std::string_view what, std::initializer_list<param> params)
        : count(static_cast<int>(params.size())), formats(params.size(), 1) {
        types.reserve(params.size());
        values.reserve(params.size());
        lengths.reserve(params.size());
        for (const param& p : params) {
            if (p.value.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
                throw settle::error(errc::invalid_argument,
                                    std::string(what) + ": a value is larger than 2 GiB");
            }
            types.push_back(p.type);
            values.push_back(p.null ? nullptr : p.value.data());
            lengths.push_back(static_cast<int>(p.value.size()));
        }
    }

    int count;
    std::vector<Oid> types;
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
};

// Runs one statement with bound parameters; binary results.
[[nodiscard]] inline result exec(PGconn* conn, std::string_view what, const std::string& sql,
                                 std::initializer_list<param> params) {
    const bound b(what, params);
    return checked(conn, what,
                   PQexecParams(conn, sql.c_str(), b.count, b.types.data(), b.values.data(),
                                b.lengths.data(), b.formats.data(), 1));
}

// The statements prepared on one server session, by their SQL text: a store's
// statements are parsed and planned once per session, then only executed.
// Names are never reused on a connection: once statements were lost (some
// of them, say, by a DEALLOCATE), preparing one again cannot meet a name that
// is still taken.
struct prepared_statements {
    std::unordered_map<std::string, std::string> names;
    std::uint64_t issued = 0;

    void clear() noexcept { names.clear(); }
};

// What a failed statement said about its session, acted on before the next
// BEGIN: a read-only server's session is replaced, one that lost settle's
// prepared statements forgets them (and its LISTEN).
enum class session_fault { none, read_only, statements_lost };

// An open transaction's session: the handle, what is prepared on it, and
// what a failed statement said about it.
struct session {
    PGconn* conn;
    prepared_statements* prepared;
    session_fault* fault;
};

// checked(), noting on the session what a failure says about it.
[[nodiscard]] inline result checked(const session& s, std::string_view what, PGresult* raw) {
    if (raw != nullptr && PQresultStatus(raw) == PGRES_FATAL_ERROR) {
        const std::string_view code = sqlstate(raw);
        if (read_only_server(code)) {
            *s.fault = session_fault::read_only;
        } else if (statements_lost(code) && *s.fault == session_fault::none) {
            *s.fault = session_fault::statements_lost;
        }
    }
    return checked(s.conn, what, raw);
}

// Runs one of a store's statements, preparing it (as "settle_<n>") on the
// session's first use of it; binary results.
[[nodiscard]] inline result exec(const session& s, std::string_view what, const std::string& sql,
                                 std::initializer_list<param> params) {
    const bound b(what, params);
    auto found = s.prepared->names.find(sql);
    if (found == s.prepared->names.end()) {
        std::string name = "settle_" + std::to_string(++s.prepared->issued);
        (void)checked(s, what,
                      PQprepare(s.conn, name.c_str(), sql.c_str(), b.count, b.types.data()));
        found = s.prepared->names.emplace(sql, std::move(name)).first;
    }
    return checked(s, what,
                   PQexecPrepared(s.conn, found->second.c_str(), b.count, b.values.data(),
                                  b.lengths.data(), b.formats.data(), 1));
}

// Runs statements without parameters, several separated by ';' (a schema).
inline void exec_script(PGconn* conn, std::string_view what, const std::string& sql) {
    (void)checked(conn, what, PQexec(conn, sql.c_str()));
}

}  // namespace detail

class transaction;

/// The user's database handle: owns one PGconn, made by `make`, which is also
/// how it reconnects. Not thread-safe (libpq connections are not): use one per
/// thread, or lock around it. At most one settle transaction is open on it at
/// a time. Neither copyable nor movable: stores and transactions keep its
/// address, so it must outlive them.
class connection {
public:
    /// Makes a new connection handle: what a pool calls when it needs a connection.
    using factory = std::function<PGconn*()>;

    /// Connects at once; settle::error (errc::unavailable) with libpq's message
    /// if `make` returns no connection or a failed one.
    explicit connection(factory make) : make_(std::move(make)) { connect(); }

    /// Connects with PQconnectdb(conninfo), now and on every reconnect.
    explicit connection(std::string conninfo)
        : connection(factory([info = std::move(conninfo)] { return PQconnectdb(info.c_str()); })) {}

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { PQfinish(conn_); }

    /// The raw handle, for the user's own statements. Replaced by a reconnect,
    /// so do not keep it across transactions.
    [[nodiscard]] PGconn* native() const noexcept { return conn_; }

private:
    friend class transaction;
    friend class outbox_table;

    void connect() {
        PGconn* fresh = make_ ? make_() : nullptr;
        if (fresh == nullptr) {
            throw settle::error(errc::unavailable, "postgres::connection: no connection made");
        }
        if (PQstatus(fresh) != CONNECTION_OK) {
            std::string message = PQerrorMessage(fresh);
            PQfinish(fresh);
            while (!message.empty() && message.back() == '\n') {
                message.pop_back();
            }
            throw settle::error(errc::unavailable, "postgres::connection: " + message);
        }
        PQfinish(conn_);
        conn_ = fresh;
        session_ = PQbackendPID(fresh);
        prepared_.clear();
        fault_ = detail::session_fault::none;
        ++generation_;
    }

    // Replaces a connection libpq knows is lost, or one whose server refused
    // a write as read-only (a standby after a failover: a new connection may
    // reach the new primary), and forgets what was prepared and listened for
    // on a session libpq replaced by itself (PQreset on native()) or that
    // lost settle's prepared statements (DISCARD ALL); only between
    // transactions.
    void reconnect_if_lost() {
        if (PQstatus(conn_) == CONNECTION_BAD || fault_ == detail::session_fault::read_only) {
            connect();
        } else if (const int session = PQbackendPID(conn_);
                   session != session_ || fault_ == detail::session_fault::statements_lost) {
            session_ = session;
            prepared_.clear();
            fault_ = detail::session_fault::none;
            ++generation_;
        }
    }

    factory make_;
    PGconn* conn_ = nullptr;
    int session_ = 0;                       // the server process behind conn_
    detail::prepared_statements prepared_;  // on that session
    std::uint64_t generation_ = 0;          // counts sessions: LISTEN is per session
    bool busy_ = false;                     // a settle transaction is open
    detail::session_fault fault_ = detail::session_fault::none;  // what a failure said
};

template <class Key, class T>
class versioned_table;
class idempotency_table;
class outbox_table;
class inbox_table;
class barrier_table;
class reconcile_table;
class saga_table;

/// A transaction on a connection: BEGIN at construction, READ COMMITTED unless
/// the session says otherwise. The user's own statements run on native() and
/// commit or roll back with the stores' writes. Destroyed while open, it rolls
/// back and never throws. End it with commit() or rollback(), not with
/// statements on native(): a transaction ended there refuses the stores'
/// writes while the connection is idle, but once you BEGIN again on native()
/// it cannot tell your transaction from its own.
class transaction {
public:
    /// Begins. A connection found lost before BEGIN (by libpq, or by BEGIN
    /// itself failing for that reason) is replaced through its factory first:
    /// nothing is lost, no transaction was open. settle::error: unavailable if
    /// the server cannot be reached, invalid_argument if a settle transaction
    /// is already open on the connection.
    explicit transaction(connection& c) : conn_(&c) {
        if (c.busy_) {
            throw settle::error(errc::invalid_argument,
                                "postgres::transaction: a transaction is already open on this "
                                "connection");
        }
        c.reconnect_if_lost();
        if (const auto status = PQtransactionStatus(c.conn_);
            status == PQTRANS_INTRANS || status == PQTRANS_INERROR) {
            throw settle::error(errc::invalid_argument,
                                "postgres::transaction: the connection is inside a transaction "
                                "begun on native()");
        }
        try {
            (void)detail::exec(c.conn_, "postgres::transaction: BEGIN", "BEGIN", {});
        } catch (const settle::error& e) {
            if (e.code() != errc::unavailable || PQstatus(c.conn_) != CONNECTION_BAD) {
                throw;
            }
            c.connect();
            (void)detail::exec(c.conn_, "postgres::transaction: BEGIN", "BEGIN", {});
        }
        c.busy_ = true;
    }

    /// Takes over the other transaction, which is ended.
    transaction(transaction&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
    transaction& operator=(transaction&&) = delete;
    ~transaction() { rollback(); }

    /// Commits; afterwards !open(), whatever happened. settle::error:
    /// unavailable if the connection dropped (the outcome is then unknown),
    /// backend_failure if the server refused, or rolled back because a
    /// statement in the transaction had failed; invalid_argument if it ended.
    void commit() {
        PGconn* conn = joined(nullptr, "postgres::transaction::commit").conn;
        conn_->busy_ = false;
        conn_ = nullptr;
        const detail::result done =
            detail::exec(conn, "postgres::transaction::commit", "COMMIT", {});
        if (done.command() != "COMMIT") {
            throw settle::error(errc::backend_failure,
                                "postgres::transaction::commit: the transaction was rolled back: "
                                "a statement in it had failed");
        }
    }

    /// Rolls back if open; never throws (a lost connection has nothing to undo).
    void rollback() noexcept {
        if (conn_ == nullptr) {
            return;
        }
        if (PQstatus(conn_->conn_) == CONNECTION_OK) {
            PQclear(PQexec(conn_->conn_, "ROLLBACK"));
        }
        conn_->busy_ = false;
        conn_ = nullptr;
    }

    /// Whether the transaction is still open (not committed, rolled back or moved from).
    [[nodiscard]] bool open() const noexcept { return conn_ != nullptr; }

    /// The connection's handle while open, nullptr after.
    [[nodiscard]] PGconn* native() const noexcept {
        return conn_ != nullptr ? conn_->conn_ : nullptr;
    }

private:
    template <class, class>
    friend class versioned_table;
    friend class idempotency_table;
    friend class outbox_table;
    friend class inbox_table;
    friend class barrier_table;
    friend class reconcile_table;
    friend class saga_table;

    // The session, if this transaction is open and on `owner` (any, if null).
    [[nodiscard]] detail::session joined(const connection* owner, const char* who) const {
        if (conn_ == nullptr) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) + ": the transaction has ended");
        }
        if (owner != nullptr && owner != conn_) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) + ": the transaction is on another connection");
        }
        if (PQtransactionStatus(conn_->conn_) == PQTRANS_IDLE) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) +
                                    ": the transaction was ended by a COMMIT or ROLLBACK run on "
                                    "native(); a write now would commit on its own");
        }
        return {conn_->conn_, &conn_->prepared_, &conn_->fault_};
    }

    connection* conn_;
};

namespace detail {

// What every store shares: its connection and its validated, quoted name.
struct table {
    table(connection& c, std::string_view name, const char* who)
        : conn(&c), quoted(quoted_table_name(name, who)) {}

    connection* conn;
    std::string quoted;

    // The DDL that creates the table with `columns` and its `indexes` (each
    // "(columns) [WHERE ...]"), once: the indexes go unnamed, so PostgreSQL
    // picks names no other relation holds.
    [[nodiscard]] std::string create_once(std::string_view columns,
                                          std::initializer_list<std::string_view> indexes) const {
        std::string ddl = "DO $settle$ BEGIN\nIF to_regclass('" + quoted +
                          "') IS NULL THEN\n    CREATE TABLE " + quoted + " (\n" +
                          std::string(columns) + "    );\n";
        for (const std::string_view index : indexes) {
            ddl += "    CREATE INDEX ON " + quoted + " " + std::string(index) + ";\n";
        }
        return ddl + "END IF;\nEND $settle$;\n";
    }
};

// Applies a store's DDL in tx, without the server's "already exists" notices.
inline void create(const session& conn, const std::string& ddl, const char* who) {
    (void)exec(conn.conn, who, "SET LOCAL client_min_messages = warning", {});
    exec_script(conn.conn, who, ddl);
}

}  // namespace detail

/// settle::versioned_store over a table of (key, value, stamp): Key and T
/// persist as settle::encode gives them (BYTEA), stamps come from the stamp
/// column's identity sequence (SET stamp = DEFAULT), drawn while the writer
/// holds the row,
/// so a key's stamp is greater than every stamp the key had before, across
/// erase and re-insert; a rolled-back write leaves a gap. A compare-and-set or
/// erase is one UPDATE or DELETE conditioned on the stamp (it waits for a
/// concurrent writer of the row and re-checks); an insert is an INSERT ... ON
/// CONFLICT DO NOTHING with a placeholder stamp, then an UPDATE that draws the
/// stamp once the row is its own (triggers see both). A write that does not
/// apply reads the current row in a second statement and returns it, decoded,
/// in the conflict. Stamps reach 2^63 - 1, BIGINT's
/// limit. Stored bytes that do not decode throw settle::error
/// (errc::decode_failed) and stay as they are.
template <class Key, class T>
class versioned_table {
    static_assert(codable<Key>,
                  "settle::postgres::versioned_table: keys persist through settle::codec, so Key "
                  "must be settle::codable");
    static_assert(codable<T>,
                  "settle::postgres::versioned_table: values persist through settle::codec, so "
                  "T must be settle::codable");

public:
    ///@{
    /// The key, value and transaction types of the settle::versioned_store this table models.
    using key_type = Key;
    using value_type = T;
    using transaction = postgres::transaction;
    ///@}

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes, or two joined by a dot (schema and
    /// table). Touches no table.
    versioned_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "postgres::versioned_table"),
          select_("SELECT value, stamp FROM " + table_.quoted + " WHERE key = $1"),
          insert_("INSERT INTO " + table_.quoted +
                  " (key, value, stamp) VALUES ($1, $2, 0) ON CONFLICT (key) DO NOTHING RETURNING "
                  "stamp"),
          stamp_("UPDATE " + table_.quoted + " SET stamp = DEFAULT WHERE key = $1 RETURNING stamp"),
          update_("UPDATE " + table_.quoted +
                  " SET value = $3, stamp = DEFAULT WHERE key = $1 AND stamp = $2 RETURNING stamp"),
          delete_("DELETE FROM " + table_.quoted +
                  " WHERE key = $1 AND stamp = $2 RETURNING stamp") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// Creates the table unless it exists: safe to apply again. The stamp's
    /// sequence belongs to the table: dropping the table drops it.
    [[nodiscard]] std::string ddl() const {
        return table_.create_once(
            "        key   BYTEA  PRIMARY KEY,\n"
            "        value BYTEA  NOT NULL,\n"
            "        stamp BIGINT GENERATED BY DEFAULT AS IDENTITY\n",
            {});
    }

    ///@{
    /// Creates the table if it does not exist, then the settle::versioned_store operations (see the
    /// concept for what each guarantees), in the caller's transaction.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "postgres::versioned_table::create_tables"), ddl(),
                       "postgres::versioned_table::create_tables");
    }

    [[nodiscard]] std::optional<versioned<T>> load(transaction& tx, const Key& key) const {
        return current(tx.joined(table_.conn, "postgres::versioned_table::load"),
                       settle::encode(key), "postgres::versioned_table::load");
    }
    ///@}

    /// Writes the row only if the key is absent.
    [[nodiscard]] write_result<T> insert(transaction& tx, const Key& key, T value) {
        constexpr const char* who = "postgres::versioned_table::insert";
        const bytes k = settle::encode(key);
        settle::detail::check_key_size(k.size(), who, "key");
        const detail::session conn = tx.joined(table_.conn, who);
        const bytes v = settle::encode(value);
        for (int passes = 0;; ++passes) {
            if (detail::exec(conn, who, insert_, {detail::bytea(k), detail::bytea(v)}).rows() ==
                1) {
                // The key is ours until tx ends; only now draw its stamp, so that
                // it exceeds every stamp the key had before. Drawn before the
                // insert, it could lose to a newer, since-erased row of the key.
                const detail::result r = detail::exec(conn, who, stamp_, {detail::bytea(k)});
                return write_result<T>::applied(stamp_of(r.int8(0, 0)));
            }
            if (auto found = current(conn, k, who)) {
                return write_result<T>::conflict(found->stamp, std::move(found->value));
            }
            settle::detail::count_conflict(passes, who);  // erased in between: insert again
        }
    }

    /// Replaces the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> compare_and_set(transaction& tx, const Key& key,
                                                  version_stamp expected, T value) {
        constexpr const char* who = "postgres::versioned_table::compare_and_set";
        const detail::session conn = tx.joined(table_.conn, who);
        const bytes k = settle::encode(key);
        const detail::result r =
            detail::exec(conn, who, update_,
                         {detail::bytea(k), detail::unsigned8(expected.value()),
                          detail::bytea(settle::encode(value))});
        if (r.rows() == 1) {
            return write_result<T>::applied(stamp_of(r.int8(0, 0)));
        }
        return not_applied(conn, k, who);
    }

    /// Removes the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> erase(transaction& tx, const Key& key, version_stamp expected) {
        constexpr const char* who = "postgres::versioned_table::erase";
        const detail::session conn = tx.joined(table_.conn, who);
        const bytes k = settle::encode(key);
        const detail::result r = detail::exec(
            conn, who, delete_, {detail::bytea(k), detail::unsigned8(expected.value())});
        if (r.rows() == 1) {
            return write_result<T>::applied(stamp_of(r.int8(0, 0)));
        }
        return not_applied(conn, k, who);
    }

private:
    [[nodiscard]] static version_stamp stamp_of(std::int64_t stored) {
        return version_stamp(static_cast<version_stamp::rep>(stored));
    }

    [[nodiscard]] std::optional<versioned<T>> current(const detail::session& conn, const bytes& key,
                                                      const char* who) const {
        const detail::result r = detail::exec(conn, who, select_, {detail::bytea(key)});
        if (r.rows() == 0) {
            return std::nullopt;
        }
        return versioned<T>{settle::decode<T>(r.raw(0, 0)), stamp_of(r.int8(0, 1))};
    }

    [[nodiscard]] write_result<T> not_applied(const detail::session& conn, const bytes& key,
                                              const char* who) const {
        auto found = current(conn, key, who);
        if (!found) {
            return write_result<T>::missing();
        }
        return write_result<T>::conflict(found->stamp, std::move(found->value));
    }

    detail::table table_;
    std::string select_;
    std::string insert_;
    std::string stamp_;
    std::string update_;
    std::string delete_;
};

/// A lease store (settle::leases) and a fence store (settle::fence) in
/// PostgreSQL: versioned tables of lease records and of fencing tokens.
template <class Key>
using lease_table = versioned_table<Key, lease_record>;

template <class Key>
using fence_table = versioned_table<Key, fencing_token>;

/// settle::idempotency_store over a table keyed by (tenant, operation, key),
/// with an index on expires_at for purge and a sequence "<name>_token" for
/// tokens, so a token is greater than every one issued before for any key,
/// purged ones included. Times persist as their exact tick count (BIGINT), so
/// records round-trip exactly. Tenant, operation and key are TEXT: they must
/// be valid in the database's encoding (a NUL byte is not), or the server
/// refuses them (errc::backend_failure).
///
/// claim takes a transaction-level advisory lock on the key (a hash of
/// tenant, operation and key, seeded with the table's OID) before it draws a token, so claims of
/// one key take their tokens in commit order; the lock is held until the claim's transaction ends,
/// so keep that transaction short. The lock and the claim are one INSERT ... SELECT ... ON CONFLICT
/// DO UPDATE WHERE expired statement, the row built from the lock's subquery, so the token is drawn
/// once the lock is held; a second statement reads the live record it met. complete and abandon are
/// one UPDATE or DELETE conditioned on the token. purge deletes expired records, skipping any
/// another transaction has locked.
class idempotency_table {
public:
    /// The transaction type of the settle::idempotency_store this table models.
    using transaction = postgres::transaction;
    static_assert(std::is_integral_v<stored_time::rep> && sizeof(stored_time::rep) == 8,
                  "settle::postgres::idempotency_table: times persist as a BIGINT tick count");

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes, or two joined by a dot (schema and
    /// table). Touches no table.
    idempotency_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "postgres::idempotency_table"),
          claim_("INSERT INTO " + table_.quoted +
                 " AS r (tenant, operation, key, state, fingerprint, claimed_at, "
                 "expires_at, body, status) SELECT $1, $2, $3, 'in_progress', $4, $5, $6, '', "
                 "NULL FROM (SELECT pg_advisory_xact_lock(hashtextextended($7, "
                 "$8::regclass::oid::bigint))) AS locked WHERE true ON CONFLICT (tenant, "
                 "operation, key) DO UPDATE SET state "
                 "= 'in_progress', fingerprint = EXCLUDED.fingerprint, token = EXCLUDED.token, "
                 "claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at, body = '', "
                 "status = NULL WHERE r.expires_at <= EXCLUDED.claimed_at RETURNING token"),
          find_("SELECT state, fingerprint, token, claimed_at, expires_at, body, status FROM " +
                table_.quoted + " WHERE tenant = $1 AND operation = $2 AND key = $3"),
          complete_("UPDATE " + table_.quoted +
                    " SET state = 'completed', expires_at = $5, body = $6, status = $7 WHERE "
                    "tenant = $1 AND operation = $2 AND key = $3 AND state = 'in_progress' AND "
                    "token = $4"),
          abandon_("DELETE FROM " + table_.quoted +
                   " WHERE tenant = $1 AND operation = $2 AND key = $3 AND state = "
                   "'in_progress' AND token = $4"),
          purge_("DELETE FROM " + table_.quoted + " WHERE ctid = ANY (ARRAY(SELECT ctid FROM " +
                 table_.quoted + " WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED))") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// Creates the table and its index unless the table exists: safe to apply
    /// again.
    [[nodiscard]] std::string ddl() const {
        return table_.create_once(
            "        tenant      TEXT    NOT NULL,\n"
            "        operation   TEXT    NOT NULL,\n"
            "        key         TEXT    NOT NULL,\n"
            "        state       TEXT    NOT NULL CHECK (state IN ('in_progress', 'completed')),\n"
            "        fingerprint BYTEA   NOT NULL,\n"
            "        token       BIGINT  GENERATED BY DEFAULT AS IDENTITY,\n"
            "        claimed_at  BIGINT  NOT NULL,\n"
            "        expires_at  BIGINT  NOT NULL,\n"
            "        body        BYTEA   NOT NULL,\n"
            "        status      INTEGER,\n"
            "        PRIMARY KEY (tenant, operation, key)\n",
            {"(expires_at)"});
    }

    ///@{
    /// Creates the table if it does not exist, then the settle::idempotency_store operations (see
    /// the concept for what each guarantees), in the caller's transaction.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "postgres::idempotency_table::create_tables"), ddl(),
                       "postgres::idempotency_table::create_tables");
    }

    [[nodiscard]] idempotency_store_claim claim(transaction& tx, const idempotency_scope& scope,
                                                const idempotency_key& key,
                                                const sha256_digest& fingerprint, stored_time now,
                                                stored_time lease_end) {
        constexpr const char* who = "postgres::idempotency_table::claim";
        settle::detail::check_key_size(scope.tenant.size(), who, "tenant");
        settle::detail::check_key_size(scope.operation.size(), who, "operation");
        const detail::session conn = tx.joined(table_.conn, who);
        const std::string lock = detail::lock_text({scope.tenant, scope.operation, key.value()});
        const auto& digest = fingerprint.bytes();
        for (int passes = 0;; ++passes) {
            const detail::result r =
                detail::exec(conn, who, claim_,
                             {detail::text(scope.tenant), detail::text(scope.operation),
                              detail::text(key.value()),
                              detail::bytea(std::as_bytes(std::span(digest.data(), digest.size()))),
                              detail::micros(now), detail::micros(lease_end), detail::text(lock),
                              detail::text(table_.quoted)});
            if (r.rows() == 1) {
                return {true,
                        idempotency_record{idempotency_state::in_progress,
                                           fingerprint,
                                           fencing_token(static_cast<std::uint64_t>(r.int8(0, 0))),
                                           now,
                                           lease_end,
                                           {}}};
            }
            if (auto found = find(conn, scope, key, who); found && found->live(now)) {
                return {false, std::move(*found)};
            }
            settle::detail::count_conflict(passes,
                                           who);  // completed early and purged, or abandoned
        }
    }

    [[nodiscard]] fenced_write complete(transaction& tx, const idempotency_scope& scope,
                                        const idempotency_key& key, fencing_token token,
                                        idempotency_response response, stored_time retain_until) {
        constexpr const char* who = "postgres::idempotency_table::complete";
        const detail::result r = detail::exec(
            tx.joined(table_.conn, who), who, complete_,
            {detail::text(scope.tenant), detail::text(scope.operation), detail::text(key.value()),
             detail::unsigned8(token.value()), detail::micros(retain_until),
             detail::bytea(response.body), detail::int4(response.status)});
        return r.affected() == 1 ? fenced_write::applied : fenced_write::stale;
    }

    [[nodiscard]] fenced_write abandon(transaction& tx, const idempotency_scope& scope,
                                       const idempotency_key& key, fencing_token token) {
        constexpr const char* who = "postgres::idempotency_table::abandon";
        const detail::result r =
            detail::exec(tx.joined(table_.conn, who), who, abandon_,
                         {detail::text(scope.tenant), detail::text(scope.operation),
                          detail::text(key.value()), detail::unsigned8(token.value())});
        return r.affected() == 1 ? fenced_write::applied : fenced_write::stale;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time now, std::size_t limit) {
        constexpr const char* who = "postgres::idempotency_table::purge";
        const detail::result r = detail::exec(tx.joined(table_.conn, who), who, purge_,
                                              {detail::micros(now), detail::limit(limit)});
        return static_cast<std::size_t>(r.affected());
    }
    ///@}

    /// The record stored for (scope, key), live or not, or nullopt. For
    /// inspection and tests; the guard never needs it.
    [[nodiscard]] std::optional<idempotency_record> find(transaction& tx,
                                                         const idempotency_scope& scope,
                                                         const idempotency_key& key) const {
        constexpr const char* who = "postgres::idempotency_table::find";
        return find(tx.joined(table_.conn, who), scope, key, who);
    }

private:
    [[nodiscard]] std::optional<idempotency_record> find(const detail::session& conn,
                                                         const idempotency_scope& scope,
                                                         const idempotency_key& key,
                                                         const char* who) const {
        const detail::result r = detail::exec(
            conn, who, find_,
            {detail::text(scope.tenant), detail::text(scope.operation), detail::text(key.value())});
        if (r.rows() == 0) {
            return std::nullopt;
        }
        idempotency_record record;
        const std::string state = r.text(0, 0);
        if (state == "completed") {
            record.state = idempotency_state::completed;
        } else if (state != "in_progress") {
            settle::detail::throw_decode_error("idempotency_record",
                                               "unknown state \"" + state + "\"");
        }
        const auto digest = r.raw(0, 1);
        sha256_digest::bytes_type fp{};
        if (digest.size() != fp.size()) {
            settle::detail::throw_wrong_size("idempotency_record fingerprint", fp.size(),
                                             digest.size());
        }
        std::transform(digest.begin(), digest.end(), fp.begin(),
                       [](std::byte b) { return std::to_integer<std::uint8_t>(b); });
        record.fingerprint = sha256_digest(fp);
        record.token = fencing_token(static_cast<std::uint64_t>(r.int8(0, 2)));
        record.claimed_at = settle::detail::from_sql_micros(r.int8(0, 3));
        record.expires_at = settle::detail::from_sql_micros(r.int8(0, 4));
        record.response.body = r.bytea(0, 5);
        if (!r.null(0, 6)) {
            record.response.status = r.int4(0, 6);
        }
        return record;
    }

    detail::table table_;
    std::string claim_;
    std::string find_;
    std::string complete_;
    std::string abandon_;
    std::string purge_;
};

static_assert(settle::idempotency_store<idempotency_table>);

/// Whether a store's appends wake relays waiting in wait_for_append (or an
/// append_waiter): notify sends NOTIFY "<table>_append" with each append, when
/// its transaction commits. It costs a notification per append, and PostgreSQL
/// serialises the commits of notifying transactions database-wide; poll, the
/// default, leaves relays to their idle backoff.
enum class wakeup { poll, notify };

/// settle::outbox_appender and settle::outbox_store, with every operator
/// task, over one table (docs/backends.md has the DDL): id
/// UUID primary key, sequence an identity column, times BIGINT Unix
/// microseconds, payload and headers BYTEA, and partial indexes for claims
/// (next_attempt_at, sequence), keyed records (ordering_key, sequence), purge
/// (finished_at) and dead letters (sequence). Topic, ordering key and owners are TEXT: valid in the
/// database's encoding, or the server refuses them. last_error is BYTEA: a
/// failure's reason comes from a publisher or an exception and is kept byte
/// for byte, since refusing it would lose the whole batch's outcomes.
///
/// Every operation is one statement at READ COMMITTED, except append with an
/// ordering key, which first takes a transaction-level advisory lock on the
/// key (hashed with the table's OID): appends for one key are serialised until their transactions
/// end, so a record never commits before an older one of its key. A claim selects due records FOR
/// UPDATE SKIP LOCKED and marks them in flight, each with a claim_token one above its last, in the
/// same statement, so relays on separate connections share the work without waiting for each other.
/// It updates the selected rows by their addresses (a TID scan), so its plan stays the same however
/// large the backlog, and the server keeps it instead of planning every claim.
/// An outcome applies only while the record is in flight under its token. Built with
/// wakeup::notify, a committed append notifies the channel "<name>_append", which wait_for_append
/// listens on.
class outbox_table {
public:
    /// The transaction type of the settle::outbox_store this table models.
    using transaction = postgres::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes, or two joined by a dot (schema and
    /// table). Touches no table.
    /// With outbox_retention::delete_on_delivery, mark_delivered deletes the
    /// row (DELETE ... WHERE claim_token = ...) instead of updating it.
    outbox_table(connection& c, std::string_view table_name, wakeup appends = wakeup::poll,
                 outbox_retention retention = outbox_retention::keep)
        : table_(c, table_name, "postgres::outbox_table"),
          channel_(channel_of(table_name)),
          append_(append_statement(table_.quoted, appends, channel_)),
          // The due records are selected in order and locked, then updated by their
          // addresses (a TID scan), which hold while they are locked. The limit is a
          // subquery, so the server plans every claim as it plans the generic one (for a
          // tenth of the due records: the ordered index scan that stops at the limit) and
          // keeps that plan; as a parameter, each claim would be planned again.
          claim_("UPDATE " + table_.quoted +
                 " r SET status = 'in_flight', attempts = LEAST(r.attempts + 1, 4294967295), "
                 "claim_owner = $3, claim_token = r.claim_token + 1, claim_expires_at = $4 WHERE "
                 "r.ctid = ANY (ARRAY(SELECT ctid FROM " +
                 table_.quoted +
                 " d WHERE d.status IN ('pending', 'in_flight') AND d.next_attempt_at <= $1 AND "
                 "(d.status = 'pending' OR d.claim_expires_at <= $1) AND (d.ordering_key = '' OR "
                 "NOT EXISTS (SELECT 1 FROM " +
                 table_.quoted +
                 " o WHERE o.ordering_key = d.ordering_key AND o.ordering_key <> '' AND "
                 "o.sequence < d.sequence AND o.status <> 'delivered')) ORDER BY "
                 "d.next_attempt_at, d.sequence LIMIT (SELECT $2::bigint) FOR UPDATE SKIP "
                 "LOCKED)) RETURNING " +
                 columns("r.")),
          delivered_(retention == outbox_retention::keep
                         ? outcome("status = 'delivered', finished_at = $3")
                         : "DELETE FROM " + table_.quoted +
                               " WHERE id = $1 AND status = 'in_flight' AND claim_token = $2"),
          delivered_together_(
              (retention == outbox_retention::keep
                   ? "UPDATE " + table_.quoted +
                         " r SET status = 'delivered', finished_at = $3, claim_owner = '', "
                         "claim_expires_at = 0 FROM"
                   : "DELETE FROM " + table_.quoted + " r USING") +
              " unnest($1::uuid[], $2::bigint[]) AS c(id, token) WHERE r.id = c.id AND "
              "r.claim_token = c.token AND r.status = 'in_flight' RETURNING r.id, r.claim_token"),
          reschedule_(outcome("status = 'pending', next_attempt_at = $3, last_error = $4")),
          dead_(outcome("status = 'dead', last_error = $3, finished_at = $4")),
          release_(outcome("status = 'pending', attempts = GREATEST(attempts - 1, 0)")),
          requeue_("UPDATE " + table_.quoted +
                   " SET status = 'pending', attempts = 0, next_attempt_at = $2, finished_at = 0 "
                   "WHERE id = $1 AND status = 'dead'"),
          purge_("DELETE FROM " + table_.quoted + " WHERE id = ANY (ARRAY(SELECT id FROM " +
                 table_.quoted +
                 " WHERE status = 'delivered' AND finished_at < $1 ORDER BY finished_at LIMIT $2 "
                 "FOR UPDATE SKIP LOCKED))"),
          statistics_(
              "SELECT count(*) FILTER (WHERE status IN ('pending', 'in_flight')), "
              "count(*) FILTER (WHERE status = 'in_flight' AND claim_expires_at > $1), "
              "count(*) FILTER (WHERE status = 'dead'), min(created_at) FILTER (WHERE "
              "status IN ('pending', 'in_flight')) FROM " +
              table_.quoted + " WHERE status <> 'delivered'"),
          find_("SELECT " + columns("") + " FROM " + table_.quoted + " WHERE id = $1"),
          dead_letters_("SELECT " + columns("") + " FROM " + table_.quoted +
                        " WHERE status = 'dead' AND sequence > $1 ORDER BY sequence LIMIT $2") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// Creates the table and its indexes unless the table exists: safe to
    /// apply again.
    [[nodiscard]] std::string ddl() const {
        return table_.create_once(
            "        id               UUID    PRIMARY KEY,\n"
            "        sequence         BIGINT  GENERATED ALWAYS AS IDENTITY,\n"
            "        topic            TEXT    NOT NULL,\n"
            "        ordering_key     TEXT    NOT NULL DEFAULT '',\n"
            "        payload          BYTEA   NOT NULL,\n"
            "        headers          BYTEA   NOT NULL,\n"
            "        created_at       BIGINT  NOT NULL,\n"
            "        attempts         BIGINT  NOT NULL DEFAULT 0,\n"
            "        next_attempt_at  BIGINT  NOT NULL,\n"
            "        status           TEXT    NOT NULL\n"
            "            CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead')),\n"
            "        last_error       BYTEA   NOT NULL DEFAULT '',\n"
            "        claim_owner      TEXT    NOT NULL DEFAULT '',\n"
            "        claim_token      BIGINT  NOT NULL DEFAULT 0,\n"
            "        claim_expires_at BIGINT  NOT NULL DEFAULT 0,\n"
            "        finished_at      BIGINT  NOT NULL DEFAULT 0\n",
            {"(next_attempt_at, sequence) WHERE status IN ('pending', 'in_flight')",
             "(ordering_key, sequence) WHERE ordering_key <> '' AND status <> 'delivered'",
             "(finished_at) WHERE status = 'delivered'", "(sequence) WHERE status = 'dead'"});
    }

    /// Creates the table if it does not exist, in the caller's transaction.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "postgres::outbox_table::create_tables"), ddl(),
                       "postgres::outbox_table::create_tables");
    }

    /// Throws settle::error (errc::invalid_argument) for a nil id. An id
    /// already stored is a duplicate; the transaction stays usable.
    outbox_append_result append(transaction& tx, outbox_message message, stored_time now) {
        constexpr const char* who = "postgres::outbox_table::append";
        const detail::session conn = tx.joined(table_.conn, who);
        if (message.id == uuid{}) {
            throw settle::error(errc::invalid_argument, std::string(who) + ": the id is nil");
        }
        settle::detail::check_key_size(message.ordering_key.size(), who, "ordering key");
        if (!message.ordering_key.empty()) {
            (void)detail::exec(conn, who, detail::lock_statement,
                               {detail::text(detail::lock_text({message.ordering_key})),
                                detail::text(table_.quoted)});
        }
        const detail::result r = detail::exec(
            conn, who, append_,
            {detail::uuid_param(message.id), detail::text(message.topic),
             detail::text(message.ordering_key), detail::bytea(message.payload),
             detail::bytea(settle::detail::encode_outbox_headers(message.headers, who)),
             detail::micros(now)});
        if (r.rows() != 1) {
            return outbox_append_result::duplicate();  // ON CONFLICT DO NOTHING returned no row
        }
        return outbox_append_result::appended(static_cast<std::uint64_t>(r.int8(0, 0)));
    }

    ///@{
    /// The settle::outbox_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] std::vector<outbox_record> claim(transaction& tx, std::string_view owner,
                                                   stored_time now, stored_time lease_until,
                                                   std::size_t limit) {
        constexpr const char* who = "postgres::outbox_table::claim";
        const detail::session conn = tx.joined(table_.conn, who);
        if (owner.empty()) {
            throw settle::error(errc::invalid_argument, std::string(who) + ": the owner is empty");
        }
        std::vector<outbox_record> claimed =
            records(detail::exec(conn, who, claim_,
                                 {detail::micros(now), detail::limit(limit), detail::text(owner),
                                  detail::micros(lease_until)}));
        std::sort(claimed.begin(), claimed.end(),
                  [](const outbox_record& a, const outbox_record& b) {
                      return std::tie(a.next_attempt_at, a.sequence) <
                             std::tie(b.next_attempt_at, b.sequence);
                  });
        return claimed;
    }

    [[nodiscard]] fenced_write mark_delivered(transaction& tx, const uuid& id, fencing_token token,
                                              stored_time now) {
        return write(
            tx, delivered_, "postgres::outbox_table::mark_delivered",
            {detail::uuid_param(id), detail::unsigned8(token.value()), detail::micros(now)});
    }
    ///@}

    /// mark_delivered for each of `claims` in one statement; the answers in
    /// their order (a claim given twice is applied once, then stale). One
    /// claim takes the single-record statement, whose plan the server keeps:
    /// it plans the batch statement again on every call for one claim.
    [[nodiscard]] std::vector<fenced_write> mark_delivered(transaction& tx,
                                                           std::span<const outbox_claim> claims,
                                                           stored_time now) {
        constexpr const char* who = "postgres::outbox_table::mark_delivered";
        if (claims.size() == 1) {
            return {mark_delivered(tx, claims.front().id, claims.front().token, now)};
        }
        const detail::result r = detail::exec(
            tx.joined(table_.conn, who), who, delivered_together_,
            {detail::binary_array(detail::uuid_array_oid, detail::uuid_oid, claims, who,
                                  [](const outbox_claim& c) { return detail::uuid_param(c.id); }),
             detail::binary_array(
                 detail::int8_array_oid, detail::int8_oid, claims, who,
                 [](const outbox_claim& c) { return detail::unsigned8(c.token.value()); }),
             detail::micros(now)});
        std::vector<settle::detail::applied_claim> applied;
        applied.reserve(static_cast<std::size_t>(r.rows()));
        for (int i = 0; i < r.rows(); ++i) {
            applied.emplace_back(r.uuid_at(i, 0), static_cast<std::uint64_t>(r.int8(i, 1)));
        }
        return settle::detail::answer_claims(claims, std::move(applied));
    }

    ///@{
    /// The settle::outbox_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] fenced_write reschedule(transaction& tx, const uuid& id, fencing_token token,
                                          std::string_view reason, stored_time next_attempt_at) {
        return write(tx, reschedule_, "postgres::outbox_table::reschedule",
                     {detail::uuid_param(id), detail::unsigned8(token.value()),
                      detail::micros(next_attempt_at), detail::text_bytes(reason)});
    }

    [[nodiscard]] fenced_write dead_letter(transaction& tx, const uuid& id, fencing_token token,
                                           std::string_view reason, stored_time now) {
        return write(tx, dead_, "postgres::outbox_table::dead_letter",
                     {detail::uuid_param(id), detail::unsigned8(token.value()),
                      detail::text_bytes(reason), detail::micros(now)});
    }

    [[nodiscard]] fenced_write release(transaction& tx, const uuid& id, fencing_token token) {
        return write(tx, release_, "postgres::outbox_table::release",
                     {detail::uuid_param(id), detail::unsigned8(token.value())});
    }

    [[nodiscard]] bool requeue(transaction& tx, const uuid& id, stored_time now) {
        constexpr const char* who = "postgres::outbox_table::requeue";
        return detail::exec(tx.joined(table_.conn, who), who, requeue_,
                            {detail::uuid_param(id), detail::micros(now)})
                   .affected() == 1;
    }
    ///@}

    /// Skips delivered records another transaction holds locked.
    [[nodiscard]] std::size_t purge(transaction& tx, stored_time delivered_before,
                                    std::size_t limit) {
        constexpr const char* who = "postgres::outbox_table::purge";
        return static_cast<std::size_t>(
            detail::exec(tx.joined(table_.conn, who), who, purge_,
                         {detail::micros(delivered_before), detail::limit(limit)})
                .affected());
    }

    ///@{
    /// What operators read: the counts of records by status, one record, the dead letters.
    [[nodiscard]] outbox_statistics statistics(transaction& tx, stored_time now) const {
        constexpr const char* who = "postgres::outbox_table::statistics";
        const detail::result r =
            detail::exec(tx.joined(table_.conn, who), who, statistics_, {detail::micros(now)});
        outbox_statistics s;
        s.backlog = static_cast<std::size_t>(r.int8(0, 0));
        s.in_flight = static_cast<std::size_t>(r.int8(0, 1));
        s.dead = static_cast<std::size_t>(r.int8(0, 2));
        if (!r.null(0, 3)) {
            const stored_time oldest = settle::detail::from_sql_micros(r.int8(0, 3));
            if (oldest < now) {
                s.oldest_pending_age = now - oldest;
            }
        }
        return s;
    }

    [[nodiscard]] std::optional<outbox_record> find(transaction& tx, const uuid& id) const {
        constexpr const char* who = "postgres::outbox_table::find";
        std::vector<outbox_record> found = records(
            detail::exec(tx.joined(table_.conn, who), who, find_, {detail::uuid_param(id)}));
        if (found.empty()) {
            return std::nullopt;
        }
        return std::move(found.front());
    }

    [[nodiscard]] std::vector<outbox_record> dead_letters(transaction& tx,
                                                          std::uint64_t after_sequence,
                                                          std::size_t limit) const {
        constexpr const char* who = "postgres::outbox_table::dead_letters";
        if (after_sequence >=
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return {};
        }
        return records(detail::exec(tx.joined(table_.conn, who), who, dead_letters_,
                                    {detail::unsigned8(after_sequence), detail::limit(limit)}));
    }
    ///@}

    /// Waits until an append to this table commits on any connection (true), or
    /// until `timeout` passes (false). Listens on the store's connection from
    /// the first call on (again after a reconnect), so an append committed
    /// before that first call wakes nobody, and appends committed while the
    /// connection ran transactions wake the next call at once: keep polling
    /// with a timeout, as the relay's idle wait does. Consumes every
    /// notification the connection received, of any channel. Between
    /// transactions only: settle::error (errc::invalid_argument) while one is
    /// open on the connection, errc::unavailable if the connection is lost.
    [[nodiscard]] bool wait_for_append(std::chrono::milliseconds timeout) {
        constexpr const char* who = "postgres::outbox_table::wait_for_append";
        connection& c = *table_.conn;
        if (c.busy_) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) + ": a transaction is open on the connection");
        }
        c.reconnect_if_lost();
        if (listening_ != c.generation_) {
            (void)detail::exec(c.conn_, who, "LISTEN \"" + channel_ + "\"", {});
            listening_ = c.generation_;
        }
        // now + timeout, saturating: a sum past the end of time would wrap
        // (milliseconds::max() does) and end the wait at once.
        using steady = std::chrono::steady_clock;
        const steady::time_point now = steady::now();
        steady::time_point deadline = steady::time_point::max();
        if (timeout < std::chrono::floor<std::chrono::milliseconds>(deadline - now)) {
            deadline = now + std::max(timeout, std::chrono::milliseconds::zero());
        }
        for (;;) {
            if (PQconsumeInput(c.conn_) == 0) {
                detail::fail(c.conn_, nullptr, who);
            }
            bool woken = false;
            while (PGnotify* n = PQnotifies(c.conn_)) {
                woken = woken || channel_ == n->relname;
                PQfreemem(n);
            }
            if (woken) {
                return true;
            }
            const auto left =
                std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
            if (left <= std::chrono::milliseconds::zero()) {
                return false;
            }
            pollfd socket{PQsocket(c.conn_), POLLIN, 0};
            const auto wait = std::min<std::chrono::milliseconds::rep>(
                left.count(), std::numeric_limits<int>::max());
            if (socket.fd < 0 ||
                (::poll(&socket, 1, static_cast<int>(wait)) < 0 && errno != EINTR)) {
                throw settle::error(errc::unavailable,
                                    std::string(who) + ": cannot wait on the connection's socket");
            }
        }
    }

private:
    // The record columns, in outbox_record's order.
    [[nodiscard]] static std::string columns(std::string_view p) {
        std::string out;
        for (const char* c : {"id", "sequence", "topic", "ordering_key", "payload", "headers",
                              "created_at", "attempts", "next_attempt_at", "status", "last_error",
                              "claim_owner", "claim_token", "claim_expires_at", "finished_at"}) {
            if (!out.empty()) {
                out += ", ";
            }
            out += p;
            out += c;
        }
        return out;
    }

    // "<table>_append", the table's name without its schema: one channel per
    // database, so tables of one name in two schemas wake each other's
    // waiters, which then find nothing new and wait again.
    [[nodiscard]] static std::string channel_of(std::string_view table_name) {
        const std::size_t dot = table_name.find('.');
        return std::string(dot == std::string_view::npos ? table_name
                                                         : table_name.substr(dot + 1)) +
               "_append";
    }

    // The insert, and with wakeup::notify the notification, in one statement.
    [[nodiscard]] static std::string append_statement(const std::string& table, wakeup appends,
                                                      const std::string& channel) {
        std::string insert = "INSERT INTO " + table +
                             " (id, topic, ordering_key, payload, headers, created_at, "
                             "next_attempt_at, status) VALUES ($1, $2, $3, $4, $5, $6, $6, "
                             "'pending') ON CONFLICT (id) DO NOTHING RETURNING sequence";
        if (appends == wakeup::poll) {
            return insert;
        }
        // The channel is a checked identifier with a suffix: a literal it cannot escape.
        return "WITH appended AS (" + insert + ") SELECT sequence, pg_notify('" + channel +
               "', '') FROM appended";
    }

    // An outcome: `set`, and the claim cleared, only while in flight under
    // the claim whose token is $2.
    [[nodiscard]] std::string outcome(std::string_view set) const {
        return "UPDATE " + table_.quoted + " SET " + std::string(set) +
               ", claim_owner = '', claim_expires_at = 0 WHERE id = $1 AND status = 'in_flight' "
               "AND claim_token = $2";
    }

    [[nodiscard]] fenced_write write(transaction& tx, const std::string& sql, const char* who,
                                     std::initializer_list<detail::param> params) {
        return detail::exec(tx.joined(table_.conn, who), who, sql, params).affected() == 1
                   ? fenced_write::applied
                   : fenced_write::stale;
    }

    [[nodiscard]] static std::vector<outbox_record> records(const detail::result& r) {
        std::vector<outbox_record> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int i = 0; i < r.rows(); ++i) {
            outbox_record record;
            record.id = r.uuid_at(i, 0);
            record.sequence = static_cast<std::uint64_t>(r.int8(i, 1));
            record.topic = r.text(i, 2);
            record.ordering_key = r.text(i, 3);
            record.payload = r.bytea(i, 4);
            record.headers = settle::detail::decode_outbox_headers(r.raw(i, 5));
            record.created_at = settle::detail::from_sql_micros(r.int8(i, 6));
            record.attempts = static_cast<std::uint32_t>(r.int8(i, 7));
            record.next_attempt_at = settle::detail::from_sql_micros(r.int8(i, 8));
            record.status = settle::detail::outbox_status_of(r.text(i, 9));
            record.last_error = r.text(i, 10);
            record.claim_owner = r.text(i, 11);
            record.claim_token = fencing_token(static_cast<std::uint64_t>(r.int8(i, 12)));
            record.claim_expires_at = settle::detail::from_sql_micros(r.int8(i, 13));
            record.finished_at = settle::detail::from_sql_micros(r.int8(i, 14));
            out.push_back(std::move(record));
        }
        return out;
    }

    detail::table table_;
    std::string channel_;
    std::string append_;
    std::string claim_;
    std::string delivered_;
    std::string delivered_together_;
    std::string reschedule_;
    std::string dead_;
    std::string release_;
    std::string requeue_;
    std::string purge_;
    std::string statistics_;
    std::string find_;
    std::string dead_letters_;
    std::uint64_t listening_ = 0;  // the connection generation LISTEN was issued on; 0: none
};

static_assert(settle::outbox_appender<outbox_table>);
static_assert(settle::outbox_store<outbox_table>);

/// A settle::sleeper for outbox_relay::run that ends an idle wait as soon as
/// an append to the store's table commits (appenders' stores built with
/// wakeup::notify), instead of sleeping it out:
///
///     postgres::append_waiter waiter(store);
///     relay.run(stop_token, waiter);
///
/// It waits on the store's connection, which is free between the relay's
/// transactions, and looks at the stop token at least every 50 ms. It listens
/// from its first wait on a session: an append committed before that (before
/// the first wait, or after a reconnect) waits for the backoff. If the
/// connection is lost it sleeps the rest of the wait plainly: the relay's next
/// round reconnects. Other failures of the wait (settle::error) propagate out
/// of the relay's run().
class append_waiter {
public:
    /// A waiter for appends to the given table.
    explicit append_waiter(outbox_table& store) noexcept : store_(&store) {}

    /// True when the wait is over, early on an append; false once stopped.
    bool sleep_for(std::chrono::nanoseconds d, std::stop_token stop) {
        using steady = std::chrono::steady_clock;
        const steady::time_point start = steady::now();
        const steady::time_point until =
            d > steady::time_point::max() - start ? steady::time_point::max() : start + d;
        while (!stop.stop_requested()) {
            const steady::duration left = until - steady::now();
            if (left <= steady::duration::zero()) {
                return true;
            }
            const auto slice = std::min(std::chrono::ceil<std::chrono::milliseconds>(left),
                                        std::chrono::milliseconds(50));
            try {
                if (store_->wait_for_append(slice)) {
                    return true;
                }
            } catch (const settle::error& e) {
                if (e.code() != errc::unavailable) {
                    throw;
                }
                return system_sleeper().sleep_for(until - steady::now(), stop);
            }
        }
        return false;
    }

private:
    outbox_table* store_;
};

/// settle::inbox_store and settle::purgeable_inbox_store over a table keyed by
/// (consumer, message_id), with an index on (consumer, applied_at) for purge,
/// which removes one consumer's oldest records; times are BIGINT Unix
/// microseconds, consumer and message id TEXT. mark is one INSERT ... ON
/// CONFLICT DO NOTHING: a concurrent mark of the same pair waits for the first
/// transaction, then answers duplicate if it committed. purge skips records
/// another transaction holds locked.
class inbox_table {
public:
    /// The transaction type of the settle::inbox_store this table models.
    using transaction = postgres::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes, or two joined by a dot (schema and
    /// table). Touches no table.
    inbox_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "postgres::inbox_table"),
          mark_("INSERT INTO " + table_.quoted +
                " (consumer, message_id, applied_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"),
          purge_("DELETE FROM " + table_.quoted + " WHERE ctid = ANY (ARRAY(SELECT ctid FROM " +
                 table_.quoted +
                 " WHERE consumer = $1 AND applied_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED))") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// Creates the table and its index unless the table exists: safe to apply
    /// again.
    [[nodiscard]] std::string ddl() const {
        return table_.create_once(
            "        consumer   TEXT   NOT NULL,\n"
            "        message_id TEXT   NOT NULL,\n"
            "        applied_at BIGINT NOT NULL,\n"
            "        PRIMARY KEY (consumer, message_id)\n",
            {"(consumer, applied_at)"});
    }

    ///@{
    /// Creates the table if it does not exist, then the settle::inbox_store operations (see the
    /// concept for what each guarantees), in the caller's transaction.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "postgres::inbox_table::create_tables"), ddl(),
                       "postgres::inbox_table::create_tables");
    }

    [[nodiscard]] inbox_mark mark(transaction& tx, std::string_view consumer,
                                  std::string_view message_id, stored_time now) {
        constexpr const char* who = "postgres::inbox_table::mark";
        settle::detail::check_key_size(consumer.size(), who, "consumer");
        settle::detail::check_key_size(message_id.size(), who, "message id");
        const detail::result r =
            detail::exec(tx.joined(table_.conn, who), who, mark_,
                         {detail::text(consumer), detail::text(message_id), detail::micros(now)});
        return r.affected() == 1 ? inbox_mark::first_time : inbox_mark::duplicate;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, std::string_view consumer,
                                    stored_time applied_before, std::size_t limit) {
        constexpr const char* who = "postgres::inbox_table::purge";
        return static_cast<std::size_t>(
            detail::exec(
                tx.joined(table_.conn, who), who, purge_,
                {detail::text(consumer), detail::micros(applied_before), detail::limit(limit)})
                .affected());
    }
    ///@}

private:
    detail::table table_;
    std::string mark_;
    std::string purge_;
};

static_assert(settle::purgeable_inbox_store<inbox_table>);

// ---------------------------------------------------------------------------
// Try/confirm/cancel barrier

/// settle::barrier_store and settle::purgeable_barrier_store over a table
/// keyed by (transaction_id, branch_id), TEXT, with the branch's state (TEXT:
/// tried, confirmed, cancelled, cancel_marker for an empty cancel) and the
/// time of its last change (BIGINT Unix microseconds), indexed for purge.
///
/// A try and a cancel insert first (INSERT ... ON CONFLICT DO NOTHING): a call
/// that meets another transaction's uncommitted insert of the branch waits for
/// it, and then finds its record if it committed. A confirm, and a cancel that
/// met a record, update it only while it is tried (UPDATE ... WHERE state =
/// 'tried'), which waits for a concurrent update of that row and checks again.
/// Nothing reads first, and no missing row is locked. A call that changes
/// nothing reads the state once. Under READ COMMITTED a branch that changes
/// between those statements (a purge, or a try committed just then) throws
/// settle::error (errc::aborted): run the transaction again. purge skips
/// records another transaction holds locked.
class barrier_table {
public:
    /// The transaction type of the settle::barrier_store this table models.
    using transaction = postgres::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    barrier_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "postgres::barrier_table"),
          insert_("INSERT INTO " + table_.quoted +
                  " (transaction_id, branch_id, state, changed_at) VALUES ($1, $2, $3, $4) "
                  "ON CONFLICT DO NOTHING"),
          update_("UPDATE " + table_.quoted +
                  " SET state = $3, changed_at = $4 WHERE transaction_id = $1 AND branch_id = $2 "
                  "AND state = 'tried'"),
          select_("SELECT state FROM " + table_.quoted +
                  " WHERE transaction_id = $1 AND branch_id = $2"),
          purge_("DELETE FROM " + table_.quoted + " WHERE ctid = ANY (ARRAY(SELECT ctid FROM " +
                 table_.quoted +
                 " WHERE state <> 'tried' AND changed_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// Creates the table and its index unless the table exists: safe to apply
    /// again.
    [[nodiscard]] std::string ddl() const {
        return table_.create_once(
            "        transaction_id TEXT   NOT NULL,\n"
            "        branch_id      TEXT   NOT NULL,\n"
            "        state          TEXT   NOT NULL,\n"
            "        changed_at     BIGINT NOT NULL,\n"
            "        PRIMARY KEY (transaction_id, branch_id)\n",
            {"(changed_at)"});
    }

    ///@{
    /// Creates the table if it does not exist, then the settle::barrier_store operations (see the
    /// concept for what each guarantees), in the caller's transaction.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "postgres::barrier_table::create_tables"), ddl(),
                       "postgres::barrier_table::create_tables");
    }

    [[nodiscard]] barrier_outcome enter(transaction& tx, std::string_view transaction_id,
                                        std::string_view branch_id, barrier_phase phase,
                                        stored_time now) {
        constexpr const char* who = "postgres::barrier_table::enter";
        settle::detail::check_key_size(transaction_id.size(), who, "transaction id");
        settle::detail::check_key_size(branch_id.size(), who, "branch id");
        const detail::session s = tx.joined(table_.conn, who);
        using settle::detail::barrier_state;
        const auto write = [&](const std::string& sql, barrier_state state) {
            return detail::exec(s, who, sql,
                                {detail::text(transaction_id), detail::text(branch_id),
                                 detail::text(settle::detail::barrier_state_text(state)),
                                 detail::micros(now)})
                       .affected() == 1;
        };
        if (phase != barrier_phase::confirm &&
            write(insert_, phase == barrier_phase::try_phase ? barrier_state::tried
                                                             : barrier_state::cancel_marker)) {
            return settle::detail::step(std::nullopt, phase).outcome;
        }
        if (phase != barrier_phase::try_phase &&
            write(update_, phase == barrier_phase::confirm ? barrier_state::confirmed
                                                           : barrier_state::cancelled)) {
            return barrier_outcome::entered;
        }
        const detail::result r =
            detail::exec(s, who, select_, {detail::text(transaction_id), detail::text(branch_id)});
        std::optional<barrier_state> state;
        if (r.rows() > 0) {
            state = settle::detail::barrier_state_from(r.text(0, 0));
            if (!state) {
                throw settle::error(errc::decode_failed,
                                    std::string(who) + " on table " + table_.quoted +
                                        ": a branch has a state settle does not write");
            }
        }
        const settle::detail::barrier_step step = settle::detail::step(state, phase);
        if (step.next) {
            throw settle::error(errc::aborted, std::string(who) + " on table " + table_.quoted +
                                                   ": the branch changed while it was entered; "
                                                   "run the transaction again");
        }
        return step.outcome;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time ended_before, std::size_t limit) {
        constexpr const char* who = "postgres::barrier_table::purge";
        return static_cast<std::size_t>(
            detail::exec(tx.joined(table_.conn, who), who, purge_,
                         {detail::micros(ended_before), detail::limit(limit)})
                .affected());
    }
    ///@}

private:
    detail::table table_;
    std::string insert_;
    std::string update_;
    std::string select_;
    std::string purge_;
};

static_assert(settle::purgeable_barrier_store<barrier_table>);

// ---------------------------------------------------------------------------
// Reconciliation

/// settle::reconcile_store over a table keyed by id (TEXT), with the time the
/// record became uncertain, its unknown answers, its next check, and, once
/// escalated, when and why (BIGINT Unix microseconds; reason TEXT), indexed on
/// uncertain_since for due. watch is one INSERT ... ON CONFLICT DO NOTHING (a
/// concurrent watch of the same id waits for the first); due one SELECT,
/// longest uncertain first (then by id); forget one DELETE (of two concurrent
/// forgets, the second waits and then finds nothing); reschedule and escalate
/// one UPDATE each, of a watched record only.
class reconcile_table {
public:
    /// The transaction type of the settle::reconcile_store this table models.
    using transaction = postgres::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    reconcile_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "postgres::reconcile_table"),
          watch_("INSERT INTO " + table_.quoted +
                 " (id, uncertain_since, unknown_answers, next_check_at) VALUES ($1, $2, 0, $2) "
                 "ON CONFLICT DO NOTHING"),
          due_("SELECT id, uncertain_since, unknown_answers, next_check_at FROM " + table_.quoted +
               " WHERE escalated_at IS NULL AND uncertain_since < $1 AND next_check_at <= $2 "
               "ORDER BY uncertain_since, id LIMIT $3"),
          forget_("DELETE FROM " + table_.quoted + " WHERE id = $1"),
          reschedule_("UPDATE " + table_.quoted +
                      " SET unknown_answers = $2, next_check_at = $3 WHERE id = $1 AND "
                      "escalated_at IS NULL"),
          escalate_("UPDATE " + table_.quoted +
                    " SET escalated_at = $2, reason = $3 WHERE id = $1 AND escalated_at IS NULL") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// Creates the table and its index unless the table exists: safe to apply
    /// again.
    [[nodiscard]] std::string ddl() const {
        return table_.create_once(
            "        id              TEXT   NOT NULL PRIMARY KEY,\n"
            "        uncertain_since BIGINT NOT NULL,\n"
            "        unknown_answers BIGINT NOT NULL,\n"
            "        next_check_at   BIGINT NOT NULL,\n"
            "        escalated_at    BIGINT,\n"
            "        reason          TEXT\n",
            {"(uncertain_since)"});
    }

    ///@{
    /// Creates the table if it does not exist, then the settle::reconcile_store operations (see the
    /// concept for what each guarantees), in the caller's transaction.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "postgres::reconcile_table::create_tables"), ddl(),
                       "postgres::reconcile_table::create_tables");
    }

    [[nodiscard]] bool watch(transaction& tx, std::string_view id, stored_time now) {
        constexpr const char* who = "postgres::reconcile_table::watch";
        settle::detail::check_key_size(id.size(), who, "id");
        return detail::exec(tx.joined(table_.conn, who), who, watch_,
                            {detail::text(id), detail::micros(now)})
                   .affected() == 1;
    }

    [[nodiscard]] std::vector<uncertain_record> due(transaction& tx, stored_time uncertain_before,
                                                    stored_time now, std::size_t limit) {
        constexpr const char* who = "postgres::reconcile_table::due";
        const detail::result r = detail::exec(
            tx.joined(table_.conn, who), who, due_,
            {detail::micros(uncertain_before), detail::micros(now), detail::limit(limit)});
        std::vector<uncertain_record> out;
        for (int row = 0; row < r.rows(); ++row) {
            out.push_back({r.text(row, 0), settle::detail::from_sql_micros(r.int8(row, 1)),
                           static_cast<std::uint32_t>(std::clamp<std::int64_t>(
                               r.int8(row, 2), 0, std::numeric_limits<std::uint32_t>::max())),
                           settle::detail::from_sql_micros(r.int8(row, 3))});
        }
        return out;
    }

    [[nodiscard]] bool forget(transaction& tx, std::string_view id) {
        constexpr const char* who = "postgres::reconcile_table::forget";
        return detail::exec(tx.joined(table_.conn, who), who, forget_, {detail::text(id)})
                   .affected() == 1;
    }

    [[nodiscard]] bool reschedule(transaction& tx, std::string_view id,
                                  std::uint32_t unknown_answers, stored_time next_check_at) {
        constexpr const char* who = "postgres::reconcile_table::reschedule";
        return detail::exec(tx.joined(table_.conn, who), who, reschedule_,
                            {detail::text(id), detail::int8(std::int64_t{unknown_answers}),
                             detail::micros(next_check_at)})
                   .affected() == 1;
    }

    [[nodiscard]] bool escalate(transaction& tx, std::string_view id, std::string_view reason,
                                stored_time now) {
        constexpr const char* who = "postgres::reconcile_table::escalate";
        return detail::exec(tx.joined(table_.conn, who), who, escalate_,
                            {detail::text(id), detail::micros(now), detail::text(reason)})
                   .affected() == 1;
    }
    ///@}

private:
    detail::table table_;
    std::string watch_;
    std::string due_;
    std::string forget_;
    std::string reschedule_;
    std::string escalate_;
};

static_assert(settle::reconcile_store<reconcile_table>);

// ---------------------------------------------------------------------------
// Sagas

/// settle::saga_store and settle::purgeable_saga_store over a table keyed by
/// id (TEXT), with the saga's type, status and error (TEXT), step, attempts,
/// version and next run (BIGINT, the next run in Unix microseconds) and data
/// (BYTEA, byte for byte), indexed on (type, next_run_at) for running and
/// compensating sagas, and on (next_run_at) for completed and compensated
/// ones, which purge reads: its batch is found through that index and deleted
/// through an array of keys, skipping rows another transaction holds locked,
/// never a scan of the table. create is one
/// INSERT ... ON CONFLICT DO NOTHING (a concurrent create of the same id waits
/// for the first); load one SELECT; update one UPDATE ... WHERE id = $1 AND
/// version = $2 (of two concurrent updates naming one version, the second
/// waits for the first's row lock, then finds the version moved on and changes
/// nothing); due one SELECT, the earliest next run first (then by id). A
/// status settle never writes throws settle::error (errc::decode_failed), the
/// row kept.
class saga_table {
public:
    /// The transaction type of the settle::saga_store this table models.
    using transaction = postgres::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    saga_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "postgres::saga_table"),
          create_("INSERT INTO " + table_.quoted +
                  " (id, type, status, step, attempts, data, next_run_at, version, last_error) "
                  "VALUES ($1, $2, 'running', 0, 0, $3, $4, 1, '') ON CONFLICT DO NOTHING"),
          load_("SELECT " + std::string(columns) + " FROM " + table_.quoted + " WHERE id = $1"),
          update_("UPDATE " + table_.quoted +
                  " SET status = $3, step = $4, attempts = $5, next_run_at = $6, last_error = $7, "
                  "version = version + 1 WHERE id = $1 AND version = $2"),
          due_("SELECT " + std::string(columns) + " FROM " + table_.quoted +
               " WHERE type = $1 AND status IN ('running', 'compensating') AND next_run_at <= $2 "
               "ORDER BY next_run_at, id LIMIT $3"),
          purge_("DELETE FROM " + table_.quoted + " WHERE id = ANY (ARRAY(SELECT id FROM " +
                 table_.quoted +
                 " WHERE status IN ('completed', 'compensated') AND next_run_at < $1 LIMIT $2 "
                 "FOR UPDATE SKIP LOCKED))") {}

    /// A transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// Creates the table and its index unless the table exists: safe to apply
    /// again.
    [[nodiscard]] std::string ddl() const {
        return table_.create_once(
            "        id          TEXT   NOT NULL PRIMARY KEY,\n"
            "        type        TEXT   NOT NULL,\n"
            "        status      TEXT   NOT NULL,\n"
            "        step        BIGINT NOT NULL,\n"
            "        attempts    BIGINT NOT NULL,\n"
            "        data        BYTEA  NOT NULL,\n"
            "        next_run_at BIGINT NOT NULL,\n"
            "        version     BIGINT NOT NULL,\n"
            "        last_error  TEXT   NOT NULL\n",
            {"(type, next_run_at) WHERE status IN ('running', 'compensating')",
             "(next_run_at) WHERE status IN ('completed', 'compensated')"});
    }

    /// Runs ddl() in the caller's transaction.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "postgres::saga_table::create_tables"), ddl(),
                       "postgres::saga_table::create_tables");
    }

    ///@{
    /// The settle::saga_store operations (see the concept for what each guarantees).
    [[nodiscard]] bool create(transaction& tx, std::string_view id, std::string_view type,
                              std::string_view data, stored_time next_run_at) {
        constexpr const char* who = "postgres::saga_table::create";
        settle::detail::check_key_size(id.size(), who, "saga id");
        settle::detail::check_key_size(type.size(), who, "saga type");
        return detail::exec(tx.joined(table_.conn, who), who, create_,
                            {detail::text(id), detail::text(type), detail::text_bytes(data),
                             detail::micros(next_run_at)})
                   .affected() == 1;
    }

    [[nodiscard]] std::optional<saga_record> load(transaction& tx, std::string_view id) {
        constexpr const char* who = "postgres::saga_table::load";
        const detail::result r =
            detail::exec(tx.joined(table_.conn, who), who, load_, {detail::text(id)});
        if (r.rows() == 0) {
            return std::nullopt;
        }
        return read(r, 0);
    }

    [[nodiscard]] fenced_write update(transaction& tx, const saga_record& record) {
        constexpr const char* who = "postgres::saga_table::update";
        return detail::exec(tx.joined(table_.conn, who), who, update_,
                            {detail::text(record.id),
                             detail::int8(static_cast<std::int64_t>(record.version.value())),
                             detail::text(settle::detail::saga_status_text(record.status)),
                             detail::int8(std::int64_t{record.step}),
                             detail::int8(std::int64_t{record.attempts}),
                             detail::micros(record.next_run_at), detail::text(record.last_error)})
                           .affected() == 1
                   ? fenced_write::applied
                   : fenced_write::stale;
    }

    [[nodiscard]] std::vector<saga_record> due(transaction& tx, std::string_view type,
                                               stored_time now, std::size_t limit) {
        constexpr const char* who = "postgres::saga_table::due";
        const detail::result r =
            detail::exec(tx.joined(table_.conn, who), who, due_,
                         {detail::text(type), detail::micros(now), detail::limit(limit)});
        std::vector<saga_record> out;
        for (int row = 0; row < r.rows(); ++row) {
            out.push_back(read(r, row));
        }
        return out;
    }

    [[nodiscard]] std::size_t purge(transaction& tx,
                                    std::chrono::system_clock::time_point ended_before,
                                    std::size_t limit) {
        constexpr const char* who = "postgres::saga_table::purge";
        // Stored times are whole microseconds: before ended_before is before
        // it rounded up.
        return static_cast<std::size_t>(
            detail::exec(
                tx.joined(table_.conn, who), who, purge_,
                {detail::micros(std::chrono::ceil<std::chrono::microseconds>(ended_before)),
                 detail::limit(limit)})
                .affected());
    }
    ///@}

private:
    static constexpr std::string_view columns =
        "id, type, status, step, attempts, data, next_run_at, version, last_error";

    [[nodiscard]] static saga_record read(const detail::result& r, int row) {
        saga_record out;
        out.id = r.text(row, 0);
        out.type = r.text(row, 1);
        const std::string status = r.text(row, 2);
        const auto parsed = settle::detail::saga_status_from(status);
        if (!parsed) {
            throw settle::error(errc::decode_failed, "postgres::saga_table: saga `" + out.id +
                                                         "` has the unknown status `" + status +
                                                         "`");
        }
        out.status = *parsed;
        const auto count = [&](int column) {
            return static_cast<std::uint32_t>(std::clamp<std::int64_t>(
                r.int8(row, column), 0, std::numeric_limits<std::uint32_t>::max()));
        };
        out.step = count(3);
        out.attempts = count(4);
        const std::span<const std::byte> data = r.raw(row, 5);
        out.data.assign(reinterpret_cast<const char*>(data.data()), data.size());
        out.next_run_at = settle::detail::from_sql_micros(r.int8(row, 6));
        out.version = version_stamp(static_cast<std::uint64_t>(r.int8(row, 7)));
        out.last_error = r.text(row, 8);
        return out;
    }

    detail::table table_;
    std::string create_;
    std::string load_;
    std::string update_;
    std::string due_;
    std::string purge_;
};

static_assert(settle::purgeable_saga_store<saga_table>);

}  // namespace postgres

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_POSTGRES_HPP
