// The conformance suites of outbox_store and inbox_store, run against the
// in-memory backends and against broken ones that must fail the right cases.
#include <settle/testing/inbox_store_suite.hpp>
#include <settle/testing/outbox_store_suite.hpp>

#include "settle_test.hpp"

#include <settle/stores/memory.hpp>
#include <settle/stores/memory_outbox.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct outbox_fixture {
    settle::memory::database db;
    settle::memory::outbox_table store{db};
};

struct inbox_fixture {
    settle::memory::database db;
    settle::memory::inbox_table store{db};
};

// A classic bug: outcomes check that the record is in flight but not whose
// claim it is, so a relay whose lease was taken over overwrites the outcome.
struct unfenced_store : settle::memory::outbox_table {
    using base = settle::memory::outbox_table;
    using base::base;

    settle::fencing_token holder(transaction& tx, const settle::uuid& id) const {
        const auto record = find(tx, id);
        return record ? record->claim_token : settle::fencing_token(0);
    }
    settle::fenced_write mark_delivered(transaction& tx, const settle::uuid& id,
                                        settle::fencing_token, settle::stored_time now) {
        return base::mark_delivered(tx, id, holder(tx, id), now);
    }
    settle::fenced_write reschedule(transaction& tx, const settle::uuid& id, settle::fencing_token,
                                    std::string_view error, settle::stored_time at) {
        return base::reschedule(tx, id, holder(tx, id), error, at);
    }
    settle::fenced_write dead_letter(transaction& tx, const settle::uuid& id, settle::fencing_token,
                                     std::string_view reason, settle::stored_time now) {
        return base::dead_letter(tx, id, holder(tx, id), reason, now);
    }
    settle::fenced_write release(transaction& tx, const settle::uuid& id, settle::fencing_token) {
        return base::release(tx, id, holder(tx, id));
    }
};

// The bug fencing tokens fix: outcomes fenced by the relay's owner name, so
// a claim taken over under the same name (a restarted relay, two relays
// configured alike) does not fence off the earlier one.
struct owner_fenced_store : settle::memory::outbox_table {
    using base = settle::memory::outbox_table;
    using base::base;
    std::map<std::pair<settle::uuid, std::uint64_t>, std::string> owners;  // of every claim

    std::vector<settle::outbox_record> claim(transaction& tx, std::string_view owner,
                                             settle::stored_time now,
                                             settle::stored_time lease_until, std::size_t limit) {
        auto claimed = base::claim(tx, owner, now, lease_until, limit);
        for (const auto& r : claimed) {
            owners[{r.id, r.claim_token.value()}] = std::string(owner);
        }
        return claimed;
    }
    // The current claim's token when it was made for the owner of `token`'s claim.
    settle::fencing_token by_owner(transaction& tx, const settle::uuid& id,
                                   settle::fencing_token token) const {
        const auto record = find(tx, id);
        const auto owner = owners.find({id, token.value()});
        if (record && owner != owners.end() && record->claim_owner == owner->second) {
            return record->claim_token;
        }
        return token;
    }
    settle::fenced_write mark_delivered(transaction& tx, const settle::uuid& id,
                                        settle::fencing_token token, settle::stored_time now) {
        return base::mark_delivered(tx, id, by_owner(tx, id, token), now);
    }
    settle::fenced_write reschedule(transaction& tx, const settle::uuid& id,
                                    settle::fencing_token token, std::string_view error,
                                    settle::stored_time at) {
        return base::reschedule(tx, id, by_owner(tx, id, token), error, at);
    }
    settle::fenced_write dead_letter(transaction& tx, const settle::uuid& id,
                                     settle::fencing_token token, std::string_view reason,
                                     settle::stored_time now) {
        return base::dead_letter(tx, id, by_owner(tx, id, token), reason, now);
    }
    settle::fenced_write release(transaction& tx, const settle::uuid& id,
                                 settle::fencing_token token) {
        return base::release(tx, id, by_owner(tx, id, token));
    }
};

// Another: claims without a lease, so a claimed record is due again at once.
struct leaseless_store : settle::memory::outbox_table {
    using base = settle::memory::outbox_table;
    using base::base;

    std::vector<settle::outbox_record> claim(transaction& tx, std::string_view owner,
                                             settle::stored_time now, settle::stored_time,
                                             std::size_t limit) {
        return base::claim(tx, owner, now, now, limit);
    }
};

// And statistics that count a claim whose lease ends at `now` as in flight,
// though a claim at `now` takes the record again.
struct late_lease_end_store : settle::memory::outbox_table {
    using base = settle::memory::outbox_table;
    using base::base;
    std::set<settle::uuid> claimed;  // every record ever claimed

    std::vector<settle::outbox_record> claim(transaction& tx, std::string_view owner,
                                             settle::stored_time now,
                                             settle::stored_time lease_until, std::size_t limit) {
        auto records = base::claim(tx, owner, now, lease_until, limit);
        for (const auto& r : records) {
            claimed.insert(r.id);
        }
        return records;
    }
    settle::outbox_statistics statistics(transaction& tx, settle::stored_time now) const {
        settle::outbox_statistics s = base::statistics(tx, now);
        for (const settle::uuid& id : claimed) {
            const auto r = find(tx, id);
            if (r && r->status == settle::outbox_status::in_flight && r->claim_expires_at == now) {
                ++s.in_flight;
            }
        }
        return s;
    }
};

// And an inbox that forgets which consumer marked a message.
struct shared_inbox_store : settle::memory::inbox_table {
    using base = settle::memory::inbox_table;
    using base::base;

    settle::inbox_mark mark(transaction& tx, std::string_view consumer, std::string_view message_id,
                            settle::stored_time now) {
        settle::detail::check_key_size(consumer.size(), "shared_inbox_store", "consumer");
        return base::mark(tx, "everyone", message_id, now);
    }
    std::size_t purge(transaction& tx, std::string_view, settle::stored_time applied_before,
                      std::size_t limit) {
        return base::purge(tx, "everyone", applied_before, limit);
    }
};

// And one whose purge removes every consumer's old marks, whoever asks: a
// consumer with a short retention purges the marks of one with a long one.
struct purges_everyone_store {
    using transaction = settle::memory::transaction;
    using key = std::pair<std::string, std::string>;

    explicit purges_everyone_store(settle::memory::database& db) : db_(&db), rows_(db) {}

    transaction begin() { return db_->begin(); }
    settle::inbox_mark mark(transaction& tx, std::string_view consumer, std::string_view message_id,
                            settle::stored_time now) {
        settle::detail::check_key_size(consumer.size(), "purges_everyone_store", "consumer");
        settle::detail::check_key_size(message_id.size(), "purges_everyone_store", "message id");
        return rows_.insert(tx, {std::string(consumer), std::string(message_id)}, now)
                   ? settle::inbox_mark::first_time
                   : settle::inbox_mark::duplicate;
    }
    std::size_t purge(transaction& tx, std::string_view, settle::stored_time applied_before,
                      std::size_t limit) {
        std::vector<key> old;
        rows_.for_each(tx, [&](const key& k, settle::stored_time at) {
            if (old.size() < limit && at < applied_before) {
                old.push_back(k);
            }
        });
        for (const key& k : old) {
            (void)rows_.erase(tx, k);
        }
        return old.size();
    }

private:
    settle::memory::database* db_;
    settle::memory::table<key, settle::stored_time> rows_;
};

template <class Store>
struct broken_fixture {
    settle::memory::database db;
    Store store{db};
};

// Runs one case on a fresh fixture: what it reported, or "" if it passed.
template <class Fixture, class Case>
std::string run_case(const Case& c) {
    Fixture fixture;
    try {
        c.run(fixture);
    } catch (const settle::conformance::failure& e) {
        return e.what();
    }
    return {};
}

// The names of the cases that fail, checking that each failure names the suite's header.
template <class Fixture, class Suite>
std::vector<std::string> failing_cases(const Suite& suite, std::string_view header) {
    std::vector<std::string> failed;
    for (const auto& c : suite) {
        Fixture fixture;
        try {
            c.run(fixture);
        } catch (const settle::conformance::failure& e) {
            failed.emplace_back(c.name);
            CHECK(std::string(e.what()).find(header) != std::string::npos);
        }
    }
    return failed;
}

}  // namespace

TEST_CASE("the in-memory outbox store passes the outbox store conformance suite", "[outbox]") {
    for (const auto& c : settle::conformance::outbox_store_suite<outbox_fixture>) {
        INFO(std::string(c.name));
        CHECK(run_case<outbox_fixture>(c).empty());
    }
}

TEST_CASE("the in-memory inbox store passes the inbox store conformance suites", "[outbox]") {
    for (const auto& c : settle::conformance::inbox_store_suite<inbox_fixture>) {
        INFO(std::string(c.name));
        CHECK(run_case<inbox_fixture>(c).empty());
    }
    for (const auto& c : settle::conformance::inbox_purge_suite<inbox_fixture>) {
        INFO(std::string(c.name));
        CHECK(run_case<inbox_fixture>(c).empty());
    }
}

TEST_CASE("an outbox store without fencing fails the case that checks fencing", "[outbox]") {
    const auto failed = failing_cases<broken_fixture<unfenced_store>>(
        settle::conformance::outbox_store_suite<broken_fixture<unfenced_store>>,
        "outbox_store_suite.hpp:");
    CHECK(failed == std::vector<std::string>{
                        "an outcome applies only under the token of the record's latest claim",
                        "a claim taken over under the same owner name fences off the earlier one",
                        "delivering many records at once answers each as one at a time would",
                    });
}

TEST_CASE("an outbox store fenced by owner names fails the case that reuses a name", "[outbox]") {
    const auto failed = failing_cases<broken_fixture<owner_fenced_store>>(
        settle::conformance::outbox_store_suite<broken_fixture<owner_fenced_store>>,
        "outbox_store_suite.hpp:");
    CHECK(failed == std::vector<std::string>{
                        "a claim taken over under the same owner name fences off the earlier one",
                    });
}

TEST_CASE("an outbox store without leases fails the cases that check leases", "[outbox]") {
    const auto failed = failing_cases<broken_fixture<leaseless_store>>(
        settle::conformance::outbox_store_suite<broken_fixture<leaseless_store>>,
        "outbox_store_suite.hpp:");
    CHECK(failed == std::vector<std::string>{
                        "a claim takes due records in flight under the owner",
                        "a claim takes at most limit records",
                        "a record under a live claim is invisible to every claim",
                        "a claim whose lease ended is due again",
                        "a claim takes the earliest due records first",
                        "a claim taken over under the same owner name fences off the earlier one",
                        "delivering many records at once answers each as one at a time would",
                        "a record waits while an older record with its ordering key is undelivered",
                        "claims and outcomes roll back with their transaction",
                        "statistics count the backlog the live claims and the dead letters",
                        "statistics stop counting a claim as in flight the instant its lease ends",
                    });
}

TEST_CASE("outbox statistics that count an ended lease as in flight fail the case that checks it",
          "[outbox]") {
    const auto failed = failing_cases<broken_fixture<late_lease_end_store>>(
        settle::conformance::outbox_store_suite<broken_fixture<late_lease_end_store>>,
        "outbox_store_suite.hpp:");
    CHECK(failed == std::vector<std::string>{
                        "statistics stop counting a claim as in flight the instant its lease ends",
                    });
}

TEST_CASE("an inbox store that mixes consumers fails the cases that check them", "[outbox]") {
    using fixture = broken_fixture<shared_inbox_store>;
    CHECK(failing_cases<fixture>(settle::conformance::inbox_store_suite<fixture>,
                                 "inbox_store_suite.hpp:") ==
          std::vector<std::string>{"consumers keep their marks apart"});
    CHECK(failing_cases<fixture>(settle::conformance::inbox_purge_suite<fixture>,
                                 "inbox_store_suite.hpp:") ==
          std::vector<std::string>{"purge removes no other consumer's marks"});
}

TEST_CASE("an inbox store whose purge ignores the consumer fails the case that checks it",
          "[outbox]") {
    using fixture = broken_fixture<purges_everyone_store>;
    CHECK(failing_cases<fixture>(settle::conformance::inbox_store_suite<fixture>,
                                 "inbox_store_suite.hpp:")
              .empty());
    CHECK(failing_cases<fixture>(settle::conformance::inbox_purge_suite<fixture>,
                                 "inbox_store_suite.hpp:") ==
          std::vector<std::string>{"purge removes no other consumer's marks"});
}

TEST_CASE("a backend is checked against the store concepts at compile time", "[outbox]") {
    struct appender_only {
        using transaction = settle::memory::transaction;
        transaction begin();
        settle::outbox_append_result append(transaction&, settle::outbox_message,
                                            settle::stored_time);
    };
    STATIC_REQUIRE(settle::outbox_appender<settle::memory::outbox_table>);
    STATIC_REQUIRE(settle::outbox_store<settle::memory::outbox_table>);
    STATIC_REQUIRE(settle::outbox_store<unfenced_store>);
    STATIC_REQUIRE(settle::outbox_appender<appender_only>);
    STATIC_REQUIRE(!settle::outbox_store<appender_only>);
    STATIC_REQUIRE(!settle::outbox_appender<settle::memory::inbox_table>);
    STATIC_REQUIRE(!settle::outbox_store<settle::memory::inbox_table>);
    STATIC_REQUIRE(settle::inbox_store<settle::memory::inbox_table>);
    STATIC_REQUIRE(settle::purgeable_inbox_store<settle::memory::inbox_table>);
    STATIC_REQUIRE(!settle::inbox_store<settle::memory::outbox_table>);
    STATIC_REQUIRE(settle::outbox_publisher<settle::memory::publisher>);
    STATIC_REQUIRE(!settle::outbox_publisher<settle::memory::outbox_table>);
}
