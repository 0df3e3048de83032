#include <settle/stores/redis.hpp>

#include <cstdio>

// Compiles and links against hiredis; a server is not needed to check the package.
static_assert(settle::idempotency_store<settle::redis::idempotency_table>);

int main() {
    std::printf("settle::redis on hiredis %d.%d (%s)\n", HIREDIS_MAJOR, HIREDIS_MINOR,
                redisReaderCreate() != nullptr ? "linked" : "no reader");
    return 0;
}
