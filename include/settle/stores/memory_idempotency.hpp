// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_IDEMPOTENCY_HPP
#define SETTLE_STORES_MEMORY_IDEMPOTENCY_HPP

#include <settle/version.hpp>

#include <settle/idempotency.hpp>
#include <settle/stores/memory_database.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace memory {

namespace detail {
// (tenant, operation, key) as three fields, so no two scopes can run together,
// led by a hash of all three: most comparisons in the table's tree then stop
// at one integer instead of reading the strings. The order is arbitrary.
// A lookup compares a view of the three parts, so it copies no string.
struct idempotency_row_view {
    std::size_t hash;
    std::string_view tenant;
    std::string_view operation;
    std::string_view key;

    [[nodiscard]] static idempotency_row_view of(std::string_view t, std::string_view o,
                                                 std::string_view k) {
        return {hash_of(t, o, k), t, o, k};
    }

    friend std::strong_ordering operator<=>(const idempotency_row_view& a,
                                            const idempotency_row_view& b) noexcept {
        if (a.hash != b.hash) {
            return a.hash <=> b.hash;
        }
        if (const int c = a.key.compare(b.key); c != 0) {
            return c <=> 0;
        }
        if (const int c = a.tenant.compare(b.tenant); c != 0) {
            return c <=> 0;
        }
        return a.operation.compare(b.operation) <=> 0;
    }

private:
    static std::size_t hash_of(std::string_view t, std::string_view o, std::string_view k) {
        const std::hash<std::string_view> h;
        std::size_t seed = h(k);
        for (const std::string_view part : {t, o}) {
            seed ^= h(part) + static_cast<std::size_t>(0x9e3779b97f4a7c15ULL) + (seed << 6) +
                    (seed >> 2);
        }
        return seed;
    }
};

// The stored key: the three parts owned, and the hash of the view it was made from.
struct idempotency_row_id {
    std::size_t hash;
    std::string tenant;
    std::string operation;
    std::string key;

    explicit idempotency_row_id(const idempotency_row_view& v)
        : hash(v.hash), tenant(v.tenant), operation(v.operation), key(v.key) {}

    [[nodiscard]] idempotency_row_view view() const noexcept {
        return {hash, tenant, operation, key};
    }
};

// Orders stored keys and views alike.
struct idempotency_row_less {
    using is_transparent = void;

    [[nodiscard]] static idempotency_row_view view(const idempotency_row_view& v) noexcept {
        return v;
    }
    [[nodiscard]] static idempotency_row_view view(const idempotency_row_id& id) noexcept {
        return id.view();
    }
    template <class A, class B>
    [[nodiscard]] bool operator()(const A& a, const B& b) const noexcept {
        return view(a) < view(b);
    }
};
}  // namespace detail

/// settle::idempotency_store in a memory::database: its records are rows of a
/// memory::table, so a completion commits or rolls back with the caller's own
/// rows in the same database. Thread-safe the way the database is: its
/// transactions run one at a time. claim, complete and abandon cost an
/// O(log n) lookup that copies no key and one row write; a new key allocates
/// its row and its copy of the key, and complete copies the record once;
/// purge scans every row to remove at most `limit`.
/// Tokens come from one counter per store, so they never repeat, even after
/// purge. Nothing survives the process.
class idempotency_table {
public:
    ///@{
    /// The settle::idempotency_store operations on this table (see the concept for what each
    /// guarantees), in transactions of its database.
    using transaction = memory::transaction;

    /// The store keeps its table in db; both must outlive the store's use.
    explicit idempotency_table(database& db) : db_(&db), rows_(db) {}

    [[nodiscard]] transaction begin() { return db_->begin(); }

    [[nodiscard]] idempotency_store_claim claim(transaction& tx, const idempotency_scope& scope,
                                                const idempotency_key& key,
                                                const sha256_digest& fingerprint, stored_time now,
                                                stored_time lease_end) {
        settle::detail::check_key_size(scope.tenant.size(), "memory::idempotency_table::claim",
                                       "tenant");
        settle::detail::check_key_size(scope.operation.size(), "memory::idempotency_table::claim",
                                       "operation");
        const detail::idempotency_row_view id = row_id(scope, key);
        const idempotency_record* found = rows_.find(tx, id);
        if (found != nullptr && found->live(now)) {
            return {false, *found};
        }
        idempotency_record record{idempotency_state::in_progress,
                                  fingerprint,
                                  fencing_token(++last_token_),
                                  now,
                                  lease_end,
                                  {}};
        if (found == nullptr) {
            (void)rows_.insert(tx, detail::idempotency_row_id(id), record);
        } else {
            rows_.replace(tx, *found, record);  // takes the expired record over
        }
        return {true, std::move(record)};
    }

    [[nodiscard]] fenced_write complete(transaction& tx, const idempotency_scope& scope,
                                        const idempotency_key& key, fencing_token token,
                                        idempotency_response response, stored_time retain_until) {
        const idempotency_record* found = rows_.find(tx, row_id(scope, key));
        if (!owned(found, token)) {
            return fenced_write::stale;
        }
        idempotency_record record = *found;
        record.state = idempotency_state::completed;
        record.expires_at = retain_until;
        record.response = std::move(response);
        rows_.replace(tx, *found, std::move(record));
        return fenced_write::applied;
    }

    [[nodiscard]] fenced_write abandon(transaction& tx, const idempotency_scope& scope,
                                       const idempotency_key& key, fencing_token token) {
        const detail::idempotency_row_view id = row_id(scope, key);
        if (!owned(rows_.find(tx, id), token)) {
            return fenced_write::stale;
        }
        (void)rows_.erase(tx, id);
        return fenced_write::applied;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time now, std::size_t limit) {
        if (limit == 0) {
            return 0;
        }
        // Views of the stored keys: erasing one row leaves the others' keys where they are.
        std::vector<detail::idempotency_row_view> expired;
        rows_.for_each(tx,
                       [&](const detail::idempotency_row_id& id, const idempotency_record& record) {
                           if (!record.live(now)) {
                               expired.push_back(id.view());
                           }
                           return expired.size() < limit;
                       });
        for (const auto& id : expired) {
            (void)rows_.erase(tx, id);
        }
        return expired.size();
    }
    ///@}

    /// The record stored for (scope, key), live or not, or nullopt. For
    /// inspection and tests; the guard never needs it.
    [[nodiscard]] std::optional<idempotency_record> find(const transaction& tx,
                                                         const idempotency_scope& scope,
                                                         const idempotency_key& key) const {
        const idempotency_record* found = rows_.find(tx, row_id(scope, key));
        return found == nullptr ? std::nullopt : std::optional<idempotency_record>(*found);
    }

    /// How many records are stored, live or not.
    [[nodiscard]] std::size_t size(const transaction& tx) const { return rows_.size(tx); }

private:
    static detail::idempotency_row_view row_id(const idempotency_scope& scope,
                                               const idempotency_key& key) {
        return detail::idempotency_row_view::of(scope.tenant, scope.operation, key.value());
    }

    static bool owned(const idempotency_record* record, fencing_token token) noexcept {
        return record != nullptr && record->state == idempotency_state::in_progress &&
               record->token == token;
    }

    database* db_;
    table<detail::idempotency_row_id, idempotency_record, detail::idempotency_row_less> rows_;
    std::uint64_t last_token_ = 0;  // written only inside this database's transactions
};

static_assert(settle::purgeable_idempotency_store<idempotency_table>);

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_IDEMPOTENCY_HPP
