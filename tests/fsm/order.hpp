// The order life cycle the fsm tests, benchmarks and guide share.
#ifndef SETTLE_TESTS_FSM_ORDER_HPP
#define SETTLE_TESTS_FSM_ORDER_HPP

#include <settle/state_machine.hpp>

#include <string_view>

namespace shop {

enum class order_state { created, awaiting_payment, paid, shipped, delivered, cancelled, refunded };
enum class order_event { submit, pay, ship, deliver, cancel, refund };

constexpr std::string_view to_string(order_state s) {
    switch (s) {
    case order_state::created: return "created";
    case order_state::awaiting_payment: return "awaiting_payment";
    case order_state::paid: return "paid";
    case order_state::shipped: return "shipped";
    case order_state::delivered: return "delivered";
    case order_state::cancelled: return "cancelled";
    case order_state::refunded: return "refunded";
    }
    return "?";
}

constexpr std::string_view to_string(order_event e) {
    switch (e) {
    case order_event::submit: return "submit";
    case order_event::pay: return "pay";
    case order_event::ship: return "ship";
    case order_event::deliver: return "deliver";
    case order_event::cancel: return "cancel";
    case order_event::refund: return "refund";
    }
    return "?";
}

// What the guards look at.
struct order {
    long amount_cents = 0;
    int days_since_delivery = 0;
};

using enum order_state;
using enum order_event;

inline constexpr auto order_machine = settle::make_state_machine<order_state, order_event, order>(
    {created, awaiting_payment, paid, shipped, delivered, cancelled, refunded},
    {cancelled, refunded},
    {
        {created, submit, awaiting_payment},
        {created, cancel, cancelled},
        {awaiting_payment, pay, paid, [](const order& o) { return o.amount_cents > 0; }},
        {awaiting_payment, cancel, cancelled},
        {paid, ship, shipped},
        {paid, refund, refunded},
        {shipped, deliver, delivered},
        {delivered, refund, refunded, [](const order& o) { return o.days_since_delivery <= 30; }},
    });

}  // namespace shop

#endif  // SETTLE_TESTS_FSM_ORDER_HPP
