// The processes the fault tests kill and restart: a relay that publishes an
// outbox to a consumer process over a Unix socket, and that consumer, which
// applies each message through its inbox in a PostgreSQL transaction of its
// own. Both connect to the server the tests name (SETTLE_POSTGRES, or
// SETTLE_MYSQL when built with SETTLE_FAULTS_MYSQL).
//
//   fault_worker consume <socket> <table>
//       serves relays on <socket>; for each message line "<id> <key> <n>"
//       it notes the receipt (<table>_receipts, autocommit), then in one
//       transaction marks the id in the inbox (<table>_inbox) and, the first
//       time, inserts the effect (<table>_effects); it answers "applied",
//       "duplicate" or "retry".
//   fault_worker relay <socket> <table> <owner> <lease-ms> <batch>
//       runs an outbox_relay on <table> until killed, writing one line per
//       lost round ("unavailable: ...") to stderr.
#include <settle/inbox.hpp>
#include <settle/outbox.hpp>
#include <settle/outbox_relay.hpp>

#include "faults/backend.hpp"
#include "process_main.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

using namespace std::chrono_literals;

namespace {

sockaddr_un address_of(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) {
        std::fprintf(stderr, "fault_worker: socket path too long: %s\n", path.c_str());
        std::exit(2);
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

// One line from fd, without its newline; nullopt at end of stream or error.
std::optional<std::string> read_line(int fd) {
    std::string line;
    char c = 0;
    while (true) {
        const ssize_t got = ::read(fd, &c, 1);
        if (got <= 0) {
            return std::nullopt;
        }
        if (c == '\n') {
            return line;
        }
        line += c;
    }
}

bool write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t put = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
        if (put <= 0) {
            return false;
        }
        text.remove_prefix(static_cast<std::size_t>(put));
    }
    return true;
}

// One relay's connection: applies what it sends, one message at a time.
void serve(int fd, const std::string& table) {
    std::optional<backend::connection> conn;
    std::optional<backend::inbox_table> inbox;
    std::chrono::system_clock clock;
    while (const auto line = read_line(fd)) {
        const auto space = line->find(' ');
        const auto last = line->rfind(' ');
        const std::string id = line->substr(0, space);
        const std::string key = line->substr(space + 1, last - space - 1);
        const std::string number = line->substr(last + 1);
        std::string answer;
        try {
            if (!conn) {
                conn.emplace(faults::connect());
                inbox.emplace(*conn, table + "_inbox");
            }
            {
                backend::transaction receipt(
                    *conn);  // begins, reconnecting if the server went away
                (void)faults::query(receipt.native(),
                                    "INSERT INTO " + table + "_receipts (message_id) VALUES ($1)",
                                    {id});
                receipt.commit();
            }
            settle::idempotent_consumer consumer(*inbox, clock, {.consumer = "faults"});
            const auto result = consumer.consume(id, [&](backend::transaction& tx) {
                (void)faults::query(
                    tx.native(),
                    "INSERT INTO " + table +
                        "_effects (message_id, ordering_key, number) VALUES ($1, $2, $3)",
                    {id, key, number});
            });
            answer = std::string(settle::to_string(result.outcome()));
        } catch (const std::exception& e) {
            answer = std::string("retry ") + e.what();
            std::replace(answer.begin(), answer.end(), '\n', ' ');
        }
        if (!write_all(fd, answer + "\n")) {
            break;
        }
    }
    ::close(fd);
}

int consume(const std::string& path, const std::string& table) {
    const int server = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un address = address_of(path);
    ::unlink(path.c_str());
    if (::bind(server, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(server, 16) != 0) {
        std::perror("fault_worker: bind");
        return 2;
    }
    while (true) {
        const int client = ::accept(server, nullptr, nullptr);
        if (client < 0) {
            continue;
        }
        std::thread(serve, client, table).detach();
    }
}

// Publishes to the consumer process; a broken socket is a retryable failure.
class socket_publisher {
public:
    explicit socket_publisher(std::string path) : path_(std::move(path)) {}
    socket_publisher(const socket_publisher&) = delete;
    socket_publisher& operator=(const socket_publisher&) = delete;
    ~socket_publisher() { disconnect(); }

    settle::publish_result publish(const settle::outbox_record& record) {
        if (fd_ < 0 && !connect()) {
            return settle::publish_result::retryable("the consumer is not listening");
        }
        const std::string line = record.id.to_string() + " " + record.ordering_key + " " +
                                 std::to_string(settle::decode<std::uint32_t>(record.payload)) +
                                 "\n";
        std::optional<std::string> answer;
        if (write_all(fd_, line)) {
            answer = read_line(fd_);
        }
        if (!answer) {
            disconnect();
            return settle::publish_result::retryable("the consumer hung up");
        }
        if (*answer == "applied" || *answer == "duplicate") {
            return settle::publish_result::delivered();
        }
        return settle::publish_result::retryable(*answer);
    }

private:
    bool connect() {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        const sockaddr_un address = address_of(path_);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
            disconnect();
            return false;
        }
        return true;
    }
    void disconnect() {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    std::string path_;
    int fd_ = -1;
};

struct stderr_observer {
    void on_transient_failure(const settle::error& e) {
        std::fprintf(stderr, "unavailable: %s\n", e.what());
        std::fflush(stderr);
    }
};

// A relay may start while a test restarts the server, and the MySQL
// connection connects when it is made: wait for the server, up to a minute,
// as a service's start-up would.
backend::connection first_connection() {
    for (int attempt = 1;; ++attempt) {
        try {
            return backend::connection(faults::connect());
        } catch (const settle::error& e) {
            if (e.code() != settle::errc::unavailable || attempt == 600) {
                throw;
            }
            std::this_thread::sleep_for(100ms);
        }
    }
}

int relay(const std::string& path, const std::string& table, const std::string& owner, int lease_ms,
          int batch) {
    backend::connection conn = first_connection();
    backend::outbox_table store(conn, table);
    socket_publisher publisher(path);
    std::chrono::system_clock clock;
    settle::outbox_relay relay(
        store, publisher, settle::persisted_retry{settle::ladder{20ms, 50ms, 100ms}, 1000}, clock,
        {.owner = owner,
         .batch_size = static_cast<std::size_t>(batch),
         .lease = std::chrono::milliseconds(lease_ms),
         .idle_min = 5ms,
         .idle_max = 100ms},
        stderr_observer{});
    relay.run(std::stop_token{});
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return process_main::run(
        "fault_worker", argc, argv,
        {{"consume", "<socket> <table>", [](const auto& a) { return consume(a[0], a[1]); }},
         {"relay", "<socket> <table> <owner> <lease-ms> <batch>", [](const auto& a) {
              return relay(a[0], a[1], a[2], std::stoi(a[3]), std::stoi(a[4]));
          }}});
}
