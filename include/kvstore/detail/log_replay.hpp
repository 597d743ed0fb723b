// Replay: reads every segment of a log directory in LSN order and hands each
// valid record to the caller; a DamagePolicy (detail/log_damage.hpp) decides
// what happens at a damaged record or a missing stretch of LSNs. Replay only
// reads: what the policy cuts or sets aside is returned as a RepairPlan, which
// the log's owner carries out with repair_log (detail/log_repair.hpp).
#pragma once

#include <kvstore/detail/log_damage.hpp>
#include <kvstore/detail/log_reader.hpp>
#include <kvstore/detail/log_segments.hpp>
#include <kvstore/log_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kvstore::detail::log {

// What a replay found to cut or set aside, for repair_log.
struct RepairPlan {
    enum class Kind {
        kNone,
        kCutTornTail,   // kTolerateTornTail: segments[0] is cut at `offset`
        kSetAsideRest,  // kPointInTime: everything from `offset` in segments[0] on is set aside
    };
    Kind kind = Kind::kNone;
    std::vector<Segment> segments;  // the segment stopped in (all kCutTornTail uses), then every later one
    // The first byte not kept in segments[0]; below kFileHeaderSize the whole
    // segment goes, as one without a whole header would read as corrupt.
    std::uint64_t offset = 0;
    std::vector<std::size_t> dropped;  // for each of segments, its entry in RecoveryReport::dropped
    Lsn last_kept = 0;
    Lsn highest_set_aside = 0;
};

/// Replays the log in `dir` from LSN `from_lsn` on: apply(const RecordView&)
/// -> Status is called for each valid record with an LSN at or above it, in
/// order; a non-ok Status from it stops the replay and is returned. The LSNs
/// must run on without a gap from one segment to the next, and, when
/// `from_lsn` is not 0, the oldest segment read must start at or before it
/// (a snapshot says the log holds every record from there on); a missing
/// stretch is treated as damage. No file is changed: `plan`, if given, gets
/// what the mode cuts or sets aside (see RepairPlan). `progress`, if set,
/// hears the bytes read so far and in all (see
/// LogOptions::on_replay_progress).
template <class Apply>
Status replay_log(FileSystem& fs, const std::string& dir, Lsn from_lsn, RecoveryMode mode, Apply&& apply,
                  RecoveryReport& report, const std::function<void(std::uint64_t, std::uint64_t)>& progress = {},
                  RepairPlan* plan = nullptr) {
    const auto started = std::chrono::steady_clock::now();
    report = RecoveryReport{};
    DamagePolicy policy(mode, report);
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
    RepairPlan found;
    // Where a kStop verdict left off: segment i at `offset`, the highest LSN seen past it.
    auto stop_at = [&](std::size_t i, std::uint64_t offset, Lsn highest) {
        found.kind = policy.sets_aside() ? RepairPlan::Kind::kSetAsideRest : RepairPlan::Kind::kCutTornTail;
        found.segments.assign(segments.begin() + static_cast<std::ptrdiff_t>(i), segments.end());
        found.offset = offset;
        found.dropped.assign(1, report.dropped.size() - 1);
        found.highest_set_aside = highest;
    };
    for (std::size_t i = first_needed; i < segments.size() && found.kind == RepairPlan::Kind::kNone; ++i) {
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
            const Damage damage{path, damaged_at, followed ? reader.offset() : size, size, why, newest};
            switch (policy.damaged_record(damage, failure)) {
                case DamageVerdict::kSkip: return true;
                case DamageVerdict::kFail:
                case DamageVerdict::kEndSegment: return false;
                case DamageVerdict::kStop:
                    stop_at(i, damaged_at,
                            policy.sets_aside() ? std::max(damaged_lsn, highest_lsn_from(reader, last)) : last);
                    return false;
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
            switch (policy.missing_lsns(path, size, why, failure)) {
                case DamageVerdict::kSkip: return true;
                case DamageVerdict::kStop: stop_at(i, 0, last); return false;
                case DamageVerdict::kFail:
                case DamageVerdict::kEndSegment: return false;
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
                Status out_of_order;
                if (policy.unexpected_lsn(path, record.offset, why, record.lsn <= last, after_damage, out_of_order) ==
                    DamageVerdict::kFail)
                    return out_of_order;
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
    if (found.kind == RepairPlan::Kind::kSetAsideRest) {
        for (std::size_t later = 0; later < found.segments.size(); ++later) {
            const std::string path = join_path(dir, found.segments[later].name);
            if (later > 0) {
                std::uint64_t size = 0;
                if (Status status = fs.file_size(path, size); !status) return status;
                found.dropped.push_back(report.dropped.size());
                report.dropped.push_back({path, 0, size, "after the point where recovery stopped"});
            }
            if (later > 0 || found.offset < kFileHeaderSize) {
                Lsn in_segment = 0;
                if (Status status = highest_lsn_in(fs, path, found.segments[later].first_lsn, in_segment); !status)
                    return status;
                found.highest_set_aside = std::max(found.highest_set_aside, in_segment);
            }
        }
        report.highest_set_aside_lsn = found.highest_set_aside;
    }
    found.last_kept = last;
    if (plan != nullptr) *plan = std::move(found);
    if (progress && report.segments > 0) progress(report.bytes, total_bytes);
    report.last_lsn = last;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return Status::ok();
}

}  // namespace kvstore::detail::log
