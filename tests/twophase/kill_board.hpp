// What the PostgreSQL kill tests (kill_postgres.cpp) and their workers
// (kill_worker.cpp) share: a board in a file both map. Each worker shows on
// it where it is, so that the test can tell where a kill landed, and counts
// what its calls answered; both survive the worker's SIGKILL.
#ifndef SETTLE_TESTS_TWOPHASE_KILL_BOARD_HPP
#define SETTLE_TESTS_TWOPHASE_KILL_BOARD_HPP

#include <settle/barrier.hpp>
#include <settle/saga_coordinator.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace kill_board {

// Where a worker is. A saga coordinator and a try/confirm/cancel coordinator
// both write a business effect (a step, a phase) and then a recovery point
// (the saga's record, the coordinator's progress row).
enum class where : std::uint8_t {
    starting,         // started, not yet connected
    idle,             // between transactions, or reading
    business,         // the order's transaction, which starts its saga, is open
    business_commit,  // committing it
    effect,           // a step's or phase's transaction (barrier and ledger) is open
    effect_commit,    // committing it
    effect_done,      // the effect committed; its recovery point not yet sent
    recovery,         // the recovery point's transaction is open
    recovery_commit,  // committing it
};

inline const char* to_string(where w) {
    switch (w) {
    case where::starting: return "starting up";
    case where::idle: return "between transactions";
    case where::business: return "in the order's transaction";
    case where::business_commit: return "committing the order";
    case where::effect: return "in an effect's transaction";
    case where::effect_commit: return "committing an effect";
    case where::effect_done: return "after an effect, before its recovery point";
    case where::recovery: return "writing a recovery point";
    case where::recovery_commit: return "committing a recovery point";
    }
    return "?";
}

inline constexpr std::uint8_t none = 0xff;

// One worker's part of the board.
struct slot {
    std::atomic<where> at;
    // effect: the saga's step, or the barrier_phase; recovery: the step the
    // record moves to; none otherwise
    std::atomic<std::uint8_t> step;
    // a saga's effect or recovery point: the saga_status it runs in, or moves to
    std::atomic<std::uint8_t> status;
    std::atomic<std::uint32_t> barrier[7];  // by barrier_outcome
    std::atomic<std::uint32_t> sagas[5];    // by saga_outcome, of run() and recover()
    std::atomic<std::uint32_t> fenced;      // saga calls refused: a newer coordinator took over

    void show(where w, std::uint8_t s = none, std::uint8_t st = none) {
        step.store(s);
        status.store(st);
        at.store(w);
    }
};

inline constexpr std::size_t workers = 4;

struct board {
    slot slots[workers];
};

// Maps the board in `path`; `create`: makes the file, zeroed. nullptr on failure.
inline board* map(const std::string& path, bool create) {
    const int fd = ::open(path.c_str(), O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0600);
    if (fd < 0 || (create && ::ftruncate(fd, sizeof(board)) != 0)) {
        return nullptr;
    }
    void* mapped = ::mmap(nullptr, sizeof(board), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    return mapped == MAP_FAILED ? nullptr : static_cast<board*>(mapped);
}

inline void unmap(board* b) {
    ::munmap(b, sizeof(board));
}

}  // namespace kill_board

#endif  // SETTLE_TESTS_TWOPHASE_KILL_BOARD_HPP
