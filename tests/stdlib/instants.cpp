// Two services built against different standard libraries share one database:
// this program, built once with libstdc++ and once with libc++, writes
// idempotency, lease, outbox and inbox records with one build and reads them
// with the other (tests/stdlib/run.cmake). system_clock ticks in nanoseconds
// under libstdc++ and in microseconds under libc++, so any instant stored as
// raw ticks would be misread by 1000x; every stored instant must agree.
//
//   instants write <file>   create the tables and write one record of each kind
//   instants read <file>    check every stored instant; exit 1 on a mismatch
// Only the headers a service that appends and consumes needs: the relay and
// the retry loops wait on std::stop_token, which libc++ 14 does not have.
#include <settle/clock.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/lease.hpp>
#include <settle/outbox.hpp>
#include <settle/sha256.hpp>
#include <settle/stores/sqlite.hpp>
#include <settle/transaction.hpp>
#include <settle/uuid.hpp>

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

using namespace std::chrono_literals;
namespace sqlite = settle::sqlite;

// 2026-12-04 12:00:00.123456 UTC, with a sub-microsecond part that storing
// must round away the same way in both builds.
const auto written_at = std::chrono::sys_days(std::chrono::year(2026) / 12 / 4) + 12h +
                        std::chrono::microseconds(123'456) + std::chrono::nanoseconds(789);
const settle::stored_time t0 = settle::to_stored_time(
    std::chrono::time_point_cast<std::chrono::system_clock::duration>(written_at));

const settle::idempotency_scope scope{"tenant", "payments.capture"};
const settle::uuid message_id = settle::uuid::parse("01938f3e-8a5c-7b2d-9e4f-0123456789ab").value();

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "instants: %s\n", what);
        ++failures;
    }
}

std::int64_t column(sqlite3* db, const char* sql) {
    sqlite3_stmt* s = nullptr;
    std::int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        value = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return value;
}

std::int64_t micros(settle::stored_time t) {
    return t.time_since_epoch().count();
}

struct tables {
    sqlite::connection conn;
    sqlite::idempotency_table keys{conn, "keys"};
    sqlite::lease_table<std::string> leases{conn, "leases"};
    sqlite::outbox_table outbox{conn, "outbox"};
    sqlite::inbox_table inbox{conn, "inbox"};

    explicit tables(const std::string& path) : conn(path) {}
};

settle::idempotency_key key() {
    return settle::idempotency_key::parse("capture-7").value();
}

void write(tables& t) {
    settle::manual_clock clock(
        std::chrono::time_point_cast<std::chrono::system_clock::duration>(written_at));
    settle::in_transaction(t.keys, [&](auto& tx) {
        t.keys.create_tables(tx);
        t.leases.create_tables(tx);
        t.outbox.create_tables(tx);
        t.inbox.create_tables(tx);
    });
    settle::idempotency_guard guard(t.keys, clock, {.lease = 30s, .retention = 24h});
    settle::leases grants(t.leases, clock);
    settle::outbox box(t.outbox, clock);
    settle::idempotent_consumer consumer(t.inbox, clock, {.consumer = "ledger"});
    settle::in_transaction(t.keys, [&](auto& tx) {
        expect(guard.claim(tx, scope, key(), settle::sha256::hash("capture 7")).is_claimed(),
               "the idempotency key was not claimed");
        expect(grants.acquire(tx, "settlement", "worker-1", 30s).is_acquired(),
               "the lease was not acquired");
        expect(box.append(tx, settle::make_outbox_message(message_id, "payments", std::string("7")))
                   .is_appended(),
               "the outbox record was not appended");
    });
    expect(consumer.consume("message-1", [](auto&) {}).is_applied(),
           "the inbox message was not applied");
}

void read(tables& t) {
    const std::int64_t at = micros(t0);
    // The columns hold Unix microseconds, whichever build wrote them.
    expect(column(t.conn.native(), "SELECT claimed_at FROM keys") == at,
           "idempotency claimed_at is not the Unix microsecond written");
    expect(column(t.conn.native(), "SELECT expires_at FROM keys") == at + 30'000'000,
           "idempotency expires_at is not 30 s after the claim");
    expect(column(t.conn.native(), "SELECT applied_at FROM inbox") == at,
           "inbox applied_at is not the Unix microsecond written");

    // And this build reads back the same instants through settle.
    settle::in_transaction(t.keys, [&](auto& tx) {
        const auto record = t.keys.find(tx, scope, key());
        expect(record.has_value() && record->claimed_at == t0 && record->expires_at == t0 + 30s,
               "the idempotency record's instants differ");
        const auto stored = t.outbox.find(tx, message_id);
        expect(stored.has_value() && stored->created_at == t0 && stored->next_attempt_at == t0,
               "the outbox record's instants differ");
    });

    // Liveness agrees: the lease and the claim are live 1 us before their end
    // and over at it.
    settle::manual_clock clock(
        std::chrono::time_point_cast<std::chrono::system_clock::duration>(t0 + 30s - 1us));
    settle::leases grants(t.leases, clock);
    settle::idempotency_guard guard(t.keys, clock, {.lease = 30s, .retention = 24h});
    settle::in_transaction(t.keys, [&](auto& tx) {
        const auto lease = grants.current(tx, "settlement");
        expect(lease.has_value() && lease->expires_at == t0 + 30s,
               "the lease is not live until 30 s after its grant");
        expect(guard.claim(tx, scope, key(), settle::sha256::hash("capture 7")).outcome() ==
                   settle::idempotency_claim_outcome::in_progress,
               "the idempotency claim is not in progress 1 us before its lease ends");
    });
    clock.advance(1us);
    settle::in_transaction(t.keys, [&](auto& tx) {
        expect(!grants.current(tx, "settlement").has_value(),
               "the lease is still live when it ends");
        expect(guard.claim(tx, scope, key(), settle::sha256::hash("capture 7")).is_claimed(),
               "the idempotency claim was not taken over when its lease ended");
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 ||
        (std::string_view(argv[1]) != "write" && std::string_view(argv[1]) != "read")) {
        std::fprintf(stderr, "usage: instants write|read <file>\n");
        return 2;
    }
    try {
        tables t(argv[2]);
        if (std::string_view(argv[1]) == "write") {
            write(t);
        } else {
            read(t);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "instants: %s\n", e.what());
        return 1;
    }
    return failures == 0 ? 0 : 1;
}
