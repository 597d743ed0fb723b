// repair_log: carries out the RepairPlan a replay returned, the only code
// that changes a log's existing files after a crash. A torn tail is cut off;
// what kPointInTime stops before is moved to "<name>.damaged" files, never
// deleted. Only opening a log calls it; read-only readers
// (kvstore/log_files.hpp) replay without it.
#pragma once

#include <kvstore/detail/log_replay.hpp>
#include <kvstore/detail/log_segments.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/log_options.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore::detail::log {

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

/// Copies bytes [from, size) of `source` into the new file `target`, synced.
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

/// Sets segment `segment` of `dir` aside whole, or only from `offset` on
/// (a copy of its tail; the segment itself is cut later); `aside` gets the path it went to.
inline Status set_aside(FileSystem& fs, const std::string& dir, const Segment& segment, std::uint64_t offset,
                        unsigned file_mode, std::string& aside) {
    const std::string path = join_path(dir, segment.name);
    if (Status status = set_aside_path(fs, dir, segment.name, aside); !status) return status;
    if (offset < kFileHeaderSize) return fs.rename(path, aside);
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> source;
    if (Status status = fs.file_size(path, size); !status) return status;
    if (Status status = fs.open_readable(path, source); !status) return status;
    return copy_tail(fs, *source, offset, size, aside, file_mode);
}

/// Carries out `plan` in `dir`, adding to the reasons in `report` (the one
/// the replay filled) where each set-aside part was kept. New files get
/// `file_mode`.
inline Status repair_log(FileSystem& fs, const std::string& dir, const RepairPlan& plan, RecoveryReport& report,
                         unsigned file_mode) {
    if (plan.kind == RepairPlan::Kind::kNone) return Status::ok();
    const std::string first_path = join_path(dir, plan.segments.front().name);
    if (plan.kind == RepairPlan::Kind::kCutTornTail) {
        if (plan.offset >= kFileHeaderSize) return fs.truncate(first_path, plan.offset);
        std::string aside;
        return set_aside(fs, dir, plan.segments.front(), 0, file_mode, aside);
    }
    for (std::size_t i = 0; i < plan.segments.size(); ++i) {
        std::string aside;
        if (Status status = set_aside(fs, dir, plan.segments[i], i == 0 ? plan.offset : 0, file_mode, aside); !status)
            return status;
        report.dropped[plan.dropped[i]].reason += "; kept in " + aside;
    }
    if (Status status = fs.sync_dir(dir); !status) return status;
    // The segment that goes on after the set-aside LSNs exists, with its
    // flag, before the damaged segment is cut: a crash in between leaves a
    // log a new point-in-time recovery takes up.
    if (plan.highest_set_aside > plan.last_kept) {
        std::unique_ptr<WritableFile> next_segment;
        if (Status status = create_segment(fs, dir, FileHeader{plan.highest_set_aside + 1, kFollowsSetAside}, 0,
                                           file_mode, next_segment);
            !status)
            return status;
        if (Status status = next_segment->close(); !status) return status;
    }
    return plan.offset >= kFileHeaderSize ? fs.truncate(first_path, plan.offset) : Status::ok();
}

}  // namespace kvstore::detail::log
