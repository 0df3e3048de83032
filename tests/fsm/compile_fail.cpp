// Tables that break a rule of settle::make_state_machine must not compile.
// Built by tests/compile_fail.cmake once per SETTLE_CASE; case 0 is the
// control and must compile, so a broken include path cannot pass for a refusal.
#include <settle/state_machine.hpp>

enum class state { a, b, c };
enum class event { go, stop };

using enum state;
using enum event;

#if SETTLE_CASE == 0
constexpr auto machine =
    settle::make_state_machine<state, event>({a, b, c}, {c}, {{a, go, b}, {b, stop, c}});
#elif SETTLE_CASE == 1  // a state declared twice
constexpr auto machine =
    settle::make_state_machine<state, event>({a, b, a}, {{a, go, b}, {b, stop, c}});
#elif SETTLE_CASE == 2  // a terminal state that is not declared
constexpr auto machine = settle::make_state_machine<state, event>({a, b}, {c}, {{a, go, b}});
#elif SETTLE_CASE == 3  // a row that names an undeclared state
constexpr auto machine = settle::make_state_machine<state, event>({a, b}, {{a, go, c}});
#elif SETTLE_CASE == 4  // a row leaving a terminal state
constexpr auto machine =
    settle::make_state_machine<state, event>({a, b, c}, {c}, {{a, go, c}, {c, stop, a}});
#elif SETTLE_CASE == 5  // two rows for one (from, event) and no guard to tell them apart
constexpr auto machine =
    settle::make_state_machine<state, event>({a, b, c}, {{a, go, b}, {a, go, c}});
#endif

int main() {
    return machine.next(a, go).is_applied() ? 0 : 1;
}
