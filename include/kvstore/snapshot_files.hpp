// Read-only access to a store's snapshot files, for tools that inspect or
// copy them without opening the store. Reading checks every block's checksum
// and the trailer; nothing is written. The format is described in
// docs/snapshot-format.md.
#pragma once

#include <kvstore/detail/snapshot_file.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/log_options.hpp>
#include <kvstore/status.hpp>

#include <cstdint>
#include <string>
#include <utility>

namespace kvstore {

/// One entry as a snapshot holds it: key and value bytes (valid during the
/// call they are handed to) and the absolute expiry in microseconds since
/// the Unix epoch (0: none).
using SnapshotEntry = detail::snapshot::Entry;

/// True, setting `replay_from`, iff `name` is a complete snapshot's file
/// name; replay_from is the first log record the snapshot does not hold.
inline bool parse_snapshot_name(const std::string& name, Lsn& replay_from) {
    return detail::snapshot::parse_file_name(name, replay_from);
}

/// Reads the snapshot at `path`, calling visit(const SnapshotEntry&) for
/// each entry in order, and sets `replay_from` and `entries` from its header
/// and trailer. Fails with the file, offset and reason on any damage.
template <class Visit>
Status read_snapshot(FileSystem& fs, const std::string& path, Lsn& replay_from, std::uint64_t& entries,
                     Visit&& visit) {
    return detail::snapshot::read(fs, path, replay_from, entries, std::forward<Visit>(visit));
}

}  // namespace kvstore
