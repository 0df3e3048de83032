// A program outside settle's tree that uses the installed package (or the
// single header): an error and a request fingerprint.
#include <settle/settle.hpp>

#include <cstdio>
#include <string>

int main() {
    const settle::error e(settle::errc::unavailable, "consumer");
    const std::string fingerprint = settle::sha256::hash("abc").to_hex();
    std::printf("settle %d.%d.%d: %s, sha256(abc) %s\n", settle::version.major,
                settle::version.minor, settle::version.patch, e.code().message().c_str(),
                fingerprint.c_str());
    const bool ok =
        e.code() == settle::errc::unavailable &&
        fingerprint == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    return ok ? 0 : 1;
}
