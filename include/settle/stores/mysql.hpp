// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MYSQL_HPP
#define SETTLE_STORES_MYSQL_HPP

// The MySQL and MariaDB backend (the MySQL C API, mysql.h: MariaDB
// Connector/C, -lmariadb, or MySQL's client library, -lmysqlclient):
// versioned tables, lease and fence tables, idempotency records, outbox and
// inbox, try/confirm/cancel branches, records under reconciliation and
// sagas, each an InnoDB table in the user's own database, written through the
// user's own connection, inside the user's own transaction. Needs MySQL 8.0
// or MariaDB 10.6 or later (FOR UPDATE SKIP LOCKED). docs/backends.md
// describes the schema, the isolation and the locks of every statement.
//
// Call mysql_library_init() once before threads start, as the C API asks of
// every multi-threaded program.

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
#include <settle/stores/detail/sql.hpp>
#include <settle/uuid.hpp>
#include <settle/versioned.hpp>

#include <mysql.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace mysql {

namespace detail {

// The C API's boolean (my_bool in MariaDB's and older headers, bool in MySQL 8's).
using c_bool = std::remove_pointer_t<decltype(MYSQL_BIND{}.is_null)>;

// `name` (a checked identifier) plus `suffix` in backquotes.
[[nodiscard]] inline std::string object_name(std::string_view name, std::string_view suffix) {
    std::string quoted = "`";
    quoted += name;
    quoted += suffix;
    quoted += '`';
    return quoted;
}

// `name` in backquotes; settle::error (errc::invalid_argument) naming `who`
// if it is not a plain identifier of at most 55 bytes.
[[nodiscard]] inline std::string quoted_name(std::string_view name, const char* who) {
    (void)settle::detail::quoted_sql_identifier(name, who);  // checks
    return object_name(name, "");
}

// Server and client error numbers (mysqld_error.h, errmsg.h), spelled out:
// MySQL's and MariaDB's headers do not define the same set of names.
inline constexpr unsigned lock_wait_timeout = 1205;           // ER_LOCK_WAIT_TIMEOUT
inline constexpr unsigned deadlock = 1213;                    // ER_LOCK_DEADLOCK
inline constexpr unsigned unknown_statement = 1243;           // ER_UNKNOWN_STMT_HANDLER
inline constexpr unsigned read_only_server = 1290;            // ER_OPTION_PREVENTS_STATEMENT
inline constexpr unsigned query_interrupted = 1317;           // ER_QUERY_INTERRUPTED
inline constexpr unsigned server_shutdown = 1053;             // ER_SERVER_SHUTDOWN
inline constexpr unsigned connection_killed = 1927;           // ER_CONNECTION_KILLED (MariaDB)
inline constexpr unsigned statement_timeout = 1969;           // ER_STATEMENT_TIMEOUT (MariaDB)
inline constexpr unsigned query_timeout = 3024;               // ER_QUERY_TIMEOUT (MySQL)
inline constexpr unsigned client_interaction_timeout = 4031;  // MySQL 8.0.24+

// The client's own errors: connection refused, gone, lost, ... (CR_*, 2000-2999).
[[nodiscard]] constexpr bool connection_lost(unsigned code) noexcept {
    return (code >= 2001 && code <= 2006) || code == 2013 || code == 2026 || code == 2048 ||
           code == 2055 || code == server_shutdown || code == connection_killed ||
           code == client_interaction_timeout;
}

// The settle::errc of a failure with error number `code`:
//   unavailable  the connection is lost (2002-2006, 2013, 2055, 1053, 1927,
//                4031), or the server is read-only (1290): another session
//                may succeed
//   aborted      the server gave the statement or the transaction up over
//                concurrent work or a time limit: deadlock (1213, the server
//                rolled the transaction back), lock wait timeout (1205, the
//                statement undone), statement timeout or kill (1969, 3024,
//                1317), a prepared statement of settle's gone (1243)
//   backend_failure  anything else
[[nodiscard]] constexpr errc classify(unsigned code) noexcept {
    if (connection_lost(code) || code == read_only_server) {
        return errc::unavailable;
    }
    if (code == deadlock || code == lock_wait_timeout || code == statement_timeout ||
        code == query_timeout || code == query_interrupted || code == unknown_statement) {
        return errc::aborted;
    }
    return errc::backend_failure;
}

[[noreturn]] inline void fail(unsigned code, const char* sqlstate, const char* message,
                              std::string_view what) {
    std::string text = std::string(what) + ": " + message;
    if (code != 0) {
        text += " (error " + std::to_string(code);
        if (sqlstate != nullptr && *sqlstate != '\0') {
            text += ", SQLSTATE ";
            text += sqlstate;
        }
        text += ")";
    }
    throw settle::error(classify(code), text);
}

// One bound parameter: a BIGINT, text in the connection's character set
// (utf8mb4), bytes, or NULL.
struct param {
    enum class kind { integer, text, bytes, null };
    kind type;
    std::int64_t number = 0;
    std::string data;
};

[[nodiscard]] inline param int8(std::int64_t value) {
    return {param::kind::integer, value, {}};
}

// An instant as stored: BIGINT Unix microseconds.
[[nodiscard]] inline param micros(stored_time t) {
    return int8(settle::detail::to_sql_micros(t));
}

// A stored count, stamp or token as the BIGINT it is bound as; counts beyond
// it are clamped (a limit), stamps and tokens beyond it wrap to negatives
// that match no row (a store never issues them).
[[nodiscard]] inline param limit(std::size_t value) {
    constexpr auto most = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return int8(static_cast<std::int64_t>(std::min(value, most)));
}

[[nodiscard]] inline param unsigned8(std::uint64_t value) {
    return int8(static_cast<std::int64_t>(value));
}

// Whether `value` is well-formed UTF-8: no stray or missing continuation
// bytes, overlong forms, surrogates or code points beyond U+10FFFF.
[[nodiscard]] constexpr bool valid_utf8(std::string_view value) noexcept {
    std::size_t i = 0;
    while (i < value.size()) {
        const auto lead = static_cast<std::uint32_t>(static_cast<unsigned char>(value[i]));
        // The sequence's length, the lead byte's bits of the code point, and
        // the least code point that needs that length.
        std::size_t length = 1;
        std::uint32_t code = lead;
        std::uint32_t least = 0;
        if (lead >= 0xF0 && lead < 0xF8) {
            length = 4;
            code = lead & 0x07U;
            least = 0x10000;
        } else if (lead >= 0xE0 && lead < 0xF0) {
            length = 3;
            code = lead & 0x0FU;
            least = 0x800;
        } else if (lead >= 0xC0 && lead < 0xE0) {
            length = 2;
            code = lead & 0x1FU;
            least = 0x80;
        } else if (lead >= 0x80) {
            return false;
        }
        if (value.size() - i < length) {
            return false;
        }
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<std::uint32_t>(static_cast<unsigned char>(value[i + k]));
            if ((next & 0xC0U) != 0x80U) {
                return false;
            }
            code = (code << 6U) | (next & 0x3FU);
        }
        if (code < least || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
            return false;
        }
        i += length;
    }
    return true;
}

// Text of at most `most` bytes, for a VARCHAR column of `most` characters
// (kind::text, which must be UTF-8) or a VARBINARY key column of `most` bytes
// (kind::bytes): longer text, or a VARCHAR's text that is not UTF-8, is
// refused here, never cut short or altered by a lenient sql_mode.
[[nodiscard]] inline param text(std::string_view value, std::size_t most, const char* who,
                                const char* field, param::kind as = param::kind::text) {
    if (value.size() > most) {
        throw settle::error(errc::invalid_argument, std::string(who) + ": the " + field +
                                                        " is longer than " + std::to_string(most) +
                                                        " bytes");
    }
    if (as == param::kind::text && !valid_utf8(value)) {
        throw settle::error(errc::invalid_argument,
                            std::string(who) + ": the " + field + " is not UTF-8");
    }
    return {as, 0, std::string(value)};
}

// The longest tenant, operation, consumer, message id and ordering key, in
// bytes: settle's limit for every backend. (Idempotency keys are at most 255
// by their parser.)
inline constexpr std::size_t key_text_max = max_key_size;

// One of those: VARBINARY(512), compared byte for byte (a VARCHAR would
// compare "key" and "key " equal under MySQL's PAD SPACE collations).
[[nodiscard]] inline param key_text(std::string_view value, const char* who, const char* field) {
    return text(value, key_text_max, who, field, param::kind::bytes);
}

[[nodiscard]] inline param blob(std::span<const std::byte> value) {
    return {param::kind::bytes, 0,
            std::string(reinterpret_cast<const char*>(value.data()), value.size())};
}

[[nodiscard]] inline param blob(std::string_view value) {
    return {param::kind::bytes, 0, std::string(value)};
}

[[nodiscard]] inline param uuid_param(const uuid& id) {
    return blob(id.bytes());
}

[[nodiscard]] inline param null() {
    return {param::kind::null, 0, {}};
}

// One fetched value: NULL, an integer column, or the bytes of any other.
struct cell {
    bool null = false;
    bool integer = false;
    std::int64_t number = 0;
    std::string data;
};

// A statement's outcome: its rows, or for a write the rows it changed and
// the AUTO_INCREMENT value an INSERT generated. Throws settle::error
// (errc::backend_failure) when a column does not hold what the schema says.
class result {
public:
    std::vector<std::vector<cell>> cells;
    std::uint64_t changed = 0;
    std::uint64_t insert_id = 0;

    [[nodiscard]] int rows() const noexcept { return static_cast<int>(cells.size()); }
    [[nodiscard]] std::uint64_t affected() const noexcept { return changed; }

    [[nodiscard]] bool null(int row, int column) const { return at(row, column).null; }

    [[nodiscard]] std::span<const std::byte> raw(int row, int column) const {
        const cell& c = at(row, column);
        return {reinterpret_cast<const std::byte*>(c.data.data()), c.data.size()};
    }

    [[nodiscard]] std::int64_t int8(int row, int column) const {
        const cell& c = at(row, column);
        if (c.integer) {
            return c.number;
        }
        std::int64_t value = 0;
        const auto [end, ec] = std::from_chars(c.data.data(), c.data.data() + c.data.size(), value);
        if (c.null || ec != std::errc() || end != c.data.data() + c.data.size()) {
            mismatch(column);
        }
        return value;
    }

    [[nodiscard]] std::string text(int row, int column) const { return at(row, column).data; }

    [[nodiscard]] bytes blob(int row, int column) const {
        const auto in = raw(row, column);
        return {in.begin(), in.end()};
    }

    [[nodiscard]] uuid uuid_at(int row, int column) const {
        const auto in = raw(row, column);
        if (in.size() != 16) {
            mismatch(column);
        }
        return uuid(in.first<16>());
    }

private:
    [[nodiscard]] const cell& at(int row, int column) const {
        return cells[static_cast<std::size_t>(row)][static_cast<std::size_t>(column)];
    }

    [[noreturn]] static void mismatch(int column) {
        throw settle::error(errc::backend_failure,
                            "mysql: column " + std::to_string(column) +
                                " does not hold the type settle's schema gives it");
    }
};

// What a failed statement said about its session, acted on before the next
// transaction begins: a read-only server's session is replaced, one that
// lost settle's prepared statements forgets them, a lost one is replaced.
enum class session_fault { none, lost, read_only, statements_lost };

// One server session: the handle, the statements prepared on it (by SQL
// text: parsed once per session, then only executed), and what a failure
// said about it.
struct session {
    MYSQL* conn = nullptr;
    std::unordered_map<std::string, MYSQL_STMT*> prepared;
    session_fault fault = session_fault::none;

    void forget_statements() noexcept {
        for (auto& entry : prepared) {
            (void)mysql_stmt_close(entry.second);
        }
        prepared.clear();
    }

    // Brings the handle's status flags up to date after a failed statement
    // (settle's or the user's on native()). An error packet carries no
    // status flags, so the handle would still say a transaction is open
    // after a deadlock rolled it back (or a lock wait timeout did, under
    // innodb_rollback_on_timeout); an empty statement's answer carries them
    // (a ping's leaves them as they were). Then the transaction's next
    // statement is refused instead of committing on its own.
    void refresh_status() noexcept {
        if (mysql_real_query(conn, "DO 0", 4) != 0 && connection_lost(mysql_errno(conn))) {
            fault = session_fault::lost;
        }
    }

    // Notes what error `code` says about the session, then throws.
    [[noreturn]] void fail(unsigned code, const char* sqlstate, const char* message,
                           std::string_view what) {
        const std::string state = sqlstate != nullptr ? sqlstate : "";
        const std::string text = message;
        if (connection_lost(code)) {
            fault = session_fault::lost;
        } else {
            if (code == read_only_server && fault == session_fault::none) {
                fault = session_fault::read_only;
            } else if (code == unknown_statement && fault == session_fault::none) {
                fault = session_fault::statements_lost;
            }
            refresh_status();
        }
        detail::fail(code, state.c_str(), text.c_str(), what);
    }

    // Runs a statement without parameters or results (BEGIN, COMMIT, DDL).
    void query(std::string_view what, const std::string& sql) {
        if (mysql_real_query(conn, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
            fail(mysql_errno(conn), mysql_sqlstate(conn), mysql_error(conn), what);
        }
        // Statements that return rows are not run here; drop any all the same.
        if (MYSQL_RES* rows = mysql_store_result(conn)) {
            mysql_free_result(rows);
        }
    }

    // Runs one of a store's statements, preparing it on the session's first
    // use of it.
    [[nodiscard]] result exec(std::string_view what, const std::string& sql,
                              std::initializer_list<param> params) {
        return exec(what, sql, std::vector<param>(params));
    }

    [[nodiscard]] result exec(std::string_view what, const std::string& sql,
                              std::vector<param> values) {
        MYSQL_STMT* st = statement(what, sql);
        std::vector<MYSQL_BIND> binds(values.size());
        std::vector<unsigned long> lengths(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) {
            param& p = values[i];
            MYSQL_BIND& b = binds[i];
            switch (p.type) {
            case param::kind::integer:
                b.buffer_type = MYSQL_TYPE_LONGLONG;
                b.buffer = &p.number;
                break;
            case param::kind::text:
            case param::kind::bytes:
                if (p.data.size() > std::numeric_limits<std::uint32_t>::max()) {
                    throw settle::error(errc::invalid_argument,
                                        std::string(what) + ": a value is 4 GiB or larger");
                }
                b.buffer_type = p.type == param::kind::text ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
                b.buffer = p.data.data();
                lengths[i] = static_cast<unsigned long>(p.data.size());
                b.buffer_length = lengths[i];
                b.length = &lengths[i];
                break;
            case param::kind::null: b.buffer_type = MYSQL_TYPE_NULL; break;
            }
        }
        if ((!binds.empty() && mysql_stmt_bind_param(st, binds.data()) != 0) ||
            mysql_stmt_execute(st) != 0) {
            fail_statement(st, what);
        }
        result out;
        MYSQL_RES* meta = mysql_stmt_result_metadata(st);
        if (meta == nullptr) {
            out.changed = mysql_stmt_affected_rows(st);
            out.insert_id = mysql_stmt_insert_id(st);
            return out;
        }
        const auto free_meta = [&]() noexcept {
            mysql_free_result(meta);
            (void)mysql_stmt_free_result(st);
        };
        try {
            fetch(st, meta, what, out);
        } catch (...) {
            free_meta();
            throw;
        }
        free_meta();
        return out;
    }

private:
    [[nodiscard]] MYSQL_STMT* statement(std::string_view what, const std::string& sql) {
        if (auto found = prepared.find(sql); found != prepared.end()) {
            return found->second;
        }
        MYSQL_STMT* st = mysql_stmt_init(conn);
        if (st == nullptr) {
            fail(mysql_errno(conn), mysql_sqlstate(conn), mysql_error(conn), what);
        }
        if (mysql_stmt_prepare(st, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
            const unsigned code = mysql_stmt_errno(st);
            const std::string state = mysql_stmt_sqlstate(st);
            const std::string message = mysql_stmt_error(st);
            (void)mysql_stmt_close(st);
            fail(code, state.c_str(), message.c_str(), what);
        }
        c_bool yes = 1;
        (void)mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &yes);
        prepared.emplace(sql, st);
        return st;
    }

    [[noreturn]] void fail_statement(MYSQL_STMT* st, std::string_view what) {
        const unsigned code = mysql_stmt_errno(st);
        const std::string state = mysql_stmt_sqlstate(st);
        const std::string message = mysql_stmt_error(st);
        (void)mysql_stmt_reset(st);
        fail(code, state.c_str(), message.c_str(), what);
    }

    // Every row of the executed statement `st`, each column in a buffer as
    // large as its longest value.
    void fetch(MYSQL_STMT* st, MYSQL_RES* meta, std::string_view what, result& out) {
        if (mysql_stmt_store_result(st) != 0) {
            fail_statement(st, what);
        }
        const unsigned columns = mysql_num_fields(meta);
        const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
        std::vector<MYSQL_BIND> binds(columns);
        std::vector<cell> row(columns);
        std::vector<unsigned long> lengths(columns);
        std::vector<c_bool> nulls(columns);
        for (unsigned i = 0; i < columns; ++i) {
            MYSQL_BIND& b = binds[i];
            switch (fields[i].type) {
            case MYSQL_TYPE_TINY:
            case MYSQL_TYPE_SHORT:
            case MYSQL_TYPE_INT24:
            case MYSQL_TYPE_LONG:
            case MYSQL_TYPE_LONGLONG:
                row[i].integer = true;
                b.buffer_type = MYSQL_TYPE_LONGLONG;
                b.buffer = &row[i].number;
                break;
            default:
                row[i].data.resize(std::max<unsigned long>(fields[i].max_length, 1));
                b.buffer_type = MYSQL_TYPE_BLOB;
                b.buffer = row[i].data.data();
                b.buffer_length = static_cast<unsigned long>(row[i].data.size());
                break;
            }
            b.length = &lengths[i];
            b.is_null = &nulls[i];
        }
        if (mysql_stmt_bind_result(st, binds.data()) != 0) {
            fail_statement(st, what);
        }
        out.cells.reserve(static_cast<std::size_t>(mysql_stmt_num_rows(st)));
        for (;;) {
            const int status = mysql_stmt_fetch(st);
            if (status == MYSQL_NO_DATA) {
                return;
            }
            if (status != 0) {
                fail_statement(st, what);  // MYSQL_DATA_TRUNCATED cannot happen: max_length
            }
            std::vector<cell> copy(columns);
            for (unsigned i = 0; i < columns; ++i) {
                copy[i].null = nulls[i] != 0;
                copy[i].integer = row[i].integer;
                copy[i].number = row[i].number;
                if (!row[i].integer && !copy[i].null) {
                    copy[i].data.assign(row[i].data.data(), lengths[i]);
                }
            }
            out.cells.push_back(std::move(copy));
        }
    }
};

// ids, padded to the next of 1, 2, 4, ..., 256 by repeating the last one
// (an IN list that names an id twice matches it once), so that a statement
// over a list is prepared once per size class, not once per length.
[[nodiscard]] inline std::size_t list_size(std::size_t n) noexcept {
    std::size_t size = 1;
    while (size < n) {
        size *= 2;
    }
    return size;
}

// "(?, ?, ..., ?)" with n markers.
[[nodiscard]] inline std::string markers(std::size_t n) {
    std::string out = "(";
    for (std::size_t i = 0; i < n; ++i) {
        out += i == 0 ? "?" : ", ?";
    }
    return out + ")";
}

// "((?, ?), ..., (?, ?))" with n pairs of markers.
[[nodiscard]] inline std::string claim_markers(std::size_t n) {
    std::string out = "(";
    for (std::size_t i = 0; i < n; ++i) {
        out += i == 0 ? "(?, ?)" : ", (?, ?)";
    }
    return out + ")";
}

// The most ids one list statement names.
inline constexpr std::size_t list_most = 256;

}  // namespace detail

class transaction;

/// How connection(connection_options) connects: a Unix socket, or a host and
/// port, the user and password, and the database the stores' tables live in.
struct connection_options {
    std::string host;         ///< "" with a socket: the socket
    unsigned port = 0;        ///< 0: the default port
    std::string unix_socket;  ///< "" : the default socket, or TCP to host
    ///@{
    /// The account and the database to use.
    std::string user;
    std::string password;
    std::string database;
    ///@}
};

/// The user's database handle: owns one MYSQL, made by `make`, which is also
/// how it reconnects; settle sets its character set to utf8mb4. Not
/// thread-safe (a MYSQL handle is not): use one per thread, or lock around it.
/// At most one settle transaction is open on it at a time. Neither copyable
/// nor movable: stores and transactions keep its address, so it must outlive
/// them. settle reads "rows affected" as the server reports them by default
/// (rows changed), so a handle made with CLIENT_FOUND_ROWS is refused.
class connection {
public:
    /// Makes a new connection handle: what a pool calls when it needs a connection.
    using factory = std::function<MYSQL*()>;

    /// Connects at once; settle::error (errc::unavailable) with the client's
    /// message if `make` returns no handle, errc::invalid_argument if the
    /// handle counts found rows.
    explicit connection(factory make) : make_(std::move(make)) { connect(); }

    /// Connects with mysql_real_connect, now and on every reconnect.
    explicit connection(connection_options options)
        : connection(factory([o = std::move(options)]() -> MYSQL* {
              MYSQL* conn = mysql_init(nullptr);
              if (conn == nullptr) {
                  return nullptr;
              }
              const auto given = [](const std::string& s) {
                  return s.empty() ? nullptr : s.c_str();
              };
              if (mysql_real_connect(conn, given(o.host), given(o.user), given(o.password),
                                     given(o.database), o.port, given(o.unix_socket),
                                     0) == nullptr) {
                  throw_connect_failure(conn);
              }
              return conn;
          })) {}

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { close(); }

    /// The raw handle, for the user's own statements. Replaced by a reconnect,
    /// so do not keep it across transactions.
    [[nodiscard]] MYSQL* native() const noexcept { return s_.conn; }

private:
    friend class transaction;

    [[noreturn]] static void throw_connect_failure(MYSQL* conn) {
        std::string message = "mysql::connection: ";
        message += mysql_error(conn);
        mysql_close(conn);
        throw settle::error(errc::unavailable, message);
    }

    void close() noexcept {
        s_.forget_statements();
        if (s_.conn != nullptr) {
            mysql_close(s_.conn);
            s_.conn = nullptr;
        }
    }

    void connect() {
        MYSQL* fresh = make_ ? make_() : nullptr;
        if (fresh == nullptr) {
            throw settle::error(errc::unavailable, "mysql::connection: no connection made");
        }
        if ((fresh->client_flag & CLIENT_FOUND_ROWS) != 0) {
            mysql_close(fresh);
            throw settle::error(errc::invalid_argument,
                                "mysql::connection: the handle was made with CLIENT_FOUND_ROWS; "
                                "settle needs rows affected to count changed rows");
        }
        if (mysql_set_character_set(fresh, "utf8mb4") != 0) {
            throw_connect_failure(fresh);
        }
        close();
        s_.conn = fresh;
        s_.fault = detail::session_fault::none;
        thread_ = mysql_thread_id(fresh);
    }

    // Replaces a lost session, or one whose server refused a write as
    // read-only (a new connection may reach the new primary), and forgets the
    // statements prepared on a session the user replaced on native() or that
    // lost them; only between transactions.
    void reconnect_if_lost() {
        if (s_.fault == detail::session_fault::lost ||
            s_.fault == detail::session_fault::read_only) {
            connect();
        } else if (mysql_thread_id(s_.conn) != thread_ ||
                   s_.fault == detail::session_fault::statements_lost) {
            s_.forget_statements();
            s_.fault = detail::session_fault::none;
            thread_ = mysql_thread_id(s_.conn);
        }
    }

    factory make_;
    detail::session s_;
    unsigned long thread_ = 0;  // the server's id of the session behind s_.conn
    bool busy_ = false;         // a settle transaction is open
};

template <class Key, class T>
class versioned_table;
class idempotency_table;
class outbox_table;
class inbox_table;
class barrier_table;
class reconcile_table;
class saga_table;

/// A transaction on a connection: START TRANSACTION at construction, at the
/// session's isolation level (InnoDB's default is REPEATABLE READ; every
/// statement of the stores is correct at READ COMMITTED too, and takes no gap
/// locks there). The user's own statements run on native() and commit or roll
/// back with the stores' writes. Destroyed while open, it rolls back and never
/// throws. End it with commit() or rollback(), not with statements on
/// native().
class transaction {
public:
    /// Begins. A connection found lost before it (by an earlier failure, or by
    /// START TRANSACTION failing for that reason) is replaced through its
    /// factory first: nothing is lost, no transaction was open. settle::error:
    /// unavailable if the server cannot be reached, invalid_argument if a
    /// settle transaction is already open on the connection or one begun on
    /// native() is.
    explicit transaction(connection& c) : conn_(&c) {
        constexpr const char* who = "mysql::transaction: START TRANSACTION";
        if (c.busy_) {
            throw settle::error(errc::invalid_argument,
                                "mysql::transaction: a transaction is already open on this "
                                "connection");
        }
        c.reconnect_if_lost();
        if ((c.s_.conn->server_status & SERVER_STATUS_IN_TRANS) != 0) {
            throw settle::error(errc::invalid_argument,
                                "mysql::transaction: the connection is inside a transaction "
                                "begun on native()");
        }
        try {
            c.s_.query(who, "START TRANSACTION");
        } catch (const settle::error& e) {
            if (e.code() != errc::unavailable || c.s_.fault != detail::session_fault::lost) {
                throw;
            }
            c.connect();
            c.s_.query(who, "START TRANSACTION");
        }
        c.busy_ = true;
    }

    /// Takes over the other transaction, which is ended.
    transaction(transaction&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
    transaction& operator=(transaction&&) = delete;
    ~transaction() { rollback(); }

    /// Commits; afterwards !open(), whatever happened. settle::error:
    /// unavailable if the connection dropped (the outcome is then unknown),
    /// aborted if the server had already rolled the transaction back (a
    /// deadlock met by a statement run on native()), backend_failure if it
    /// refused; invalid_argument if it ended.
    void commit() {
        detail::session& s = joined(nullptr, "mysql::transaction::commit");
        conn_->busy_ = false;
        conn_ = nullptr;
        s.query("mysql::transaction::commit", "COMMIT");
    }

    /// Rolls back if open; never throws (a lost connection has nothing to undo).
    void rollback() noexcept {
        if (conn_ == nullptr) {
            return;
        }
        detail::session& s = conn_->s_;
        if (s.fault != detail::session_fault::lost &&
            mysql_real_query(s.conn, "ROLLBACK", 8) != 0 &&
            detail::connection_lost(mysql_errno(s.conn))) {
            s.fault = detail::session_fault::lost;
        }
        conn_->busy_ = false;
        conn_ = nullptr;
    }

    /// Whether the transaction is still open (not committed, rolled back or moved from).
    [[nodiscard]] bool open() const noexcept { return conn_ != nullptr; }

    /// The connection's handle while open, nullptr after.
    [[nodiscard]] MYSQL* native() const noexcept {
        return conn_ != nullptr ? conn_->s_.conn : nullptr;
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

    // The session, if this transaction is open, on `owner` (any, if null),
    // and still open on the server.
    [[nodiscard]] detail::session& joined(const connection* owner, const char* who) const {
        if (conn_ == nullptr) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) + ": the transaction has ended");
        }
        if (owner != nullptr && owner != conn_) {
            throw settle::error(errc::invalid_argument,
                                std::string(who) + ": the transaction is on another connection");
        }
        detail::session& s = conn_->s_;
        if (s.fault != detail::session_fault::lost && mysql_errno(s.conn) != 0) {
            s.refresh_status();  // the user's last statement on native() failed
        }
        if (s.fault == detail::session_fault::lost) {
            throw settle::error(errc::unavailable, std::string(who) + ": the connection was lost");
        }
        if ((s.conn->server_status & SERVER_STATUS_IN_TRANS) == 0) {
            throw settle::error(errc::aborted,
                                std::string(who) +
                                    ": the server ended the transaction (a deadlock rolled it "
                                    "back, or a COMMIT, ROLLBACK or DDL statement ran on "
                                    "native()); a write "
                                    "now would commit on its own");
        }
        return s;
    }

    connection* conn_;
};

namespace detail {

// What every store shares: its connection and its validated, quoted name.
struct table {
    table(connection& c, std::string_view name, const char* who)
        : conn(&c), plain(name), quoted(quoted_name(name, who)) {}

    connection* conn;
    std::string plain;
    std::string quoted;
};

// Applies a store's DDL, one statement at a time (each ends in ";\n"). Each
// CREATE TABLE commits the transaction (MySQL commits around DDL); a new one
// is begun after the last, so the caller's transaction stays open.
inline void create(session& s, const std::string& ddl, const char* who) {
    std::size_t from = 0;
    for (std::size_t end = ddl.find(";\n"); end != std::string::npos; end = ddl.find(";\n", from)) {
        s.query(who, ddl.substr(from, end - from));
        from = end + 2;
    }
    s.query(who, "START TRANSACTION");
}

// A stamp or token counter: a table of one row per server session that has
// drawn (keyed by CONNECTION_ID()) with an AUTO_INCREMENT value. A draw is
// one statement, a REPLACE of the session's own row, which gives the row a
// new value and reports it as the statement's insert id: values are never
// issued twice (InnoDB keeps the counter across restarts since MySQL 8.0 and
// MariaDB 10.2.4), a draw locks only its own session's row, and a
// rolled-back draw leaves a gap. The table keeps one small row per session
// id the server has handed out.
struct counter {
    explicit counter(const std::string& name)
        : draw("REPLACE INTO " + name + " (session) VALUES (CONNECTION_ID())"),
          ddl("CREATE TABLE IF NOT EXISTS " + name +
              " (session BIGINT UNSIGNED NOT NULL PRIMARY KEY, value BIGINT NOT NULL "
              "AUTO_INCREMENT, INDEX (value)) ENGINE=InnoDB;\n") {}

    [[nodiscard]] std::int64_t next(session& s, const char* who) const {
        return static_cast<std::int64_t>(s.exec(who, draw, {}).insert_id);
    }

    std::string draw;
    std::string ddl;
};

// Runs `sql_prefix` + "(?, ..., ?)" over the first columns of `ids` (keys of
// rows this transaction holds locked), in statements of at most list_most
// keys, padded to a size class; returns the rows changed.
inline std::size_t run_listed(session& s, const char* who, const std::string& sql_prefix,
                              const result& ids, param::kind keys,
                              std::initializer_list<param> leading = {}) {
    std::size_t changed = 0;
    for (std::size_t from = 0; from < ids.cells.size(); from += list_most) {
        const std::size_t n = std::min(ids.cells.size() - from, list_most);
        const std::size_t size = list_size(n);
        std::vector<param> params(leading);
        for (std::size_t i = 0; i < size; ++i) {
            params.push_back({keys, 0, ids.cells[from + std::min(i, n - 1)][0].data});
        }
        changed += static_cast<std::size_t>(
            s.exec(who, sql_prefix + markers(size), std::move(params)).affected());
    }
    return changed;
}

}  // namespace detail

/// settle::versioned_store over an InnoDB table of (key, value, stamp): Key and
/// T persist as settle::encode gives them (key VARBINARY(512), settle's
/// max_key_size; value LONGBLOB), stamps come from a counter table of the
/// table's own, "<name>_stamp", drawn while the writer holds the row, so a
/// key's stamp is greater than every stamp the key had before, across erase
/// and re-insert; a rolled-back write leaves a gap. An insert is INSERT ... ON
/// DUPLICATE KEY UPDATE with a placeholder stamp: it inserts the row or locks
/// the one there, with no gap lock on a missing key. A compare-and-set is an
/// UPDATE conditioned on the stamp (it waits for a concurrent writer of the
/// row and re-checks); both then draw the stamp and set it. An erase is one
/// DELETE conditioned on the stamp. A write that does not apply reads the
/// current row (LOCK IN SHARE MODE: the latest committed row, at any isolation
/// level) and returns it, decoded, in the conflict. Stamps reach 2^63 - 1.
/// Stored bytes that do not decode throw settle::error (errc::decode_failed)
/// and stay as they are; a key encoded to more than settle::max_key_size bytes
/// is refused (errc::invalid_argument).
template <class Key, class T>
class versioned_table {
    static_assert(codable<Key>,
                  "settle::mysql::versioned_table: keys persist through settle::codec, so Key "
                  "must be settle::codable");
    static_assert(codable<T>,
                  "settle::mysql::versioned_table: values persist through settle::codec, so "
                  "T must be settle::codable");

public:
    ///@{
    /// The key, value and transaction types of the settle::versioned_store this table models.
    using key_type = Key;
    using value_type = T;
    using transaction = mysql::transaction;
    ///@}

    // The longest encoded key.

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    versioned_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "mysql::versioned_table"),
          stamps_(detail::object_name(table_name, "_stamp")),
          select_("SELECT value, stamp FROM " + table_.quoted + " WHERE `key` = ?"),
          current_("SELECT value, stamp FROM " + table_.quoted +
                   " WHERE `key` = ? LOCK IN SHARE MODE"),
          insert_("INSERT INTO " + table_.quoted +
                  " (`key`, value, stamp) VALUES (?, ?, 0) ON DUPLICATE KEY UPDATE stamp = stamp"),
          update_("UPDATE " + table_.quoted +
                  " SET value = ?, stamp = 0 WHERE `key` = ? AND stamp = ? AND stamp > 0"),
          stamp_("UPDATE " + table_.quoted + " SET stamp = ? WHERE `key` = ?"),
          delete_("DELETE FROM " + table_.quoted + " WHERE `key` = ? AND stamp = ? AND stamp > 0") {
    }

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// CREATE TABLE IF NOT EXISTS, for the table and its stamp counter: safe
    /// to apply again.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + table_.quoted +
               " (\n"
               "    `key` VARBINARY(512) NOT NULL PRIMARY KEY,\n"
               "    value LONGBLOB        NOT NULL,\n"
               "    stamp BIGINT          NOT NULL\n"
               ") ENGINE=InnoDB;\n" +
               stamps_.ddl;
    }

    /// Runs ddl(). MySQL commits the transaction around each CREATE TABLE:
    /// what `tx` wrote before is committed, and `tx` goes on in a new one.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "mysql::versioned_table::create_tables"), ddl(),
                       "mysql::versioned_table::create_tables");
    }

    /// The settle::versioned_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] std::optional<versioned<T>> load(transaction& tx, const Key& key) const {
        constexpr const char* who = "mysql::versioned_table::load";
        return read(tx.joined(table_.conn, who), select_, encoded(key, who), who);
    }

    /// Writes the row only if the key is absent.
    [[nodiscard]] write_result<T> insert(transaction& tx, const Key& key, T value) {
        constexpr const char* who = "mysql::versioned_table::insert";
        detail::session& s = tx.joined(table_.conn, who);
        const bytes k = encoded(key, who);
        if (s.exec(who, insert_, {detail::blob(k), detail::blob(settle::encode(value))})
                .affected() == 1) {
            // The key is ours until tx ends; only now draw its stamp, so that it
            // exceeds every stamp the key had before.
            return write_result<T>::applied(set_stamp(s, k, who));
        }
        return not_applied(s, k, who);  // the row was there; ours locked now
    }

    /// Replaces the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> compare_and_set(transaction& tx, const Key& key,
                                                  version_stamp expected, T value) {
        constexpr const char* who = "mysql::versioned_table::compare_and_set";
        detail::session& s = tx.joined(table_.conn, who);
        const bytes k = encoded(key, who);
        if (s.exec(who, update_,
                   {detail::blob(settle::encode(value)), detail::blob(k),
                    detail::unsigned8(expected.value())})
                .affected() == 1) {
            return write_result<T>::applied(set_stamp(s, k, who));
        }
        return not_applied(s, k, who);
    }

    /// Removes the row only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> erase(transaction& tx, const Key& key, version_stamp expected) {
        constexpr const char* who = "mysql::versioned_table::erase";
        detail::session& s = tx.joined(table_.conn, who);
        const bytes k = encoded(key, who);
        if (s.exec(who, delete_, {detail::blob(k), detail::unsigned8(expected.value())})
                .affected() == 1) {
            return write_result<T>::applied(expected);
        }
        return not_applied(s, k, who);
    }

private:
    [[nodiscard]] static bytes encoded(const Key& key, const char* who) {
        bytes k = settle::encode(key);
        settle::detail::check_key_size(k.size(), who, "encoded key");
        return k;
    }

    [[nodiscard]] version_stamp set_stamp(detail::session& s, const bytes& key,
                                          const char* who) const {
        const std::int64_t stamp = stamps_.next(s, who);
        (void)s.exec(who, stamp_, {detail::int8(stamp), detail::blob(key)});
        return version_stamp(static_cast<version_stamp::rep>(stamp));
    }

    [[nodiscard]] std::optional<versioned<T>> read(detail::session& s, const std::string& sql,
                                                   const bytes& key, const char* who) const {
        const detail::result r = s.exec(who, sql, {detail::blob(key)});
        if (r.rows() == 0) {
            return std::nullopt;
        }
        return versioned<T>{settle::decode<T>(r.raw(0, 0)),
                            version_stamp(static_cast<version_stamp::rep>(r.int8(0, 1)))};
    }

    [[nodiscard]] write_result<T> not_applied(detail::session& s, const bytes& key,
                                              const char* who) const {
        auto found = read(s, current_, key, who);
        if (!found) {
            return write_result<T>::missing();
        }
        return write_result<T>::conflict(found->stamp, std::move(found->value));
    }

    detail::table table_;
    detail::counter stamps_;
    std::string select_;
    std::string current_;
    std::string insert_;
    std::string update_;
    std::string stamp_;
    std::string delete_;
};

/// A lease store (settle::leases) and a fence store (settle::fence) in MySQL:
/// versioned tables of lease records and of fencing tokens.
template <class Key>
using lease_table = versioned_table<Key, lease_record>;

template <class Key>
using fence_table = versioned_table<Key, fencing_token>;

/// settle::idempotency_store over an InnoDB table keyed by (tenant, operation,
/// key), with an index on expires_at for purge and a counter table
/// "<name>_token" for tokens, so a token is greater than every one issued
/// before for any key, purged ones included. Tenant and operation are
/// VARBINARY(512), the key VARBINARY(255): kept and compared byte for byte;
/// longer ones are refused (errc::invalid_argument), never cut short.
///
/// claim is insert-first: one INSERT ... ON DUPLICATE KEY UPDATE inserts an
/// in-progress record with a placeholder token, or locks the record there
/// (never a gap lock on a missing key). A new record then draws its token,
/// under its row lock, so claims of one key take their tokens in commit order.
/// A record that was there is read (FOR UPDATE: it exists and is ours) and,
/// if expired, taken over with a new token. The row lock is held until the
/// claim's transaction ends, so keep that transaction short. complete and
/// abandon are one UPDATE or DELETE conditioned on the token. purge selects
/// expired records FOR UPDATE SKIP LOCKED, then deletes them.
class idempotency_table {
public:
    /// The transaction type of the settle::idempotency_store this table models.
    using transaction = mysql::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    idempotency_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "mysql::idempotency_table"),
          tokens_(detail::object_name(table_name, "_token")),
          claim_("INSERT INTO " + table_.quoted +
                 " (tenant, operation, `key`, state, fingerprint, token, claimed_at, expires_at, "
                 "body, status) VALUES (?, ?, ?, 'in_progress', ?, 0, ?, ?, '', NULL) ON "
                 "DUPLICATE KEY UPDATE token = token"),
          token_("UPDATE " + table_.quoted +
                 " SET token = ? WHERE tenant = ? AND operation = ? AND `key` = ?"),
          take_over_("UPDATE " + table_.quoted +
                     " SET state = 'in_progress', fingerprint = ?, token = ?, claimed_at = ?, "
                     "expires_at = ?, body = '', status = NULL WHERE tenant = ? AND operation = "
                     "? AND `key` = ?"),
          find_("SELECT state, fingerprint, token, claimed_at, expires_at, body, status FROM " +
                table_.quoted + " WHERE tenant = ? AND operation = ? AND `key` = ?"),
          locked_(find_ + " FOR UPDATE"),
          complete_("UPDATE " + table_.quoted +
                    " SET state = 'completed', expires_at = ?, body = ?, status = ? WHERE "
                    "tenant = ? AND operation = ? AND `key` = ? AND state = 'in_progress' AND "
                    "token = ?"),
          abandon_("DELETE FROM " + table_.quoted +
                   " WHERE tenant = ? AND operation = ? AND `key` = ? AND state = "
                   "'in_progress' AND token = ?"),
          expired_("SELECT tenant, operation, `key` FROM " + table_.quoted +
                   " WHERE expires_at <= ? LIMIT ? FOR UPDATE SKIP LOCKED"),
          delete_("DELETE FROM " + table_.quoted +
                  " WHERE tenant = ? AND operation = ? AND `key` = ?") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// CREATE TABLE IF NOT EXISTS, for the table and its token counter: safe
    /// to apply again.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + table_.quoted +
               " (\n"
               "    tenant      VARBINARY(512) NOT NULL,\n"
               "    operation   VARBINARY(512) NOT NULL,\n"
               "    `key`       VARBINARY(255) NOT NULL,\n"
               "    state       VARCHAR(16)  NOT NULL CHECK (state IN ('in_progress', "
               "'completed')),\n"
               "    fingerprint BINARY(32)   NOT NULL,\n"
               "    token       BIGINT       NOT NULL,\n"
               "    claimed_at  BIGINT       NOT NULL,\n"
               "    expires_at  BIGINT       NOT NULL,\n"
               "    body        LONGBLOB     NOT NULL,\n"
               "    status      INT,\n"
               "    PRIMARY KEY (tenant, operation, `key`),\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_expires") +
               " (expires_at)\n"
               ") ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n" +
               tokens_.ddl;
    }

    /// Runs ddl(). MySQL commits the transaction around each CREATE TABLE:
    /// what `tx` wrote before is committed, and `tx` goes on in a new one.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "mysql::idempotency_table::create_tables"), ddl(),
                       "mysql::idempotency_table::create_tables");
    }

    ///@{
    /// The settle::idempotency_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] idempotency_store_claim claim(transaction& tx, const idempotency_scope& scope,
                                                const idempotency_key& key,
                                                const sha256_digest& fingerprint, stored_time now,
                                                stored_time lease_end) {
        constexpr const char* who = "mysql::idempotency_table::claim";
        detail::session& s = tx.joined(table_.conn, who);
        const auto& digest = fingerprint.bytes();
        const detail::param fp =
            detail::blob(std::as_bytes(std::span(digest.data(), digest.size())));
        const bool inserted =
            s.exec(who, claim_,
                   {text(scope.tenant, who, "tenant"), text(scope.operation, who, "operation"),
                    text(key.value(), who, "key"), fp, detail::micros(now),
                    detail::micros(lease_end)})
                .affected() == 1;
        std::optional<fencing_token> token;
        if (inserted) {
            token = draw(s, token_, {}, scope, key, who);
        } else if (auto found = find(s, locked_, scope, key, who); found->live(now)) {
            return {false, std::move(*found)};
        } else {
            token = draw(s, take_over_, {fp}, scope, key, who, now, lease_end);
        }
        return {true, idempotency_record{
                          idempotency_state::in_progress, fingerprint, *token, now, lease_end, {}}};
    }

    [[nodiscard]] fenced_write complete(transaction& tx, const idempotency_scope& scope,
                                        const idempotency_key& key, fencing_token token,
                                        idempotency_response response, stored_time retain_until) {
        constexpr const char* who = "mysql::idempotency_table::complete";
        const detail::result r =
            tx.joined(table_.conn, who)
                .exec(who, complete_,
                      {detail::micros(retain_until), detail::blob(response.body),
                       response.status ? detail::int8(*response.status) : detail::null(),
                       text(scope.tenant, who, "tenant"), text(scope.operation, who, "operation"),
                       text(key.value(), who, "key"), detail::unsigned8(token.value())});
        return r.affected() == 1 ? fenced_write::applied : fenced_write::stale;
    }

    [[nodiscard]] fenced_write abandon(transaction& tx, const idempotency_scope& scope,
                                       const idempotency_key& key, fencing_token token) {
        constexpr const char* who = "mysql::idempotency_table::abandon";
        const detail::result r =
            tx.joined(table_.conn, who)
                .exec(who, abandon_,
                      {text(scope.tenant, who, "tenant"), text(scope.operation, who, "operation"),
                       text(key.value(), who, "key"), detail::unsigned8(token.value())});
        return r.affected() == 1 ? fenced_write::applied : fenced_write::stale;
    }
    ///@}

    /// Skips expired records another transaction holds locked.
    [[nodiscard]] std::size_t purge(transaction& tx, stored_time now, std::size_t limit) {
        constexpr const char* who = "mysql::idempotency_table::purge";
        detail::session& s = tx.joined(table_.conn, who);
        const detail::result r = s.exec(who, expired_, {detail::micros(now), detail::limit(limit)});
        std::size_t deleted = 0;
        for (const auto& row : r.cells) {
            deleted += static_cast<std::size_t>(
                s.exec(who, delete_,
                       {detail::blob(row[0].data), detail::blob(row[1].data),
                        detail::blob(row[2].data)})
                    .affected());
        }
        return deleted;
    }

    /// The record stored for (scope, key), live or not, or nullopt. For
    /// inspection and tests; the guard never needs it.
    [[nodiscard]] std::optional<idempotency_record> find(transaction& tx,
                                                         const idempotency_scope& scope,
                                                         const idempotency_key& key) const {
        constexpr const char* who = "mysql::idempotency_table::find";
        return find(tx.joined(table_.conn, who), find_, scope, key, who);
    }

private:
    [[nodiscard]] static detail::param text(std::string_view value, const char* who,
                                            const char* field) {
        return detail::key_text(value, who, field);
    }

    // Draws a token under the row's lock and runs `sql` with `before`, the
    // token, [claimed_at, expires_at,] then the key.
    [[nodiscard]] fencing_token draw(detail::session& s, const std::string& sql,
                                     std::initializer_list<detail::param> before,
                                     const idempotency_scope& scope, const idempotency_key& key,
                                     const char* who, std::optional<stored_time> now = {},
                                     std::optional<stored_time> lease_end = {}) const {
        const std::int64_t token = tokens_.next(s, who);
        std::vector<detail::param> params(before);
        params.push_back(detail::int8(token));
        if (now) {
            params.push_back(detail::micros(*now));
            params.push_back(detail::micros(*lease_end));
        }
        params.push_back(text(scope.tenant, who, "tenant"));
        params.push_back(text(scope.operation, who, "operation"));
        params.push_back(text(key.value(), who, "key"));
        (void)s.exec(who, sql, std::move(params));
        return fencing_token(static_cast<std::uint64_t>(token));
    }

    [[nodiscard]] std::optional<idempotency_record> find(detail::session& s, const std::string& sql,
                                                         const idempotency_scope& scope,
                                                         const idempotency_key& key,
                                                         const char* who) const {
        const detail::result r =
            s.exec(who, sql,
                   {text(scope.tenant, who, "tenant"), text(scope.operation, who, "operation"),
                    text(key.value(), who, "key")});
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
        record.response.body = r.blob(0, 5);
        if (!r.null(0, 6)) {
            record.response.status = static_cast<std::int32_t>(r.int8(0, 6));
        }
        return record;
    }

    detail::table table_;
    detail::counter tokens_;
    std::string claim_;
    std::string token_;
    std::string take_over_;
    std::string find_;
    std::string locked_;
    std::string complete_;
    std::string abandon_;
    std::string expired_;
    std::string delete_;
};

static_assert(settle::idempotency_store<idempotency_table>);

/// settle::outbox_appender and settle::outbox_store, with every operator
/// task, over one InnoDB table (docs/backends.md has the DDL): id BINARY(16)
/// primary key, sequence an AUTO_INCREMENT column, times BIGINT Unix
/// microseconds, payload, headers and last_error LONGBLOB (a failure's reason
/// is kept byte for byte), topic and owner VARCHAR(255) utf8mb4, ordering key
/// VARBINARY(512), and indexes for claims (due_at, sequence: due_at is a
/// stored column, next_attempt_at while pending or in flight, else NULL, so
/// delivered records stay out of the claims' index), ordering keys
/// (open_key, sequence: open_key is a stored column, the ordering key while
/// a record is undelivered, else NULL, so the per-key check reads only
/// undelivered records of the key, never its delivered history) and purge
/// (finished_as, finished_at: finished_as is a stored column, the status once
/// delivered or dead, else NULL, so a claim, which sets no indexed column,
/// moves no index entry); and
/// a table "<name>_keys" of one row per ordering key in use (purge removes
/// the rows of keys with nothing undelivered), whose row an append with that
/// key locks.
///
/// Every statement over a list of ids names the primary key (FORCE INDEX):
/// on a young table whose statistics say it is nearly empty, the optimizer
/// would scan it instead, and a locking scan takes next-key locks on every
/// row and on the end of the table, where appends insert, which deadlocked a
/// claim with the appends running beside it.
///
/// AUTO_INCREMENT values are not commit order, so an append with an ordering
/// key first locks the key's row in "<name>_keys" (INSERT ... ON DUPLICATE KEY
/// UPDATE: insert-first, never a gap lock), held until its transaction ends:
/// appends for one key are serialised, so a record never commits before an
/// older one of its key. A claim picks due records, each the oldest
/// undelivered record of its key, from one consistent snapshot (a plain
/// SELECT: no locks), then locks those still due FOR UPDATE SKIP LOCKED by id
/// and marks them in flight, each with a claim_token one above its last, so
/// relays on separate connections share the work without waiting for each
/// other. Records another relay holds are skipped, not replaced: a claim may
/// return fewer than `limit` while others are in flight, and claims at most
/// 256 at a time. An outcome applies only while the
/// record is in flight under its token. With
/// outbox_retention::delete_on_delivery, a delivery deletes the record, and
/// the next record of its ordering key is due; purge still removes the
/// "<name>_keys" rows of keys with nothing undelivered.
class outbox_table {
public:
    /// The transaction type of the settle::outbox_store this table models.
    using transaction = mysql::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    /// With outbox_retention::delete_on_delivery, mark_delivered deletes the
    /// row (DELETE ... WHERE claim_token = ...) instead of updating it.
    outbox_table(connection& c, std::string_view table_name,
                 outbox_retention retention = outbox_retention::keep)
        : table_(c, table_name, "mysql::outbox_table"),
          retention_(retention),
          keys_(detail::object_name(table_name, "_keys")),
          lock_key_("INSERT INTO " + keys_ +
                    " (ordering_key) VALUES (?) ON DUPLICATE KEY UPDATE ordering_key = "
                    "ordering_key"),
          append_("INSERT INTO " + table_.quoted +
                  " (id, topic, ordering_key, payload, headers, created_at, next_attempt_at, "
                  "status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending') ON DUPLICATE KEY UPDATE id = "
                  "id"),
          due_("SELECT r.id FROM " + table_.quoted +
               " r WHERE r.due_at <= ? AND (r.status = 'pending' OR r.claim_expires_at <= ?) AND "
               "(r.ordering_key = '' OR NOT EXISTS (SELECT 1 FROM " +
               table_.quoted +
               " o WHERE o.open_key = r.ordering_key AND o.sequence < r.sequence)) ORDER BY "
               "r.due_at, r.sequence LIMIT ?"),
          claim_("SELECT " + columns("") + " FROM " + table_.quoted +
                 " FORCE INDEX (PRIMARY) WHERE id IN "),
          mark_claimed_("UPDATE " + table_.quoted + " FORCE INDEX (PRIMARY)" +
                        " SET status = 'in_flight', attempts = LEAST(attempts + 1, 4294967295), "
                        "claim_owner = ?, claim_token = claim_token + 1, claim_expires_at = ? "
                        "WHERE id IN "),
          delivered_(retention == outbox_retention::keep
                         ? outcome("status = 'delivered', finished_at = ?")
                         : "DELETE FROM " + table_.quoted +
                               " WHERE id = ? AND status = 'in_flight' AND claim_token = ?"),
          delivered_given_((retention == outbox_retention::keep
                                ? "UPDATE " + table_.quoted +
                                      " r FORCE INDEX (PRIMARY) SET status = 'delivered', "
                                      "finished_at = ?, claim_owner = '', claim_expires_at = 0"
                                : "DELETE r FROM " + table_.quoted + " r FORCE INDEX (PRIMARY)") +
                           " WHERE r.status = 'in_flight' AND (r.id, r.claim_token) IN "),
          in_flight_("SELECT id, claim_token FROM " + table_.quoted +
                     " FORCE INDEX (PRIMARY) WHERE status = 'in_flight' AND id IN "),
          delivered_listed_((retention == outbox_retention::keep
                                 ? "UPDATE " + table_.quoted +
                                       " r FORCE INDEX (PRIMARY) SET status = 'delivered', "
                                       "finished_at = ?, claim_owner = '', claim_expires_at = 0"
                                 : "DELETE r FROM " + table_.quoted + " r FORCE INDEX (PRIMARY)") +
                            " WHERE r.id IN "),
          reschedule_(outcome("status = 'pending', next_attempt_at = ?, last_error = ?")),
          dead_(outcome("status = 'dead', last_error = ?, finished_at = ?")),
          release_(outcome("status = 'pending', attempts = GREATEST(attempts, 1) - 1")),
          requeue_("UPDATE " + table_.quoted +
                   " SET status = 'pending', attempts = 0, next_attempt_at = ?, finished_at = 0 "
                   "WHERE id = ? AND status = 'dead'"),
          purgeable_("SELECT id FROM " + table_.quoted +
                     " WHERE finished_as = 'delivered' AND finished_at < ? ORDER BY finished_at "
                     "LIMIT ? FOR UPDATE SKIP LOCKED"),
          purge_("DELETE r FROM " + table_.quoted + " r FORCE INDEX (PRIMARY) WHERE r.id IN "),
          idle_keys_("SELECT k.ordering_key FROM " + keys_ + " k WHERE NOT EXISTS (SELECT 1 FROM " +
                     table_.quoted + " o WHERE o.open_key = k.ordering_key) LIMIT ?"),
          lock_keys_("SELECT ordering_key FROM " + keys_ +
                     " FORCE INDEX (PRIMARY) WHERE ordering_key IN "),
          drop_key_("DELETE FROM " + keys_ + " WHERE ordering_key = ?"),
          statistics_(
              "SELECT COUNT(CASE WHEN status IN ('pending', 'in_flight') THEN 1 END), "
              "COUNT(CASE WHEN status = 'in_flight' AND claim_expires_at > ? THEN 1 END), "
              "COUNT(CASE WHEN status = 'dead' THEN 1 END), MIN(CASE WHEN status IN "
              "('pending', 'in_flight') THEN created_at END) FROM " +
              table_.quoted + " WHERE finished_as IS NULL OR finished_as = 'dead'"),
          find_("SELECT " + columns("") + " FROM " + table_.quoted + " WHERE id = ?"),
          dead_letters_("SELECT " + columns("") + " FROM " + table_.quoted +
                        " WHERE finished_as = 'dead' AND sequence > ? ORDER BY sequence LIMIT ?") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// CREATE TABLE IF NOT EXISTS, for the table and its ordering keys: safe
    /// to apply again.
    [[nodiscard]] std::string ddl() const {
        const std::string& t = table_.quoted;
        return "CREATE TABLE IF NOT EXISTS " + t +
               " (\n"
               "    id               BINARY(16)      NOT NULL PRIMARY KEY,\n"
               "    sequence         BIGINT          NOT NULL AUTO_INCREMENT UNIQUE,\n"
               "    topic            VARCHAR(255)    NOT NULL,\n"
               "    ordering_key     VARBINARY(512)  NOT NULL DEFAULT '',\n"
               "    payload          LONGBLOB        NOT NULL,\n"
               "    headers          LONGBLOB        NOT NULL,\n"
               "    created_at       BIGINT          NOT NULL,\n"
               "    attempts         BIGINT          NOT NULL DEFAULT 0,\n"
               "    next_attempt_at  BIGINT          NOT NULL,\n"
               "    status           VARCHAR(16)     NOT NULL\n"
               "        CHECK (status IN ('pending', 'in_flight', 'delivered', 'dead')),\n"
               "    last_error       LONGBLOB        NOT NULL DEFAULT '',\n"
               "    claim_owner      VARCHAR(255)    NOT NULL DEFAULT '',\n"
               "    claim_token      BIGINT          NOT NULL DEFAULT 0,\n"
               "    claim_expires_at BIGINT          NOT NULL DEFAULT 0,\n"
               "    finished_at      BIGINT          NOT NULL DEFAULT 0,\n"
               "    due_at           BIGINT AS (CASE WHEN status IN ('pending', 'in_flight')\n"
               "        THEN next_attempt_at END) STORED,\n"
               "    finished_as      VARCHAR(16) AS (CASE WHEN status IN ('delivered', 'dead')\n"
               "        THEN status END) STORED,\n"
               "    open_key         VARBINARY(512) AS (CASE WHEN ordering_key <> '' AND\n"
               "        status <> 'delivered' THEN ordering_key END) STORED,\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_due") +
               " (due_at, sequence),\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_key") +
               " (open_key, sequence),\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_done") +
               " (finished_as, finished_at)\n"
               ") ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n"
               "CREATE TABLE IF NOT EXISTS " +
               keys_ +
               " (\n"
               "    ordering_key VARBINARY(512) NOT NULL PRIMARY KEY\n"
               ") ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n";
    }

    /// Runs ddl(). MySQL commits the transaction around each CREATE TABLE:
    /// what `tx` wrote before is committed, and `tx` goes on in a new one.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "mysql::outbox_table::create_tables"), ddl(),
                       "mysql::outbox_table::create_tables");
    }

    /// Throws settle::error (errc::invalid_argument) for a nil id, a topic
    /// longer than 255 bytes or not UTF-8, or an ordering key longer than 512. An id already stored
    /// is a duplicate; the transaction stays usable.
    outbox_append_result append(transaction& tx, outbox_message message, stored_time now) {
        constexpr const char* who = "mysql::outbox_table::append";
        detail::session& s = tx.joined(table_.conn, who);
        if (message.id == uuid{}) {
            throw settle::error(errc::invalid_argument, std::string(who) + ": the id is nil");
        }
        const detail::param topic = detail::text(message.topic, 255, who, "topic");
        const detail::param key = detail::key_text(message.ordering_key, who, "ordering key");
        if (!message.ordering_key.empty()) {
            (void)s.exec(who, lock_key_, {key});
        }
        const detail::result r =
            s.exec(who, append_,
                   {detail::uuid_param(message.id), topic, key, detail::blob(message.payload),
                    detail::blob(settle::detail::encode_outbox_headers(message.headers, who)),
                    detail::micros(now), detail::micros(now)});
        if (r.affected() != 1) {
            return outbox_append_result::duplicate();  // ON DUPLICATE KEY UPDATE changed nothing
        }
        return outbox_append_result::appended(r.insert_id);
    }

    ///@{
    /// The settle::outbox_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] std::vector<outbox_record> claim(transaction& tx, std::string_view owner,
                                                   stored_time now, stored_time lease_until,
                                                   std::size_t limit) {
        constexpr const char* who = "mysql::outbox_table::claim";
        detail::session& s = tx.joined(table_.conn, who);
        if (owner.empty()) {
            throw settle::error(errc::invalid_argument, std::string(who) + ": the owner is empty");
        }
        const detail::param claimer = detail::text(owner, 255, who, "owner");
        const detail::result candidates =
            s.exec(who, due_,
                   {detail::micros(now), detail::micros(now),
                    detail::limit(std::min(limit, detail::list_most))});
        if (candidates.rows() == 0) {
            return {};
        }
        const std::size_t size = detail::list_size(candidates.cells.size());
        std::vector<detail::param> params;
        for (std::size_t i = 0; i < size; ++i) {
            params.push_back(
                detail::blob(candidates.cells[std::min(i, candidates.cells.size() - 1)][0].data));
        }
        // Locked by id (a primary key lookup each), then checked again: a
        // record claimed or finished since the snapshot stays as it is.
        const detail::result locked = s.exec(
            who, claim_ + detail::markers(size) + " FOR UPDATE SKIP LOCKED", std::move(params));
        std::vector<outbox_record> claimed = records(locked);
        detail::result due;
        std::size_t kept = 0;
        for (std::size_t i = 0; i < claimed.size(); ++i) {
            const outbox_record& r = claimed[i];
            if ((r.status == outbox_status::pending ||
                 (r.status == outbox_status::in_flight && r.claim_expires_at <= now)) &&
                r.next_attempt_at <= now) {
                due.cells.push_back(locked.cells[i]);
                if (kept != i) {
                    claimed[kept] = std::move(claimed[i]);
                }
                ++kept;
            }
        }
        claimed.resize(kept);
        if (claimed.empty()) {
            return claimed;
        }
        (void)detail::run_listed(s, who, mark_claimed_, due, detail::param::kind::bytes,
                                 {claimer, detail::micros(lease_until)});
        for (outbox_record& r : claimed) {
            r.status = outbox_status::in_flight;
            r.attempts = r.attempts == std::numeric_limits<std::uint32_t>::max() ? r.attempts
                                                                                 : r.attempts + 1;
            r.claim_owner = std::string(owner);
            r.claim_token = fencing_token(r.claim_token.value() + 1);
            r.claim_expires_at = lease_until;
        }
        std::sort(claimed.begin(), claimed.end(),
                  [](const outbox_record& a, const outbox_record& b) {
                      return std::tie(a.next_attempt_at, a.sequence) <
                             std::tie(b.next_attempt_at, b.sequence);
                  });
        return claimed;
    }

    [[nodiscard]] fenced_write mark_delivered(transaction& tx, const uuid& id, fencing_token token,
                                              stored_time now) {
        constexpr const char* who = "mysql::outbox_table::mark_delivered";
        if (retention_ == outbox_retention::keep) {
            return write(
                tx, delivered_, who,
                {detail::micros(now), detail::uuid_param(id), detail::unsigned8(token.value())});
        }
        return write(tx, delivered_, who,
                     {detail::uuid_param(id), detail::unsigned8(token.value())});
    }
    ///@}

    /// mark_delivered for each of `claims`, the answers in their order (a
    /// claim given twice is applied once, then stale). No statement for no
    /// claims, one for a single claim. For up to 256: a savepoint, then one statement marking
    /// (or, with outbox_retention::delete_on_delivery, deleting) the records
    /// in flight under a claim given; when it changes fewer records than there
    /// are distinct claims, back to the savepoint, and on as for more. For
    /// more, per 256: one statement locking the records in flight among them
    /// (FOR UPDATE), one marking those whose token is the claim's.
    [[nodiscard]] std::vector<fenced_write> mark_delivered(transaction& tx,
                                                           std::span<const outbox_claim> claims,
                                                           stored_time now) {
        constexpr const char* who = "mysql::outbox_table::mark_delivered";
        if (claims.empty()) {
            return {};
        }
        if (claims.size() == 1) {
            return {mark_delivered(tx, claims[0].id, claims[0].token, now)};
        }
        detail::session& s = tx.joined(table_.conn, who);
        std::vector<settle::detail::applied_claim> given;
        given.reserve(claims.size());
        for (const outbox_claim& claim : claims) {
            given.emplace_back(claim.id, claim.token.value());
        }
        std::sort(given.begin(), given.end());
        given.erase(std::unique(given.begin(), given.end()), given.end());
        if (given.size() <= detail::list_most) {
            // Each record matches one claim at most, so when every claim
            // changed a record, each applied; otherwise the answers are not
            // known, and the savepoint undoes the statement.
            s.query(who, "SAVEPOINT settle_mark_delivered");
            const std::size_t size = detail::list_size(given.size());
            std::vector<detail::param> params;
            if (retention_ == outbox_retention::keep) {
                params.push_back(detail::micros(now));
            }
            for (std::size_t i = 0; i < size; ++i) {
                const settle::detail::applied_claim& c = given[std::min(i, given.size() - 1)];
                params.push_back(detail::uuid_param(c.first));
                params.push_back(detail::unsigned8(c.second));
            }
            if (s.exec(who, delivered_given_ + detail::claim_markers(size), std::move(params))
                    .affected() == given.size()) {
                return settle::detail::answer_claims(claims, std::move(given));
            }
            s.query(who, "ROLLBACK TO SAVEPOINT settle_mark_delivered");
        }
        std::vector<settle::detail::applied_claim> applied;
        for (std::size_t from = 0; from < claims.size(); from += detail::list_most) {
            const std::size_t n = std::min(claims.size() - from, detail::list_most);
            const std::size_t size = detail::list_size(n);
            std::vector<detail::param> ids;
            for (std::size_t i = 0; i < size; ++i) {
                ids.push_back(detail::uuid_param(claims[from + std::min(i, n - 1)].id));
            }
            const detail::result held =
                s.exec(who, in_flight_ + detail::markers(size) + " FOR UPDATE", std::move(ids));
            detail::result matching;  // the ids to mark: in flight under a claim given
            for (int i = 0; i < held.rows(); ++i) {
                const settle::detail::applied_claim found{
                    held.uuid_at(i, 0), static_cast<std::uint64_t>(held.int8(i, 1))};
                if (std::binary_search(given.begin(), given.end(), found)) {
                    applied.push_back(found);
                    matching.cells.push_back(held.cells[static_cast<std::size_t>(i)]);
                }
            }
            if (retention_ == outbox_retention::keep) {
                (void)detail::run_listed(s, who, delivered_listed_, matching,
                                         detail::param::kind::bytes, {detail::micros(now)});
            } else {
                (void)detail::run_listed(s, who, delivered_listed_, matching,
                                         detail::param::kind::bytes);
            }
        }
        return settle::detail::answer_claims(claims, std::move(applied));
    }

    ///@{
    /// The settle::outbox_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] fenced_write reschedule(transaction& tx, const uuid& id, fencing_token token,
                                          std::string_view reason, stored_time next_attempt_at) {
        return write(tx, reschedule_, "mysql::outbox_table::reschedule",
                     {detail::micros(next_attempt_at), detail::blob(reason), detail::uuid_param(id),
                      detail::unsigned8(token.value())});
    }

    [[nodiscard]] fenced_write dead_letter(transaction& tx, const uuid& id, fencing_token token,
                                           std::string_view reason, stored_time now) {
        return write(tx, dead_, "mysql::outbox_table::dead_letter",
                     {detail::blob(reason), detail::micros(now), detail::uuid_param(id),
                      detail::unsigned8(token.value())});
    }

    [[nodiscard]] fenced_write release(transaction& tx, const uuid& id, fencing_token token) {
        return write(tx, release_, "mysql::outbox_table::release",
                     {detail::uuid_param(id), detail::unsigned8(token.value())});
    }

    [[nodiscard]] bool requeue(transaction& tx, const uuid& id, stored_time now) {
        constexpr const char* who = "mysql::outbox_table::requeue";
        return tx.joined(table_.conn, who)
                   .exec(who, requeue_, {detail::micros(now), detail::uuid_param(id)})
                   .affected() == 1;
    }
    ///@}

    /// Skips delivered records another transaction holds locked. Then removes
    /// up to `limit` (at most 256) rows of "<name>_keys" whose keys have no undelivered
    /// record: picked from a snapshot, locked FOR UPDATE SKIP LOCKED (a key an
    /// append holds is skipped, never waited for), then deleted one by one. A key row
    /// serialises appends only while one holds it, so removing it between
    /// appends costs the next append of the key one inserted row, not order.
    /// Returns the records removed.
    [[nodiscard]] std::size_t purge(transaction& tx, stored_time delivered_before,
                                    std::size_t limit) {
        constexpr const char* who = "mysql::outbox_table::purge";
        detail::session& s = tx.joined(table_.conn, who);
        const detail::result ids =
            s.exec(who, purgeable_, {detail::micros(delivered_before), detail::limit(limit)});
        const std::size_t purged =
            detail::run_listed(s, who, purge_, ids, detail::param::kind::bytes);
        const detail::result idle =
            s.exec(who, idle_keys_, {detail::limit(std::min(limit, detail::list_most))});
        if (idle.rows() != 0) {
            // One primary key lookup each: a DELETE over a list may scan a
            // small table, and wait for the keys appends hold.
            for (const auto& row : locked_keys(s, who, idle).cells) {
                (void)s.exec(who, drop_key_, {detail::blob(row[0].data)});
            }
        }
        return purged;
    }

    ///@{
    /// What operators read: the counts of records by status, one record, the dead letters.
    [[nodiscard]] outbox_statistics statistics(transaction& tx, stored_time now) const {
        constexpr const char* who = "mysql::outbox_table::statistics";
        const detail::result r =
            tx.joined(table_.conn, who).exec(who, statistics_, {detail::micros(now)});
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
        constexpr const char* who = "mysql::outbox_table::find";
        std::vector<outbox_record> found =
            records(tx.joined(table_.conn, who).exec(who, find_, {detail::uuid_param(id)}));
        if (found.empty()) {
            return std::nullopt;
        }
        return std::move(found.front());
    }

    [[nodiscard]] std::vector<outbox_record> dead_letters(transaction& tx,
                                                          std::uint64_t after_sequence,
                                                          std::size_t limit) const {
        constexpr const char* who = "mysql::outbox_table::dead_letters";
        if (after_sequence >=
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return {};
        }
        return records(tx.joined(table_.conn, who)
                           .exec(who, dead_letters_,
                                 {detail::unsigned8(after_sequence), detail::limit(limit)}));
    }
    ///@}

private:
    // The record columns, in outbox_record's order (id first).
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

    // An outcome: `set`, and the claim cleared, only while in flight under
    // the claim whose token is the last parameter.
    [[nodiscard]] std::string outcome(std::string_view set) const {
        return "UPDATE " + table_.quoted + " SET " + std::string(set) +
               ", claim_owner = '', claim_expires_at = 0 WHERE id = ? AND status = 'in_flight' "
               "AND claim_token = ?";
    }

    // The keys among `keys` (at most list_most) this transaction could lock:
    // those no append holds.
    [[nodiscard]] detail::result locked_keys(detail::session& s, const char* who,
                                             const detail::result& keys) const {
        const std::size_t size = detail::list_size(keys.cells.size());
        std::vector<detail::param> params;
        for (std::size_t i = 0; i < size; ++i) {
            params.push_back(detail::blob(keys.cells[std::min(i, keys.cells.size() - 1)][0].data));
        }
        return s.exec(who, lock_keys_ + detail::markers(size) + " FOR UPDATE SKIP LOCKED",
                      std::move(params));
    }

    [[nodiscard]] fenced_write write(transaction& tx, const std::string& sql, const char* who,
                                     std::initializer_list<detail::param> params) {
        return tx.joined(table_.conn, who).exec(who, sql, params).affected() == 1
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
            record.payload = r.blob(i, 4);
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
    outbox_retention retention_;
    std::string keys_;
    std::string lock_key_;
    std::string append_;
    std::string due_;
    std::string claim_;
    std::string mark_claimed_;
    std::string delivered_;
    std::string delivered_given_;
    std::string in_flight_;
    std::string delivered_listed_;
    std::string reschedule_;
    std::string dead_;
    std::string release_;
    std::string requeue_;
    std::string purgeable_;
    std::string purge_;
    std::string idle_keys_;
    std::string lock_keys_;
    std::string drop_key_;
    std::string statistics_;
    std::string find_;
    std::string dead_letters_;
};

static_assert(settle::outbox_appender<outbox_table>);
static_assert(settle::outbox_store<outbox_table>);

/// settle::inbox_store and settle::purgeable_inbox_store over an InnoDB table
/// keyed by (consumer, message_id), both VARBINARY(512), with an index
/// on (consumer, applied_at) for purge, which removes one consumer's oldest
/// records; times are BIGINT Unix microseconds. mark is one INSERT ... ON
/// DUPLICATE KEY UPDATE: a concurrent mark of the same pair waits for the
/// first transaction, then answers duplicate if it committed. purge selects
/// records FOR UPDATE SKIP LOCKED, then deletes them.
class inbox_table {
public:
    /// The transaction type of the settle::inbox_store this table models.
    using transaction = mysql::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    inbox_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "mysql::inbox_table"),
          mark_("INSERT INTO " + table_.quoted +
                " (consumer, message_id, applied_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE "
                "applied_at = applied_at"),
          purgeable_("SELECT message_id FROM " + table_.quoted +
                     " WHERE consumer = ? AND applied_at < ? ORDER BY applied_at LIMIT ? FOR "
                     "UPDATE SKIP LOCKED"),
          purge_("DELETE r FROM " + table_.quoted +
                 " r FORCE INDEX (PRIMARY) WHERE r.consumer = ? AND r.message_id IN ") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// CREATE TABLE IF NOT EXISTS: safe to apply again.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + table_.quoted +
               " (\n"
               "    consumer   VARBINARY(512) NOT NULL,\n"
               "    message_id VARBINARY(512) NOT NULL,\n"
               "    applied_at BIGINT       NOT NULL,\n"
               "    PRIMARY KEY (consumer, message_id),\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_purge") +
               " (consumer, applied_at)\n"
               ") ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n";
    }

    /// Runs ddl(). MySQL commits the transaction around each CREATE TABLE:
    /// what `tx` wrote before is committed, and `tx` goes on in a new one.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "mysql::inbox_table::create_tables"), ddl(),
                       "mysql::inbox_table::create_tables");
    }

    ///@{
    /// The settle::inbox_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] inbox_mark mark(transaction& tx, std::string_view consumer,
                                  std::string_view message_id, stored_time now) {
        constexpr const char* who = "mysql::inbox_table::mark";
        const detail::result r =
            tx.joined(table_.conn, who)
                .exec(who, mark_,
                      {detail::key_text(consumer, who, "consumer"),
                       detail::key_text(message_id, who, "message id"), detail::micros(now)});
        return r.affected() == 1 ? inbox_mark::first_time : inbox_mark::duplicate;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, std::string_view consumer,
                                    stored_time applied_before, std::size_t limit) {
        constexpr const char* who = "mysql::inbox_table::purge";
        detail::session& s = tx.joined(table_.conn, who);
        const detail::param c = detail::key_text(consumer, who, "consumer");
        const detail::result ids =
            s.exec(who, purgeable_, {c, detail::micros(applied_before), detail::limit(limit)});
        return detail::run_listed(s, who, purge_, ids, detail::param::kind::bytes, {c});
    }
    ///@}

private:
    detail::table table_;
    std::string mark_;
    std::string purgeable_;
    std::string purge_;
};

static_assert(settle::purgeable_inbox_store<inbox_table>);

// ---------------------------------------------------------------------------
// Try/confirm/cancel barrier

/// settle::barrier_store and settle::purgeable_barrier_store over an InnoDB
/// table keyed by (transaction_id, branch_id), both VARBINARY(512), with the
/// branch's state (tried, confirmed, cancelled, cancel_marker for an empty
/// cancel) and the time of its last change (BIGINT Unix microseconds),
/// indexed for purge.
///
/// Insert-first on the key, so no phase locks a gap it then inserts into:
/// the pattern that deadlocks a fence reading FOR UPDATE before it inserts,
/// under REPEATABLE READ. A try is one INSERT ... ON DUPLICATE KEY UPDATE
/// that inserts the branch tried or locks the record there; a cancel the same,
/// inserting the empty cancel's marker or moving a tried branch to cancelled
/// in the same statement. A call that meets another transaction's
/// uncommitted record of the branch waits for it, then answers as if it came
/// after it. A confirm is one UPDATE ... WHERE state = 'tried' (a confirm of
/// a branch with no record locks the gap where it would be, under REPEATABLE
/// READ, and inserts nothing). A call that changes nothing then reads the
/// state FOR UPDATE, the row already locked. At READ COMMITTED, a branch
/// tried between a confirm's UPDATE and its read throws settle::error
/// (errc::aborted): run the transaction again. purge selects ended branches
/// FOR UPDATE SKIP LOCKED, then deletes them one by one.
class barrier_table {
public:
    /// The transaction type of the settle::barrier_store this table models.
    using transaction = mysql::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    barrier_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "mysql::barrier_table"),
          try_("INSERT INTO " + table_.quoted +
               " (transaction_id, branch_id, state, changed_at) VALUES (?, ?, 'tried', ?) ON "
               "DUPLICATE KEY UPDATE state = state"),
          // changed_at is assigned first: it reads the state before the
          // second assignment, whichever order the server evaluates them in.
          cancel_("INSERT INTO " + table_.quoted +
                  " (transaction_id, branch_id, state, changed_at) VALUES (?, ?, "
                  "'cancel_marker', ?) ON DUPLICATE KEY UPDATE changed_at = IF(state = 'tried', "
                  "?, changed_at), state = IF(state = 'tried', 'cancelled', state)"),
          confirm_("UPDATE " + table_.quoted +
                   " SET state = 'confirmed', changed_at = ? WHERE transaction_id = ? AND "
                   "branch_id = ? AND state = 'tried'"),
          state_("SELECT state FROM " + table_.quoted +
                 " WHERE transaction_id = ? AND branch_id = ? FOR UPDATE"),
          purgeable_("SELECT transaction_id, branch_id FROM " + table_.quoted +
                     " WHERE changed_at < ? AND state <> 'tried' ORDER BY changed_at LIMIT ? FOR "
                     "UPDATE SKIP LOCKED"),
          purge_("DELETE FROM " + table_.quoted + " WHERE transaction_id = ? AND branch_id = ?") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// CREATE TABLE IF NOT EXISTS: safe to apply again.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + table_.quoted +
               " (\n"
               "    transaction_id VARBINARY(512) NOT NULL,\n"
               "    branch_id      VARBINARY(512) NOT NULL,\n"
               "    state          VARCHAR(16)    NOT NULL\n"
               "        CHECK (state IN ('tried', 'confirmed', 'cancelled', 'cancel_marker')),\n"
               "    changed_at     BIGINT         NOT NULL,\n"
               "    PRIMARY KEY (transaction_id, branch_id),\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_purge") +
               " (changed_at)\n"
               ") ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n";
    }

    /// Runs ddl(). MySQL commits the transaction around each CREATE TABLE:
    /// what `tx` wrote before is committed, and `tx` goes on in a new one.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "mysql::barrier_table::create_tables"), ddl(),
                       "mysql::barrier_table::create_tables");
    }

    ///@{
    /// The settle::barrier_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] barrier_outcome enter(transaction& tx, std::string_view transaction_id,
                                        std::string_view branch_id, barrier_phase phase,
                                        stored_time now) {
        constexpr const char* who = "mysql::barrier_table::enter";
        const detail::param xid = detail::key_text(transaction_id, who, "transaction id");
        const detail::param branch = detail::key_text(branch_id, who, "branch id");
        detail::session& s = tx.joined(table_.conn, who);
        // Rows affected: 1 inserted (or, for a confirm, updated), 2 updated
        // by ON DUPLICATE KEY UPDATE, 0 the record there left as it was.
        switch (phase) {
        case barrier_phase::try_phase:
            if (s.exec(who, try_, {xid, branch, detail::micros(now)}).affected() == 1) {
                return barrier_outcome::entered;
            }
            break;
        case barrier_phase::confirm:
            if (s.exec(who, confirm_, {detail::micros(now), xid, branch}).affected() == 1) {
                return barrier_outcome::entered;
            }
            break;
        case barrier_phase::cancel:
            switch (s.exec(who, cancel_, {xid, branch, detail::micros(now), detail::micros(now)})
                        .affected()) {
            case 0: break;
            case 1: return barrier_outcome::empty_cancel;
            default: return barrier_outcome::entered;
            }
            break;
        }
        const detail::result r = s.exec(who, state_, {xid, branch});
        std::optional<settle::detail::barrier_state> state;
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
        constexpr const char* who = "mysql::barrier_table::purge";
        detail::session& s = tx.joined(table_.conn, who);
        const detail::result r =
            s.exec(who, purgeable_, {detail::micros(ended_before), detail::limit(limit)});
        std::size_t deleted = 0;
        for (const auto& row : r.cells) {
            deleted += static_cast<std::size_t>(
                s.exec(who, purge_, {detail::blob(row[0].data), detail::blob(row[1].data)})
                    .affected());
        }
        return deleted;
    }
    ///@}

private:
    detail::table table_;
    std::string try_;
    std::string cancel_;
    std::string confirm_;
    std::string state_;
    std::string purgeable_;
    std::string purge_;
};

static_assert(settle::purgeable_barrier_store<barrier_table>);

// ---------------------------------------------------------------------------
// Reconciliation

/// settle::reconcile_store over an InnoDB table keyed by id (VARBINARY(512)),
/// with the time the record became uncertain, its unknown answers, its next
/// check, and, once escalated, when and why (BIGINT Unix microseconds; the
/// reason LONGBLOB, byte for byte), indexed on uncertain_since for due. watch
/// is one INSERT ... ON DUPLICATE KEY UPDATE (a concurrent watch of the same
/// id waits for the first); due one SELECT (a consistent read), longest
/// uncertain first (then by id); forget one DELETE (of two concurrent
/// forgets, the second waits and then finds nothing); reschedule and escalate
/// one UPDATE each, of a watched record only. forget, reschedule and
/// escalate of an id not kept lock the gap where it would be, under
/// REPEATABLE READ.
class reconcile_table {
public:
    /// The transaction type of the settle::reconcile_store this table models.
    using transaction = mysql::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    reconcile_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "mysql::reconcile_table"),
          watch_("INSERT INTO " + table_.quoted +
                 " (id, uncertain_since, unknown_answers, next_check_at) VALUES (?, ?, 0, ?) ON "
                 "DUPLICATE KEY UPDATE id = id"),
          due_("SELECT id, uncertain_since, unknown_answers, next_check_at FROM " + table_.quoted +
               " WHERE escalated_at IS NULL AND uncertain_since < ? AND next_check_at <= ? ORDER "
               "BY uncertain_since, id LIMIT ?"),
          forget_("DELETE FROM " + table_.quoted + " WHERE id = ?"),
          reschedule_("UPDATE " + table_.quoted +
                      " SET unknown_answers = ?, next_check_at = ? WHERE id = ? AND escalated_at "
                      "IS NULL"),
          escalate_("UPDATE " + table_.quoted +
                    " SET escalated_at = ?, reason = ? WHERE id = ? AND escalated_at IS NULL") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// CREATE TABLE IF NOT EXISTS: safe to apply again.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + table_.quoted +
               " (\n"
               "    id              VARBINARY(512) NOT NULL PRIMARY KEY,\n"
               "    uncertain_since BIGINT         NOT NULL,\n"
               "    unknown_answers BIGINT         NOT NULL,\n"
               "    next_check_at   BIGINT         NOT NULL,\n"
               "    escalated_at    BIGINT,\n"
               "    reason          LONGBLOB,\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_due") +
               " (uncertain_since)\n"
               ") ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n";
    }

    /// Runs ddl(). MySQL commits the transaction around each CREATE TABLE:
    /// what `tx` wrote before is committed, and `tx` goes on in a new one.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "mysql::reconcile_table::create_tables"), ddl(),
                       "mysql::reconcile_table::create_tables");
    }

    ///@{
    /// The settle::reconcile_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] bool watch(transaction& tx, std::string_view id, stored_time now) {
        constexpr const char* who = "mysql::reconcile_table::watch";
        const detail::param key = detail::key_text(id, who, "id");
        return tx.joined(table_.conn, who)
                   .exec(who, watch_, {key, detail::micros(now), detail::micros(now)})
                   .affected() == 1;
    }

    [[nodiscard]] std::vector<uncertain_record> due(transaction& tx, stored_time uncertain_before,
                                                    stored_time now, std::size_t limit) {
        constexpr const char* who = "mysql::reconcile_table::due";
        const detail::result r = tx.joined(table_.conn, who)
                                     .exec(who, due_,
                                           {detail::micros(uncertain_before), detail::micros(now),
                                            detail::limit(limit)});
        std::vector<uncertain_record> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int row = 0; row < r.rows(); ++row) {
            out.push_back({r.text(row, 0), settle::detail::from_sql_micros(r.int8(row, 1)),
                           static_cast<std::uint32_t>(std::clamp<std::int64_t>(
                               r.int8(row, 2), 0, std::numeric_limits<std::uint32_t>::max())),
                           settle::detail::from_sql_micros(r.int8(row, 3))});
        }
        return out;
    }

    [[nodiscard]] bool forget(transaction& tx, std::string_view id) {
        constexpr const char* who = "mysql::reconcile_table::forget";
        const detail::param key = detail::key_text(id, who, "id");
        return tx.joined(table_.conn, who).exec(who, forget_, {key}).affected() == 1;
    }

    [[nodiscard]] bool reschedule(transaction& tx, std::string_view id,
                                  std::uint32_t unknown_answers, stored_time next_check_at) {
        constexpr const char* who = "mysql::reconcile_table::reschedule";
        const detail::param key = detail::key_text(id, who, "id");
        return tx.joined(table_.conn, who)
                   .exec(who, reschedule_,
                         {detail::int8(std::int64_t{unknown_answers}),
                          detail::micros(next_check_at), key})
                   .affected() == 1;
    }

    [[nodiscard]] bool escalate(transaction& tx, std::string_view id, std::string_view reason,
                                stored_time now) {
        constexpr const char* who = "mysql::reconcile_table::escalate";
        const detail::param key = detail::key_text(id, who, "id");
        return tx.joined(table_.conn, who)
                   .exec(who, escalate_, {detail::micros(now), detail::blob(reason), key})
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

/// settle::saga_store over an InnoDB table keyed by id, with the saga's type
/// (both VARBINARY(512)), status, step, attempts, version and next run
/// (BIGINT, the next run in Unix microseconds), and data and error (LONGBLOB,
/// byte for byte). Two stored columns stand in for partial indexes: due_at,
/// the next run while running or compensating, indexed with the type for
/// due; ended_at, the next run once completed or compensated, indexed for
/// purge. create is one INSERT ... ON DUPLICATE KEY UPDATE (a concurrent
/// create of the same id waits for the first); load one SELECT (a consistent
/// read); update one UPDATE ... WHERE id = ? AND version = ? (of two
/// concurrent updates naming one version, the second waits for the first's
/// row lock, then finds the version moved on and changes nothing); due one
/// SELECT, the earliest next run first (then by id). A status settle never
/// writes throws settle::error (errc::decode_failed), the row kept.
class saga_table {
public:
    /// The transaction type of the settle::saga_store this table models.
    using transaction = mysql::transaction;

    /// Throws settle::error (errc::invalid_argument) for a name that is not a
    /// plain identifier of at most 55 bytes. Touches no table.
    saga_table(connection& c, std::string_view table_name)
        : table_(c, table_name, "mysql::saga_table"),
          create_("INSERT INTO " + table_.quoted +
                  " (id, type, status, step, attempts, data, next_run_at, version, last_error) "
                  "VALUES (?, ?, 'running', 0, 0, ?, ?, 1, '') ON DUPLICATE KEY UPDATE id = id"),
          load_("SELECT " + std::string(columns) + " FROM " + table_.quoted + " WHERE id = ?"),
          update_("UPDATE " + table_.quoted +
                  " SET status = ?, step = ?, attempts = ?, next_run_at = ?, last_error = ?, "
                  "version = version + 1 WHERE id = ? AND version = ?"),
          due_("SELECT " + std::string(columns) + " FROM " + table_.quoted +
               " WHERE type = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?"),
          purgeable_("SELECT id FROM " + table_.quoted +
                     " WHERE ended_at < ? ORDER BY ended_at LIMIT ? FOR UPDATE SKIP LOCKED"),
          purge_("DELETE r FROM " + table_.quoted + " r FORCE INDEX (PRIMARY) WHERE r.id IN ") {}

    /// Begins a transaction on the table's connection.
    [[nodiscard]] transaction begin() { return transaction(*table_.conn); }

    /// CREATE TABLE IF NOT EXISTS: safe to apply again.
    [[nodiscard]] std::string ddl() const {
        return "CREATE TABLE IF NOT EXISTS " + table_.quoted +
               " (\n"
               "    id          VARBINARY(512) NOT NULL PRIMARY KEY,\n"
               "    type        VARBINARY(512) NOT NULL,\n"
               "    status      VARCHAR(16)    NOT NULL CHECK (status IN ('running', "
               "'compensating', 'completed', 'compensated', 'failed')),\n"
               "    step        BIGINT         NOT NULL,\n"
               "    attempts    BIGINT         NOT NULL,\n"
               "    data        LONGBLOB       NOT NULL,\n"
               "    next_run_at BIGINT         NOT NULL,\n"
               "    version     BIGINT         NOT NULL,\n"
               "    last_error  LONGBLOB       NOT NULL,\n"
               "    due_at      BIGINT AS (CASE WHEN status IN ('running', 'compensating')\n"
               "        THEN next_run_at END) STORED,\n"
               "    ended_at    BIGINT AS (CASE WHEN status IN ('completed', 'compensated')\n"
               "        THEN next_run_at END) STORED,\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_due") +
               " (type, due_at),\n"
               "    INDEX " +
               detail::object_name(table_.plain, "_ended") +
               " (ended_at)\n"
               ") ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n";
    }

    /// Runs ddl(). MySQL commits the transaction around each CREATE TABLE:
    /// what `tx` wrote before is committed, and `tx` goes on in a new one.
    void create_tables(transaction& tx) const {
        detail::create(tx.joined(table_.conn, "mysql::saga_table::create_tables"), ddl(),
                       "mysql::saga_table::create_tables");
    }

    ///@{
    /// The settle::saga_store operations (see the concept for what each guarantees), in the
    /// caller's transaction.
    [[nodiscard]] bool create(transaction& tx, std::string_view id, std::string_view type,
                              std::string_view data, stored_time next_run_at) {
        constexpr const char* who = "mysql::saga_table::create";
        const detail::param key = detail::key_text(id, who, "saga id");
        const detail::param kind = detail::key_text(type, who, "saga type");
        return tx.joined(table_.conn, who)
                   .exec(who, create_, {key, kind, detail::blob(data), detail::micros(next_run_at)})
                   .affected() == 1;
    }

    [[nodiscard]] std::optional<saga_record> load(transaction& tx, std::string_view id) {
        constexpr const char* who = "mysql::saga_table::load";
        const detail::param key = detail::key_text(id, who, "saga id");
        const detail::result r = tx.joined(table_.conn, who).exec(who, load_, {key});
        if (r.rows() == 0) {
            return std::nullopt;
        }
        return read(r, 0);
    }

    [[nodiscard]] fenced_write update(transaction& tx, const saga_record& record) {
        constexpr const char* who = "mysql::saga_table::update";
        const detail::param key = detail::key_text(record.id, who, "saga id");
        return tx.joined(table_.conn, who)
                           .exec(
                               who, update_,
                               {detail::text(settle::detail::saga_status_text(record.status), 16,
                                             who, "status"),
                                detail::int8(std::int64_t{record.step}),
                                detail::int8(std::int64_t{record.attempts}),
                                detail::micros(record.next_run_at), detail::blob(record.last_error),
                                key, detail::unsigned8(record.version.value())})
                           .affected() == 1
                   ? fenced_write::applied
                   : fenced_write::stale;
    }

    [[nodiscard]] std::vector<saga_record> due(transaction& tx, std::string_view type,
                                               stored_time now, std::size_t limit) {
        constexpr const char* who = "mysql::saga_table::due";
        const detail::param kind = detail::key_text(type, who, "saga type");
        const detail::result r =
            tx.joined(table_.conn, who)
                .exec(who, due_, {kind, detail::micros(now), detail::limit(limit)});
        std::vector<saga_record> out;
        out.reserve(static_cast<std::size_t>(r.rows()));
        for (int row = 0; row < r.rows(); ++row) {
            out.push_back(read(r, row));
        }
        return out;
    }
    ///@}

    /// Removes at most `limit` sagas that ended completed or compensated and
    /// were last written (their last next run) before `ended_before`; sagas
    /// set aside as failed are kept for an operator, and running or
    /// compensating ones are never removed. Selects them FOR UPDATE SKIP
    /// LOCKED (a saga another transaction holds is skipped), then deletes
    /// them. Returns how many it removed.
    [[nodiscard]] std::size_t purge(transaction& tx,
                                    std::chrono::system_clock::time_point ended_before,
                                    std::size_t limit) {
        constexpr const char* who = "mysql::saga_table::purge";
        detail::session& s = tx.joined(table_.conn, who);
        // Stored times are whole microseconds: one is before `ended_before`
        // exactly when it is before the cut rounded up.
        const stored_time cut = std::chrono::ceil<std::chrono::microseconds>(ended_before);
        const detail::result ids =
            s.exec(who, purgeable_, {detail::micros(cut), detail::limit(limit)});
        return detail::run_listed(s, who, purge_, ids, detail::param::kind::bytes);
    }

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
            throw settle::error(
                errc::decode_failed,
                "mysql::saga_table: saga `" + out.id + "` has the unknown status `" + status + "`");
        }
        out.status = *parsed;
        const auto count = [&](int column) {
            return static_cast<std::uint32_t>(std::clamp<std::int64_t>(
                r.int8(row, column), 0, std::numeric_limits<std::uint32_t>::max()));
        };
        out.step = count(3);
        out.attempts = count(4);
        out.data = r.text(row, 5);
        out.next_run_at = settle::detail::from_sql_micros(r.int8(row, 6));
        out.version = version_stamp(static_cast<version_stamp::rep>(r.int8(row, 7)));
        out.last_error = r.text(row, 8);
        return out;
    }

    detail::table table_;
    std::string create_;
    std::string load_;
    std::string update_;
    std::string due_;
    std::string purgeable_;
    std::string purge_;
};

static_assert(settle::saga_store<saga_table>);

}  // namespace mysql

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MYSQL_HPP
