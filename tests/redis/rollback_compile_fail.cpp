// A store that cannot roll back (its transaction declares rolls_back = false,
// as Redis's does) is taken where each operation only needs to be atomic and
// refused at compile time where a block needs rollback; the first error must
// say so (tests/CMakeLists.txt runs every case). Case 0 is the control.
#include <settle/clock.hpp>
#include <settle/idempotency.hpp>
#include <settle/inbox.hpp>
#include <settle/lease.hpp>
#include <settle/optimistic.hpp>
#include <settle/outbox.hpp>
#include <settle/versioned.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace {

struct rolling_back {
    void commit();
};

struct committing {  // every operation commits on its own
    static constexpr bool rolls_back = false;
    void commit();
};

// Every operation of the stores below, declared only: the cases are
// compiled, never linked.
template <class Tx, class T>
struct versioned_store {
    using key_type = std::string;
    using value_type = T;
    using transaction = Tx;
    transaction begin();
    std::optional<settle::versioned<T>> load(transaction&, const std::string&);
    settle::write_result<T> insert(transaction&, const std::string&, T&&);
    settle::write_result<T> compare_and_set(transaction&, const std::string&, settle::version_stamp,
                                            T&&);
    settle::write_result<T> erase(transaction&, const std::string&, settle::version_stamp);
};

template <class Tx>
struct idempotency_store {
    using transaction = Tx;
    transaction begin();
    settle::idempotency_store_claim claim(transaction&, const settle::idempotency_scope&,
                                          const settle::idempotency_key&,
                                          const settle::sha256_digest&, settle::stored_time,
                                          settle::stored_time);
    settle::fenced_write complete(transaction&, const settle::idempotency_scope&,
                                  const settle::idempotency_key&, settle::fencing_token,
                                  settle::idempotency_response, settle::stored_time);
    settle::fenced_write abandon(transaction&, const settle::idempotency_scope&,
                                 const settle::idempotency_key&, settle::fencing_token);
};

template <class Tx>
struct appender {
    using transaction = Tx;
    transaction begin();
    settle::outbox_append_result append(transaction&, settle::outbox_message, settle::stored_time);
};

template <class Tx>
struct inbox {
    using transaction = Tx;
    transaction begin();
    settle::inbox_mark mark(transaction&, std::string_view, std::string_view, settle::stored_time);
};

// What needs only atomic operations takes a store that cannot roll back.
static_assert(settle::atomic_operations<appender<committing>>);
static_assert(!settle::transactional<appender<committing>>);
static_assert(settle::transactional<appender<rolling_back>>);
static_assert(settle::idempotency_store<idempotency_store<committing>>);
static_assert(settle::versioned_store<versioned_store<committing, int>>);
static_assert(settle::lease_store<versioned_store<committing, settle::lease_record>>);
static_assert(settle::fence_store<versioned_store<committing, settle::fencing_token>>);
static_assert(!settle::outbox_appender<appender<committing>>);
static_assert(!settle::inbox_store<inbox<committing>>);

#if SETTLE_CASE == 1  // the outbox appends in the business transaction
using outbox_tx = committing;
#else
using outbox_tx = rolling_back;
#endif
#if SETTLE_CASE == 2  // the inbox applies the effect with its mark
using inbox_tx = committing;
#else
using inbox_tx = rolling_back;
#endif

}  // namespace

std::size_t use(settle::manual_clock& clock) {
    idempotency_store<committing> records;
    settle::idempotency_guard guard(records, clock);
    versioned_store<committing, settle::lease_record> leases;
    versioned_store<committing, settle::fencing_token> fences;
    settle::leases grants(leases, clock);
    settle::fence fence(fences);
    versioned_store<committing, int> counters;
    const auto bumped = settle::in_transaction(counters, [](committing& tx) {
        versioned_store<committing, int> store;
        return settle::optimistic_update(store, tx, std::string("k"),
                                         [](const int& n) { return n + 1; });
    });
    appender<outbox_tx> outbox_store;
    settle::outbox outbox(outbox_store, clock);
    inbox<inbox_tx> inbox_store;
    settle::idempotent_consumer consumer(inbox_store, clock, {.consumer = "billing"});
    return sizeof(guard) + sizeof(grants) + sizeof(fence) + sizeof(bumped) + sizeof(outbox) +
           sizeof(consumer);
}
