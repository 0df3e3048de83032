// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_SAGA_HPP
#define SETTLE_STORES_MEMORY_SAGA_HPP

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/saga.hpp>
#include <settle/stores/memory_database.hpp>
#include <settle/token.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace memory {

/// settle::saga_store and settle::purgeable_saga_store in a memory::table
/// keyed by saga id. Transactions on one database run one at a time, so every
/// compare-and-set sees the latest version. due and purge look at every saga:
/// for tests and tools, not for millions of rows.
class saga_table {
public:
    /// The transaction type of the settle::saga_store this table models.
    using transaction = memory::transaction;

    /// A table of sagas kept in `db`, changed in its transactions.
    explicit saga_table(database& db) : db_(&db), rows_(db) {}

    ///@{
    /// The settle::saga_store operations on this table (see the concept for what each
    /// guarantees), in transactions of the database it was made with.
    [[nodiscard]] transaction begin() { return db_->begin(); }

    [[nodiscard]] bool create(transaction& tx, std::string_view id, std::string_view type,
                              std::string_view data, stored_time next_run_at) {
        settle::detail::check_key_size(id.size(), "memory::saga_table::create", "saga id");
        settle::detail::check_key_size(type.size(), "memory::saga_table::create", "saga type");
        std::string key(id);
        saga_record record;
        record.id = key;
        record.type = std::string(type);
        record.data = std::string(data);
        record.next_run_at = next_run_at;
        return rows_.insert(tx, key, std::move(record));
    }

    [[nodiscard]] std::optional<saga_record> load(transaction& tx, std::string_view id) const {
        const saga_record* found = rows_.find(tx, std::string(id));
        return found != nullptr ? std::optional(*found) : std::nullopt;
    }

    [[nodiscard]] fenced_write update(transaction& tx, const saga_record& record) {
        const saga_record* found = rows_.find(tx, record.id);
        if (found == nullptr || found->version != record.version) {
            return fenced_write::stale;
        }
        saga_record changed = *found;
        changed.status = record.status;
        changed.step = record.step;
        changed.attempts = record.attempts;
        changed.next_run_at = record.next_run_at;
        changed.last_error = record.last_error;
        changed.version = record.version.next();
        rows_.put(tx, record.id, std::move(changed));
        return fenced_write::applied;
    }

    [[nodiscard]] std::vector<saga_record> due(transaction& tx, std::string_view type,
                                               stored_time now, std::size_t limit) const {
        std::vector<saga_record> out;
        rows_.for_each(tx, [&](const std::string&, const saga_record& r) {
            if (r.type == type && !is_ended(r.status) && r.next_run_at <= now) {
                out.push_back(r);
            }
        });
        std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
            return a.next_run_at < b.next_run_at;
        });
        if (out.size() > limit) {
            out.resize(limit);
        }
        return out;
    }

    [[nodiscard]] std::size_t purge(transaction& tx,
                                    std::chrono::system_clock::time_point ended_before,
                                    std::size_t limit) {
        if (limit == 0) {
            return 0;
        }
        std::vector<std::string> ended;
        rows_.for_each(tx, [&](const std::string& id, const saga_record& r) {
            if ((r.status == saga_status::completed || r.status == saga_status::compensated) &&
                r.next_run_at < ended_before) {
                ended.push_back(id);
            }
            return ended.size() < limit;
        });
        for (const std::string& id : ended) {
            (void)rows_.erase(tx, id);
        }
        return ended.size();
    }
    ///@}

    /// How many sagas are kept, ended or not. For inspection and tests.
    [[nodiscard]] std::size_t size(const transaction& tx) const { return rows_.size(tx); }

private:
    database* db_;
    table<std::string, saga_record> rows_;
};

static_assert(settle::purgeable_saga_store<saga_table>);

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_SAGA_HPP
