// The options, recovery modes and figures of kvstore's write-ahead log.
#pragma once

#include <kvstore/file_system.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kvstore {

/// A log sequence number: every record gets the next one, starting at 1.
using Lsn = std::uint64_t;

/// What opening a log does with a record that fails its checks, or with
/// LSNs missing between one segment and the next (after RocksDB's
/// WALRecoveryMode).
enum class RecoveryMode {
    /// A damaged record at the very end of the newest segment (a crash
    /// during a write) is cut off; damage followed by a valid record, damage
    /// in an older segment and missing LSNs are corruption and the open
    /// fails, naming the file, offset and reason.
    kTolerateTornTail,
    /// Any damaged record, even a torn tail, and any missing LSN fails the open.
    kAbsoluteConsistency,
    /// Recovery stops at the first damaged record or missing LSN and keeps
    /// the state before it. The rest of that segment is copied to
    /// `<name>.damaged` before the segment is cut, later segments are
    /// renamed to `<name>.damaged`, and all of it is reported; nothing is
    /// deleted. New records go on after the highest LSN set aside, so that
    /// no LSN ever names two different records.
    kPointInTime,
    /// Damaged records and missing LSNs are skipped and reported; valid
    /// records after them are applied. The damaged bytes stay in the segment.
    kSkipBadRecords,
};

/// How a SyncWAL or GroupCommitWAL (and a Store's log) is opened, written and recovered; every field has
/// a usable default.
struct LogOptions {
    /// Where the files go; nullptr means default_file_system().
    FileSystem* file_system = nullptr;
    /// What opening does with a damaged record (default: cut off a torn tail, fail on other damage).
    RecoveryMode recovery_mode = RecoveryMode::kTolerateTornTail;
    /// A segment is closed and a new one started once it holds this much.
    std::size_t segment_bytes = std::size_t{64} << 20;
    /// Each segment is zero-filled this far ahead of its last record, so
    /// that a sync writes data without metadata (0 turns this off). Filling
    /// happens between groups and delays the next group by about the time
    /// it takes to write this much.
    std::size_t preallocate_bytes = std::size_t{1} << 20;
    /// Most bytes of records waiting to be written; appenders wait when
    /// they would exceed it (a single larger record is still accepted).
    std::size_t buffer_bytes = std::size_t{16} << 20;
    /// GroupCommitWAL: most bytes one write + fdatasync carries.
    std::size_t max_group_bytes = std::size_t{4} << 20;
    /// GroupCommitWAL: how long a group's leader waits for more writers to
    /// join before writing. Zero (the default) writes at once; writers that
    /// arrive during a sync form the next group anyway.
    std::chrono::microseconds commit_delay{0};
    /// GroupCommitWAL: nonzero selects the relaxed mode. Writes are
    /// acknowledged at once and a background thread writes and syncs every
    /// interval: a crash loses at most the writes of the last interval.
    std::chrono::milliseconds flush_interval{0};
    unsigned file_mode = 0600;  ///< permission bits of files kvstore creates (the umask still applies)
    unsigned dir_mode = 0700;   ///< permission bits of the directory, if kvstore creates it (the umask applies)
    /// Called while opening replays the log: once before the first segment
    /// and after each one, with the bytes of segments read so far and in
    /// all (segments are read whole, so a large log reports every
    /// segment_bytes or so).
    std::function<void(std::uint64_t bytes_read, std::uint64_t bytes_total)> on_replay_progress;
};

/// A stretch of a segment that recovery did not apply.
struct DroppedBytes {
    std::string file;          ///< the segment's path
    std::uint64_t offset = 0;  ///< where the stretch starts, in bytes from the start of the file
    std::uint64_t bytes = 0;   ///< length of the stretch
    std::string reason;        ///< the check that failed, or why the stretch was set aside
};

/// What opening a log replayed, and what it cut off, set aside or skipped.
struct RecoveryReport {
    std::uint64_t segments = 0;  ///< segments read
    std::uint64_t records = 0;  ///< records replayed (at or after the requested LSN)
    std::uint64_t bytes = 0;    ///< bytes of segments read
    Lsn last_lsn = 0;           ///< the last valid record's LSN (or the LSN before an empty log's first)
    /// kPointInTime: the highest LSN among the records set aside, 0 if none
    /// was; new records follow the higher of it and last_lsn.
    Lsn highest_set_aside_lsn = 0;
    double seconds = 0;         ///< how long the replay took
    /// A torn tail cut off (kTolerateTornTail) or the rest of the log set
    /// aside (kPointInTime): where and how many bytes.
    bool truncated = false;
    /// Every stretch not applied, in the order met; empty when the log was intact.
    std::vector<DroppedBytes> dropped;
};

/// A log's figures since it was opened (SyncWAL and GroupCommitWAL stats(), Store::log_stats()).
struct LogStats {
    std::uint64_t records = 0;  ///< records written and synced
    std::uint64_t bytes = 0;  ///< bytes written, headers included
    std::uint64_t syncs = 0;  ///< write + fdatasync rounds, one per group
    std::uint64_t largest_group = 0;  ///< most records made durable by one sync
    std::uint64_t largest_group_bytes = 0;  ///< most bytes written by one group
    std::uint64_t max_pending_bytes = 0;    ///< most bytes of records ever waiting to be written
    double average_group = 0;         ///< records per sync
    double average_sync_micros = 0;   ///< mean time of one group's write + sync, in microseconds
    double max_sync_micros = 0;       ///< longest write + sync, in microseconds
    Lsn last_lsn = 0;     ///< the newest record appended
    Lsn durable_lsn = 0;  ///< every record up to here is on stable storage
    std::uint64_t segments = 0;  ///< segments this log has written since it was opened
};

}  // namespace kvstore
