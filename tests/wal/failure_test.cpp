// A failed write, sync, rename or directory sync stops the log for good
// (fail-stop): the writer learns what failed, later writes fail fast, and a
// reopen recovers every acknowledged record.
#include "catch.hpp"
#include "wal_test_support.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;

namespace {

bool mentions(const Status& status, const std::string& text) {
    return status.message().find(text) != std::string::npos;
}

std::set<std::string> keys_of(const std::vector<ReplayedOp>& ops) {
    std::set<std::string> keys;
    for (const ReplayedOp& op : ops) keys.insert(op.key);
    return keys;
}

}  // namespace

TEMPLATE_TEST_CASE("A failed write or sync fails the writer, then every later write", "[wal][failure]", SyncWAL,
                   GroupCommitWAL) {
    struct Case {
        const char* call;
        int error;
    };
    const Case failure = GENERATE(Case{"write", ENOSPC}, Case{"write", EIO}, Case{"fdatasync", EIO});
    CAPTURE(failure.call, failure.error);

    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<TestType> wal;
    REQUIRE(open_collecting(fs, replayed, wal));
    for (int i = 0; i < 3; ++i) REQUIRE(wal->write(put("acked-" + std::to_string(i), "value")));

    fs.inject(failure.call, failure.error);
    const Status first = wal->write(put("refused", "value"));
    CHECK(first.code() == StatusCode::kIoError);
    CHECK(first.error_number() == failure.error);
    CHECK(mentions(first, std::string(failure.call) + " " + segment_path(1)));
    CHECK(mentions(first, "errno " + std::to_string(failure.error)));

    // The file system would succeed now; the log must not retry.
    const Status later = wal->write(put("later", "value"));
    CHECK(later.code() == StatusCode::kFailed);
    CHECK(mentions(later, first.message()));
    Lsn lsn = 0;
    CHECK(wal->append(put("appended", "value"), lsn).code() == StatusCode::kFailed);
    CHECK(wal->flush().code() == StatusCode::kFailed);
    CHECK(wal->close().code() != StatusCode::kOk);
    wal.reset();

    REQUIRE(open_collecting(fs, replayed, wal));
    const std::set<std::string> recovered = keys_of(replayed);
    for (int i = 0; i < 3; ++i) CHECK(recovered.count("acked-" + std::to_string(i)) == 1);
    CHECK(recovered.count("later") == 0);
    CHECK(recovered.count("appended") == 0);
    // The refused record may be on disk (its write reached the file before
    // the sync failed) but is never half there: replay checked it whole.
    CHECK(replayed.size() <= 4);
}

TEST_CASE("A relaxed commit after the background write failed reports the failure", "[wal][failure]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<GroupCommitWAL> wal;
    LogOptions options;
    options.flush_interval = std::chrono::milliseconds(2);
    REQUIRE(open_collecting(fs, replayed, wal, options));
    Lsn lsn = 0;
    REQUIRE(wal->append(put("appended", "value"), lsn));
    fs.inject("write", EIO);
    // The log thread meets the fault at its next flush; commit learns of it.
    Status committed;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (committed && std::chrono::steady_clock::now() < deadline) {
        committed = wal->commit(lsn);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(committed.code() == StatusCode::kIoError);
    CHECK(mentions(committed, "errno " + std::to_string(EIO)));
    CHECK(wal->commit(lsn).code() == StatusCode::kIoError);
}

TEST_CASE("Every writer waiting on a failed sync gets the error, none an acknowledgement", "[wal][failure]") {
    FaultFileSystem fs;
    fs.set_sync_delay(std::chrono::microseconds(500));
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<GroupCommitWAL> wal;
    REQUIRE(open_collecting(fs, replayed, wal));

    constexpr int kThreads = 8;
    std::atomic<int> failures{0};
    std::vector<std::vector<std::string>> acked(kThreads);
    std::vector<std::thread> writers;
    fs.inject("fdatasync", EIO, 10);  // the eleventh sync fails
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0;; ++i) {
                const std::string key = "w" + std::to_string(t) + "-" + std::to_string(i);
                const Status status = wal->write(put(key, "value"));
                if (!status) {
                    ++failures;
                    return;
                }
                acked[static_cast<std::size_t>(t)].push_back(key);
            }
        });
    }
    for (std::thread& writer : writers) writer.join();
    CHECK(failures == kThreads);
    CHECK(wal->stats().syncs == 10);
    wal.reset();

    REQUIRE(open_collecting(fs, replayed, wal));
    const std::set<std::string> recovered = keys_of(replayed);
    for (const auto& keys : acked)
        for (const std::string& key : keys) CHECK(recovered.count(key) == 1);
}

TEST_CASE("A failed directory sync fails the open that creates a segment, and a rotation", "[wal][failure]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<GroupCommitWAL> wal;

    fs.inject("fsync-dir", EIO);
    const Status refused = open_collecting(fs, replayed, wal);
    CHECK(refused.code() == StatusCode::kIoError);
    CHECK(mentions(refused, "fsync-dir " + kLogDir));
    CHECK(wal == nullptr);

    REQUIRE(open_collecting(fs, replayed, wal));
    REQUIRE(wal->write(put("before", "rotation")));
    fs.inject("fsync-dir", EIO);
    Lsn next = 0;
    CHECK(wal->rotate(next).code() == StatusCode::kIoError);
    CHECK(wal->write(put("after", "failed rotation")).code() == StatusCode::kFailed);
    wal.reset();

    REQUIRE(open_collecting(fs, replayed, wal));
    CHECK(keys_of(replayed) == std::set<std::string>{"before"});
}

TEST_CASE("A segment that fills up is rotated, and a failure there fails the log but not the synced group",
          "[wal][failure]") {
    FaultFileSystem fs;
    LogOptions options;
    options.segment_bytes = 256;
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, replayed, wal, options));
    for (int i = 0; i < 20; ++i) REQUIRE(wal->write(put("key-" + std::to_string(i), std::string(40, 'v'))));
    CHECK(wal->stats().segments > 3);

    fs.inject("open", EIO);  // the next rotation cannot create its segment
    Status status;
    int written = 0;
    while ((status = wal->write(put("more-" + std::to_string(written), std::string(40, 'v'))))) ++written;
    // The write whose group filled the segment was synced before the
    // rotation failed, so it was acknowledged; the next one is refused.
    CHECK(status.code() == StatusCode::kFailed);
    CHECK(mentions(status, "open"));
    wal.reset();

    REQUIRE(open_collecting(fs, replayed, wal, options));
    CHECK(replayed.size() == static_cast<std::size_t>(20 + written));
}

TEST_CASE("A failed rename while setting damaged segments aside fails the open", "[wal][failure]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, replayed, wal));
    REQUIRE(wal->write(put("one", "1")));
    Lsn next = 0;
    REQUIRE(wal->rotate(next));
    REQUIRE(wal->write(put("two", "2")));
    wal.reset();
    std::string first = fs.contents(segment_path(1));
    first.back() ^= 1;
    fs.set_contents(segment_path(1), first);

    LogOptions options;
    options.recovery_mode = RecoveryMode::kPointInTime;
    fs.inject("rename", EIO);
    const Status status = open_collecting(fs, replayed, wal, options);
    CHECK(status.code() == StatusCode::kIoError);
    CHECK(mentions(status, "rename " + segment_path(2)));
}
