// What the PostgreSQL tests share: the server named by SETTLE_POSTGRES, table
// names no other test process uses, and tables dropped when a test ends.
#ifndef SETTLE_TESTS_POSTGRES_POSTGRES_TEST_HPP
#define SETTLE_TESTS_POSTGRES_POSTGRES_TEST_HPP

#include <settle/stores/postgres.hpp>

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace postgres_test {

// The libpq conninfo of the test server; throws, saying how to set it, when
// SETTLE_POSTGRES is unset.
inline std::string conninfo() {
    const char* info = std::getenv("SETTLE_POSTGRES");
    if (info == nullptr || *info == '\0') {
        throw std::runtime_error(
            "SETTLE_POSTGRES is not set: start a server (scripts/postgres.sh start DIR) and set "
            "SETTLE_POSTGRES to the output of scripts/postgres.sh conninfo DIR");
    }
    return info;
}

// "settle_<prefix>_<pid>_<n>": unique across test processes and within one.
inline std::string unique_name(std::string_view prefix) {
    static std::atomic<unsigned> counter{0};
    return "settle_" + std::string(prefix) + "_" + std::to_string(::getpid()) + "_" +
           std::to_string(counter++);
}

// Runs a statement on a raw handle, outside settle; throws on failure.
inline void run(PGconn* conn, const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    const std::string message = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) {
        throw std::runtime_error(sql + ": " + message);
    }
}

// The first column of the first row of a query, as text ("" if none).
inline std::string scalar(PGconn* conn, const std::string& sql) {
    PGresult* r = PQexec(conn, sql.c_str());
    std::string value;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        value = PQgetvalue(r, 0, 0);
    }
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    const std::string message = PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) {
        throw std::runtime_error(sql + ": " + message);
    }
    return value;
}

// A unique table name whose table (and the sequences it owns) is dropped,
// on a connection of its own, when the test ends.
class scratch_table {
public:
    explicit scratch_table(std::string_view prefix)
        : conninfo_(conninfo()), name_(unique_name(prefix)) {}
    // The same, its prefix padded with 'q' so the name is `size` bytes long.
    scratch_table(std::string_view prefix, std::size_t size) : scratch_table(prefix) {
        const std::string shorter = name_;
        name_ = unique_name(std::string(prefix) + std::string(size - shorter.size(), 'q'));
    }
    scratch_table(const scratch_table&) = delete;
    scratch_table& operator=(const scratch_table&) = delete;
    ~scratch_table() {
        PGconn* conn = PQconnectdb(conninfo_.c_str());
        PQclear(PQexec(conn, ("SET client_min_messages = warning; DROP TABLE IF EXISTS \"" + name_ +
                              "\" CASCADE")
                                 .c_str()));
        PQfinish(conn);
    }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
    std::string conninfo_;
    std::string name_;
};

// Applies a store's schema in a transaction of its own.
template <class Store>
void create_tables(Store& store) {
    auto tx = store.begin();
    store.create_tables(tx);
    tx.commit();
}

}  // namespace postgres_test

#endif  // SETTLE_TESTS_POSTGRES_POSTGRES_TEST_HPP
