// Barrier, reconcile and saga stores that miss a requirement must not compile, and
// the first error must name the member. Built by tests/compile_fail.cmake once
// per SETTLE_CASE; case 0 is the control and must compile, so a broken include
// path cannot pass for a refusal.
#include <settle/barrier.hpp>
#if SETTLE_CASE == 0 || SETTLE_CASE == 3  // the reconciler's cases: only they pay for it
#include <settle/reconciler.hpp>
#endif
#if SETTLE_CASE == 0 || SETTLE_CASE == 5  // the saga case
#include <settle/saga_coordinator.hpp>
#endif

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

struct transaction {
    void commit() {}
};

// The smallest barrier store: no purge, as one whose records expire by
// themselves would not.
struct expiring_barrier {
    using transaction = ::transaction;
    transaction begin() { return {}; }
    settle::barrier_outcome enter(transaction&, std::string_view, std::string_view,
                                  settle::barrier_phase, settle::stored_time) {
        return settle::barrier_outcome::entered;
    }
};

template <class Store>
int purge() {
    Store store;
    settle::manual_clock clock;
    settle::tcc_barrier barrier(store, clock);
    transaction tx = store.begin();
    return barrier.purge(tx, 10) == 0 ? 0 : 1;
}

#if SETTLE_CASE == 0 || SETTLE_CASE == 3
struct reconcile_store {
    using transaction = ::transaction;
    transaction begin() { return {}; }
    bool watch(transaction&, std::string_view, settle::stored_time) { return true; }
    std::vector<settle::uncertain_record> due(transaction&, settle::stored_time,
                                              settle::stored_time, std::size_t) {
        return {};
    }
    bool forget(transaction&, std::string_view) { return true; }
    bool reschedule(transaction&, std::string_view, std::uint32_t, settle::stored_time) {
        return true;
    }
    bool escalate(transaction&, std::string_view, std::string_view, settle::stored_time) {
        return true;
    }
};

template <class Store>
int reconcile() {
    Store store;
    settle::manual_clock clock;
    settle::reconciler r(
        store, settle::persisted_retry{settle::constant_backoff{std::chrono::seconds(1)}, 3}, clock,
        {});
    transaction tx = store.begin();
    return r.watch(tx, "o1") ? 0 : 1;
}

#endif

#if SETTLE_CASE == 0 || SETTLE_CASE == 5
// The smallest saga store: no purge.
struct saga_store {
    using transaction = ::transaction;
    transaction begin() { return {}; }
    bool create(transaction&, std::string_view, std::string_view, std::string_view,
                settle::stored_time) {
        return true;
    }
    std::optional<settle::saga_record> load(transaction&, std::string_view) { return {}; }
    settle::fenced_write update(transaction&, const settle::saga_record&) {
        return settle::fenced_write::applied;
    }
    std::vector<settle::saga_record> due(transaction&, std::string_view, settle::stored_time,
                                         std::size_t) {
        return {};
    }
};

settle::saga_coordinator<saga_store, settle::constant_backoff, settle::manual_clock> sagas(
    saga_store& store, settle::manual_clock& clock) {
    const auto noop = [](const settle::saga_call&) {};
    return {store,
            {"t", {{"a", noop, noop}}},
            settle::persisted_retry{settle::constant_backoff{std::chrono::seconds(1)}, 3},
            clock,
            {}};
}
#endif

#if SETTLE_CASE == 0
static_assert(settle::saga_store<saga_store>);
static_assert(!settle::purgeable_saga_store<saga_store>);
static_assert(settle::barrier_store<expiring_barrier>);
static_assert(!settle::purgeable_barrier_store<expiring_barrier>);
static_assert(settle::reconcile_store<reconcile_store>);
int main() {
    settle::manual_clock clock;
    expiring_barrier store;
    settle::tcc_barrier barrier(store, clock);
    transaction tx = store.begin();
    const settle::barrier_result r = barrier.cancel(tx, "x", "b", [](transaction&) {});
    saga_store sagas_kept;
    transaction tx2 = sagas_kept.begin();
    return r.is_entered() && sagas(sagas_kept, clock).start(tx2, "s1", "")
               ? reconcile<reconcile_store>()
               : 1;
}
#elif SETTLE_CASE == 1  // enter answering a bool
struct store : expiring_barrier {
    bool enter(transaction&, std::string_view, std::string_view, settle::barrier_phase,
               settle::stored_time) {
        return true;
    }
};
int main() {
    settle::manual_clock clock;
    store s;
    settle::tcc_barrier barrier(s, clock);
}
#elif SETTLE_CASE == 2  // purge called on a store without purge
int main() {
    return purge<expiring_barrier>();
}
#elif SETTLE_CASE == 3  // a reconcile store without escalate
struct store : reconcile_store {
    void escalate() {}
};
int main() {
    return reconcile<store>();
}
#elif SETTLE_CASE == 4  // a barrier result dropped
#pragma GCC diagnostic error "-Wunused-result"
int main() {
    settle::manual_clock clock;
    expiring_barrier store;
    settle::tcc_barrier barrier(store, clock);
    transaction tx = store.begin();
    barrier.try_phase(tx, "x", "b", [](transaction&) {});
}
#elif SETTLE_CASE == 5  // purge called on a saga store without purge
int main() {
    settle::manual_clock clock;
    saga_store store;
    transaction tx = store.begin();
    return sagas(store, clock).purge(tx, 10) == 0 ? 0 : 1;
}
#endif
