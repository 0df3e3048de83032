// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.

// The processes the PostgreSQL kill tests (kill_postgres.cpp) start and kill
// with SIGKILL, all on the server SETTLE_POSTGRES names, in tables named
// <base>_<what>. Each shows on the board (kill_board.hpp, slot <worker>)
// where it is and counts what its calls answered.
//
//   twophase_kill_worker saga <base> <board> <worker> run|finish
//       a saga coordinator (sagas: <base>_sagas) over a ledger of
//       reservations (<base>_ledger) behind a try/confirm/cancel barrier
//       (<base>_barrier); each call's fencing token must pass a fence on
//       the saga (<base>_fences) first, in the call's transaction: a call
//       refused there counts as fenced off (two coordinators drove the saga
//       at once) and fails. run: until killed, takes up the sagas that are
//       due (their coordinator died: the lease ran out; or a failed attempt
//       is due again), then places an order (<base>_orders, n from a
//       sequence) and starts its saga o<n> in the order's transaction, and
//       runs it. Step k tries branch "step k" of the saga (a reservation in
//       the ledger, in the barrier's transaction); its compensation cancels
//       it (a release). Step 2 of saga n is refused for good when n % 4 is 1
//       (after its reservation: the answer was lost) or 3 (before it); step
//       1 of saga n with n % 5 == 0 fails once, after its reservation. So
//       sagas of even n complete and the others are compensated. finish:
//       once the leases of the dead ran out, recovers until no saga is in
//       flight (exits 4 if some still are after 10 s).
//   twophase_kill_worker tcc <base> <board> <worker> <workers> run|finish
//       a coordinator and its participant: drives branch n (transaction id
//       x<n>, branch stock) for n = worker, worker + workers, ... through
//       the barrier (<base>_barrier), each phase's business write (ledger:
//       reserve, spend, release) in the phase's transaction. n % 3 == 0:
//       cancel, then a late try (refused); 1: try, confirm; 2: try, cancel.
//       Then the phase the branch's end refuses. A finished branch is logged
//       in <base>_progress (its recovery point); after a kill the next run
//       starts again with the branch after the last logged one, repeating
//       its calls (finish: that branch only).
//
// A barrier outcome the table does not allow prints "unexpected" and exits
// with 3.
#include <settle/barrier.hpp>
#include <settle/saga.hpp>
#include <settle/saga_coordinator.hpp>
#include <settle/stores/postgres.hpp>

#include "postgres/postgres_test.hpp"
#include "process_main.hpp"
#include "twophase/kill_board.hpp"

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace postgres = settle::postgres;
using kill_board::where;
using namespace std::chrono_literals;

namespace {

// Runs a statement; its first value, or "" if it returns no rows.
std::string exec(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const std::string& p : params) {
        values.push_back(p.c_str());
    }
    PGresult* r = PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(r);
    const std::string value =
        status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    const std::string message = PQresultErrorMessage(r);
    PQclear(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw settle::error(settle::errc::backend_failure, sql + ": " + message);
    }
    return value;
}

using barrier = settle::tcc_barrier<postgres::barrier_table, std::chrono::system_clock>;

using fence = settle::fence<postgres::fence_table<std::string>>;

// A participant's phase of branch (xid, branch) in a transaction of its own:
// the barrier, and the first time the ledger row `kind`, which commit
// together. With a fence, the call's token must be admitted first, on
// resource xid. Exits with 3 if the outcome is none of `allowed`.
settle::barrier_outcome phase(postgres::connection& conn, barrier& b, kill_board::slot& slot,
                              const std::string& ledger, settle::barrier_phase p,
                              const std::string& xid, const std::string& branch, const char* kind,
                              std::initializer_list<settle::barrier_outcome> allowed,
                              fence* guard = nullptr,
                              settle::fencing_token token = settle::fencing_token(0)) {
    const auto work = [&](postgres::transaction& tx) {
        (void)exec(tx.native(),
                   "INSERT INTO " + ledger + " (xid, branch, kind) VALUES ($1, $2, $3)",
                   {xid, branch, kind});
    };
    postgres::transaction tx(conn);
    if (guard != nullptr && guard->admit(tx, xid, token).is_stale()) {
        ++slot.fenced;
        throw std::runtime_error("fenced off: a newer coordinator holds the saga");
    }
    const settle::barrier_result r =
        p == settle::barrier_phase::try_phase ? b.try_phase(tx, xid, branch, work)
        : p == settle::barrier_phase::confirm ? b.confirm(tx, xid, branch, work)
                                              : b.cancel(tx, xid, branch, work);
    slot.at = where::effect_commit;
    tx.commit();
    slot.at = where::effect_done;
    ++slot.barrier[static_cast<std::size_t>(r.outcome())];
    for (const settle::barrier_outcome a : allowed) {
        if (r.outcome() == a) {
            return a;
        }
    }
    std::fprintf(stderr, "unexpected: %s of %s %s answered %s\n", to_string(p).data(), xid.c_str(),
                 branch.c_str(), to_string(r.outcome()).data());
    std::exit(3);
}

kill_board::slot& slot_of(const std::string& board_path, std::uint32_t worker) {
    kill_board::board* board = kill_board::map(board_path, false);
    if (board == nullptr || worker >= kill_board::workers) {
        throw std::runtime_error("no board at " + board_path + " for worker " +
                                 std::to_string(worker));
    }
    return board->slots[worker];
}

// The saga store, seen from the board: a recovery point shows where it is
// while it is written and committed. Otherwise postgres::saga_table.
class shown_saga_table {
public:
    class transaction {
    public:
        transaction(postgres::transaction tx, kill_board::slot& slot)
            : tx_(std::move(tx)), slot_(&slot) {}
        void commit() {
            const where at = slot_->at;
            if (at == where::business || at == where::recovery) {
                slot_->at = at == where::business ? where::business_commit : where::recovery_commit;
            }
            tx_.commit();
            slot_->show(where::idle);
        }
        [[nodiscard]] PGconn* native() const noexcept { return tx_.native(); }

    private:
        friend class shown_saga_table;
        postgres::transaction tx_;
        kill_board::slot* slot_;
    };

    shown_saga_table(postgres::connection& conn, const std::string& name, kill_board::slot& slot)
        : table_(conn, name), conn_(&conn), slot_(&slot) {}

    [[nodiscard]] transaction begin() { return transaction(postgres::transaction(*conn_), *slot_); }
    [[nodiscard]] bool create(transaction& tx, std::string_view id, std::string_view type,
                              std::string_view data, settle::stored_time next_run_at) {
        return table_.create(tx.tx_, id, type, data, next_run_at);
    }
    [[nodiscard]] std::optional<settle::saga_record> load(transaction& tx, std::string_view id) {
        return table_.load(tx.tx_, id);
    }
    [[nodiscard]] settle::fenced_write update(transaction& tx, const settle::saga_record& record) {
        slot_->show(where::recovery, static_cast<std::uint8_t>(record.step),
                    static_cast<std::uint8_t>(record.status));
        return table_.update(tx.tx_, record);
    }
    [[nodiscard]] std::vector<settle::saga_record> due(transaction& tx, std::string_view type,
                                                       settle::stored_time now, std::size_t limit) {
        return table_.due(tx.tx_, type, now, limit);
    }

private:
    postgres::saga_table table_;
    postgres::connection* conn_;
    kill_board::slot* slot_;
};

std::uint64_t number_of(std::string_view saga_id) {
    return std::stoull(std::string(saga_id.substr(1)));
}

int saga(const std::string& base, const std::string& board_path, std::uint32_t worker,
         bool finish) {
    kill_board::slot& slot = slot_of(board_path, worker);
    postgres::connection conn(postgres_test::conninfo());
    shown_saga_table sagas(conn, base + "_sagas", slot);
    slot.show(where::idle);
    postgres::barrier_table branches(conn, base + "_barrier");
    std::chrono::system_clock clock;
    barrier b(branches, clock);
    postgres::fence_table<std::string> tokens(conn, base + "_fences");
    fence guard(tokens);
    const std::string ledger = base + "_ledger";
    using o = settle::barrier_outcome;
    const auto step = [&](std::uint32_t k) {
        const std::string branch = "step " + std::to_string(k);
        return settle::saga_step{
            branch,
            [&, k, branch](const settle::saga_call& c) {
                const std::uint64_t n = number_of(c.id);
                if (k == 2 && n % 4 == 3) {
                    throw std::domain_error("refused before its reservation");
                }
                slot.show(where::effect, static_cast<std::uint8_t>(k),
                          static_cast<std::uint8_t>(settle::saga_status::running));
                const o r = phase(conn, b, slot, ledger, settle::barrier_phase::try_phase,
                                  std::string(c.id), branch, "reserve", {o::entered, o::duplicate},
                                  &guard, c.token);
                if (k == 2 && n % 4 == 1) {
                    throw std::domain_error("refused after its reservation");
                }
                if (k == 1 && n % 5 == 0 && r == o::entered) {
                    throw std::runtime_error("the answer was lost");
                }
            },
            [&, k, branch](const settle::saga_call& c) {
                slot.show(where::effect, static_cast<std::uint8_t>(k),
                          static_cast<std::uint8_t>(settle::saga_status::compensating));
                (void)phase(conn, b, slot, ledger, settle::barrier_phase::cancel, std::string(c.id),
                            branch, "release", {o::entered, o::empty_cancel, o::duplicate}, &guard,
                            c.token);
            }};
    };
    auto coordinator =
        settle::saga_coordinator(sagas, {"order", {step(0), step(1), step(2)}},
                                 settle::persisted_retry{settle::ladder{5ms, 20ms}, 4}, clock,
                                 {.lease = std::chrono::seconds(1), .batch_size = 4});
    const auto count = [&](settle::saga_outcome outcome, std::size_t n) {
        slot.sagas[static_cast<std::size_t>(outcome)] += static_cast<std::uint32_t>(n);
    };
    const auto recover = [&] {
        using so = settle::saga_outcome;
        const settle::saga_recover_result r = coordinator.recover();
        count(so::completed, r.completed);
        count(so::compensated, r.compensated);
        count(so::failed, r.failed);
        count(so::waiting, r.waiting);
        count(so::stale, r.stale);
    };
    if (finish) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            recover();
            if (exec(conn.native(),
                     "SELECT count(*) FROM " + base +
                         "_sagas WHERE status IN ('running', 'compensating')",
                     {}) == "0") {
                return 0;
            }
            std::this_thread::sleep_for(20ms);
        }
        std::fprintf(stderr, "saga finish: sagas still in flight after 10 s\n");
        return 4;
    }
    while (true) {
        try {
            recover();
            slot.show(where::business);
            auto tx = sagas.begin();
            const std::string id =
                "o" +
                exec(tx.native(), "INSERT INTO " + base + "_orders DEFAULT VALUES RETURNING n", {});
            (void)coordinator.start(tx, id, "");
            tx.commit();
            count(coordinator.run(id).outcome(), 1);
        } catch (const settle::error& e) {
            slot.show(where::idle);
            std::fprintf(stderr, "saga: %s\n", e.what());
        }
    }
}

int tcc(const std::string& base, const std::string& board_path, std::uint32_t worker,
        std::uint32_t workers, bool finish) {
    kill_board::slot& slot = slot_of(board_path, worker);
    postgres::connection conn(postgres_test::conninfo());
    postgres::barrier_table branches(conn, base + "_barrier");
    std::chrono::system_clock clock;
    barrier b(branches, clock);
    const std::string ledger = base + "_ledger";
    using o = settle::barrier_outcome;
    using p = settle::barrier_phase;
    slot.show(where::idle);
    while (true) {
        try {
            std::uint32_t n = worker;
            {
                postgres::transaction tx(conn);
                const std::string last =
                    exec(tx.native(), "SELECT max(n) FROM " + base + "_progress WHERE n % $1 = $2",
                         {std::to_string(workers), std::to_string(worker)});
                tx.commit();
                if (!last.empty()) {
                    n = static_cast<std::uint32_t>(std::stoul(last)) + workers;
                }
            }
            const std::string xid = "x" + std::to_string(n);
            const auto call = [&](p ph, std::initializer_list<o> allowed) {
                slot.show(where::effect, static_cast<std::uint8_t>(ph));
                const char* kind = ph == p::try_phase ? "reserve"
                                   : ph == p::confirm ? "spend"
                                                      : "release";
                (void)phase(conn, b, slot, ledger, ph, xid, "stock", kind, allowed);
            };
            switch (n % 3) {
            case 0:
                call(p::cancel, {o::empty_cancel, o::duplicate});
                call(p::try_phase, {o::hanging});
                call(p::confirm, {o::branch_cancelled});
                break;
            case 1:
                call(p::try_phase, {o::entered, o::duplicate});
                call(p::confirm, {o::entered, o::duplicate});
                call(p::cancel, {o::branch_confirmed});
                break;
            default:  // a repeated try meets its cancel if that committed before a kill
                call(p::try_phase, {o::entered, o::duplicate, o::branch_cancelled});
                call(p::cancel, {o::entered, o::duplicate});
                call(p::confirm, {o::branch_cancelled});
                call(p::try_phase, {o::branch_cancelled});
                break;
            }
            slot.show(where::recovery);
            postgres::transaction tx(conn);
            (void)exec(tx.native(), "INSERT INTO " + base + "_progress (n) VALUES ($1)",
                       {std::to_string(n)});
            slot.at = where::recovery_commit;
            tx.commit();
            slot.show(where::idle);
            if (finish) {
                return 0;
            }
        } catch (const settle::error& e) {  // start the branch again
            slot.show(where::idle);
            std::fprintf(stderr, "tcc: %s\n", e.what());
        }
    }
}

std::uint32_t number(const std::string& text) {
    return static_cast<std::uint32_t>(std::stoul(text));
}

}  // namespace

int main(int argc, char** argv) {
    return process_main::run(
        "twophase_kill_worker", argc, argv,
        {{"saga", "<base> <board> <worker> run|finish",
          [](const auto& a) { return saga(a[0], a[1], number(a[2]), a[3] == "finish"); }},
         {"tcc", "<base> <board> <worker> <workers> run|finish", [](const auto& a) {
              return tcc(a[0], a[1], number(a[2]), number(a[3]), a[4] == "finish");
          }}});
}
