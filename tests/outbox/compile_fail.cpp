// Stores that miss a requirement of the outbox's concepts must not compile,
// and the first error must name the member. Built by tests/compile_fail.cmake
// once per SETTLE_CASE; case 0 is the control and must compile, so a broken
// include path cannot pass for a refusal.
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace {

struct transaction {
    void commit();
};

// Every operation of an appender and a relay's store, declared only: the
// cases are compiled, never linked.
struct appender {
    using transaction = ::transaction;
    transaction begin();
    settle::outbox_append_result append(transaction&, settle::outbox_message, settle::stored_time);
};

struct relay_store {
    using transaction = ::transaction;
    transaction begin();
    std::vector<settle::outbox_record> claim(transaction&, std::string_view owner,
                                             settle::stored_time now,
                                             settle::stored_time lease_until, std::size_t limit);
#if SETTLE_CASE == 3  // fenced by the owner's name instead of the claim's token
    settle::fenced_write mark_delivered(transaction&, const settle::uuid&, std::string_view owner,
                                        settle::stored_time now);
#else
    settle::fenced_write mark_delivered(transaction&, const settle::uuid&, settle::fencing_token,
                                        settle::stored_time now);
#endif
    settle::fenced_write reschedule(transaction&, const settle::uuid&, settle::fencing_token,
                                    std::string_view error, settle::stored_time next_attempt_at);
    settle::fenced_write dead_letter(transaction&, const settle::uuid&, settle::fencing_token,
                                     std::string_view reason, settle::stored_time now);
    settle::fenced_write release(transaction&, const settle::uuid&, settle::fencing_token);
};

struct publisher {
    settle::publish_result publish(const settle::outbox_record&);
};

struct statistics_observer {
    void on_statistics(const settle::outbox_statistics&);
};

template <class Store, class Observer = settle::no_outbox_observer>
using relay = settle::outbox_relay<Store, publisher, settle::constant_backoff, settle::manual_clock,
                                   Observer>;

}  // namespace

#if SETTLE_CASE == 0  // an appender appends; a relay's store relays
std::size_t control(settle::outbox<appender, settle::manual_clock>& outbox, transaction& tx) {
    return sizeof(relay<relay_store>) + outbox.append(tx, settle::outbox_message{}).sequence();
}
#elif SETTLE_CASE == 1  // an outbox over a store without append
std::size_t fails() {
    return sizeof(settle::outbox<relay_store, settle::manual_clock>);
}
#elif SETTLE_CASE == 2  // a relay over a store without claim
std::size_t fails() {
    return sizeof(relay<appender>);
}
#elif SETTLE_CASE == 3  // a relay over a store whose mark_delivered takes an owner name
std::size_t fails() {
    return sizeof(relay<relay_store>);
}
#elif SETTLE_CASE == 4  // purge over a store that only appends
std::size_t fails(settle::outbox<appender, settle::manual_clock>& outbox, transaction& tx) {
    return outbox.purge(tx, 100);
}
#elif SETTLE_CASE == 5  // an observer that takes statistics, over a store without them
std::size_t fails() {
    return sizeof(relay<relay_store, statistics_observer>);
}
#elif SETTLE_CASE == 6  // a store without transactions
struct no_transactions {};
std::size_t fails() {
    return sizeof(settle::outbox<no_transactions, settle::manual_clock>);
}
#endif
