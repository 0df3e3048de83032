// A program outside settle's tree that uses the installed package.
#include <settle/settle.hpp>

#include <cstdio>

int main() {
    const settle::error e(settle::errc::unavailable, "consumer");
    std::printf("settle %d.%d.%d: %s\n", settle::version.major, settle::version.minor,
                settle::version.patch, e.code().message().c_str());
    return e.code() == settle::errc::unavailable ? 0 : 1;
}
