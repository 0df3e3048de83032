#include <settle/state_machine.hpp>

#include "fsm/order.hpp"
#include "settle_test.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

using namespace shop;
using settle::transition_outcome;

namespace {
constexpr order paid_order{1000, 0};
}

// The whole check runs at compile time too.
static_assert(order_machine.next(created, submit, paid_order).to() == awaiting_payment);
static_assert(order_machine.next(paid, pay, paid_order).outcome() == transition_outcome::duplicate);
static_assert(order_machine.next(shipped, pay, paid_order).outcome() ==
              transition_outcome::rejected);

TEST_CASE("every state and event of the order machine gets the documented answer", "[fsm]") {
    // The expected answer for each (state, event), written out by hand.
    using O = transition_outcome;
    struct expectation {
        order_state from;
        order_event event;
        O outcome;
        order_state to;
    };
    const std::vector<expectation> table = {
        {created, submit, O::applied, awaiting_payment},
        {created, pay, O::rejected, created},
        {created, ship, O::rejected, created},
        {created, deliver, O::rejected, created},
        {created, cancel, O::applied, cancelled},
        {created, refund, O::rejected, created},
        {awaiting_payment, submit, O::duplicate, awaiting_payment},
        {awaiting_payment, pay, O::applied, paid},
        {awaiting_payment, ship, O::rejected, awaiting_payment},
        {awaiting_payment, deliver, O::rejected, awaiting_payment},
        {awaiting_payment, cancel, O::applied, cancelled},
        {awaiting_payment, refund, O::rejected, awaiting_payment},
        {paid, submit, O::rejected, paid},
        {paid, pay, O::duplicate, paid},  // the payment callback, again
        {paid, ship, O::applied, shipped},
        {paid, deliver, O::rejected, paid},
        {paid, cancel, O::rejected, paid},
        {paid, refund, O::applied, refunded},
        {shipped, submit, O::rejected, shipped},
        {shipped, pay, O::rejected, shipped},
        {shipped, ship, O::duplicate, shipped},
        {shipped, deliver, O::applied, delivered},
        {shipped, cancel, O::rejected, shipped},
        {shipped, refund, O::rejected, shipped},
        {delivered, submit, O::rejected, delivered},
        {delivered, pay, O::rejected, delivered},
        {delivered, ship, O::rejected, delivered},
        {delivered, deliver, O::duplicate, delivered},
        {delivered, cancel, O::rejected, delivered},
        {delivered, refund, O::applied, refunded},
        {cancelled, submit, O::rejected, cancelled},
        {cancelled, pay, O::rejected, cancelled},
        {cancelled, ship, O::rejected, cancelled},
        {cancelled, deliver, O::rejected, cancelled},
        {cancelled, cancel, O::duplicate, cancelled},
        {cancelled, refund, O::rejected, cancelled},
        {refunded, submit, O::rejected, refunded},
        {refunded, pay, O::rejected, refunded},
        {refunded, ship, O::rejected, refunded},
        {refunded, deliver, O::rejected, refunded},
        {refunded, cancel, O::rejected, refunded},
        {refunded, refund, O::duplicate, refunded},
    };
    REQUIRE(table.size() == 7 * 6);
    for (const auto& e : table) {
        const auto result = order_machine.next(e.from, e.event, paid_order);
        INFO(std::string(to_string(e.from)) + " + " + std::string(to_string(e.event)));
        CHECK(result.outcome() == e.outcome);
        CHECK(result.to() == e.to);
        CHECK(result.from() == e.from);
        CHECK(result.event() == e.event);
        CHECK(result.is_applied() == (e.outcome == O::applied));
        CHECK(static_cast<bool>(result) == (e.outcome == O::applied));
        CHECK(result.is_duplicate() == (e.outcome == O::duplicate));
        CHECK(result.is_rejected() == (e.outcome == O::rejected));
    }
}

TEST_CASE("a guard that does not hold rejects the event", "[fsm]") {
    const order unpaid{0, 0};
    CHECK(order_machine.next(awaiting_payment, pay, unpaid).outcome() ==
          transition_outcome::rejected);
    const order late{1000, 31};
    CHECK(order_machine.next(delivered, refund, late).outcome() == transition_outcome::rejected);
    const order in_time{1000, 30};
    CHECK(order_machine.next(delivered, refund, in_time).to() == refunded);
}

TEST_CASE("a value outside the declared states is rejected", "[fsm]") {
    const auto bogus = static_cast<order_state>(42);
    const auto result = order_machine.next(bogus, pay, paid_order);
    CHECK(result.outcome() == transition_outcome::rejected);
    CHECK(result.to() == bogus);
}

namespace {
enum class sparse_state { low = -5, mid = 10, high = 1000 };
enum class tick { up, down };
int guard_calls = 0;
constexpr auto sparse = settle::make_state_machine<sparse_state, tick, int>(
    {sparse_state::low, sparse_state::mid, sparse_state::high},
    {
        {sparse_state::low, tick::up, sparse_state::mid},
        {sparse_state::mid, tick::up, sparse_state::high,
         [](const int& budget) {
             ++guard_calls;
             return budget > 10;
         }},
        {sparse_state::mid, tick::up, sparse_state::low,
         [](const int& budget) {
             ++guard_calls;
             return budget > 0;
         }},
        {sparse_state::mid, tick::down, sparse_state::low},
        {sparse_state::high, tick::down, sparse_state::mid},
    });
}  // namespace

TEST_CASE("guarded rows are tried in declaration order and each guard runs once", "[fsm]") {
    guard_calls = 0;
    CHECK(sparse.next(sparse_state::mid, tick::up, 20).to() == sparse_state::high);
    CHECK(guard_calls == 1);  // the first guard held; the second was never called
    guard_calls = 0;
    CHECK(sparse.next(sparse_state::mid, tick::up, 5).to() == sparse_state::low);
    CHECK(guard_calls == 2);
    guard_calls = 0;
    CHECK(sparse.next(sparse_state::mid, tick::up, 0).outcome() == transition_outcome::rejected);
    CHECK(guard_calls == 2);
    // Enum values far from 0..N-1 take the scanning path and answer the same.
    CHECK(sparse.next(sparse_state::low, tick::up, 0).to() == sparse_state::mid);
    CHECK(sparse.next(sparse_state::high, tick::up, 0).outcome() == transition_outcome::duplicate);
    CHECK(sparse.next(static_cast<sparse_state>(11), tick::up, 0).outcome() ==
          transition_outcome::rejected);
}

TEST_CASE("introspection lists states events and rows", "[fsm]") {
    CHECK(order_machine.initial() == created);
    CHECK(order_machine.states().size() == 7);
    CHECK(order_machine.rows().size() == 8);
    CHECK(order_machine.terminal_states().size() == 2);
    CHECK(order_machine.is_terminal(refunded));
    CHECK_FALSE(order_machine.is_terminal(delivered));
    const std::vector<order_event> events(order_machine.events().begin(),
                                          order_machine.events().end());
    CHECK(events == std::vector<order_event>{submit, cancel, pay, ship, refund, deliver});
}

TEST_CASE("the table exports as Mermaid and DOT", "[fsm]") {
    const std::string mermaid = order_machine.to_mermaid();
    CHECK(mermaid.rfind("stateDiagram-v2\n    [*] --> created\n", 0) == 0);
    CHECK(mermaid.find("    awaiting_payment --> paid : pay [guarded]\n") != std::string::npos);
    CHECK(mermaid.find("    paid --> shipped : ship\n") != std::string::npos);
    CHECK(mermaid.find("    refunded --> [*]\n") != std::string::npos);

    const std::string dot = order_machine.to_dot("order");
    CHECK(dot.rfind("digraph \"order\" {\n    rankdir=LR;\n", 0) == 0);
    CHECK(dot.find("    \"cancelled\" [peripheries=2];\n") != std::string::npos);
    CHECK(dot.find("    \"paid\" -> \"refunded\" [label=\"refund\"];\n") != std::string::npos);
    CHECK(dot.substr(dot.size() - 2) == "}\n");

    // Without a to_string, states are named by their value.
    CHECK(sparse.to_mermaid().find("    -5 --> 10 : 0\n") != std::string::npos);
}

namespace {
// Machines over states 0..9 and events 0..3 whose rows are drawn at compile
// time from a seeded generator (a unique (from, event) per row, self-loops
// allowed); the test compares next() with a brute-force reading of the rule.
enum class gs { s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 };
enum class ge { e0, e1, e2, e3 };
using generated_row = settle::transition_row<gs, ge>;
constexpr int generated_rows = 24;

template <unsigned Seed>
consteval auto generate() {
    std::array<gs, 10> states{};
    for (int i = 0; i < 10; ++i) {
        states[static_cast<std::size_t>(i)] = static_cast<gs>(i);
    }
    std::array<generated_row, generated_rows> rows{};
    std::array<bool, 40> used{};
    std::uint32_t x = Seed;
    const auto draw = [&x](std::uint32_t n) {
        x = x * 1664525U + 1013904223U;
        return (x >> 8) % n;
    };
    for (auto& row : rows) {
        std::uint32_t slot = draw(40);
        while (used[slot]) {
            slot = (slot + 1) % 40;
        }
        used[slot] = true;
        row = {static_cast<gs>(slot / 4), static_cast<ge>(slot % 4), static_cast<gs>(draw(10))};
    }
    return settle::state_machine<gs, ge, settle::no_context, 10, 0, generated_rows>(
        states, std::array<gs, 0>{}, rows);
}

template <class Machine>
void check_against_the_rule(const Machine& machine) {
    for (int s = 0; s < 10; ++s) {
        for (int e = 0; e < 4; ++e) {
            const auto state = static_cast<gs>(s);
            const auto event = static_cast<ge>(e);
            transition_outcome expected = transition_outcome::rejected;
            gs to = state;
            bool leaves = false;
            for (const auto& row : machine.rows()) {
                if (row.from == state && row.event == event) {
                    leaves = true;
                    expected = transition_outcome::applied;
                    to = row.to;
                }
            }
            for (const auto& row : machine.rows()) {
                if (!leaves && row.to == state && row.event == event) {
                    expected = transition_outcome::duplicate;
                }
            }
            const auto result = machine.next(state, event);
            INFO("state " << s << " event " << e);
            CHECK(result.outcome() == expected);
            CHECK(result.to() == to);
        }
    }
}
}  // namespace

TEST_CASE("generated tables answer as the documented rule says", "[fsm]") {
    static constexpr auto a = generate<1>();
    static constexpr auto b = generate<2>();
    static constexpr auto c = generate<12345>();
    check_against_the_rule(a);
    check_against_the_rule(b);
    check_against_the_rule(c);
}

TEST_CASE("outcomes have names for logs", "[fsm]") {
    CHECK(settle::to_string(transition_outcome::applied) == "applied");
    CHECK(settle::to_string(transition_outcome::duplicate) == "duplicate");
    CHECK(settle::to_string(transition_outcome::rejected) == "rejected");
}

namespace quirky {
enum class light { off, on };
enum class press { once };
constexpr std::string_view to_string(light l) {
    return l == light::on ? "on \"bright\"" : "off\\";
}
constexpr std::string_view to_string(press) {
    return "press";
}
constexpr auto machine = settle::make_state_machine<light, press>(
    {light::off, light::on}, {{light::off, press::once, light::on}});
}  // namespace quirky

TEST_CASE("DOT output escapes quotes and backslashes in names", "[fsm]") {
    const std::string dot = quirky::machine.to_dot("say \"hi\"");
    CHECK(dot.rfind("digraph \"say \\\"hi\\\"\" {", 0) == 0);
    CHECK(dot.find("    \"off\\\\\" -> \"on \\\"bright\\\"\" [label=\"press\"];\n") !=
          std::string::npos);
}
