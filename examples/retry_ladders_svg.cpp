// Draws docs/images/retry-ladders.svg: the delay after each attempt for every
// schedule in <settle/retry.hpp>, with the spread of each jitter as a band
// (5th to 95th percentile over 2000 seeds) around its median.
//
//     build/<preset>/examples/settle_retry_ladders_svg docs/images/retry-ladders.svg
//
// With no argument the SVG goes to standard output. The output depends only on
// the library's formulas and fixed seeds, so regenerating it gives the same file.
#include <settle/retry.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int attempts = 20;     // attempts 0 .. 19 on the x axis
constexpr int seeds = 2000;      // samples per attempt for a randomised schedule
constexpr double panel_w = 470;  // one panel, in SVG units
constexpr double panel_h = 300;
constexpr double margin_left = 64;
constexpr double margin_top = 34;
constexpr double plot_w = panel_w - margin_left - 16;
constexpr double plot_h = panel_h - margin_top - 40;
// The y axis: log10 of seconds, from 10 ms to 4 h.
constexpr double y_min = -2.0;
const double y_max = std::log10(4.0 * 3600.0);

struct series {
    std::string name;
    std::string colour;
    // Delay in seconds after attempt n for a seed; deterministic schedules ignore the seed.
    std::function<double(std::uint32_t, std::uint64_t)> delay;
    bool random;
};

struct panel {
    std::string title;
    std::vector<series> lines;
};

double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}

std::string format(const char* pattern, double a, double b = 0, double c = 0, double d = 0) {
    char buffer[256];
    std::snprintf(buffer, sizeof buffer, pattern, a, b, c, d);
    return buffer;
}

class svg {
public:
    void add(const std::string& text) { out_ += text; }
    [[nodiscard]] const std::string& text() const { return out_; }

private:
    std::string out_;
};

double x_of(double ox, int n) {
    return ox + margin_left + plot_w * n / (attempts - 1);
}

double y_of(double oy, double delay_seconds) {
    const double v = std::log10(std::max(delay_seconds, 1e-6));
    const double clamped = std::clamp(v, y_min, y_max);
    return oy + margin_top + plot_h * (1.0 - (clamped - y_min) / (y_max - y_min));
}

std::string escape(const std::string& text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        default: out += c;
        }
    }
    return out;
}

void axes(svg& s, double ox, double oy, const std::string& title) {
    s.add(
        format("<g><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" "
               "stroke=\"#cccccc\"/>\n",
               ox + margin_left, oy + margin_top, plot_w, plot_h));
    s.add(format("<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">",
                 ox + margin_left, oy + 22) +
          escape(title) + "</text>\n");
    struct tick {
        double seconds;
        const char* label;
    };
    const tick ticks[] = {{0.01, "10 ms"}, {0.1, "100 ms"}, {1, "1 s"},   {10, "10 s"},
                          {60, "1 min"},   {600, "10 min"}, {3600, "1 h"}};
    for (const tick& t : ticks) {
        const double y = y_of(oy, t.seconds);
        s.add(format("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                     ox + margin_left, y, ox + margin_left + plot_w, y));
        s.add(format("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">",
                     ox + margin_left - 4, y + 3) +
              t.label + "</text>\n");
    }
    for (int n = 0; n < attempts; n += 2) {
        const double x = x_of(ox, n);
        s.add(format(
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%.0f</text>\n", x,
            oy + margin_top + plot_h + 14, n));
    }
    s.add(
        format("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">"
               "attempt n (the delay after it fails)</text>\n",
               ox + margin_left + plot_w / 2, oy + margin_top + plot_h + 30));
    s.add("</g>\n");
}

void draw(svg& s, double ox, double oy, const panel& p) {
    axes(s, ox, oy, p.title);
    int legend_row = 0;
    for (const series& line : p.lines) {
        std::vector<double> low(attempts);
        std::vector<double> mid(attempts);
        std::vector<double> high(attempts);
        for (int n = 0; n < attempts; ++n) {
            const auto attempt = static_cast<std::uint32_t>(n);
            if (!line.random) {
                low[static_cast<std::size_t>(n)] = mid[static_cast<std::size_t>(n)] =
                    high[static_cast<std::size_t>(n)] = line.delay(attempt, 0);
                continue;
            }
            std::vector<double> samples;
            samples.reserve(seeds);
            for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
                samples.push_back(line.delay(attempt, seed * 0x9e3779b97f4a7c15ULL));
            }
            std::sort(samples.begin(), samples.end());
            low[static_cast<std::size_t>(n)] = samples[seeds / 20];
            mid[static_cast<std::size_t>(n)] = samples[seeds / 2];
            high[static_cast<std::size_t>(n)] = samples[seeds - seeds / 20 - 1];
        }
        if (line.random) {
            std::string band =
                "<polygon fill=\"" + line.colour + "\" fill-opacity=\"0.18\" points=\"";
            for (int n = 0; n < attempts; ++n) {
                band +=
                    format("%.1f,%.1f ", x_of(ox, n), y_of(oy, high[static_cast<std::size_t>(n)]));
            }
            for (int n = attempts - 1; n >= 0; --n) {
                band +=
                    format("%.1f,%.1f ", x_of(ox, n), y_of(oy, low[static_cast<std::size_t>(n)]));
            }
            s.add(band + "\"/>\n");
        }
        std::string path =
            "<polyline fill=\"none\" stroke=\"" + line.colour + "\" stroke-width=\"2\" points=\"";
        for (int n = 0; n < attempts; ++n) {
            path += format("%.1f,%.1f ", x_of(ox, n), y_of(oy, mid[static_cast<std::size_t>(n)]));
        }
        s.add(path + "\"/>\n");
        for (int n = 0; n < attempts; ++n) {
            s.add(format("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"", x_of(ox, n),
                         y_of(oy, mid[static_cast<std::size_t>(n)])) +
                  line.colour + "\"/>\n");
        }
    }
    // The legend last, bottom right (where no schedule goes), on a white box.
    bool any_random = false;
    std::size_t longest = 0;
    for (const series& line : p.lines) {
        longest = std::max(longest, line.name.size());
        any_random = any_random || line.random;
    }
    const std::string note = "line: median, band: 5-95 % of 2000 seeds";
    if (any_random) {
        longest = std::max(longest, note.size() - 4);
    }
    const std::size_t rows = p.lines.size() + (any_random ? 1 : 0);
    const double box_w = 30 + 5.8 * static_cast<double>(longest);
    const double box_h = 8 + 15 * static_cast<double>(rows);
    const double box_x = ox + margin_left + plot_w - box_w - 4;
    const double box_y = oy + margin_top + plot_h - box_h - 4;
    s.add(
        format("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"white\" "
               "fill-opacity=\"0.9\" stroke=\"#dddddd\"/>\n",
               box_x, box_y, box_w, box_h));
    for (const series& line : p.lines) {
        const double ly = box_y + 16 + 15 * legend_row++;
        s.add(format("<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"4\" fill=\"", box_x + 6,
                     ly - 5) +
              line.colour + "\"/>\n");
        s.add(format("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", box_x + 25, ly) +
              escape(line.name) + "</text>\n");
    }
    if (any_random) {
        const double ly = box_y + 16 + 15 * legend_row;
        s.add(format("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#666666\">", box_x + 6,
                     ly) +
              escape(note) + "</text>\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    const settle::exponential_backoff exponential{1s, 2.0, 10min};
    const settle::linear_backoff linear{10s, 20s, 10min};
    const settle::constant_backoff constant{30s};
    const settle::jittered full{exponential, settle::jitter::full};
    const settle::jittered equal{exponential, settle::jitter::equal};
    const settle::jittered ladder_full{settle::message_queue_ladder, settle::jitter::full};
    const settle::jittered ladder_equal{settle::message_queue_ladder, settle::jitter::equal};
    const settle::decorrelated_jitter decorrelated{1s, 10min};
    const settle::smooth_decorrelated_jitter smooth{1s, 10min};

    const auto fixed = [](auto schedule) {
        return [schedule](std::uint32_t n, std::uint64_t) { return seconds(schedule.delay(n)); };
    };
    const auto seeded = [](auto backoff) {
        return [backoff](std::uint32_t n, std::uint64_t seed) {
            return seconds(backoff.delay(n, seed));
        };
    };

    const std::vector<panel> panels{
        {"Schedules without jitter",
         {{"message_queue_ladder (18 steps)", "#1b6ca8", fixed(settle::message_queue_ladder),
           false},
          {"exponential 1 s x2, cap 10 min", "#d1495b", fixed(exponential), false},
          {"linear 10 s + 20 s n, cap 10 min", "#2e933c", fixed(linear), false},
          {"constant 30 s", "#7a5195", fixed(constant), false}}},
        {"Jitter on exponential 1 s x2, cap 10 min",
         {{"no jitter", "#555555", fixed(exponential), false},
          {"full: U[0, e)", "#d1495b", seeded(full), true},
          {"equal: e/2 + U[0, e/2)", "#1b6ca8", seeded(equal), true}}},
        {"Jitter on the message-queue ladder",
         {{"no jitter", "#555555", fixed(settle::message_queue_ladder), false},
          {"full", "#d1495b", seeded(ladder_full), true},
          {"equal", "#1b6ca8", seeded(ladder_equal), true}}},
        {"Decorrelated jitter, base 1 s, cap 10 min",
         {{"decorrelated: min(cap, U[base, 3 prev))", "#e07a1f", seeded(decorrelated), true},
          {"smooth decorrelated (Polly V2)", "#2e933c", seeded(smooth), true}}},
    };

    svg out;
    const double width = 2 * panel_w + 20;
    const double height = 2 * panel_h + 20;
    out.add(
        format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
               width, height, width, height));
    out.add("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    for (std::size_t i = 0; i < panels.size(); ++i) {
        const double ox = 10 + panel_w * static_cast<double>(i % 2);
        const double oy = 10 + panel_h * static_cast<double>(i / 2);
        draw(out, ox, oy, panels[i]);
    }
    out.add("</svg>\n");

    std::FILE* file = argc > 1 ? std::fopen(argv[1], "wb") : stdout;
    if (file == nullptr) {
        std::fprintf(stderr, "cannot open %s for writing\n", argv[1]);
        return 1;
    }
    const std::string& text = out.text();
    const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
    if (file != stdout) {
        std::fclose(file);
    }
    return written ? 0 : 1;
}
