// A program outside settle's tree that uses the SQL backends: it links the
// client libraries through settle::sqlite and settle::postgres (or
// pkg-config's settle-sqlite and settle-postgres).
#include <settle/outbox.hpp>
#include <settle/stores/postgres.hpp>
#include <settle/stores/sqlite.hpp>

#include <array>
#include <chrono>
#include <cstdio>

static_assert(settle::detail::check_outbox_store<settle::postgres::outbox_table>());

int main() {
    settle::sqlite::connection db(":memory:");
    settle::sqlite::outbox_table store(db, "outbox");
    std::chrono::system_clock clock;
    settle::outbox outbox(store, clock);
    std::array<std::byte, 16> bytes{};
    bytes[6] = std::byte{0x70};
    bytes[8] = std::byte{0x80};
    bytes[15] = std::byte{0x01};
    const settle::uuid id(bytes);
    {
        auto tx = store.begin();
        store.create_tables(tx);
        if (!outbox.append(tx, id, "orders.placed", std::uint32_t{42})) {
            return 1;
        }
        tx.commit();
    }
    auto tx = store.begin();
    const auto record = store.find(tx, id);
    tx.commit();
    std::printf("sqlite %s, libpq %d: %s\n", sqlite3_libversion(), PQlibVersion(),
                record ? std::string(settle::to_string(record->status)).c_str() : "missing");
    return record && record->status == settle::outbox_status::pending ? 0 : 1;
}
