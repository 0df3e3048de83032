// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.

// Saga coordinators and try/confirm/cancel coordinators on PostgreSQL,
// processes of kill_worker.cpp, killed with SIGKILL at random moments, in
// their business transactions, their effects' and their recovery points'
// commits and between them; new processes take up what the dead left. In
// the end every saga is completed with all its effects or compensated with
// none, every branch confirmed or cancelled as its coordinator decided, each
// effect applied once, no try left hanging. Each run prints where its kills
// landed and what the calls answered.
#include <settle/barrier.hpp>
#include <settle/saga_coordinator.hpp>
#include <settle/stores/postgres.hpp>

#include "postgres/postgres_test.hpp"
#include "settle_test.hpp"
#include "twophase/kill_board.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#ifndef SETTLE_TWOPHASE_KILL_WORKER
#error "SETTLE_TWOPHASE_KILL_WORKER names the worker program"
#endif

namespace postgres = settle::postgres;
using namespace std::chrono_literals;

namespace {

// The tables <base>_<suffix> of one run, dropped at its end.
class tables {
public:
    tables() : base_(postgres_test::unique_name("kill")) {}
    tables(const tables&) = delete;
    tables& operator=(const tables&) = delete;
    ~tables() {
        PGconn* conn = PQconnectdb(postgres_test::conninfo().c_str());
        for (const char* suffix : {"sagas", "barrier", "fences", "ledger", "orders", "progress"}) {
            PQclear(PQexec(conn, ("SET client_min_messages = warning; DROP TABLE IF EXISTS " +
                                  base_ + "_" + suffix)
                                     .c_str()));
        }
        PQfinish(conn);
    }
    [[nodiscard]] const std::string& base() const noexcept { return base_; }
    [[nodiscard]] std::string operator[](const char* suffix) const { return base_ + "_" + suffix; }

private:
    std::string base_;
};

// Starts the worker with `args`; its output goes to `log`.
pid_t start(const std::vector<std::string>& args, const std::string& log) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (out >= 0) {
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
        }
        std::string program = SETTLE_TWOPHASE_KILL_WORKER;
        std::vector<std::string> copies = args;
        std::vector<char*> argv{program.data()};
        for (std::string& a : copies) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(program.c_str(), argv.data());
        ::_exit(127);
    }
    return pid;
}

// Waits for the worker to end; its exit code, or -1 if a signal ended it.
int reap(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Where a worker was when it was killed, as its slot shows it.
std::string landed(const kill_board::slot& slot, bool saga) {
    const kill_board::where at = slot.at;
    std::string text = kill_board::to_string(at);
    const std::uint8_t step = slot.step;
    if (step == kill_board::none) {
        return text;
    }
    if (!saga) {
        return text + " (" + std::string(to_string(static_cast<settle::barrier_phase>(step))) + ")";
    }
    const auto status = static_cast<settle::saga_status>(slot.status.load());
    if (at == kill_board::where::recovery || at == kill_board::where::recovery_commit) {
        return text + " (" + std::string(to_string(status)) + " at step " + std::to_string(step) +
               ")";
    }
    return text + " (" +
           (status == settle::saga_status::running ? "step " : "compensation of step ") +
           std::to_string(step) + ")";
}

// For up to 10 s, kills one of `pids` at a time, up to `kills` times,
// restarting it with role(i); then kills all. Each kill takes a worker that
// has started, and waits half the time for a random while, half the time
// until the worker is at one of `targets` (chosen at random; at most 100 ms).
// Returns how often a kill landed where.
template <std::size_t N, class Role>
std::map<std::string, int> kill_at_random(std::array<pid_t, N>& pids, int kills,
                                          kill_board::board& board, bool saga,
                                          const std::vector<kill_board::where>& targets, Role role,
                                          const std::string& log) {
    const auto seed = std::random_device{}();
    std::mt19937 random(seed);
    std::printf("%s kill test: seed %u\n", saga ? "postgres saga" : "postgres barrier", seed);
    std::map<std::string, int> where;
    const auto kill = [&](std::size_t i) {
        ::kill(pids[i], SIGKILL);
        (void)reap(pids[i]);  // first, then read the board the kill froze
        ++where[landed(board.slots[i], saga)];
    };
    const auto restart = [&](std::size_t i) {
        board.slots[i].show(kill_board::where::starting);
        pids[i] = start(role(i), log);
    };
    const auto at = [&](std::size_t i) { return board.slots[i].at.load(); };
    for (std::size_t i = 0; i < N; ++i) {
        restart(i);
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (int k = 0; k < kills && std::chrono::steady_clock::now() < deadline; ++k) {
        std::size_t i = std::uniform_int_distribution<std::size_t>(0, N - 1)(random);
        while (at(i) == kill_board::where::starting &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(1ms);
            i = (i + 1) % N;
        }
        if (k % 2 == 0) {
            std::this_thread::sleep_for(
                std::chrono::microseconds(std::uniform_int_distribution<int>(0, 100000)(random)));
        } else {
            const kill_board::where target =
                targets[std::uniform_int_distribution<std::size_t>(0, targets.size() - 1)(random)];
            const auto give_up = std::chrono::steady_clock::now() + 100ms;
            while (at(i) != target && std::chrono::steady_clock::now() < give_up) {
                std::this_thread::sleep_for(50us);
            }
        }
        kill(i);
        restart(i);
    }
    for (std::size_t i = 0; i < N; ++i) {
        kill(i);
    }
    return where;
}

int total(const std::map<std::string, int>& where) {
    int sum = 0;
    for (const auto& [place, count] : where) {
        sum += count;
    }
    return sum;
}

void print(const std::map<std::string, int>& where) {
    for (const auto& [place, count] : where) {
        std::printf("  %3d killed %s\n", count, place.c_str());
    }
}

long long number(PGconn* conn, const std::string& sql) {
    return std::stoll(postgres_test::scalar(conn, sql));
}

std::string read_log(const std::string& log) {
    std::ifstream in(log);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE(
    "postgres sagas: coordinator processes killed at random moments leave no saga half "
    "done, each effect once",
    "[twophase][postgres]") {
    tables t;
    postgres::connection conn(postgres_test::conninfo());
    {
        postgres::saga_table sagas(conn, t["sagas"]);
        postgres::barrier_table barrier(conn, t["barrier"]);
        postgres::fence_table<std::string> fences(conn, t["fences"]);
        postgres::transaction tx(conn);
        sagas.create_tables(tx);
        barrier.create_tables(tx);
        fences.create_tables(tx);
        postgres_test::run(tx.native(), "CREATE TABLE " + t["orders"] +
                                            " (n BIGSERIAL PRIMARY KEY); CREATE TABLE " +
                                            t["ledger"] +
                                            " (seq BIGSERIAL PRIMARY KEY, xid TEXT NOT NULL, "
                                            "branch TEXT NOT NULL, kind TEXT NOT NULL)");
        tx.commit();
    }
    const std::string dir = std::filesystem::temp_directory_path() / t.base();
    const std::string log = dir + ".log";
    const std::string board_path = dir + ".board";
    kill_board::board* board = kill_board::map(board_path, true);
    REQUIRE(board != nullptr);

    std::array<pid_t, 3> pids{};
    const auto role = [&](std::size_t i) {
        return std::vector<std::string>{"saga", t.base(), board_path, std::to_string(i), "run"};
    };
    constexpr int kills = 150;
    using w = kill_board::where;
    const std::map<std::string, int> where =
        kill_at_random(pids, kills, *board, true,
                       {w::business, w::business_commit, w::effect, w::effect_commit,
                        w::effect_done, w::recovery, w::recovery_commit},
                       role, log);
    // A new coordinator takes up what the dead left, once their leases ran out.
    CHECK(reap(start({"saga", t.base(), board_path, "3", "finish"}, log)) == 0);
    CHECK(read_log(log).find("unexpected") == std::string::npos);

    PGconn* db = conn.native();
    const std::string sagas = t["sagas"];
    const std::string ledger = t["ledger"];
    const std::string barrier = t["barrier"];
    const long long orders = number(db, "SELECT count(*) FROM " + t["orders"]);
    const long long completed =
        number(db, "SELECT count(*) FROM " + sagas + " WHERE status = 'completed'");
    const long long compensated =
        number(db, "SELECT count(*) FROM " + sagas + " WHERE status = 'compensated'");
    std::array<unsigned, 5> outcomes{};
    std::array<unsigned, 7> answers{};
    unsigned fenced = 0;
    for (const kill_board::slot& s : board->slots) {
        fenced += s.fenced;
        for (std::size_t i = 0; i < outcomes.size(); ++i) {
            outcomes[i] += s.sagas[i];
        }
        for (std::size_t i = 0; i < answers.size(); ++i) {
            answers[i] += s.barrier[i];
        }
    }
    kill_board::unmap(board);
    std::printf(
        "postgres saga kill test: %lld orders, %lld sagas completed, %lld compensated; %d "
        "kills, %zu places:\n",
        orders, completed, compensated, total(where), where.size());
    print(where);
    std::printf(
        "  runs and recoveries answered: %u completed, %u compensated, %u waiting, %u "
        "stale, %u failed\n",
        outcomes[0], outcomes[1], outcomes[3], outcomes[4], outcomes[2]);
    std::printf(
        "  steps answered: %u entered, %u empty cancels, %u duplicates, %u refused; %u "
        "calls fenced off\n",
        answers[0], answers[1], answers[2], answers[3] + answers[4] + answers[5] + answers[6],
        fenced);

    CHECK(orders > 0);
    // No two coordinators drove one saga at once: no call came from one that
    // another had taken the saga over from.
    CHECK(fenced == 0);
    // Every order started its saga in its own transaction: one saga per order, no other.
    CHECK(number(db, "SELECT count(*) FROM " + t["orders"] + " o FULL JOIN " + sagas +
                         " s ON s.id = 'o' || o.n WHERE o.n IS NULL OR s.id IS NULL") == 0);
    // Every saga ended as its number says: even completed, odd compensated.
    CHECK(number(db, "SELECT count(*) FROM " + sagas +
                         " WHERE status <> CASE substr(id, 2)::bigint % 2 WHEN 0 THEN "
                         "'completed' ELSE 'compensated' END") == 0);
    // Each effect once: every step reserved once, except step 2 of the sagas
    // refused before it; released once if the saga was compensated.
    CHECK(number(db, "SELECT count(*) FROM " + sagas +
                         " s CROSS JOIN generate_series(0, 2) AS k, LATERAL (SELECT "
                         "substr(s.id, 2)::bigint % 4 AS m) AS n WHERE (SELECT count(*) FROM " +
                         ledger +
                         " l WHERE l.xid = s.id AND l.branch = 'step ' || k AND l.kind "
                         "= 'reserve') <> CASE WHEN n.m = 3 AND k = 2 THEN 0 ELSE 1 "
                         "END OR (SELECT count(*) FROM " +
                         ledger +
                         " l WHERE l.xid = s.id AND l.branch = 'step ' || k AND l.kind "
                         "= 'release') <> CASE WHEN n.m % 2 = 0 OR (n.m = 3 AND k = 2) "
                         "THEN 0 ELSE 1 END") == 0);
    CHECK(number(db, "SELECT count(*) FROM " + ledger + " WHERE xid NOT IN (SELECT id FROM " +
                         sagas + ")") == 0);
    // Every branch ended with its saga: tried in a completed one, cancelled
    // (or an empty cancel's marker) in a compensated one.
    CHECK(number(db, "SELECT count(*) FROM " + barrier) == 3 * (completed + compensated));
    CHECK(number(db, "SELECT count(*) FROM " + barrier + " b JOIN " + sagas +
                         " s ON s.id = b.transaction_id WHERE b.state <> CASE WHEN s.status = "
                         "'completed' THEN 'tried' WHEN substr(s.id, 2)::bigint % 4 = 3 AND "
                         "b.branch_id = 'step 2' THEN 'cancel_marker' ELSE 'cancelled' END") == 0);
    std::filesystem::remove(log);
    std::filesystem::remove(board_path);
}

TEST_CASE(
    "postgres barrier: coordinator processes killed at random moments end every branch "
    "once, each effect once",
    "[twophase][postgres]") {
    tables t;
    postgres::connection conn(postgres_test::conninfo());
    {
        postgres::barrier_table barrier(conn, t["barrier"]);
        postgres::transaction tx(conn);
        barrier.create_tables(tx);
        postgres_test::run(tx.native(), "CREATE TABLE " + t["ledger"] +
                                            " (seq BIGSERIAL PRIMARY KEY, xid TEXT NOT NULL, "
                                            "branch TEXT NOT NULL, kind TEXT NOT NULL); CREATE "
                                            "TABLE " +
                                            t["progress"] + " (n BIGINT PRIMARY KEY)");
        tx.commit();
    }
    const std::string dir = std::filesystem::temp_directory_path() / t.base();
    const std::string log = dir + ".log";
    const std::string board_path = dir + ".board";
    kill_board::board* board = kill_board::map(board_path, true);
    REQUIRE(board != nullptr);

    constexpr std::size_t workers = 4;  // coprime to 3: each drives every kind of branch
    std::array<pid_t, workers> pids{};
    const auto role = [&](std::size_t i, const char* mode) {
        return std::vector<std::string>{
            "tcc", t.base(), board_path, std::to_string(i), std::to_string(workers), mode};
    };
    constexpr int kills = 150;
    using w = kill_board::where;
    const std::map<std::string, int> where = kill_at_random(
        pids, kills, *board, false,
        {w::effect, w::effect_commit, w::effect_done, w::recovery, w::recovery_commit},
        [&](std::size_t i) { return role(i, "run"); }, log);
    // The coordinators send the calls of the branch each was driving again, and stop.
    for (std::size_t i = 0; i < workers; ++i) {
        CHECK(reap(start(role(i, "finish"), log)) == 0);
    }
    // No call answered an outcome the barrier's table does not allow.
    CHECK(read_log(log).find("unexpected") == std::string::npos);

    PGconn* db = conn.native();
    const std::string barrier = t["barrier"];
    const std::string ledger = t["ledger"];
    const std::string progress = t["progress"];
    std::array<unsigned, 7> answers{};
    for (const kill_board::slot& s : board->slots) {
        for (std::size_t i = 0; i < answers.size(); ++i) {
            answers[i] += s.barrier[i];
        }
    }
    kill_board::unmap(board);
    const long long branches = number(db, "SELECT count(*) FROM " + barrier);
    std::printf(
        "postgres barrier kill test: %lld branches, %lld confirmed, %lld cancelled, %lld "
        "cancelled before their try; %d kills, %zu places:\n",
        branches, number(db, "SELECT count(*) FROM " + barrier + " WHERE state = 'confirmed'"),
        number(db, "SELECT count(*) FROM " + barrier + " WHERE state = 'cancelled'"),
        number(db, "SELECT count(*) FROM " + barrier + " WHERE state = 'cancel_marker'"),
        total(where), where.size());
    print(where);
    std::printf("  calls answered:");
    for (std::size_t i = 0; i < answers.size(); ++i) {
        std::printf(" %u %s%s", answers[i],
                    to_string(static_cast<settle::barrier_outcome>(i)).data(),
                    i + 1 < answers.size() ? "," : "\n");
    }

    CHECK(branches > 0);
    // No try left hanging: every branch begun was driven to its end, and
    // ended as its number says: 0 cancelled before its try, 1 confirmed, 2 cancelled.
    CHECK(number(db, "SELECT count(*) FROM " + progress) == branches);
    CHECK(number(db, "SELECT count(*) FROM " + barrier +
                         " WHERE branch_id <> 'stock' OR state <> CASE substr(transaction_id, "
                         "2)::bigint % 3 WHEN 0 THEN 'cancel_marker' WHEN 1 THEN 'confirmed' "
                         "ELSE 'cancelled' END OR substr(transaction_id, 2)::bigint NOT IN "
                         "(SELECT n FROM " +
                         progress + ")") == 0);
    // Each effect once: reserved unless cancelled before the try, then spent
    // or released; nothing for a branch that has no record.
    CHECK(number(db, "SELECT count(*) FROM " + barrier + " b WHERE (SELECT count(*) FROM " +
                         ledger +
                         " l WHERE l.xid = b.transaction_id AND l.kind = 'reserve') <> "
                         "(b.state <> 'cancel_marker')::int OR (SELECT count(*) FROM " +
                         ledger +
                         " l WHERE l.xid = b.transaction_id AND l.kind = 'spend') <> "
                         "(b.state = 'confirmed')::int OR (SELECT count(*) FROM " +
                         ledger +
                         " l WHERE l.xid = b.transaction_id AND l.kind = 'release') <> "
                         "(b.state = 'cancelled')::int") == 0);
    CHECK(number(db, "SELECT count(*) FROM " + ledger +
                         " WHERE xid NOT IN (SELECT transaction_id FROM " + barrier + ")") == 0);
    std::filesystem::remove(log);
    std::filesystem::remove(board_path);
}
