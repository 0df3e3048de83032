// The README's first example, as a program: an order placed at most once per
// idempotency key, its event written in the same transaction as the order.
// [includes]
#include <settle/settle.hpp>         // every block
#include <settle/stores/sqlite.hpp>  // the SQLite backend: link settle::sqlite
// [includes]

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

int main() {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("settle-readme-" + std::to_string(std::random_device{}() % 1000000));
    std::filesystem::create_directories(dir);
    std::filesystem::current_path(dir);
    bool ok = false;
    {
        // [readme]
        std::chrono::system_clock clock;
        std::mt19937_64 random{std::random_device{}()};
        settle::uuid_v7_generator ids(clock, random);

        settle::sqlite::connection db("shop.db");  // your database
        settle::sqlite::versioned_table<std::string, std::string> orders(db, "orders");
        settle::sqlite::idempotency_table requests(db, "requests");
        settle::sqlite::outbox_table outbox_rows(db, "outbox");
        settle::in_transaction(orders, [&](settle::sqlite::transaction& tx) {  // the schema
            orders.create_tables(tx);
            requests.create_tables(tx);
            outbox_rows.create_tables(tx);
        });
        settle::idempotency_guard guard(requests, clock);
        settle::outbox outbox(outbox_rows, clock);

        // POST /orders runs once per Idempotency-Key; a repeat gets the first answer.
        const auto place_order = [&] {
            const std::string id = ids().to_string();
            settle::sqlite::transaction tx(db);
            (void)orders.insert(tx, id, "placed");
            (void)outbox.append(tx, ids(), "orders.placed", id);  // with the order, or not at all
            tx.commit();
            return id;
        };
        const auto key = settle::idempotency_key::from_header(R"("checkout-7f3a")").value();
        const auto body = settle::sha256::hash(R"({"sku":"book"})");
        const auto first = guard.run({"acct-7", "orders.create"}, key, body, place_order);
        const auto again = guard.run({"acct-7", "orders.create"}, key, body, place_order);
        // first.is_executed(), again.is_replayed(), *again.response() == *first.response()
        // [readme]
        std::printf("first: %s %s\nagain: %s %s\n", settle::to_string(first.outcome()).data(),
                    first.response()->c_str(), settle::to_string(again.outcome()).data(),
                    again.response()->c_str());
        ok = first.is_executed() && again.is_replayed() && *again.response() == *first.response();
    }
    std::filesystem::current_path(std::filesystem::temp_directory_path());
    std::filesystem::remove_all(dir);
    return ok ? 0 : 1;
}
