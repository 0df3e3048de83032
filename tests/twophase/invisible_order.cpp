// The invisible order, end to end: an order is created hidden; the coupon and
// stock services are called to try their branches; when one fails the order
// is cancelled and cancel messages go out through the outbox, delivered
// after retries on a ladder; tries that were delayed arrive after their
// cancel. Afterwards the order, the coupons and the stock agree. Prints what
// it saw.
#include <settle/barrier.hpp>

#include "outbox/ids.hpp"
#include "settle_test.hpp"

#include <settle/codec.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>
#include <settle/retry.hpp>
#include <settle/stores/memory.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

using clock_type = settle::manual_clock;

// A participant: a resource it holds for branches and then uses or releases,
// its barrier, each in a database of its own.
struct participant {
    participant(clock_type& clock, std::string service, int stock)
        : name(std::move(service)), barrier(branches, clock) {
        db.transact([&](auto& tx) { free_units.put(tx, 0, stock); });
    }

    std::string name;
    memory::database db;
    memory::barrier_table branches{db};
    memory::table<int, int> free_units{db};    // 0 -> units not held or used
    memory::table<std::string, int> held{db};  // order -> units held
    memory::table<std::string, int> used{db};  // order -> units used
    settle::tcc_barrier<memory::barrier_table, clock_type> barrier;
    std::map<std::string, int> outcomes;  // every answer it gave, by name

    int get(memory::transaction& tx, memory::table<std::string, int>& t, const std::string& k) {
        const int* v = t.find(tx, k);
        return v == nullptr ? 0 : *v;
    }

    // The try: holds a unit, or refuses (throws) when none is free.
    settle::barrier_result try_phase(const std::string& order) {
        return record(db.transact([&](auto& tx) {
            return barrier.try_phase(tx, order, name, [&](auto& t) {
                const int free = *free_units.find(t, 0);
                if (free == 0) {
                    throw std::runtime_error(name + ": none left");
                }
                free_units.put(t, 0, free - 1);
                held.put(t, order, get(t, held, order) + 1);
            });
        }));
    }
    settle::barrier_result confirm(const std::string& order) {
        return record(db.transact([&](auto& tx) {
            return barrier.confirm(tx, order, name, [&](auto& t) {
                held.put(t, order, get(t, held, order) - 1);
                used.put(t, order, get(t, used, order) + 1);
            });
        }));
    }
    settle::barrier_result cancel(const std::string& order) {
        return record(db.transact([&](auto& tx) {
            return barrier.cancel(tx, order, name, [&](auto& t) {
                held.put(t, order, get(t, held, order) - 1);
                free_units.put(t, 0, *free_units.find(t, 0) + 1);
            });
        }));
    }
    settle::barrier_result record(settle::barrier_result r) {
        ++outcomes[std::string(settle::to_string(r.outcome()))];
        return r;
    }
    int total(memory::table<std::string, int>& t) {
        int sum = 0;
        db.transact([&](auto& tx) { t.for_each(tx, [&](const auto&, int n) { sum += n; }); });
        return sum;
    }
    int of(memory::table<std::string, int>& t, const std::string& order) {
        return db.transact([&](auto& tx) { return get(tx, t, order); });
    }
};

// Delivers "<service>.confirm" and "<service>.cancel" messages to the
// participants; the first two attempts of every message are lost.
struct network {
    std::map<std::string, participant*> services;
    int lost = 0;
    int delivered = 0;

    settle::publish_result publish(const settle::outbox_record& record) {
        if (record.attempts <= 2) {
            ++lost;
            return settle::publish_result::retryable("the network lost it");
        }
        const auto order = settle::decode<std::string>(record.payload);
        const auto dot = record.topic.find('.');
        participant& p = *services.at(record.topic.substr(0, dot));
        const settle::barrier_result r =
            record.topic.substr(dot + 1) == "confirm" ? p.confirm(order) : p.cancel(order);
        if (r.is_refused()) {
            return settle::publish_result::permanent(std::string(settle::to_string(r.outcome())));
        }
        ++delivered;
        return settle::publish_result::delivered();
    }
};

}  // namespace

TEST_CASE("the invisible order: a failed branch is cancelled everywhere, and all agree",
          "[twophase]") {
    clock_type clock{std::chrono::sys_days(std::chrono::year(2024) / 11 / 11)};
    participant coupon(clock, "coupon", 1000);
    participant stock(clock, "stock", 6);  // runs out: later orders fail their stock try
    memory::database order_db;
    memory::table<std::string, std::string> orders{order_db};  // order -> hidden, placed, cancelled
    memory::outbox_table outbox_store{order_db};
    settle::outbox outbox(outbox_store, clock);
    network net{{{"coupon", &coupon}, {"stock", &stock}}};
    settle::outbox_relay relay(outbox_store, net,
                               settle::persisted_retry{settle::ladder{1s, 5s, 30s}, 8}, clock,
                               {.owner = "relay"});

    constexpr int order_count = 12;
    std::uint32_t message = 0;
    std::vector<std::string> delayed_tries;  // sent, but arrive after everything else
    std::map<std::string, int> order_ends;
    for (int n = 0; n < order_count; ++n) {
        const std::string order = "order-" + std::to_string(n);
        order_db.transact([&](auto& tx) { orders.put(tx, order, "hidden"); });
        // The coupon's try of every third order is delayed in the network:
        // the order service times out and counts it as failed.
        bool ok = true;
        if (n % 3 == 2) {
            delayed_tries.push_back(order);
            ok = false;
        } else {
            ok = coupon.try_phase(order).is_entered();
        }
        if (ok) {
            try {
                ok = stock.try_phase(order).is_entered();
            } catch (const std::runtime_error&) {
                ++stock.outcomes["out of stock"];
                ok = false;
            }
        }
        const std::string decision = ok ? "confirm" : "cancel";
        order_db.transact([&](auto& tx) {
            orders.put(tx, order, ok ? "placed" : "cancelled");
            for (const char* service : {"coupon", "stock"}) {
                REQUIRE(outbox.append(tx, outbox_test::id_of(++message),
                                      std::string(service) + "." + decision, order, order));
            }
        });
        ++order_ends[ok ? "placed" : "cancelled"];
    }

    int rounds = 0;
    for (;;) {
        const settle::outbox_run_result r = relay.run_once();
        ++rounds;
        if (r.idle()) {
            const auto stats = settle::in_transaction(
                outbox_store, [&](auto& tx) { return outbox.statistics(tx); });
            if (stats.backlog == 0) {
                break;
            }
            clock.advance(30s);
        }
        REQUIRE(rounds < 1000);
    }
    for (const std::string& order : delayed_tries) {
        CHECK(coupon.try_phase(order).outcome() == settle::barrier_outcome::hanging);
    }

    const auto stats =
        settle::in_transaction(outbox_store, [&](auto& tx) { return outbox.statistics(tx); });
    CHECK(stats.dead == 0);
    for (int n = 0; n < order_count; ++n) {
        const std::string order = "order-" + std::to_string(n);
        const std::string state =
            order_db.transact([&](auto& tx) { return *orders.find(tx, order); });
        INFO(order << " " << state);
        for (participant* p : {&coupon, &stock}) {
            CHECK(p->of(p->held, order) == 0);
            CHECK(p->of(p->used, order) == (state == "placed" ? 1 : 0));
        }
    }
    CHECK(coupon.total(coupon.used) == order_ends["placed"]);
    CHECK(stock.total(stock.used) + stock.db.transact([&](auto& tx) {
        return *stock.free_units.find(tx, 0);
    }) == 6);
    CHECK(order_ends["placed"] > 0);
    CHECK(order_ends["cancelled"] > 0);

    const auto line = [](const std::map<std::string, int>& m) {
        std::string out;
        for (const auto& [k, v] : m) {
            out += " " + k + "=" + std::to_string(v);
        }
        return out;
    };
    std::printf(
        "invisible order: %d orders:%s; %u messages, %d lost and retried, %d relay "
        "rounds, %d delivered\n",
        order_count, line(order_ends).c_str(), message, net.lost, rounds, net.delivered);
    std::printf("  coupon answered:%s\n  stock answered:%s\n", line(coupon.outcomes).c_str(),
                line(stock.outcomes).c_str());
}
