#include <settle/stores/mysql.hpp>

#include <cstdio>

// Compiles and links against the MySQL C API; a server is not needed to check the package.
static_assert(settle::transactional<settle::mysql::idempotency_table>);

int main() {
    std::printf("settle::mysql on MySQL client %s\n", mysql_get_client_info());
    return 0;
}
