// The segment files of a log directory: listing them, creating one whole,
// and reading which LSNs one holds without replaying it.
#pragma once

#include <kvstore/detail/log_reader.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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

}  // namespace kvstore::detail::log
