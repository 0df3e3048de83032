// settle: consistency primitives for C++20.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SETTLE_TESTS_SQLITE_TEMP_DATABASE_HPP
#define SETTLE_TESTS_SQLITE_TEMP_DATABASE_HPP

// A database file name unique to this process and this object, removed with
// its -wal and -shm files when the object is destroyed.

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace settle_test {

class temp_database {
public:
    temp_database() : path_(make_path()) {}
    temp_database(const temp_database&) = delete;
    temp_database& operator=(const temp_database&) = delete;
    ~temp_database() {
        std::error_code ignored;
        for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
            std::filesystem::remove(path_ + suffix, ignored);
        }
    }

    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    static std::string make_path() {
        static const unsigned long long run = std::random_device{}();
        static std::atomic<unsigned> counter{0};
        return (std::filesystem::temp_directory_path() /
                ("settle-sqlite-" + std::to_string(run) + "-" + std::to_string(++counter) + ".db"))
            .string();
    }

    std::string path_;
};

}  // namespace settle_test

#endif  // SETTLE_TESTS_SQLITE_TEMP_DATABASE_HPP
