// settle's showcase: an order -> payment -> fulfilment flow on SQLite that
// stays correct while clients repeat requests, buyers race for stock, the
// message gateway fails, times out and loses acknowledgements, and relay
// processes are killed in the middle of a batch.
//
//   clients ──idempotency guard──> place order: reserve stock (optimistic
//       version stamps), order row + state + "orders.placed" in one transaction
//   relays ──claim under a lease──> gateway (flaky) ──> consumers, each
//       through its inbox: payments, orders (state machine), fulfilment
//
// At the end it checks, from the database, that no order was charged twice,
// no stock was oversold, no event was lost or applied twice, and every order
// reached a final state; it exits non-zero if one of them fails.
//
//   settle_showcase [--orders=N] [--clients=N] [--relays=N] [--kills=N]
//                   [--fail=R] [--timeout=R] [--lost-ack=R] [--poison=R]
//                   [--decline=R] [--seed=N] [--db=FILE] [--quiet]
#include <settle/settle.hpp>
#include <settle/stores/sqlite.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace sqlite = settle::sqlite;

// ---------------------------------------------------------------------------
// The order's life cycle.

enum class order_state : std::uint8_t { awaiting_payment, paid, shipped, cancelled };
enum class order_event : std::uint8_t { pay, ship, cancel };
using enum order_state;
using enum order_event;

constexpr auto order_machine = settle::make_state_machine<order_state, order_event>(
    {awaiting_payment, paid, shipped, cancelled}, {shipped, cancelled},
    {{awaiting_payment, pay, paid}, {awaiting_payment, cancel, cancelled}, {paid, ship, shipped}});

// ---------------------------------------------------------------------------
// Options.

struct options {
    int orders = 300;         // purchases the clients make
    int clients = 4;          // client threads
    int relays = 2;           // relay threads
    int kills = 2;            // relay processes killed mid-batch
    double fail = 0.10;       // the gateway refuses (nothing delivered)
    double timeout = 0.05;    // the gateway times out (delivered or not)
    double lost_ack = 0.05;   // delivered, then the connection drops before the acknowledgement
    double poison = 0.02;     // orders whose event the gateway rejects until the operator's fix
    double decline = 0.10;    // payments declined (the order is cancelled, its stock returned)
    double repeat = 0.40;     // clients that send their request again (the answer was lost)
    double mismatch = 0.05;   // clients that reuse their key for another request
    double malformed = 0.05;  // clients that send a malformed key first
    std::uint64_t seed = 1;
    std::string db;  // a SQLite file; empty: one in a temporary directory
    bool quiet = false;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(why ? stderr : stdout,
                 "%s%susage: settle_showcase [option=value]...\n"
                 "  --orders=N     purchases the clients make (300)\n"
                 "  --clients=N    client threads (4)\n"
                 "  --relays=N     relay threads (2)\n"
                 "  --kills=N      relay processes killed mid-batch (2)\n"
                 "  --fail=R       share of publishes the gateway refuses (0.10)\n"
                 "  --timeout=R    share that time out, delivered or not (0.05)\n"
                 "  --lost-ack=R   share delivered whose acknowledgement is lost (0.05)\n"
                 "  --poison=R     share of orders whose event is rejected until fixed (0.02)\n"
                 "  --decline=R    share of payments declined (0.10)\n"
                 "  --seed=N       what the purchases and the failures are drawn from (random)\n"
                 "  --db=FILE      the SQLite file (a new one in a temporary directory)\n"
                 "  --quiet        no progress line\n",
                 why ? why : "", why ? "\n" : "");
    std::exit(why ? 2 : 0);
}

options parse(int argc, char** argv) {
    options o;
    o.seed = std::random_device{}();
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto eq = arg.find('=');
        const std::string name = arg.substr(0, eq);
        const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
        const auto count = [&] { return std::max(0, std::atoi(value.c_str())); };
        const auto rate = [&] { return std::clamp(std::atof(value.c_str()), 0.0, 1.0); };
        if (name == "--orders")
            o.orders = count();
        else if (name == "--clients")
            o.clients = std::max(1, count());
        else if (name == "--relays")
            o.relays = std::max(1, count());
        else if (name == "--kills")
            o.kills = count();
        else if (name == "--fail")
            o.fail = rate();
        else if (name == "--timeout")
            o.timeout = rate();
        else if (name == "--lost-ack")
            o.lost_ack = rate();
        else if (name == "--poison")
            o.poison = rate();
        else if (name == "--decline")
            o.decline = rate();
        else if (name == "--seed")
            o.seed = std::strtoull(value.c_str(), nullptr, 10);
        else if (name == "--db")
            o.db = value;
        else if (name == "--quiet")
            o.quiet = true;
        else if (name == "--help")
            usage(nullptr);
        else
            usage(("unknown option " + arg).c_str());
    }
    if (o.fail + o.timeout + o.lost_ack > 0.9)
        usage("--fail, --timeout and --lost-ack add up to more than 0.9");
    return o;
}

// A stable hash, so that every process decides alike about one order.
std::uint64_t fnv1a(std::string_view text) {
    std::uint64_t h = 14695981039346656037ull;
    for (const char c : text) {
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    return h;
}
bool chance(std::string_view what, std::uint64_t seed, double rate) {
    return static_cast<double>(fnv1a(std::string(what) + std::to_string(seed)) % 1000000) <
           rate * 1e6;
}

// ---------------------------------------------------------------------------
// Your own SQL, in settle's transaction: the business rows.

// Runs one statement with text parameters; returns its rows, each column as text.
std::vector<std::vector<std::string>> sql(const sqlite::transaction& tx, const char* text,
                                          const std::vector<std::string>& args = {}) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(tx.native(), text, -1, &s, nullptr) != SQLITE_OK) {
        throw std::runtime_error(sqlite3_errmsg(tx.native()));
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
        sqlite3_bind_text(s, static_cast<int>(i + 1), args[i].c_str(), -1, SQLITE_TRANSIENT);
    }
    std::vector<std::vector<std::string>> out;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        auto& row = out.emplace_back();
        for (int c = 0; c < sqlite3_column_count(s); ++c) {
            const auto* v = sqlite3_column_text(s, c);
            row.emplace_back(v ? reinterpret_cast<const char*>(v) : "");
        }
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
        throw std::runtime_error(sqlite3_errmsg(tx.native()));
    }
    return out;
}
long long number(const sqlite::transaction& tx, const char* text) {
    const auto r = sql(tx, text);
    return r.empty() || r[0].empty() ? 0 : std::atoll(r[0][0].c_str());
}

constexpr const char* schema = R"(
CREATE TABLE IF NOT EXISTS order_lines (order_id TEXT PRIMARY KEY, purchase TEXT NOT NULL,
    sku TEXT NOT NULL, quantity INTEGER NOT NULL, cents INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS charges (order_id TEXT PRIMARY KEY, captures INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shipments (order_id TEXT PRIMARY KEY, times INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS applied (consumer TEXT NOT NULL, message_id TEXT NOT NULL,
    times INTEGER NOT NULL, PRIMARY KEY (consumer, message_id));
)";

// The audit the invariants read: how often each consumer applied each message.
constexpr const char* count_application =
    "INSERT INTO applied VALUES (?1, ?2, 1) ON CONFLICT DO UPDATE SET times = times + 1";

// ---------------------------------------------------------------------------
// One connection and every store on it. Each thread, and each process, has its own.

struct shop {
    sqlite::connection db;
    sqlite::idempotency_table requests{db, "requests"};
    sqlite::versioned_table<std::string, order_state> orders{db, "orders"};
    sqlite::versioned_table<std::string, std::int64_t> stock{db, "stock"};
    sqlite::outbox_table outbox_rows{db, "outbox"};
    sqlite::inbox_table inbox{db, "inbox"};

    explicit shop(const std::string& path) : db(path) {
        // WAL with synchronous=NORMAL: a commit survives the process being
        // killed (what this program does), not a power cut. Use FULL for that.
        sqlite3_exec(db.native(), "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
        // SQLite runs one writer at a time. Its busy timeout sleeps in steps of
        // up to 100 ms, which lets the busiest threads starve the others; poll
        // every 200 us instead, for up to 30 s.
        sqlite3_busy_handler(
            db.native(),
            [](void*, int attempts) {
                std::this_thread::sleep_for(200us);
                return attempts < 150000 ? 1 : 0;
            },
            nullptr);
    }
};

using wall = std::chrono::system_clock;
using id_generator = settle::uuid_v7_generator<wall, std::mt19937_64>;
wall clock_;

// What happened, counted by every thread of this process.
struct counters {
    std::atomic<long> purchases{0}, placed{0}, sold_out{0}, executions{0}, replays{0},
        in_progress{0}, mismatches{0}, malformed{0}, conflicts{0}, publishes{0}, failures{0},
        timeouts{0}, lost_acks{0}, rejected{0}, delivered{0}, rescheduled{0}, dead_lettered{0},
        stale{0}, duplicates{0}, state_duplicates{0}, declined{0}, takeovers{0}, killed{0},
        requeued{0};
};

// ---------------------------------------------------------------------------
// The consumers: payments, orders, fulfilment. Each applies a message through
// its inbox, in one transaction with its effects and the next event.

class consumers {
public:
    consumers(shop& s, id_generator& ids, const options& o, counters& c)
        : s_(s), ids_(ids), o_(o), c_(c) {}

    void deliver(const settle::outbox_record& r) {
        const std::string topic = r.topic;
        const auto order = settle::decode<std::string>(r.payload);
        auto& consumer = topic == "orders.placed" ? payments_
                         : topic == "orders.paid" ? fulfilment_
                                                  : orders_;
        const auto result = consumer.consume(r.id, [&](sqlite::transaction& tx) {
            sql(tx, count_application, {consumer.options().consumer, r.id.to_string()});
            if (topic == "orders.placed")
                charge(tx, order);
            else if (topic == "payments.captured")
                move(tx, order, pay, "orders.paid");
            else if (topic == "payments.declined")
                move(tx, order, cancel, {});
            else if (topic == "orders.paid")
                ship_it(tx, order);
        });
        if (result.is_duplicate())
            ++c_.duplicates;
    }

private:
    void charge(sqlite::transaction& tx, const std::string& order) {
        if (chance(order, o_.seed, o_.decline)) {
            (void)events_.append(tx, ids_(), "payments.declined", order, order);
            return;
        }
        sql(tx,
            "INSERT INTO charges VALUES (?1, 1) ON CONFLICT DO UPDATE SET captures = captures + 1",
            {order});
        (void)events_.append(tx, ids_(), "payments.captured", order, order);
    }

    // The order's state moves only by the machine, compare-and-set on its stamp.
    void move(sqlite::transaction& tx, const std::string& order, order_event e,
              std::string_view next_topic) {
        const auto t = settle::transition(s_.orders, tx, order, order_machine, e);
        if (t.is_duplicate())
            ++c_.state_duplicates;
        if (!t)
            return;
        if (e == cancel) {  // the compensation: the reserved stock goes back
            const auto line =
                sql(tx, "SELECT sku, quantity FROM order_lines WHERE order_id = ?1", {order});
            const std::int64_t quantity = std::atoll(line.at(0)[1].c_str());
            (void)settle::optimistic_update(s_.stock, tx, line.at(0)[0],
                                            [&](std::int64_t have) { return have + quantity; });
            ++c_.declined;
        }
        if (!next_topic.empty()) {
            (void)events_.append(tx, ids_(), std::string(next_topic), order, order);
        }
    }

    void ship_it(sqlite::transaction& tx, const std::string& order) {
        sql(tx, "INSERT INTO shipments VALUES (?1, 1) ON CONFLICT DO UPDATE SET times = times + 1",
            {order});
        move(tx, order, ship, {});
    }

    shop& s_;
    id_generator& ids_;
    const options& o_;
    counters& c_;
    settle::outbox<sqlite::outbox_table, wall> events_{s_.outbox_rows, clock_};
    settle::idempotent_consumer<sqlite::inbox_table, wall> payments_{
        s_.inbox, clock_, {.consumer = "payments"}};
    settle::idempotent_consumer<sqlite::inbox_table, wall> orders_{
        s_.inbox, clock_, {.consumer = "orders"}};
    settle::idempotent_consumer<sqlite::inbox_table, wall> fulfilment_{
        s_.inbox, clock_, {.consumer = "fulfilment"}};
};

// ---------------------------------------------------------------------------
// The message gateway: it fails, times out and loses acknowledgements.

struct connection_reset : std::runtime_error {
    connection_reset()
        : std::runtime_error("gateway: connection reset before the acknowledgement") {}
};

std::atomic<bool> poison_fixed{false};  // the operator's fix, deployed before requeueing

class gateway {
public:
    gateway(consumers& to, std::uint64_t seed, const options& o, counters& c)
        : to_(to), random_(seed), o_(o), c_(c) {}

    settle::publish_result publish(const settle::outbox_record& r) {
        ++c_.publishes;
        const auto order = settle::decode<std::string>(r.payload);
        if (r.topic == "orders.placed" && chance(order + "poison", o_.seed, o_.poison) &&
            !poison_fixed) {
            ++c_.rejected;
            return settle::publish_result::permanent("gateway: schema rejects the gift note");
        }
        double x = std::uniform_real_distribution<double>(0, 1)(random_);
        if ((x -= o_.fail) < 0) {
            ++c_.failures;
            return settle::publish_result::retryable("gateway: 503 service unavailable");
        }
        if ((x -= o_.timeout) < 0) {
            ++c_.timeouts;
            if (random_() % 2 == 0)
                to_.deliver(r);  // it went out, but the answer did not come back
            return settle::publish_result::retryable("gateway: timed out");
        }
        to_.deliver(r);
        if ((x -= o_.lost_ack) < 0) {
            ++c_.lost_acks;
            throw connection_reset();
        }
        return settle::publish_result::delivered();
    }

private:
    consumers& to_;
    std::mt19937_64 random_;
    const options& o_;
    counters& c_;
};

struct relay_observer {
    counters* c;
    void on_outcome(const settle::outbox_event& e) {
        switch (e.outcome()) {
        case settle::outbox_outcome::delivered: ++c->delivered; break;
        case settle::outbox_outcome::rescheduled: ++c->rescheduled; break;
        case settle::outbox_outcome::dead_lettered: ++c->dead_lettered; break;
        case settle::outbox_outcome::released: break;
        case settle::outbox_outcome::stale: ++c->stale; break;
        }
    }
};

// A short ladder, so that the whole run takes seconds; a service would use
// settle::message_queue_ladder (seconds to hours).
constexpr settle::ladder demo_ladder{1ms, 5ms, 20ms, 50ms, 100ms};
constexpr auto relay_lease = 500ms;

// A relay thread: claim, publish, record; again until stopped.
void relay_thread(int index, const std::string& path, const options& o, counters& c,
                  const std::atomic<bool>& stop) {
    shop s(path);
    std::mt19937_64 random(o.seed * 7919 + static_cast<std::uint64_t>(index));
    settle::uuid_v7_generator ids(clock_, random);
    consumers to(s, ids, o, c);
    gateway publisher(to, random(), o, c);
    settle::outbox_relay relay(
        s.outbox_rows, publisher, settle::persisted_retry{demo_ladder, 12}, clock_,
        {.owner = "relay-" + std::to_string(index), .lease = relay_lease}, relay_observer{&c});
    while (!stop) {
        try {
            if (relay.run_once().idle())
                std::this_thread::sleep_for(2ms);
        } catch (const connection_reset&) {
            // The relay rescheduled the record (it may have gone out) and released the rest.
        } catch (const settle::error& e) {
            if (e.code() != settle::errc::unavailable)
                throw;
            std::this_thread::sleep_for(5ms);  // the database was busy: try again
        }
    }
}

// ---------------------------------------------------------------------------
// A relay process that dies mid-batch: it publishes half of its batch, tells
// the parent which records it holds, and waits to be killed with SIGKILL.

struct doomed_gateway {
    gateway& g;
    int report_fd;
    std::vector<settle::publish_result> publish_batch(
        std::span<const settle::outbox_record> batch) {
        std::string held;
        for (const auto& r : batch)
            held += r.id.to_string() + '\n';
        for (std::size_t i = 0; i < batch.size() / 2; ++i) {
            try {
                (void)g.publish(batch[i]);
            } catch (const connection_reset&) {
            }
        }
        held += '\n';
        (void)!write(report_fd, held.data(), held.size());
        for (;;)
            pause();
    }
    settle::publish_result publish(const settle::outbox_record& r) { return g.publish(r); }
};

[[noreturn]] void doomed_relay(int index, const std::string& path, const options& o,
                               int report_fd) {
    counters c;  // this process's counts die with it
    shop s(path);
    std::mt19937_64 random(o.seed * 104729 + static_cast<std::uint64_t>(index));
    settle::uuid_v7_generator ids(clock_, random);
    consumers to(s, ids, o, c);
    gateway g(to, random(), o, c);
    doomed_gateway publisher{g, report_fd};
    settle::outbox_relay relay(
        s.outbox_rows, publisher, settle::persisted_retry{demo_ladder, 12}, clock_,
        {.owner = "doomed-" + std::to_string(index), .batch_size = 8, .lease = relay_lease});
    for (;;) {
        try {
            (void)relay.run_once();
        } catch (const settle::error&) {
        }
        std::this_thread::sleep_for(1ms);
    }
}

struct doomed {
    pid_t pid;
    int fd;
    std::string report;
    bool done = false;
};

// ---------------------------------------------------------------------------
// The clients: each purchase is sent through the idempotency guard, and
// sometimes again, blindly.

struct purchase {
    std::string key, sku;
    int quantity;
    bool repeat, mismatch, malformed;
};

std::vector<std::string> skus = {"book", "lamp", "mug", "pen"};

void client_thread(int index, const std::string& path, const std::vector<purchase>& purchases,
                   std::atomic<std::size_t>& next, const options& o, counters& c, std::mutex& m,
                   std::map<std::string, std::set<std::string>>& answers) {
    shop s(path);
    std::mt19937_64 random(o.seed * 31337 + static_cast<std::uint64_t>(index));
    settle::uuid_v7_generator ids(clock_, random);
    settle::outbox<sqlite::outbox_table, wall> events(s.outbox_rows, clock_);
    settle::idempotency_guard<sqlite::idempotency_table, wall> guard(
        s.requests, clock_, {.lease = 30s, .retention = 24h});
    settle::system_sleeper sleeper;
    const auto stock_policy =
        settle::retry_policy{settle::exponential_backoff{100us, 2.0, 5ms}, 50};

    const auto request = [&](const purchase& p, const std::string& header, int quantity) {
        const auto key = settle::idempotency_key::from_header(header);
        if (!key) {  // 400 Bad Request: the client fixes its key and sends again
            ++c.malformed;
            return;
        }
        const settle::idempotency_scope scope{"shop", "orders.create"};
        const auto fingerprint = settle::fingerprint_fields({p.sku, std::to_string(quantity)});
        const auto place_order = [&]() -> std::string {
            ++c.executions;
            const auto reserved = settle::optimistic_update(
                s.stock, p.sku,
                [&](std::int64_t have) -> std::optional<std::int64_t> {
                    if (have < quantity)
                        return std::nullopt;
                    return have - quantity;
                },
                stock_policy, clock_, sleeper);
            c.conflicts += reserved.attempts() - 1;
            if (reserved.is_unchanged())
                return "sold-out";
            if (!reserved)
                throw std::runtime_error("stock is too busy");  // 503: try again
            const std::string order = ids().to_string();
            try {
                settle::in_transaction(s.orders, [&](sqlite::transaction& tx) {
                    (void)s.orders.insert(tx, order, order_machine.initial());
                    sql(tx, "INSERT INTO order_lines VALUES (?1, ?2, ?3, ?4, ?5)",
                        {order, p.key, p.sku, std::to_string(quantity),
                         std::to_string(quantity * 1250)});
                    (void)events.append(tx, ids(), "orders.placed", order, order);
                });
            } catch (...) {  // give the stock back, then let the guard free the key
                while (!settle::optimistic_update(
                            s.stock, p.sku, [&](std::int64_t have) { return have + quantity; },
                            stock_policy, clock_, sleeper)
                            .is_applied()) {
                }
                throw;
            }
            return order;
        };
        for (;;) {
            try {
                const auto r = guard.run(scope, *key, fingerprint, place_order);
                switch (r.outcome()) {
                case settle::idempotency_outcome::executed:
                    if (*r.response() == "sold-out")
                        ++c.sold_out;
                    else
                        ++c.placed;
                    break;
                case settle::idempotency_outcome::replayed: ++c.replays; break;
                case settle::idempotency_outcome::in_progress:
                    ++c.in_progress;
                    std::this_thread::sleep_for(1ms);
                    continue;
                case settle::idempotency_outcome::mismatch: ++c.mismatches; return;
                case settle::idempotency_outcome::stale: break;
                }
                std::scoped_lock lock(m);
                answers[p.key].insert(*r.response());
                return;
            } catch (const std::runtime_error&) {
                std::this_thread::sleep_for(1ms);  // 503: the client tries again
            }
        }
    };

    for (std::size_t i; (i = next++) < purchases.size();) {
        const purchase& p = purchases[i];
        ++c.purchases;
        if (p.malformed)
            request(p, "\"" + p.key + "\x01\"", p.quantity);
        request(p, "\"" + p.key + "\"", p.quantity);
        if (p.repeat)
            request(p, "\"" + p.key + "\"", p.quantity);  // the answer was lost
        if (p.mismatch)
            request(p, "\"" + p.key + "\"", p.quantity + 1);
    }
}

// ---------------------------------------------------------------------------

bool run(const options& o, const std::string& path) {
    std::printf(
        "settle %d.%d.%d showcase: %d purchases, %d clients, %d relays, %d relay "
        "processes killed, seed %llu\ndatabase: %s (SQLite)\n",
        settle::version.major, settle::version.minor, settle::version.patch, o.orders, o.clients,
        o.relays, o.kills, static_cast<unsigned long long>(o.seed), path.c_str());
    const auto started = std::chrono::steady_clock::now();

    // The schema and the stock.
    const std::int64_t stock_each = o.orders * 45 / 100 + 1;
    {
        shop s(path);
        sqlite::transaction tx(s.db);
        s.requests.create_tables(tx);
        s.orders.create_tables(tx);
        s.stock.create_tables(tx);
        s.outbox_rows.create_tables(tx);
        s.inbox.create_tables(tx);
        if (sqlite3_exec(tx.native(), schema, nullptr, nullptr, nullptr) != SQLITE_OK) {
            throw std::runtime_error(sqlite3_errmsg(tx.native()));
        }
        for (const auto& sku : skus)
            (void)s.stock.insert(tx, sku, stock_each);
        tx.commit();
    }

    // The purchases, the same for one seed whatever the threads do.
    std::vector<purchase> purchases;
    {
        std::mt19937_64 random(o.seed);
        std::uniform_real_distribution<double> u(0, 1);
        for (int i = 0; i < o.orders; ++i) {
            const auto sku = skus[random() % skus.size()];
            const int quantity = 1 + static_cast<int>(random() % 3);
            purchases.push_back({"purchase-" + std::to_string(o.seed) + "-" + std::to_string(i),
                                 sku, quantity, u(random) < o.repeat, u(random) < o.mismatch,
                                 u(random) < o.malformed});
        }
    }

    // Relay processes that will be killed mid-batch, forked before any thread starts.
    std::fflush(stdout);
    std::vector<doomed> children;
    for (int k = 0; k < o.kills; ++k) {
        int fds[2];
        if (pipe(fds) != 0)
            throw std::runtime_error("pipe failed");
        const pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            doomed_relay(k, path, o, fds[1]);
        }
        close(fds[1]);
        fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
        children.push_back({pid, fds[0], {}});
    }

    counters c;
    std::atomic<bool> stop_relays{false};
    std::atomic<std::size_t> next{0};
    std::atomic<int> clients_done{0};
    std::mutex m;
    std::map<std::string, std::set<std::string>> answers;
    std::vector<std::thread> relays, clients;
    for (int i = 0; i < o.relays; ++i) {
        relays.emplace_back(relay_thread, i, std::cref(path), std::cref(o), std::ref(c),
                            std::cref(stop_relays));
    }
    for (int i = 0; i < o.clients; ++i) {
        clients.emplace_back([&, i] {
            client_thread(i, path, purchases, next, o, c, m, answers);
            ++clients_done;
        });
    }

    // The operator's console: kills relays, watches the backlog, requeues dead letters.
    shop console(path);
    settle::outbox<sqlite::outbox_table, wall> outbox(console.outbox_rows, clock_);
    std::vector<std::string> held;  // records claimed by the relays that were killed
    const bool tty = isatty(1) != 0;
    auto last_line = std::chrono::steady_clock::now();
    bool finished = false;
    long delivered_seen = 0;
    auto last_progress = std::chrono::steady_clock::now();
    while (!finished) {
        std::this_thread::sleep_for(20ms);
        for (auto& d : children) {
            char buffer[4096];
            ssize_t n;
            while (!d.done && (n = read(d.fd, buffer, sizeof buffer)) > 0) {
                d.report.append(buffer, static_cast<std::size_t>(n));
            }
            const bool reported = d.report.size() >= 2 && d.report.ends_with("\n\n");
            if (!d.done && (reported || clients_done == o.clients)) {
                kill(d.pid, SIGKILL);
                waitpid(d.pid, nullptr, 0);
                close(d.fd);
                d.done = true;
                ++c.killed;
                for (std::size_t at = 0, end; (end = d.report.find('\n', at)) != std::string::npos;
                     at = end + 1) {
                    if (end > at)
                        held.push_back(d.report.substr(at, end - at));
                }
            }
        }
        const auto stats = settle::in_transaction(
            console.outbox_rows, [&](sqlite::transaction& tx) { return outbox.statistics(tx); });
        const bool all_killed =
            std::all_of(children.begin(), children.end(), [](const doomed& d) { return d.done; });
        // A dead letter holds up the younger records of its order, so the
        // operator steps in once the clients are done and deliveries stall.
        if (c.delivered != delivered_seen) {
            delivered_seen = c.delivered;
            last_progress = std::chrono::steady_clock::now();
        }
        const bool stalled = std::chrono::steady_clock::now() - last_progress > 2 * relay_lease;
        if (clients_done == o.clients && all_killed && stats.dead > 0 &&
            (stats.backlog == 0 || stalled)) {
            // The operator reads the dead letters, deploys the fix, requeues them.
            poison_fixed = true;
            c.requeued += static_cast<long>(settle::in_transaction(
                console.outbox_rows,
                [&](sqlite::transaction& tx) { return outbox.requeue_dead_letters(tx, 1000); }));
            last_progress = std::chrono::steady_clock::now();
        }
        finished = clients_done == o.clients && all_killed && stats.backlog == 0 && stats.dead == 0;
        const auto now = std::chrono::steady_clock::now();
        if (!o.quiet && (finished || now - last_line >= (tty ? 100ms : 1s))) {
            last_line = now;
            std::printf(
                "%s[%5.1fs] purchases %ld/%d  placed %ld  delivered %ld  backlog %zu  "
                "dead %zu  killed %ld%s",
                tty ? "\r" : "", std::chrono::duration<double>(now - started).count(),
                c.purchases.load(), o.orders, c.placed.load(), c.delivered.load(), stats.backlog,
                stats.dead, c.killed.load(), tty ? "" : "\n");
            std::fflush(stdout);
        }
        if (now - started > 120s) {
            std::puts("\ngave up waiting after 120 s");
            break;
        }
    }
    if (tty && !o.quiet)
        std::puts("");
    stop_relays = true;
    for (auto& t : clients)
        t.join();
    for (auto& t : relays)
        t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    // -----------------------------------------------------------------------
    // The invariants, from the database.
    sqlite::transaction tx(console.db);
    struct check {
        std::string name, numbers;
        bool ok;
    };
    std::vector<check> checks;

    // No order charged twice: one order per purchase, one capture per order.
    long purchases_with_two_orders = 0;
    for (const auto& [key, seen] : answers)
        purchases_with_two_orders += seen.size() > 1;
    const long long orders_total = number(tx, "SELECT count(*) FROM order_lines");
    const long long charges_total = number(tx, "SELECT count(*) FROM charges");
    const long long charged_twice = number(tx, "SELECT count(*) FROM charges WHERE captures > 1");
    const long long purchases_twice = number(tx,
                                             "SELECT count(*) FROM (SELECT purchase FROM "
                                             "order_lines GROUP BY purchase HAVING count(*) > 1)");
    checks.push_back(
        {"no order charged twice",
         std::to_string(orders_total) + " orders, " + std::to_string(charges_total) + " charged, " +
             std::to_string(charged_twice) + " charged twice, " +
             std::to_string(purchases_twice + purchases_with_two_orders) +
             " purchases with two orders",
         charged_twice == 0 && purchases_twice == 0 && purchases_with_two_orders == 0});

    // No stock oversold: what left the shelf is what the live orders hold.
    std::string stock_numbers;
    bool stock_ok = true;
    for (const auto& sku : skus) {
        const std::int64_t left = console.stock.load(tx, sku)->value;
        std::int64_t sold = 0;
        for (const auto& row :
             sql(tx, "SELECT order_id, quantity FROM order_lines WHERE sku = ?1", {sku})) {
            const auto state = console.orders.load(tx, row[0]);
            if (state && state->value != cancelled)
                sold += std::atoll(row[1].c_str());
        }
        stock_ok = stock_ok && left >= 0 && stock_each - left == sold;
        stock_numbers += (stock_numbers.empty() ? "" : ", ") + sku + " " + std::to_string(sold) +
                         " sold of " + std::to_string(stock_each) + " (" + std::to_string(left) +
                         " left)";
    }
    checks.push_back({"no stock oversold", stock_numbers, stock_ok});

    // No event lost: every record delivered, and applied by its consumer.
    const long long events_total = number(tx, "SELECT count(*) FROM outbox");
    const long long events_delivered =
        number(tx, "SELECT count(*) FROM outbox WHERE status = 'delivered'");
    const long long events_applied = number(tx, "SELECT count(*) FROM applied");
    // ... including those a killed relay held: claimed again under a newer token.
    long taken_over = 0;
    for (const auto& id : held) {
        const auto r = console.outbox_rows.find(tx, settle::uuid::parse(id).value());
        taken_over += r && r->status == settle::outbox_status::delivered &&
                      r->claim_token > settle::fencing_token::first();
    }
    c.takeovers = taken_over;
    checks.push_back({"no event lost",
                      std::to_string(events_total) + " appended, " +
                          std::to_string(events_delivered) + " delivered, " +
                          std::to_string(events_applied) + " applied; " +
                          std::to_string(taken_over) + " of " + std::to_string(held.size()) +
                          " held by killed relays taken over",
                      events_total == events_delivered && events_applied == events_total &&
                          taken_over == static_cast<long>(held.size())});

    // No event applied twice.
    const long long applied_twice = number(tx, "SELECT count(*) FROM applied WHERE times > 1");
    const long long shipped_twice = number(tx, "SELECT count(*) FROM shipments WHERE times > 1");
    checks.push_back({"no event applied twice",
                      std::to_string(c.duplicates.load()) + " duplicate deliveries absorbed, " +
                          std::to_string(applied_twice) + " applied twice, " +
                          std::to_string(shipped_twice) + " shipped twice",
                      applied_twice == 0 && shipped_twice == 0});

    // Every order in a final state, and charged exactly when shipped.
    long long shipped = 0, cancelled_orders = 0, other = 0;
    for (const auto& row : sql(tx, "SELECT order_id FROM order_lines")) {
        const auto state = console.orders.load(tx, row[0]);
        if (!state || !order_machine.is_terminal(state->value))
            ++other;
        else if (state->value == order_state::shipped)
            ++shipped;
        else
            ++cancelled_orders;
    }
    checks.push_back({"every order in a final state",
                      std::to_string(shipped) + " shipped, " + std::to_string(cancelled_orders) +
                          " cancelled, " + std::to_string(other) + " still open",
                      other == 0 && shipped == charges_total});
    tx.commit();

    // -----------------------------------------------------------------------
    std::printf("\nwhat happened (%.1f s)\n", seconds);
    const auto line = [](const char* what, long value) {
        std::printf("  %-46s %8ld\n", what, value);
    };
    line("purchases", c.purchases);
    line("orders placed", c.placed);
    line("sold out (no order)", c.sold_out);
    line("replays (same key, same body: first answer)", c.replays);
    line("refused: same key, another body (422)", c.mismatches);
    line("refused: malformed key (400)", c.malformed);
    line("stock conflicts retried (version stamps)", c.conflicts);
    line("publish attempts", c.publishes);
    line("gateway failures (503)", c.failures);
    line("gateway timeouts", c.timeouts);
    line("acknowledgements lost", c.lost_acks);
    line("relay processes killed mid-batch", c.killed);
    line("records taken over from killed relays", c.takeovers);
    line("duplicate deliveries absorbed by inboxes", c.duplicates);
    line("dead letters", c.dead_lettered);
    line("requeued by the operator", c.requeued);
    line("payments declined (order cancelled, stock back)", c.declined);
    std::puts("\ninvariants");
    bool all = true;
    for (const auto& k : checks) {
        std::printf("  %s  %s: %s\n", k.ok ? "ok  " : "FAIL", k.name.c_str(), k.numbers.c_str());
        all = all && k.ok;
    }
    return all;
}

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    std::filesystem::path dir;
    std::string path = o.db;
    if (!path.empty() && std::filesystem::exists(path)) {
        usage(("--db: " + path + " exists; the showcase checks its invariants on a new database")
                  .c_str());
    }
    if (path.empty()) {
        dir = std::filesystem::temp_directory_path() /
              ("settle-showcase-" + std::to_string(getpid()));
        std::filesystem::create_directories(dir);
        path = (dir / "shop.db").string();
    }
    const bool ok = run(o, path);
    if (!dir.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
    return ok ? 0 : 1;
}
