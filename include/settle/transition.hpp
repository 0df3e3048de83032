// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TRANSITION_HPP
#define SETTLE_TRANSITION_HPP

#include <settle/version.hpp>

#include <settle/state_machine.hpp>
#include <settle/versioned.hpp>

#include <concepts>
#include <optional>
#include <string_view>
#include <utility>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace detail::fsm {

// Builds stored_transition_results, whose constructor is private so that only
// settle::transition makes one.
struct result_access {
    template <class Result, class... Args>
    [[nodiscard]] static constexpr Result make(Args&&... args) {
        return Result(std::forward<Args>(args)...);
    }
};

}  // namespace detail::fsm

/// What settle::transition did to a stored state. Exhaustive: switch on it
/// without a default.
enum class [[nodiscard]] stored_transition_outcome{
    applied,    ///< this caller moved the state and owns the transition's one-time side effect
    duplicate,  ///< the event already took effect: acknowledge it, do nothing again
    rejected,   ///< the event is illegal in the stored state
    missing,    ///< no state is stored at the key
};

[[nodiscard]] constexpr std::string_view to_string(stored_transition_outcome outcome) noexcept {
    switch (outcome) {
    case stored_transition_outcome::applied: return "applied";
    case stored_transition_outcome::duplicate: return "duplicate";
    case stored_transition_outcome::rejected: return "rejected";
    case stored_transition_outcome::missing: return "missing";
    }
    return "unknown settle::stored_transition_outcome";
}

/// What settle::transition returns.
///   check(): the machine's answer against the state as stored when the
///            answer was final (its from(), event() and to()); empty when missing.
///   stamp(): applied, the state's new stamp; duplicate and rejected, the
///            stamp of the state checked; missing, version_stamp(0).
/// `if (auto t = settle::transition(...))` is true when this caller applied
/// the event. Holds no more than a transition_result and a stamp.
template <class State, class Event>
class [[nodiscard]] stored_transition_result {
public:
    ///@{
    /// The outcome, one test for each of its values (true when applied), the machine's answer, and
    /// the stamp (see the guide).
    [[nodiscard]] constexpr stored_transition_outcome outcome() const noexcept {
        if (!check_) {
            return stored_transition_outcome::missing;
        }
        switch (check_->outcome()) {
        case transition_outcome::applied: return stored_transition_outcome::applied;
        case transition_outcome::duplicate: return stored_transition_outcome::duplicate;
        case transition_outcome::rejected: break;
        }
        return stored_transition_outcome::rejected;
    }
    [[nodiscard]] constexpr bool is_applied() const noexcept {
        return check_ && check_->is_applied();
    }
    [[nodiscard]] constexpr bool is_duplicate() const noexcept {
        return check_ && check_->is_duplicate();
    }
    [[nodiscard]] constexpr bool is_rejected() const noexcept {
        return check_ && check_->is_rejected();
    }
    [[nodiscard]] constexpr bool is_missing() const noexcept { return !check_; }
    constexpr explicit operator bool() const noexcept { return is_applied(); }

    [[nodiscard]] constexpr const std::optional<transition_result<State, Event>>& check()
        const noexcept {
        return check_;
    }
    [[nodiscard]] constexpr version_stamp stamp() const noexcept { return stamp_; }
    ///@}

private:
    friend struct detail::fsm::result_access;

    constexpr stored_transition_result(std::optional<transition_result<State, Event>> check,
                                       version_stamp stamp) noexcept
        : check_(check), stamp_(stamp) {}

    std::optional<transition_result<State, Event>> check_;
    version_stamp stamp_;
};

namespace detail::fsm {

template <class Store, class Machine>
constexpr bool check_transition_store() {
    if constexpr (check_versioned_store<Store>()) {
        static_assert(std::same_as<typename Store::value_type, typename Machine::state_type>,
                      "settle::transition: the store's member type `value_type` is not the "
                      "machine's state_type");
        return std::same_as<typename Store::value_type, typename Machine::state_type>;
    } else {
        return false;
    }
}

}  // namespace detail::fsm

/// Applies `event` to the state stored at `key`, inside the caller's
/// transaction: the persisted form of `UPDATE ... SET status = new WHERE id = ?
/// AND status = old`. Reads the state, checks it with machine.next, and writes
/// the new state with compare_and_set at the stamp it read. `missing` when the
/// key is absent.
///
/// Of any number of callers racing to apply the same event, exactly one gets
/// `applied`; the others, re-checking against the state the winner wrote, get
/// `duplicate` (or `rejected` if the state has moved elsewhere). A conflicting
/// write makes the check run again against the current state (taken from the
/// conflict when the store returns it, else read again); every conflict means
/// another transaction committed. The store's isolation must let a transaction
/// read what others committed after it began (read committed, as settle's SQL
/// backends use; the in-memory database runs transactions one at a time, so it
/// never conflicts): after 64 conflicts in a row the backend is taken to be
/// broken and settle::error (errc::backend_failure) is thrown.
///
/// Commit tx to keep the new state, together with whatever side effect the
/// caller wrote in the same transaction (an outbox append, say); the side
/// effect then happens exactly when the state changes. Guards run once per
/// check.
template <class Store, class Machine>
[[nodiscard]] stored_transition_result<typename Machine::state_type, typename Machine::event_type>
transition(Store& store, typename Store::transaction& tx, const typename Store::key_type& key,
           const Machine& machine, typename Machine::event_type event,
           const typename Machine::context_type& context) {
    using state = typename Machine::state_type;
    using answer = stored_transition_result<state, typename Machine::event_type>;
    using access = detail::fsm::result_access;
    if constexpr (detail::fsm::check_transition_store<Store, Machine>()) {
        std::optional<versioned<state>> current = store.load(tx, key);
        for (int passes = 0; current; ++passes) {
            const auto result = machine.next(current->value, event, context);
            if (!result.is_applied()) {
                return access::make<answer>(result, current->stamp);
            }
            auto written = store.compare_and_set(tx, key, current->stamp, state(result.to()));
            switch (written.outcome()) {
            case write_outcome::applied: return access::make<answer>(result, written.stamp());
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
    }
    return access::make<answer>(std::nullopt, version_stamp(0));
}

/// The same, for a machine without guards.
template <class Store, class Machine>
requires std::same_as<typename Machine::context_type, no_context>
[[nodiscard]] stored_transition_result<typename Machine::state_type, typename Machine::event_type>
transition(Store& store, typename Store::transaction& tx, const typename Store::key_type& key,
           const Machine& machine, typename Machine::event_type event) {
    return settle::transition(store, tx, key, machine, event, no_context{});
}

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_TRANSITION_HPP
