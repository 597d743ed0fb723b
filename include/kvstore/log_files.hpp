// Read-only access to the files of a log directory, for tools that inspect,
// copy or measure a log without opening it (kvstore-inspect, the log
// benchmark). Nothing here changes a file: a damaged tail is reported, never
// cut, and nothing is set aside. Opening the log (SyncWAL::open,
// GroupCommitWAL::open, Store::open) is what repairs, as its RecoveryMode
// allows. The format itself is described in docs/wal-format.md.
#pragma once

#include <kvstore/detail/log_format.hpp>
#include <kvstore/detail/log_reader.hpp>
#include <kvstore/detail/log_record.hpp>
#include <kvstore/detail/log_replay.hpp>
#include <kvstore/durability.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/log_options.hpp>
#include <kvstore/status.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvstore {

/// A log segment file: its name and the LSN of its first record.
using LogSegment = detail::log::Segment;
/// A segment's file header: its first LSN and flags.
using LogFileHeader = detail::log::FileHeader;
/// A record's header as parsed from its 32 bytes.
using LogRecordHeader = detail::log::RecordHeader;
/// Reads one segment's file header and records in order, telling damage
/// apart from the end (see detail/log_reader.hpp for each call).
using LogSegmentReader = detail::log::LogReader;

inline constexpr std::size_t kLogFileHeaderSize = detail::log::kFileHeaderSize;      ///< bytes of a segment's header
inline constexpr std::size_t kLogRecordHeaderSize = detail::log::kRecordHeaderSize;  ///< bytes of a record's header
/// LogFileHeader::flags bit: the LSNs before this segment's first were set
/// aside by a point-in-time recovery, so their absence is not damage.
inline constexpr std::uint32_t kLogFollowsSetAside = detail::log::kFollowsSetAside;

/// The segments in `dir`, oldest first.
inline Status list_log_segments(FileSystem& fs, const std::string& dir, std::vector<LogSegment>& segments) {
    return detail::log::list_segments(fs, dir, segments);
}

/// True, setting `first_lsn`, iff `name` is a log segment's file name.
inline bool parse_log_segment_name(const std::string& name, Lsn& first_lsn) {
    return detail::log::parse_segment_name(name, first_lsn);
}

/// Fills `header` from the kLogRecordHeaderSize bytes at `in` and returns
/// nullptr, or returns why they are not a record header.
inline const char* parse_log_record_header(const char* in, LogRecordHeader& header) noexcept {
    return detail::log::parse_record_header(in, header);
}

/// Decodes a record's payload into visit(const LogOperation&), one call per
/// operation, a batch checked whole first; returns nullptr, or why it does
/// not decode (nothing is visited then). for_each_operation is the same
/// with a Status.
template <class Visit>
const char* decode_log_payload(const LogRecord& record, Visit&& visit) {
    return detail::log::decode_record_payload(record, std::forward<Visit>(visit));
}

/// Reads the log in `dir` from LSN `from` on, as opening it in `mode` would,
/// calling apply(const LogRecord&) -> Status for each valid record in LSN
/// order; a non-ok Status from apply stops it and is returned. Damage that
/// `mode` allows is described in `report` and left in place.
template <class Apply>
Status read_log_files(FileSystem& fs, const std::string& dir, Lsn from, RecoveryMode mode, Apply&& apply,
                      RecoveryReport& report) {
    return detail::log::replay_log(fs, dir, from, mode, std::forward<Apply>(apply), report);
}

}  // namespace kvstore
