// Replay: reads every segment of a log directory in LSN order and hands each
// valid record to the caller, applying a RecoveryMode to damaged records and
// to LSNs missing between segments.
#pragma once

#include <kvstore/detail/log_reader.hpp>
#include <kvstore/log_options.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvstore::detail::log {

struct Segment {
    Lsn first_lsn;
    std::string name;
};

/// The segments in `dir`, oldest first.
inline Status list_segments(FileSystem& fs, const std::string& dir, std::vector<Segment>& segments) {
    std::vector<std::string> names;
    if (Status status = fs.list_dir(dir, names); !status) return status;
    segments.clear();
    for (std::string& name : names) {
        Lsn first = 0;
        if (parse_segment_name(name, first)) segments.push_back({first, std::move(name)});
    }
    std::sort(segments.begin(), segments.end(),
              [](const Segment& a, const Segment& b) { return a.first_lsn < b.first_lsn; });
    return Status::ok();
}

inline std::string join_path(const std::string& dir, const std::string& name) { return dir + "/" + name; }

/// Creates segment `header.first_lsn` in `dir` whole or not at all: the
/// header goes into "<name>.tmp", which is zero-filled to `preallocate`
/// bytes, synced and renamed, and the directory synced. A crash therefore
/// never leaves a segment without its header (and its flags).
inline Status create_segment(FileSystem& fs, const std::string& dir, const FileHeader& header,
                             std::uint64_t preallocate, unsigned file_mode, std::unique_ptr<WritableFile>& file) {
    const std::string path = join_path(dir, segment_name(header.first_lsn));
    const std::string temp = path + ".tmp";
    if (Status status = fs.open_writable(temp, file_mode, file); !status) return status;
    char bytes[kFileHeaderSize];
    write_file_header(bytes, header);
    if (Status status = file->append(std::string_view(bytes, sizeof bytes)); !status) return status;
    if (preallocate > 0) {
        if (Status status = file->preallocate(preallocate); !status) return status;
    }
    if (Status status = file->sync(); !status) return status;
    if (Status status = fs.rename(temp, path); !status) return status;
    return fs.sync_dir(dir);
}

/// A path in `dir` for setting segment `name` (or its tail) aside that no
/// file has yet: "<name>.damaged", else "<name>.2.damaged", and so on, so
/// that a second recovery never overwrites what a first one kept.
inline Status set_aside_path(FileSystem& fs, const std::string& dir, const std::string& name, std::string& path) {
    std::vector<std::string> names;
    if (Status status = fs.list_dir(dir, names); !status) return status;
    std::string candidate = name + ".damaged";
    for (int n = 2; std::find(names.begin(), names.end(), candidate) != names.end(); ++n)
        candidate = name + "." + std::to_string(n) + ".damaged";
    path = join_path(dir, candidate);
    return Status::ok();
}

/// Copies bytes [from, reader's file size) of the reader's segment into the
/// new file `target`, synced.
inline Status copy_tail(FileSystem& fs, ReadableFile& source, std::uint64_t from, std::uint64_t size,
                        const std::string& target, unsigned file_mode) {
    std::unique_ptr<WritableFile> out;
    if (Status status = fs.open_writable(target, file_mode, out); !status) return status;
    std::vector<char> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(LogReader::kReadSize, size - from)));
    for (std::uint64_t at = from; at < size;) {
        std::size_t got = 0;
        if (Status status = source.read(at, buffer.size(), buffer.data(), got); !status) return status;
        if (got == 0) return Status::io_error("read", target + " (copying the tail of a damaged segment)", EIO);
        if (Status status = out->append(std::string_view(buffer.data(), got)); !status) return status;
        at += got;
    }
    if (Status status = out->sync(); !status) return status;
    return out->close();
}

/// The highest of `highest` and the LSNs of the whole records from
/// reader.offset() to the end of the segment, damage skipped.
inline Lsn highest_lsn_from(LogReader& reader, Lsn highest) {
    RecordView record{};
    for (;;) {
        const LogReader::Next next = reader.next(record);
        if (next == LogReader::Next::kEnd) return highest;
        if (next == LogReader::Next::kRecord) {
            highest = std::max(highest, record.lsn);
            continue;
        }
        highest = std::max(highest, reader.damaged_lsn());
        if (!reader.io_status() || !reader.find_next_record(0)) return highest;
    }
}

/// The highest LSN segment `path` shows to have existed: its records', or
/// the one before its first LSN (the name's), for a segment is started only
/// after the records before it.
inline Status highest_lsn_in(FileSystem& fs, const std::string& path, Lsn name_lsn, Lsn& highest) {
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> file;
    if (Status status = fs.file_size(path, size); !status) return status;
    if (Status status = fs.open_readable(path, file); !status) return status;
    LogReader reader(*file, path, size);
    highest = name_lsn - 1;
    FileHeader header;
    if (reader.read_file_header(header) == LogReader::Next::kEnd) return Status::ok();
    // A damaged header still lets the records after it be read.
    if (reader.offset() < kFileHeaderSize && !reader.find_next_record(0)) return reader.io_status();
    highest = highest_lsn_from(reader, highest);
    return reader.io_status();
}

/// The flags in the header of segment `first_lsn` of `dir`; 0 if there is
/// no such segment or its header does not parse.
inline std::uint32_t segment_flags(FileSystem& fs, const std::string& dir, Lsn first_lsn) {
    const std::string path = join_path(dir, segment_name(first_lsn));
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> file;
    if (!fs.file_size(path, size) || !fs.open_readable(path, file)) return 0;
    LogReader reader(*file, path, size);
    FileHeader header;
    return reader.read_file_header(header) == LogReader::Next::kRecord ? header.flags : 0;
}

/// Where kPointInTime stopped: the rest of the log from there is set aside.
struct StopPoint {
    std::size_t segment;      // index of the segment it stopped in, or before
    std::uint64_t offset;     // the first byte not kept in that segment; 0: the whole segment goes
    Lsn highest_set_aside;    // the highest LSN seen in what is set aside so far
};

/// Replays the log in `dir` from LSN `from_lsn` on: apply(const RecordView&)
/// -> Status is called for each valid record with an LSN at or above it, in
/// order; a non-ok Status from it stops the replay and is returned. The LSNs
/// must run on without a gap from one segment to the next, and, when
/// `from_lsn` is not 0, the oldest segment read must start at or before it
/// (a snapshot says the log holds every record from there on); a missing
/// stretch is treated as damage. With `repair`, a torn tail is cut off the
/// file and what kPointInTime sets aside is moved to `<name>.damaged` files
/// (never deleted); without it the files are only read. `progress`, if set,
/// hears the bytes read so far and in all (see
/// LogOptions::on_replay_progress).
template <class Apply>
Status replay_log(FileSystem& fs, const std::string& dir, Lsn from_lsn, RecoveryMode mode, bool repair,
                  Apply&& apply, RecoveryReport& report,
                  const std::function<void(std::uint64_t, std::uint64_t)>& progress = {}, unsigned file_mode = 0600) {
    const auto started = std::chrono::steady_clock::now();
    report = RecoveryReport{};
    std::vector<Segment> segments;
    if (Status status = list_segments(fs, dir, segments); !status) return status;

    // Segments wholly before from_lsn are not read: one that starts at or
    // before it is the first that can hold it.
    std::size_t first_needed = 0;
    for (std::size_t i = 0; i < segments.size(); ++i)
        if (segments[i].first_lsn <= from_lsn) first_needed = i;

    std::uint64_t total_bytes = 0;
    if (progress) {
        for (std::size_t i = first_needed; i < segments.size(); ++i) {
            std::uint64_t size = 0;
            if (Status status = fs.file_size(join_path(dir, segments[i].name), size); !status) return status;
            total_bytes += size;
        }
        progress(0, total_bytes);
    }

    // The last LSN the log is known to hold so far: of the last valid
    // record, or the one before an empty segment's first.
    Lsn last = 0;
    std::optional<StopPoint> stop;
    for (std::size_t i = first_needed; i < segments.size() && !stop; ++i) {
        if (progress && i > first_needed) progress(report.bytes, total_bytes);
        const bool newest = i + 1 == segments.size();
        const std::string path = join_path(dir, segments[i].name);
        const Lsn name_lsn = segments[i].first_lsn;
        std::uint64_t size = 0;
        std::unique_ptr<ReadableFile> file;
        if (Status status = fs.file_size(path, size); !status) return status;
        if (Status status = fs.open_readable(path, file); !status) return status;
        LogReader reader(*file, path, size);
        ++report.segments;
        report.bytes += size;

        // Handles damage at reader.offset(); returns false when replay of
        // this segment cannot go on.
        Status failure;
        auto on_damage = [&]() -> bool {
            if (!reader.io_status().is_ok()) {
                failure = reader.io_status();
                return false;
            }
            const std::uint64_t damaged_at = reader.offset();
            const std::string why = reader.damage();
            const Lsn damaged_lsn = reader.damaged_lsn();
            const bool followed = reader.find_next_record(last);
            const bool torn_tail = newest && !followed;
            const std::uint64_t next_valid = followed ? reader.offset() : size;
            switch (mode) {
                case RecoveryMode::kTolerateTornTail:
                    if (!torn_tail) {
                        failure = Status::corruption(
                            path, damaged_at,
                            why + (followed ? " (valid records follow it, so it is not a torn tail)"
                                            : " (in a segment that is not the newest)"));
                        return false;
                    }
                    break;
                case RecoveryMode::kAbsoluteConsistency:
                    failure = Status::corruption(path, damaged_at, why);
                    return false;
                case RecoveryMode::kPointInTime:
                    report.dropped.push_back({path, damaged_at, size - damaged_at, why});
                    report.truncated = true;
                    stop = StopPoint{i, damaged_at, std::max(damaged_lsn, highest_lsn_from(reader, last))};
                    return false;
                case RecoveryMode::kSkipBadRecords:
                    report.dropped.push_back({path, damaged_at, next_valid - damaged_at, why});
                    return followed;
            }
            report.dropped.push_back({path, damaged_at, size - damaged_at, "torn tail: " + why});
            report.truncated = true;
            stop = StopPoint{i, damaged_at, last};
            if (!repair) return false;
            // A segment without a whole file header is set aside rather than
            // left empty, which a later replay would take for corruption.
            if (damaged_at >= kFileHeaderSize) {
                failure = fs.truncate(path, damaged_at);
            } else {
                std::string aside;
                failure = set_aside_path(fs, dir, segments[i].name, aside);
                if (failure) failure = fs.rename(path, aside);
            }
            return false;
        };

        // Handles LSNs first_expected..name_lsn-1 missing before this
        // segment; returns false when replay cannot go on.
        auto on_gap = [&](Lsn first_expected, const std::string& where) -> bool {
            const std::string why =
                name_lsn > first_expected
                    ? (name_lsn - 1 == first_expected
                           ? "LSN " + std::to_string(first_expected) + " is missing: "
                           : "LSNs " + std::to_string(first_expected) + "-" + std::to_string(name_lsn - 1) +
                                 " are missing: ") +
                          where + " and this segment starts at LSN " + std::to_string(name_lsn)
                    : "this segment starts at LSN " + std::to_string(name_lsn) + " although " + where;
            switch (mode) {
                case RecoveryMode::kTolerateTornTail:
                case RecoveryMode::kAbsoluteConsistency: failure = Status::corruption(path, 0, why); return false;
                case RecoveryMode::kPointInTime:
                    report.dropped.push_back({path, 0, size, why});
                    report.truncated = true;
                    stop = StopPoint{i, 0, last};
                    return false;
                case RecoveryMode::kSkipBadRecords: report.dropped.push_back({path, 0, 0, why}); return true;
            }
            return false;
        };

        FileHeader header;
        LogReader::Next next = reader.read_file_header(header);
        if (next == LogReader::Next::kEnd && !newest) return Status::corruption(path, 0, "empty segment that is not the newest");
        if (next == LogReader::Next::kRecord && header.first_lsn != name_lsn) {
            return Status::corruption(path, 16, "file header names LSN " + std::to_string(header.first_lsn) +
                                                   ", the file name another");
        }
        // The name says where the segment starts even when its header is damaged.
        const bool set_aside_before = next == LogReader::Next::kRecord && (header.flags & kFollowsSetAside) != 0;
        const bool continues = i > first_needed ? name_lsn == last + 1 || (name_lsn > last + 1 && set_aside_before)
                                                : from_lsn == 0 || name_lsn <= from_lsn || set_aside_before;
        if (!continues) {
            const std::string where =
                i > first_needed ? "segment " + segments[i - 1].name + " ends at LSN " + std::to_string(last)
                                 : "the log must hold every record from LSN " + std::to_string(from_lsn) +
                                       " on (where its snapshot, or its start, leaves off)";
            if (!on_gap(i > first_needed ? last + 1 : from_lsn, where)) {
                if (!failure) return failure;
                continue;
            }
        }
        last = std::max(last, name_lsn - 1);
        if (next == LogReader::Next::kEnd) continue;
        if (next == LogReader::Next::kDamaged && !on_damage()) {
            if (!failure) return failure;
            continue;
        }

        RecordView record{};
        bool after_damage = next == LogReader::Next::kDamaged;
        while ((next = reader.next(record)) != LogReader::Next::kEnd) {
            if (next == LogReader::Next::kDamaged) {
                if (on_damage()) {
                    after_damage = true;
                    continue;
                }
                if (!failure) return failure;
                break;
            }
            if (record.lsn != last + 1) {
                const std::string why = "record has LSN " + std::to_string(record.lsn) + " where " +
                                        std::to_string(last + 1) + " was expected";
                if (mode != RecoveryMode::kSkipBadRecords || record.lsn <= last)
                    return Status::corruption(path, record.offset, why);
                // Skipped damage leaves the LSNs it held missing, and was reported.
                if (!after_damage) report.dropped.push_back({path, record.offset, 0, why});
            }
            after_damage = false;
            last = record.lsn;
            if (record.lsn >= from_lsn) {
                if (Status status = apply(static_cast<const RecordView&>(record)); !status) return status;
                ++report.records;
            }
        }
    }

    // kPointInTime: what follows the stopping point is set aside whole, and
    // new records go on after the highest LSN in it, so that no LSN ever
    // names two records (a follower may have read the ones set aside).
    if (stop && mode == RecoveryMode::kPointInTime) {
        Lsn highest = stop->highest_set_aside;
        std::size_t entry = report.dropped.size() - 1;  // the stopping segment's
        for (std::size_t later = stop->segment; later < segments.size(); ++later) {
            const std::string path = join_path(dir, segments[later].name);
            std::uint64_t size = 0;
            if (Status status = fs.file_size(path, size); !status) return status;
            const bool whole = later > stop->segment || stop->offset < kFileHeaderSize;
            if (later > stop->segment) {
                entry = report.dropped.size();
                report.dropped.push_back({path, 0, size, "after the point where recovery stopped"});
            }
            if (whole) {
                Lsn in_segment = 0;
                if (Status status = highest_lsn_in(fs, path, segments[later].first_lsn, in_segment); !status)
                    return status;
                highest = std::max(highest, in_segment);
            }
            if (!repair) continue;
            std::string aside;
            if (Status status = set_aside_path(fs, dir, segments[later].name, aside); !status) return status;
            if (whole) {
                if (Status status = fs.rename(path, aside); !status) return status;
            } else {
                std::unique_ptr<ReadableFile> source;
                if (Status status = fs.open_readable(path, source); !status) return status;
                if (Status status = copy_tail(fs, *source, stop->offset, size, aside, file_mode); !status)
                    return status;
            }
            report.dropped[entry].reason += "; kept in " + aside;
        }
        report.highest_set_aside_lsn = highest;
        if (repair) {
            if (Status status = fs.sync_dir(dir); !status) return status;
            // The segment that goes on after the set-aside LSNs exists, with
            // its flag, before the damaged segment is cut: a crash in
            // between leaves a log a new point-in-time recovery takes up.
            if (highest > last) {
                std::unique_ptr<WritableFile> next_segment;
                if (Status status = create_segment(fs, dir, FileHeader{highest + 1, kFollowsSetAside}, 0, file_mode,
                                                   next_segment);
                    !status)
                    return status;
                if (Status status = next_segment->close(); !status) return status;
            }
            if (stop->offset >= kFileHeaderSize) {
                const std::string path = join_path(dir, segments[stop->segment].name);
                if (Status status = fs.truncate(path, stop->offset); !status) return status;
            }
        }
    }
    if (progress && report.segments > 0) progress(report.bytes, total_bytes);
    report.last_lsn = last;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return Status::ok();
}

}  // namespace kvstore::detail::log
