// Inbox stores that miss a requirement must not compile, and the first error
// must name the member. Built by tests/compile_fail.cmake once per
// SETTLE_CASE; case 0 is the control and must compile, so a broken include
// path cannot pass for a refusal.
#include <settle/inbox.hpp>

#include <cstddef>
#include <string_view>

// The smallest inbox store: a transaction, begin() and mark(). It has no
// purge, as a store whose records expire by themselves would not.
struct transaction {
    void commit() {}
};

struct expiring_store {
    using transaction = ::transaction;
    transaction begin() { return {}; }
    settle::inbox_mark mark(transaction&, std::string_view, std::string_view, settle::stored_time) {
        return settle::inbox_mark::first_time;
    }
};

struct purging_store : expiring_store {
    std::size_t purge(transaction&, std::string_view, settle::stored_time, std::size_t) {
        return 0;
    }
};

template <class Store>
int consume_and_purge() {
    Store store;
    settle::manual_clock clock;
    settle::idempotent_consumer consumer(store, clock, {.consumer = "billing"});
    const settle::inbox_result result = consumer.consume("m-1", [](transaction&) {});
    transaction tx = store.begin();
    return result.is_applied() && consumer.purge(tx, 10) == 0 ? 0 : 1;
}

#if SETTLE_CASE == 0  // consume needs mark only; purge needs purge too
static_assert(settle::inbox_store<expiring_store>);
static_assert(!settle::purgeable_inbox_store<expiring_store>);
static_assert(settle::purgeable_inbox_store<purging_store>);
int main() {
    settle::manual_clock clock;
    expiring_store store;
    settle::idempotent_consumer consumer(store, clock, {.consumer = "billing"});
    const settle::inbox_result result = consumer.consume("m-1", [](transaction&) {});
    return result.is_applied() ? consume_and_purge<purging_store>() : 1;
}
#elif SETTLE_CASE == 1  // no transaction type
struct store {
    int begin() { return 0; }
};
int main() {
    settle::manual_clock clock;
    store s;
    settle::idempotent_consumer<store, settle::manual_clock> consumer(s, clock, {});
}
#elif SETTLE_CASE == 2  // mark with the wrong result
struct store : expiring_store {
    bool mark(transaction&, std::string_view, std::string_view, settle::stored_time) {
        return true;
    }
};
int main() {
    settle::manual_clock clock;
    store s;
    settle::idempotent_consumer consumer(s, clock, {.consumer = "billing"});
}
#elif SETTLE_CASE == 3  // purge called on a store without purge
int main() {
    return consume_and_purge<expiring_store>();
}
#elif SETTLE_CASE == 4  // purge without the consumer: it would purge every consumer's marks
struct store : expiring_store {
    std::size_t purge(transaction&, settle::stored_time, std::size_t) { return 0; }
};
int main() {
    return consume_and_purge<store>();
}
#elif SETTLE_CASE == 5  // a consume result dropped
#pragma GCC diagnostic error "-Wunused-result"
int main() {
    settle::manual_clock clock;
    expiring_store store;
    settle::idempotent_consumer consumer(store, clock, {.consumer = "billing"});
    consumer.consume("m-1", [](transaction&) {});
}
#elif SETTLE_CASE == 6  // a mark dropped by code that calls a store directly
#pragma GCC diagnostic error "-Wunused-result"
int main() {
    expiring_store store;
    transaction tx = store.begin();
    store.mark(tx, "billing", "m-1", settle::stored_time{});
}
#endif
