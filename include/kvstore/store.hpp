// kvstore::Store: a ConcurrentMap whose acknowledged writes survive crashes.
//
// A Store owns a directory: a LOCK file (one Store per directory, in this
// process or any other), the log segments of its Durability policy and
// snapshot files. Opening it loads the newest snapshot, replays the log from
// the LSN the snapshot names, and starts a new log segment.
//
// Every change is applied to the map and appended to the log inside the
// same shard critical section, so the log's order is the order in which
// changes were applied; the write call then waits, outside the lock, for
// what the policy promises (docs/durability.md). Readers may see a change
// before it is durable, as in Redis.
//
// checkpoint() writes a snapshot without stopping the store (see
// detail/checkpointer.hpp); opening recovers through detail/store_recovery.hpp.
// docs/architecture.md shows which file holds each step.
//
// A write may carry a time-to-live. Its record and snapshot entry hold the
// absolute expiry, so a key keeps its deadline across restarts. An expired
// key is never returned; it is removed when a call finds it and by a
// background sweeper. Neither logs the removal: the key's own record already
// says when it ends, and replaying it after that time removes the key.
//
// The Store is a facade: reads and writes go through detail/logged_map.hpp,
// which applies and logs them; the Store checks sizes and commits.
#pragma once

#include <kvstore/codec.hpp>
#include <kvstore/concurrent_map.hpp>
#include <kvstore/detail/background_worker.hpp>
#include <kvstore/detail/checkpointer.hpp>
#include <kvstore/detail/encoded.hpp>
#include <kvstore/detail/expiring_value.hpp>
#include <kvstore/detail/logged_map.hpp>
#include <kvstore/detail/no_room.hpp>
#include <kvstore/detail/store_directory.hpp>
#include <kvstore/detail/store_recovery.hpp>
#include <kvstore/durability.hpp>
#include <kvstore/store_options.hpp>
#include <kvstore/write_batch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace kvstore {

/// A thread-safe map from K to V kept in a directory, whose acknowledged writes survive crashes; Durability
/// (None, SyncWAL or GroupCommitWAL) decides when a write is acknowledged. Opened with Store::open.
template <class K, class V, class Durability = GroupCommitWAL, class Hasher = Hash<K>, class KeyEqual = std::equal_to<>>
class Store {
    static_assert(is_durability_v<Durability>,
                  "Store's Durability must meet the policy contract in kvstore/durability.hpp");
    using Values = detail::ExpiringValue<V>;
    using Stored = typename Values::Stored;
    using Map = ConcurrentMap<K, Stored, Hasher, KeyEqual>;
    using Expiry = detail::Expiry;
    static constexpr Expiry kNoExpiry = detail::kNoExpiry;
    using Checkpointer = detail::Checkpointer<K, V, Map, Durability>;
    using Entries = detail::LoggedMap<K, V, Map, Durability, typename Checkpointer::CopyCursor>;

public:
    using TimePoint = std::chrono::system_clock::time_point;  ///< an absolute expiry time, on the wall clock

    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    ~Store() { (void)close(); }

    /// Opens (creating if needed) the store in `dir`. Fails with kBusy if
    /// another Store has it open, and with the file, offset and reason if
    /// its snapshot or log is damaged beyond what the recovery mode allows.
    static Status open(const std::string& dir, const StoreOptions& options, std::unique_ptr<Store>& store,
                       StoreRecovery* recovery = nullptr) {
        // Whatever is thrown here (memory, a map limit, a thread that cannot
        // start, shards that are not a power of two) ends as a Status: the
        // files are as they were, and the caller decides.
        try {
            return detail::no_room_as_status([&] { return "opening the store in " + dir; }, "its files are as they were",
                                             [&] { return open_or_throw(dir, options, store, recovery); });
        } catch (const std::invalid_argument& error) {
            return Status::invalid_argument("opening the store in " + dir + ": " + error.what());
        } catch (const std::system_error& error) {
            return Status::io_error(std::string("opening the store (") + error.what() + ")", dir,
                                    error.code().value());
        }
    }

    /// Sets `key` to `value`, without an expiry (removing one it had);
    /// returns once the policy's promise holds.
    template <class Q, class M>
    Status put(const Q& key, const M& value) {
        return put_expiring(key, value, kNoExpiry);
    }

    /// Sets `key` to `value` until `ttl` (> 0) from now.
    template <class Q, class M>
    Status put(const Q& key, const M& value, std::chrono::milliseconds ttl) {
        return with_expiry(ttl, [&](Expiry expiry) { return put_expiring(key, value, expiry); });
    }

    /// Removes `key`; `erased` (if given) says whether it was there. Erasing
    /// an absent key writes nothing.
    template <class Q>
    Status erase(const Q& key, bool* erased = nullptr) {
        if (Status status = entries_.check_sizes(key, static_cast<const V*>(nullptr)); !status) return status;
        return write_logged([&] { return entries_.erase(key, erased); });
    }

    /// Sets `key` to `value` only if it is absent (or expired); `inserted`
    /// says whether it was. Nothing is logged when the key is present.
    template <class Q, class M>
    Status put_if_absent(const Q& key, const M& value, bool& inserted) {
        return put_if_absent_expiring(key, value, kNoExpiry, inserted);
    }

    /// As put_if_absent, with the value expiring `ttl` (> 0) from now.
    template <class Q, class M>
    Status put_if_absent(const Q& key, const M& value, bool& inserted, std::chrono::milliseconds ttl) {
        inserted = false;
        return with_expiry(ttl, [&](Expiry expiry) { return put_if_absent_expiring(key, value, expiry, inserted); });
    }

    /// Sets `key` to `value` only if it is present (and not expired),
    /// removing any expiry it had; `replaced` says whether it was. Nothing
    /// is logged when the key is absent.
    template <class Q, class M>
    Status put_if_present(const Q& key, const M& value, bool& replaced) {
        return put_if_present_expiring(key, value, kNoExpiry, replaced);
    }

    /// As put_if_present, with the value expiring `ttl` (> 0) from now.
    template <class Q, class M>
    Status put_if_present(const Q& key, const M& value, bool& replaced, std::chrono::milliseconds ttl) {
        replaced = false;
        return with_expiry(ttl, [&](Expiry expiry) { return put_if_present_expiring(key, value, expiry, replaced); });
    }

    /// Sets `key` to `desired` if its value equals `expected`; `swapped`
    /// says whether it did. The key keeps its expiry.
    template <class Q, class E, class M>
    Status compare_and_set(const Q& key, const E& expected, const M& desired, bool& swapped) {
        swapped = false;
        if (Status status = entries_.check_sizes(key, &desired); !status) return status;
        return change_live(key, [&](const auto& value, Expiry expiry, auto&& store_value) {
            if (!(value == expected)) return;
            if (store_value(desired, expiry)) swapped = true;
        });
    }

    /// Calls f(V&) on a copy of the key's value under the shard's exclusive
    /// lock and stores the result, keeping the key's expiry; the log holds
    /// the resulting value, never f. `found` says whether the key was there.
    /// f may return bool: false declines, and nothing changes. If f throws,
    /// nothing changes and the exception propagates.
    template <class Q, class F>
    Status update(const Q& key, F&& f, bool& found) {
        found = false;
        Status checked;
        Status status = change_live(key, [&](const auto& value, Expiry expiry, auto&& store_value) {
            found = true;
            V changed(value);
            if constexpr (std::is_same_v<decltype(f(changed)), bool>) {
                if (!f(changed)) return;
            } else {
                f(changed);
            }
            checked = entries_.check_sizes(key, &changed);
            if (checked) store_value(changed, expiry);
        });
        return checked ? status : checked;
    }

    /// Makes `key` expire `ttl` (> 0) from now; `found` says whether it was
    /// there. Logged as a put of its value with the new expiry.
    template <class Q>
    Status expire(const Q& key, std::chrono::milliseconds ttl, bool& found) {
        found = false;
        return with_expiry(ttl, [&](Expiry expiry) {
            return change_live(key, [&](const auto& value, Expiry, auto&& store_value) {
                found = true;
                store_value(value, expiry);
            });
        });
    }

    /// Removes the key's expiry; `had_expiry` says whether it had one.
    template <class Q>
    Status persist(const Q& key, bool& had_expiry) {
        had_expiry = false;
        return change_live(key, [&](const auto& value, Expiry expiry, auto&& store_value) {
            if (expiry == kNoExpiry) return;
            had_expiry = true;
            store_value(value, kNoExpiry);
        });
    }

    /// Applies every put and erase of `batch` as one: one log record, and
    /// the shards of all its keys locked together while it is applied.
    Status write(const WriteBatch<K, V>& batch) {
        return refused_for_room([&] {
            std::vector<Expiry> expiries(batch.size(), kNoExpiry);
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (const auto& ttl = batch.ttls()[i]) {
                    if (Status status = clock_.expiry_after(*ttl, expiries[i]); !status) return status;
                }
            }
            return write_entries(batch.keys(), batch.values(), expiries);
        });
    }

    // What transact's callback reads and writes through (kvstore/store_transaction.hpp).
    class Transaction;

    /// Reads and writes the keys in `keys` as one. Their shards are locked
    /// exclusively while f(Transaction&) runs; f reads those keys through
    /// it, seeing its own writes, and stages puts and erases. If f returns
    /// true the staged writes are logged as one record and applied, so other
    /// threads, and recovery after a crash, see all of them or none; if it
    /// returns false nothing changes. f runs once, may name only keys in
    /// `keys` (std::logic_error otherwise) and must not call the store.
    template <class F>
    Status transact(const std::vector<K>& keys, F&& f) {
        return write_logged([&] {
            Transaction transaction(*this);
            auto stage = [&](typename Map::LockedKeys& locked) {
                transaction.locked_ = &locked;
                return f(transaction);
            };
            return entries_.write_locked(keys, stage, transaction.keys_, transaction.values_, transaction.expiries_);
        });
    }

    // A scope whose writes return before they are committed (kvstore/deferred_commits.hpp).
    class DeferredCommits;

    /// Returns once record `lsn` and every record before it hold what the
    /// policy promises (durable under SyncWAL and GroupCommitWAL, at once in
    /// the relaxed mode and under None), or with the log's error.
    Status commit(Lsn lsn) { return lsn == 0 ? Status::ok() : log_->commit(lsn); }

    /// Removes every entry, logged as one record; other threads see the
    /// store as it was or empty.
    Status clear() {
        return write_logged([&] { return entries_.clear(); });
    }

    /// A copy of the key's value, or std::nullopt if it is absent or expired.
    template <class Q>
    std::optional<V> get(const Q& key) const {
        std::optional<V> result;
        entries_.read_live(key, [&](const auto& value, Expiry) { result.emplace(value); });
        return result;
    }
    /// Copies the key's value into `out`; false (out untouched) if it is
    /// absent or expired.
    template <class Q>
    bool find(const Q& key, V& out) const {
        return entries_.read_live(key, [&](const auto& value, Expiry) {
            if constexpr (std::is_same_v<V, std::string>) {
                out.assign(value.data(), value.size());
            } else {
                out = value;
            }
        });
    }
    /// True iff the key is present and not expired.
    template <class Q>
    bool contains(const Q& key) const {
        return entries_.read_live(key, [](const auto&, Expiry) {});
    }
    /// Whether the key is there, and when it expires (nothing if never).
    template <class Q>
    bool expires_at(const Q& key, std::optional<TimePoint>& when) const {
        return entries_.read_live(key, [&](const auto&, Expiry expiry) { when = detail::time_point_of(expiry); });
    }
    /// Calls f(key, value) on every live entry, one shard at a time (see
    /// ConcurrentMap::for_each).
    template <class F>
    void for_each(F&& f) const {
        for (std::size_t shard = 0; shard < shard_count(); ++shard) for_each_in_shard(shard, f);
    }
    /// Calls f(key, value) on every live entry of shard `shard` (below
    /// shard_count()) under that shard's shared lock alone: a scan done in
    /// steps, shard by shard, holds no lock between them (SCAN's cursor).
    template <class F>
    void for_each_in_shard(std::size_t shard, F&& f) const {
        entries_.for_each_in_shard(shard, f);
    }
    /// The map's number of shards, fixed when the store is opened.
    std::size_t shard_count() const noexcept { return map_.shard_count(); }
    /// Entries held, read without locking; expired keys count until they
    /// are removed.
    std::size_t size() const noexcept { return map_.size(); }

    /// Stops (true) or restarts the background sweeper: expired keys then
    /// stay held, never returned, until a call finds them. For tests of
    /// lazy expiry, and to keep the sweeper's locking out of a measurement.
    void pause_sweeps(bool paused) noexcept { sweeps_paused_.store(paused, std::memory_order_relaxed); }

    /// Removes every expired key now, one shard at a time: a shard is held
    /// under its shared lock while it is scanned, and each removal takes
    /// its exclusive lock for that key alone. Returns how many it removed.
    /// The background sweeper calls this every sweep_interval.
    std::size_t remove_expired() { return entries_.remove_expired(); }

    /// Writes a snapshot of the current state and deletes the log segments
    /// it replaces; readers and writers go on meanwhile.
    Status checkpoint() {
        std::lock_guard<std::mutex> one_at_a_time(checkpointer_.mutex());
        Lsn replay_from = 0;
        return detail::no_room_as_status([&] { return "checkpoint of " + files_.path(); },
                                         "no snapshot was written", [&] { return checkpointer_.checkpoint(*log_, replay_from); });
    }

    // ---- Replication (defined in kvstore/replication.hpp) ----

    /// Calls f(const LogRecord&) -> Status for every durable record with an
    /// LSN at or above `from`, in LSN order, read from the log segments on
    /// disk; a non-ok Status from f stops the reading and is returned. Fails
    /// with kCompacted if a checkpoint already deleted the records from
    /// `from` on (a follower then starts over from export_snapshot), and
    /// with kInvalidArgument under None, which keeps no log. Checkpoints
    /// wait while it reads.
    template <class F>
    Status read_log(Lsn from, F&& f);

    /// Checkpoints, then calls sink(std::string_view) -> Status with the
    /// snapshot file's bytes, in order; a non-ok Status from sink stops it.
    /// `continue_from` gets the LSN of the first record the snapshot does
    /// not hold: a follower that imports it goes on with read_log from there.
    Status export_snapshot(const std::function<Status(std::string_view)>& sink, Lsn& continue_from);

    /// Replaces the whole state with a snapshot that export_snapshot
    /// streamed: source(std::string& chunk) -> Status fills `chunk` with the
    /// next bytes, and leaves it empty at the end. The stream is stored and
    /// checked whole (every checksum, every entry decoding as K and V)
    /// before anything changes, so a damaged one changes nothing; it then
    /// becomes this store's newest snapshot, made durable before the log
    /// behind it is deleted, so a crash leaves the old state or the new one.
    /// Entries already expired are left out. Meant for a follower that
    /// starts over: other threads must not write meanwhile, and readers see
    /// the store emptied and refilled.
    Status import_snapshot(const std::function<Status(std::string&)>& source);

    /// Applies a record that another store's read_log produced, as one
    /// batch, keeping the absolute expiries it carries. The record is logged
    /// under this store's own LSNs.
    Status apply_replicated(const LogRecord& record);

    /// Makes everything durable and releases the directory. Later writes fail.
    Status close() {
        if (!lock_) return Status::ok();
        background_.stop();
        Status status = log_ ? log_->close() : Status::ok();
        lock_.reset();
        return status;
    }

    /// The log's figures (all zero under None).
    LogStats log_stats() const { return log_->stats(); }

    /// The store's figures, gathered now (see StoreStats).
    StoreStats stats() const {
        const ShardStats map = map_.stats();
        StoreStats stats;
        stats.items = map.size;
        stats.shards = map_.shard_count();
        stats.load_factor = map.load_factor;
        stats.memory_bytes = map.memory_bytes;
        stats.log = log_stats();
        stats.checkpoints = checkpointer_.checkpoints();
        stats.snapshot_bytes = checkpointer_.snapshot_bytes();
        stats.expired_keys = entries_.expired_count();
        stats.recovery = recovery_;
        stats.checkpoint_error = background_.first_error();
        return stats;
    }

private:
    // open(), but what it meets is thrown.
    static Status open_or_throw(const std::string& dir, const StoreOptions& options, std::unique_ptr<Store>& store,
                                StoreRecovery* recovery) {
        FileSystem& fs = file_system_or_default(options.log.file_system);
        std::unique_ptr<Store> opened(new Store(fs, dir, options));
        if (Status status = opened->recover(opened->recovery_); !status) return status;
        if (recovery != nullptr) *recovery = opened->recovery_;
        opened->start_background();
        store = std::move(opened);
        return Status::ok();
    }

    Store(FileSystem& fs, std::string dir, const StoreOptions& options)
        : fs_(fs),
          files_(fs, std::move(dir)),
          options_(options),
          clock_(options.clock),
          map_(options.map),
          checkpointer_(fs, files_, map_, options_, clock_, expiries_seen_),
          entries_(map_, log_, checkpointer_.copy_cursor(), clock_, expiries_seen_, options_) {}

    // ---- Time to live ----

    // Calls write(expiry) with the expiry `ttl` from now, or returns why there is none.
    template <class Write>
    Status with_expiry(std::chrono::milliseconds ttl, Write&& write) const {
        Expiry expiry = kNoExpiry;
        if (Status status = clock_.expiry_after(ttl, expiry); !status) return status;
        return write(expiry);
    }

    // ---- Writes: LoggedMap applies and logs them, the Store commits ----

    template <class Q, class Change>
    Status change_live(const Q& key, Change&& change) {
        return write_logged([&] { return entries_.change_live(key, std::forward<Change>(change)); });
    }

    Status write_entries(const std::vector<K>& keys, const std::vector<std::optional<V>>& values,
                         const std::vector<Expiry>& expiries) {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (Status status = entries_.check_sizes(keys[i], values[i] ? &*values[i] : nullptr); !status)
                return status;
        }
        return write_logged([&] { return entries_.write_entries(keys, values, expiries); });
    }

    template <class Q, class M>
    Status put_expiring(const Q& key, const M& value, Expiry expiry) {
        if (Status status = entries_.check_sizes(key, &value); !status) return status;
        return write_logged([&] { return entries_.put(key, value, expiry); });
    }

    template <class Q, class M>
    Status put_if_absent_expiring(const Q& key, const M& value, Expiry expiry, bool& inserted) {
        inserted = false;
        if (Status status = entries_.check_sizes(key, &value); !status) return status;
        return write_logged([&] { return entries_.put_if_absent(key, value, expiry, inserted); });
    }

    template <class Q, class M>
    Status put_if_present_expiring(const Q& key, const M& value, Expiry expiry, bool& replaced) {
        replaced = false;
        if (Status status = entries_.check_sizes(key, &value); !status) return status;
        return change_live(key, [&](const auto&, Expiry, auto&& store_value) {
            if (store_value(value, expiry)) replaced = true;
        });
    }

    // Runs write() -> Logged, then commits its record. A write the map
    // cannot hold throws before its record is appended (detail/built_entry.hpp):
    // then nothing was logged or changed, and the caller gets a Status.
    template <class Write>
    Status write_logged(Write&& write) {
        detail::Logged logged;
        Status built = refused_for_room([&] {
            logged = write();
            return Status::ok();
        });
        if (!built) return built;
        return commit_logged(std::move(logged));
    }

    // Returns write() -> Status, or the kNoRoom Status of a write that ran
    // out of room before its record was appended.
    template <class Write>
    Status refused_for_room(Write&& write) {
        return detail::no_room_as_status([&] { return "a write to " + files_.path(); },
                                         "nothing was logged or changed", std::forward<Write>(write));
    }

    // Waits for what the policy promises about record `lsn`, unless the
    // append failed or nothing was logged (lsn 0).
    Status commit_logged(detail::Logged&& logged) {
        if (!logged.status || logged.lsn == 0) return std::move(logged.status);
        if (deferred_ != nullptr && deferred_->store_ == this) {
            deferred_->lsn_ = std::max(deferred_->lsn_, logged.lsn);
            return Status::ok();
        }
        return commit(logged.lsn);
    }

    // ---- Background work: automatic checkpoints and the sweeper ----

    // Checkpoints whenever the log has grown enough since the last
    // checkpoint, and sweeps every sweep_interval once a key has had an
    // expiry; one thread polls for both.
    void start_background() {
        using Clock = std::chrono::steady_clock;
        const bool checkpoints = checkpointer_.checks_size() && options_.checkpoint_poll.count() > 0;
        const bool sweeps = options_.sweep_interval.count() > 0;
        if (!checkpoints && !sweeps) return;
        const std::chrono::milliseconds period =
            !sweeps        ? options_.checkpoint_poll
            : !checkpoints ? options_.sweep_interval
                           : std::min(options_.checkpoint_poll, options_.sweep_interval);
        background_.start(period, [this, sweeps, next_sweep = Clock::now() + options_.sweep_interval]() mutable {
            Status checkpointed;
            if (checkpointer_.due(*log_)) checkpointed = checkpoint();
            if (sweeps && Clock::now() >= next_sweep) {
                if (expiries_seen_.any() && !sweeps_paused_.load(std::memory_order_relaxed)) remove_expired();
                next_sweep = Clock::now() + options_.sweep_interval;
            }
            return checkpointed;
        });
    }

    Status recover(StoreRecovery& found) {
        if (Status status = files_.create_and_lock(options_.log.dir_mode, lock_); !status) return status;
        detail::Recovery<K, V, Map> recovery(fs_, files_.path(), map_, clock_.now(), expiries_seen_);
        if (Status status = files_.remove_unfinished_and_find_snapshot(found.snapshot); !status) return status;
        Lsn replay_from = 1;
        if (!found.snapshot.empty()) {
            checkpointer_.note_snapshot_size(found.snapshot);
            if (Status status = recovery.load_snapshot(found.snapshot, replay_from, found.snapshot_entries); !status)
                return status;
        }
        // Nobody else sees the map until open returns: replaying the log
        // without locks spares a lock and an unlock per record.
        return map_.without_locks([&](auto& into) {
            return recovery.replay_log(into, options_.log, [&](const LogOptions& log_options, auto& replay) {
                return Durability::open(files_.path(), log_options, replay_from, replay, found.log, log_);
            });
        });
    }

    FileSystem& fs_;
    const detail::StoreDirectory files_;
    const StoreOptions options_;
    const detail::ExpiryClock clock_;
    detail::ExpirySeen expiries_seen_;
    Map map_;
    std::unique_ptr<FileLock> lock_;
    std::unique_ptr<Durability> log_;
    StoreRecovery recovery_;
    Checkpointer checkpointer_;
    // Reads and writes of map_ through log_; a read that finds an expired key removes it.
    Entries entries_;
    std::atomic<bool> sweeps_paused_{false};
    // The calling thread's innermost DeferredCommits scope, for any store.
    static inline thread_local DeferredCommits* deferred_ = nullptr;
    // Last, so that it stops before anything its task uses is destroyed.
    detail::BackgroundWorker background_;
};

}  // namespace kvstore

#include <kvstore/deferred_commits.hpp>
#include <kvstore/replication.hpp>
#include <kvstore/store_transaction.hpp>
