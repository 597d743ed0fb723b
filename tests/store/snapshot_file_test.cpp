#include "catch.hpp"
#include "fault_file_system.hpp"

#include <kvstore/detail/snapshot_file.hpp>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
namespace snapshot = kvstore::detail::snapshot;

namespace {

const std::string kDir = "/db";

struct OwnedEntry {
    std::string key;
    std::string value;
    std::uint64_t expiry;
    bool operator==(const OwnedEntry& other) const {
        return key == other.key && value == other.value && expiry == other.expiry;
    }
    bool operator<(const OwnedEntry& other) const {
        return std::tie(key, value, expiry) < std::tie(other.key, other.value, other.expiry);
    }
};

std::vector<OwnedEntry> sample_entries() {
    std::mt19937_64 random(7);
    std::vector<OwnedEntry> entries{{"", "", 0}, {"empty value", "", 0}, {"huge", std::string(200000, 'h'), 5}};
    for (int i = 0; i < 3000; ++i) {
        const std::uint64_t expiry = i % 3 == 0 ? 1'900'000'000'000'000 + random() % 1000 : 0;
        entries.push_back(
            {"key-" + std::to_string(random()), std::string(random() % 300, static_cast<char>('a' + i % 26)), expiry});
    }
    return entries;
}

Status write_snapshot(FaultFileSystem& fs, Lsn replay_from, const std::vector<OwnedEntry>& entries) {
    (void)fs.create_dir(kDir, 0700);
    snapshot::Writer writer(fs, kDir, replay_from, 0600);
    if (Status status = writer.open(); !status) return status;
    for (const OwnedEntry& entry : entries) {
        writer.add({entry.key, entry.value, entry.expiry});
        if (Status status = writer.write_pending(); !status) return status;
    }
    return writer.finish();
}

Status read_snapshot(FaultFileSystem& fs, const std::string& path, Lsn& replay_from, std::vector<OwnedEntry>& out) {
    out.clear();
    std::uint64_t count = 0;
    return snapshot::read(fs, path, replay_from, count, [&](const snapshot::Entry& entry) {
        out.push_back({std::string(entry.key), std::string(entry.value), entry.expiry});
    });
}

// Reads `path` as a store does when it opens, splitting even a small file
// between two threads; `out` is sorted, as the threads' order is not fixed.
// `threads` is set to the number of threads that visited blocks.
Status read_snapshot_in_parallel(FaultFileSystem& fs, const std::string& path, Lsn& replay_from,
                                 std::vector<OwnedEntry>& out, std::size_t& threads) {
    out.clear();
    std::mutex mutex;
    std::set<std::thread::id> visitors;
    std::uint64_t count = 0;
    const Status status = snapshot::read_in_parallel(
        fs, path, replay_from, count,
        [&](const snapshot::Entry* first, const snapshot::Entry* last) {
            std::lock_guard<std::mutex> lock(mutex);
            visitors.insert(std::this_thread::get_id());
            for (const snapshot::Entry* entry = first; entry != last; ++entry)
                out.push_back({std::string(entry->key), std::string(entry->value), entry->expiry});
            return Status::ok();
        },
        0);
    std::sort(out.begin(), out.end());
    threads = visitors.size();
    if (status && count != out.size()) return Status::corruption(path, 0, "count differs from the entries visited");
    return status;
}

}  // namespace

TEST_CASE("A snapshot round-trips every entry, expiry included, across blocks", "[snapshot]") {
    FaultFileSystem fs;
    const std::vector<OwnedEntry> entries = sample_entries();
    REQUIRE(write_snapshot(fs, 42, entries));
    const std::string path = kDir + "/" + snapshot::file_name(42);
    CHECK(fs.contents(path).size() > 3 * snapshot::kBlockTarget);  // several blocks

    Lsn replay_from = 0;
    std::vector<OwnedEntry> read_back;
    REQUIRE(read_snapshot(fs, path, replay_from, read_back));
    CHECK(replay_from == 42);
    CHECK(read_back == entries);

    Lsn parallel_from = 0;
    std::size_t threads = 0;
    REQUIRE(read_snapshot_in_parallel(fs, path, parallel_from, read_back, threads));
    CHECK(parallel_from == 42);
    CHECK(threads == 2);
    std::vector<OwnedEntry> sorted = entries;
    std::sort(sorted.begin(), sorted.end());
    CHECK(read_back == sorted);

    FaultFileSystem empty;
    REQUIRE(write_snapshot(empty, 1, {}));
    REQUIRE(read_snapshot(empty, kDir + "/" + snapshot::file_name(1), replay_from, read_back));
    CHECK(read_back.empty());
}

TEST_CASE("Room reserved between adds leaves the snapshot's bytes unchanged", "[snapshot]") {
    const std::vector<OwnedEntry> entries = sample_entries();
    FaultFileSystem plain;
    REQUIRE(write_snapshot(plain, 9, entries));

    // Blocks stay pending across the reserves, which must keep them.
    FaultFileSystem reserving;
    REQUIRE(reserving.create_dir(kDir, 0700));
    snapshot::Writer writer(reserving, kDir, 9, 0600);
    REQUIRE(writer.open());
    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i % 500 == 0) writer.reserve(i * 700);
        writer.add({entries[i].key, entries[i].value, entries[i].expiry});
        if (i % 1500 == 1499) REQUIRE(writer.write_pending());
    }
    REQUIRE(writer.finish());

    const std::string path = kDir + "/" + snapshot::file_name(9);
    CHECK(reserving.contents(path) == plain.contents(path));
}

TEST_CASE("A cut or a flipped bit anywhere in a snapshot is refused with file, offset and reason", "[snapshot]") {
    FaultFileSystem pristine;
    std::vector<OwnedEntry> entries = sample_entries();
    entries.resize(400);
    REQUIRE(write_snapshot(pristine, 9, entries));
    const std::string path = kDir + "/" + snapshot::file_name(9);
    const std::string full = pristine.contents(path);

    // Every byte of the header, the first block header and the trailer, and
    // a spread of bytes elsewhere.
    std::vector<std::size_t> positions;
    for (std::size_t i = 0; i < snapshot::kHeaderSize + snapshot::kBlockHeaderSize; ++i) positions.push_back(i);
    for (std::size_t i = full.size() - snapshot::kTrailerSize; i < full.size(); ++i) positions.push_back(i);
    for (std::size_t i = 0; i < full.size(); i += 397) positions.push_back(i);

    for (const std::size_t at : positions) {
        CAPTURE(at);
        Lsn replay_from = 0;
        std::vector<OwnedEntry> read_back;
        FaultFileSystem fs;
        REQUIRE(fs.create_dir(kDir, 0700));

        fs.set_contents(path, full.substr(0, at));
        const Status cut = read_snapshot(fs, path, replay_from, read_back);
        CHECK(cut.code() == StatusCode::kCorruption);
        CHECK(cut.message().find(path + " at offset ") == 0);

        std::string flipped = full;
        flipped[at] = static_cast<char>(flipped[at] ^ (1 << (at % 8)));
        fs.set_contents(path, flipped);
        const Status damaged = read_snapshot(fs, path, replay_from, read_back);
        CHECK(damaged.code() == StatusCode::kCorruption);

        // Read on two threads, the error is the one a serial read meets first.
        std::size_t threads = 0;
        fs.set_contents(path, full.substr(0, at));
        CHECK(read_snapshot_in_parallel(fs, path, replay_from, read_back, threads).message() == cut.message());
        fs.set_contents(path, flipped);
        CHECK(read_snapshot_in_parallel(fs, path, replay_from, read_back, threads).message() == damaged.message());
    }
}

TEST_CASE("A block whose checksummed header claims more entries than its payload holds is refused unallocated",
          "[snapshot]") {
    FaultFileSystem fs;
    std::vector<OwnedEntry> entries = sample_entries();
    entries.resize(20);
    REQUIRE(write_snapshot(fs, 9, entries));
    const std::string path = kDir + "/" + snapshot::file_name(9);
    std::string forged = fs.contents(path);
    // The first block's header: payload checksum, length, count, header
    // checksum. A count of 2^32 - 1 with the header checksum made to fit,
    // as damage that a 32-bit checksum misses, or a crafted file, would.
    char* header = forged.data() + snapshot::kHeaderSize;
    detail::log::put_u32(header + 8, 0xffffffffU);
    detail::log::put_u32(header + 12, detail::log::checksum(header, 12));
    fs.set_contents(path, forged);
    Lsn replay_from = 0;
    std::vector<OwnedEntry> read_back;
    const Status refused = read_snapshot(fs, path, replay_from, read_back);
    CHECK(refused.code() == StatusCode::kCorruption);
    CHECK(refused.message() == path + " at offset " + std::to_string(snapshot::kHeaderSize) +
                                   ": entry count larger than the block can hold");
    CHECK(read_back.empty());
}

TEST_CASE("A snapshot read on two threads rethrows what a visit throws on either", "[snapshot]") {
    FaultFileSystem fs;
    const std::vector<OwnedEntry> entries = sample_entries();
    REQUIRE(write_snapshot(fs, 5, entries));
    const std::string path = kDir + "/" + snapshot::file_name(5);
    const std::thread::id caller = std::this_thread::get_id();
    for (const bool throw_on_caller : {true, false}) {
        CAPTURE(throw_on_caller);
        Lsn replay_from = 0;
        std::uint64_t count = 0;
        CHECK_THROWS_WITH(snapshot::read_in_parallel(
                              fs, path, replay_from, count,
                              [&](const snapshot::Entry*, const snapshot::Entry*) {
                                  if ((std::this_thread::get_id() == caller) == throw_on_caller)
                                      throw std::runtime_error("visit failed");
                                  return Status::ok();
                              },
                              0),
                          "visit failed");
    }
}

TEST_CASE("A snapshot whose second opening fails is read on the calling thread alone", "[snapshot]") {
    FaultFileSystem fs;
    const std::vector<OwnedEntry> entries = sample_entries();
    REQUIRE(write_snapshot(fs, 3, entries));
    const std::string path = kDir + "/" + snapshot::file_name(3);
    fs.inject("open-read", EMFILE, 1);
    Lsn replay_from = 0;
    std::size_t threads = 0;
    std::vector<OwnedEntry> read_back;
    REQUIRE(read_snapshot_in_parallel(fs, path, replay_from, read_back, threads));
    CHECK(threads == 1);
    std::vector<OwnedEntry> sorted = entries;
    std::sort(sorted.begin(), sorted.end());
    CHECK(read_back == sorted);
}

TEST_CASE("An unfinished snapshot leaves only a temporary file", "[snapshot]") {
    FaultFileSystem fs;
    REQUIRE(fs.create_dir(kDir, 0700));
    {
        snapshot::Writer writer(fs, kDir, 5, 0600);
        REQUIRE(writer.open());
        writer.add({"k", "v", 0});
        REQUIRE(writer.write_pending());
    }
    std::vector<std::string> names;
    REQUIRE(fs.list_dir(kDir, names));
    REQUIRE(names.size() == 1);
    Lsn lsn = 0;
    CHECK_FALSE(snapshot::parse_file_name(names[0], lsn));
    CHECK(snapshot::parse_file_name(snapshot::file_name(5), lsn));
    CHECK(lsn == 5);
}

TEST_CASE("A finished snapshot survives a power cut, and a failed sync, rename or directory sync is reported",
          "[snapshot]") {
    const std::vector<OwnedEntry> entries{{"a", "1", 0}, {"b", "2", 77}};
    const std::string path = kDir + "/" + snapshot::file_name(3);
    {
        FaultFileSystem fs;
        REQUIRE(write_snapshot(fs, 3, entries));
        fs.power_cut();
        fs.revive();
        Lsn replay_from = 0;
        std::vector<OwnedEntry> read_back;
        REQUIRE(read_snapshot(fs, path, replay_from, read_back));
        CHECK(read_back == entries);
    }
    for (const char* call : {"fdatasync", "rename", "fsync-dir", "write"}) {
        CAPTURE(call);
        FaultFileSystem fs;
        REQUIRE(fs.create_dir(kDir, 0700));
        fs.inject(call, EIO);
        const Status status = write_snapshot(fs, 3, entries);
        CHECK(status.code() == StatusCode::kIoError);
        CHECK(status.message().find(call) == 0);
    }
}
