#include <settle/stores/postgres.hpp>

#include <cstdio>

// Compiles and links against libpq; a server is not needed to check the package.
static_assert(settle::detail::check_outbox_store<settle::postgres::outbox_table>());

int main() {
    std::printf("settle::postgres on libpq %d\n", PQlibVersion());
    return 0;
}
