// SHA-256 throughput: settle's portable code against libcrypto's, at the sizes a
// fingerprint sees (a small request, a typical body, a large upload).
#include <settle/sha256.hpp>

#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

std::vector<std::uint8_t> message(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    std::uint32_t x = 0x9e3779b9;
    for (auto& b : bytes) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::uint8_t>(x >> 24);
    }
    return bytes;
}

void settle_sha256_hash(benchmark::State& state) {
    const auto bytes = message(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        auto digest = settle::sha256::hash(std::span<const std::uint8_t>(bytes));
        benchmark::DoNotOptimize(digest);
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

// libcrypto at its fastest: the digest fetched once, one context reused, so the
// numbers measure hashing rather than OpenSSL 3's per-call algorithm lookup.
void libcrypto_sha256(benchmark::State& state) {
    const auto bytes = message(static_cast<std::size_t>(state.range(0)));
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    if (md == nullptr || context == nullptr) {
        state.SkipWithError("libcrypto has no SHA-256");
    }
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    for (auto _ : state) {
        if (EVP_DigestInit_ex(context, md, nullptr) != 1 ||
            EVP_DigestUpdate(context, bytes.data(), bytes.size()) != 1 ||
            EVP_DigestFinal_ex(context, digest.data(), &size) != 1) {
            state.SkipWithError("libcrypto SHA-256 failed");
            break;
        }
        benchmark::DoNotOptimize(digest);
    }
    EVP_MD_CTX_free(context);
    EVP_MD_free(md);
    state.SetBytesProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(settle_sha256_hash)->Name("sha256/hash")->Arg(64)->Arg(1024)->Arg(1 << 20);
BENCHMARK(libcrypto_sha256)->Name("baseline/libcrypto_sha256")->Arg(64)->Arg(1024)->Arg(1 << 20);
