// Checkpointer: writes a Store's snapshots while readers and writers go on,
// deletes what each one replaces, streams the newest out and takes one in.
//
// A checkpoint starts a new log segment at LSN L (under None, takes the next
// snapshot number), copies one shard at a time under that shard's shared
// lock, makes the log durable up to the end of the copy and then the
// snapshot, then deletes the segments and snapshots before L. Changes made
// during the copy may or may not be in the snapshot; replaying their records
// from L on gives the same state either way, because records hold resulting
// values. Under None, with no records to complete it, a change to several
// shards goes through copy_cursor() and waits rather than land between two
// shards' copies.
#pragma once

#include <kvstore/detail/encoded.hpp>
#include <kvstore/detail/expiring_value.hpp>
#include <kvstore/detail/shard_copy_cursor.hpp>
#include <kvstore/detail/snapshot_file.hpp>
#include <kvstore/detail/store_directory.hpp>
#include <kvstore/detail/store_recovery.hpp>
#include <kvstore/durability.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/status.hpp>
#include <kvstore/store_options.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

namespace kvstore::detail {

// K, V, Map: as for Recovery; Log: the Store's Durability policy.
template <class K, class V, class Map, class Log>
class Checkpointer {
    using Values = ExpiringValue<V>;

public:
    using CopyCursor = std::conditional_t<Log::kKeepsRecords, NullShardCopyCursor, ShardCopyCursor>;

    // `options` (checkpoint_bytes, checkpoint_growth, log.file_mode) must outlive it.
    Checkpointer(FileSystem& fs, const StoreDirectory& files, Map& map, const StoreOptions& options,
                 const ExpiryClock& clock, ExpirySeen& expiries)
        : fs_(fs), files_(files), map_(map), options_(options), clock_(clock), expiries_(expiries) {}

    // Held by whoever must not run beside a checkpoint: one at a time, and a
    // reader of the log segments a checkpoint would delete.
    std::mutex& mutex() noexcept { return mutex_; }

    // What a change to several shards goes through (see the file comment).
    const CopyCursor& copy_cursor() const noexcept { return copy_cursor_; }

    // Whether the log has grown enough since the last checkpoint began for an
    // automatic one: by checkpoint_bytes, and by checkpoint_growth percent
    // of the newest snapshot.
    bool due(const Log& log) const {
        if (!checks_size()) return false;
        const std::uint64_t growth = snapshot_bytes_.load(std::memory_order_relaxed) / 100 * options_.checkpoint_growth;
        const std::uint64_t threshold = std::max(options_.checkpoint_bytes, growth);
        return log.stats().bytes - logged_at_checkpoint_.load(std::memory_order_relaxed) >= threshold;
    }
    // Whether due() can ever be true.
    bool checks_size() const noexcept { return Log::kKeepsRecords && options_.checkpoint_bytes > 0; }

    // Writes a snapshot of the map and deletes what it replaces;
    // `replay_from` gets the first LSN it does not hold. REQUIRES: mutex() held.
    Status checkpoint(Log& log, Lsn& replay_from) {
        if (Status status = begin_snapshot(log, replay_from); !status) return status;
        snapshot::Writer writer(fs_, files_.path(), replay_from, options_.log.file_mode);
        Status status = writer.open();
        std::string key_bytes;
        std::string value_bytes;
        const Expiry now = clock_.now();
        // A shard is encoded into memory under its shared lock, then written
        // with no lock held.
        {
            typename CopyCursor::Copy copy(copy_cursor_);
            copy.visit(0);
            for (std::size_t shard = 0; status && shard < map_.shard_count(); ++shard) {
                // The writer's buffer is grown before the lock is taken:
                // growing it inside cost the first shard's writers 3-8 ms
                // of page faults at 1M entries.
                writer.reserve(map_.shard_stats(shard).memory_bytes);
                map_.for_each_in_shard(shard, [&](const auto& key, const auto& stored) {
                    if (deadline_passed(Values::expiry(stored), now)) return;
                    writer.add({encoded_bytes(key, key_bytes), encoded_bytes(Values::value(stored), value_bytes),
                                Values::expiry(stored)});
                });
                // The shard is in memory: a change waiting for the copy to
                // pass it need not wait for the disk as well.
                copy.visit(shard + 1);
                status = writer.write_pending();
            }
        }
        // The copy may hold changes whose records are not durable yet (a
        // relaxed or deferred commit, or a write still waiting for its sync),
        // some of a batch's keys in shards copied after it and some not. A
        // crash would lose those records but not the snapshot, leaving the
        // batch torn; so they are made durable before the snapshot is.
        if (status) status = log.flush();
        if (status) status = writer.finish();
        if (!status) return status;
        return end_snapshot(log, replay_from);
    }

    // Checkpoints, then calls sink(std::string_view) -> Status with the
    // snapshot file's bytes in order (see Store::export_snapshot).
    // REQUIRES: mutex() held.
    Status export_snapshot(Log& log, const std::function<Status(std::string_view)>& sink, Lsn& continue_from) {
        if (Status status = checkpoint(log, continue_from); !status) return status;
        std::unique_ptr<ReadableFile> file;
        if (Status status = fs_.open_readable(files_.snapshot_path(continue_from), file); !status) return status;
        std::string chunk(kStreamChunk, '\0');
        for (std::uint64_t offset = 0;;) {
            std::size_t got = 0;
            if (Status status = file->read(offset, chunk.size(), chunk.data(), got); !status) return status;
            if (got == 0) return Status::ok();
            if (Status status = sink(std::string_view(chunk.data(), got)); !status) return status;
            offset += got;
        }
    }

    // Stores the stream source(std::string& chunk) -> Status gives (an empty
    // chunk ends it), checks it whole, then makes it the newest snapshot and
    // the map's contents (see Store::import_snapshot). REQUIRES: mutex() held.
    Status import_snapshot(Log& log, const std::function<Status(std::string&)>& source) {
        const std::string incoming = files_.import_path();
        Status status = receive(source, incoming);
        if (status) status = check_importable(incoming);
        if (status) status = adopt(log, incoming);
        const Status removed = fs_.remove(incoming);
        return status ? removed : status;
    }

    // For due(); a size that cannot be read counts as none.
    void note_snapshot_size(const std::string& path) {
        std::uint64_t size = 0;
        if (!fs_.file_size(path, size)) size = 0;
        snapshot_bytes_.store(size, std::memory_order_relaxed);
    }

    std::uint64_t checkpoints() const noexcept { return checkpoints_.load(std::memory_order_relaxed); }
    std::uint64_t snapshot_bytes() const noexcept { return snapshot_bytes_.load(std::memory_order_relaxed); }

private:
    static constexpr std::size_t kStreamChunk = std::size_t{1} << 20;

    // The first LSN a new snapshot does not cover: the log starts a new
    // segment there (None hands out the next snapshot number).
    Status begin_snapshot(Log& log, Lsn& replay_from) {
        logged_at_begin_ = log.stats().bytes;
        return log.rotate(replay_from);
    }

    // After the snapshot at `replay_from` is durable: deletes what it replaces.
    Status end_snapshot(Log& log, Lsn replay_from) {
        if (Status removed = log.remove_segments_before(replay_from); !removed) return removed;
        if (Status status = files_.remove_snapshots_before(replay_from); !status) return status;
        note_snapshot_size(files_.snapshot_path(replay_from));
        logged_at_checkpoint_.store(logged_at_begin_, std::memory_order_relaxed);
        checkpoints_.fetch_add(1, std::memory_order_relaxed);
        return Status::ok();
    }

    // Stores a snapshot stream in `path`, synced.
    Status receive(const std::function<Status(std::string&)>& source, const std::string& path) {
        std::unique_ptr<WritableFile> file;
        if (Status status = fs_.open_writable(path, options_.log.file_mode, file); !status) return status;
        std::string chunk;
        for (;;) {
            chunk.clear();
            if (Status status = source(chunk); !status) return status;
            if (chunk.empty()) break;
            if (Status status = file->append(chunk); !status) return status;
        }
        if (Status status = file->sync(); !status) return status;
        return file->close();
    }

    Status check_importable(const std::string& path) {
        Lsn their_lsn = 0;
        std::uint64_t entries = 0;
        Status decoded;
        Status status = snapshot::read(fs_, path, their_lsn, entries, [&](const snapshot::Entry& entry) {
            K key{};
            V value{};
            if (decoded && !(Codec<K>::decode(entry.key, key) && Codec<V>::decode(entry.value, value)))
                decoded = Status::corruption(path, 0, "an imported entry does not decode as the store's types");
        });
        return status ? decoded : status;
    }

    // Makes the checked snapshot in `path` this store's newest, then loads it.
    Status adopt(Log& log, const std::string& path) {
        Lsn replay_from = 0;
        if (Status status = begin_snapshot(log, replay_from); !status) return status;
        snapshot::Writer writer(fs_, files_.path(), replay_from, options_.log.file_mode);
        Status status = writer.open();
        const Expiry now = clock_.now();
        Lsn their_lsn = 0;
        std::uint64_t entries = 0;
        if (status) {
            status = snapshot::read(fs_, path, their_lsn, entries, [&](const snapshot::Entry& entry) {
                if (!status || deadline_passed(entry.expiry, now)) return;
                writer.add(entry);
                status = writer.write_pending();
            });
        }
        if (!status) return status;
        // Once finish() renames it, the new snapshot is what a reopen loads:
        // a failure before the map holds it takes it back (take_back does,
        // once the map is being loaded). Other threads see the old contents
        // or the new, never a mix.
        bool loading = false;
        try {
            status = writer.finish();
            if (status) {
                Recovery<K, V, Map> recovery(fs_, files_.path(), map_, now, expiries_);
                status = map_.with_all_locked([&](auto& into) {
                    loading = true;
                    Status loaded = recovery.load_snapshot_into(path, entries, into);
                    return loaded ? std::move(loaded) : take_back(log, recovery, into, replay_from, std::move(loaded));
                });
            }
        } catch (...) {
            if (!loading) forget_snapshot(replay_from);
            throw;
        }
        if (!status && !loading) forget_snapshot(replay_from);
        return status ? end_snapshot(log, replay_from) : status;
    }

    // Removes snapshot `replay_from`, durably.
    Status remove_snapshot(Lsn replay_from) {
        if (Status status = fs_.remove(files_.snapshot_path(replay_from)); !status) return status;
        return fs_.sync_dir(files_.path());
    }

    // Removes snapshot `replay_from` if it is there; a failure is the
    // caller's failure already being reported.
    void forget_snapshot(Lsn replay_from) {
        std::uint64_t size = 0;
        if (fs_.file_size(files_.snapshot_path(replay_from), size)) (void)remove_snapshot(replay_from);
    }

    // After the snapshot at `replay_from` failed to load (no room: the map
    // is cleared and part filled): removes it and refills the map from the
    // files as they were before it, so that memory and files agree again.
    // Under None, whose changes no file holds, that is the newest snapshot.
    // Returns `cause`, or why the two could not be made to agree.
    template <class Into>
    Status take_back(Log& log, Recovery<K, V, Map>& recovery, Into& into, Lsn replay_from, Status cause) {
        Status status = remove_snapshot(replay_from);
        if (status) status = log.flush();
        std::string previous;
        if (status) status = files_.find_snapshot(previous);
        if (status) status = recovery.reload(into, previous, Log::kKeepsRecords);
        if (status) return cause;
        return Status::failed(Status::io_error(
            cause.message() + ", and refilling the map from its files failed: " + status.message() +
                "; the store's memory no longer matches its files: reopen it",
            files_.path(), status.error_number()));
    }

    FileSystem& fs_;
    const StoreDirectory& files_;
    Map& map_;
    const StoreOptions& options_;
    const ExpiryClock& clock_;
    ExpirySeen& expiries_;
    std::mutex mutex_;
    CopyCursor copy_cursor_;
    std::atomic<std::uint64_t> checkpoints_{0};
    std::atomic<std::uint64_t> snapshot_bytes_{0};
    std::uint64_t logged_at_begin_ = 0;                   // the log's bytes when the running checkpoint began; mutex_
    std::atomic<std::uint64_t> logged_at_checkpoint_{0};  // and when the last finished one began
};

}  // namespace kvstore::detail
