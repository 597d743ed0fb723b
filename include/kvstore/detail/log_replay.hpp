// Replay: reads every segment of a log directory in LSN order and hands each
// valid record to the caller, applying a RecoveryMode to damaged ones.
#pragma once

#include <kvstore/detail/log_reader.hpp>
#include <kvstore/log_options.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
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

/// Replays the log in `dir` from LSN `from_lsn` on: apply(const RecordView&)
/// -> Status is called for each valid record with an LSN at or above it, in
/// order; a non-ok Status from it stops the replay and is returned. With
/// `repair`, a torn tail is cut off the file and the segments that
/// kPointInTime sets aside are renamed; without it the files are only read.
/// `progress`, if set, hears the bytes read so far and in all (see
/// LogOptions::on_replay_progress).
template <class Apply>
Status replay_log(FileSystem& fs, const std::string& dir, Lsn from_lsn, RecoveryMode mode, bool repair,
                  Apply&& apply, RecoveryReport& report,
                  const std::function<void(std::uint64_t, std::uint64_t)>& progress = {}) {
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

    Lsn last = 0;
    bool stop = false;
    std::size_t stopped_in = 0;  // the segment where replay stopped, if it did
    for (std::size_t i = first_needed; i < segments.size() && !stop; ++i) {
        if (progress && i > first_needed) progress(report.bytes, total_bytes);
        const bool newest = i + 1 == segments.size();
        const std::string path = join_path(dir, segments[i].name);
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
                case RecoveryMode::kPointInTime: break;
                case RecoveryMode::kSkipBadRecords:
                    report.dropped.push_back({path, damaged_at, next_valid - damaged_at, why});
                    return followed;
            }
            report.dropped.push_back({path, damaged_at, size - damaged_at, (torn_tail ? "torn tail: " : "") + why});
            report.truncated = true;
            stop = true;
            stopped_in = i;
            if (!repair) return false;
            // A segment without a whole file header is set aside rather than
            // left empty, which a later replay would take for corruption.
            failure = damaged_at < kFileHeaderSize ? fs.rename(path, path + ".damaged") : fs.truncate(path, damaged_at);
            return false;
        };

        Lsn first_lsn = 0;
        LogReader::Next next = reader.read_file_header(first_lsn);
        if (next == LogReader::Next::kDamaged) {
            if (!on_damage()) {
                if (!failure) return failure;
                continue;
            }
        } else if (next == LogReader::Next::kEnd) {
            if (!newest) return Status::corruption(path, 0, "empty segment that is not the newest");
            continue;
        } else if (first_lsn != segments[i].first_lsn) {
            return Status::corruption(path, 16, "file header names LSN " + std::to_string(first_lsn) +
                                                   ", the file name another");
        }

        RecordView record{};
        while ((next = reader.next(record)) != LogReader::Next::kEnd) {
            if (next == LogReader::Next::kDamaged) {
                if (on_damage()) continue;
                if (!failure) return failure;
                break;
            }
            const bool in_order = record.lsn == (last == 0 ? segments[i].first_lsn : last + 1);
            const bool gap_allowed = mode == RecoveryMode::kSkipBadRecords && record.lsn > last;
            if (!in_order && !gap_allowed) {
                return Status::corruption(path, record.offset,
                                          "record has LSN " + std::to_string(record.lsn) + " where " +
                                              std::to_string(last + 1) + " was expected");
            }
            last = record.lsn;
            if (record.lsn >= from_lsn) {
                if (Status status = apply(static_cast<const RecordView&>(record)); !status) return status;
                ++report.records;
            }
        }
    }

    // kPointInTime: what follows the stopping point is set aside, so that
    // new records never share an LSN with old ones.
    if (stop && mode == RecoveryMode::kPointInTime) {
        for (std::size_t later = stopped_in + 1; later < segments.size(); ++later) {
            const std::string path = join_path(dir, segments[later].name);
            std::uint64_t size = 0;
            if (Status status = fs.file_size(path, size); !status) return status;
            report.dropped.push_back({path, 0, size, "after the point where recovery stopped"});
            if (repair) {
                if (Status status = fs.rename(path, path + ".damaged"); !status) return status;
            }
        }
        if (repair) {
            if (Status status = fs.sync_dir(dir); !status) return status;
        }
    }
    if (progress && report.segments > 0) progress(report.bytes, total_bytes);
    report.last_lsn = last;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return Status::ok();
}

}  // namespace kvstore::detail::log
