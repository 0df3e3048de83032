// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TRANSITION_HPP
#define SETTLE_TRANSITION_HPP

#include <settle/version.hpp>

#include <settle/state_machine.hpp>
#include <settle/versioned.hpp>

#include <concepts>
#include <optional>
#include <utility>

SETTLE_BEGIN_NAMESPACE

// What settle::transition did to a stored state.
template <class State, class Event>
struct [[nodiscard]] stored_transition {
    // The guard check against the state as stored when the answer was final.
    // applied: this caller moved the state to result.to and owns the
    // transition's one-time side effect; duplicate and rejected changed nothing.
    transition_result<State, Event> result;
    // applied: the state's new stamp; otherwise the stamp of the state checked.
    version_stamp stamp;
};

// Applies `event` to the state stored at `key`, inside the caller's
// transaction: the persisted form of `UPDATE ... SET status = new WHERE id = ?
// AND status = old`. Reads the state, checks it with machine.next, and writes
// the new state with compare_and_set at the stamp it read. Empty when the key
// is absent.
//
// Of any number of callers racing to apply the same event, exactly one gets
// `applied`; the others, re-checking against the state the winner wrote, get
// `duplicate` (or `rejected` if the state has moved elsewhere). A conflicting
// write makes the check run again against the current state (taken from the
// conflict when the store returns it, else read again); every conflict means
// another transaction committed. The store's isolation must let a transaction
// read what others committed after it began (read committed, as settle's SQL
// backends use; the in-memory database runs transactions one at a time, so it
// never conflicts): after 64 conflicts in a row the backend is taken to be
// broken and settle::error (errc::backend_failure) is thrown.
//
// Commit tx to keep the new state, together with whatever side effect the
// caller wrote in the same transaction (an outbox append, say); the side
// effect then happens exactly when the state changes. Guards run once per
// check.
template <versioned_store Store, class Machine>
requires std::same_as<typename Store::value_type, typename Machine::state_type>
    std::optional<stored_transition<typename Machine::state_type, typename Machine::event_type>>
    transition(Store& store, typename Store::transaction& tx, const typename Store::key_type& key,
               const Machine& machine, typename Machine::event_type event,
               const typename Machine::context_type& context) {
    using state = typename Machine::state_type;
    using answer = stored_transition<state, typename Machine::event_type>;
    std::optional<versioned<state>> current = store.load(tx, key);
    for (int passes = 0; current; ++passes) {
        const auto result = machine.next(current->value, event, context);
        if (!result.applied()) {
            return answer{result, current->stamp};
        }
        auto written = store.compare_and_set(tx, key, current->stamp, state(result.to));
        switch (written.outcome()) {
        case write_outcome::applied: return answer{result, written.stamp()};
        case write_outcome::conflict:
            detail::count_conflict(passes, "settle::transition");
            if (written.current_value()) {
                current = versioned<state>{*written.current_value(), written.stamp()};
            } else {
                current = store.load(tx, key);
            }
            break;
        case write_outcome::missing: current.reset(); break;
        }
    }
    return std::nullopt;
}

// The same, for a machine without guards.
template <versioned_store Store, class Machine>
requires std::same_as<typename Store::value_type, typename Machine::state_type> &&
    std::same_as<typename Machine::context_type, no_context>
        std::optional<stored_transition<typename Machine::state_type, typename Machine::event_type>>
        transition(Store& store, typename Store::transaction& tx,
                   const typename Store::key_type& key, const Machine& machine,
                   typename Machine::event_type event) {
    return settle::transition(store, tx, key, machine, event, no_context{});
}

SETTLE_END_NAMESPACE

#endif  // SETTLE_TRANSITION_HPP
