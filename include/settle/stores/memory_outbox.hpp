// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_MEMORY_OUTBOX_HPP
#define SETTLE_STORES_MEMORY_OUTBOX_HPP

#include <settle/version.hpp>

#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/stores/memory_database.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace memory {

namespace detail {

// What a record never changes after append, shared by every version of its
// row, so that a state change does not copy the payload.
struct outbox_body {
    std::string topic;
    std::string ordering_key;
    bytes payload;
    outbox_headers headers;
};

struct outbox_row {
    std::shared_ptr<const outbox_body> body;
    std::uint64_t sequence = 0;
    stored_time created_at{};
    std::uint32_t attempts = 0;
    stored_time next_attempt_at{};
    outbox_status status = outbox_status::pending;
    std::string last_error;
    std::string claim_owner;
    fencing_token claim_token{0};
    stored_time claim_expires_at{};
    stored_time finished_at{};
};

// An ordering key with undelivered (pending, in-flight or dead) records: the
// oldest of them, which alone may be claimed, and the newest.
struct outbox_chain {
    uuid head;
    uuid tail;
};

// (next_attempt_at, sequence) of a claimable record.
using outbox_due_key = std::pair<stored_time, std::uint64_t>;

// uuid order in two integer comparisons instead of sixteen byte comparisons.
struct outbox_uuid_less {
    [[nodiscard]] bool operator()(const uuid& a, const uuid& b) const noexcept {
        const std::uint64_t a_high = settle::detail::uuid_load_be64(a.bytes(), 0);
        const std::uint64_t b_high = settle::detail::uuid_load_be64(b.bytes(), 0);
        if (a_high != b_high) {
            return a_high < b_high;
        }
        return settle::detail::uuid_load_be64(a.bytes(), 1) <
               settle::detail::uuid_load_be64(b.bytes(), 1);
    }
};

}  // namespace detail

/// settle::outbox_appender and settle::outbox_store, with every operator
/// task, in a memory::database: records are rows of
/// memory::tables, so an append commits or rolls back with the caller's own
/// rows in the same database. Thread-safe the way the database is: its
/// transactions run one at a time.
///
/// Costs: append, the outcome operations and requeue make O(log n) lookups
/// and one to four row writes (undo records go to storage the tables reuse;
/// append allocates its rows and its body), and share the payload between a
/// row's versions; claim visits the due records it takes plus the records in
/// flight, O((limit + in flight) log n), and copies each claimed record out. purge, statistics and
/// dead_letters scan every row. Sequences come from a counter that rolled-back appends also
/// advance, so they may have gaps, as SQL sequences do. Nothing survives the
/// process.
class outbox_table {
public:
    ///@{
    /// The settle::outbox_store operations on this table (see the concept for what each
    /// guarantees), in transactions of its database, and what operators read: statistics, one
    /// record, the dead letters.
    using transaction = memory::transaction;

    /// The store keeps its tables in db; both must outlive the store's use.
    /// With outbox_retention::delete_on_delivery, mark_delivered erases the
    /// record instead of keeping it as delivered.
    explicit outbox_table(database& db, outbox_retention retention = outbox_retention::keep)
        : db_(&db), rows_(db), due_(db), chains_(db), links_(db), retention_(retention) {}

    [[nodiscard]] transaction begin() { return db_->begin(); }

    outbox_append_result append(transaction& tx, outbox_message message, stored_time now) {
        if (message.id == uuid{}) {
            throw error(errc::invalid_argument, "memory::outbox_table::append: the id is nil");
        }
        settle::detail::check_key_size(message.ordering_key.size(), "memory::outbox_table::append",
                                       "ordering key");
        if (rows_.find(tx, message.id) != nullptr) {
            return outbox_append_result::duplicate();
        }
        const uuid id = message.id;
        const std::uint64_t sequence = ++last_sequence_;
        auto body = std::make_shared<const detail::outbox_body>(
            detail::outbox_body{std::move(message.topic), std::move(message.ordering_key),
                                std::move(message.payload), std::move(message.headers)});
        bool head = true;
        if (!body->ordering_key.empty()) {
            const detail::outbox_chain* chain = chains_.find(tx, body->ordering_key);
            if (chain == nullptr) {
                (void)chains_.insert(tx, body->ordering_key, {id, id});
            } else {
                head = false;
                const uuid first = chain->head;
                (void)links_.insert(tx, chain->tail, id);
                chains_.put(tx, body->ordering_key, {first, id});
            }
        }
        if (head) {
            (void)due_.insert(tx, {now, sequence}, id);
        }
        detail::outbox_row row;
        row.body = std::move(body);
        row.sequence = sequence;
        row.created_at = now;
        row.next_attempt_at = now;
        (void)rows_.insert(tx, id, std::move(row));
        return outbox_append_result::appended(sequence);
    }

    [[nodiscard]] std::vector<outbox_record> claim(transaction& tx, std::string_view owner,
                                                   stored_time now, stored_time lease_until,
                                                   std::size_t limit) {
        if (owner.empty()) {
            throw error(errc::invalid_argument, "memory::outbox_table::claim: the owner is empty");
        }
        std::vector<outbox_record> claimed;
        if (limit == 0) {
            return claimed;
        }
        (void)due_.size(tx);  // refuses a foreign or ended transaction before due_rows_ is touched
        due_rows_.clear();
        due_.for_each(tx, [&](const detail::outbox_due_key& at, const uuid& id) {
            if (at.first > now) {
                return false;
            }
            const detail::outbox_row& row = *rows_.find(tx, id);
            if (row.status == outbox_status::pending || row.claim_expires_at <= now) {
                due_rows_.emplace_back(id, &row);
            }
            return due_rows_.size() < limit;
        });
        claimed.reserve(due_rows_.size());
        for (const auto& [id, found] : due_rows_) {
            detail::outbox_row row = *found;
            row.status = outbox_status::in_flight;
            if (row.attempts != std::numeric_limits<std::uint32_t>::max()) {
                ++row.attempts;
            }
            row.claim_owner.assign(owner);
            row.claim_token = row.claim_token.next();
            row.claim_expires_at = lease_until;
            claimed.push_back(record_of(id, row));
            rows_.replace(tx, *found, std::move(row));
        }
        return claimed;
    }

    [[nodiscard]] fenced_write mark_delivered(transaction& tx, const uuid& id, fencing_token token,
                                              stored_time now) {
        const detail::outbox_row* found = held(tx, id, token);
        if (found == nullptr) {
            return fenced_write::stale;
        }
        (void)due_.erase(tx, {found->next_attempt_at, found->sequence});
        if (!found->body->ordering_key.empty()) {
            next_in_chain(tx, found->body->ordering_key, id);  // writes no row: found stays valid
        }
        if (retention_ == outbox_retention::delete_on_delivery) {
            (void)rows_.erase(tx, id);
            return fenced_write::applied;
        }
        detail::outbox_row row = *found;
        row.status = outbox_status::delivered;
        row.finished_at = now;
        clear_claim(row);
        rows_.replace(tx, *found, std::move(row));
        return fenced_write::applied;
    }

    [[nodiscard]] fenced_write reschedule(transaction& tx, const uuid& id, fencing_token token,
                                          std::string_view reason, stored_time next_attempt_at) {
        const detail::outbox_row* found = held(tx, id, token);
        if (found == nullptr) {
            return fenced_write::stale;
        }
        detail::outbox_row row = *found;
        (void)due_.erase(tx, {row.next_attempt_at, row.sequence});
        (void)due_.insert(tx, {next_attempt_at, row.sequence}, id);
        row.status = outbox_status::pending;
        row.next_attempt_at = next_attempt_at;
        row.last_error.assign(reason);
        clear_claim(row);
        rows_.replace(tx, *found, std::move(row));
        return fenced_write::applied;
    }

    [[nodiscard]] fenced_write dead_letter(transaction& tx, const uuid& id, fencing_token token,
                                           std::string_view reason, stored_time now) {
        const detail::outbox_row* found = held(tx, id, token);
        if (found == nullptr) {
            return fenced_write::stale;
        }
        detail::outbox_row row = *found;
        (void)due_.erase(tx, {row.next_attempt_at, row.sequence});
        row.status = outbox_status::dead;
        row.last_error.assign(reason);
        row.finished_at = now;
        clear_claim(row);
        rows_.replace(tx, *found,
                      std::move(row));  // still the head of its chain: the key stays blocked
        return fenced_write::applied;
    }

    [[nodiscard]] fenced_write release(transaction& tx, const uuid& id, fencing_token token) {
        const detail::outbox_row* found = held(tx, id, token);
        if (found == nullptr) {
            return fenced_write::stale;
        }
        detail::outbox_row row = *found;
        row.status = outbox_status::pending;  // next_attempt_at, and so its due entry, unchanged
        if (row.attempts > 0) {
            --row.attempts;
        }
        clear_claim(row);
        rows_.replace(tx, *found, std::move(row));
        return fenced_write::applied;
    }

    [[nodiscard]] bool requeue(transaction& tx, const uuid& id, stored_time now) {
        const detail::outbox_row* found = rows_.find(tx, id);
        if (found == nullptr || found->status != outbox_status::dead) {
            return false;
        }
        detail::outbox_row row = *found;
        row.status = outbox_status::pending;
        row.attempts = 0;
        row.next_attempt_at = now;
        row.finished_at = {};
        // A dead letter with an ordering key is the head of its chain.
        (void)due_.insert(tx, {now, row.sequence}, id);
        rows_.replace(tx, *found, std::move(row));
        return true;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, stored_time delivered_before,
                                    std::size_t limit) {
        if (limit == 0) {
            return 0;
        }
        std::vector<uuid> old;
        rows_.for_each(tx, [&](const uuid& id, const detail::outbox_row& row) {
            if (row.status == outbox_status::delivered && row.finished_at < delivered_before) {
                old.push_back(id);
            }
            return old.size() < limit;
        });
        for (const uuid& id : old) {
            (void)rows_.erase(tx, id);
        }
        return old.size();
    }

    [[nodiscard]] outbox_statistics statistics(transaction& tx, stored_time now) const {
        outbox_statistics result;
        std::optional<stored_time> oldest;
        rows_.for_each(tx, [&](const uuid&, const detail::outbox_row& row) {
            switch (row.status) {
            case outbox_status::in_flight:
                if (row.claim_expires_at > now) {
                    ++result.in_flight;
                }
                [[fallthrough]];
            case outbox_status::pending:
                ++result.backlog;
                if (!oldest || row.created_at < *oldest) {
                    oldest = row.created_at;
                }
                break;
            case outbox_status::dead: ++result.dead; break;
            case outbox_status::delivered: break;
            }
        });
        if (oldest && *oldest < now) {
            result.oldest_pending_age = now - *oldest;
        }
        return result;
    }

    [[nodiscard]] std::optional<outbox_record> find(const transaction& tx, const uuid& id) const {
        const detail::outbox_row* found = rows_.find(tx, id);
        return found == nullptr ? std::nullopt
                                : std::optional<outbox_record>(record_of(id, *found));
    }

    [[nodiscard]] std::vector<outbox_record> dead_letters(const transaction& tx,
                                                          std::uint64_t after_sequence,
                                                          std::size_t limit) const {
        std::vector<std::pair<std::uint64_t, uuid>> dead;
        rows_.for_each(tx, [&](const uuid& id, const detail::outbox_row& row) {
            if (row.status == outbox_status::dead && row.sequence > after_sequence) {
                dead.emplace_back(row.sequence, id);
            }
        });
        std::sort(dead.begin(), dead.end());
        std::vector<outbox_record> result;
        for (std::size_t i = 0; i < dead.size() && i < limit; ++i) {
            result.push_back(record_of(dead[i].second, *rows_.find(tx, dead[i].second)));
        }
        return result;
    }
    ///@}

    /// How many records are stored, whatever their status.
    [[nodiscard]] std::size_t size(const transaction& tx) const { return rows_.size(tx); }

private:
    [[nodiscard]] static outbox_record record_of(const uuid& id, const detail::outbox_row& row) {
        return outbox_record{id,
                             row.sequence,
                             row.body->topic,
                             row.body->ordering_key,
                             row.body->payload,
                             row.body->headers,
                             row.created_at,
                             row.attempts,
                             row.next_attempt_at,
                             row.status,
                             row.last_error,
                             row.claim_owner,
                             row.claim_token,
                             row.claim_expires_at,
                             row.finished_at};
    }

    static void clear_claim(detail::outbox_row& row) noexcept {
        row.claim_owner.clear();
        row.claim_expires_at = {};
    }

    // The row, if it is in flight under the claim `token`.
    [[nodiscard]] const detail::outbox_row* held(const transaction& tx, const uuid& id,
                                                 fencing_token token) const {
        const detail::outbox_row* found = rows_.find(tx, id);
        if (found == nullptr || found->status != outbox_status::in_flight ||
            found->claim_token != token) {
            return nullptr;
        }
        return found;
    }

    // The head of `key`'s chain, `id`, was delivered: its successor, if any,
    // becomes the head and claimable.
    void next_in_chain(transaction& tx, const std::string& key, const uuid& id) {
        const uuid* next = links_.find(tx, id);
        if (next == nullptr) {
            (void)chains_.erase(tx, key);
            return;
        }
        const uuid successor = *next;
        (void)links_.erase(tx, id);
        const uuid tail = chains_.find(tx, key)->tail;
        chains_.put(tx, key, {successor, tail});
        const detail::outbox_row& after = *rows_.find(tx, successor);
        (void)due_.insert(tx, {after.next_attempt_at, after.sequence}, successor);
    }

    database* db_;
    table<uuid, detail::outbox_row, detail::outbox_uuid_less> rows_;
    // Every pending or in-flight record that may be claimed once due: those
    // without an ordering key, and the head of each chain.
    table<detail::outbox_due_key, uuid> due_;
    table<std::string, detail::outbox_chain> chains_;
    // A record with an ordering key -> the next one of that key.
    table<uuid, uuid, detail::outbox_uuid_less> links_;
    std::uint64_t last_sequence_ = 0;  // written only inside this database's transactions
    outbox_retention retention_;
    // What claim takes, kept from one claim to the next so that a claim
    // allocates only the records it returns; used inside transactions only.
    std::vector<std::pair<uuid, const detail::outbox_row*>> due_rows_;
};

static_assert(settle::outbox_appender<outbox_table>);
static_assert(settle::outbox_store<outbox_table>);

/// settle::inbox_store and settle::purgeable_inbox_store in a
/// memory::database: a mark commits or rolls back with the consumer's own rows
/// in the same database. mark costs an O(log n) lookup and, the first time,
/// one row insert; purge scans every row.
class inbox_table {
public:
    ///@{
    /// The settle::inbox_store operations on this table (see the concept for what each guarantees),
    /// in transactions of the database it was made with; size() counts the records.
    using transaction = memory::transaction;

    explicit inbox_table(database& db) : db_(&db), rows_(db) {}

    [[nodiscard]] transaction begin() { return db_->begin(); }

    [[nodiscard]] inbox_mark mark(transaction& tx, std::string_view consumer,
                                  std::string_view message_id, stored_time now) {
        settle::detail::check_key_size(consumer.size(), "memory::inbox_table::mark", "consumer");
        settle::detail::check_key_size(message_id.size(), "memory::inbox_table::mark",
                                       "message id");
        return rows_.insert(tx, {std::string(consumer), std::string(message_id)}, now)
                   ? inbox_mark::first_time
                   : inbox_mark::duplicate;
    }

    [[nodiscard]] std::size_t purge(transaction& tx, std::string_view consumer,
                                    stored_time applied_before, std::size_t limit) {
        if (limit == 0) {
            return 0;
        }
        std::vector<std::pair<std::string, std::string>> old;
        rows_.for_each(tx, [&](const std::pair<std::string, std::string>& key, stored_time at) {
            if (key.first == consumer && at < applied_before) {
                old.push_back(key);
            }
            return old.size() < limit;
        });
        for (const auto& key : old) {
            (void)rows_.erase(tx, key);
        }
        return old.size();
    }

    /// Whether (consumer, message_id) is recorded. For inspection and tests.
    [[nodiscard]] bool contains(const transaction& tx, std::string_view consumer,
                                std::string_view message_id) const {
        return rows_.find(tx, {std::string(consumer), std::string(message_id)}) != nullptr;
    }

    [[nodiscard]] std::size_t size(const transaction& tx) const { return rows_.size(tx); }
    ///@}

private:
    database* db_;
    table<std::pair<std::string, std::string>, stored_time> rows_;
};

static_assert(settle::purgeable_inbox_store<inbox_table>);

/// A settle::outbox_publisher that keeps what it delivers, in order: for
/// tests, examples and benchmarks. Answers delivered unless given an answer
/// function, which it calls (outside its lock) for every record. Thread-safe.
class publisher {
public:
    ///@{
    /// The function that answers each publish, and a publisher made from it.
    using answer_function = std::function<publish_result(const outbox_record&)>;

    publisher() = default;
    explicit publisher(answer_function answer) : answer_(std::move(answer)) {}
    ///@}
    publisher(const publisher&) = delete;
    publisher& operator=(const publisher&) = delete;

    /// Keeps a copy of the record when the answer is delivered.
    [[nodiscard]] publish_result publish(const outbox_record& record) {
        if (!answer_) {
            const std::lock_guard lock(mutex_);
            ++attempts_;
            delivered_.push_back(record);
            return publish_result::delivered();
        }
        {
            const std::lock_guard lock(mutex_);
            ++attempts_;
        }
        publish_result result = answer_(record);
        if (result.is_delivered()) {
            const std::lock_guard lock(mutex_);
            delivered_.push_back(record);
        }
        return result;
    }

    /// The records delivered so far, oldest first.
    [[nodiscard]] std::vector<outbox_record> published() const {
        const std::lock_guard lock(mutex_);
        return delivered_;
    }

    /// Hands over the records delivered so far and forgets them.
    [[nodiscard]] std::vector<outbox_record> take() {
        const std::lock_guard lock(mutex_);
        return std::exchange(delivered_, {});
    }

    /// Forgets the records delivered so far, keeping their storage for the
    /// next ones (a long test or a benchmark reuses it).
    void clear() {
        const std::lock_guard lock(mutex_);
        delivered_.clear();
    }

    /// How many records were delivered (and not taken or cleared).
    [[nodiscard]] std::size_t size() const {
        const std::lock_guard lock(mutex_);
        return delivered_.size();
    }

    /// Every call to publish, whatever it answered.
    [[nodiscard]] std::uint64_t attempts() const {
        const std::lock_guard lock(mutex_);
        return attempts_;
    }

private:
    answer_function answer_;
    mutable std::mutex mutex_;
    std::vector<outbox_record> delivered_;
    std::uint64_t attempts_ = 0;
};

static_assert(settle::outbox_publisher<publisher>);

}  // namespace memory

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_MEMORY_OUTBOX_HPP
