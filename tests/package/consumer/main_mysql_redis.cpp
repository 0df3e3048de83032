// A program outside settle's tree that uses the MySQL and Redis backends: it
// links the client libraries through settle::mysql and settle::redis (or
// pkg-config's settle-mysql and settle-redis). With no server to reach, each
// connection must fail as settle says: settle::error, errc::unavailable.
#include <settle/stores/mysql.hpp>
#include <settle/stores/redis.hpp>

#include <cstdio>
#include <utility>

static_assert(settle::idempotency_store<settle::redis::idempotency_table>);
static_assert(settle::transactional<settle::mysql::idempotency_table>);

namespace {

template <class Connect>
bool unavailable(Connect connect) {
    try {
        connect();
    } catch (const settle::error& e) {
        return e.code() == settle::errc::unavailable;
    }
    return false;
}

}  // namespace

int main() {
    const char* nowhere = "/nonexistent/settle-package-test.sock";
    const bool redis = unavailable(
        [&] { settle::redis::connection c(settle::redis::connection::unix_socket(nowhere)); });
    const bool mysql = unavailable([&] {
        settle::mysql::connection_options options;
        options.unix_socket = nowhere;
        settle::mysql::connection c(std::move(options));
    });
    std::printf("hiredis %d.%d, MySQL client %s: %s\n", HIREDIS_MAJOR, HIREDIS_MINOR,
                mysql_get_client_info(), redis && mysql ? "refused as unavailable" : "unexpected");
    return redis && mysql ? 0 : 1;
}
