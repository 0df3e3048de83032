// An idempotent HTTP-style handler: POST /payments with an Idempotency-Key
// header. Each outcome of the idempotency guard becomes a status code: the
// first request runs (201), a repeat gets the first answer again (201, with
// Idempotent-Replayed), the same key for another body is refused (422), a
// repeat while the first still runs is told to wait (409), and a missing or
// malformed key is a bad request (400).
#include <settle/idempotency.hpp>
#include <settle/sha256.hpp>
#include <settle/stores/memory_idempotency.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

using namespace std::chrono_literals;

struct http_request {
    std::string account;          // who is asking: the tenant of the key
    std::string idempotency_key;  // the header's value, as sent; empty if absent
    std::string body;
};

struct http_response {
    int status = 0;
    std::string body;
    bool replayed = false;
};

class payments_api {
public:
    explicit payments_api(std::chrono::system_clock& clock)
        : guard_(requests_, clock, {.lease = 30s, .retention = 24h}) {}

    http_response post(const http_request& request) {
        if (request.idempotency_key.empty()) {
            return {settle::idempotency_http::bad_key, "Idempotency-Key is required"};
        }
        const auto key = settle::idempotency_key::from_header(request.idempotency_key);
        if (!key) {
            return {settle::idempotency_http::bad_key, key.error().message()};
        }
        const settle::idempotency_scope scope{request.account, "payments.create"};
        const auto r = guard_.run(scope, *key, settle::sha256::hash(request.body),
                                  [&] { return charge(request); });
        switch (r.outcome()) {
        case settle::idempotency_outcome::executed: return {201, *r.response()};
        case settle::idempotency_outcome::replayed: return {201, *r.response(), true};
        case settle::idempotency_outcome::in_progress:
            return {settle::idempotency_http::conflict, "a request with this key is running"};
        case settle::idempotency_outcome::mismatch:
            return {settle::idempotency_http::mismatch, "this key was used for another request"};
        case settle::idempotency_outcome::stale:  // ran, but outlived its lease: alert
            return {201, *r.response()};
        }
        return {500, "unknown outcome"};
    }

    int charges() const { return charges_; }
    bool charging() const { return charging_; }

private:
    std::string charge(const http_request& request) {
        charging_ = true;
        std::this_thread::sleep_for(200ms);  // the payment provider is slow
        charging_ = false;
        return "payment " + std::to_string(++charges_) + " for " + request.body;
    }

    settle::memory::database db_;  // in a service: your database, with your tables
    settle::memory::idempotency_table requests_{db_};
    settle::idempotency_guard<settle::memory::idempotency_table, std::chrono::system_clock> guard_;
    int charges_ = 0;
    std::atomic<bool> charging_ = false;
};

int main() {
    std::chrono::system_clock clock;
    payments_api api(clock);
    std::atomic<bool> ok = true;
    const auto send = [&](const char* what, const http_request& request, int expected) {
        const http_response response = api.post(request);
        std::printf("%-34s -> %d %s%s\n", what, response.status, response.body.c_str(),
                    response.replayed ? " (Idempotent-Replayed: true)" : "");
        if (response.status != expected)
            ok = false;
    };

    const http_request pay{"acct-7", R"("pay-0001")", R"({"amount":2500})"};
    std::thread first([&] { send("POST, key pay-0001", pay, 201); });
    while (!api.charging()) {
        std::this_thread::sleep_for(1ms);
    }
    send("POST again while the first runs", pay, 409);  // a double click
    first.join();
    send("POST again (the answer was lost)", pay, 201);
    send("POST, same key, another amount", {"acct-7", R"("pay-0001")", R"({"amount":9900})"}, 422);
    send("POST, same key, another account", {"acct-9", R"("pay-0001")", R"({"amount":2500})"}, 201);
    send("POST without a key", {"acct-7", "", R"({"amount":2500})"}, 400);
    send("POST with a malformed key", {"acct-7", "pay-0002", R"({"amount":2500})"}, 400);

    std::printf("charges made: %d\n", api.charges());
    return ok && api.charges() == 2 ? 0 : 1;
}
