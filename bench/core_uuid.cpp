// UUIDv7: generating an id against only reading the same clock and drawing the
// same randomness; formatting and parsing against what one writes by hand with
// snprintf and std::from_chars.
#include <settle/clock.hpp>
#include <settle/uuid.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Ids to format and parse, different each iteration so nothing is folded away.
constexpr std::size_t sample_count = 1024;

std::vector<settle::uuid> sample_ids() {
    settle::manual_clock clock(settle::manual_clock::time_point(std::chrono::milliseconds(1)));
    std::mt19937_64 random(42);
    settle::uuid_v7_generator next(clock, random);
    std::vector<settle::uuid> ids;
    for (std::size_t i = 0; i < sample_count; ++i) {
        clock.advance(std::chrono::microseconds(700));
        ids.push_back(next());
    }
    return ids;
}

std::vector<std::string> sample_texts() {
    std::vector<std::string> texts;
    for (const auto& id : sample_ids()) {
        texts.push_back(id.to_string());
    }
    return texts;
}

// --- generation -----------------------------------------------------------

void uuid_generate_system_clock(benchmark::State& state) {
    std::chrono::system_clock clock;
    std::mt19937_64 random(1);
    settle::uuid_v7_generator next(clock, random);
    for (auto _ : state) {
        auto id = next();
        benchmark::DoNotOptimize(id);
    }
}

// One clock read and one 64-bit draw per id: what the generator needs at least.
void baseline_clock_and_random_system_clock(benchmark::State& state) {
    std::chrono::system_clock clock;
    std::mt19937_64 random(1);
    for (auto _ : state) {
        auto now = clock.now();
        auto bits = random();
        benchmark::DoNotOptimize(now);
        benchmark::DoNotOptimize(bits);
    }
}

// The same with a clock that costs one atomic load, so the generator's own work shows.
void uuid_generate_manual_clock(benchmark::State& state) {
    settle::manual_clock clock(settle::manual_clock::time_point(std::chrono::hours(480'000)));
    std::mt19937_64 random(1);
    settle::uuid_v7_generator next(clock, random);
    for (auto _ : state) {
        auto id = next();
        benchmark::DoNotOptimize(id);
    }
}

void baseline_clock_and_random_manual_clock(benchmark::State& state) {
    settle::manual_clock clock(settle::manual_clock::time_point(std::chrono::hours(480'000)));
    std::mt19937_64 random(1);
    for (auto _ : state) {
        auto now = clock.now();
        auto bits = random();
        benchmark::DoNotOptimize(now);
        benchmark::DoNotOptimize(bits);
    }
}

// --- formatting -----------------------------------------------------------

void uuid_write(benchmark::State& state) {
    const auto ids = sample_ids();
    std::array<char, settle::uuid::text_size> text{};
    std::size_t i = 0;
    for (auto _ : state) {
        auto view = ids[i++ % sample_count].write(text);
        benchmark::DoNotOptimize(view);
        benchmark::ClobberMemory();
    }
}

// The by-hand way: snprintf of the sixteen bytes.
int snprintf_uuid(const settle::uuid& id, char* out, std::size_t size) {
    const auto& b = id.bytes();
    const auto byte = [&](std::size_t i) { return std::to_integer<unsigned>(b[i]); };
    return std::snprintf(
        out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", byte(0),
        byte(1), byte(2), byte(3), byte(4), byte(5), byte(6), byte(7), byte(8), byte(9), byte(10),
        byte(11), byte(12), byte(13), byte(14), byte(15));
}

void baseline_write_snprintf(benchmark::State& state) {
    const auto ids = sample_ids();
    std::array<char, settle::uuid::text_size + 1> text{};
    std::size_t i = 0;
    for (auto _ : state) {
        auto written = snprintf_uuid(ids[i++ % sample_count], text.data(), text.size());
        benchmark::DoNotOptimize(written);
        benchmark::ClobberMemory();
    }
}

void uuid_to_string(benchmark::State& state) {
    const auto ids = sample_ids();
    std::size_t i = 0;
    for (auto _ : state) {
        auto text = ids[i++ % sample_count].to_string();
        benchmark::DoNotOptimize(text);
    }
}

void baseline_to_string_snprintf(benchmark::State& state) {
    const auto ids = sample_ids();
    std::size_t i = 0;
    for (auto _ : state) {
        std::string text(settle::uuid::text_size, '\0');
        // snprintf needs room for its terminator: write 36 characters and a '\0' at text[36].
        auto written = snprintf_uuid(ids[i++ % sample_count], text.data(), text.size() + 1);
        benchmark::DoNotOptimize(written);
        benchmark::DoNotOptimize(text);
    }
}

// --- parsing --------------------------------------------------------------

void uuid_parse(benchmark::State& state) {
    const auto texts = sample_texts();
    std::size_t i = 0;
    for (auto _ : state) {
        auto parsed = settle::uuid::parse(texts[i++ % sample_count]);
        benchmark::DoNotOptimize(parsed);
    }
}

// The by-hand way: five std::from_chars over the hex groups, checking the
// hyphens but not the group lengths (so it accepts more than it should).
bool from_chars_uuid(std::string_view text, std::array<std::uint64_t, 5>& groups) {
    if (text.size() != settle::uuid::text_size) {
        return false;
    }
    constexpr std::array<std::size_t, 5> starts{0, 9, 14, 19, 24};
    constexpr std::array<std::size_t, 5> ends{8, 13, 18, 23, 36};
    for (std::size_t g = 0; g < 5; ++g) {
        const char* first = text.data() + starts[g];
        const char* last = text.data() + ends[g];
        const auto [end, error] = std::from_chars(first, last, groups[g], 16);
        if (error != std::errc() || end != last || (g < 4 && *last != '-')) {
            return false;
        }
    }
    return true;
}

void baseline_parse_from_chars(benchmark::State& state) {
    const auto texts = sample_texts();
    std::array<std::uint64_t, 5> groups{};
    std::size_t i = 0;
    for (auto _ : state) {
        auto ok = from_chars_uuid(texts[i++ % sample_count], groups);
        benchmark::DoNotOptimize(ok);
        benchmark::DoNotOptimize(groups);
    }
}

}  // namespace

BENCHMARK(uuid_generate_system_clock)->Name("uuid/generate_v7/system_clock");
BENCHMARK(baseline_clock_and_random_system_clock)
    ->Name("baseline/uuid/clock_and_random/system_clock");
BENCHMARK(uuid_generate_manual_clock)->Name("uuid/generate_v7/manual_clock");
BENCHMARK(baseline_clock_and_random_manual_clock)
    ->Name("baseline/uuid/clock_and_random/manual_clock");
BENCHMARK(uuid_write)->Name("uuid/write");
BENCHMARK(baseline_write_snprintf)->Name("baseline/uuid/write_snprintf");
BENCHMARK(uuid_to_string)->Name("uuid/to_string");
BENCHMARK(baseline_to_string_snprintf)->Name("baseline/uuid/to_string_snprintf");
BENCHMARK(uuid_parse)->Name("uuid/parse");
BENCHMARK(baseline_parse_from_chars)->Name("baseline/uuid/parse_from_chars");
