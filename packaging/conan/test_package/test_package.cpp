#include <settle/settle.hpp>

#include <cstdio>

int main() {
    const auto digest = settle::sha256::hash("abc");
    std::printf("settle %d.%d.%d: sha256(abc) %s\n", settle::version.major, settle::version.minor,
                settle::version.patch, digest.to_hex().c_str());
    return digest.to_hex().rfind("ba7816bf", 0) == 0 ? 0 : 1;
}
