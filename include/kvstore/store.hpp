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
// checkpoint() writes a snapshot without stopping the store: it starts a new
// log segment at LSN L, copies one shard at a time under that shard's shared
// lock, makes the log durable up to the end of the copy and then the
// snapshot, then deletes the segments before L. Changes made during the copy
// may or may not be in the snapshot; replaying their records from L on gives
// the same state either way, because records hold resulting values. Under
// None, with no records to complete it, a batch or clear that the copy is
// between waits until the copy has passed its shards.
//
// A write may carry a time-to-live. Its record and snapshot entry hold the
// absolute expiry, so a key keeps its deadline across restarts. An expired
// key is never returned; it is removed when a call finds it and by a
// background sweeper. Neither logs the removal: the key's own record already
// says when it ends, and replaying it after that time removes the key.
#pragma once

#include <kvstore/codec.hpp>
#include <kvstore/concurrent_map.hpp>
#include <kvstore/detail/apply_pipeline.hpp>
#include <kvstore/detail/expiring_value.hpp>
#include <kvstore/detail/shard_copy_cursor.hpp>
#include <kvstore/detail/snapshot_file.hpp>
#include <kvstore/detail/store_directory.hpp>
#include <kvstore/durability.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

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

/// Puts and erases that a Store applies together: after a crash all of them
/// or none, and other threads see all of them or none.
template <class K, class V>
class WriteBatch {
public:
    /// Adds a put of `key` without an expiry; writing it removes any expiry the key had.
    void put(K key, V value) {
        keys_.push_back(std::move(key));
        values_.emplace_back(std::move(value));
        ttls_.emplace_back();
    }
    /// A put that expires `ttl` after the batch is written (ttl > 0).
    void put(K key, V value, std::chrono::milliseconds ttl) {
        put(std::move(key), std::move(value));
        ttls_.back() = ttl;
    }
    /// Adds a removal of `key`.
    void erase(K key) {
        keys_.push_back(std::move(key));
        values_.emplace_back();
        ttls_.emplace_back();
    }
    /// Puts and erases added, a key's repeats included.
    std::size_t size() const noexcept { return keys_.size(); }
    /// True when nothing has been added.
    bool empty() const noexcept { return keys_.empty(); }
    /// Removes everything added, so that the batch can be reused.
    void clear() noexcept {
        keys_.clear();
        values_.clear();
        ttls_.clear();
    }

    /// The keys, in the order given; a key's later entries win.
    const std::vector<K>& keys() const noexcept { return keys_; }
    /// The value put for keys()[i], or nothing for an erase.
    const std::vector<std::optional<V>>& values() const noexcept { return values_; }
    /// The time-to-live of the put of keys()[i], if it has one.
    const std::vector<std::optional<std::chrono::milliseconds>>& ttls() const noexcept { return ttls_; }

private:
    std::vector<K> keys_;
    std::vector<std::optional<V>> values_;
    std::vector<std::optional<std::chrono::milliseconds>> ttls_;
};

/// A thread-safe map from K to V kept in a directory, whose acknowledged writes survive crashes; Durability
/// (None, SyncWAL or GroupCommitWAL) decides when a write is acknowledged. Opened with Store::open.
template <class K, class V, class Durability = GroupCommitWAL, class Hasher = Hash<K>, class KeyEqual = std::equal_to<>>
class Store {
    static constexpr bool kLogs = !std::is_same_v<Durability, None>;
    // The map keeps string keys and values packed in one block (PackedRecord).
    static constexpr bool kPackedStrings = std::is_same_v<K, std::string> && std::is_same_v<V, std::string>;
    using Values = detail::ExpiringValue<V>;
    using Stored = typename Values::Stored;
    using Map = ConcurrentMap<K, Stored, Hasher, KeyEqual>;
    using Expiry = detail::Expiry;
    static constexpr Expiry kNoExpiry = detail::kNoExpiry;

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
        FileSystem& fs = file_system_or_default(options.log.file_system);
        std::unique_ptr<Store> opened(new Store(fs, dir, options));
        if (Status status = opened->recover(opened->recovery_); !status) return status;
        if (recovery != nullptr) *recovery = opened->recovery_;
        if (opened->background_period().count() > 0)
            opened->background_ = std::thread([raw = opened.get()] { raw->run_background(); });
        store = std::move(opened);
        return Status::ok();
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
        if (Status status = check_sizes<Q, V>(key, nullptr); !status) return status;
        Lsn lsn = 0;
        Status logged;
        bool live = false;
        const Expiry now = now_us();
        const bool removed = map_.erase_if(key, [&](const auto& stored) {
            if (expired_at(stored, now)) return true;
            logged = log_erase(key, lsn);
            live = logged.is_ok();
            return live;
        });
        if (removed && !live) expired_.fetch_add(1, std::memory_order_relaxed);
        if (erased != nullptr) *erased = live;
        return commit_logged(std::move(logged), lsn);
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
        if (Status status = check_sizes(key, &desired); !status) return status;
        return change_live(key, [&](const auto& value, Expiry expiry, auto&& store_value) {
            if (!(value == expected)) return;
            if (store_value(desired, expiry)) swapped = true;
        });
    }

    /// Calls f(V&) on a copy of the key's value under the shard's exclusive
    /// lock and stores the result, keeping the key's expiry; the log holds
    /// the resulting value, never f. `found` says whether the key was there.
    /// If f throws, nothing changes and the exception propagates.
    template <class Q, class F>
    Status update(const Q& key, F&& f, bool& found) {
        found = false;
        Status checked;
        Status status = change_live(key, [&](const auto& value, Expiry expiry, auto&& store_value) {
            found = true;
            V changed(value);
            f(changed);
            checked = check_sizes(key, &changed);
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
        std::vector<Expiry> expiries(batch.size(), kNoExpiry);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (const auto& ttl = batch.ttls()[i]) {
                if (Status status = expiry_after(*ttl, expiries[i]); !status) return status;
            }
        }
        return write_entries(batch.keys(), batch.values(), expiries);
    }

    /// What Store::transact's callback reads and writes through: the live
    /// values of the keys the transaction locked, with the writes it has
    /// staged already applied, and the writes it stages.
    class Transaction {
    public:
        /// Copies the key's value into `out` (and its expiry into `expiry`,
        /// if given: nothing if it never expires); false if it is absent or
        /// expired.
        template <class Q>
        bool find(const Q& key, V& out, std::optional<TimePoint>* expiry = nullptr) {
            if (const std::size_t i = staged_index(key); i != kNotStaged) {
                if (!values_[i] || deadline_passed(expiries_[i], now_)) return false;
                out = *values_[i];
                if (expiry != nullptr) *expiry = time_point_of(expiries_[i]);
                return true;
            }
            bool live = false;
            locked_->visit(key, [&](const auto& stored) {
                if (expired_at(stored, now_)) return;
                live = true;
                const auto& value = Values::value(stored);
                if constexpr (std::is_same_v<V, std::string>) {
                    out.assign(value.data(), value.size());
                } else {
                    out = value;
                }
                if (expiry != nullptr) *expiry = time_point_of(Values::expiry(stored));
            });
            return live;
        }

        /// True iff the key is present and not expired.
        template <class Q>
        bool contains(const Q& key) {
            V ignored{};
            return find(key, ignored);
        }

        /// Stages a put of `key`, expiring at `expiry` (never if nothing);
        /// an expiry already past makes it a removal. Fails, staging
        /// nothing, if the key or value is over the store's size limits.
        template <class Q, class M>
        Status put(const Q& key, const M& value, std::optional<TimePoint> expiry = std::nullopt) {
            if (Status status = store_.check_sizes(key, &value); !status) return status;
            const Expiry at = expiry ? expiry_of(*expiry) : kNoExpiry;
            if (deadline_passed(at, now_)) {
                erase(key);
                return Status::ok();
            }
            stage(key, V(value), at);
            return Status::ok();
        }

        /// Stages a removal of `key`; returns whether it was live.
        template <class Q>
        bool erase(const Q& key) {
            const bool live = contains(key);
            if (live) stage(key, std::nullopt, kNoExpiry);
            return live;
        }

        /// The time the transaction reads expiries against, fixed when it began.
        TimePoint now() const { return *time_point_of(now_); }

    private:
        friend class Store;
        static constexpr std::size_t kNotStaged = std::numeric_limits<std::size_t>::max();
        explicit Transaction(const Store& store) : store_(store), now_(store.now_us()) {}

        template <class Q>
        std::size_t staged_index(const Q& key) const {
            for (std::size_t i = keys_.size(); i-- > 0;) {
                if (KeyEqual{}(keys_[i], key)) return i;
            }
            return kNotStaged;
        }

        template <class Q>
        void stage(const Q& key, std::optional<V> value, Expiry expiry) {
            if (const std::size_t i = staged_index(key); i != kNotStaged) {
                values_[i] = std::move(value);
                expiries_[i] = expiry;
                return;
            }
            keys_.emplace_back(as_stored<K>(key));
            values_.push_back(std::move(value));
            expiries_.push_back(expiry);
        }

        // Before the epoch counts as already past: the earliest expiry there is.
        static Expiry expiry_of(TimePoint when) {
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
            return us > 0 ? static_cast<Expiry>(us) : 1;
        }

        const Store& store_;
        Expiry now_;
        typename Map::LockedKeys* locked_ = nullptr;
        std::vector<K> keys_;
        std::vector<std::optional<V>> values_;
        std::vector<Expiry> expiries_;
    };

    /// Reads and writes the keys in `keys` as one. Their shards are locked
    /// exclusively while f(Transaction&) runs; f reads those keys through
    /// it, seeing its own writes, and stages puts and erases. If f returns
    /// true the staged writes are logged as one record and applied, so other
    /// threads, and recovery after a crash, see all of them or none; if it
    /// returns false nothing changes. f runs once, may name only keys in
    /// `keys` (std::logic_error otherwise) and must not call the store.
    template <class F>
    Status transact(const std::vector<K>& keys, F&& f) {
        Transaction transaction(*this);
        return write_locked(
            keys,
            [&](typename Map::LockedKeys& locked) {
                transaction.locked_ = &locked;
                return f(transaction);
            },
            transaction.keys_, transaction.values_, transaction.expiries_);
    }

    /// While one of these lives, the writes its thread makes to one store
    /// return once they are applied and logged, without waiting for what the
    /// policy promises; lsn() is the newest record they logged. Whoever
    /// acknowledges those writes calls Store::commit(lsn()) first. A server
    /// that answers many clients from a few threads defers this way so that
    /// one sync covers the writes of every client instead of each thread
    /// waiting for its own. Scopes nest; the inner one collects the LSNs
    /// until it ends.
    class DeferredCommits {
    public:
        /// Starts deferring the calling thread's commits of writes to `store`.
        explicit DeferredCommits(const Store& store) noexcept : store_(&store), outer_(deferred_) { deferred_ = this; }
        /// Stops deferring; the writes made meanwhile still wait for commit(lsn()).
        ~DeferredCommits() { deferred_ = outer_; }
        DeferredCommits(const DeferredCommits&) = delete;
        DeferredCommits& operator=(const DeferredCommits&) = delete;

        /// The newest record logged by this thread's writes since the scope
        /// began (0 if none was logged).
        Lsn lsn() const noexcept { return lsn_; }

    private:
        friend class Store;
        const Store* store_;
        DeferredCommits* outer_;
        Lsn lsn_ = 0;
    };

    /// Returns once record `lsn` and every record before it hold what the
    /// policy promises (durable under SyncWAL and GroupCommitWAL, at once in
    /// the relaxed mode and under None), or with the log's error.
    Status commit(Lsn lsn) {
        if constexpr (kLogs) {
            if (lsn != 0) return log_->commit(lsn);
        }
        return Status::ok();
    }

    /// Removes every entry, logged as one record; other threads see the
    /// store as it was or empty.
    Status clear() {
        Lsn lsn = 0;
        Status logged;
        copy_cursor_.apply_whole([&](auto copy_between) {
            map_.clear_if([&] {
                if constexpr (kLogs) {
                    logged = log_->append({LogRecordType::kClear, {}, {}, 0}, lsn);
                    return logged.is_ok();
                } else {
                    return !copy_between(0, map_.shard_count() - 1);
                }
            });
        });
        return commit_logged(std::move(logged), lsn);
    }

    /// A copy of the key's value, or std::nullopt if it is absent or expired.
    template <class Q>
    std::optional<V> get(const Q& key) const {
        std::optional<V> result;
        read_live(key, [&](const auto& value, Expiry) { result.emplace(value); });
        return result;
    }
    /// Copies the key's value into `out`; false (out untouched) if it is
    /// absent or expired.
    template <class Q>
    bool find(const Q& key, V& out) const {
        return read_live(key, [&](const auto& value, Expiry) {
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
        return read_live(key, [](const auto&, Expiry) {});
    }
    /// Whether the key is there, and when it expires (nothing if never).
    template <class Q>
    bool expires_at(const Q& key, std::optional<TimePoint>& when) const {
        return read_live(key, [&](const auto&, Expiry expiry) { when = time_point_of(expiry); });
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
        const Expiry now = now_us();
        map_.for_each_in_shard(shard, [&](const auto& key, const auto& stored) {
            if (!expired_at(stored, now)) f(key, Values::value(stored));
        });
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
    std::size_t remove_expired() {
        std::size_t removed = 0;
        std::vector<K> expired;
        for (std::size_t shard = 0; shard < map_.shard_count(); ++shard) {
            const Expiry now = now_us();
            expired.clear();
            map_.for_each_in_shard(shard, [&](const auto& key, const auto& stored) {
                if (expired_at(stored, now)) expired.emplace_back(key);
            });
            for (const K& key : expired)
                if (erase_if_expired(key, now)) ++removed;
        }
        return removed;
    }

    /// Writes a snapshot of the current state and deletes the log segments
    /// it replaces; readers and writers go on meanwhile.
    Status checkpoint() {
        std::lock_guard<std::mutex> one_at_a_time(checkpoint_mutex_);
        Lsn replay_from = 0;
        return checkpoint_locked(replay_from);
    }

    // ---- Replication ----

    /// Calls f(const LogRecord&) -> Status for every durable record with an
    /// LSN at or above `from`, in LSN order, read from the log segments on
    /// disk; a non-ok Status from f stops the reading and is returned. Fails
    /// with kCompacted if a checkpoint already deleted the records from
    /// `from` on (a follower then starts over from export_snapshot), and
    /// with kInvalidArgument under None, which keeps no log. Checkpoints
    /// wait while it reads.
    template <class F>
    Status read_log(Lsn from, F&& f) {
        if constexpr (!kLogs) {
            (void)from;
            (void)f;
            return Status::invalid_argument("read_log: the store at " + files_.path() +
                                            " keeps no log (durability None)");
        } else {
            std::lock_guard<std::mutex> no_compaction(checkpoint_mutex_);
            const Lsn durable = log_->stats().durable_lsn;
            std::vector<detail::log::Segment> segments;
            if (Status status = detail::log::list_segments(fs_, files_.path(), segments); !status) return status;
            const Lsn oldest = segments.empty() ? durable + 1 : segments.front().first_lsn;
            if (from < oldest)
                return Status::compacted("read_log: records from LSN " + std::to_string(from) + " on in " +
                                         files_.path() +
                                         " were replaced by a snapshot; the oldest still on disk is LSN " +
                                         std::to_string(oldest) + " (start from export_snapshot instead)");
            if (from > durable) return Status::ok();
            // Records past the durable LSN may be half written: the reading
            // stops at the first of them, through a Status that only says so.
            bool reached_end = false;
            RecoveryReport report;
            Status status = detail::log::replay_log(
                fs_, files_.path(), from, RecoveryMode::kTolerateTornTail, false,
                [&](const LogRecord& record) -> Status {
                    if (record.lsn <= durable) return f(record);
                    reached_end = true;
                    return Status::invalid_argument("end of the durable records");
                },
                report);
            return reached_end ? Status::ok() : status;
        }
    }

    /// Checkpoints, then calls sink(std::string_view) -> Status with the
    /// snapshot file's bytes, in order; a non-ok Status from sink stops it.
    /// `continue_from` gets the LSN of the first record the snapshot does
    /// not hold: a follower that imports it goes on with read_log from there.
    Status export_snapshot(const std::function<Status(std::string_view)>& sink, Lsn& continue_from) {
        std::lock_guard<std::mutex> one_at_a_time(checkpoint_mutex_);
        if (Status status = checkpoint_locked(continue_from); !status) return status;
        const std::string path = files_.snapshot_path(continue_from);
        std::unique_ptr<ReadableFile> file;
        if (Status status = fs_.open_readable(path, file); !status) return status;
        std::string chunk(kStreamChunk, '\0');
        for (std::uint64_t offset = 0;;) {
            std::size_t got = 0;
            if (Status status = file->read(offset, chunk.size(), chunk.data(), got); !status) return status;
            if (got == 0) return Status::ok();
            if (Status status = sink(std::string_view(chunk.data(), got)); !status) return status;
            offset += got;
        }
    }

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
    Status import_snapshot(const std::function<Status(std::string&)>& source) {
        std::lock_guard<std::mutex> one_at_a_time(checkpoint_mutex_);
        const std::string incoming = files_.import_path();
        Status status = receive(source, incoming);
        if (status) status = check_importable(incoming);
        if (status) status = adopt(incoming);
        const Status removed = fs_.remove(incoming);
        return status ? removed : status;
    }

    /// Applies a record that another store's read_log produced, as one
    /// batch, keeping the absolute expiries it carries. The record is logged
    /// under this store's own LSNs.
    Status apply_replicated(const LogRecord& record) {
        if (record.type == LogRecordType::kClear) return clear();
        std::vector<K> keys;
        std::vector<std::optional<V>> values;
        std::vector<Expiry> expiries;
        const Expiry now = now_us();
        bool decoded = true;
        bool holds_clear = false;
        Status parsed = for_each_operation(record, [&](const LogOperation& op) {
            if (op.type == LogRecordType::kClear) holds_clear = true;
            K key{};
            if (!decode_into(op.key, key)) decoded = false;
            const bool live_put = (op.type == LogRecordType::kPut || op.type == LogRecordType::kPutExpiring) &&
                                  (op.expiry == kNoExpiry || op.expiry > now);
            std::optional<V> value;
            if (live_put && !decode_into(op.value, value.emplace())) decoded = false;
            keys.push_back(std::move(key));
            values.push_back(std::move(value));
            expiries.push_back(live_put ? op.expiry : kNoExpiry);
        });
        if (!parsed) return parsed;
        if (holds_clear)
            return Status::invalid_argument("apply_replicated: record " + std::to_string(record.lsn) +
                                            " is a batch holding a clear, which no Store writes");
        if (!decoded) return undecodable("entry", record.lsn);
        return write_entries(keys, values, expiries);
    }

    /// Makes everything durable and releases the directory. Later writes fail.
    Status close() {
        if (!lock_) return Status::ok();
        {
            std::lock_guard<std::mutex> lock(background_mutex_);
            closing_ = true;
        }
        background_wakeup_.notify_all();
        if (background_.joinable()) background_.join();
        Status status;
        if constexpr (kLogs) {
            if (log_) status = log_->close();
        }
        lock_.reset();
        return status;
    }

    /// The log's figures (all zero under None).
    LogStats log_stats() const {
        if constexpr (kLogs) return log_->stats();
        return LogStats{};
    }

    /// The store's figures, gathered now (see StoreStats).
    StoreStats stats() const {
        const ShardStats map = map_.stats();
        StoreStats stats;
        stats.items = map.size;
        stats.shards = map_.shard_count();
        stats.load_factor = map.load_factor;
        stats.memory_bytes = map.memory_bytes;
        stats.log = log_stats();
        stats.checkpoints = checkpoints_.load(std::memory_order_relaxed);
        stats.snapshot_bytes = snapshot_bytes_.load(std::memory_order_relaxed);
        stats.expired_keys = expired_.load(std::memory_order_relaxed);
        stats.recovery = recovery_;
        std::lock_guard<std::mutex> lock(background_mutex_);
        stats.checkpoint_error = checkpoint_error_;
        return stats;
    }

private:
    struct Refused {};

    Store(FileSystem& fs, std::string dir, const StoreOptions& options)
        : fs_(fs), files_(fs, std::move(dir)), options_(options), map_(options.map) {}

    // Bytes of `value` through its codec; strings need no copy.
    template <class T>
    static std::string_view bytes_of(const T& value, std::string& scratch) {
        if constexpr (std::is_convertible_v<const T&, std::string_view>) {
            return std::string_view(value);
        } else {
            scratch.resize(Codec<T>::size(value));
            Codec<T>::encode(value, scratch.data());
            return scratch;
        }
    }

    // Encoded bytes of `value`, counted without encoding it.
    template <class T>
    static std::size_t encoded_size(const T& value) {
        if constexpr (std::is_convertible_v<const T&, std::string_view>) {
            return std::string_view(value).size();
        } else {
            return Codec<T>::size(value);
        }
    }

    static Status check_limit(const char* what, std::size_t size, std::size_t limit, const char* option) {
        return size <= limit ? Status::ok() : over_limit(what, size, limit, option);
    }

    // Apart from check_limit, so that the check inlines into every write.
    static Status over_limit(const char* what, std::size_t size, std::size_t limit, const char* option) {
        return Status::invalid_argument(std::string(what) + " of " + std::to_string(size) + " bytes exceeds " + option +
                                        " " + std::to_string(limit));
    }

    template <class Q, class M>
    Status check_sizes(const Q& key, const M* value) const {
        if (Status status = check_limit("key", encoded_size(as_stored<K>(key)), options_.max_key_size, "max_key_size");
            !status)
            return status;
        if (value == nullptr) return Status::ok();
        return check_limit("value", encoded_size(as_stored<V>(*value)), options_.max_value_size, "max_value_size");
    }

    // Heterogeneous keys and values (a literal for a std::string) are
    // encoded as the stored type T would be.
    template <class T, class Q>
    static decltype(auto) as_stored(const Q& given) {
        if constexpr (std::is_convertible_v<const Q&, std::string_view> && std::is_same_v<T, std::string>)
            return std::string_view(given);
        else if constexpr (std::is_same_v<Q, T>)
            return given;
        else
            return T(given);
    }

    // ---- Time to live ----

    static std::optional<TimePoint> time_point_of(Expiry expiry) {
        if (expiry == kNoExpiry) return std::nullopt;
        return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(expiry)));
    }

    Expiry now_us() const {
        const TimePoint now = options_.clock ? options_.clock() : std::chrono::system_clock::now();
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
        return us > 0 ? static_cast<Expiry>(us) : 1;
    }

    Status expiry_after(std::chrono::milliseconds ttl, Expiry& expiry) const {
        const Expiry now = now_us();
        const auto ms = ttl.count();
        if (ms <= 0)
            return Status::invalid_argument("a time-to-live must be positive; got " + std::to_string(ms) + " ms");
        if (static_cast<std::uint64_t>(ms) > (std::numeric_limits<Expiry>::max() - now) / 1000)
            return Status::invalid_argument("a time-to-live of " + std::to_string(ms) +
                                            " ms ends past the last representable time");
        expiry = now + static_cast<Expiry>(ms) * 1000;
        return Status::ok();
    }

    // Calls write(expiry) with the expiry `ttl` from now, or returns why there is none.
    template <class Write>
    Status with_expiry(std::chrono::milliseconds ttl, Write&& write) const {
        Expiry expiry = kNoExpiry;
        if (Status status = expiry_after(ttl, expiry); !status) return status;
        return write(expiry);
    }

    // The one expiry rule: a deadline at or before `now` has passed.
    static bool deadline_passed(Expiry expiry, Expiry now) noexcept { return expiry != kNoExpiry && expiry <= now; }

    template <class S>
    static bool expired_at(const S& stored, Expiry now) noexcept {
        return deadline_passed(Values::expiry(stored), now);
    }

    // The clock is read only for keys that have an expiry.
    template <class S>
    bool expired(const S& stored) const {
        return Values::expiry(stored) != kNoExpiry && expired_at(stored, now_us());
    }

    void note_expiring() noexcept {
        if (!has_expiring_.load(std::memory_order_relaxed)) has_expiring_.store(true, std::memory_order_relaxed);
    }

    // For an entry read while loading: notes its expiry, if it has one (so
    // that the sweeper runs), and returns whether it had passed at `now`.
    bool noted_expired(Expiry expiry, Expiry now) noexcept {
        if (expiry == kNoExpiry) return false;
        note_expiring();
        return deadline_passed(expiry, now);
    }

    // Calls read(value, expiry) on the key's value under the shared lock if
    // it is live; an expired key found here is removed. Returns whether it
    // was live.
    template <class Q, class Read>
    bool read_live(const Q& key, Read&& read) const {
        bool found_expired = false;
        const bool found = map_.visit(key, [&](const auto& stored) {
            if (expired(stored)) {
                found_expired = true;
            } else {
                read(Values::value(stored), Values::expiry(stored));
            }
        });
        if (found_expired) erase_if_expired(key, now_us());
        return found && !found_expired;
    }

    // Removes the key if it is still expired at `now` (it may have been
    // rewritten since it was seen expired), counting it; unlogged, as the
    // file comment says.
    template <class Q>
    bool erase_if_expired(const Q& key, Expiry now) const {
        if (!map_.erase_if(key, [&](const auto& stored) { return expired_at(stored, now); })) return false;
        expired_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }

    // Calls change(value, expiry, store_value) under the exclusive lock if
    // the key is live; store_value(new_value, new_expiry) logs and stores
    // it and returns whether it did.
    template <class Q, class Change>
    Status change_live(const Q& key, Change&& change) {
        Lsn lsn = 0;
        Status logged;
        map_.update(key, [&](auto& stored) {
            if (expired(stored)) return;
            auto store_value = [&](const auto& value, Expiry expiry) {
                logged = log_put(key, value, expiry, lsn);
                if (!logged) return false;
                stored = Values::make(value, expiry);
                if (expiry != kNoExpiry) note_expiring();
                return true;
            };
            change(Values::value(stored), Values::expiry(stored), store_value);
        });
        return commit_logged(std::move(logged), lsn);
    }

    // The map's form of value + expiry; a std::string form is built in
    // `scratch` and viewed.
    template <class M>
    static decltype(auto) stored_form(const M& value, Expiry expiry, std::string& scratch) {
        if constexpr (std::is_same_v<V, std::string>) {
            return Values::make_into(scratch, std::string_view(value), expiry);
        } else {
            (void)scratch;
            return Values::make(value, expiry);
        }
    }

    // ---- Writes ----

    // Puts (values[i] set, expiring at expiries[i] if not kNoExpiry) and
    // erases as one log record, with the shards of all keys locked together.
    Status write_entries(const std::vector<K>& keys, const std::vector<std::optional<V>>& values,
                         const std::vector<Expiry>& expiries) {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (Status status = check_sizes(keys[i], values[i] ? &*values[i] : nullptr); !status) return status;
        }
        return write_locked(keys, [](auto&) { return true; }, keys, values, expiries);
    }

    // Locks the shards of lock_keys together and calls stage(locked), which
    // may fill keys, values and expiries from what it reads there (keys
    // within lock_keys, sizes checked) and returns false to write nothing;
    // then logs those entries as one record and applies them. stage runs
    // once: under None a copy between the shards is waited out before it.
    template <class Stage>
    Status write_locked(const std::vector<K>& lock_keys, Stage&& stage, const std::vector<K>& keys,
                        const std::vector<std::optional<V>>& values, const std::vector<Expiry>& expiries) {
        if (lock_keys.empty()) return Status::ok();
        Lsn lsn = 0;
        Status logged;
        copy_cursor_.apply_whole([&](auto copy_between) {
            map_.with_keys_locked(lock_keys, [&](auto& locked) {
                if constexpr (!kLogs) {
                    const auto shards = locked.shards();
                    if (copy_between(*shards.begin(), shards.end()[-1])) return;
                }
                if (!stage(locked) || keys.empty()) return;
                if constexpr (kLogs) {
                    std::vector<std::string> encoded(2 * keys.size());
                    std::vector<LogOperation> ops(keys.size());
                    for (std::size_t i = 0; i < keys.size(); ++i) {
                        ops[i].type = !values[i]                 ? LogRecordType::kErase
                                      : expiries[i] == kNoExpiry ? LogRecordType::kPut
                                                                 : LogRecordType::kPutExpiring;
                        ops[i].key = bytes_of(keys[i], encoded[2 * i]);
                        if (values[i]) ops[i].value = bytes_of(*values[i], encoded[2 * i + 1]);
                        ops[i].expiry = expiries[i];
                    }
                    logged = log_->append_batch(ops, lsn);
                    if (!logged) return;
                }
                std::string scratch;
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    if (values[i]) {
                        locked.insert_or_assign(keys[i], stored_form(*values[i], expiries[i], scratch));
                        if (expiries[i] != kNoExpiry) note_expiring();
                    } else {
                        locked.erase(keys[i]);
                    }
                }
            });
        });
        return commit_logged(std::move(logged), lsn);
    }

    template <class Q, class M>
    Status put_expiring(const Q& key, const M& value, Expiry expiry) {
        if (Status status = check_sizes(key, &value); !status) return status;
        Lsn lsn = 0;
        Status logged;
        if (expiry != kNoExpiry) note_expiring();
        map_.insert_or_assign_if(key, Values::make(value, expiry), [&] {
            logged = log_put(key, value, expiry, lsn);
            return logged.is_ok();
        });
        return commit_logged(std::move(logged), lsn);
    }

    template <class Q, class M>
    Status put_if_absent_expiring(const Q& key, const M& value, Expiry expiry, bool& inserted) {
        if (Status status = check_sizes(key, &value); !status) return status;
        Lsn lsn = 0;
        Status logged;
        bool replaced_expired = false;
        inserted = upsert_logged(
            key, value, expiry,
            [&](auto& stored) {
                if (!expired(stored)) return;
                logged = log_put(key, value, expiry, lsn);
                if (!logged) return;
                stored = Values::make(value, expiry);
                replaced_expired = true;
            },
            lsn, logged);
        inserted = inserted || replaced_expired;
        return commit_logged(std::move(logged), lsn);
    }

    template <class Q, class M>
    Status put_if_present_expiring(const Q& key, const M& value, Expiry expiry, bool& replaced) {
        replaced = false;
        if (Status status = check_sizes(key, &value); !status) return status;
        return change_live(key, [&](const auto&, Expiry, auto&& store_value) {
            if (store_value(value, expiry)) replaced = true;
        });
    }

    template <class Q, class M>
    Status log_put(const Q& key, const M& value, Expiry expiry, Lsn& lsn) {
        if constexpr (kLogs) {
            std::string key_scratch;
            std::string value_scratch;
            return log_->append(
                {expiry == kNoExpiry ? LogRecordType::kPut : LogRecordType::kPutExpiring,
                 bytes_of(as_stored<K>(key), key_scratch), bytes_of(as_stored<V>(value), value_scratch), expiry},
                lsn);
        } else {
            (void)key;
            (void)value;
            (void)expiry;
            (void)lsn;
            return Status::ok();
        }
    }

    template <class Q>
    Status log_erase(const Q& key, Lsn& lsn) {
        if constexpr (kLogs) {
            std::string scratch;
            return log_->append({LogRecordType::kErase, bytes_of(as_stored<K>(key), scratch), {}, 0}, lsn);
        } else {
            (void)key;
            (void)lsn;
            return Status::ok();
        }
    }

    // Inserts key -> value, logging it, if the key is absent (returns
    // true); else calls on_present(stored). A refused append inserts nothing.
    template <class Q, class M, class OnPresent>
    bool upsert_logged(const Q& key, const M& value, Expiry expiry, OnPresent&& on_present, Lsn& lsn, Status& logged) {
        if (expiry != kNoExpiry) note_expiring();
        try {
            return map_.upsert(key, std::forward<OnPresent>(on_present), [&]() {
                logged = log_put(key, value, expiry, lsn);
                if (!logged) throw Refused{};
                return Values::make(value, expiry);
            });
        } catch (const Refused&) {
            return false;
        }
    }

    // Waits for what the policy promises about record `lsn`, unless the
    // append failed or nothing was logged (lsn 0).
    Status commit_logged(Status&& logged, Lsn lsn) {
        if (!logged || lsn == 0) return std::move(logged);
        if (deferred_ != nullptr && deferred_->store_ == this) {
            deferred_->lsn_ = std::max(deferred_->lsn_, lsn);
            return Status::ok();
        }
        return commit(lsn);
    }

    // ---- Background work: automatic checkpoints and the sweeper ----

    bool checkpoints_by_size() const noexcept { return kLogs && options_.checkpoint_bytes > 0; }
    bool sweeps() const noexcept { return options_.sweep_interval.count() > 0; }

    std::chrono::milliseconds background_period() const {
        const bool checkpoints = checkpoints_by_size() && options_.checkpoint_poll.count() > 0;
        const bool sweeps = this->sweeps();
        if (checkpoints && sweeps) return std::min(options_.checkpoint_poll, options_.sweep_interval);
        if (checkpoints) return options_.checkpoint_poll;
        return sweeps ? options_.sweep_interval : std::chrono::milliseconds::zero();
    }

    // The log growth since the last checkpoint that starts the next one.
    std::uint64_t checkpoint_threshold() const noexcept {
        const std::uint64_t growth = snapshot_bytes_.load(std::memory_order_relaxed) / 100 * options_.checkpoint_growth;
        return std::max(options_.checkpoint_bytes, growth);
    }

    // Checkpoints whenever the log has grown enough since the last
    // checkpoint, and sweeps every sweep_interval once a key has had an expiry.
    void run_background() {
        using Clock = std::chrono::steady_clock;
        std::unique_lock<std::mutex> lock(background_mutex_);
        Clock::time_point next_sweep = Clock::now() + options_.sweep_interval;
        while (!background_wakeup_.wait_for(lock, background_period(), [&] { return closing_; })) {
            lock.unlock();
            const std::uint64_t logged = log_stats().bytes;
            Status checkpointed;
            bool tried = false;
            if (checkpoints_by_size() &&
                logged - logged_at_checkpoint_.load(std::memory_order_relaxed) >= checkpoint_threshold()) {
                checkpointed = checkpoint();
                tried = true;
            }
            if (sweeps() && Clock::now() >= next_sweep) {
                if (has_expiring_.load(std::memory_order_relaxed) && !sweeps_paused_.load(std::memory_order_relaxed))
                    remove_expired();
                next_sweep = Clock::now() + options_.sweep_interval;
            }
            lock.lock();
            if (tried && !checkpointed && checkpoint_error_.empty()) checkpoint_error_ = checkpointed.to_string();
        }
    }

    // ---- Snapshots ----

    static constexpr std::size_t kStreamChunk = std::size_t{1} << 20;
    // Log records whose mean size estimates how many entries a replay brings.
    static constexpr std::uint64_t kReserveSample = 1024;

    // The first LSN a new snapshot does not cover: the log starts a new
    // segment there (under None, snapshots are only numbered).
    Status begin_snapshot(Lsn& replay_from) {
        logged_at_begin_ = log_stats().bytes;
        replay_from = next_snapshot_lsn_;
        if constexpr (kLogs) return log_->rotate(replay_from);
        ++next_snapshot_lsn_;
        return Status::ok();
    }

    // After the snapshot at `replay_from` is durable: deletes what it replaces.
    Status end_snapshot(Lsn replay_from) {
        if constexpr (kLogs) {
            if (Status removed = log_->remove_segments_before(replay_from); !removed) return removed;
        }
        if (Status status = files_.remove_snapshots_before(replay_from); !status) return status;
        note_snapshot_size(files_.snapshot_path(replay_from));
        logged_at_checkpoint_.store(logged_at_begin_, std::memory_order_relaxed);
        checkpoints_.fetch_add(1, std::memory_order_relaxed);
        return Status::ok();
    }

    // For checkpoint_threshold; a size that cannot be read counts as none.
    void note_snapshot_size(const std::string& path) {
        std::uint64_t size = 0;
        if (!fs_.file_size(path, size)) size = 0;
        snapshot_bytes_.store(size, std::memory_order_relaxed);
    }

    // REQUIRES: checkpoint_mutex_ held.
    Status checkpoint_locked(Lsn& replay_from) {
        if (Status status = begin_snapshot(replay_from); !status) return status;
        detail::snapshot::Writer writer(fs_, files_.path(), replay_from, options_.log.file_mode);
        Status status = writer.open();
        std::string key_bytes;
        std::string value_bytes;
        const Expiry now = now_us();
        // A shard is encoded into memory under its shared lock, then written
        // with no lock held.
        {
            // Under None, changes to several shards consult the cursor: the
            // snapshot is all that a crash leaves of them.
            detail::ShardCopyCursor::Copy copy(copy_cursor_);
            copy.visit(0);
            for (std::size_t shard = 0; status && shard < map_.shard_count(); ++shard) {
                // The writer's buffer is grown before the lock is taken:
                // growing it inside cost the first shard's writers 3-8 ms
                // of page faults at 1M entries.
                writer.reserve(map_.shard_stats(shard).memory_bytes);
                map_.for_each_in_shard(shard, [&](const auto& key, const auto& stored) {
                    if (expired_at(stored, now)) return;
                    writer.add({bytes_of(key, key_bytes), bytes_of(Values::value(stored), value_bytes),
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
        if constexpr (kLogs) {
            if (status) status = log_->flush();
        }
        if (status) status = writer.finish();
        if (!status) return status;
        return end_snapshot(replay_from);
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
        Status status =
            detail::snapshot::read(fs_, path, their_lsn, entries, [&](const detail::snapshot::Entry& entry) {
                K key{};
                V value{};
                if (decoded && !(decode_into(entry.key, key) && decode_into(entry.value, value)))
                    decoded = Status::corruption(path, 0, "an imported entry does not decode as the store's types");
            });
        return status ? decoded : status;
    }

    // Makes the checked snapshot in `path` this store's newest, then loads it.
    Status adopt(const std::string& path) {
        Lsn replay_from = 0;
        if (Status status = begin_snapshot(replay_from); !status) return status;
        detail::snapshot::Writer writer(fs_, files_.path(), replay_from, options_.log.file_mode);
        Status status = writer.open();
        const Expiry now = now_us();
        Lsn their_lsn = 0;
        std::uint64_t entries = 0;
        if (status) {
            status = detail::snapshot::read(fs_, path, their_lsn, entries, [&](const detail::snapshot::Entry& entry) {
                if (!status || deadline_passed(entry.expiry, now)) return;
                writer.add(entry);
                status = writer.write_pending();
            });
        }
        if (status) status = writer.finish();
        if (!status) return status;
        // Other threads see the old contents or the new, never a mix.
        status = map_.with_all_locked([&](auto& into) {
            into.clear();
            into.reserve(static_cast<std::size_t>(entries));
            auto changes = recovery_queue(into);
            Status read =
                detail::snapshot::read(fs_, path, their_lsn, entries, [&](const detail::snapshot::Entry& entry) {
                    (void)queue_entry(changes, entry.key, entry.value, entry.expiry, now, false);
                });
            if (read) changes.finish();
            return read;
        });
        return status ? end_snapshot(replay_from) : status;
    }

    // ---- Recovery ----

    // One change read from the log or a snapshot, decoded, waiting in a
    // RecoveryQueue to be applied. A string store replaying a mapped log
    // segment points into it instead of copying the key and value (the
    // segment stays mapped until the replay ends): such a change is read
    // from its first cache line alone, as the applying thread takes each
    // line from the reading thread's cache.
    struct alignas(64) RecoveredChange {
        enum class Kind : unsigned char { kNothing, kSet, kErase, kClear, kReserve };
        Kind kind = Kind::kNothing;
        bool borrowed = false;
        unsigned char prefix_size = 0;  // of the stored form, before the borrowed value
        char prefix[detail::ExpiringValue<std::string>::kMaxPrefix] = {};
        std::uint64_t hash = 0;  // kSet, kErase: the key's key_hash
        std::string_view borrowed_key;
        std::string_view borrowed_value;
        std::size_t reserve = 0;  // kReserve: the entries to make room for
        K key{};
        Stored stored{};
    };

    // How many changes ahead of the one being applied a key's bucket is
    // fetched: enough that it has arrived from memory by then (a miss costs a
    // few hundred nanoseconds, an insert that hits the cache a few tens).
    // Borrowed bytes are fetched twice as far ahead: they come from the
    // reading thread's cache or from memory, which takes longer.
    static constexpr std::ptrdiff_t kPrefetchDistance = 16;

    // Applies a batch of recovered changes to `into`, the map's unlocked
    // loading access (nobody else sees the map yet) or its shards locked.
    template <class Into>
    static auto batch_applier(Into& into) {
        return [&into](RecoveredChange* first, RecoveredChange* last) {
            for (RecoveredChange* change = first; change != last; ++change) {
                if (last - change > 2 * kPrefetchDistance) prefetch_borrowed(change[2 * kPrefetchDistance]);
                if (last - change > kPrefetchDistance) prefetch(into, change[kPrefetchDistance]);
                apply(into, *change);
            }
        };
    }

    template <class Into>
    using RecoveryPipeline = detail::ApplyPipeline<RecoveredChange, decltype(batch_applier(std::declval<Into&>()))>;

    // The reading thread applies the changes of one shard in kReaderShare
    // itself, the second thread the rest: reading a log takes less time than
    // applying it (two thirds, with the segments mapped), and this shares
    // the work about evenly. A key's changes all go to one thread, in order.
    static constexpr std::size_t kReaderShare = 8;

    // Recovered changes on their way into `into` from two threads.
    template <class Into>
    class RecoveryQueue {
    public:
        explicit RecoveryQueue(Into& into, std::size_t reader_shards)
            : parts_(into.split(reader_shards)),
              here_(batch_applier(parts_.first), RecoveryPipeline<Into>::AppliedOn::kCallingThread),
              there_(batch_applier(parts_.second)) {}

        // The slot for a change to the key whose key_hash is `hash`, with the
        // hash set and nothing to do until its kind is set.
        RecoveredChange& next(std::uint64_t hash) {
            RecoveredChange& change = parts_.first.holds(hash) ? here_.next() : there_.next();
            change.kind = RecoveredChange::Kind::kNothing;
            change.hash = hash;
            return change;
        }

        // Queues a change to every shard (kClear, kReserve) to both threads.
        void queue_everywhere(typename RecoveredChange::Kind kind, std::size_t reserve = 0) {
            for (RecoveryPipeline<Into>* pipeline : {&here_, &there_}) {
                RecoveredChange& change = pipeline->next();
                change.kind = kind;
                change.reserve = reserve;
            }
        }

        // Applies every change queued; rethrows what applying threw.
        void finish() {
            here_.finish();
            there_.finish();
        }

    private:
        std::pair<Into, Into> parts_;
        RecoveryPipeline<Into> here_;
        RecoveryPipeline<Into> there_;
    };

    template <class Into>
    RecoveryQueue<Into> recovery_queue(Into& into) const {
        return RecoveryQueue<Into>(into, map_.shard_count() / kReaderShare);
    }

    template <class Into>
    static void prefetch(Into& into, const RecoveredChange& change) {
        if (change.kind == RecoveredChange::Kind::kSet || change.kind == RecoveredChange::Kind::kErase)
            into.prefetch_hashed(change.hash);
    }

    // The borrowed bytes lie in a mapped file that only the reading thread
    // has touched: their lines are far from the applying thread.
    static void prefetch_borrowed(const RecoveredChange& change) {
#if defined(__GNUC__)
        if (!change.borrowed) return;
        __builtin_prefetch(change.borrowed_key.data());
        if (change.borrowed_value.empty()) return;
        __builtin_prefetch(change.borrowed_value.data());
        __builtin_prefetch(change.borrowed_value.data() + change.borrowed_value.size() - 1);
#else
        (void)change;
#endif
    }

    // Strings are passed as views so that the change's slot keeps its
    // buffers for the next change queued in it.
    template <class Into>
    static void apply(Into& into, RecoveredChange& change) {
        switch (change.kind) {
        case RecoveredChange::Kind::kNothing:
            break;
        case RecoveredChange::Kind::kSet:
            if constexpr (kPackedStrings) {
                if (change.borrowed) {
                    into.insert_or_assign_hashed(
                        change.hash, change.borrowed_key,
                        detail::SplitBytes{std::string_view(change.prefix, change.prefix_size), change.borrowed_value});
                    break;
                }
            }
            if constexpr (std::is_same_v<Stored, std::string>) {
                into.insert_or_assign_hashed(change.hash, key_argument(change), std::string_view(change.stored));
            } else {
                into.insert_or_assign_hashed(change.hash, key_argument(change), std::move(change.stored));
            }
            break;
        case RecoveredChange::Kind::kErase:
            if constexpr (kPackedStrings) {
                if (change.borrowed) {
                    into.erase_hashed(change.hash, change.borrowed_key);
                    break;
                }
            }
            into.erase_hashed(change.hash, change.key);
            break;
        case RecoveredChange::Kind::kClear:
            into.clear();
            break;
        case RecoveredChange::Kind::kReserve:
            into.reserve(change.reserve);
            break;
        }
    }

    static decltype(auto) key_argument(RecoveredChange& change) {
        if constexpr (std::is_same_v<K, std::string>) {
            return std::string_view(change.key);
        } else {
            return std::move(change.key);
        }
    }

    // Queues one logged operation read during recovery. With `borrow`, the
    // operation's bytes stay valid until the queue is finished.
    template <class Queue>
    Status queue(Queue& changes, const LogOperation& op, Lsn lsn, bool borrow) {
        bool decoded = true;
        switch (op.type) {
        case LogRecordType::kPut:
            decoded = queue_entry(changes, op.key, op.value, kNoExpiry, opened_at_, borrow);
            break;
        case LogRecordType::kPutExpiring:
            decoded = queue_entry(changes, op.key, op.value, op.expiry, opened_at_, borrow);
            break;
        case LogRecordType::kErase:
            decoded = queue_erase(changes, op.key, borrow);
            break;
        case LogRecordType::kClear:
            changes.queue_everywhere(RecoveredChange::Kind::kClear);
            break;
        case LogRecordType::kBatch:
            return undecodable("operation", lsn);
        }
        return decoded ? Status::ok() : undecodable("entry", lsn);
    }

    // Queues the setting of an entry read from a snapshot or the log, or the
    // removal of its key if it expired before `now`; false if its bytes do
    // not decode, and then nothing is queued.
    template <class Queue>
    bool queue_entry(Queue& changes, std::string_view key_bytes, std::string_view value_bytes, Expiry expiry,
                     Expiry now, bool borrow) {
        if (noted_expired(expiry, now)) return queue_erase(changes, key_bytes, borrow);
        RecoveredChange* change = claim(changes, key_bytes, borrow);
        if (change == nullptr) return false;
        if constexpr (kPackedStrings) {
            if (change->borrowed) {
                change->borrowed_value = value_bytes;
                change->prefix_size = static_cast<unsigned char>(Values::make_prefix(expiry, change->prefix));
                change->kind = RecoveredChange::Kind::kSet;
                return true;
            }
        }
        if constexpr (std::is_same_v<V, std::string>) {
            Values::make_into(change->stored, value_bytes, expiry);
        } else {
            if (!Values::decode(value_bytes, expiry, change->stored)) return false;
        }
        change->kind = RecoveredChange::Kind::kSet;
        return true;
    }

    template <class Queue>
    bool queue_erase(Queue& changes, std::string_view key_bytes, bool borrow) {
        RecoveredChange* change = claim(changes, key_bytes, borrow);
        if (change == nullptr) return false;
        change->kind = RecoveredChange::Kind::kErase;
        return true;
    }

    // The next slot for the key, with the key decoded (or, for a string
    // store with `borrow`, viewed) and its hash set, and nothing to do until
    // its kind is set; nullptr if the key does not decode.
    template <class Queue>
    RecoveredChange* claim(Queue& changes, std::string_view key_bytes, bool borrow) {
        if constexpr (std::is_same_v<K, std::string>) {
            RecoveredChange& change = changes.next(map_.key_hash(key_bytes));
            change.borrowed = kPackedStrings && borrow;
            if (change.borrowed) {
                change.borrowed_key = key_bytes;
            } else {
                change.key.assign(key_bytes.data(), key_bytes.size());
            }
            return &change;
        } else {
            (void)borrow;
            K key{};
            if (!decode_key(key_bytes, key)) return nullptr;
            RecoveredChange& change = changes.next(map_.key_hash(key));
            change.borrowed = false;
            change.key = std::move(key);
            return &change;
        }
    }

    static bool decode_key(std::string_view bytes, K& key) {
        if constexpr (std::is_same_v<K, std::string>) {
            key.assign(bytes.data(), bytes.size());
            return true;
        } else {
            return Codec<K>::decode(bytes, key);
        }
    }

    template <class T>
    static bool decode_into(std::string_view bytes, T& out) {
        return Codec<T>::decode(bytes, out);
    }

    Status undecodable(const char* what, Lsn lsn) const {
        return Status::corruption(files_.path() + " log record " + std::to_string(lsn), 0,
                                  std::string("its ") + what + " does not decode as the store's type");
    }

    Status recover(StoreRecovery& found) {
        if (Status status = files_.create_and_lock(options_.log.dir_mode, lock_); !status) return status;
        opened_at_ = now_us();
        if (Status status = files_.remove_unfinished_and_find_snapshot(found.snapshot); !status) return status;
        Lsn replay_from = 1;
        if (!found.snapshot.empty()) {
            note_snapshot_size(found.snapshot);
            if (Status status = load_snapshot(found.snapshot, replay_from, found.snapshot_entries); !status)
                return status;
        }
        // Nobody else sees the map until open returns: replaying the log
        // without locks spares a lock and an unlock per record.
        return map_.without_locks([&](auto& into) { return replay(found, replay_from, into); });
    }

    // Loads snapshot `path` into the empty map on two threads, each taking
    // the blocks of one half of the file. A checkpoint writes the shards in
    // order, so the halves fill different shards and each thread takes a
    // shard's lock once, except where they meet.
    Status load_snapshot(const std::string& path, Lsn& replay_from, std::uint64_t& loaded) {
        // Room for every entry first: loading into a table that keeps
        // growing takes several times as long.
        std::uint64_t entries = 0;
        if (Status status = detail::snapshot::read_entry_count(fs_, path, entries); !status) return status;
        map_.reserve(static_cast<std::size_t>(entries));
        return detail::snapshot::read_in_parallel(
            fs_, path, replay_from, loaded,
            [&](const detail::snapshot::Entry* first, const detail::snapshot::Entry* last) {
                typename Map::BulkInserter inserter(map_);
                for (const detail::snapshot::Entry* entry = first; entry != last; ++entry) {
                    if (last - entry > kPrefetchDistance) prefetch_key(inserter, entry[kPrefetchDistance].key);
                    if (noted_expired(entry->expiry, opened_at_)) continue;
                    if (!insert_entry(inserter, *entry)) return Status::corruption(path, 0, "an entry does not decode");
                }
                return Status::ok();
            });
    }

    template <class Inserter>
    static void prefetch_key(const Inserter& inserter, std::string_view key_bytes) {
        if constexpr (std::is_same_v<K, std::string>) {
            inserter.prefetch(key_bytes);
        } else {
            K key{};
            if (decode_key(key_bytes, key)) inserter.prefetch(key);
        }
    }

    // Sets a snapshot's entry through `inserter`; false if its bytes do not
    // decode, and then nothing is set.
    template <class Inserter>
    static bool insert_entry(Inserter& inserter, const detail::snapshot::Entry& entry) {
        if constexpr (std::is_same_v<K, std::string>) {
            return insert_value(inserter, entry.key, entry);
        } else {
            K key{};
            return decode_key(entry.key, key) && insert_value(inserter, std::move(key), entry);
        }
    }

    template <class Inserter, class Key>
    static bool insert_value(Inserter& inserter, Key&& key, const detail::snapshot::Entry& entry) {
        if constexpr (std::is_same_v<V, std::string>) {
            inserter.insert_or_assign(std::forward<Key>(key), Values::make(entry.value, entry.expiry));
        } else {
            Stored stored{};
            if (!Values::decode(entry.value, entry.expiry, stored)) return false;
            inserter.insert_or_assign(std::forward<Key>(key), std::move(stored));
        }
        return true;
    }

    // Replays the log from `replay_from` on into `into`.
    template <class Into>
    Status replay(StoreRecovery& found, Lsn replay_from, Into& into) {
        next_snapshot_lsn_ = replay_from + 1;
        if constexpr (kLogs) {
            // The log holds no entry count, so room is made from its size
            // and the mean size of its first records: replaying into tables
            // that keep growing takes about a third longer. Logs are kept
            // short by checkpoints, which bounds what an overestimate (a log
            // of many overwrites) costs in empty buckets.
            const std::size_t loaded = map_.size();
            std::uint64_t log_bytes = 0;
            std::uint64_t sampled_bytes = 0;
            std::uint64_t sampled_records = 0;
            LogOptions log_options = options_.log;
            log_options.on_replay_progress = [&](std::uint64_t done, std::uint64_t total) {
                log_bytes = total;
                if (options_.log.on_replay_progress) options_.log.on_replay_progress(done, total);
            };
            // Mapped segments that queued changes point into; declared
            // before the queue, so that they outlive its applying thread.
            std::vector<std::shared_ptr<const void>> borrowed_from;
            RecoveryQueue<Into> changes = recovery_queue(into);
            auto replay = [&](const LogRecord& record) {
                if (sampled_records < kReserveSample) {
                    sampled_bytes += detail::log::kRecordHeaderSize + record.payload.size();
                    if (++sampled_records == kReserveSample) {
                        changes.queue_everywhere(
                            RecoveredChange::Kind::kReserve,
                            loaded + static_cast<std::size_t>(log_bytes / (sampled_bytes / kReserveSample)));
                    }
                }
                const bool borrow = kPackedStrings && record.payload_owner != nullptr;
                if (borrow && (borrowed_from.empty() || borrowed_from.back() != *record.payload_owner))
                    borrowed_from.push_back(*record.payload_owner);
                Status queued;
                Status decoded = for_each_operation(record, [&](const LogOperation& op) {
                    if (queued) queued = queue(changes, op, record.lsn, borrow);
                });
                return decoded ? queued : decoded;
            };
            std::unique_ptr<Durability> log;
            if (Status status = Durability::open(files_.path(), log_options, replay_from, replay, found.log, log);
                !status)
                return status;
            changes.finish();
            log_ = std::move(log);
        }
        return Status::ok();
    }

    FileSystem& fs_;
    const detail::StoreDirectory files_;
    const StoreOptions options_;
    // Mutable so that a read that finds an expired key can remove it.
    mutable Map map_;
    std::unique_ptr<FileLock> lock_;
    std::unique_ptr<Durability> log_;  // unused under None
    StoreRecovery recovery_;
    Expiry opened_at_ = 0;
    std::atomic<bool> sweeps_paused_{false};
    std::mutex checkpoint_mutex_;
    // How far a running checkpoint has copied the shards. Under None a batch
    // or clear waits rather than land between two shards' copies, as the
    // snapshot would then hold it half (the logging policies' records of it,
    // durable before the snapshot, complete it at recovery instead).
    detail::ShardCopyCursor copy_cursor_;
    std::atomic<std::uint64_t> checkpoints_{0};
    std::atomic<std::uint64_t> snapshot_bytes_{0};
    std::uint64_t logged_at_begin_ = 0;  // the log's bytes when the running checkpoint began; checkpoint_mutex_
    std::atomic<std::uint64_t> logged_at_checkpoint_{0};  // and when the last finished one began
    mutable std::atomic<std::uint64_t> expired_{0};
    std::atomic<bool> has_expiring_{false};
    std::thread background_;
    mutable std::mutex background_mutex_;
    std::condition_variable background_wakeup_;
    bool closing_ = false;
    std::string checkpoint_error_;
    Lsn next_snapshot_lsn_ = 1;  // None: snapshots are numbered, there is no log
    // The calling thread's innermost DeferredCommits scope, for any store.
    static inline thread_local DeferredCommits* deferred_ = nullptr;
};

}  // namespace kvstore
