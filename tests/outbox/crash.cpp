// Crash at every step, in process: a relay "dies" at a chosen point (every
// store operation and publish from then on fails, so nothing can be cleaned
// up), another relay takes over once the dead one's leases end, and every
// committed record must be delivered, none lost, none of a rolled-back
// transaction ever published, and with the inbox each effect applied once.
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>

#include "settle_test.hpp"

#include <settle/inbox.hpp>
#include <settle/retry.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace memory = settle::memory;

namespace {

// What a dying process throws: not a std::exception, so nothing on the way
// mistakes it for an ordinary failure.
struct process_died {};

// When the process dies: after `store_ops` more store operations (begin and
// commit included), or at the publish after `publishes` more, whichever
// comes first; never when unset. Once dead, everything fails.
struct fate {
    std::optional<long> store_ops;
    std::optional<long> publishes;
    bool dead = false;

    void step(std::optional<long>& budget) {
        if (dead) {
            throw process_died{};
        }
        if (budget) {
            if (*budget == 0) {
                dead = true;
                throw process_died{};
            }
            --*budget;
        }
    }
};

// The outbox store as the dying relay sees it.
class crashing_store {
public:
    class transaction {
    public:
        // Begins the inner transaction in place: a memory::transaction does not move.
        transaction(memory::outbox_table& store, fate& f) : inner_(store.begin()), fate_(&f) {}
        void commit() {
            fate_->step(fate_->store_ops);
            inner_.commit();
        }
        memory::transaction& inner() { return inner_; }

    private:
        memory::transaction inner_;
        fate* fate_;
    };

    crashing_store(memory::outbox_table& store, fate& f) : store_(&store), fate_(&f) {}

    transaction begin() {
        step();
        return transaction(*store_, *fate_);
    }
    settle::outbox_append_result append(transaction& tx, settle::outbox_message m,
                                        settle::stored_time now) {
        step();
        return store_->append(tx.inner(), std::move(m), now);
    }
    std::vector<settle::outbox_record> claim(transaction& tx, std::string_view owner,
                                             settle::stored_time now,
                                             settle::stored_time lease_until, std::size_t limit) {
        step();
        return store_->claim(tx.inner(), owner, now, lease_until, limit);
    }
    settle::fenced_write mark_delivered(transaction& tx, const settle::uuid& id,
                                        settle::fencing_token token, settle::stored_time now) {
        step();
        return store_->mark_delivered(tx.inner(), id, token, now);
    }
    settle::fenced_write reschedule(transaction& tx, const settle::uuid& id,
                                    settle::fencing_token token, std::string_view error,
                                    settle::stored_time at) {
        step();
        return store_->reschedule(tx.inner(), id, token, error, at);
    }
    settle::fenced_write dead_letter(transaction& tx, const settle::uuid& id,
                                     settle::fencing_token token, std::string_view reason,
                                     settle::stored_time now) {
        step();
        return store_->dead_letter(tx.inner(), id, token, reason, now);
    }
    settle::fenced_write release(transaction& tx, const settle::uuid& id,
                                 settle::fencing_token token) {
        step();
        return store_->release(tx.inner(), id, token);
    }
    bool requeue(transaction& tx, const settle::uuid& id, settle::stored_time now) {
        step();
        return store_->requeue(tx.inner(), id, now);
    }
    std::size_t purge(transaction& tx, settle::stored_time before, std::size_t limit) {
        step();
        return store_->purge(tx.inner(), before, limit);
    }
    settle::outbox_statistics statistics(transaction& tx, settle::stored_time now) {
        step();
        return store_->statistics(tx.inner(), now);
    }
    std::optional<settle::outbox_record> find(transaction& tx, const settle::uuid& id) {
        step();
        return store_->find(tx.inner(), id);
    }
    std::vector<settle::outbox_record> dead_letters(transaction& tx, std::uint64_t after,
                                                    std::size_t limit) {
        step();
        return store_->dead_letters(tx.inner(), after, limit);
    }

private:
    void step() { fate_->step(fate_->store_ops); }

    memory::outbox_table* store_;
    fate* fate_;
};

static_assert(settle::outbox_appender<crashing_store> && settle::outbox_store<crashing_store>);

// The receiving service: an inbox and the effects it applies.
struct receiver {
    memory::database db;
    memory::inbox_table inbox{db};
    memory::table<std::string, int> applied{db};  // message id -> times applied
};

// Publishes straight into the receiver's idempotent consumer; the dying
// relay's publisher dies with its process.
struct broker {
    receiver* to;
    settle::idempotent_consumer<memory::inbox_table, settle::manual_clock>* consumer;
    fate* dies_with = nullptr;
    std::map<settle::uuid, int> arrivals;
    std::vector<std::pair<std::string, std::uint64_t>> arrival_order;  // (key, sequence)

    settle::publish_result publish(const settle::outbox_record& record) {
        if (dies_with != nullptr) {
            dies_with->step(dies_with->publishes);
        }
        ++arrivals[record.id];
        arrival_order.emplace_back(record.ordering_key, record.sequence);
        const std::string id = record.id.to_string();
        (void)consumer->consume(record.id, [&](memory::transaction& tx) {
            const int* n = to->applied.find(tx, id);
            to->applied.put(tx, id, n == nullptr ? 1 : *n + 1);
        });
        return settle::publish_result::delivered();
    }
};

struct scenario {
    settle::manual_clock clock{std::chrono::sys_days(std::chrono::year(2024) / 5 / 1)};
    memory::database db;
    memory::outbox_table store{db};
    receiver downstream;
    settle::idempotent_consumer<memory::inbox_table, settle::manual_clock> consumer{
        downstream.inbox, clock, {.consumer = "billing"}};
    std::vector<settle::uuid> committed;
    std::vector<settle::uuid> rolled_back;
    unsigned next_id = 1;

    settle::uuid fresh_id() {
        std::array<std::byte, 16> bytes{};
        bytes[0] = std::byte{0x01};
        bytes[6] = std::byte{0x70};
        bytes[8] = std::byte{0x80};
        bytes[15] = static_cast<std::byte>(next_id++);
        return settle::uuid(bytes);
    }

    void append(memory::transaction& tx, std::vector<settle::uuid>& into, std::string key) {
        const settle::uuid id = fresh_id();
        (void)store.append(
            tx,
            settle::outbox_message{
                id, "orders", std::move(key), settle::encode(std::string("event")), {}},
            std::chrono::floor<std::chrono::microseconds>(clock.now()));
        into.push_back(id);
    }

    // Seven committed records (three keyed "a", two keyed "b", two unordered)
    // in three transactions, and two more in a transaction that rolls back.
    scenario() {
        auto first = db.begin();
        append(first, committed, "a");
        append(first, committed, "b");
        append(first, committed, "");
        first.commit();
        auto lost = db.begin();
        append(lost, rolled_back, "a");
        append(lost, rolled_back, "");
        lost.rollback();
        auto second = db.begin();
        append(second, committed, "a");
        append(second, committed, "");
        second.commit();
        auto third = db.begin();
        append(third, committed, "b");
        append(third, committed, "a");
        third.commit();
    }

    static settle::persisted_retry<settle::constant_backoff> plan() {
        return settle::persisted_retry{settle::constant_backoff{1s}, 10};
    }

    // Runs a relay that dies as `f` says; returns whether it died.
    bool run_dying_relay(fate& f) {
        crashing_store dying(store, f);
        broker b{&downstream, &consumer, &f, {}, {}};
        settle::outbox_relay relay(dying, b, plan(), clock,
                                   {.owner = "relay-a", .batch_size = 3, .lease = 30s});
        try {
            for (int round = 0; round < 20; ++round) {
                if (relay.run_once().idle()) {
                    break;
                }
            }
        } catch (const process_died&) {
            return true;
        }
        return false;
    }  // the relay is dropped: whatever it held stays as it was

    // After the dead relay's leases end, a fresh relay finishes the work.
    broker recover() {
        clock.advance(31s);
        broker b{&downstream, &consumer, nullptr, {}, {}};
        settle::outbox_relay relay(store, b, plan(), clock, {.owner = "relay-b", .batch_size = 3});
        for (int round = 0; round < 50; ++round) {
            if (relay.run_once().idle()) {
                break;
            }
        }
        return b;
    }

    void check_all_delivered_once() {
        auto tx = db.begin();
        for (const auto& id : committed) {
            INFO(id);
            const auto r = store.find(tx, id);
            REQUIRE(r.has_value());
            CHECK(r->status == settle::outbox_status::delivered);
        }
        for (const auto& id : rolled_back) {
            CHECK_FALSE(store.find(tx, id).has_value());
        }
        tx.commit();
        auto rtx = downstream.db.begin();
        CHECK(downstream.applied.size(rtx) == committed.size());
        for (const auto& id : committed) {
            INFO(id);
            const int* n = downstream.applied.find(rtx, id.to_string());
            REQUIRE(n != nullptr);
            CHECK(*n == 1);
        }
    }
};

// Every record a broker saw for a key came in sequence order.
void check_order(const broker& b) {
    std::map<std::string, std::uint64_t> last;
    for (const auto& [key, sequence] : b.arrival_order) {
        if (!key.empty()) {
            CHECK(last[key] <= sequence);
            last[key] = sequence;
        }
    }
}

}  // namespace

TEST_CASE("a relay that dies between claim and publish loses nothing", "[outbox]") {
    scenario s;
    fate f{.store_ops = std::nullopt, .publishes = 0};
    CHECK(s.run_dying_relay(f));
    {
        auto tx = s.db.begin();
        const auto now = std::chrono::floor<std::chrono::microseconds>(s.clock.now());
        CHECK(s.store.statistics(tx, now).in_flight == 3);  // claimed, never published or released
    }
    const broker b = s.recover();
    s.check_all_delivered_once();
    CHECK(b.arrivals.size() == s.committed.size());
    check_order(b);
}

TEST_CASE("a relay that dies between publish and mark loses nothing and applies once", "[outbox]") {
    scenario s;
    // begin, claim, commit: the batch is claimed; it is published; the next
    // store operation (beginning the outcome transaction) dies.
    fate f{.store_ops = 3, .publishes = std::nullopt};
    CHECK(s.run_dying_relay(f));
    {
        auto tx = s.downstream.db.begin();
        CHECK(s.downstream.applied.size(tx) == 3);  // the first batch arrived
    }
    const broker b = s.recover();
    s.check_all_delivered_once();
    int again = 0;
    for (const auto& [id, count] : b.arrivals) {
        again += count;
    }
    CHECK(again == static_cast<int>(s.committed.size()));  // 3 of them a second time
    check_order(b);
}

TEST_CASE("a relay that dies mid-batch loses nothing and applies once", "[outbox]") {
    scenario s;
    fate f{.store_ops = std::nullopt, .publishes = 1};  // publishes one record of three, then dies
    CHECK(s.run_dying_relay(f));
    const broker b = s.recover();
    s.check_all_delivered_once();
    check_order(b);
}

TEST_CASE("a relay that dies at any store operation loses nothing", "[outbox]") {
    long step = 0;
    for (;; ++step) {
        CAPTURE(step);
        scenario s;
        fate f{.store_ops = step, .publishes = std::nullopt};
        const bool died = s.run_dying_relay(f);
        const broker b = s.recover();
        s.check_all_delivered_once();
        check_order(b);
        if (!died) {
            break;  // past the last operation of a full run
        }
    }
    CHECK(step > 15);  // three batches and an idle run: every step was a crash point
}

TEST_CASE("a relay that dies at any publish loses nothing", "[outbox]") {
    long step = 0;
    for (;; ++step) {
        CAPTURE(step);
        scenario s;
        fate f{.store_ops = std::nullopt, .publishes = step};
        const bool died = s.run_dying_relay(f);
        const broker b = s.recover();
        s.check_all_delivered_once();
        check_order(b);
        if (!died) {
            break;
        }
    }
    CHECK(step == 7);
}

namespace {

// Publishes everything but one record, which kills the process.
struct killer {
    settle::uuid poison;
    fate* f;
    settle::publish_result publish(const settle::outbox_record& record) {
        if (record.id == poison) {
            f->dead = true;
            throw process_died{};
        }
        return settle::publish_result::delivered();
    }
};

// Starts relays one after another, each dying on the poison record, and
// lets each one's leases end; returns how many died.
int run_relays_into(scenario& s, const settle::uuid& poison, std::size_t batch_size) {
    int deaths = 0;
    for (int relay = 0; relay < 8; ++relay) {
        fate f;
        crashing_store dying(s.store, f);
        killer publisher{poison, &f};
        settle::outbox_relay r(
            dying, publisher, settle::persisted_retry{settle::ladder{1s}, 3}, s.clock,
            {.owner = "relay-" + std::to_string(relay), .batch_size = batch_size});
        try {
            while (!r.run_once().idle()) {
            }
        } catch (const process_died&) {
            ++deaths;
        }
        s.clock.advance(31s);
    }
    return deaths;
}

}  // namespace

TEST_CASE("a record that kills every relay is dead-lettered in the end", "[outbox]") {
    // A poison message must not loop for ever: each claim counts an attempt,
    // and a record claimed more often than the schedule allows is
    // dead-lettered without being published.
    scenario s;
    const settle::uuid poison = s.committed.front();  // the oldest of key "a"
    CHECK(run_relays_into(s, poison, 1) == 3);
    auto tx = s.db.begin();
    const auto r = s.store.find(tx, poison);
    REQUIRE(r.has_value());
    CHECK(r->status == settle::outbox_status::dead);
    CHECK(r->last_error.find("claimed 4 times") == 0);
    const auto stats =
        s.store.statistics(tx, std::chrono::floor<std::chrono::microseconds>(s.clock.now()));
    CHECK(stats.backlog == 2);  // the two younger records of key "a" wait behind it
    CHECK(stats.dead == 1);
}

TEST_CASE("records that die in a batch with a poison record are kept and can be requeued",
          "[outbox]") {
    // Every record of a batch whose relay died lost a claim, as in a queue
    // that counts receives: with batches, the poison's batch-mates reach the
    // limit with it. They are dead letters, not losses: requeue them.
    scenario s;
    const settle::uuid poison = s.committed.front();
    CHECK(run_relays_into(s, poison, 3) == 3);
    std::vector<settle::outbox_record> dead;
    {
        auto tx = s.db.begin();
        dead = s.store.dead_letters(tx, 0, 10);
    }
    REQUIRE(dead.size() == 3);
    CHECK(dead[0].id == poison);
    for (const auto& d : dead) {
        CHECK(d.last_error.find("claimed 4 times") == 0);
        if (d.id != poison) {
            auto tx = s.db.begin();
            CHECK(s.store.requeue(tx, d.id,
                                  std::chrono::floor<std::chrono::microseconds>(s.clock.now())));
            tx.commit();
        }
    }
    (void)s.recover();
    auto tx = s.db.begin();
    for (const auto& id : s.committed) {
        const auto r = s.store.find(tx, id);
        const auto expected = id == poison             ? settle::outbox_status::dead
                              : r->ordering_key == "a" ? settle::outbox_status::pending
                                                       : settle::outbox_status::delivered;
        CHECK(r->status == expected);
    }
}
