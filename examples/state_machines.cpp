// The tables docs/state-machines.md shows, and their pictures. Run with a file
// name, it writes each table's to_mermaid() there between `// [name]` marker
// lines; a test then compares the guide's ```mermaid blocks with them, so a
// picture in the guide is always the one its table draws.
#include <settle/state_machine.hpp>

#include <cstdio>
#include <string_view>

namespace {

// The guide shows the table as written here.
// clang-format off
// [order-machine]
enum class order_state { created, awaiting_payment, paid, shipped, delivered, cancelled, refunded };
enum class order_event { submit, pay, ship, deliver, cancel, refund };
struct order { long amount_cents; int days_since_delivery; };   // what guards look at

using enum order_state;
using enum order_event;

constexpr auto order_machine = settle::make_state_machine<order_state, order_event, order>(
    {created, awaiting_payment, paid, shipped, delivered, cancelled, refunded},  // the first is initial
    {cancelled, refunded},                                                       // terminal
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
// [order-machine]
// clang-format on

constexpr std::string_view to_string(order_state s) {
    switch (s) {
    case created: return "created";
    case awaiting_payment: return "awaiting_payment";
    case paid: return "paid";
    case shipped: return "shipped";
    case delivered: return "delivered";
    case cancelled: return "cancelled";
    case refunded: return "refunded";
    }
    return "?";
}

constexpr std::string_view to_string(order_event e) {
    switch (e) {
    case submit: return "submit";
    case pay: return "pay";
    case ship: return "ship";
    case deliver: return "deliver";
    case cancel: return "cancel";
    case refund: return "refund";
    }
    return "?";
}

}  // namespace

int main(int argc, char** argv) {
    std::FILE* out = argc == 2 ? std::fopen(argv[1], "w") : stdout;
    if (out == nullptr) {
        std::fprintf(stderr, "cannot write %s\n", argv[1]);
        return 2;
    }
    std::fprintf(out, "// [order-machine]\n%s// [order-machine]\n",
                 order_machine.to_mermaid().c_str());
    return out == stdout || std::fclose(out) == 0 ? 0 : 1;
}
