// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_REDIS_HPP
#define SETTLE_STORES_REDIS_HPP

// The Redis backend (hiredis 0.14 or later; link with -lhiredis): versioned
// tables, lease and fence tables and idempotency records, each under a key
// prefix of its own, written through the user's connection. Needs Redis 5 or
// later (Lua scripts; the streams of <settle/stores/redis_stream.hpp> need 6.2).
//
// Redis cannot join the transaction of the database that holds your business
// rows, and it has no rollback: every operation of these stores is applied on
// the server, atomically (one Lua script), before it returns. docs/backends.md
// says what that changes and which uses it suits.

#include <settle/version.hpp>

#include <settle/clock.hpp>
#include <settle/codec.hpp>
#include <settle/error.hpp>
#include <settle/idempotency.hpp>
#include <settle/lease.hpp>
#include <settle/sha256.hpp>
#include <settle/token.hpp>
#include <settle/versioned.hpp>

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <settle/detail/macro_scope.hpp>

SETTLE_BEGIN_NAMESPACE

namespace redis {

namespace detail {

struct reply_deleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};

// One reply of the server, freed with its elements.
using reply = std::unique_ptr<redisReply, reply_deleter>;

struct context_deleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};

// A Lua script a store runs: its text, and a name for error messages. The
// connection loads it once per server session and runs it by its SHA-1.
struct script {
    const char* name;
    const char* text;
};

[[nodiscard]] inline std::string_view text_of(const redisReply& r) {
    return {r.str, r.len};
}

// An error reply's first word says what went wrong: the server is loading its
// data, is a replica, or lost its primary: another attempt may succeed.
[[nodiscard]] inline errc errc_of_error_reply(std::string_view message) {
    for (const std::string_view transient : {"LOADING", "READONLY", "MASTERDOWN", "BUSY"}) {
        if (message.substr(0, transient.size()) == transient) {
            return errc::unavailable;
        }
    }
    return errc::backend_failure;
}

[[nodiscard]] inline std::string_view as_view(const bytes& b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

[[nodiscard]] inline bytes to_bytes(std::string_view text) {
    bytes out(text.size());
    if (!text.empty()) {
        std::memcpy(out.data(), text.data(), text.size());
    }
    return out;
}

[[nodiscard]] inline std::string decimal(std::int64_t n) {
    return std::to_string(n);
}

// A signed decimal the store wrote; decode_failed if it is not one.
[[nodiscard]] inline std::int64_t parse_int(std::string_view text, const char* who,
                                            const char* field) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        throw settle::error(errc::decode_failed, std::string(who) + ": the stored " + field +
                                                     " is not an integer; the record is kept");
    }
    return value;
}

// An integer element of a script's reply: an integer, or its decimal text.
[[nodiscard]] inline std::int64_t int_of(const redisReply& r, const char* who, const char* field) {
    if (r.type == REDIS_REPLY_INTEGER) {
        return static_cast<std::int64_t>(r.integer);
    }
    if (r.type == REDIS_REPLY_STRING) {
        return parse_int(text_of(r), who, field);
    }
    throw settle::error(errc::backend_failure,
                        std::string(who) + ": the server's reply has no " + field);
}

// The milliseconds Redis keeps a record whose own expiry is `until`, written
// at `now`: the time left plus the margin, at least the margin. Only a
// backstop for cleanup: the record's own expiry decides whether it is live.
[[nodiscard]] inline std::string cleanup_ttl(stored_time now, stored_time until,
                                             std::chrono::milliseconds margin) {
    const auto left = until > now ? std::chrono::ceil<std::chrono::milliseconds>(until - now)
                                  : std::chrono::milliseconds(0);
    const auto cap = std::chrono::milliseconds(std::int64_t{1} << 50);  // 35,000 years
    return decimal((std::min(left, cap) + margin).count());
}

// hiredis writes with plain send(): a server that closed the connection
// raises SIGPIPE, which ends a process that did not ignore it. While one
// exists, SIGPIPE is blocked on this thread; a SIGPIPE the command raised is
// taken off the thread before the old mask returns. Changes no process-wide
// state.
class sigpipe_blocked {
public:
    sigpipe_blocked() noexcept {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    sigpipe_blocked(const sigpipe_blocked&) = delete;
    sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;
    ~sigpipe_blocked() {
        // Blocked before: whatever is pending was the caller's, and stays.
        if (sigismember(&old_, SIGPIPE) == 0) {
            sigset_t pending;
            sigemptyset(&pending);
            if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
                const timespec none{0, 0};
                (void)sigtimedwait(&pipe_, nullptr, &none);
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }

private:
    sigset_t pipe_{};
    sigset_t old_{};
};

struct access;

}  // namespace detail

// The user's Redis handle: owns one redisContext, made by `make`, which is
// also how it reconnects. Not thread-safe (hiredis contexts are not): use one
// per thread, or lock around it. Neither copyable nor movable: stores keep
// its address, so it must outlive them.
//
// A command whose connection fails throws settle::error (errc::unavailable)
// and drops the context; the next command connects again through `make`. A
// command that failed that way may or may not have been applied: each store
// says what a repeat does.
class connection {
public:
    using factory = std::function<redisContext*()>;

    // Connects at once; settle::error (errc::unavailable) with hiredis' message
    // if `make` returns no context or a failed one.
    explicit connection(factory make) : make_(std::move(make)) { connect(); }

    // Connects to a Unix socket, now and on every reconnect.
    [[nodiscard]] static factory unix_socket(std::string path) {
        return [p = std::move(path)] { return redisConnectUnix(p.c_str()); };
    }

    // Connects over TCP, now and on every reconnect.
    [[nodiscard]] static factory tcp(std::string host, int port) {
        return [h = std::move(host), port] { return redisConnect(h.c_str(), port); };
    }

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() = default;

    // The raw context, for the user's own commands; nullptr after a lost
    // connection until the next command of a store. Replaced by a reconnect,
    // so do not keep it.
    [[nodiscard]] redisContext* native() const noexcept { return context_.get(); }

private:
    friend struct detail::access;

    void connect() {
        context_.reset();
        scripts_.clear();
        std::unique_ptr<redisContext, detail::context_deleter> fresh(make_ ? make_() : nullptr);
        if (!fresh) {
            throw settle::error(errc::unavailable, "redis::connection: no connection made");
        }
        if (fresh->err != 0) {
            throw settle::error(errc::unavailable,
                                std::string("redis::connection: ") + fresh->errstr);
        }
        context_ = std::move(fresh);
    }

    // Runs one command, each argument passed as it is (never formatted into
    // command text). An error reply is returned as it is.
    detail::reply run(std::initializer_list<std::string_view> args, const char* who) {
        return run(std::span<const std::string_view>(args.begin(), args.size()), who);
    }

    detail::reply run(std::span<const std::string_view> args, const char* who) {
        if (!context_ || context_->err != 0) {
            connect();
        }
        std::vector<const char*> argv;
        std::vector<std::size_t> lengths;
        argv.reserve(args.size());
        lengths.reserve(args.size());
        for (const std::string_view a : args) {
            argv.push_back(a.data());
            lengths.push_back(a.size());
        }
        detail::reply r;
        {
            const detail::sigpipe_blocked blocked;
            r.reset(static_cast<redisReply*>(redisCommandArgv(
                context_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
        }
        if (!r) {
            const std::string message =
                context_->err != 0 ? context_->errstr : "no reply from the server";
            context_.reset();
            scripts_.clear();
            throw settle::error(errc::unavailable, std::string(who) + ": " + message);
        }
        return r;
    }

    // The same, throwing settle::error for an error reply.
    detail::reply checked(std::span<const std::string_view> args, const char* who) {
        detail::reply r = run(args, who);
        if (r->type == REDIS_REPLY_ERROR) {
            const std::string_view message = detail::text_of(*r);
            throw settle::error(detail::errc_of_error_reply(message),
                                std::string(who) + ": " + std::string(message));
        }
        return r;
    }

    detail::reply checked(std::initializer_list<std::string_view> args, const char* who) {
        return checked(std::span<const std::string_view>(args.begin(), args.size()), who);
    }

    // Runs a script by its SHA-1 (EVALSHA), loading it first on this session
    // (SCRIPT LOAD); a server that lost its script cache (a restart, SCRIPT
    // FLUSH) answers NOSCRIPT and gets the whole script (EVAL), which caches
    // it again. `keys` are the keys it touches, `args` its arguments.
    detail::reply eval(const detail::script& s, std::initializer_list<std::string_view> keys,
                       std::initializer_list<std::string_view> args, const char* who) {
        if (!context_ || context_->err != 0) {
            connect();
        }
        std::string* sha = nullptr;
        for (auto& [script, digest] : scripts_) {
            if (script == &s) {
                sha = &digest;
            }
        }
        if (sha == nullptr) {
            detail::reply loaded = checked({"SCRIPT", "LOAD", s.text}, who);
            if (loaded->type != REDIS_REPLY_STRING) {
                throw settle::error(errc::backend_failure,
                                    std::string(who) + ": SCRIPT LOAD gave no digest");
            }
            scripts_.emplace_back(&s, std::string(detail::text_of(*loaded)));
            sha = &scripts_.back().second;
        }
        const std::string count = std::to_string(keys.size());
        std::vector<std::string_view> argv;
        argv.reserve(3 + keys.size() + args.size());
        argv.insert(argv.end(), {"EVALSHA", *sha, count});
        argv.insert(argv.end(), keys.begin(), keys.end());
        argv.insert(argv.end(), args.begin(), args.end());
        detail::reply r = run(argv, who);
        if (r->type == REDIS_REPLY_ERROR && detail::text_of(*r).substr(0, 8) == "NOSCRIPT") {
            argv[0] = "EVAL";
            argv[1] = s.text;
            r = run(argv, who);
        }
        if (r->type == REDIS_REPLY_ERROR) {
            const std::string_view message = detail::text_of(*r);
            throw settle::error(detail::errc_of_error_reply(message),
                                std::string(who) + " (" + s.name + "): " + std::string(message));
        }
        return r;
    }

    factory make_;
    std::unique_ptr<redisContext, detail::context_deleter> context_;
    // The scripts loaded on this session, by address, with their SHA-1.
    std::vector<std::pair<const detail::script*, std::string>> scripts_;
};

namespace detail {

// How settle's Redis classes reach a connection's commands.
struct access {
    static reply checked(connection& c, std::span<const std::string_view> args, const char* who) {
        return c.checked(args, who);
    }
    static reply checked(connection& c, std::initializer_list<std::string_view> args,
                         const char* who) {
        return c.checked(args, who);
    }
    static reply eval(connection& c, const script& s, std::initializer_list<std::string_view> keys,
                      std::initializer_list<std::string_view> args, const char* who) {
        return c.eval(s, keys, args, who);
    }
};

inline void check_prefix(std::string_view prefix, const char* who) {
    if (prefix.empty()) {
        throw settle::error(errc::invalid_argument,
                            std::string(who) +
                                ": the key prefix is empty; give each store one "
                                "of its own (\"orders:idempotency:\")");
    }
}

}  // namespace detail

// What a Redis store's operations run in. Redis has no rollback and cannot
// join another database's transaction: each operation is applied on the
// server, atomically, when it returns, whether or not the transaction is
// committed. commit() marks the end and does nothing. So a Redis store has
// the form of settle::transactional but not its promise that a transaction
// destroyed uncommitted leaves nothing behind: write your code so that an
// operation that took effect is safe (a claim left in progress until its
// lease ends, a lease held until its expiry).
class transaction {
public:
    void commit() noexcept {}
};

// settle::versioned_store over Redis hashes: each key's value and stamp in
// one hash, "<prefix>v:" followed by the key as settle::encode gives it.
// Stamps come from one counter of the store, "<prefix>stamp", incremented
// by every write that applies, so a key's stamp is greater than every stamp
// it had before, across erase and re-insert. Each write is one Lua script:
// it reads the stamp, decides and writes, with no other command in between.
// A write that does not apply returns the current value with the conflict.
// Records never expire. Stored bytes that do not decode throw settle::error
// (errc::decode_failed) and stay as they are.
template <class Key, class T>
class versioned_table {
    static_assert(codable<Key>,
                  "settle::redis::versioned_table: keys persist through settle::codec, so Key "
                  "must be settle::codable");
    static_assert(codable<T>,
                  "settle::redis::versioned_table: values persist through settle::codec, so T "
                  "must be settle::codable");

public:
    using key_type = Key;
    using value_type = T;
    using transaction = redis::transaction;

    // Throws settle::error (errc::invalid_argument) for an empty prefix.
    // Touches no key.
    versioned_table(connection& c, std::string prefix)
        : conn_(&c), prefix_(std::move(prefix)), counter_(prefix_ + "stamp") {
        detail::check_prefix(prefix_, "redis::versioned_table");
    }

    [[nodiscard]] transaction begin() const noexcept { return {}; }

    [[nodiscard]] std::optional<versioned<T>> load(transaction&, const Key& key) const {
        constexpr const char* who = "redis::versioned_table::load";
        const std::string k = record_key(key);
        const detail::reply r =
            detail::access::checked(*conn_, {"HMGET", k, "value", "stamp"}, who);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            throw settle::error(errc::backend_failure, std::string(who) + ": unexpected reply");
        }
        if (r->element[1]->type == REDIS_REPLY_NIL) {
            return std::nullopt;
        }
        return found(*r->element[0], *r->element[1], who);
    }

    // Writes the value only if the key is absent.
    [[nodiscard]] write_result<T> insert(transaction&, const Key& key, T value) {
        static constexpr detail::script script{"insert", R"(
local r = redis.call('HMGET', KEYS[1], 'value', 'stamp')
if r[2] then return {0, r[1], r[2]} end
local s = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'stamp', string.format('%d', s))
return {1, s})"};
        const bytes v = settle::encode(value);
        return written(script, key, {detail::as_view(v)}, "redis::versioned_table::insert");
    }

    // Replaces the value only if the key's stamp equals `expected`.
    [[nodiscard]] write_result<T> compare_and_set(transaction&, const Key& key,
                                                  version_stamp expected, T value) {
        static constexpr detail::script script{"compare_and_set", R"(
local r = redis.call('HMGET', KEYS[1], 'value', 'stamp')
if not r[2] then return {2} end
if r[2] ~= ARGV[1] then return {0, r[1], r[2]} end
local s = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'stamp', string.format('%d', s))
return {1, s})"};
        const bytes v = settle::encode(value);
        const std::string stamp = std::to_string(expected.value());
        return written(script, key, {stamp, detail::as_view(v)},
                       "redis::versioned_table::compare_and_set");
    }

    // Removes the key only if its stamp equals `expected`.
    [[nodiscard]] write_result<T> erase(transaction&, const Key& key, version_stamp expected) {
        static constexpr detail::script script{"erase", R"(
local r = redis.call('HMGET', KEYS[1], 'value', 'stamp')
if not r[2] then return {2} end
if r[2] ~= ARGV[1] then return {0, r[1], r[2]} end
redis.call('DEL', KEYS[1])
return {1, r[2]})"};
        const std::string stamp = std::to_string(expected.value());
        return written(script, key, {stamp}, "redis::versioned_table::erase");
    }

private:
    [[nodiscard]] std::string record_key(const Key& key) const {
        std::string k = prefix_ + "v:";
        k += detail::as_view(settle::encode(key));
        return k;
    }

    [[nodiscard]] static version_stamp stamp_of(const redisReply& r, const char* who) {
        return version_stamp(static_cast<version_stamp::rep>(detail::int_of(r, who, "stamp")));
    }

    [[nodiscard]] static versioned<T> found(const redisReply& value, const redisReply& stamp,
                                            const char* who) {
        if (value.type != REDIS_REPLY_STRING) {
            throw settle::error(errc::decode_failed,
                                std::string(who) +
                                    ": the record has a stamp but no value; it is "
                                    "kept");
        }
        const std::string_view text = detail::text_of(value);
        return versioned<T>{settle::decode<T>(std::span<const std::byte>(
                                reinterpret_cast<const std::byte*>(text.data()), text.size())),
                            stamp_of(stamp, who)};
    }

    [[nodiscard]] write_result<T> written(const detail::script& script, const Key& key,
                                          std::initializer_list<std::string_view> args,
                                          const char* who) {
        const std::string k = record_key(key);
        const detail::reply r = detail::access::eval(*conn_, script, {k, counter_}, args, who);
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            throw settle::error(errc::backend_failure, std::string(who) + ": unexpected reply");
        }
        switch (detail::int_of(*r->element[0], who, "outcome")) {
        case 1: return write_result<T>::applied(stamp_of(*r->element[1], who));
        case 2: return write_result<T>::missing();
        default: {
            versioned<T> current = found(*r->element[1], *r->element[2], who);
            return write_result<T>::conflict(current.stamp, std::move(current.value));
        }
        }
    }

    connection* conn_;
    std::string prefix_;
    std::string counter_;
};

// A lease store (settle::leases) and a fence store (settle::fence) in Redis:
// versioned tables of lease records and of fencing tokens. A lease record is
// never erased, so it is the key's counter of grants: each grant's token is
// one more than the one before, decided by a compare-and-set on the server.
template <class Key>
using lease_table = versioned_table<Key, lease_record>;

template <class Key>
using fence_table = versioned_table<Key, fencing_token>;

// settle::idempotency_store over Redis hashes, one per (tenant, operation,
// key) under "<prefix>i:", with tokens from one counter of the store,
// "<prefix>token", so a token is greater than every one issued before for any
// key. Claim (taking over a record that is no longer live), complete and
// abandon are each one Lua script, run by EVALSHA: the check of the record's
// expiry or token and the write happen with no other command in between.
// complete and abandon write only while the record is in progress with the
// claim's token: a stale owner's completion is refused.
//
// The record's own expires_at decides whether it is live, on the caller's
// clock. Redis deletes a record `expiry_margin` after that expiry (PEXPIRE,
// counted on the server from the write), only so that records do not pile up:
// no purge is needed. Keep the margin above the clock skew between your
// processes. Times persist as decimal Unix microseconds and compare exactly
// within 285 years of 1970 (Lua's numbers are doubles).
class idempotency_table {
public:
    using transaction = redis::transaction;

    // Throws settle::error (errc::invalid_argument) for an empty prefix or a
    // margin that is not positive. Touches no key.
    idempotency_table(connection& c, std::string prefix,
                      std::chrono::milliseconds expiry_margin = std::chrono::minutes(5))
        : conn_(&c),
          prefix_(std::move(prefix)),
          counter_(prefix_ + "token"),
          margin_(expiry_margin) {
        detail::check_prefix(prefix_, "redis::idempotency_table");
        if (margin_ <= margin_.zero()) {
            throw settle::error(errc::invalid_argument,
                                "redis::idempotency_table: the expiry margin must be positive");
        }
    }

    [[nodiscard]] transaction begin() const noexcept { return {}; }

    // The Redis key of (scope, key): the tenant and the operation each after
    // its length, so that ("ab", "c") and ("a", "bc") differ.
    [[nodiscard]] std::string record_key(const idempotency_scope& scope,
                                         const idempotency_key& key) const {
        std::string k = prefix_ + "i:";
        for (const std::string& part : {scope.tenant, scope.operation}) {
            k += std::to_string(part.size());
            k += ':';
            k += part;
        }
        k += key.value();
        return k;
    }

    [[nodiscard]] idempotency_store_claim claim(transaction&, const idempotency_scope& scope,
                                                const idempotency_key& key,
                                                const sha256_digest& fingerprint, stored_time now,
                                                stored_time lease_end) {
        static constexpr detail::script script{"claim", R"(
local r = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'token', 'claimed_at',
                     'expires_at', 'status', 'body')
if r[1] and tonumber(ARGV[2]) < tonumber(r[5]) then
  return {0, r[1], r[2], r[3], r[4], r[5], r[6], r[7]}
end
local t = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'fingerprint', ARGV[1],
           'token', string.format('%d', t), 'claimed_at', ARGV[2], 'expires_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, t})"};
        constexpr const char* who = "redis::idempotency_table::claim";
        const auto& fp = fingerprint.bytes();
        const std::string at = detail::decimal(now.time_since_epoch().count());
        const std::string until = detail::decimal(lease_end.time_since_epoch().count());
        const detail::reply r = detail::access::eval(
            *conn_, script, {record_key(scope, key), counter_},
            {std::string_view(reinterpret_cast<const char*>(fp.data()), fp.size()), at, until,
             detail::cleanup_ttl(now, lease_end, margin_)},
            who);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
            throw settle::error(errc::backend_failure, std::string(who) + ": unexpected reply");
        }
        if (detail::int_of(*r->element[0], who, "outcome") == 1) {
            idempotency_record record;
            record.state = idempotency_state::in_progress;
            record.fingerprint = fingerprint;
            record.token = token_of(*r->element[1], who);
            record.claimed_at = now;
            record.expires_at = lease_end;
            return {true, std::move(record)};
        }
        if (r->elements != 8) {
            throw settle::error(errc::backend_failure, std::string(who) + ": unexpected reply");
        }
        return {false, decode_record(r->element + 1, who)};
    }

    [[nodiscard]] fenced_write complete(transaction&, const idempotency_scope& scope,
                                        const idempotency_key& key, fencing_token token,
                                        idempotency_response response, stored_time retain_until) {
        static constexpr detail::script script{"complete", R"(
local r = redis.call('HMGET', KEYS[1], 'state', 'token', 'claimed_at')
if r[1] ~= 'in_progress' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'completed', 'expires_at', ARGV[4], 'body', ARGV[2])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'status')
else
  redis.call('HSET', KEYS[1], 'status', ARGV[3])
end
local kept = math.ceil((tonumber(ARGV[4]) - tonumber(r[3])) / 1000)
kept = math.min(math.max(kept, 0), 2 ^ 50) + tonumber(ARGV[5])
redis.call('PEXPIRE', KEYS[1], string.format('%d', kept))
return 1)"};
        // Redis keeps the record for the retention counted from the claim (the
        // store is not told the time now), plus the margin.
        const std::string t = std::to_string(token.value());
        const std::string status =
            response.status ? std::to_string(*response.status) : std::string();
        const std::string until = detail::decimal(retain_until.time_since_epoch().count());
        const std::string margin = detail::decimal(margin_.count());
        const detail::reply r =
            detail::access::eval(*conn_, script, {record_key(scope, key)},
                                 {t, detail::as_view(response.body), status, until, margin},
                                 "redis::idempotency_table::complete");
        return fenced(*r, "redis::idempotency_table::complete");
    }

    [[nodiscard]] fenced_write abandon(transaction&, const idempotency_scope& scope,
                                       const idempotency_key& key, fencing_token token) {
        static constexpr detail::script script{"abandon", R"(
local r = redis.call('HMGET', KEYS[1], 'state', 'token')
if r[1] ~= 'in_progress' or r[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1)"};
        const std::string t = std::to_string(token.value());
        const detail::reply r = detail::access::eval(*conn_, script, {record_key(scope, key)}, {t},
                                                     "redis::idempotency_table::abandon");
        return fenced(*r, "redis::idempotency_table::abandon");
    }

private:
    [[nodiscard]] static fencing_token token_of(const redisReply& r, const char* who) {
        return fencing_token(static_cast<fencing_token::rep>(detail::int_of(r, who, "token")));
    }

    [[nodiscard]] static fenced_write fenced(const redisReply& r, const char* who) {
        if (r.type != REDIS_REPLY_INTEGER) {
            throw settle::error(errc::backend_failure, std::string(who) + ": unexpected reply");
        }
        return r.integer == 1 ? fenced_write::applied : fenced_write::stale;
    }

    // state, fingerprint, token, claimed_at, expires_at, status, body
    [[nodiscard]] static idempotency_record decode_record(redisReply** f, const char* who) {
        const auto text = [&](std::size_t i, const char* field) -> std::string_view {
            if (f[i]->type != REDIS_REPLY_STRING) {
                throw settle::error(errc::decode_failed, std::string(who) + ": the record has no " +
                                                             field + "; it is kept");
            }
            return detail::text_of(*f[i]);
        };
        idempotency_record record;
        const std::string_view state = text(0, "state");
        if (state == "completed") {
            record.state = idempotency_state::completed;
        } else if (state != "in_progress") {
            throw settle::error(errc::decode_failed,
                                std::string(who) + ": unknown state; the record is kept");
        }
        const std::string_view fp = text(1, "fingerprint");
        sha256_digest::bytes_type digest{};
        if (fp.size() != digest.size()) {
            throw settle::error(errc::decode_failed,
                                std::string(who) +
                                    ": the fingerprint is not 32 bytes; the record "
                                    "is kept");
        }
        std::memcpy(digest.data(), fp.data(), digest.size());
        record.fingerprint = sha256_digest(digest);
        record.token = fencing_token(
            static_cast<fencing_token::rep>(detail::parse_int(text(2, "token"), who, "token")));
        record.claimed_at = stored_time(
            std::chrono::microseconds(detail::parse_int(text(3, "claimed_at"), who, "claimed_at")));
        record.expires_at = stored_time(
            std::chrono::microseconds(detail::parse_int(text(4, "expires_at"), who, "expires_at")));
        if (f[5]->type == REDIS_REPLY_STRING) {
            const std::int64_t status = detail::parse_int(text(5, "status"), who, "status");
            if (status < std::numeric_limits<int>::min() ||
                status > std::numeric_limits<int>::max()) {
                throw settle::error(errc::decode_failed,
                                    std::string(who) + ": the status is out of range");
            }
            record.response.status = static_cast<int>(status);
        }
        if (record.state == idempotency_state::completed) {
            record.response.body = detail::to_bytes(text(6, "body"));
        }
        return record;
    }

    connection* conn_;
    std::string prefix_;
    std::string counter_;
    std::chrono::milliseconds margin_;
};

}  // namespace redis

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_REDIS_HPP
