#include <settle/stores/sqlite.hpp>

#include <cstdio>

int main() {
    settle::sqlite::connection db(":memory:");
    settle::sqlite::outbox_table store(db, "outbox");
    auto tx = store.begin();
    store.create_tables(tx);
    tx.commit();
    std::printf("settle::sqlite on SQLite %s\n", sqlite3_libversion());
    return 0;
}
