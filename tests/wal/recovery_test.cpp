// Damaged logs: torn tails, flipped bits, gaps and lying length fields, and
// what each recovery mode makes of them.
#include "catch.hpp"
#include "wal_test_support.hpp"

#include <kvstore/detail/log_replay.hpp>

#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
namespace wal = kvstore::detail::log;

namespace {

constexpr int kRecords = 5;

std::string key_of(int i) { return "key-" + std::to_string(i); }
std::string value_of(int i) { return "value-" + std::to_string(i * 1000); }

// Writes kRecords puts into one segment and returns the offset of each
// record (and the file size last).
std::vector<std::uint64_t> write_log(FaultFileSystem& fs) {
    std::vector<ReplayedOp> ignored;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, ignored, wal));
    for (int i = 1; i <= kRecords; ++i) REQUIRE(wal->write(put(key_of(i), value_of(i))));
    REQUIRE(wal->close());

    std::vector<std::uint64_t> offsets;
    RecoveryReport report;
    REQUIRE(wal::replay_log(
        fs, kLogDir, 0, RecoveryMode::kAbsoluteConsistency,
        [&](const LogRecord& record) {
            offsets.push_back(record.offset);
            return Status::ok();
        },
        report));
    REQUIRE(offsets.size() == kRecords);
    offsets.push_back(fs.contents(segment_path(1)).size());
    return offsets;
}

// Makes `fs` hold a log directory whose only segment holds `contents`.
void plant_segment(FaultFileSystem& fs, std::string contents) {
    REQUIRE(fs.create_dir(kLogDir, 0700));
    fs.set_contents(segment_path(1), std::move(contents));
}

Status reopen(FaultFileSystem& fs, RecoveryMode mode, std::vector<ReplayedOp>& replayed, RecoveryReport& report) {
    std::unique_ptr<SyncWAL> wal;
    LogOptions options;
    options.recovery_mode = mode;
    return open_collecting(fs, replayed, wal, options, &report);
}

// Opens a log whose only segment holds `contents`, in `mode`.
Status open_planted(const std::string& contents, RecoveryMode mode) {
    FaultFileSystem fs;
    plant_segment(fs, contents);
    std::vector<ReplayedOp> replayed;
    RecoveryReport report;
    return reopen(fs, mode, replayed, report);
}

std::vector<std::string> keys_of(const std::vector<ReplayedOp>& ops) {
    std::vector<std::string> keys;
    for (const ReplayedOp& op : ops) keys.push_back(op.key);
    return keys;
}

std::vector<std::string> keys(std::initializer_list<int> numbers) {
    std::vector<std::string> out;
    for (int i : numbers) out.push_back(key_of(i));
    return out;
}

bool mentions(const Status& status, const std::string& text) {
    return status.message().find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("A log cut at any byte, the last record's included, recovers every whole record before the cut",
          "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    const std::string full = pristine.contents(segment_path(1));

    // Read through the buffer, and from the segment mapped.
    const bool mapped = GENERATE(false, true);
    for (std::uint64_t cut = 0; cut < full.size(); ++cut) {
        CAPTURE(mapped, cut);
        int whole = 0;  // records that end at or before the cut
        while (whole < kRecords && offsets[static_cast<std::size_t>(whole) + 1] <= cut) ++whole;
        const std::uint64_t kept = whole == 0 ? (cut < wal::kFileHeaderSize ? 0 : wal::kFileHeaderSize)
                                              : offsets[static_cast<std::size_t>(whole)];
        // A torn prefix of zeros (a header checksum may start with a zero
        // byte) cannot be told from preallocated space: it is the end.
        const std::string torn = full.substr(kept, cut - kept);
        const bool damaged = torn.find_first_not_of('\0') != std::string::npos;
        FaultFileSystem fs;
        fs.set_mappable(mapped);
        plant_segment(fs, full.substr(0, cut));
        std::vector<ReplayedOp> replayed;
        RecoveryReport report;
        REQUIRE(reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report));
        REQUIRE(replayed.size() == static_cast<std::size_t>(whole));
        for (int i = 0; i < whole; ++i) CHECK(replayed[static_cast<std::size_t>(i)].key == key_of(i + 1));
        CHECK(report.truncated == damaged);
        if (damaged) {
            REQUIRE(report.dropped.size() == 1);
            CHECK(report.dropped[0].offset == kept);
            CHECK(report.dropped[0].bytes == cut - kept);
        }

        // The log goes on after the last whole record, and a strict open
        // then sees all of it: the tail was cut off on disk too.
        {
            std::unique_ptr<SyncWAL> wal;
            REQUIRE(open_collecting(fs, replayed, wal));
            REQUIRE(wal->write(put("new", "record")));
        }
        REQUIRE(reopen(fs, RecoveryMode::kAbsoluteConsistency, replayed, report));
        REQUIRE(replayed.size() == static_cast<std::size_t>(whole) + 1);
        CHECK(replayed.back().key == "new");
        CHECK(replayed.back().lsn == static_cast<Lsn>(whole) + 1);

        // The strict mode refuses the same torn tail.
        if (damaged) {
            FaultFileSystem strict;
            strict.set_mappable(mapped);
            plant_segment(strict, full.substr(0, cut));
            const Status refused = reopen(strict, RecoveryMode::kAbsoluteConsistency, replayed, report);
            CHECK(refused.code() == StatusCode::kCorruption);
            CHECK(mentions(refused, segment_path(1) + " at offset " + std::to_string(kept)));
        }
    }
}

TEST_CASE("A flipped bit in any field of a record is caught", "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    const std::string full = pristine.contents(segment_path(1));

    // Read through the buffer, and from the segment mapped.
    const bool mapped = GENERATE(false, true);
    CAPTURE(mapped);
    // Flips each bit of [begin, end) in turn; every copy must be refused,
    // naming the damaged record's offset, and left as it was.
    auto every_flip_is_refused = [&](std::uint64_t begin, std::uint64_t end, std::uint64_t reported_offset) {
        for (std::uint64_t byte = begin; byte < end; ++byte) {
            for (int bit = 0; bit < 8; ++bit) {
                CAPTURE(byte, bit);
                std::string damaged = full;
                damaged[byte] = static_cast<char>(damaged[byte] ^ (1 << bit));
                FaultFileSystem fs;
                fs.set_mappable(mapped);
                plant_segment(fs, damaged);
                std::vector<ReplayedOp> replayed;
                RecoveryReport report;
                const Status status = reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report);
                CHECK(status.code() == StatusCode::kCorruption);
                CHECK(mentions(status, segment_path(1) + " at offset " + std::to_string(reported_offset)));
                CHECK(mentions(status, "valid records follow"));
                CHECK(fs.contents(segment_path(1)) == damaged);
            }
        }
    };
    SECTION("in the file header") { every_flip_is_refused(0, wal::kFileHeaderSize, 0); }
    SECTION("in a middle record") { every_flip_is_refused(offsets[2], offsets[3], offsets[2]); }
    SECTION("in the last record: cut off as a torn tail, refused when strict") {
        for (std::uint64_t byte = offsets[kRecords - 1]; byte < offsets[kRecords]; ++byte) {
            CAPTURE(byte);
            std::string damaged = full;
            damaged[byte] = static_cast<char>(damaged[byte] ^ 0x10);
            FaultFileSystem fs;
            fs.set_mappable(mapped);
            plant_segment(fs, damaged);
            std::vector<ReplayedOp> replayed;
            RecoveryReport report;
            REQUIRE(reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report));
            CHECK(keys_of(replayed) == keys({1, 2, 3, 4}));
            fs.set_contents(segment_path(1), damaged);
            CHECK(reopen(fs, RecoveryMode::kAbsoluteConsistency, replayed, report).code() == StatusCode::kCorruption);
        }
    }
}

TEST_CASE("Each recovery mode on the same damaged middle record", "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    std::string damaged = pristine.contents(segment_path(1));
    const std::uint64_t bad = offsets[2];
    damaged[bad + wal::kRecordHeaderSize + 1] ^= 0x01;  // a payload byte of record 3

    FaultFileSystem fs;
    REQUIRE(fs.create_dir(kLogDir, 0700));
    std::vector<ReplayedOp> replayed;
    RecoveryReport report;

    SECTION("tolerate torn tail refuses: valid records follow the damage") {
        fs.set_contents(segment_path(1), damaged);
        const Status status = reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report);
        CHECK(status.code() == StatusCode::kCorruption);
        CHECK(mentions(status, "bad payload checksum"));
        CHECK(mentions(status, "at offset " + std::to_string(bad)));
    }
    SECTION("absolute consistency refuses") {
        fs.set_contents(segment_path(1), damaged);
        CHECK(reopen(fs, RecoveryMode::kAbsoluteConsistency, replayed, report).code() == StatusCode::kCorruption);
    }
    SECTION("point in time keeps the records before the damage and drops the rest") {
        fs.set_contents(segment_path(1), damaged);
        REQUIRE(reopen(fs, RecoveryMode::kPointInTime, replayed, report));
        CHECK(keys_of(replayed) == keys({1, 2}));
        CHECK(report.truncated);
        REQUIRE(report.dropped.size() == 1);
        CHECK(report.dropped[0].offset == bad);
        CHECK(report.last_lsn == 2);
        CHECK(report.highest_set_aside_lsn == 5);
        // Nothing is deleted: the bytes from the damage on are kept aside.
        CHECK(fs.contents(segment_path(1)) == damaged.substr(0, bad));
        CHECK(fs.contents(segment_path(1) + ".damaged") == damaged.substr(bad));
        // The next record goes on after the highest LSN set aside, never
        // reusing one, and a strict open, then a default one, accept the result.
        std::unique_ptr<SyncWAL> wal;
        REQUIRE(open_collecting(fs, replayed, wal));
        Lsn lsn = 0;
        REQUIRE(wal->append(put("next", "one"), lsn));
        CHECK(lsn == 6);
        REQUIRE(wal->commit(lsn));
        wal.reset();
        REQUIRE(reopen(fs, RecoveryMode::kAbsoluteConsistency, replayed, report));
        CHECK(keys_of(replayed) == std::vector<std::string>{key_of(1), key_of(2), "next"});
        CHECK(replayed.back().lsn == 6);
        REQUIRE(reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report));
        CHECK(keys_of(replayed) == std::vector<std::string>{key_of(1), key_of(2), "next"});
    }
    SECTION("skip bad records applies everything valid around the damage") {
        fs.set_contents(segment_path(1), damaged);
        REQUIRE(reopen(fs, RecoveryMode::kSkipBadRecords, replayed, report));
        CHECK(keys_of(replayed) == keys({1, 2, 4, 5}));
        REQUIRE(report.dropped.size() == 1);
        CHECK(report.dropped[0].offset == bad);
        CHECK(report.dropped[0].bytes == offsets[3] - bad);
        CHECK(report.last_lsn == 5);
        CHECK(fs.contents(segment_path(1)) == damaged);  // the evidence stays
    }
}

TEST_CASE("Damage in an older segment is never a torn tail", "[wal][recovery]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    {
        std::unique_ptr<SyncWAL> wal;
        REQUIRE(open_collecting(fs, replayed, wal));
        REQUIRE(wal->write(put(key_of(1), value_of(1))));
        REQUIRE(wal->write(put(key_of(2), value_of(2))));
        Lsn next = 0;
        REQUIRE(wal->rotate(next));
        CHECK(next == 3);
        REQUIRE(wal->write(put(key_of(3), value_of(3))));
    }
    std::string first = fs.contents(segment_path(1));
    first.pop_back();  // the last record of the first segment is cut short
    fs.set_contents(segment_path(1), first);
    RecoveryReport report;
    const Status status = reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report);
    CHECK(status.code() == StatusCode::kCorruption);
    CHECK(mentions(status, "not the newest"));

    REQUIRE(reopen(fs, RecoveryMode::kPointInTime, replayed, report));
    CHECK(keys_of(replayed) == keys({1}));
    bool set_aside = false;
    for (const std::string& path : fs.paths()) set_aside |= path == segment_path(3) + ".damaged";
    CHECK(set_aside);
}

TEST_CASE("A missing record is a gap in the LSNs", "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    const std::string full = pristine.contents(segment_path(1));
    const std::string without_third = full.substr(0, offsets[2]) + full.substr(offsets[3]);

    FaultFileSystem fs;
    plant_segment(fs, without_third);
    std::vector<ReplayedOp> replayed;
    RecoveryReport report;
    const Status status = reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report);
    CHECK(status.code() == StatusCode::kCorruption);
    CHECK(mentions(status, "LSN 4 where 3 was expected"));
    fs.set_contents(segment_path(1), without_third);
    REQUIRE(reopen(fs, RecoveryMode::kSkipBadRecords, replayed, report));
    CHECK(keys_of(replayed) == keys({1, 2, 4, 5}));
}

TEST_CASE("A length field is checked against the limit and the file before anything is read for it",
          "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    const std::string full = pristine.contents(segment_path(1));

    // A header with a valid checksum that claims a huge payload.
    auto forged_header = [](std::uint32_t length) {
        std::string header(wal::kRecordHeaderSize, '\0');
        wal::put_u32(header.data() + wal::kLengthAt, length);
        header[wal::kTypeAt] = static_cast<char>(LogRecordType::kPut);
        wal::put_u64(header.data() + wal::kLsnAt, kRecords + 1);
        wal::put_u32(header.data(), wal::checksum(header.data() + 4, wal::kRecordHeaderSize - 4));
        return header;
    };
    for (const std::uint32_t length : {wal::kMaxPayload, wal::kMaxPayload + 1, ~std::uint32_t{0}}) {
        CAPTURE(length);
        FaultFileSystem fs;
        REQUIRE(fs.create_dir(kLogDir, 0700));
        const std::string forged = full + forged_header(length);
        fs.set_contents(segment_path(1), forged);
        std::vector<ReplayedOp> replayed;
        RecoveryReport report;
        const Status status = reopen(fs, RecoveryMode::kAbsoluteConsistency, replayed, report);
        CHECK(status.code() == StatusCode::kCorruption);
        CHECK((mentions(status, "record cut short") || mentions(status, "beyond the format's limit")));
        CHECK(mentions(status, "at offset " + std::to_string(offsets[kRecords])));
        CHECK(fs.largest_read() <= forged.size());
    }
}

TEST_CASE("An empty newest segment (a crash right after creating it) is not damage", "[wal][recovery]") {
    FaultFileSystem fs;
    write_log(fs);
    fs.set_contents(segment_path(kRecords + 1), "");
    std::vector<ReplayedOp> replayed;
    RecoveryReport report;
    REQUIRE(reopen(fs, RecoveryMode::kAbsoluteConsistency, replayed, report));
    CHECK(replayed.size() == kRecords);
}

TEST_CASE("A batch cut anywhere is applied whole or not at all", "[wal][recovery]") {
    FaultFileSystem pristine;
    std::vector<ReplayedOp> replayed;
    {
        std::unique_ptr<SyncWAL> wal;
        REQUIRE(open_collecting(pristine, replayed, wal));
        REQUIRE(wal->write(put("before", "batch")));
        const std::vector<LogOperation> batch{
            put("b1", "v1"), put("b2", "v2"), {LogRecordType::kErase, "before", "", 0}};
        Lsn lsn = 0;
        REQUIRE(wal->append_batch(batch, lsn));
        REQUIRE(wal->commit(lsn));
    }
    const std::string full = pristine.contents(segment_path(1));
    std::uint64_t batch_offset = 0;
    RecoveryReport report;
    REQUIRE(wal::replay_log(
        pristine, kLogDir, 2, RecoveryMode::kAbsoluteConsistency,
        [&](const LogRecord& record) {
            batch_offset = record.offset;
            return Status::ok();
        },
        report));
    for (std::uint64_t cut = batch_offset; cut <= full.size(); ++cut) {
        CAPTURE(cut);
        FaultFileSystem fs;
        plant_segment(fs, full.substr(0, cut));
        REQUIRE(reopen(fs, RecoveryMode::kTolerateTornTail, replayed, report));
        const std::size_t expected = cut == full.size() ? 4 : 1;
        CHECK(replayed.size() == expected);
    }
}

TEST_CASE("Preallocated zeros after the last record are the end of the log, not damage", "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    const std::string full = pristine.contents(segment_path(1));
    CHECK(pristine.size_of(segment_path(1)) > full.size());  // the writer preallocated

    std::vector<ReplayedOp> replayed;
    RecoveryReport report;
    FaultFileSystem zero_tail;
    plant_segment(zero_tail, full + std::string(10000, '\0'));
    REQUIRE(reopen(zero_tail, RecoveryMode::kAbsoluteConsistency, replayed, report));
    CHECK(replayed.size() == kRecords);
    CHECK(report.dropped.empty());

    // A record torn inside the zeros is a torn tail.
    FaultFileSystem torn;
    const std::uint64_t last = offsets[kRecords - 1];
    plant_segment(torn, full.substr(0, last + 20) + std::string(10000, '\0'));
    REQUIRE(reopen(torn, RecoveryMode::kTolerateTornTail, replayed, report));
    CHECK(replayed.size() == kRecords - 1);
    REQUIRE(report.dropped.size() == 1);
    CHECK(report.dropped[0].offset == last);
    CHECK(reopen(torn, RecoveryMode::kAbsoluteConsistency, replayed, report).code() == StatusCode::kOk);
}

TEST_CASE("A mapped segment's payloads outlive the replay while their owner is kept, and read ones only the call",
          "[wal][recovery]") {
    FaultFileSystem fs;
    write_log(fs);
    for (const bool mapped : {false, true}) {
        CAPTURE(mapped);
        fs.set_mappable(mapped);
        std::vector<std::string_view> payloads;
        std::vector<std::string> copies;
        std::shared_ptr<const void> owner;
        RecoveryReport report;
        REQUIRE(wal::replay_log(
            fs, kLogDir, 0, RecoveryMode::kAbsoluteConsistency,
            [&](const LogRecord& record) {
                CHECK((record.payload_owner != nullptr) == mapped);
                if (record.payload_owner != nullptr) owner = *record.payload_owner;
                payloads.push_back(record.payload);
                copies.emplace_back(record.payload);
                return Status::ok();
            },
            report));
        REQUIRE(payloads.size() == kRecords);
        if (mapped) {
            // The file changes and the reader is gone; the kept mapping does not.
            fs.set_contents(segment_path(1), std::string(fs.contents(segment_path(1)).size(), 'x'));
            for (std::size_t i = 0; i < payloads.size(); ++i) CHECK(payloads[i] == copies[i]);
        }
    }
}

TEST_CASE("A segment cut at a record boundary before a newer segment is a gap that every mode sees",
          "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    // A clean close leaves an empty segment after the last record, whose
    // first LSN says that records up to kRecords existed.
    const std::string seal = pristine.contents(segment_path(kRecords + 1));
    REQUIRE(seal.size() == wal::kFileHeaderSize);
    const std::string full = pristine.contents(segment_path(1));

    for (int kept = 0; kept < kRecords; ++kept) {
        CAPTURE(kept);
        FaultFileSystem fs;
        plant_segment(fs, full.substr(0, offsets[static_cast<std::size_t>(kept)]));
        fs.set_contents(segment_path(kRecords + 1), seal);
        const std::string missing = kept + 1 == kRecords
                                        ? "LSN 5 is missing"
                                        : "LSNs " + std::to_string(kept + 1) + "-5 are missing";
        std::vector<int> kept_numbers;
        for (int i = 1; i <= kept; ++i) kept_numbers.push_back(i);
        std::vector<std::string> kept_keys;
        for (int i : kept_numbers) kept_keys.push_back(key_of(i));
        std::vector<ReplayedOp> replayed;
        RecoveryReport report;

        for (const RecoveryMode strict : {RecoveryMode::kTolerateTornTail, RecoveryMode::kAbsoluteConsistency}) {
            const Status status = reopen(fs, strict, replayed, report);
            CHECK(status.code() == StatusCode::kCorruption);
            CHECK(mentions(status, missing));
            CHECK(mentions(status, segment_path(kRecords + 1)));
        }

        REQUIRE(reopen(fs, RecoveryMode::kSkipBadRecords, replayed, report));
        CHECK(keys_of(replayed) == kept_keys);
        REQUIRE(report.dropped.size() == 1);
        CHECK(report.dropped[0].reason.find(missing) != std::string::npos);
        CHECK(report.last_lsn == kRecords);
        CHECK(fs.contents(segment_path(1)) == full.substr(0, offsets[static_cast<std::size_t>(kept)]));

        REQUIRE(reopen(fs, RecoveryMode::kPointInTime, replayed, report));
        CHECK(keys_of(replayed) == kept_keys);
        REQUIRE_FALSE(report.dropped.empty());
        CHECK(report.dropped[0].reason.find(missing) != std::string::npos);
        CHECK(report.highest_set_aside_lsn == kRecords);
        CHECK(fs.contents(segment_path(kRecords + 1) + ".damaged") == seal);
        // No LSN the lost records held is used again, and the result opens
        // strictly.
        std::unique_ptr<SyncWAL> wal;
        REQUIRE(open_collecting(fs, replayed, wal));
        Lsn lsn = 0;
        REQUIRE(wal->append(put("next", "one"), lsn));
        CHECK(lsn == kRecords + 1);
        REQUIRE(wal->commit(lsn));
        wal.reset();
        REQUIRE(reopen(fs, RecoveryMode::kAbsoluteConsistency, replayed, report));
        CHECK(replayed.size() == kept_keys.size() + 1);
        CHECK(replayed.back().key == "next");
    }
}

TEST_CASE("A clean close starts an empty segment, so a reopen continues the LSNs it names", "[wal][recovery]") {
    LogFixture<SyncWAL> log;
    REQUIRE(log.open());
    for (int i = 1; i <= 3; ++i) REQUIRE(log.wal->write(put(key_of(i), value_of(i))));
    REQUIRE(log.wal->close());
    CHECK(log.fs.contents(segment_path(4)).size() == wal::kFileHeaderSize);
    // A close with nothing new written adds no segment.
    REQUIRE(log.reopen());
    REQUIRE(log.wal->close());
    CHECK(log.fs.paths().size() == 2);
    REQUIRE(log.reopen());
    CHECK(log.replayed.size() == 3);
    Lsn lsn = 0;
    REQUIRE(log.wal->append(put("four", "4"), lsn));
    CHECK(lsn == 4);
}

TEST_CASE("A log that starts after the LSN its snapshot needs is refused", "[wal][recovery]") {
    FaultFileSystem fs;
    write_log(fs);
    // A snapshot up to LSN 0 would need the log from LSN 1; one up to LSN 2
    // needs LSN 3 on. With segment 1 gone only LSN 6 on is left.
    REQUIRE(fs.remove(segment_path(1)));
    for (const Lsn from : {Lsn{1}, Lsn{3}}) {
        CAPTURE(from);
        RecoveryReport report;
        const Status status = wal::replay_log(
            fs, kLogDir, from, RecoveryMode::kTolerateTornTail, [](const LogRecord&) { return Status::ok(); },
            report);
        CHECK(status.code() == StatusCode::kCorruption);
        CHECK(mentions(status, "are missing"));
    }
}

TEST_CASE("A record header's checksum is checked before its type, reserved bytes and length", "[wal][recovery]") {
    FaultFileSystem pristine;
    const std::vector<std::uint64_t> offsets = write_log(pristine);
    const std::string full = pristine.contents(segment_path(1));
    for (const std::size_t field : {wal::kTypeAt, wal::kTypeAt + 1, wal::kLengthAt}) {
        CAPTURE(field);
        std::string damaged = full;
        damaged[offsets[2] + field] ^= 0x40;
        const Status status = open_planted(damaged, RecoveryMode::kAbsoluteConsistency);
        CHECK(status.code() == StatusCode::kCorruption);
        CHECK(mentions(status, "bad header checksum"));
    }
}

namespace {

// Writes `segments` segments of three records each (LSNs 1-3, 4-6, ...),
// then the empty segment a clean close leaves.
void write_segments(LogFixture<SyncWAL>& log, int segments) {
    for (int segment = 0; segment < segments; ++segment) {
        REQUIRE(log.reopen());
        for (int i = 1; i <= 3; ++i) REQUIRE(log.wal->write(put(key_of(3 * segment + i), value_of(i))));
        REQUIRE(log.wal->close());
    }
}

// Opening in either strict mode is refused as corruption, with `text` in
// the message.
void check_refused_strictly(FaultFileSystem& fs, const std::string& text) {
    for (const RecoveryMode mode : {RecoveryMode::kTolerateTornTail, RecoveryMode::kAbsoluteConsistency}) {
        CAPTURE(static_cast<int>(mode));
        std::vector<ReplayedOp> replayed;
        RecoveryReport report;
        const Status status = reopen(fs, mode, replayed, report);
        CHECK(status.code() == StatusCode::kCorruption);
        CHECK(mentions(status, text));
    }
}

}  // namespace

TEST_CASE("A segment whose header names another first LSN than its file name is refused", "[wal][recovery]") {
    LogFixture<SyncWAL> log;
    write_segments(log, 2);
    // Segment 4 replaced by segment 1 of another log: its header, and its
    // records, begin at LSN 1.
    LogFixture<SyncWAL> other;
    write_segments(other, 1);
    log.fs.set_contents(segment_path(4), other.fs.contents(segment_path(1)));
    const std::string damaged = log.fs.contents(segment_path(4));
    check_refused_strictly(log.fs, "file header names LSN 1, the file name another");
    check_refused_strictly(log.fs, segment_path(4));
    CHECK(log.fs.contents(segment_path(4)) == damaged);
}

TEST_CASE("A missing middle segment is refused, naming the LSNs it held", "[wal][recovery]") {
    LogFixture<SyncWAL> log;
    write_segments(log, 3);
    const std::string last = log.fs.contents(segment_path(7));
    REQUIRE(log.fs.remove(segment_path(4)));
    check_refused_strictly(log.fs, "LSNs 4-6 are missing");
    // Refused, not repaired: the segments after the gap are as they were.
    CHECK(log.fs.contents(segment_path(7)) == last);
}
