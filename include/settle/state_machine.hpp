// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STATE_MACHINE_HPP
#define SETTLE_STATE_MACHINE_HPP

#include <settle/version.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

/// The context of a machine whose rows have no guards.
struct no_context {};

/// A row's optional condition over the caller's context: a function or a
/// lambda without captures. Guards must be pure; next() calls each at most once.
template <class Context>
class transition_guard {
public:
    constexpr transition_guard() noexcept = default;
    /// A guard from a function, or a lambda without captures, taking const Context&.
    template <class F>
    requires(
        !std::is_same_v<std::remove_cvref_t<F>, std::nullptr_t> &&
        std::is_convertible_v<
            F,
            bool (*)(const Context&)>) constexpr transition_guard(F guard) noexcept  // NOLINT:
                                                                                     // implicit, so
                                                                                     // rows read
                                                                                     // naturally
        : fn_(guard), present_(true) {}

    ///@{
    /// Whether the row has a guard, and calls it.
    constexpr explicit operator bool() const noexcept { return present_; }
    constexpr bool operator()(const Context& context) const { return fn_(context); }
    ///@}

private:
    // present_ and not fn_ != nullptr says whether there is a guard: GCC
    // cannot compare the address of a lambda in an inline variable with null
    // at compile time.
    bool (*fn_)(const Context&) = nullptr;
    bool present_ = false;
};

/// One row of a transition table: in state `from`, event `event` leads to state
/// `to`, provided `guard` (if any) holds for the caller's context.
template <class State, class Event, class Context = no_context>
struct transition_row {
    ///@{
    /// The state the row leaves, the event, the state it enters, and its guard (none by default).
    State from;
    Event event;
    State to;
    transition_guard<Context> guard{};
    ///@}
};

/// What a transition check found. Exhaustive: switch on it without a default.
enum class [[nodiscard]] transition_outcome{
    applied,    ///< a row applies: move to `to`, and do the transition's side effect
    duplicate,  ///< the event already took effect: acknowledge it, do nothing again
    rejected,   ///< the event is illegal in this state
};

[[nodiscard]] constexpr std::string_view to_string(transition_outcome outcome) noexcept {
    switch (outcome) {
    case transition_outcome::applied: return "applied";
    case transition_outcome::duplicate: return "duplicate";
    case transition_outcome::rejected: return "rejected";
    }
    return "unknown settle::transition_outcome";
}

/// What state_machine::next returns: the outcome, the state the event was
/// checked against (from()), the event, and to(): applied, the new state;
/// otherwise equal to from(). `if (auto r = machine.next(s, e))` is true when
/// a row applies. Trivially copyable when State and Event are. A hand-written
/// table (a baseline, a test double) builds one with the constructor.
template <class State, class Event>
class [[nodiscard]] transition_result {
public:
    ///@{
    /// Made from its parts by the library; the outcome, one test for each of its values (true when
    /// applied), the state checked, the event, the state afterwards; equal when every field is.
    constexpr transition_result(transition_outcome outcome, State from, Event event,
                                State to) noexcept
        : outcome_(outcome), from_(from), event_(event), to_(to) {}

    [[nodiscard]] constexpr transition_outcome outcome() const noexcept { return outcome_; }
    [[nodiscard]] constexpr bool is_applied() const noexcept {
        return outcome_ == transition_outcome::applied;
    }
    [[nodiscard]] constexpr bool is_duplicate() const noexcept {
        return outcome_ == transition_outcome::duplicate;
    }
    [[nodiscard]] constexpr bool is_rejected() const noexcept {
        return outcome_ == transition_outcome::rejected;
    }
    constexpr explicit operator bool() const noexcept { return is_applied(); }
    [[nodiscard]] constexpr State from() const noexcept { return from_; }
    [[nodiscard]] constexpr Event event() const noexcept { return event_; }
    [[nodiscard]] constexpr State to() const noexcept { return to_; }

    friend constexpr bool operator==(const transition_result&, const transition_result&) = default;
    ///@}

private:
    transition_outcome outcome_;
    State from_;
    Event event_;
    State to_;
};

namespace detail::fsm {

// A table that breaks a rule fails to compile with a call to one of these in
// the compiler's notes; their names are the diagnostic.
inline void error_a_state_is_declared_twice() {}
inline void error_a_terminal_state_is_not_among_the_declared_states() {}
inline void error_a_row_names_a_state_that_is_not_among_the_declared_states() {}
inline void error_a_row_leaves_a_terminal_state() {}
inline void error_a_row_without_a_guard_hides_a_later_row_for_the_same_state_and_event() {}

// A name inside a DOT double-quoted string: quotes and backslashes escaped.
inline std::string quoted(std::string name) {
    std::string out = "\"";
    for (const char c : name) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + '"';
}

template <class T>
std::string name_of(T value) {
    if constexpr (requires { to_string(value); }) {
        return std::string(to_string(value));
    } else {
        return std::to_string(
            static_cast<long long>(static_cast<std::underlying_type_t<T>>(value)));
    }
}

}  // namespace detail::fsm

/// A transition table checked when it is compiled. Build one with
/// settle::make_state_machine; the rules it enforces are listed there.
///
/// next(from, event[, context]) answers, in this order:
///   1. applied(to): the first row, in declaration order, for (from, event)
///      whose guard holds (or that has none). Guards of later rows are not called.
///   2. duplicate: no row for (from, event) exists at all, and some row leads to
///      `from` on `event` (from any state): the event's transition already happened.
///   3. rejected: otherwise, including when rows for (from, event) exist but no
///      guard holds, and when `from` is not a declared state.
/// Cost: a few comparisons per row leaving `from` (two array reads to find
/// them when the states' values are 0..N-1, a scan of the states otherwise);
/// no allocation.
template <class State, class Event, class Context, std::size_t States, std::size_t Terminals,
          std::size_t Rows>
class state_machine {
    static_assert(std::is_enum_v<State> && std::is_enum_v<Event>,
                  "settle::state_machine: states and events are enumerations");

public:
    ///@{
    /// The table's types; the machine is made with make_state_machine.
    using state_type = State;
    using event_type = Event;
    using context_type = Context;
    using row_type = transition_row<State, Event, Context>;
    using result_type = transition_result<State, Event>;

    consteval state_machine(const std::array<State, States>& states,
                            const std::array<State, Terminals>& terminal,
                            const std::array<row_type, Rows>& rows)
        : states_(states), terminal_(terminal), rows_(rows) {
        namespace err = detail::fsm;
        // Every loop here is linear in the table's size, or in a state's rows:
        // this runs in the compiler, and large tables must stay cheap to build.
        direct_ = true;
        for (const State s : states_) {
            const auto value = static_cast<std::underlying_type_t<State>>(s);
            direct_ = direct_ && value >= 0 && static_cast<std::size_t>(value) < States;
        }
        if (direct_) {
            std::array<bool, States> seen{};
            for (std::size_t i = 0; i < States; ++i) {
                const auto value = static_cast<std::size_t>(states_[i]);
                if (seen[value]) {
                    err::error_a_state_is_declared_twice();
                }
                seen[value] = true;
                direct_index_[value] = static_cast<std::uint32_t>(i);
            }
        } else {
            for (std::size_t i = 0; i < States; ++i) {
                for (std::size_t j = 0; j < i; ++j) {
                    if (states_[i] == states_[j]) {
                        err::error_a_state_is_declared_twice();
                    }
                }
            }
        }
        std::array<bool, States> terminal_index{};
        for (const State t : terminal_) {
            const std::size_t i = index_of(t);
            if (i == npos) {
                err::error_a_terminal_state_is_not_among_the_declared_states();
            }
            terminal_index[i] = true;
        }
        std::array<std::uint32_t, Rows> from_index{};
        std::array<std::uint32_t, Rows> to_index{};
        for (std::size_t r = 0; r < Rows; ++r) {
            const std::size_t from = index_of(rows_[r].from);
            const std::size_t to = index_of(rows_[r].to);
            if (from == npos || to == npos) {
                err::error_a_row_names_a_state_that_is_not_among_the_declared_states();
            }
            if (terminal_index[from]) {
                err::error_a_row_leaves_a_terminal_state();
            }
            from_index[r] = static_cast<std::uint32_t>(from);
            to_index[r] = static_cast<std::uint32_t>(to);
        }
        group(from_index, from_begin_, by_from_);
        group(to_index, to_begin_, by_to_);
        for (std::size_t s = 0; s < States; ++s) {
            for (std::size_t i = from_begin_[s]; i < from_begin_[s + 1]; ++i) {
                for (std::size_t later = i + 1; later < from_begin_[s + 1]; ++later) {
                    const row_type& first = rows_[by_from_[i]];
                    if (!first.guard && first.event == rows_[by_from_[later]].event) {
                        err::
                            error_a_row_without_a_guard_hides_a_later_row_for_the_same_state_and_event();
                    }
                }
            }
        }
        for (const row_type& row : rows_) {
            bool seen = false;
            for (std::size_t e = 0; e < event_count_; ++e) {
                seen = seen || events_[e] == row.event;
            }
            if (!seen) {
                events_[event_count_++] = row.event;
            }
        }
    }
    ///@}

    /// The check for a machine with guards over a context.
    [[nodiscard]] constexpr result_type next(State from, Event event,
                                             const Context& context) const {
        const std::size_t s = index_of(from);
        if (s == npos) {
            return rejected(from, event);
        }
        bool any = false;
        for (std::size_t i = from_begin_[s]; i < from_begin_[s + 1]; ++i) {
            const row_type& row = rows_[by_from_[i]];
            if (row.event == event) {
                any = true;
                if (!row.guard || row.guard(context)) {
                    return make(transition_outcome::applied, from, event, row.to);
                }
            }
        }
        if (!any) {
            for (std::size_t i = to_begin_[s]; i < to_begin_[s + 1]; ++i) {
                if (rows_[by_to_[i]].event == event) {
                    return make(transition_outcome::duplicate, from, event, from);
                }
            }
        }
        return rejected(from, event);
    }

    /// The check for a machine without guards.
    [[nodiscard]] constexpr result_type next(
        State from, Event event) const requires std::is_same_v<Context, no_context> {
        return next(from, event, no_context{});
    }

    /// The first declared state: where a new entity starts.
    [[nodiscard]] constexpr State initial() const noexcept { return states_[0]; }
    ///@{
    /// The declared states, the terminal states, the rows, and whether a state is terminal.
    [[nodiscard]] constexpr std::span<const State> states() const noexcept { return states_; }
    [[nodiscard]] constexpr std::span<const State> terminal_states() const noexcept {
        return terminal_;
    }
    /// Every event that appears in a row, in order of first appearance.
    [[nodiscard]] constexpr std::span<const Event> events() const noexcept {
        return std::span<const Event>(events_.data(), event_count_);
    }
    [[nodiscard]] constexpr std::span<const row_type> rows() const noexcept { return rows_; }

    [[nodiscard]] constexpr bool is_terminal(State state) const noexcept {
        for (const State t : terminal_) {
            if (t == state) {
                return true;
            }
        }
        return false;
    }
    ///@}

    /// The table as a Mermaid state diagram. States and events are named by
    /// to_string found by argument-dependent lookup, else by their value.
    [[nodiscard]] std::string to_mermaid() const {
        std::string out = "stateDiagram-v2\n    [*] --> " + detail::fsm::name_of(initial()) + "\n";
        for (const row_type& row : rows_) {
            out += "    " + detail::fsm::name_of(row.from) + " --> " +
                   detail::fsm::name_of(row.to) + " : " + label(row) + "\n";
        }
        for (const State t : terminal_) {
            out += "    " + detail::fsm::name_of(t) + " --> [*]\n";
        }
        return out;
    }

    /// The table as a Graphviz DOT digraph; terminal states are drawn doubled.
    [[nodiscard]] std::string to_dot(std::string_view graph_name = "state_machine") const {
        using detail::fsm::name_of;
        using detail::fsm::quoted;
        std::string out = "digraph " + quoted(std::string(graph_name)) + " {\n    rankdir=LR;\n";
        for (const State s : states_) {
            out += "    " + quoted(name_of(s)) + (is_terminal(s) ? " [peripheries=2]" : "") + ";\n";
        }
        for (const row_type& row : rows_) {
            out += "    " + quoted(name_of(row.from)) + " -> " + quoted(name_of(row.to)) +
                   " [label=" + quoted(label(row)) + "];\n";
        }
        return out + "}\n";
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    static constexpr result_type make(transition_outcome outcome, State from, Event event,
                                      State to) noexcept {
        return result_type(outcome, from, event, to);
    }
    static constexpr result_type rejected(State from, Event event) noexcept {
        return make(transition_outcome::rejected, from, event, from);
    }

    constexpr std::size_t index_of(State state) const noexcept {
        if (direct_) {
            const auto value = static_cast<std::underlying_type_t<State>>(state);
            return value >= 0 && static_cast<std::size_t>(value) < States
                       ? direct_index_[static_cast<std::size_t>(value)]
                       : npos;
        }
        for (std::size_t i = 0; i < States; ++i) {
            if (states_[i] == state) {
                return i;
            }
        }
        return npos;
    }

    // Orders row indices by their state index (a counting sort that keeps
    // declaration order within a state); begin[s]..begin[s+1] are state s's rows.
    static consteval void group(const std::array<std::uint32_t, Rows>& state_of,
                                std::array<std::uint32_t, States + 1>& begin,
                                std::array<std::uint32_t, Rows>& order) {
        for (const std::uint32_t s : state_of) {
            ++begin[s + 1];
        }
        for (std::size_t s = 0; s < States; ++s) {
            begin[s + 1] += begin[s];
        }
        std::array<std::uint32_t, States> next_slot{};
        for (std::size_t s = 0; s < States; ++s) {
            next_slot[s] = begin[s];
        }
        for (std::size_t r = 0; r < Rows; ++r) {
            order[next_slot[state_of[r]]++] = static_cast<std::uint32_t>(r);
        }
    }

    static std::string label(const row_type& row) {
        return detail::fsm::name_of(row.event) + (row.guard ? " [guarded]" : "");
    }

    std::array<State, States> states_;
    std::array<State, Terminals> terminal_;
    std::array<row_type, Rows> rows_;
    std::array<Event, Rows> events_{};
    std::size_t event_count_ = 0;
    bool direct_ = false;
    std::array<std::uint32_t, States> direct_index_{};
    std::array<std::uint32_t, States + 1> from_begin_{};
    std::array<std::uint32_t, Rows> by_from_{};
    std::array<std::uint32_t, States + 1> to_begin_{};
    std::array<std::uint32_t, Rows> by_to_{};
};

/// Builds a transition table at compile time:
///
///     constexpr auto orders = settle::make_state_machine<order_state, order_event>(
///         {created, awaiting_payment, paid, shipped, cancelled, refunded},  // first is initial
///         {shipped, cancelled, refunded},                                   // terminal states
///         {{created, order_event::submit, awaiting_payment},
///          {awaiting_payment, order_event::pay, paid}, ...});
///
/// Give a context type third (make_state_machine<State, Event, Context>) for
/// rows with guards. A table that breaks one of these rules does not compile:
/// every state is declared once; terminal states and the states rows name are
/// declared; no row leaves a terminal state; a row without a guard is the last
/// row for its (from, event), since rows after it could never apply.
template <class State, class Event, class Context = no_context, std::size_t States,
          std::size_t Terminals, std::size_t Rows>
consteval auto make_state_machine(const State (&states)[States], const State (&terminal)[Terminals],
                                  const transition_row<State, Event, Context> (&rows)[Rows]) {
    return state_machine<State, Event, Context, States, Terminals, Rows>(
        std::to_array(states), std::to_array(terminal), std::to_array(rows));
}

/// The same, for a machine without terminal states.
template <class State, class Event, class Context = no_context, std::size_t States,
          std::size_t Rows>
consteval auto make_state_machine(const State (&states)[States],
                                  const transition_row<State, Event, Context> (&rows)[Rows]) {
    return state_machine<State, Event, Context, States, 0, Rows>(
        std::to_array(states), std::array<State, 0>{}, std::to_array(rows));
}

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STATE_MACHINE_HPP
