// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_BARRIER_HPP
#define SETTLE_STORES_MEMORY_BARRIER_HPP

#include <settle/version.hpp>

#include <settle/barrier.hpp>
#include <settle/clock.hpp>
#include <settle/stores/memory_database.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace memory {

/// settle::barrier_store and settle::purgeable_barrier_store in a
/// memory::table of branches keyed by (transaction id, branch id). Transactions
/// on one database run one at a time, so every enter sees a settled branch.
/// purge looks at every branch: for tests and tools, not for millions of rows.
class barrier_table {
public:
    ///@{
    /// The settle::barrier_store operations on this table (see the concept for what each
    /// guarantees), in transactions of the database it was made with.
    using transaction = memory::transaction;

    explicit barrier_table(database& db) : db_(&db), rows_(db) {}

    [[nodiscard]] transaction begin() { return db_->begin(); }

    [[nodiscard]] barrier_outcome enter(transaction& tx, std::string_view transaction_id,
                                        std::string_view branch_id, barrier_phase phase,
                                        stored_time now) {
        settle::detail::check_key_size(transaction_id.size(), "memory::barrier_table::enter",
                                       "transaction id");
        settle::detail::check_key_size(branch_id.size(), "memory::barrier_table::enter",
                                       "branch id");
        key_type key{std::string(transaction_id), std::string(branch_id)};
        const row* found = rows_.find(tx, key);
        const settle::detail::barrier_step step = settle::detail::step(
            found != nullptr ? std::optional(found->state) : std::nullopt, phase);
        if (step.next) {
            rows_.put(tx, key, row{*step.next, now});
        }
        return step.outcome;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time ended_before, std::size_t limit) {
        if (limit == 0) {
            return 0;
        }
        std::vector<key_type> ended;
        rows_.for_each(tx, [&](const key_type& key, const row& r) {
            if (r.state != settle::detail::barrier_state::tried && r.changed_at < ended_before) {
                ended.push_back(key);
            }
            return ended.size() < limit;
        });
        for (const key_type& key : ended) {
            (void)rows_.erase(tx, key);
        }
        return ended.size();
    }
    ///@}

    /// How many branches are recorded, ended or not. For inspection and tests.
    [[nodiscard]] std::size_t size(const transaction& tx) const { return rows_.size(tx); }

private:
    using key_type = std::pair<std::string, std::string>;
    struct row {
        settle::detail::barrier_state state;
        stored_time changed_at;
    };

    database* db_;
    table<key_type, row> rows_;
};

static_assert(settle::purgeable_barrier_store<barrier_table>);

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_BARRIER_HPP
