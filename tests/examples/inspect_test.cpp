// kvstore-inspect run as a program on directories that a real Store wrote
// and the tests then damaged; what it predicts about Store::open is checked
// against Store::open itself.
#include "catch.hpp"
#include "temp_dir.hpp"

#include <kvstore/detail/log_reader.hpp>
#include <kvstore/kvstore.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

using namespace kvstore;
using namespace std::chrono_literals;
namespace wal = kvstore::detail::log;

namespace {

using TestStore = Store<std::string, std::string, SyncWAL>;

const std::string kSnapshot = "snapshot-00000000000000000101.kvs";
const std::string kSegment = "wal-00000000000000000101.log";
// The segment a clean close leaves after the last record (LSN 150).
const std::string kSealSegment = "wal-00000000000000000151.log";

struct Run {
    int exit_code = -1;
    std::string output;
};

Run inspect(const std::string& args) {
    const std::string command = std::string("'") + KVSTORE_INSPECT_PATH + "' " + args + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    Run run;
    char buffer[4096];
    for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) run.output.append(buffer, got);
    const int status = ::pclose(pipe);
    REQUIRE(WIFEXITED(status));
    run.exit_code = WEXITSTATUS(status);
    return run;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs the tool on a directory it must find damaged (exit status 1).
std::string inspect_damaged(const std::string& dir) {
    const Run run = inspect(dir);
    INFO(run.output);
    CHECK(run.exit_code == 1);
    return run.output;
}

// "<path> at offset N (record): reason", as the tool and Status name a damaged place.
std::string at(const std::string& path, std::uint64_t offset, const std::string& record_and_reason) {
    return path + " at offset " + std::to_string(offset) + record_and_reason;
}

StoreOptions options() {
    StoreOptions options;
    options.checkpoint_bytes = 0;  // the tests say when to checkpoint
    options.sweep_interval = 0ms;
    return options;
}

std::string key(int i) { return "key-" + std::to_string(i); }
std::string value(int i) { return "value of key " + std::to_string(i); }

// 100 puts, a checkpoint, 50 more: snapshot 101 holds 100 entries and
// segment 101 the records with LSNs 101-150.
void fill(const std::string& dir) {
    std::unique_ptr<TestStore> store;
    REQUIRE(TestStore::open(dir, options(), store));
    for (int i = 0; i < 100; ++i) REQUIRE(store->put(key(i), value(i)));
    REQUIRE(store->checkpoint());
    for (int i = 100; i < 150; ++i) REQUIRE(store->put(key(i), value(i)));
    REQUIRE(store->close());
}

// Where each record of a segment starts, read with the library's reader.
std::vector<std::uint64_t> record_offsets(const std::string& path) {
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> file;
    REQUIRE(default_file_system().file_size(path, size));
    REQUIRE(default_file_system().open_readable(path, file));
    wal::LogReader reader(*file, path, size);
    wal::FileHeader header;
    REQUIRE(reader.read_file_header(header) == wal::LogReader::Next::kRecord);
    std::vector<std::uint64_t> offsets;
    wal::RecordView record{};
    while (reader.next(record) == wal::LogReader::Next::kRecord) offsets.push_back(record.offset);
    return offsets;
}

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void overwrite(const std::string& path, std::uint64_t offset, const std::string& bytes) {
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(file.good());
}

void flip_byte(const std::string& path, std::uint64_t offset) {
    const std::string all = contents(path);
    REQUIRE(offset < all.size());
    overwrite(path, offset, std::string(1, static_cast<char>(all[offset] ^ 0x5a)));
}

}  // namespace

TEST_CASE("An intact directory exits 0 and counts its records and entries", "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    const Run run = inspect(dir.path());
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK(contains(run.output, kSnapshot));
    CHECK(contains(run.output, "replay the log from LSN 101, 100 entries, intact"));
    CHECK(contains(run.output, kSegment));
    CHECK(contains(run.output, "first LSN 101, 50 records, LSNs 101-150, intact"));
    CHECK(contains(run.output, "zero bytes to the end of the file (preallocated space: normal)"));
    CHECK(contains(run.output, "LOCK: not held"));
    CHECK(contains(run.output, "verdict: intact"));
}

TEST_CASE("A flipped byte in the middle of a segment is named by file, offset and LSN, and fails open", "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    const std::string segment = dir.path() + "/" + kSegment;
    const std::vector<std::uint64_t> offsets = record_offsets(segment);
    REQUIRE(offsets.size() == 50);
    const std::uint64_t damaged = offsets[20];  // LSN 121
    flip_byte(segment, damaged + wal::kRecordHeaderSize + 3);
    const std::string before = contents(segment);

    const std::string output = inspect_damaged(dir.path());
    INFO(output);
    CHECK(contains(output, at(segment, damaged, " (record LSN 121): bad payload checksum")));
    CHECK(contains(output, "not a torn tail: Store::open fails"));
    CHECK(contains(output, "kPointInTime opens with the log up to LSN 120"));
    CHECK(contents(segment) == before);  // read-only

    std::unique_ptr<TestStore> store;
    const Status opened = TestStore::open(dir.path(), options(), store);
    CHECK(opened.code() == StatusCode::kCorruption);
    CHECK(contains(opened.message(), at(segment, damaged, ": bad payload checksum")));
}

TEST_CASE("Zeros in the middle of a segment are damage, not preallocated space", "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    const std::string segment = dir.path() + "/" + kSegment;
    const std::vector<std::uint64_t> offsets = record_offsets(segment);
    overwrite(segment, offsets[10], std::string(offsets[11] - offsets[10], '\0'));

    const std::string output = inspect_damaged(dir.path());
    INFO(output);
    CHECK(contains(output, at(segment, offsets[10], " (expected LSN 111): bad header checksum")));
    CHECK(contains(output, "zero bytes start here, followed by data"));
    CHECK(contains(output, "valid records follow from offset " + std::to_string(offsets[11]) + " (LSN 112)"));
    CHECK(contains(output, "Store::open fails"));
}

TEST_CASE("A truncated tail is reported as a torn tail that open cuts", "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    // A crash leaves no empty segment after the last records, so the
    // segment holding them is the newest.
    REQUIRE(::unlink((dir.path() + "/" + kSealSegment).c_str()) == 0);
    const std::string segment = dir.path() + "/" + kSegment;
    const std::vector<std::uint64_t> offsets = record_offsets(segment);
    const std::uint64_t last = offsets.back();  // LSN 150

    SECTION("cut inside the last record's header") {
        REQUIRE(::truncate(segment.c_str(), static_cast<off_t>(last + 10)) == 0);
        const std::string output = inspect_damaged(dir.path());
        INFO(output);
        CHECK(contains(output, at(segment, last, " (expected LSN 150): record header cut short")));
        CHECK(contains(output,
                       "torn tail: nothing valid follows in the newest segment, so Store::open cuts the "
                       "file at offset " +
                           std::to_string(last) + " (dropping 10 bytes)"));
        CHECK(contains(output, "Store::open opens: it cuts the torn tail"));
    }
    SECTION("the end of the last record never written, before the preallocated zeros") {
        overwrite(segment, last + wal::kRecordHeaderSize + 2, std::string(4, '\0'));
        const std::string output = inspect_damaged(dir.path());
        INFO(output);
        CHECK(contains(output, at(segment, last, " (record LSN 150): bad payload checksum")));
        CHECK(contains(output, "torn tail"));
    }

    std::unique_ptr<TestStore> store;
    StoreRecovery recovery;
    REQUIRE(TestStore::open(dir.path(), options(), store, &recovery));
    CHECK(recovery.log.truncated);
    CHECK(recovery.log.dropped.at(0).offset == last);
    REQUIRE(store->close());
    const Run after = inspect(dir.path());
    INFO(after.output);
    CHECK(after.exit_code == 0);
}

TEST_CASE("A damaged snapshot is named with its offset, and open fails on it", "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    const std::string snapshot = dir.path() + "/" + kSnapshot;
    // Inside the first block's payload: after the 32-byte header and the
    // 16-byte block header.
    flip_byte(snapshot, 32 + 16 + 7);

    const std::string output = inspect_damaged(dir.path());
    INFO(output);
    CHECK(contains(output, "DAMAGE: " + at(snapshot, 32, ": bad block checksum")));
    CHECK(contains(output, "Store::open loads the newest snapshot, so it fails"));
    CHECK(contains(output, "restore it from a backup"));

    std::unique_ptr<TestStore> store;
    const Status opened = TestStore::open(dir.path(), options(), store);
    CHECK(opened.code() == StatusCode::kCorruption);
    CHECK(contains(opened.message(), at(snapshot, 32, ": bad block checksum")));
}

TEST_CASE("Dumping prints records and entries with their bytes escaped, up to a limit", "[inspect]") {
    test::TempDir dir;
    {
        std::unique_ptr<TestStore> store;
        REQUIRE(TestStore::open(dir.path(), options(), store));
        REQUIRE(store->put(std::string("bin\x01key", 7), "v\xff"));
        REQUIRE(store->put("quoted \"key\"", "back\\slash"));
        REQUIRE(store->checkpoint());
        REQUIRE(store->put("session", "token", 1h));
        REQUIRE(store->erase("quoted \"key\""));
        WriteBatch<std::string, std::string> batch;
        batch.put("a", "1");
        batch.erase("b");
        REQUIRE(store->write(batch));
        REQUIRE(store->close());
    }

    const Run run = inspect("--dump " + dir.path());
    INFO(run.output);
    CHECK(run.exit_code == 0);
    // The snapshot's entries.
    CHECK(contains(run.output, "    \"bin\\x01key\" = \"v\\xff\"\n"));
    CHECK(contains(run.output, "    \"quoted \\\"key\\\"\" = \"back\\\\slash\"\n"));
    // The log's records.
    CHECK(contains(run.output, "LSN 3 at 32: put \"session\" = \"token\" expires 20"));
    CHECK(contains(run.output, ": erase \"quoted \\\"key\\\"\"\n"));
    CHECK(contains(run.output, ": batch of 2\n        put \"a\" = \"1\"\n        erase \"b\"\n"));

    const Run limited = inspect("--dump --limit 1 " + dir.path());
    INFO(limited.output);
    CHECK(limited.exit_code == 0);
    CHECK(contains(limited.output, "... 2 more records (--limit)"));
    CHECK(contains(limited.output, "... 1 more entries (--limit)"));
}

TEST_CASE("It reads a directory a Store holds open, and leaves the Store undisturbed", "[inspect]") {
    test::TempDir dir;
    std::unique_ptr<TestStore> store;
    REQUIRE(TestStore::open(dir.path(), options(), store));
    for (int i = 0; i < 20; ++i) REQUIRE(store->put(key(i), value(i)));

    const Run run = inspect(dir.path());
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK(contains(run.output, "LOCK: held by process " + std::to_string(::getpid())));
    CHECK(contains(run.output, "20 records, LSNs 1-20, intact"));

    CHECK(store->put("after", "inspect"));
    std::unique_ptr<TestStore> second;
    CHECK(TestStore::open(dir.path(), options(), second).code() == StatusCode::kBusy);
}

TEST_CASE("Temporary and set-aside files are listed and explained", "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    std::ofstream(dir.path() + "/snapshot-00000000000000000151.kvs.tmp") << "half a snapshot";
    std::ofstream(dir.path() + "/wal-00000000000000000090.log.damaged") << "old";
    std::ofstream(dir.path() + "/notes.txt") << "mine";

    const Run run = inspect(dir.path());
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK(contains(run.output,
                   "snapshot-00000000000000000151.kvs.tmp  15 bytes: the snapshot of a checkpoint that "
                   "did not finish"));
    CHECK(contains(run.output, "wal-00000000000000000090.log.damaged  3 bytes: set aside by an earlier recovery"));
    CHECK(contains(run.output, "notes.txt  4 bytes: not kvstore's"));
}

TEST_CASE("Usage errors and unreadable directories exit 2", "[inspect]") {
    test::TempDir dir;
    const Run missing = inspect(dir.path() + "/no-such-dir");
    INFO(missing.output);
    CHECK(missing.exit_code == 2);
    CHECK(contains(missing.output, "No such file or directory"));

    CHECK(inspect("").exit_code == 2);
    CHECK(inspect("--frobnicate " + dir.path()).exit_code == 2);
    CHECK(inspect("--limit x " + dir.path()).exit_code == 2);

    const Run help = inspect("--help");
    CHECK(help.exit_code == 0);
    CHECK(contains(help.output, "usage: kvstore-inspect [--dump] [--limit N] DIR"));

    const Run empty = inspect(dir.path());
    INFO(empty.output);
    CHECK(empty.exit_code == 0);
    CHECK(contains(empty.output, "Store::open starts an empty store here"));
}

TEST_CASE("A segment cut at a record boundary before a newer one is a gap the tool names and open refuses",
          "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    const std::string segment = dir.path() + "/" + kSegment;
    const std::vector<std::uint64_t> offsets = record_offsets(segment);
    REQUIRE(::truncate(segment.c_str(), static_cast<off_t>(offsets[20])) == 0);  // keeps LSNs 101-120

    const std::string output = inspect_damaged(dir.path());
    INFO(output);
    CHECK(contains(output, "LSNs 121-150 missing: segment " + kSegment + " ends at LSN 120"));
    CHECK(contains(output, "Store::open fails"));

    std::unique_ptr<TestStore> store;
    const Status refused = TestStore::open(dir.path(), options(), store);
    CHECK(refused.code() == StatusCode::kCorruption);
    CHECK(contains(refused.message(), dir.path() + "/" + kSealSegment));
    CHECK(contains(refused.message(), "LSNs 121-150 are missing"));
}

TEST_CASE("A truncated snapshot is named at the same offset by the tool and by open", "[inspect]") {
    test::TempDir dir;
    fill(dir.path());
    const std::string snapshot = dir.path() + "/" + kSnapshot;
    const std::uint64_t size = contents(snapshot).size();
    for (const std::uint64_t cut : {size - 1, size - 40, std::uint64_t{40}}) {
        CAPTURE(cut);
        REQUIRE(::truncate(snapshot.c_str(), static_cast<off_t>(cut)) == 0);
        std::unique_ptr<TestStore> store;
        const Status opened = TestStore::open(dir.path(), options(), store);
        REQUIRE(opened.code() == StatusCode::kCorruption);
        // "<path> at offset N: reason", as both print it.
        const std::string place = opened.message().substr(0, opened.message().find(':'));
        CHECK(contains(place, snapshot + " at offset "));
        const std::string output = inspect_damaged(dir.path());
        INFO(output);
        CHECK(contains(output, opened.message()));
    }
}
