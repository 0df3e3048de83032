// What the MySQL tests share: the server named by SETTLE_MYSQL, table names
// no other test process uses, and tables dropped when a test ends.
#ifndef SETTLE_TESTS_MYSQL_MYSQL_TEST_HPP
#define SETTLE_TESTS_MYSQL_MYSQL_TEST_HPP

#include <settle/stores/mysql.hpp>

#include "settle_test.hpp"

#include <mysql.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mysql_test {

// The test server's connection settings, from SETTLE_MYSQL ("socket=DIR/mysqld.sock
// user=settle database=settle", as scripts/mariadb.sh conninfo prints them).
inline settle::mysql::connection_options options() {
    const char* info = std::getenv("SETTLE_MYSQL");
    if (info == nullptr || *info == '\0') {
        throw std::runtime_error(
            "SETTLE_MYSQL is not set: start a server (scripts/mariadb.sh start DIR) and set "
            "SETTLE_MYSQL to the output of scripts/mariadb.sh conninfo DIR");
    }
    settle::mysql::connection_options o;
    std::istringstream in(info);
    for (std::string word; in >> word;) {
        const auto eq = word.find('=');
        const std::string name = word.substr(0, eq);
        const std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
        if (name == "socket") {
            o.unix_socket = value;
        } else if (name == "user") {
            o.user = value;
        } else if (name == "database") {
            o.database = value;
        } else {
            throw std::runtime_error("SETTLE_MYSQL: unknown setting " + name);
        }
    }
    return o;
}

// "settle_<prefix>_<pid>_<n>": unique across test processes and within one.
inline std::string unique_name(std::string_view prefix) {
    static std::atomic<unsigned> counter{0};
    return "settle_" + std::string(prefix) + "_" + std::to_string(::getpid()) + "_" +
           std::to_string(counter++);
}

// Runs a statement on a raw handle, outside settle; throws on failure.
inline void run(MYSQL* conn, const std::string& sql) {
    if (mysql_real_query(conn, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
        throw std::runtime_error(sql + ": " + mysql_error(conn));
    }
    if (MYSQL_RES* r = mysql_store_result(conn)) {
        mysql_free_result(r);
    }
}

// The first column of the first row of a query, as text ("" if none).
inline std::string scalar(MYSQL* conn, const std::string& sql) {
    if (mysql_real_query(conn, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
        throw std::runtime_error(sql + ": " + mysql_error(conn));
    }
    std::string value;
    if (MYSQL_RES* r = mysql_store_result(conn)) {
        if (MYSQL_ROW row = mysql_fetch_row(r); row != nullptr && row[0] != nullptr) {
            value = row[0];
        }
        mysql_free_result(r);
    }
    return value;
}

// A raw handle of its own, closed at the end of scope.
class raw_connection {
public:
    raw_connection() : conn_(mysql_init(nullptr)) {
        const auto o = options();
        if (mysql_real_connect(conn_, nullptr, o.user.c_str(), nullptr, o.database.c_str(), 0,
                               o.unix_socket.c_str(), 0) == nullptr) {
            const std::string message = mysql_error(conn_);
            mysql_close(conn_);
            throw std::runtime_error("cannot connect: " + message);
        }
    }
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;
    ~raw_connection() { mysql_close(conn_); }
    [[nodiscard]] MYSQL* get() const noexcept { return conn_; }

private:
    MYSQL* conn_;
};

// A unique table name whose tables (the store's and the counters and key
// tables named after it) are dropped, on a connection of its own, when the
// test ends.
class scratch_table {
public:
    explicit scratch_table(std::string_view prefix) : name_(unique_name(prefix)) {}
    scratch_table(const scratch_table&) = delete;
    scratch_table& operator=(const scratch_table&) = delete;
    ~scratch_table() {
        try {
            raw_connection c;
            for (const char* suffix : {"", "_stamp", "_token", "_keys"}) {
                run(c.get(), "DROP TABLE IF EXISTS `" + name_ + suffix + "`");
            }
        } catch (...) {
        }
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
    std::string name_;
};

// The instant the MySQL tests start their records at.
inline const settle::stored_time t0 = std::chrono::sys_days(std::chrono::year(2024) / 1 / 1);

// The settle::errc that fn throws; a failed check if it throws none.
template <class F>
settle::errc thrown(F&& fn) {
    try {
        fn();
    } catch (const settle::error& e) {
        return static_cast<settle::errc>(e.code().value());
    }
    FAIL("expected a settle::error");
    return {};
}

// Applies a store's schema in a transaction of its own.
template <class Store>
void create_tables(Store& store) {
    auto tx = store.begin();
    store.create_tables(tx);
    tx.commit();
}

}  // namespace mysql_test

#endif  // SETTLE_TESTS_MYSQL_MYSQL_TEST_HPP
