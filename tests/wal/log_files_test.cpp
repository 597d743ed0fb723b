// The read-only readers of log and snapshot files: they report damage as
// opening would, and leave every file as it was.
#include "catch.hpp"
#include "wal_test_support.hpp"

#include <kvstore/log_files.hpp>
#include <kvstore/snapshot_files.hpp>

#include <kvstore/detail/snapshot_file.hpp>

#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;

namespace {

// Three records in one segment, then the empty segment close() seals the log with.
std::vector<LogSegment> write_three(FaultFileSystem& fs) {
    std::vector<ReplayedOp> ignored;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, ignored, wal));
    for (const char* key : {"a", "b", "c"}) REQUIRE(wal->write(put(key, "v")));
    REQUIRE(wal->close());
    std::vector<LogSegment> segments;
    REQUIRE(list_log_segments(fs, kLogDir, segments));
    REQUIRE(segments.size() == 2);
    return segments;
}

}  // namespace

TEST_CASE("read_log_files reports a torn tail and leaves it in place, where opening the log cuts it",
          "[wal][log-files]") {
    FaultFileSystem fs;
    const std::vector<LogSegment> segments = write_three(fs);
    const std::string newest = kLogDir + "/" + segments.back().name;
    const std::string torn = fs.contents(newest) + "half a record";
    fs.set_contents(newest, torn);

    std::vector<std::string> keys;
    RecoveryReport report;
    REQUIRE(read_log_files(fs, kLogDir, 0, RecoveryMode::kTolerateTornTail,
                           [&](const LogRecord& record) {
                               return for_each_operation(record,
                                                         [&](const LogOperation& op) { keys.emplace_back(op.key); });
                           },
                           report));
    CHECK(keys == std::vector<std::string>{"a", "b", "c"});
    CHECK(report.truncated);
    REQUIRE(report.dropped.size() == 1);
    CHECK(report.dropped[0].file == newest);
    CHECK(fs.contents(newest) == torn);

    std::vector<ReplayedOp> replayed;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, replayed, wal));
    CHECK(replayed.size() == 3);
    CHECK(fs.contents(newest).size() < torn.size());
}

TEST_CASE("read_log_files refuses damage its mode does not allow, naming the file and offset", "[wal][log-files]") {
    FaultFileSystem fs;
    const std::vector<LogSegment> segments = write_three(fs);
    const std::string older = kLogDir + "/" + segments.front().name;
    std::string bytes = fs.contents(older);
    bytes[kLogFileHeaderSize + kLogRecordHeaderSize] ^= 1;  // the first record's payload
    fs.set_contents(older, bytes);

    RecoveryReport report;
    const Status status = read_log_files(fs, kLogDir, 0, RecoveryMode::kTolerateTornTail,
                                         [](const LogRecord&) { return Status::ok(); }, report);
    REQUIRE(status.code() == StatusCode::kCorruption);
    CHECK(status.to_string().find(older) != std::string::npos);
    CHECK(status.to_string().find("offset " + std::to_string(kLogFileHeaderSize)) != std::string::npos);
    CHECK(fs.contents(older) == bytes);
}

TEST_CASE("A segment's reader, record headers and payloads read through the public names", "[wal][log-files]") {
    FaultFileSystem fs;
    const std::vector<LogSegment> segments = write_three(fs);
    Lsn first = 0;
    REQUIRE(parse_log_segment_name(segments.front().name, first));
    CHECK(first == segments.front().first_lsn);
    CHECK_FALSE(parse_log_segment_name("notes.txt", first));

    const std::string path = kLogDir + "/" + segments.front().name;
    std::unique_ptr<ReadableFile> file;
    REQUIRE(fs.open_readable(path, file));
    const std::string bytes = fs.contents(path);
    LogSegmentReader reader(*file, path, bytes.size());
    LogFileHeader header;
    REQUIRE(reader.read_file_header(header) == LogSegmentReader::Next::kRecord);
    CHECK(header.first_lsn == first);
    CHECK((header.flags & kLogFollowsSetAside) == 0);
    LogRecord record{};
    std::vector<std::string> keys;
    while (reader.next(record) == LogSegmentReader::Next::kRecord) {
        LogRecordHeader parsed{};
        CHECK(parse_log_record_header(bytes.data() + record.offset, parsed) == nullptr);
        CHECK(parsed.lsn == record.lsn);
        CHECK(decode_log_payload(record, [&](const LogOperation& op) { keys.emplace_back(op.key); }) == nullptr);
    }
    CHECK(keys == std::vector<std::string>{"a", "b", "c"});
    std::string garbage(kLogRecordHeaderSize, 'x');
    LogRecordHeader parsed{};
    CHECK(parse_log_record_header(garbage.data(), parsed) != nullptr);
}

TEST_CASE("read_snapshot reads every entry and names the damage it finds", "[wal][log-files][snapshot]") {
    FaultFileSystem fs;
    REQUIRE(fs.create_dir(kLogDir, 0700));
    detail::snapshot::Writer writer(fs, kLogDir, 4, 0600);
    REQUIRE(writer.open());
    writer.add({"k", "v", 0});
    writer.add({"l", "w", 99});
    REQUIRE(writer.finish());
    const std::string name = detail::snapshot::file_name(4);
    Lsn replay_from = 0;
    REQUIRE(parse_snapshot_name(name, replay_from));
    CHECK(replay_from == 4);
    CHECK_FALSE(parse_snapshot_name(name + ".tmp", replay_from));

    const std::string path = kLogDir + "/" + name;
    std::uint64_t entries = 0;
    std::vector<std::string> seen;
    REQUIRE(read_snapshot(fs, path, replay_from, entries, [&](const SnapshotEntry& entry) {
        seen.push_back(std::string(entry.key) + "=" + std::string(entry.value) + "@" + std::to_string(entry.expiry));
    }));
    CHECK(entries == 2);
    CHECK(seen == std::vector<std::string>{"k=v@0", "l=w@99"});

    std::string bytes = fs.contents(path);
    bytes[bytes.size() / 2] ^= 1;
    fs.set_contents(path, bytes);
    const Status status = read_snapshot(fs, path, replay_from, entries, [](const SnapshotEntry&) {});
    CHECK(status.code() == StatusCode::kCorruption);
    CHECK(status.to_string().find(path) != std::string::npos);
    CHECK(fs.contents(path) == bytes);
}
