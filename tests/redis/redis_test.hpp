// What the Redis tests share: the server named by SETTLE_REDIS (a Unix
// socket), and key prefixes no other test or test process uses.
#ifndef SETTLE_TESTS_REDIS_REDIS_TEST_HPP
#define SETTLE_TESTS_REDIS_REDIS_TEST_HPP

#include <settle/stores/redis.hpp>

#include <hiredis/hiredis.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace redis_test {

// The socket of the test server; throws, saying how to set it, when
// SETTLE_REDIS is unset.
inline std::string socket_path() {
    const char* path = std::getenv("SETTLE_REDIS");
    if (path == nullptr || *path == '\0') {
        throw std::runtime_error(
            "SETTLE_REDIS is not set: start a server (scripts/redis.sh start DIR) and set "
            "SETTLE_REDIS to the output of scripts/redis.sh socket DIR");
    }
    return path;
}

inline settle::redis::connection::factory factory() {
    return settle::redis::connection::unix_socket(socket_path());
}

// "settle:test:<pid>:<n>:<what>:": unique across test processes and within one.
inline std::string unique_prefix(std::string_view what) {
    static std::atomic<unsigned> counter{0};
    return "settle:test:" + std::to_string(::getpid()) + ":" + std::to_string(counter++) + ":" +
           std::string(what) + ":";
}

struct context_deleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct reply_deleter {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using raw_reply = std::unique_ptr<redisReply, reply_deleter>;

// A plain hiredis connection of the test's own, outside settle.
class raw {
public:
    raw() : c_(redisConnectUnix(socket_path().c_str())) {
        if (!c_ || c_->err != 0) {
            throw std::runtime_error("cannot connect to the test Redis server");
        }
    }
    // One command, its arguments passed as they are.
    template <class... Args>
    raw_reply run(const Args&... args) {
        const std::string parts[] = {std::string(args)...};
        const char* argv[sizeof...(Args)];
        std::size_t lengths[sizeof...(Args)];
        for (std::size_t i = 0; i < sizeof...(Args); ++i) {
            argv[i] = parts[i].data();
            lengths[i] = parts[i].size();
        }
        raw_reply r(static_cast<redisReply*>(
            redisCommandArgv(c_.get(), static_cast<int>(sizeof...(Args)), argv, lengths)));
        if (!r) {
            throw std::runtime_error("the test Redis connection failed");
        }
        return r;
    }
    long long integer(const auto&... args) { return run(args...)->integer; }
    std::string text(const auto&... args) {
        raw_reply r = run(args...);
        return r->type == REDIS_REPLY_NIL ? std::string() : std::string(r->str, r->len);
    }

private:
    std::unique_ptr<redisContext, context_deleter> c_;
};

// The settle::errc that fn throws, or an empty optional if it returns.
template <class F>
std::optional<settle::errc> thrown(F&& fn) {
    try {
        fn();
    } catch (const settle::error& e) {
        return static_cast<settle::errc>(e.code().value());
    }
    return std::nullopt;
}

}  // namespace redis_test

#endif  // SETTLE_TESTS_REDIS_REDIS_TEST_HPP
