// A lease with a fencing token. Worker A takes the lease on a report, then
// stalls (a long pause) past the lease's end; worker B takes the lease over
// and writes the report. When A wakes it still believes it holds the lease,
// but its write carries an older token, and the fence refuses it.
//
// The clock is manual, so the pause takes no time.
#include <settle/clock.hpp>
#include <settle/lease.hpp>
#include <settle/stores/memory_lease.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

int main() {
    settle::manual_clock clock{std::chrono::sys_days{std::chrono::year{2026} / 12 / 4}};
    settle::memory::database db;
    settle::memory::lease_table<std::string> lease_rows(db);
    settle::memory::fence_table<std::string> fence_rows(db);
    settle::memory::table<std::string, std::string> reports(db);
    settle::leases grants(lease_rows, clock);
    settle::fence fence(fence_rows);

    // Writes the report only if no newer token has written it: the check and
    // the write in one transaction.
    const auto write_report = [&](const settle::lease<std::string>& held, const std::string& text) {
        return settle::in_transaction(fence_rows, [&](settle::memory::transaction& tx) {
            const auto admitted = fence.admit(tx, "report-42", held.token);
            if (admitted) {
                reports.put(tx, "report-42", text);
            }
            return admitted.is_admitted();
        });
    };
    const auto acquire = [&](const char* who) {
        return settle::in_transaction(lease_rows, [&](settle::memory::transaction& tx) {
            return grants.acquire(tx, "report-42", who, 10s);
        });
    };

    const auto a = acquire("worker-a");
    std::printf("worker-a: %s, token %llu\n", settle::to_string(a.outcome()).data(),
                static_cast<unsigned long long>(a.current().token.value()));
    std::printf("worker-b: %s (held by %s)\n",
                settle::to_string(acquire("worker-b").outcome()).data(),
                a.current().holder.c_str());

    clock.advance(15s);  // worker-a pauses for 15 s: its lease ends meanwhile

    const auto b = acquire("worker-b");
    std::printf("worker-b: %s, token %llu\n", settle::to_string(b.outcome()).data(),
                static_cast<unsigned long long>(b.current().token.value()));
    const bool b_wrote = write_report(b.current(), "written by worker-b");
    const bool a_wrote = write_report(a.current(), "written by worker-a");  // it wakes up
    std::printf("worker-b writes: %s; worker-a writes with its old token: %s\n",
                b_wrote ? "admitted" : "refused", a_wrote ? "admitted" : "refused (stale)");

    const auto report = settle::in_transaction(fence_rows, [&](settle::memory::transaction& tx) {
        return *reports.find(tx, "report-42");
    });
    std::printf("report-42: %s\n", report.c_str());
    return a && !b.is_held() && b && b_wrote && !a_wrote ? 0 : 1;
}
