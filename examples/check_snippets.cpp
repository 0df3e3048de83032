// Checks that the code a guide shows is the code an example runs. In the
// guide, a block introduced by
//
//     <!-- snippet: order_service.cpp#create-order -->
//     ```cpp
//     ...
//     ```
//
// must equal, line by line, the lines of examples/order_service.cpp between
// two `// [create-order]` lines (leading and trailing spaces aside, since a
// snippet is shown unindented; the markers of other snippets inside it are
// left out). A block may be of any language: a ```mermaid block introduced
// by `<!-- snippet: state_machines.txt#order-machine -->` is compared with
// what the example state_machines wrote between its markers (a picture drawn
// from the real table). Usage: settle_check_snippets <guide> <dir>...: each
// file is looked for in the directories in order.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string read(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string trim(const std::string& line) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) {
        return "";
    }
    return line.substr(first, line.find_last_not_of(" \t") - first + 1);
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(trim(line));
    }
    return out;
}

// A marker line, `// [name]`: other snippets' markers inside a region are not shown.
bool is_marker(const std::string& line) {
    return line.size() > 5 && line.starts_with("// [") && line.ends_with("]") &&
           line.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-", 4) == line.size() - 1;
}

// The lines between the two marker lines `// [name]`, trimmed, without other markers.
std::vector<std::string> region(const std::vector<std::string>& source, const std::string& name) {
    const std::string marker = "// [" + name + "]";
    std::vector<std::string> out;
    int seen = 0;
    for (const auto& line : source) {
        if (line == marker) {
            if (++seen == 2) {
                return out;
            }
        } else if (seen == 1 && !is_marker(line)) {
            out.push_back(line);
        }
    }
    return {};
}

// The file as found in the first of the directories that has it.
std::string read_from(const std::vector<std::string>& dirs, const std::string& file) {
    for (const auto& dir : dirs) {
        if (std::ifstream(dir + "/" + file)) {
            return read(dir + "/" + file);
        }
    }
    return read(dirs.front() + "/" + file);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: settle_check_snippets <guide.md> <dir>...\n");
        return 2;
    }
    const std::vector<std::string> dirs(argv + 2, argv + argc);
    const std::string guide = read(argv[1]);
    const std::string tag = "<!-- snippet: ";
    int checked = 0, failed = 0;
    for (auto at = guide.find(tag); at != std::string::npos; at = guide.find(tag, at + 1)) {
        const auto end = guide.find(" -->", at);
        const std::string ref = guide.substr(at + tag.size(), end - at - tag.size());
        const auto hash = ref.find('#');
        const std::string file = ref.substr(0, hash), name = ref.substr(hash + 1);
        const auto open = guide.find('\n', guide.find("```", end)) + 1;
        const auto close = guide.find("\n```", open);
        const auto shown = lines(guide.substr(open, close - open));
        const auto source = region(lines(read_from(dirs, file)), name);
        ++checked;
        if (source.empty() || shown != source) {
            ++failed;
            std::fprintf(stderr, "%s: the snippet %s differs from %s\n", argv[1], ref.c_str(),
                         file.c_str());
            for (std::size_t i = 0; i < std::max(shown.size(), source.size()); ++i) {
                const std::string a = i < shown.size() ? shown[i] : "<none>";
                const std::string b = i < source.size() ? source[i] : "<none>";
                if (a != b) {
                    std::fprintf(stderr, "  line %zu\n    guide:   %s\n    example: %s\n", i + 1,
                                 a.c_str(), b.c_str());
                    break;
                }
            }
        }
    }
    std::printf("%d snippets checked, %d differ\n", checked, failed);
    return failed == 0 && checked > 0 ? 0 : 1;
}
