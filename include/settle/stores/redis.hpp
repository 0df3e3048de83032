// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_STORES_REDIS_HPP
#define SETTLE_STORES_REDIS_HPP

// The Redis backend (hiredis 0.14 or later; link with -lhiredis): versioned
// tables, lease and fence tables and idempotency records, each under a key
// prefix of its own, written through the user's connection; and a broker path
// over a Redis stream: a publisher for the outbox relay, and a consumer that
// applies each message through an inbox in your own database. Needs Redis
// 6.2 or later (XAUTOCLAIM, XTRIM MINID).
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
#include <settle/inbox.hpp>
#include <settle/lease.hpp>
#include <settle/outbox.hpp>
#include <settle/sha256.hpp>
#include <settle/token.hpp>
#include <settle/versioned.hpp>

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
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

// A command as hiredis formats it (RESP), freed with it.
struct command_deleter {
    void operator()(char* c) const noexcept { redisFreeCommand(c); }
};

// Sends `size` bytes of `data` on `fd` with MSG_NOSIGNAL: a server that
// closed the connection gives EPIPE, not SIGPIPE (which would end a process
// that does not ignore it), and no signal mask changes. hiredis' own write
// is a plain write(). Returns 0, or the errno that stopped it.
[[nodiscard]] inline int send_all(int fd, const char* data, std::size_t size) noexcept {
    while (size > 0) {
        const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

struct access;

}  // namespace detail

/// The user's Redis handle: owns one redisContext, made by `make`, which is
/// also how it reconnects. Not thread-safe (hiredis contexts are not): use one
/// per thread, or lock around it. Neither copyable nor movable: stores keep
/// its address, so it must outlive them.
///
/// A command whose connection fails throws settle::error (errc::unavailable)
/// and drops the context; the next command connects again through `make`. A
/// command that failed that way may or may not have been applied: each store
/// says what a repeat does.
class connection {
public:
    /// Makes a new connection handle: what a pool calls when it needs a connection.
    using factory = std::function<redisContext*()>;

    /// Connects at once; settle::error (errc::unavailable) with hiredis' message
    /// if `make` returns no context or a failed one.
    explicit connection(factory make) : make_(std::move(make)) { connect(); }

    /// Connects to a Unix socket, now and on every reconnect.
    [[nodiscard]] static factory unix_socket(std::string path) {
        return [p = std::move(path)] { return redisConnectUnix(p.c_str()); };
    }

    /// Connects over TCP, now and on every reconnect.
    [[nodiscard]] static factory tcp(std::string host, int port) {
        return [h = std::move(host), port] { return redisConnect(h.c_str(), port); };
    }

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() = default;

    /// The raw context, for the user's own commands; nullptr after a lost
    /// connection until the next command of a store. Replaced by a reconnect,
    /// so do not keep it.
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
        char* formatted = nullptr;
        const int size = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()),
                                                argv.data(), lengths.data());
        const std::unique_ptr<char, detail::command_deleter> command(formatted);
        if (size < 0) {
            throw std::bad_alloc();
        }
        // hiredis would write the command with write(); settle sends it, then
        // hiredis reads the reply.
        const int sent =
            detail::send_all(context_->fd, command.get(), static_cast<std::size_t>(size));
        void* out = nullptr;
        if (sent == 0 && redisGetReply(context_.get(), &out) == REDIS_OK) {
            detail::reply r(static_cast<redisReply*>(out));
            if (r) {
                return r;
            }
        }
        const std::string message = sent != 0            ? std::system_category().message(sent)
                                    : context_->err != 0 ? context_->errstr
                                                         : "no reply from the server";
        context_.reset();
        scripts_.clear();
        throw settle::error(errc::unavailable, std::string(who) + ": " + message);
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

/// What a Redis store's operations run in. Redis has no rollback and cannot
/// join another database's transaction: each operation is applied on the
/// server, atomically, when it returns, whether or not the transaction is
/// committed. commit() marks the end and does nothing. So a Redis store
/// models settle::atomic_operations but not settle::transactional: a
/// transaction destroyed uncommitted keeps what it wrote, and the blocks that
/// need rollback (the outbox append, the inbox) refuse it at compile time.
/// Write your code so that an operation that took effect is safe (a claim left
/// in progress until its lease ends, a lease held until its expiry).
class transaction {
public:
    /// Declares that this transaction cannot roll back (see settle::atomic_operations).
    static constexpr bool rolls_back = false;

    /// Ends the transaction; every operation already took effect.
    void commit() noexcept {}
};

/// settle::versioned_store over Redis hashes: each key's value and stamp in
/// one hash, "<prefix>v:" followed by the key as settle::encode gives it.
/// Stamps come from one counter of the store, "<prefix>stamp", incremented
/// by every write that applies, so a key's stamp is greater than every stamp
/// it had before, across erase and re-insert. Each write is one Lua script:
/// it reads the stamp, decides and writes, with no other command in between.
/// A write that does not apply returns the current value with the conflict.
/// Records never expire. Stored bytes that do not decode throw settle::error
/// (errc::decode_failed) and stay as they are.
template <class Key, class T>
class versioned_table {
    static_assert(codable<Key>,
                  "settle::redis::versioned_table: keys persist through settle::codec, so Key "
                  "must be settle::codable");
    static_assert(codable<T>,
                  "settle::redis::versioned_table: values persist through settle::codec, so T "
                  "must be settle::codable");

public:
    ///@{
    /// The key, value and transaction types of the settle::versioned_store this table models, and
    /// its operations (see the concept for what each guarantees).
    using key_type = Key;
    using value_type = T;
    using transaction = redis::transaction;

    /// Throws settle::error (errc::invalid_argument) for an empty prefix.
    /// Touches no key.
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
    ///@}

    /// Writes the value only if the key is absent.
    [[nodiscard]] write_result<T> insert(transaction&, const Key& key, T value) {
        static constexpr detail::script script{"insert", R"(
local r = redis.call('HMGET', KEYS[1], 'value', 'stamp')
if r[2] then return {0, r[1], r[2]} end
local s = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'stamp', string.format('%d', s))
return {1, s})"};
        settle::detail::check_key_size(settle::encode(key).size(), "redis::versioned_table::insert",
                                       "key");
        const bytes v = settle::encode(value);
        return written(script, key, {detail::as_view(v)}, "redis::versioned_table::insert");
    }

    /// Replaces the value only if the key's stamp equals `expected`.
    [[nodiscard]] write_result<T> compare_and_set(transaction&, const Key& key,
                                                  version_stamp expected, T value) {
        static constexpr detail::script script{"compare_and_set", R"(
local stamp = redis.call('HGET', KEYS[1], 'stamp')
if not stamp then return {2} end
if stamp ~= ARGV[1] then return {0, redis.call('HGET', KEYS[1], 'value'), stamp} end
local s = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'stamp', string.format('%d', s))
return {1, s})"};
        const bytes v = settle::encode(value);
        const std::string stamp = std::to_string(expected.value());
        return written(script, key, {stamp, detail::as_view(v)},
                       "redis::versioned_table::compare_and_set");
    }

    /// Removes the key only if its stamp equals `expected`.
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

/// A lease store (settle::leases) and a fence store (settle::fence) in Redis:
/// versioned tables of lease records and of fencing tokens. A lease record is
/// never erased, so it is the key's counter of grants: each grant's token is
/// one more than the one before, decided by a compare-and-set on the server.
template <class Key>
using lease_table = versioned_table<Key, lease_record>;

template <class Key>
using fence_table = versioned_table<Key, fencing_token>;

/// settle::idempotency_store over Redis strings, one per (tenant, operation,
/// key) under "<prefix>i:", with tokens from one counter of the store,
/// "<prefix>token", so a token is greater than every one issued before for any
/// key. Claim (taking over a record that is no longer live), complete and
/// abandon are each one Lua script, run by EVALSHA: the check of the record's
/// expiry or token and the write happen with no other command in between.
/// complete and abandon write only while the record is in progress with the
/// claim's token: a stale owner's completion is refused.
///
/// A record is one string, written with its expiry by one SET ... PX:
/// "<state>:<token>:<claimed_at>:<expires_at>:<status>:" (state `p` in
/// progress, `c` completed; times in decimal Unix microseconds; status empty
/// when there is none), then the 32-byte fingerprint, then the response body.
///
/// The record's own expires_at decides whether it is live, on the caller's
/// clock. Redis deletes a record `expiry_margin` after that expiry (PX,
/// counted on the server from the write), only so that records do not pile
/// up: no purge is needed. Keep the margin above the clock skew between your
/// processes. Times compare exactly within 285 years of 1970 (Lua's numbers
/// are doubles).
class idempotency_table {
public:
    /// The transaction type of the settle::idempotency_store this table models.
    using transaction = redis::transaction;

    /// Throws settle::error (errc::invalid_argument) for an empty prefix or a
    /// margin that is not positive. Touches no key.
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

    /// Begins a transaction: an empty one, since each operation is atomic on its own.
    [[nodiscard]] transaction begin() const noexcept { return {}; }

    /// The Redis key of (scope, key): the tenant and the operation each after
    /// its length, so that ("ab", "c") and ("a", "bc") differ.
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

    ///@{
    /// The settle::idempotency_store operations (see the concept for what each guarantees).
    [[nodiscard]] idempotency_store_claim claim(transaction&, const idempotency_scope& scope,
                                                const idempotency_key& key,
                                                const sha256_digest& fingerprint, stored_time now,
                                                stored_time lease_end) {
        // Replies the new token (an integer), the live record found (a
        // string), or 0 for a record whose expires_at is not a number.
        static constexpr detail::script script{"claim", R"(
local v = redis.call('GET', KEYS[1])
if v then
  local expires = tonumber(string.match(v, '^%a:%d+:[^:]*:([^:]*):'))
  if not expires then return 0 end
  if tonumber(ARGV[2]) < expires then return v end
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], string.format('p:%d:', t) .. ARGV[2] .. ':' .. ARGV[3] .. '::' ..
           ARGV[1], 'PX', ARGV[4])
return t)"};
        constexpr const char* who = "redis::idempotency_table::claim";
        settle::detail::check_key_size(scope.tenant.size(), who, "tenant");
        settle::detail::check_key_size(scope.operation.size(), who, "operation");
        const auto& fp = fingerprint.bytes();
        const std::string at = detail::decimal(now.time_since_epoch().count());
        const std::string until = detail::decimal(lease_end.time_since_epoch().count());
        const detail::reply r = detail::access::eval(
            *conn_, script, {record_key(scope, key), counter_},
            {std::string_view(reinterpret_cast<const char*>(fp.data()), fp.size()), at, until,
             detail::cleanup_ttl(now, lease_end, margin_)},
            who);
        if (r->type == REDIS_REPLY_STRING) {
            return {false, decode_record(detail::text_of(*r), who)};
        }
        if (r->type != REDIS_REPLY_INTEGER) {
            throw settle::error(errc::backend_failure, std::string(who) + ": unexpected reply");
        }
        if (r->integer == 0) {
            throw settle::error(errc::decode_failed,
                                std::string(who) +
                                    ": the stored expires_at is not a number; the "
                                    "record is kept");
        }
        idempotency_record record;
        record.state = idempotency_state::in_progress;
        record.fingerprint = fingerprint;
        record.token = token_of(*r, who);
        record.claimed_at = now;
        record.expires_at = lease_end;
        return {true, std::move(record)};
    }

    [[nodiscard]] fenced_write complete(transaction&, const idempotency_scope& scope,
                                        const idempotency_key& key, fencing_token token,
                                        idempotency_response response, stored_time retain_until) {
        static constexpr detail::script script{"complete", R"(
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local token, claimed = string.match(v, '^p:(%d+):([^:]*):')
if token ~= ARGV[1] then return 0 end
local kept = math.ceil((tonumber(ARGV[4]) - tonumber(claimed)) / 1000)
kept = math.min(math.max(kept, 0), 2 ^ 50) + tonumber(ARGV[5])
redis.call('SET', KEYS[1], 'c:' .. token .. ':' .. claimed .. ':' .. ARGV[4] .. ':' .. ARGV[3] ..
           ':' .. string.sub(v, -32) .. ARGV[2], 'PX', string.format('%d', kept))
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
local v = redis.call('GET', KEYS[1])
if not v or string.match(v, '^p:(%d+):') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1)"};
        const std::string t = std::to_string(token.value());
        const detail::reply r = detail::access::eval(*conn_, script, {record_key(scope, key)}, {t},
                                                     "redis::idempotency_table::abandon");
        return fenced(*r, "redis::idempotency_table::abandon");
    }
    ///@}

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

    // "<state>:<token>:<claimed_at>:<expires_at>:<status>:<fingerprint><body>"
    [[nodiscard]] static idempotency_record decode_record(std::string_view text, const char* who) {
        std::string_view fields[5];
        for (std::string_view& field : fields) {
            const std::size_t end = text.find(':');
            if (end == std::string_view::npos) {
                throw settle::error(errc::decode_failed,
                                    std::string(who) + ": the record is cut short; it is kept");
            }
            field = text.substr(0, end);
            text.remove_prefix(end + 1);
        }
        idempotency_record record;
        if (fields[0] == "c") {
            record.state = idempotency_state::completed;
        } else if (fields[0] != "p") {
            throw settle::error(errc::decode_failed,
                                std::string(who) + ": unknown state; the record is kept");
        }
        record.token = fencing_token(
            static_cast<fencing_token::rep>(detail::parse_int(fields[1], who, "token")));
        record.claimed_at =
            stored_time(std::chrono::microseconds(detail::parse_int(fields[2], who, "claimed_at")));
        record.expires_at =
            stored_time(std::chrono::microseconds(detail::parse_int(fields[3], who, "expires_at")));
        if (!fields[4].empty()) {
            const std::int64_t status = detail::parse_int(fields[4], who, "status");
            if (status < std::numeric_limits<int>::min() ||
                status > std::numeric_limits<int>::max()) {
                throw settle::error(errc::decode_failed,
                                    std::string(who) + ": the status is out of range");
            }
            record.response.status = static_cast<int>(status);
        }
        sha256_digest::bytes_type digest{};
        if (text.size() < digest.size() ||
            (record.state == idempotency_state::in_progress && text.size() != digest.size())) {
            throw settle::error(errc::decode_failed,
                                std::string(who) +
                                    ": the fingerprint is not 32 bytes; the record "
                                    "is kept");
        }
        std::memcpy(digest.data(), text.data(), digest.size());
        record.fingerprint = sha256_digest(digest);
        if (record.state == idempotency_state::completed) {
            record.response.body = detail::to_bytes(text.substr(digest.size()));
        }
        return record;
    }

    connection* conn_;
    std::string prefix_;
    std::string counter_;
    std::chrono::milliseconds margin_;
};

// ---------------------------------------------------------------------------
// The broker path: outbox -> relay -> stream_publisher -> Redis stream ->
// stream_consumer -> inbox.

/// An outbox record as a stream entry carries it: the record's id (what the
/// inbox deduplicates by), topic, ordering key and payload, and each header as
/// a field "header:<name>".
struct stream_message {
    std::string entry_id;  ///< the stream entry's id, "<milliseconds>-<sequence>"
    ///@{
    /// The entry's fields: the outbox record's id, topic, ordering key, payload and headers; equal
    /// when every field is.
    std::string record_id;
    std::string topic;
    std::string ordering_key;
    bytes payload;
    outbox_headers headers;

    friend bool operator==(const stream_message&, const stream_message&) = default;
    ///@}
};

/// A settle::outbox_publisher that appends each record to one stream (XADD,
/// one round trip). Delivered once XADD answered; a lost connection is
/// retryable (the entry may have been added: the inbox drops the repeat).
/// Other failures propagate. The stream grows until stream_consumer::trim.
class stream_publisher {
public:
    /// Throws settle::error (errc::invalid_argument) for an empty stream name.
    stream_publisher(connection& c, std::string stream) : conn_(&c), stream_(std::move(stream)) {
        if (stream_.empty()) {
            throw settle::error(errc::invalid_argument,
                                "redis::stream_publisher: the stream name is empty");
        }
    }

    /// Adds the record to the stream: delivered once the server has it, retryable when the
    /// command fails.
    [[nodiscard]] publish_result publish(const outbox_record& record) {
        const std::string id = record.id.to_string();
        std::vector<std::string> header_fields;
        header_fields.reserve(record.headers.size());
        std::vector<std::string_view> argv{"XADD",
                                           stream_,
                                           "*",
                                           "id",
                                           id,
                                           "topic",
                                           record.topic,
                                           "key",
                                           record.ordering_key,
                                           "payload",
                                           detail::as_view(record.payload)};
        for (const outbox_header& h : record.headers) {
            header_fields.push_back("header:" + h.name);
        }
        for (std::size_t i = 0; i < record.headers.size(); ++i) {
            argv.push_back(header_fields[i]);
            argv.push_back(record.headers[i].value);
        }
        try {
            (void)detail::access::checked(*conn_, argv, "redis::stream_publisher::publish");
        } catch (const settle::error& e) {
            if (e.code() != errc::unavailable) {
                throw;
            }
            return publish_result::retryable(e.what());
        }
        return publish_result::delivered();
    }

private:
    connection* conn_;
    std::string stream_;
};

/// What a stream_consumer is configured with.
struct stream_consumer_options {
    /// The consumer group: every group gets every message once; the consumers
    /// of one group share them. Not empty.
    std::string group;
    /// This consumer's name in the group, unique among its live consumers.
    /// Not empty.
    std::string consumer;
    /// Entries read per poll, at most. At least 1.
    std::size_t batch_size = 16;
    /// How long an entry stays pending (read, not acknowledged) before another
    /// consumer takes it over: longer than applying a batch can take. A crashed
    /// consumer's entries are applied that long after its crash. Positive.
    std::chrono::milliseconds reclaim_idle = std::chrono::seconds(30);
};

/// Reads a stream through a consumer group and applies each message through
/// an inbox (settle::idempotent_consumer): the first time, the handler runs in
/// the inbox's transaction, which records the message's record id; the entry
/// is acknowledged (XACK) only after that transaction committed, or the inbox
/// found the message applied before. So a consumer that dies at any point
/// leaves its entry pending; another consumer takes it over (XAUTOCLAIM) after
/// reclaim_idle, and the inbox turns a second delivery into a duplicate: every
/// message's effect is applied once. Not thread-safe: one per thread.
///
///     settle::redis::stream_consumer consumer(redis, "orders", inbox,
///                                             {.group = "billing", .consumer = "billing-1"});
///     consumer.create_group();
///     while (running) {
///         if (consumer.poll([&](auto& tx, const settle::redis::stream_message& m) {
///                 bill(tx, settle::decode<order_placed>(m.payload));
///             }) == 0) {
///             sleep_a_little();
///         }
///     }
template <class InboxStore, class Clock>
class stream_consumer {
public:
    ///@{
    /// The idempotent consumer that applies each message, and its store's transaction type.
    using inbox_type = idempotent_consumer<InboxStore, Clock>;
    using transaction = typename InboxStore::transaction;
    ///@}

    /// Holds references to c and inbox, which must outlive it. Throws
    /// settle::error (errc::invalid_argument) for an empty stream, group or
    /// consumer name, a batch size of 0 or an idle time that is not positive.
    stream_consumer(connection& c, std::string stream, inbox_type& inbox,
                    stream_consumer_options options)
        : conn_(&c),
          stream_(std::move(stream)),
          inbox_(&inbox),
          options_(std::move(options)),
          batch_(std::to_string(options_.batch_size)),
          idle_(std::to_string(options_.reclaim_idle.count())) {
        if (stream_.empty() || options_.group.empty() || options_.consumer.empty()) {
            throw settle::error(errc::invalid_argument,
                                "redis::stream_consumer: the stream, group and consumer names "
                                "must not be empty");
        }
        if (options_.batch_size == 0 || options_.reclaim_idle <= options_.reclaim_idle.zero()) {
            throw settle::error(errc::invalid_argument,
                                "redis::stream_consumer: the batch size and the idle time must "
                                "be positive");
        }
    }

    /// Creates the group at the start of the stream, and the stream, unless
    /// the group exists. Safe to call from every consumer at start-up.
    void create_group() {
        try {
            (void)detail::access::checked(
                *conn_, {"XGROUP", "CREATE", stream_, options_.group, "0", "MKSTREAM"},
                "redis::stream_consumer::create_group");
        } catch (const settle::error& e) {
            if (std::string_view(e.what()).find("BUSYGROUP") == std::string_view::npos) {
                throw;
            }
        }
    }

    /// One round: takes over up to batch_size entries that other consumers
    /// (or this one, before a restart) left pending longer than reclaim_idle,
    /// then reads new entries up to batch_size in all, and applies and
    /// acknowledges each in turn. Returns how many it acknowledged. Never
    /// blocks on an empty stream: sleep when it returns 0.
    ///
    /// If handler(tx, message) throws, its transaction rolls back, the entry
    /// stays pending (another poll takes it over after reclaim_idle) and the
    /// exception propagates. An entry that is not a settle message (no id
    /// field) throws settle::error (errc::decode_failed) and stays pending.
    /// A lost connection throws errc::unavailable; poll again.
    template <class Handler>
    requires std::invocable<Handler&, transaction&, const stream_message&> std::size_t poll(
        Handler&& handler) {
        std::vector<stream_message> batch = reclaim();
        if (batch.size() < options_.batch_size) {
            std::vector<stream_message> fresh = read(options_.batch_size - batch.size());
            batch.insert(batch.end(), std::make_move_iterator(fresh.begin()),
                         std::make_move_iterator(fresh.end()));
        }
        std::size_t acknowledged = 0;
        for (const stream_message& m : batch) {
            if (m.record_id.empty()) {
                throw settle::error(errc::decode_failed,
                                    "redis::stream_consumer::poll: the entry " + m.entry_id +
                                        " has no id field; it stays pending");
            }
            (void)inbox_->consume(m.record_id, [&](transaction& tx) { handler(tx, m); });
            (void)detail::access::checked(*conn_, {"XACK", stream_, options_.group, m.entry_id},
                                          "redis::stream_consumer::poll");
            ++acknowledged;
        }
        return acknowledged;
    }

    /// Removes the entries that every group of the stream has acknowledged
    /// (XTRIM MINID), and no other: the oldest entry kept is the oldest one
    /// pending in any group, or the last one delivered to a group that has
    /// none pending. Entries no group has read yet stay. A stream without
    /// groups is left as it is. Returns how many entries it removed. Call it on
    /// a schedule; one script, reading each group's pending summary.
    std::size_t trim() {
        static constexpr detail::script script{"trim", R"(
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local keep = nil
for _, g in ipairs(groups) do
  local name, pending, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1]
    elseif g[i] == 'pending' then pending = g[i + 1]
    elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local oldest = last
  if pending > 0 then oldest = redis.call('XPENDING', KEYS[1], name)[2] end
  if keep == nil or less(oldest, keep) then keep = oldest end
end
return redis.call('XTRIM', KEYS[1], 'MINID', keep))"};
        const detail::reply r =
            detail::access::eval(*conn_, script, {stream_}, {}, "redis::stream_consumer::trim");
        return static_cast<std::size_t>(
            detail::int_of(*r, "redis::stream_consumer::trim", "count"));
    }

private:
    static constexpr const char* who = "redis::stream_consumer::poll";

    // XAUTOCLAIM's entries, continuing from where the last call stopped.
    std::vector<stream_message> reclaim() {
        const detail::reply r =
            detail::access::checked(*conn_,
                                    {"XAUTOCLAIM", stream_, options_.group, options_.consumer,
                                     idle_, cursor_, "COUNT", batch_},
                                    who);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            throw settle::error(errc::backend_failure,
                                std::string(who) + ": unexpected XAUTOCLAIM reply");
        }
        cursor_ = std::string(detail::text_of(*r->element[0]));
        return entries(*r->element[1]);
    }

    std::vector<stream_message> read(std::size_t count) {
        const std::string n = std::to_string(count);
        const detail::reply r =
            detail::access::checked(*conn_,
                                    {"XREADGROUP", "GROUP", options_.group, options_.consumer,
                                     "COUNT", n, "STREAMS", stream_, ">"},
                                    who);
        if (r->type == REDIS_REPLY_NIL) {
            return {};
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
            r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2) {
            throw settle::error(errc::backend_failure,
                                std::string(who) + ": unexpected XREADGROUP reply");
        }
        return entries(*r->element[0]->element[1]);
    }

    // [[id, [field, value, ...]], ...]; an entry deleted while pending has no
    // fields, and is acknowledged (nothing is left of it to apply).
    std::vector<stream_message> entries(const redisReply& list) {
        std::vector<stream_message> out;
        if (list.type != REDIS_REPLY_ARRAY) {
            return out;
        }
        for (std::size_t i = 0; i < list.elements; ++i) {
            const redisReply& entry = *list.element[i];
            if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2 ||
                entry.element[0]->type != REDIS_REPLY_STRING) {
                throw settle::error(errc::backend_failure,
                                    std::string(who) + ": unexpected stream entry");
            }
            stream_message m;
            m.entry_id = std::string(detail::text_of(*entry.element[0]));
            const redisReply& fields = *entry.element[1];
            if (fields.type != REDIS_REPLY_ARRAY) {
                (void)detail::access::checked(*conn_, {"XACK", stream_, options_.group, m.entry_id},
                                              who);
                continue;
            }
            for (std::size_t f = 0; f + 1 < fields.elements; f += 2) {
                const std::string_view name = detail::text_of(*fields.element[f]);
                const std::string_view value = detail::text_of(*fields.element[f + 1]);
                if (name == "id") {
                    m.record_id = std::string(value);
                } else if (name == "topic") {
                    m.topic = std::string(value);
                } else if (name == "key") {
                    m.ordering_key = std::string(value);
                } else if (name == "payload") {
                    m.payload = detail::to_bytes(value);
                } else if (name.substr(0, 7) == "header:") {
                    m.headers.push_back({std::string(name.substr(7)), std::string(value)});
                }
            }
            out.push_back(std::move(m));
        }
        return out;
    }

    connection* conn_;
    std::string stream_;
    inbox_type* inbox_;
    stream_consumer_options options_;
    std::string batch_;
    std::string idle_;
    std::string cursor_ = "0-0";
};

}  // namespace redis

SETTLE_END_NAMESPACE

#include <settle/detail/macro_unscope.hpp>

#endif  // SETTLE_STORES_REDIS_HPP
