// settle's showcase: a tour of what the library offers, one block at a time.
#include <settle/settle.hpp>

#include <cstdio>

int main() {
    std::printf("settle %d.%d.%d\n", settle::version.major, settle::version.minor,
                settle::version.patch);

    // Failures are exceptions carrying a std::error_code of settle's category.
    try {
        throw settle::error(settle::errc::unavailable, "orders database: connection refused");
    } catch (const settle::error& e) {
        std::printf("failure: [%s] %s\n", e.code().message().c_str(), e.what());
    }
    return 0;
}
