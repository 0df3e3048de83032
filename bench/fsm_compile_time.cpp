// One translation unit, two ways: with SETTLE_BENCH_FSM_TABLE_ONLY it holds the
// 50-state settle::state_machine, with SETTLE_BENCH_FSM_SWITCH_ONLY the
// hand-written switch. bench/fsm_compile_time.sh times both.
#include "fsm_large.hpp"

int main(int argc, char**) {
    const auto from = static_cast<large::state>(argc);
#ifdef SETTLE_BENCH_FSM_TABLE_ONLY
    return large::machine.next(from, large::event::e1).is_applied() ? 0 : 1;
#else
    return large::next_switch(from, large::event::e1).is_applied() ? 0 : 1;
#endif
}
