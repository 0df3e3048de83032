// A TCP fault proxy for the fault tests: it listens on the loopback
// interface, forwards each connection to a PostgreSQL server's Unix socket,
// and breaks connections the way networks and crashes do:
//
//   lost-ack     a COMMIT is passed on and runs, but its answer is dropped
//                and the connection cut: the client cannot know it committed
//   cut-commit   the connection is cut just before a COMMIT reaches the server
//   cut          the connection is cut before some other message
//   stall        a message is held back for a while (up to 50 ms), then passed on
//
//   fault_proxy <server socket> <seed>
//
// It prints "port <n>" once it listens, then one line per fault it caused.
// The client must connect with sslmode=disable and gssencmode=disable, so that
// the first message is the startup packet and every later one is typed
// (a type byte, then a 32-bit big-endian length that counts itself).
// COMMIT is recognised as a simple query ('Q') and as the extended protocol's
// Parse ('P') of COMMIT followed by its Execute ('E').
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>

namespace {

// Out of every 100 COMMITs, and of every 1,000 other messages.
constexpr int lost_ack_percent = 10;
constexpr int cut_commit_percent = 5;
constexpr int cut_permille = 5;
constexpr int stall_permille = 20;
// Time for a passed-on COMMIT to run before its connection is cut.
constexpr auto commit_runs_within = std::chrono::milliseconds(100);

std::mutex output;

void say(const char* what) {
    const std::lock_guard lock(output);
    std::printf("%s\n", what);
    std::fflush(stdout);
}

bool send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t put = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (put <= 0) {
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(put));
    }
    return true;
}

bool starts_with_commit(std::string_view sql) {
    while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.front())) != 0) {
        sql.remove_prefix(1);
    }
    constexpr std::string_view commit = "commit";
    return sql.size() >= commit.size() &&
           std::equal(commit.begin(), commit.end(), sql.begin(), [](char a, char b) {
               return a == std::tolower(static_cast<unsigned char>(b));
           });
}

std::uint32_t big_endian(const char* bytes) {
    std::uint32_t n = 0;
    std::memcpy(&n, bytes, sizeof n);
    return ntohl(n);
}

// One client connection and its server connection.
class proxied_connection {
public:
    proxied_connection(int client, int server, std::uint64_t seed)
        : client_(client), server_(server), random_(seed) {}
    proxied_connection(const proxied_connection&) = delete;
    proxied_connection& operator=(const proxied_connection&) = delete;
    ~proxied_connection() {
        ::close(client_);
        ::close(server_);
    }

    void run() {
        char buffer[16384];
        while (true) {
            pollfd fds[2] = {{client_, POLLIN, 0}, {server_, POLLIN, 0}};
            if (::poll(fds, 2, 1000) < 0) {
                return;
            }
            if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                const ssize_t got = ::recv(server_, buffer, sizeof buffer, 0);
                if (got <= 0 || !send_all(client_, {buffer, static_cast<std::size_t>(got)})) {
                    return;
                }
            }
            if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                const ssize_t got = ::recv(client_, buffer, sizeof buffer, 0);
                if (got <= 0) {
                    return;
                }
                pending_.append(buffer, static_cast<std::size_t>(got));
                if (!forward_whole_messages()) {
                    return;
                }
            }
        }
    }

private:
    // Passes on every whole message in pending_, deciding each one's fate;
    // false once the connection is to be cut.
    bool forward_whole_messages() {
        while (true) {
            const std::size_t header = started_ ? 5 : 4;
            if (pending_.size() < header) {
                return true;
            }
            const std::size_t size =
                (started_ ? 1 : 0) + big_endian(pending_.data() + (started_ ? 1 : 0));
            if (pending_.size() < size) {
                return true;
            }
            const std::string message = pending_.substr(0, size);
            pending_.erase(0, size);
            if (!started_) {
                started_ = true;
                if (!send_all(server_, message)) {
                    return false;
                }
                continue;
            }
            const char type = message[0];
            const std::string_view body = std::string_view(message).substr(5);
            bool commit = false;
            if (type == 'Q') {
                commit = starts_with_commit(body);
            } else if (type == 'P') {
                // statement name, NUL, query text, NUL, ...
                parsed_commit_ = starts_with_commit(body.substr(body.find('\0') + 1));
            } else if (type == 'E') {
                commit = parsed_commit_;
            }
            if (!(commit ? pass_commit(message) : pass(message))) {
                return false;
            }
        }
    }

    bool pass(const std::string& message) {
        const int roll = percent_of(1000);
        if (roll < cut_permille) {
            say("cut");
            return false;
        }
        if (roll < cut_permille + stall_permille) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1 + percent_of(50)));
        }
        return send_all(server_, message);
    }

    bool pass_commit(const std::string& message) {
        const int roll = percent_of(100);
        if (roll < cut_commit_percent) {
            say("cut-commit");
            return false;
        }
        if (roll < cut_commit_percent + lost_ack_percent) {
            // The COMMIT and whatever the client sent with it (its Sync) go
            // on; the server's answer never comes back.
            if (!send_all(server_, message) || !send_all(server_, pending_)) {
                return false;
            }
            std::this_thread::sleep_for(commit_runs_within);
            say("lost-ack");
            return false;
        }
        return send_all(server_, message);
    }

    int percent_of(int range) { return std::uniform_int_distribution<int>(0, range - 1)(random_); }

    int client_;
    int server_;
    std::mt19937_64 random_;
    std::string pending_;
    bool started_ = false;
    bool parsed_commit_ = false;
};

int connect_to(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path)) {
        return -1;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    // Dies with the test that started it, even if that one is killed.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() == 1) {
        return 2;
    }
    if (argc != 3) {
        std::fprintf(stderr, "usage: fault_proxy <server socket> <seed>\n");
        return 2;
    }
    const std::string server_socket = argv[1];
    const std::uint64_t seed = std::stoull(argv[2]);

    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener, 64) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        std::perror("fault_proxy: listen");
        return 2;
    }
    {
        const std::lock_guard lock(output);
        std::printf("port %u\n", static_cast<unsigned>(ntohs(address.sin_port)));
        std::fflush(stdout);
    }
    for (std::uint64_t connection = 0;; ++connection) {
        const int client = ::accept(listener, nullptr, nullptr);
        if (client < 0) {
            continue;
        }
        const int server = connect_to(server_socket);
        if (server < 0) {
            ::close(client);  // the server is down: the client sees a refused connection
            continue;
        }
        std::thread([client, server, seed, connection] {
            proxied_connection(client, server, seed * 1000003U + connection).run();
        }).detach();
    }
}
