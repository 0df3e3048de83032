// What every worker program of the kill and fault tests does before its
// work: it dies with the test that started it, picks the command its
// arguments name, and ends with one of three exit codes.
//
//     int main(int argc, char** argv) {
//         return process_main::run("my_worker", argc, argv,
//                                  {{"relay", "<table> <owner>", [](const auto& a) {
//                                        return relay(a[0], a[1]);
//                                    }}});
//     }
//
// Exit codes: what the command returns; 1 if it threw (the message goes to
// stderr); 2 for arguments no command takes (the usage goes to stderr) or a
// parent that is already gone.
#ifndef SETTLE_TESTS_PROCESS_MAIN_HPP
#define SETTLE_TESTS_PROCESS_MAIN_HPP

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace process_main {

// One command: its name, its arguments as the usage shows them, and what runs
// it, given the arguments after the name. Each word of `arguments` is one
// argument; a word "a|b" takes only a or b.
struct command {
    const char* name;
    const char* arguments;
    std::function<int(const std::vector<std::string>&)> run;
};

namespace detail {

// Whether `arg` is one that `word` of a usage takes: any, or one of a|b.
inline bool fits(const std::string& word, const std::string& arg) {
    if (word.find('|') == std::string::npos) {
        return true;
    }
    std::istringstream alternatives(word);
    for (std::string a; std::getline(alternatives, a, '|');) {
        if (a == arg) {
            return true;
        }
    }
    return false;
}

// Whether `args` (the name first) are what `c` takes.
inline bool takes(const command& c, const std::vector<std::string>& args) {
    std::istringstream usage(c.arguments);
    std::size_t i = 1;
    for (std::string word; usage >> word; ++i) {
        if (i >= args.size() || !fits(word, args[i])) {
            return false;
        }
    }
    return !args.empty() && args[0] == c.name && i == args.size();
}

}  // namespace detail

inline int run(const char* program, int argc, char** argv,
               std::initializer_list<command> commands) {
    // Dies with the test that started it, even if that one is killed.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() == 1) {
        return 2;
    }
    const std::vector<std::string> args(argv + 1, argv + argc);
    try {
        for (const command& c : commands) {
            if (detail::takes(c, args)) {
                return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
    const char* lead = "usage:";
    for (const command& c : commands) {
        std::fprintf(stderr, "%s %s %s %s\n", lead, program, c.name, c.arguments);
        lead = "      ";
    }
    return 2;
}

}  // namespace process_main

#endif  // SETTLE_TESTS_PROCESS_MAIN_HPP
