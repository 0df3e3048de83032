// The Redis backend against raw hiredis commands doing the same job on the
// same server, in the same run (the server: scripts/redis.sh; its socket:
// SETTLE_REDIS). Each pair makes the same number of round trips, written
// in the counter `round_trips` (per operation, or per message for streams).
//
//   idempotency/claim_complete   claim a fresh key, then complete it: two
//                                scripts (EVALSHA), two round trips
//   baseline/set_nx_px_set       SET key NX PX, then SET key response PX: the
//                                usual unfenced Redis idempotency, two round trips
//   baseline/lua_claim_complete  the least fenced work, by hand: a claim script
//                                (GET, INCR of a token counter, SET PX) and a
//                                completion script (GET, compare the token, SET
//                                PX), by EVALSHA: two round trips
//   idempotency/replay           claim a completed key: one script, one round trip
//   baseline/get                 GET of the same bytes: one round trip
//   versioned/compare_and_set    one script, one round trip
//   baseline/set                 SET of the same bytes: one round trip
//   baseline/lua_compare_and_set the same fenced work by hand: one script (HGET
//                                the stamp, compare, INCR, HSET), one round trip
//   stream/publish               stream_publisher::publish: XADD, one round trip
//   baseline/xadd                the same XADD by hand
//   stream/consume               stream_consumer::poll over 16 messages with an
//                                in-memory inbox: XAUTOCLAIM, XREADGROUP and one
//                                XACK per message (18 round trips per 16)
//   baseline/xreadgroup_xack     XREADGROUP COUNT 16 and one XACK per message
//                                (17 per 16), no inbox
#include <settle/clock.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/stores/memory.hpp>
#include <settle/stores/redis.hpp>

#include <benchmark/benchmark.h>

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace rd = settle::redis;

namespace {

std::string socket_path() {
    const char* value = std::getenv("SETTLE_REDIS");
    if (value == nullptr) {
        std::fprintf(stderr,
                     "settle_bench_redis: set SETTLE_REDIS to a Redis server's Unix socket "
                     "(scripts/redis.sh start DIR; scripts/redis.sh socket DIR)\n");
        std::exit(2);
    }
    return value;
}

std::string unique(const char* name) {
    static int count = 0;
    return "settle:bench:" + std::to_string(::getpid()) + ":" + std::to_string(++count) + ":" +
           name + ":";
}

// A raw hiredis connection; each command's arguments passed as they are.
class raw {
public:
    raw() : c_(redisConnectUnix(socket_path().c_str())) {}
    ~raw() { redisFree(c_); }
    raw(const raw&) = delete;
    raw& operator=(const raw&) = delete;

    redisReply* run(std::initializer_list<std::string_view> args) {
        const char* argv[16];
        std::size_t lengths[16];
        std::size_t n = 0;
        for (const std::string_view a : args) {
            argv[n] = a.data();
            lengths[n++] = a.size();
        }
        return static_cast<redisReply*>(redisCommandArgv(c_, static_cast<int>(n), argv, lengths));
    }
    void ignore(std::initializer_list<std::string_view> args) { freeReplyObject(run(args)); }
    // Loads a script; its SHA-1, for EVALSHA.
    std::string load(std::string_view script) {
        redisReply* r = run({"SCRIPT", "LOAD", script});
        std::string sha(r->str, r->len);
        freeReplyObject(r);
        return sha;
    }

private:
    redisContext* c_;
};

settle::idempotency_key key_of(long n) {
    return settle::idempotency_key::parse("key-" + std::to_string(n)).value();
}

const settle::idempotency_scope scope{"tenant", "payments.capture"};
const std::string response(200, 'r');

void claim_complete(benchmark::State& state) {
    rd::connection conn(rd::connection::unix_socket(socket_path()));
    rd::idempotency_table store(conn, unique("idem"));
    settle::manual_clock clock;
    settle::idempotency_guard guard(store, clock);
    const auto fp = settle::sha256::hash("request");
    long n = 0;
    for (auto _ : state) {
        auto tx = store.begin();
        auto claimed = guard.claim(tx, scope, key_of(++n), fp);
        benchmark::DoNotOptimize(guard.complete(tx, *claimed.claim(), response));
        tx.commit();
    }
    state.counters["round_trips"] = 2;
}

void baseline_set_nx_px_set(benchmark::State& state) {
    raw r;
    const std::string prefix = unique("raw");
    long n = 0;
    for (auto _ : state) {
        const std::string key = prefix + std::to_string(++n);
        r.ignore({"SET", key, "in_progress", "NX", "PX", "60000"});
        r.ignore({"SET", key, response, "PX", "86400000"});
    }
    state.counters["round_trips"] = 2;
}

void baseline_lua_claim_complete(benchmark::State& state) {
    raw r;
    const std::string claim = r.load(R"(
local v = redis.call('GET', KEYS[1])
if v then return v end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t, 'PX', ARGV[1])
return t)");
    const std::string complete = r.load(R"(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1)");
    const std::string prefix = unique("lua");
    const std::string counter = prefix + "token";
    long n = 0;
    for (auto _ : state) {
        const std::string key = prefix + std::to_string(++n);
        redisReply* claimed = r.run({"EVALSHA", claim, "2", key, counter, "60000"});
        const std::string token = std::to_string(claimed->integer);
        freeReplyObject(claimed);
        r.ignore({"EVALSHA", complete, "1", key, token, response, "86400000"});
    }
    state.counters["round_trips"] = 2;
}

void replay(benchmark::State& state) {
    rd::connection conn(rd::connection::unix_socket(socket_path()));
    rd::idempotency_table store(conn, unique("idem"));
    settle::manual_clock clock;
    settle::idempotency_guard guard(store, clock);
    const auto fp = settle::sha256::hash("request");
    {
        auto tx = store.begin();
        auto claimed = guard.claim(tx, scope, key_of(0), fp);
        (void)guard.complete(tx, *claimed.claim(), response);
    }
    for (auto _ : state) {
        auto tx = store.begin();
        benchmark::DoNotOptimize(guard.claim(tx, scope, key_of(0), fp));
    }
    state.counters["round_trips"] = 1;
}

void baseline_get(benchmark::State& state) {
    raw r;
    const std::string key = unique("raw");
    r.ignore({"SET", key, response});
    for (auto _ : state) {
        r.ignore({"GET", key});
    }
    state.counters["round_trips"] = 1;
}

void compare_and_set(benchmark::State& state) {
    rd::connection conn(rd::connection::unix_socket(socket_path()));
    rd::versioned_table<std::string, std::string> store(conn, unique("vs"));
    auto tx = store.begin();
    settle::version_stamp stamp = store.insert(tx, "k", response).stamp();
    for (auto _ : state) {
        stamp = store.compare_and_set(tx, "k", stamp, std::string(response)).stamp();
    }
    state.counters["round_trips"] = 1;
}

void baseline_set(benchmark::State& state) {
    raw r;
    const std::string key = unique("raw");
    for (auto _ : state) {
        r.ignore({"SET", key, response});
    }
    state.counters["round_trips"] = 1;
}

void baseline_lua_compare_and_set(benchmark::State& state) {
    raw r;
    const std::string cas = r.load(R"(
if redis.call('HGET', KEYS[1], 'stamp') ~= ARGV[1] then return 0 end
local s = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'stamp', s)
return s)");
    const std::string key = unique("lua");
    const std::string counter = key + "stamp";
    r.ignore({"HSET", key, "value", response, "stamp", "0"});
    std::string stamp = "0";
    for (auto _ : state) {
        redisReply* written = r.run({"EVALSHA", cas, "2", key, counter, stamp, response});
        stamp = std::to_string(written->integer);
        freeReplyObject(written);
    }
    state.counters["round_trips"] = 1;
}

settle::outbox_record record_of(long n) {
    settle::outbox_record record;
    record.id = settle::uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057").value();
    record.topic = "orders.placed";
    record.ordering_key = "order-" + std::to_string(n);
    record.payload = settle::encode(response);
    return record;
}

void publish(benchmark::State& state) {
    rd::connection conn(rd::connection::unix_socket(socket_path()));
    const std::string stream = unique("stream");
    rd::stream_publisher publisher(conn, stream);
    const settle::outbox_record record = record_of(1);
    for (auto _ : state) {
        benchmark::DoNotOptimize(publisher.publish(record));
    }
    state.counters["round_trips"] = 1;
    raw().ignore({"DEL", stream});
}

void baseline_xadd(benchmark::State& state) {
    raw r;
    const std::string stream = unique("stream");
    const settle::outbox_record record = record_of(1);
    const std::string id = record.id.to_string();
    const std::string_view payload(reinterpret_cast<const char*>(record.payload.data()),
                                   record.payload.size());
    for (auto _ : state) {
        r.ignore({"XADD", stream, "*", "id", id, "topic", record.topic, "key", record.ordering_key,
                  "payload", payload});
    }
    state.counters["round_trips"] = 1;
    r.ignore({"DEL", stream});
}

constexpr int per_poll = 16;

// Fills a stream with `count` records for one group, the timer paused.
void fill(benchmark::State& state, rd::connection& conn, const std::string& stream, int count) {
    state.PauseTiming();
    rd::stream_publisher publisher(conn, stream);
    for (int i = 0; i < count; ++i) {
        (void)publisher.publish(record_of(i));
    }
    state.ResumeTiming();
}

void consume(benchmark::State& state) {
    rd::connection conn(rd::connection::unix_socket(socket_path()));
    const std::string stream = unique("stream");
    settle::memory::database db;
    settle::memory::inbox_table inbox(db);
    std::chrono::system_clock clock;
    settle::idempotent_consumer applied(inbox, clock, {.consumer = "bench"});
    rd::stream_consumer consumer(conn, stream, applied,
                                 {.group = "bench", .consumer = "c", .batch_size = per_poll});
    consumer.create_group();
    long messages = 0;
    for (auto _ : state) {
        fill(state, conn, stream, per_poll);
        // Every message carries the same record id: the inbox applies the
        // first and finds the rest duplicates, as cheap as a lookup.
        messages += static_cast<long>(
            consumer.poll([](auto&, const rd::stream_message& m) { benchmark::DoNotOptimize(m); }));
    }
    state.SetItemsProcessed(messages);
    state.counters["round_trips"] = 18.0 / per_poll;
    raw().ignore({"DEL", stream});
}

void baseline_xreadgroup_xack(benchmark::State& state) {
    rd::connection conn(rd::connection::unix_socket(socket_path()));
    raw r;
    const std::string stream = unique("stream");
    r.ignore({"XGROUP", "CREATE", stream, "bench", "0", "MKSTREAM"});
    long messages = 0;
    for (auto _ : state) {
        fill(state, conn, stream, per_poll);
        redisReply* read =
            r.run({"XREADGROUP", "GROUP", "bench", "c", "COUNT", "16", "STREAMS", stream, ">"});
        const redisReply* entries = read->element[0]->element[1];
        for (std::size_t i = 0; i < entries->elements; ++i) {
            r.ignore({"XACK", stream, "bench",
                      std::string_view(entries->element[i]->element[0]->str,
                                       entries->element[i]->element[0]->len)});
            ++messages;
        }
        freeReplyObject(read);
    }
    state.SetItemsProcessed(messages);
    state.counters["round_trips"] = 17.0 / per_poll;
    r.ignore({"DEL", stream});
}

}  // namespace

BENCHMARK(claim_complete)
    ->Name("idempotency/claim_complete")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(baseline_set_nx_px_set)
    ->Name("baseline/set_nx_px_set")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(baseline_lua_claim_complete)
    ->Name("baseline/lua_claim_complete")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(replay)->Name("idempotency/replay")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_get)->Name("baseline/get")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(compare_and_set)
    ->Name("versioned/compare_and_set")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(baseline_set)->Name("baseline/set")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_lua_compare_and_set)
    ->Name("baseline/lua_compare_and_set")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(publish)->Name("stream/publish")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_xadd)->Name("baseline/xadd")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(consume)->Name("stream/consume")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(baseline_xreadgroup_xack)
    ->Name("baseline/xreadgroup_xack")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
