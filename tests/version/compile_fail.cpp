// Stores that break settle::versioned_store or its lease and fence forms, one
// requirement each: the first error must name the member (tests/CMakeLists.txt
// runs every case).
#include <settle/clock.hpp>
#include <settle/lease.hpp>
#include <settle/versioned.hpp>

#include <optional>
#include <string>

namespace {

struct transaction {
    void commit();
};

template <class T>
struct full_store {
    using key_type = std::string;
    using value_type = T;
    using transaction = ::transaction;
    transaction begin();
    std::optional<settle::versioned<T>> load(transaction&, const std::string&);
    settle::write_result<T> insert(transaction&, const std::string&, T&&);
    settle::write_result<T> compare_and_set(transaction&, const std::string&, settle::version_stamp,
                                            T&&);
    settle::write_result<T> erase(transaction&, const std::string&, settle::version_stamp);
};

#if SETTLE_CASE == 0
using lease_store = full_store<settle::lease_record>;
using fence_store = full_store<settle::fencing_token>;
#elif SETTLE_CASE == 1
struct lease_store {  // everything but compare_and_set
    using key_type = std::string;
    using value_type = settle::lease_record;
    using transaction = ::transaction;
    transaction begin();
    std::optional<settle::versioned<value_type>> load(transaction&, const std::string&);
    settle::write_result<value_type> insert(transaction&, const std::string&, value_type&&);
    settle::write_result<value_type> erase(transaction&, const std::string&, settle::version_stamp);
};
using fence_store = full_store<settle::fencing_token>;
#elif SETTLE_CASE == 2
struct lease_store : full_store<settle::lease_record> {  // load answers the bare value
    settle::lease_record load(transaction&, const std::string&);
};
using fence_store = full_store<settle::fencing_token>;
#elif SETTLE_CASE == 3
using lease_store = full_store<std::string>;  // not lease records
using fence_store = full_store<settle::fencing_token>;
#elif SETTLE_CASE == 4
using lease_store = full_store<settle::lease_record>;
using fence_store = full_store<settle::lease_record>;  // not fencing tokens
#elif SETTLE_CASE == 5
struct lease_store {  // no key_type, no value_type
    using transaction = ::transaction;
    transaction begin();
};
using fence_store = full_store<settle::fencing_token>;
#endif

}  // namespace

std::size_t use(lease_store& leases, fence_store& fences, settle::manual_clock& clock) {
    settle::leases grants(leases, clock);
    settle::fence guard(fences);
    return sizeof(grants) + sizeof(guard);
}
