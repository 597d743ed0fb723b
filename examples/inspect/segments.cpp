// The log half of kvstore-inspect: every record of every segment, read with
// the library's LogSegmentReader (kvstore/log_files.hpp), and every damaged
// place classified the way Store::open treats it when it replays the log.
#include "inspect.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

namespace inspect {
namespace {

using kvstore::LogOperation;
using kvstore::LogRecordType;
using kvstore::Status;

const char* type_name(LogRecordType type) {
    switch (type) {
    case LogRecordType::kPut:
        return "put";
    case LogRecordType::kPutExpiring:
        return "put";
    case LogRecordType::kErase:
        return "erase";
    case LogRecordType::kClear:
        return "clear";
    case LogRecordType::kBatch:
        return "batch";
    }
    return "?";
}

void print_operation(const LogOperation& op, const char* indent) {
    std::printf("%s%s", indent, type_name(op.type));
    if (op.type != LogRecordType::kClear) std::printf(" %s", quoted(op.key).c_str());
    if (op.type == LogRecordType::kPut || op.type == LogRecordType::kPutExpiring)
        std::printf(" = %s", quoted(op.value).c_str());
    if (op.type == LogRecordType::kPutExpiring) std::printf(" expires %s", format_micros(op.expiry).c_str());
    std::printf("\n");
}

// Decodes a record's payload, printing its operations when `print`; returns
// why it does not decode, or nullptr. The same checks as
// kvstore::for_each_operation, which a Store's replay runs.
const char* decode_record(const kvstore::LogRecord& record, bool print) {
    if (record.type != LogRecordType::kBatch)
        return kvstore::decode_log_payload(record, [&](const LogOperation& op) {
            if (print) print_operation(op, " ");
        });
    std::size_t count = 0;
    const char* why = kvstore::decode_log_payload(record, [&](const LogOperation&) { ++count; });
    if (why == nullptr && print) {
        std::printf(" batch of %zu\n", count);
        (void)kvstore::decode_log_payload(record, [](const LogOperation& op) { print_operation(op, "        "); });
    }
    return why;
}

std::string lsn_range(Lsn first, Lsn last) {
    return first == last ? "LSN " + std::to_string(first)
                         : "LSNs " + std::to_string(first) + "-" + std::to_string(last);
}

// Zero bytes from `offset` on (up to a few MiB): a record that starts with
// zeros is a region that never reached the disk, unlike the preallocated
// zeros that run from the last record to the end of the file.
std::uint64_t zero_run(kvstore::ReadableFile& file, std::uint64_t offset, std::uint64_t size) {
    constexpr std::uint64_t kMost = std::uint64_t{4} << 20;
    char buffer[64 << 10];
    std::uint64_t zeros = 0;
    while (offset + zeros < size && zeros < kMost) {
        std::size_t got = 0;
        if (!file.read(offset + zeros, sizeof buffer, buffer, got) || got == 0) break;
        for (std::size_t i = 0; i < got; ++i) {
            if (buffer[i] != 0) return zeros + i;
        }
        zeros += got;
    }
    return zeros;
}

// The LSN of the whole record that find_next_record found at `offset`.
Lsn lsn_at(kvstore::ReadableFile& file, std::uint64_t offset) {
    char header[kvstore::kLogRecordHeaderSize];
    std::size_t got = 0;
    kvstore::LogRecordHeader parsed{};
    if (!file.read(offset, sizeof header, header, got) || got != sizeof header ||
        kvstore::parse_log_record_header(header, parsed) != nullptr)
        return 0;
    return parsed.lsn;
}

// One segment's reading: its place in the log going in, what was found
// coming out.
struct SegmentCheck {
    std::string path;
    Lsn name_lsn = 0;
    bool newest = false;
    bool read_by_open = true;  // false for segments before the one Store::open starts at
    Lsn replay_from = 0;


    std::uint64_t size = 0;
    std::uint64_t records = 0;
    Lsn first = 0;
    Lsn last = 0;
    std::uint64_t zero_tail = 0;
    bool empty = false;
    bool follows_set_aside = false;  // the header's flag: LSNs before it were set aside on purpose
    std::vector<Finding> findings;
    bool fails_open = false;
    std::string open_anyway;  // how another recovery mode opens despite the first finding that fails open
    Status failure;           // not ok when an I/O error stopped the reading
    bool vanished = false;
};

// Adds `finding`; `open_anyway` says which recovery mode would open despite
// it, if any does.
void add(SegmentCheck& check, Finding finding, const std::string& open_anyway) {
    if (!check.read_by_open) {
        finding.effect = Effect::kNotRead;
        finding.consequence = "Store::open does not read this segment (the snapshot replays the log from LSN " +
                              std::to_string(check.replay_from) + "); the next checkpoint deletes it";
    }
    if (finding.effect == Effect::kOpenFails && !check.fails_open) {
        check.fails_open = true;
        check.open_anyway = open_anyway;
    }
    check.findings.push_back(std::move(finding));
}

// Reads the whole segment, printing its records when `dump` is set.
void read_segment(kvstore::FileSystem& fs, SegmentCheck& check, const Options* dump) {
    std::unique_ptr<kvstore::ReadableFile> file;
    Status status = fs.file_size(check.path, check.size);
    if (status) status = fs.open_readable(check.path, file);
    if (!status) {
        if (status.error_number() == ENOENT) {
            check.vanished = true;
        } else {
            check.failure = status;
        }
        return;
    }
    kvstore::LogSegmentReader reader(*file, check.path, check.size);
    Lsn last = check.name_lsn - 1;
    bool after_damage = false;
    std::uint64_t printed = 0;

    // Records the damage at reader.offset() and moves past it; false when
    // nothing valid follows in this segment.
    auto on_damage = [&]() -> bool {
        if (!reader.io_status()) {
            check.failure = reader.io_status();
            return false;
        }
        Finding finding;
        finding.offset = reader.offset();
        finding.reason = reader.damage();
        if (reader.damaged_lsn() != 0) {
            finding.record = "record LSN " + std::to_string(reader.damaged_lsn());
        } else if (finding.offset >= kvstore::kLogFileHeaderSize) {
            finding.record = "expected LSN " + std::to_string(last + 1);
        }
        if (const std::uint64_t zeros = zero_run(*file, finding.offset, check.size); zeros > 0) {
            finding.reason += "; " + std::to_string(zeros) +
                              " zero bytes start here, followed by data: not preallocated space (which runs to the "
                              "end of the file) but a region that never reached the disk";
        }
        const bool followed = reader.find_next_record(last);
        const std::uint64_t cut = check.size - finding.offset;
        if (followed) {
            finding.consequence = "valid records follow from offset " + std::to_string(reader.offset()) + " (LSN " +
                                  std::to_string(lsn_at(*file, reader.offset())) +
                                  "), so this is not a torn tail: Store::open fails";
        } else if (!check.newest) {
            finding.consequence = "in a segment that is not the newest, so this is not a torn tail: Store::open fails";
        } else if (finding.offset < kvstore::kLogFileHeaderSize) {
            finding.effect = Effect::kOpenSetsAside;
            finding.consequence =
                "the newest segment has no whole file header (a crash right after creating it): "
                "Store::open renames it to <name>.damaged and opens";
        } else {
            finding.effect = Effect::kOpenCuts;
            finding.consequence =
                "torn tail: nothing valid follows in the newest segment, so Store::open cuts the "
                "file at offset " +
                std::to_string(finding.offset) + " (dropping " + std::to_string(cut) + " bytes) and opens";
        }
        add(check, std::move(finding),
            "RecoveryMode::kPointInTime opens with " +
                (last == 0 ? std::string("none of the log's records") : "the log up to LSN " + std::to_string(last)) +
                " and sets the rest aside (renamed *.damaged); kSkipBadRecords skips only the damaged bytes");
        if (dump != nullptr)
            std::printf("    [damaged bytes at offset %llu: see below]\n",
                        static_cast<unsigned long long>(check.findings.back().offset));
        after_damage = true;
        return followed;
    };

    kvstore::LogFileHeader header;
    kvstore::LogSegmentReader::Next next = reader.read_file_header(header);
    if (next == kvstore::LogSegmentReader::Next::kEnd) {
        check.empty = true;
        check.last = last;
        if (!check.newest) {
            add(check, Finding{0, "", "empty segment that is not the newest", Effect::kOpenFails, "Store::open fails"},
                "");
        }
        return;
    }
    if (next == kvstore::LogSegmentReader::Next::kDamaged) {
        if (!on_damage()) return;
    } else if (header.first_lsn != check.name_lsn) {
        add(check,
            Finding{16, "",
                    "the file header names LSN " + std::to_string(header.first_lsn) + ", the file name LSN " +
                        std::to_string(check.name_lsn),
                    Effect::kOpenFails, "Store::open fails"},
            "");
    } else {
        check.follows_set_aside = (header.flags & kvstore::kLogFollowsSetAside) != 0;
    }

    kvstore::LogRecord record{};
    while ((next = reader.next(record)) != kvstore::LogSegmentReader::Next::kEnd) {
        if (next == kvstore::LogSegmentReader::Next::kDamaged) {
            if (on_damage()) continue;
            check.last = last;
            return;
        }
        const Lsn expected = last + 1;
        // After damage the LSNs it held are missing; the damage is reported.
        if (record.lsn != expected && !(after_damage && record.lsn > last)) {
            add(check,
                Finding{record.offset, "record LSN " + std::to_string(record.lsn),
                        "LSN out of order: " + std::to_string(expected) + " was expected", Effect::kOpenFails,
                        "Store::open fails (the log's LSNs must run on without a gap)"},
                record.lsn > expected
                    ? "RecoveryMode::kSkipBadRecords opens without " + lsn_range(expected, record.lsn - 1)
                    : "");
        }
        after_damage = false;
        const bool print = dump != nullptr && printed < dump->limit;
        if (print) {
            std::printf("    LSN %llu at %llu:", static_cast<unsigned long long>(record.lsn),
                        static_cast<unsigned long long>(record.offset));
            ++printed;
        }
        if (const char* why = decode_record(record, print)) {
            if (print) std::printf(" (does not decode)\n");
            const bool applied = record.lsn >= check.replay_from;
            add(check,
                Finding{record.offset, "record LSN " + std::to_string(record.lsn),
                        std::string("the payload's checksum holds but it does not decode: ") + why,
                        applied ? Effect::kOpenFails : Effect::kNotRead,
                        applied ? "Store::open fails in every recovery mode"
                                : "Store::open reads but does not apply it (the snapshot covers it)"},
                "");
        }
        if (check.first == 0) check.first = record.lsn;
        ++check.records;
        last = record.lsn;
    }
    if (dump != nullptr && check.records > printed)
        std::printf("    ... %llu more records (--limit)\n", static_cast<unsigned long long>(check.records - printed));
    check.zero_tail = check.size - reader.offset();
    check.last = last;
}

// Records LSNs missing before a segment the log must go on in without a
// gap: `expected` is the LSN it must start at, or start by when
// `starts_by` (the oldest segment Store::open reads, against the snapshot).
void check_continuity(SegmentCheck& check, Lsn expected, bool starts_by, const std::string& where) {
    const bool continues = check.name_lsn == expected || (starts_by && check.name_lsn < expected) ||
                           (check.name_lsn > expected && check.follows_set_aside);
    if (continues) return;
    const bool missing = check.name_lsn > expected;
    add(check,
        Finding{0, "",
                missing ? lsn_range(expected, check.name_lsn - 1) + " missing: " + where +
                              ", and this segment starts at LSN " + std::to_string(check.name_lsn)
                        : "this segment starts at LSN " + std::to_string(check.name_lsn) + " although " + where,
                Effect::kOpenFails, "Store::open fails (the log's LSNs must run on without a gap)"},
        missing ? "RecoveryMode::kPointInTime opens with the log up to LSN " + std::to_string(expected - 1) +
                      " and sets the rest aside (*.damaged); kSkipBadRecords opens without " +
                      lsn_range(expected, check.name_lsn - 1)
                : "");
}

void print_summary(const SegmentCheck& check) {
    if (check.empty) {
        std::printf("    empty: a crash right after creating it leaves this%s\n",
                    check.newest ? "; Store::open starts its new segment anyway" : "");
        return;
    }
    std::printf("    first LSN %llu, %llu record%s", static_cast<unsigned long long>(check.name_lsn),
                static_cast<unsigned long long>(check.records), check.records == 1 ? "" : "s");
    if (check.records > 0) std::printf(", %s", lsn_range(check.first, check.last).c_str());
    std::printf(", %s", check.findings.empty() ? "intact" : "DAMAGED");
    if (check.zero_tail > 0) {
        std::printf("; then %llu zero bytes to the end of the file (preallocated space: normal)",
                    static_cast<unsigned long long>(check.zero_tail));
    }
    std::printf("\n");
}

}  // namespace

void check_segments(kvstore::FileSystem& fs, const Options& options, const std::vector<kvstore::LogSegment>& segments,
                    Lsn replay_from, bool store_open, Tally& tally) {
    if (segments.empty()) return;
    std::printf("log segments (oldest first):\n");
    // The segment Store::open starts replaying at, as log::replay_log picks it.
    std::size_t first_read = 0;
    for (std::size_t i = 0; i < segments.size(); ++i)
        if (segments[i].first_lsn <= std::max<Lsn>(replay_from, 1)) first_read = i;

    Lsn last = 0;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        SegmentCheck start;
        start.path = options.dir + "/" + segments[i].name;
        start.name_lsn = segments[i].first_lsn;
        start.newest = i + 1 == segments.size();
        start.read_by_open = i >= first_read;
        start.replay_from = replay_from;

        SegmentCheck check = start;
        std::uint64_t size = 0;
        (void)fs.file_size(start.path, size);
        std::printf("  %s  %llu bytes\n", segments[i].name.c_str(), static_cast<unsigned long long>(size));
        read_segment(fs, check, options.dump ? &options : nullptr);
        if (store_open && (!check.findings.empty() || !check.failure)) {
            const std::uint64_t first_seen = check.findings.empty() ? 0 : check.findings.front().offset;
            for (int reread = 0; reread < kRereads; ++reread) {
                std::this_thread::sleep_for(kRereadPause);
                SegmentCheck again = start;
                read_segment(fs, again, nullptr);
                if (again.vanished || (again.findings.empty() && again.failure)) {
                    std::printf(
                        "    (what was first read as damage at offset %llu was the file changing: a Store "
                        "has the directory open; read again, the segment is %s)\n",
                        static_cast<unsigned long long>(first_seen),
                        again.vanished ? "gone (a checkpoint removed it)" : "whole");
                    check = std::move(again);
                    break;
                }
            }
        }
        if (check.vanished) {
            std::printf("    removed while being read (a checkpoint deletes the segments its snapshot replaces)\n");
            continue;
        }
        if (i > first_read) {
            check_continuity(check, last + 1, false,
                             "segment " + segments[i - 1].name + " ends at LSN " + std::to_string(last));
        } else if (start.read_by_open) {
            const Lsn needed = std::max<Lsn>(replay_from, 1);
            check_continuity(check, needed, true,
                             (replay_from > 0 ? "the snapshot replays the log from LSN "
                                              : "with no snapshot the log must start at LSN ") +
                                 std::to_string(needed));
        }
        if (!check.failure) {
            std::printf("    UNREADABLE: %s\n", check.failure.to_string().c_str());
            ++tally.unreadable;
        }
        for (const Finding& finding : check.findings) report(tally, start.path, finding);
        print_summary(check);

        ++tally.segments;
        tally.records += check.records;
        if (check.records > 0 && tally.first_lsn == 0) tally.first_lsn = check.first;
        if (check.records > 0) tally.last_lsn = check.last;
        if (check.fails_open && !tally.log_fails_open) {
            tally.log_fails_open = true;
            tally.open_anyway = check.open_anyway;
        }
        last = std::max(last, check.last);
    }
}

}  // namespace inspect
