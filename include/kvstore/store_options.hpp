// kvstore::StoreOptions, and what a Store reports: StoreRecovery (what
// opening found) and StoreStats (its figures).
#pragma once

#include <kvstore/concurrent_map.hpp>
#include <kvstore/log_options.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace kvstore {

/// How Store::open sets up the map, the log, automatic checkpoints and expiry; every field has a default.
struct StoreOptions {
    /// The map's shards and initial capacity (see MapOptions).
    MapOptions map;
    /// The log's options; its file_system also holds the snapshots and the
    /// LOCK file, and its file_mode and dir_mode apply to them.
    LogOptions log;
    /// Longest key and value accepted, in encoded bytes; a longer one is
    /// refused with kInvalidArgument and nothing is written.
    std::size_t max_key_size = std::size_t{64} << 10;
    std::size_t max_value_size = std::size_t{64} << 20;  ///< as max_key_size, for values
    /// A background thread checkpoints once the log has grown by this many
    /// bytes since the last checkpoint (0: only on demand), and by
    /// checkpoint_growth. It looks every checkpoint_poll. Not used under None.
    std::uint64_t checkpoint_bytes = std::uint64_t{64} << 20;
    /// An automatic checkpoint also waits until the log has grown by this
    /// percentage of the newest snapshot's size (0: checkpoint_bytes alone).
    /// A store far larger than checkpoint_bytes then does not write its
    /// whole state for every checkpoint_bytes logged: at 100, checkpoints
    /// write at most about one byte of snapshot per byte of log.
    unsigned checkpoint_growth = 100;
    std::chrono::milliseconds checkpoint_poll{100};  ///< how often the background thread checks checkpoint_bytes
    /// What "now" is for time-to-live; empty: std::chrono::system_clock.
    /// Expiry times are absolute wall-clock times (they survive restarts),
    /// so moving the system clock forward expires keys early and moving it
    /// back keeps them longer.
    std::function<std::chrono::system_clock::time_point()> clock;
    /// A background sweeper removes expired keys this often, one shard at a
    /// time (0: expired keys are removed only when a call finds them).
    std::chrono::milliseconds sweep_interval{1000};
};

/// What opening a store found.
struct StoreRecovery {
    std::string snapshot;                ///< the snapshot loaded ("" if none)
    std::uint64_t snapshot_entries = 0;  ///< entries in that snapshot, already expired ones (not loaded) included
    RecoveryReport log;                  ///< the log replayed after it
};

/// A store's figures.
struct StoreStats {
    std::size_t items = 0;             ///< entries in the map, expired ones not yet removed included
    std::size_t shards = 0;            ///< the map's shard count
    double load_factor = 0;            ///< entries per allocated slot, over all shards
    std::size_t memory_bytes = 0;      ///< tables and records held by the map
    LogStats log;                      ///< all zero under None
    std::uint64_t checkpoints = 0;     ///< finished by this Store object
    std::uint64_t snapshot_bytes = 0;  ///< size of the newest snapshot (0: none)
    /// Expired keys removed by this Store object (by calls that found them
    /// and by the sweeper); counted in items until then.
    std::uint64_t expired_keys = 0;
    StoreRecovery recovery;  ///< what opening the store found
    /// The first error of an automatic checkpoint, if one failed (they are
    /// retried at the next poll).
    std::string checkpoint_error;
};

}  // namespace kvstore
