// Many writers on one log: nobody is acknowledged before the sync that
// covers their record, syncs are shared, memory stays bounded, the relaxed
// mode loses at most an interval, and a power cut keeps every acknowledged
// record.
#include "catch.hpp"
#include "wal_test_support.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
using namespace std::chrono_literals;

namespace {

std::string key_for(int thread, int i) { return "t" + std::to_string(thread) + "-" + std::to_string(i) + ";"; }
std::string value_for(const std::string& key) { return "value of " + key; }

// Worker-thread checks: Catch's assertions are not thread-safe.
struct Violations {
    std::mutex mutex;
    std::vector<std::string> found;
    void add(std::string what) {
        std::lock_guard<std::mutex> lock(mutex);
        found.push_back(std::move(what));
    }
};

// Runs `threads` writers that each write `per_thread` records and, after
// each acknowledgement, check that the record is already in the synced
// bytes of the segment.
template <class Log>
void write_checking_durability(FaultFileSystem& fs, Log& wal, int threads, int per_thread, Violations& violations) {
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const std::string key = key_for(t, i);
                const Status status = wal.write(put(key, value_for(key)));
                if (!status) {
                    violations.add(key + ": " + status.to_string());
                    return;
                }
                if (fs.durable_contents(segment_path(1)).find(key) == std::string::npos)
                    violations.add(key + " acknowledged before it was synced");
            }
        });
    }
    for (std::thread& writer : writers) writer.join();
}

}  // namespace

TEMPLATE_TEST_CASE("No writer is acknowledged before a sync covers its record", "[wal][group]", SyncWAL,
                   GroupCommitWAL) {
    LogFixture<TestType> log;
    log.fs.set_sync_delay(200us);
    REQUIRE(log.open());
    Violations violations;
    write_checking_durability(log.fs, *log.wal, 16, 40, violations);
    CHECK(violations.found.empty());
    if (!violations.found.empty()) FAIL(violations.found.front());

    const LogStats stats = log.wal->stats();
    CHECK(stats.records == 16 * 40);
    CHECK(stats.durable_lsn == 16 * 40);
    if (std::is_same_v<TestType, GroupCommitWAL>) {
        // 16 writers and a slow disk: writers that arrive during a sync share
        // the next one. How many share depends on the scheduler (under
        // ThreadSanitizer on a loaded machine, 321 syncs for 640 records
        // once); that syncs are shared at all does not.
        CHECK(stats.syncs < stats.records);
        CHECK(stats.largest_group > 1);
    }
    REQUIRE(log.reopen());
    CHECK(log.replayed.size() == 16 * 40);
}

TEST_CASE("Groups stay within max_group_bytes and pending records within buffer_bytes", "[wal][group]") {
    LogFixture<GroupCommitWAL> log;
    log.fs.set_sync_delay(300us);
    log.options.max_group_bytes = 1024;
    log.options.buffer_bytes = 4096;
    REQUIRE(log.open());
    GroupCommitWAL* const wal = log.wal.get();
    const LogOptions& options = log.options;

    // Appenders that do not wait for durability fill the buffer and must be held back.
    std::vector<std::thread> appenders;
    for (int t = 0; t < 8; ++t) {
        appenders.emplace_back([&, t] {
            for (int i = 0; i < 100; ++i) {
                Lsn lsn = 0;
                const std::string key = key_for(t, i);
                if (!wal->append(put(key, std::string(100, 'v')), lsn)) return;
                if (i % 10 == 9 && !wal->commit(lsn)) return;
            }
        });
    }
    for (std::thread& appender : appenders) appender.join();
    REQUIRE(wal->flush());
    const LogStats stats = wal->stats();
    CHECK(stats.durable_lsn == 800);
    CHECK(stats.largest_group_bytes <= options.max_group_bytes);
    CHECK(stats.max_pending_bytes <= options.buffer_bytes);
    CHECK(stats.max_pending_bytes > options.buffer_bytes / 2);  // the bound was reached, not avoided
}

TEST_CASE("A record larger than the buffer is still accepted", "[wal][group]") {
    LogFixture<GroupCommitWAL> log;
    log.options.buffer_bytes = 64;
    log.options.max_group_bytes = 64;
    REQUIRE(log.open());
    REQUIRE(log.wal->write(put("big", std::string(1000, 'b'))));
    REQUIRE(log.wal->write(put("small", "s")));
    REQUIRE(log.reopen());
    REQUIRE(log.replayed.size() == 2);
    CHECK(log.replayed[0].value.size() == 1000);
}

TEST_CASE("A commit delay lets more writers join a group", "[wal][group]") {
    LogFixture<GroupCommitWAL> log;
    log.options.commit_delay = 2ms;
    REQUIRE(log.open());
    Violations violations;
    write_checking_durability(log.fs, *log.wal, 8, 20, violations);
    CHECK(violations.found.empty());
    const LogStats stats = log.wal->stats();
    CHECK(stats.records == 160);
    CHECK(stats.average_group > 1.5);
}

TEST_CASE("The relaxed mode acknowledges at once and loses at most the last interval", "[wal][group][relaxed]") {
    LogFixture<GroupCommitWAL> log;
    log.options.flush_interval = 50ms;
    REQUIRE(log.open());
    const LogOptions& options = log.options;
    std::vector<ReplayedOp>& replayed = log.replayed;

    using Clock = std::chrono::steady_clock;
    std::vector<std::pair<Clock::time_point, std::string>> acked;
    std::size_t acked_before_durable = 0;
    const auto stop_at = Clock::now() + 400ms;
    for (int i = 0; Clock::now() < stop_at; ++i) {
        const std::string key = key_for(0, i);
        Lsn lsn = 0;
        REQUIRE(log.wal->append(put(key, value_for(key)), lsn));
        REQUIRE(log.wal->commit(lsn));
        if (log.wal->stats().durable_lsn < lsn) ++acked_before_durable;
        acked.emplace_back(Clock::now(), key);
        std::this_thread::sleep_for(100us);
    }
    // Acknowledged without waiting for a sync. Asked right after each
    // acknowledgement rather than once at the end, where the flusher may
    // just have synced everything.
    CHECK(acked_before_durable > acked.size() / 2);
    const auto cut_at = Clock::now();
    log.fs.power_cut();
    log.wal.reset();
    log.fs.revive();
    REQUIRE(log.open());
    std::size_t lost = 0;
    Clock::duration oldest_loss{0};
    for (std::size_t i = replayed.size(); i < acked.size(); ++i) {
        ++lost;
        oldest_loss = std::max(oldest_loss, cut_at - acked[i].first);
    }
    for (std::size_t i = 0; i < replayed.size(); ++i) CHECK(replayed[i].key == acked[i].second);
    // At most one interval, plus scheduling slack for a loaded machine.
    CHECK(oldest_loss <= options.flush_interval + 150ms);
    CHECK(replayed.size() + lost == acked.size());
    CHECK(replayed.size() > 0);
}

TEST_CASE("Closing a relaxed log makes everything durable", "[wal][group][relaxed]") {
    LogFixture<GroupCommitWAL> log;
    log.options.flush_interval = 10s;
    REQUIRE(log.open());
    for (int i = 0; i < 100; ++i) REQUIRE(log.wal->write(put(key_for(0, i), "v")));
    CHECK(log.wal->stats().durable_lsn == 0);
    REQUIRE(log.wal->close());
    log.fs.power_cut();
    log.fs.revive();
    REQUIRE(log.reopen());
    CHECK(log.replayed.size() == 100);
}

TEMPLATE_TEST_CASE("After a power cut every acknowledged record is read back and nothing else", "[wal][power]", SyncWAL,
                   GroupCommitWAL) {
    const unsigned seed = GENERATE(1u, 2u, 3u, 4u, 5u);
    CAPTURE(seed);
    std::mt19937 random(seed);
    LogFixture<TestType> log;
    log.fs.set_sync_delay(100us);
    log.options.segment_bytes = 2048;  // rotations, so directory syncs matter too
    REQUIRE(log.open());

    constexpr int kThreads = 6;
    std::vector<std::vector<std::string>> acked(kThreads);
    std::atomic<bool> any_acked{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0;; ++i) {
                const std::string key = key_for(t, i);
                if (!log.wal->write(put(key, value_for(key)))) return;  // the power is gone
                acked[static_cast<std::size_t>(t)].push_back(key);
                any_acked.store(true);
            }
        });
    }
    // The cut comes a random while after the first acknowledgement, however
    // slowly the writers start on a loaded machine.
    while (!any_acked.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + random() % 40));
    log.fs.power_cut();
    for (std::thread& writer : writers) writer.join();
    log.wal.reset();
    log.fs.revive();

    REQUIRE(log.open());
    const std::vector<ReplayedOp>& replayed = log.replayed;
    std::map<std::string, std::string> recovered;
    for (const ReplayedOp& op : replayed) recovered[op.key] = op.value;
    std::size_t total_acked = 0;
    for (const auto& keys : acked) {
        total_acked += keys.size();
        for (const std::string& key : keys) {
            const auto it = recovered.find(key);
            CHECK(it != recovered.end());
            if (it != recovered.end()) CHECK(it->second == value_for(key));
        }
    }
    CHECK(total_acked > 0);
    // Nothing invented: every record replayed is one some writer wrote.
    for (const auto& [key, value] : recovered) CHECK(value == value_for(key));
    // Durability is prefix-closed: LSNs 1, 2, 3... without a gap. And each
    // writer's records are in the order it wrote them.
    for (std::size_t i = 0; i < replayed.size(); ++i) CHECK(replayed[i].lsn == i + 1);
    std::map<std::string, int> next_of_thread;
    for (const ReplayedOp& op : replayed) {
        const std::string thread = op.key.substr(0, op.key.find('-'));
        const int i = std::stoi(op.key.substr(op.key.find('-') + 1));
        CHECK(i == next_of_thread[thread]++);
    }
}
