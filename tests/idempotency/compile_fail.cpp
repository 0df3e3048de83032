// Stores that break settle::idempotency_store, one requirement each: the
// first error must name the member (tests/CMakeLists.txt runs every case).
#include <settle/clock.hpp>
#include <settle/idempotency.hpp>

#include <cstddef>

namespace {

struct transaction {
    void commit();
};

// Everything settle::idempotency_guard::run and claim need, and no purge:
// the records of such a backend expire by themselves.
struct expiring_store {
    using transaction = ::transaction;
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

struct purging_store : expiring_store {
    std::size_t purge(transaction&, settle::stored_time, std::size_t);
};

#if SETTLE_CASE == 0
using store = purging_store;
#elif SETTLE_CASE == 1
struct store {  // no member type `transaction`
    ::transaction begin();
};
#elif SETTLE_CASE == 2
struct store {  // no begin()
    using transaction = ::transaction;
};
#elif SETTLE_CASE == 3
struct store {  // everything but claim
    using transaction = ::transaction;
    transaction begin();
    settle::fenced_write complete(transaction&, const settle::idempotency_scope&,
                                  const settle::idempotency_key&, settle::fencing_token,
                                  settle::idempotency_response, settle::stored_time);
    settle::fenced_write abandon(transaction&, const settle::idempotency_scope&,
                                 const settle::idempotency_key&, settle::fencing_token);
};
#elif SETTLE_CASE == 4
struct store : expiring_store {  // complete answers a bool instead of settle::fenced_write
    bool complete(transaction&, const settle::idempotency_scope&, const settle::idempotency_key&,
                  settle::fencing_token, settle::idempotency_response, settle::stored_time);
};
#elif SETTLE_CASE == 5
using store = expiring_store;  // guard.purge below needs purge
#endif

}  // namespace

std::size_t use(store& s, settle::manual_clock& clock, transaction& tx) {
    settle::idempotency_guard guard(s, clock);
#if SETTLE_CASE == 0 || SETTLE_CASE == 5
    return guard.purge(tx, 100);
#else
    (void)tx;
    return sizeof(guard);
#endif
}
