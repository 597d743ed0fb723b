// A writing process killed with SIGKILL at a random moment: every record it
// had acknowledged is read back after reopening, on the real file system.
#include "catch.hpp"
#include "kill_child.hpp"
#include "temp_dir.hpp"
#include "wal_test_support.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <map>
#include <random>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;

namespace {

std::string value_for(const std::string& key) { return key + std::string(64, '#') + key; }

// The child: writers that report each acknowledged key through `report_fd`,
// one line per key (a write of less than PIPE_BUF bytes to a pipe is atomic).
template <class Log>
[[noreturn]] void write_until_killed(const std::string& dir, int report_fd, int threads) {
    LogOptions options;
    options.segment_bytes = 16 << 10;
    RecoveryReport report;
    std::unique_ptr<Log> wal;
    const Status opened = Log::open(
        dir, options, 0, [](const LogRecord&) { return Status::ok(); }, report, wal);
    if (!opened) {
        std::fprintf(stderr, "child: %s\n", opened.to_string().c_str());
        ::_exit(2);
    }
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
            for (long i = 0;; ++i) {
                const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
                if (!wal->write(put(key, value_for(key)))) ::_exit(3);
                const std::string line = key + "\n";
                if (::write(report_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(4);
            }
        });
    }
    for (std::thread& writer : writers) writer.join();
    ::_exit(0);
}

std::vector<std::string> lines_of(const std::string& all) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = all.find('\n', start)) != std::string::npos; start = end + 1)
        lines.push_back(all.substr(start, end - start));
    return lines;
}

}  // namespace

TEMPLATE_TEST_CASE("SIGKILL at a random point loses no acknowledged record", "[wal][crash]", SyncWAL,
                   GroupCommitWAL) {
    TempDir dir;
    std::mt19937 random(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::map<std::string, bool> acked;  // over every run: reopening keeps the earlier records too
    for (int run = 0; run < 6; ++run) {
        const int delay_ms = 20 + static_cast<int>(random() % 150);
        CAPTURE(run, delay_ms);
        const std::string reported = kill_after(std::chrono::milliseconds(delay_ms), [&](int fd) {
            write_until_killed<TestType>(dir.path() + "/log", fd, 4);
        });
        for (const std::string& key : lines_of(reported)) acked[key] = true;

        std::map<std::string, std::string> recovered;
        RecoveryReport recovery;
        std::unique_ptr<TestType> wal;
        REQUIRE(TestType::open(
            dir.path() + "/log", LogOptions{}, 0,
            [&](const LogRecord& record) {
                return for_each_operation(record, [&](const LogOperation& op) {
                    recovered[std::string(op.key)] = std::string(op.value);
                });
            },
            recovery, wal));
        std::size_t missing = 0;
        for (const auto& entry : acked) missing += recovered.count(entry.first) == 0 ? 1 : 0;
        CHECK(missing == 0);
        for (const auto& [key, value] : recovered) CHECK(value == value_for(key));
        CHECK(recovered.size() >= acked.size());
    }
    CHECK(!acked.empty());
}
