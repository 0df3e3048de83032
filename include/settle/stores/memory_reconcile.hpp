// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_RECONCILE_HPP
#define SETTLE_STORES_MEMORY_RECONCILE_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/reconcile.hpp>
#include <settle/stores/memory_database.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace memory {

/// settle::reconcile_store in a memory::table keyed by record id. due looks
/// at every record: for tests and tools, not for millions of rows.
class reconcile_table {
public:
    /// The transaction type: the database's.
    using transaction = memory::transaction;

    /// A record set aside by escalate, with the reason.
    struct escalated_record {
        ///@{
        /// A record set aside: the record, why, and when.
        uncertain_record record;
        std::string reason;
        stored_time escalated_at{};
        ///@}
    };

    ///@{
    /// A table in the given database, and its settle::reconcile_store operations on this table (see
    /// the concept for what each guarantees), in transactions of the database it was made with.
    explicit reconcile_table(database& db) : db_(&db), rows_(db) {}

    [[nodiscard]] transaction begin() { return db_->begin(); }

    [[nodiscard]] bool watch(transaction& tx, std::string_view id, stored_time now) {
        settle::detail::check_key_size(id.size(), "memory::reconcile_table::watch", "id");
        return rows_.insert(tx, std::string(id), row{{std::string(id), now, 0, now}, std::nullopt});
    }

    [[nodiscard]] std::vector<uncertain_record> due(transaction& tx, stored_time uncertain_before,
                                                    stored_time now, std::size_t limit) const {
        std::vector<uncertain_record> out;
        rows_.for_each(tx, [&](const std::string&, const row& r) {
            if (!r.escalated && r.record.uncertain_since < uncertain_before &&
                r.record.next_check_at <= now) {
                out.push_back(r.record);
            }
        });
        std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
            return a.uncertain_since < b.uncertain_since;
        });
        if (out.size() > limit) {
            out.resize(limit);
        }
        return out;
    }

    [[nodiscard]] bool forget(transaction& tx, std::string_view id) {
        return rows_.erase(tx, std::string(id));
    }

    [[nodiscard]] bool reschedule(transaction& tx, std::string_view id,
                                  std::uint32_t unknown_answers, stored_time next_check_at) {
        const row* found = rows_.find(tx, std::string(id));
        if (found == nullptr || found->escalated) {
            return false;
        }
        row changed = *found;
        changed.record.unknown_answers = unknown_answers;
        changed.record.next_check_at = next_check_at;
        rows_.put(tx, std::string(id), std::move(changed));
        return true;
    }

    [[nodiscard]] bool escalate(transaction& tx, std::string_view id, std::string_view reason,
                                stored_time now) {
        const row* found = rows_.find(tx, std::string(id));
        if (found == nullptr || found->escalated) {
            return false;
        }
        row changed = *found;
        changed.escalated = escalation{std::string(reason), now};
        rows_.put(tx, std::string(id), std::move(changed));
        return true;
    }
    ///@}

    /// The records set aside, in id order. For operators and tests.
    [[nodiscard]] std::vector<escalated_record> escalated(const transaction& tx) const {
        std::vector<escalated_record> out;
        rows_.for_each(tx, [&](const std::string&, const row& r) {
            if (r.escalated) {
                out.push_back({r.record, r.escalated->reason, r.escalated->at});
            }
        });
        return out;
    }

    /// How many records are kept, watched or escalated.
    [[nodiscard]] std::size_t size(const transaction& tx) const { return rows_.size(tx); }

private:
    struct escalation {
        std::string reason;
        stored_time at;
    };
    struct row {
        uncertain_record record;
        std::optional<escalation> escalated;
    };

    database* db_;
    table<std::string, row> rows_;
};

static_assert(settle::reconcile_store<reconcile_table>);

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_RECONCILE_HPP
