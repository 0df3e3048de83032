// A persisted order state machine on SQLite. The order's state is a
// versioned row, and every event moves it by compare-and-set at the stamp it
// read: two payment callbacks racing on two connections capture the payment
// once (the other is a duplicate to acknowledge), and an event that is
// illegal in the current state is rejected without writing anything.
#include <settle/state_machine.hpp>
#include <settle/stores/sqlite.hpp>
#include <settle/transition.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sqlite = settle::sqlite;

enum class order_state { awaiting_payment, paid, shipped, cancelled };
enum class order_event { pay, ship, cancel };
using enum order_state;
using enum order_event;

constexpr std::string_view to_string(order_state s) {
    switch (s) {
    case awaiting_payment: return "awaiting_payment";
    case paid: return "paid";
    case shipped: return "shipped";
    case cancelled: return "cancelled";
    }
    return "?";
}
constexpr std::string_view to_string(order_event e) {
    switch (e) {
    case pay: return "pay";
    case ship: return "ship";
    case cancel: return "cancel";
    }
    return "?";
}

constexpr auto order_machine = settle::make_state_machine<order_state, order_event>(
    {awaiting_payment, paid, shipped, cancelled}, {shipped, cancelled},
    {{awaiting_payment, pay, paid}, {awaiting_payment, cancel, cancelled}, {paid, ship, shipped}});

// The versioned table of order states, as a class member would name it.
using order_states = sqlite::versioned_table<std::string, order_state>;

int main() {
    std::printf("%s\n", order_machine.to_mermaid().c_str());
    const auto path = std::filesystem::temp_directory_path() /
                      ("settle-fsm-" + std::to_string(std::random_device{}() % 1000000) + ".db");
    {
        sqlite::connection db(path.string());
        order_states states(db, "order_states");
        sqlite::transaction tx(db);
        states.create_tables(tx);
        (void)states.insert(tx, "order-1", order_machine.initial());
        tx.commit();
    }

    // Two payment callbacks at once, each on its own connection.
    std::atomic<int> captured{0};
    std::vector<std::thread> callbacks;
    for (int i = 0; i < 2; ++i) {
        callbacks.emplace_back([&] {
            sqlite::connection db(path.string());
            order_states states(db, "order_states");
            settle::in_transaction(states, [&](sqlite::transaction& tx) {
                const auto t = settle::transition(states, tx, "order-1", order_machine, pay);
                if (t) {
                    ++captured;  // the one-time effect: capture, append a message (same tx)
                }
                std::printf("payment callback: %s\n", settle::to_string(t.outcome()).data());
            });
        });
    }
    for (auto& c : callbacks) {
        c.join();
    }

    sqlite::connection db(path.string());
    order_states states(db, "order_states");
    bool ok = captured == 1;
    for (const order_event e : {ship, cancel, ship}) {
        settle::in_transaction(states, [&](sqlite::transaction& tx) {
            const auto t = settle::transition(states, tx, "order-1", order_machine, e);
            std::printf("%-6s -> %-9s (state %s, stamp %llu)\n", to_string(e).data(),
                        settle::to_string(t.outcome()).data(), to_string(t.check()->to()).data(),
                        static_cast<unsigned long long>(t.stamp().value()));
            ok = ok && (e == ship ? !t.is_rejected() : t.is_rejected());
        });
    }
    std::printf("payments captured: %d\n", captured.load());
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(path.string() + suffix);
    }
    return ok ? 0 : 1;
}
