// The database the fault tests run on: PostgreSQL, or MySQL when built with
// SETTLE_FAULTS_MYSQL. `backend` names the store namespace; faults::connect()
// makes a connection to the test server, faults::query() runs a raw statement
// ($1, $2, ... for text parameters) and returns the first column of each row.
#ifndef SETTLE_TESTS_FAULTS_BACKEND_HPP
#define SETTLE_TESTS_FAULTS_BACKEND_HPP

#include <settle/error.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#ifdef SETTLE_FAULTS_MYSQL

#include <settle/stores/mysql.hpp>

#include "mysql/mysql_test.hpp"

namespace backend = settle::mysql;
#define SETTLE_FAULTS_SERVER "MariaDB"
#define SETTLE_FAULTS_ENV "SETTLE_MYSQL"

namespace faults {

inline constexpr const char* counter_column = "BIGINT AUTO_INCREMENT PRIMARY KEY";

inline backend::connection_options connect() {
    return mysql_test::options();
}

inline std::vector<std::string> query(MYSQL* conn, const std::string& sql,
                                      const std::vector<std::string>& params = {}) {
    std::string text;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        if (sql[i] == '$' && i + 1 < sql.size() && sql[i + 1] >= '1' && sql[i + 1] <= '9') {
            const std::string& p = params.at(static_cast<std::size_t>(sql[i + 1] - '1'));
            std::string escaped(p.size() * 2 + 1, '\0');
            escaped.resize(mysql_real_escape_string(conn, escaped.data(), p.data(),
                                                    static_cast<unsigned long>(p.size())));
            text += "'" + escaped + "'";
            ++i;
        } else {
            text += sql[i];
        }
    }
    std::vector<std::string> rows;
    if (mysql_real_query(conn, text.data(), static_cast<unsigned long>(text.size())) != 0) {
        const unsigned code = mysql_errno(conn);
        throw settle::error(
            code >= 2000 && code < 3000 ? settle::errc::unavailable : settle::errc::backend_failure,
            text + ": " + mysql_error(conn));
    }
    if (MYSQL_RES* result = mysql_store_result(conn)) {
        while (MYSQL_ROW row = mysql_fetch_row(result)) {
            rows.emplace_back(row[0] != nullptr ? row[0] : "");
        }
        mysql_free_result(result);
    }
    return rows;
}

}  // namespace faults

#else

#include <settle/stores/postgres.hpp>

namespace backend = settle::postgres;
#define SETTLE_FAULTS_SERVER "PostgreSQL"
#define SETTLE_FAULTS_ENV "SETTLE_POSTGRES"

namespace faults {

inline constexpr const char* counter_column = "BIGSERIAL PRIMARY KEY";

inline std::string connect() {
    const char* value = std::getenv("SETTLE_POSTGRES");
    if (value == nullptr) {
        throw settle::error(settle::errc::invalid_argument, "SETTLE_POSTGRES is not set");
    }
    return value;
}

inline std::vector<std::string> query(PGconn* conn, const std::string& sql,
                                      const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const std::string& p : params) {
        values.push_back(p.c_str());
    }
    PGresult* result = PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                    values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(result);
    std::vector<std::string> rows;
    if (status == PGRES_TUPLES_OK) {
        for (int row = 0; row < PQntuples(result); ++row) {
            rows.emplace_back(PQgetvalue(result, row, 0));
        }
    }
    const std::string message = PQresultErrorMessage(result);
    PQclear(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw settle::error(PQstatus(conn) == CONNECTION_BAD ? settle::errc::unavailable
                                                             : settle::errc::backend_failure,
                            sql + ": " + message);
    }
    return rows;
}

}  // namespace faults

#endif

#endif  // SETTLE_TESTS_FAULTS_BACKEND_HPP
