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
// lock, makes the snapshot durable, then deletes the segments before L.
// Changes made during the copy may or may not be in the snapshot; replaying
// their records from L on gives the same state either way, because records
// hold resulting values.
#pragma once

#include <kvstore/codec.hpp>
#include <kvstore/concurrent_map.hpp>
#include <kvstore/detail/snapshot_file.hpp>
#include <kvstore/durability.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
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

struct StoreOptions {
    /// The map's shards and initial capacity (see MapOptions).
    MapOptions map;
    /// The log's options; its file_system also holds the snapshots and the
    /// LOCK file, and its file_mode and dir_mode apply to them.
    LogOptions log;
    /// Longest key and value accepted, in encoded bytes; a longer one is
    /// refused with kInvalidArgument and nothing is written.
    std::size_t max_key_size = std::size_t{64} << 10;
    std::size_t max_value_size = std::size_t{64} << 20;
    /// A background thread checkpoints once the log has grown by this many
    /// bytes since the last checkpoint (0: only on demand). It looks every
    /// checkpoint_poll. Not used under None.
    std::uint64_t checkpoint_bytes = std::uint64_t{64} << 20;
    std::chrono::milliseconds checkpoint_poll{100};
};

/// A store's figures.
struct StoreStats {
    std::size_t items = 0;
    std::size_t shards = 0;
    double load_factor = 0;
    std::size_t memory_bytes = 0;  ///< tables and records held by the map
    LogStats log;                  ///< all zero under None
    std::uint64_t checkpoints = 0; ///< finished by this Store object
    /// The first error of an automatic checkpoint, if one failed (they are
    /// retried at the next poll).
    std::string checkpoint_error;
};

/// What opening a store found.
struct StoreRecovery {
    std::string snapshot;           ///< the snapshot loaded ("" if none)
    std::uint64_t snapshot_entries = 0;
    RecoveryReport log;             ///< the log replayed after it
};

/// Puts and erases that a Store applies together: after a crash all of them
/// or none, and other threads see all of them or none.
template <class K, class V>
class WriteBatch {
public:
    void put(K key, V value) {
        keys_.push_back(std::move(key));
        values_.emplace_back(std::move(value));
    }
    void erase(K key) {
        keys_.push_back(std::move(key));
        values_.emplace_back();
    }
    std::size_t size() const noexcept { return keys_.size(); }
    bool empty() const noexcept { return keys_.empty(); }
    void clear() noexcept {
        keys_.clear();
        values_.clear();
    }

    /// The keys, in the order given; a key's later entries win.
    const std::vector<K>& keys() const noexcept { return keys_; }
    /// The value put for keys()[i], or nothing for an erase.
    const std::vector<std::optional<V>>& values() const noexcept { return values_; }

private:
    std::vector<K> keys_;
    std::vector<std::optional<V>> values_;
};

template <class K, class V, class Durability = GroupCommitWAL, class Hasher = Hash<K>,
          class KeyEqual = std::equal_to<>>
class Store {
    static constexpr bool kLogs = !std::is_same_v<Durability, None>;

public:
    using Map = ConcurrentMap<K, V, Hasher, KeyEqual>;

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
        StoreRecovery found;
        if (Status status = opened->recover(found); !status) return status;
        if (recovery != nullptr) *recovery = std::move(found);
        if (kLogs && options.checkpoint_bytes > 0)
            opened->checkpointer_ = std::thread([raw = opened.get()] { raw->checkpoint_when_due(); });
        store = std::move(opened);
        return Status::ok();
    }

    /// Sets `key` to `value`; returns once the policy's promise holds.
    template <class Q, class M>
    Status put(Q&& key, M&& value) {
        if (Status status = check_sizes(key, &value); !status) return status;
        Lsn lsn = 0;
        Status logged;
        upsert_logged(
            key, value,
            [&](auto& stored) {
                logged = log_put(key, value, lsn);
                if (logged) stored = value;
            },
            lsn, logged);
        return commit_logged(logged, lsn);
    }

    /// Removes `key`; `erased` (if given) says whether it was there. Erasing
    /// an absent key writes nothing.
    template <class Q>
    Status erase(const Q& key, bool* erased = nullptr) {
        if (Status status = check_sizes<Q, V>(key, nullptr); !status) return status;
        Lsn lsn = 0;
        Status logged;
        const bool removed = map_.erase_if(key, [&](const auto&) {
            logged = log_erase(key, lsn);
            return logged.is_ok();
        });
        if (erased != nullptr) *erased = removed;
        return commit_logged(logged, lsn);
    }

    /// Sets `key` to `value` only if it is absent; `inserted` says whether
    /// it was. Nothing is logged when the key is present.
    template <class Q, class M>
    Status put_if_absent(Q&& key, M&& value, bool& inserted) {
        if (Status status = check_sizes(key, &value); !status) return status;
        Lsn lsn = 0;
        Status logged;
        inserted = upsert_logged(key, value, [](auto&) {}, lsn, logged);
        return commit_logged(logged, lsn);
    }

    /// Sets `key` to `desired` if its value equals `expected`; `swapped`
    /// says whether it did.
    template <class Q, class E, class M>
    Status compare_and_set(const Q& key, const E& expected, const M& desired, bool& swapped) {
        if (Status status = check_sizes(key, &desired); !status) return status;
        Lsn lsn = 0;
        Status logged;
        swapped = false;
        map_.update(key, [&](auto& stored) {
            if (!(stored == expected)) return;
            logged = log_put(key, desired, lsn);
            if (!logged) return;
            stored = desired;
            swapped = true;
        });
        return commit_logged(logged, lsn);
    }

    /// Calls f(V&) on a copy of the key's value under the shard's exclusive
    /// lock and stores the result; the log holds the resulting value, never
    /// f. `found` says whether the key was there. If f throws, nothing
    /// changes and the exception propagates.
    template <class Q, class F>
    Status update(const Q& key, F&& f, bool& found) {
        Lsn lsn = 0;
        Status logged;
        found = map_.update(key, [&](auto& stored) {
            V changed(stored);
            f(changed);
            logged = check_sizes(key, &changed);
            if (logged) logged = log_put(key, changed, lsn);
            if (logged) stored = std::move(changed);
        });
        return commit_logged(logged, lsn);
    }

    /// Applies every put and erase of `batch` as one: one log record, and
    /// the shards of all its keys locked together while it is applied.
    Status write(const WriteBatch<K, V>& batch) {
        if (batch.empty()) return Status::ok();
        const auto& keys = batch.keys();
        const auto& values = batch.values();
        std::vector<std::string> encoded(2 * keys.size());
        std::vector<LogOperation> ops(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (Status status = check_sizes(keys[i], values[i] ? &*values[i] : nullptr); !status) return status;
            ops[i].type = values[i] ? LogRecordType::kPut : LogRecordType::kErase;
            ops[i].key = bytes_of(keys[i], encoded[2 * i]);
            if (values[i]) ops[i].value = bytes_of(*values[i], encoded[2 * i + 1]);
        }
        Lsn lsn = 0;
        Status logged;
        map_.with_keys_locked(keys, [&](auto& locked) {
            if constexpr (kLogs) {
                logged = log_->append_batch(ops, lsn);
                if (!logged) return;
            }
            for (std::size_t i = 0; i < keys.size(); ++i) {
                if (values[i]) {
                    locked.insert_or_assign(keys[i], *values[i]);
                } else {
                    locked.erase(keys[i]);
                }
            }
        });
        return commit_logged(logged, lsn);
    }

    /// Removes every entry, logged as one record; other threads see the
    /// store as it was or empty.
    Status clear() {
        Lsn lsn = 0;
        Status logged;
        map_.clear_if([&] {
            if constexpr (kLogs) logged = log_->append({LogRecordType::kClear, {}, {}, 0}, lsn);
            return logged.is_ok();
        });
        return commit_logged(logged, lsn);
    }

    template <class Q>
    std::optional<V> get(const Q& key) const {
        return map_.get(key);
    }
    template <class Q>
    bool find(const Q& key, V& out) const {
        return map_.find(key, out);
    }
    template <class Q>
    bool contains(const Q& key) const {
        return map_.contains(key);
    }
    /// Calls f(key, value) on every entry, one shard at a time (see
    /// ConcurrentMap::for_each).
    template <class F>
    void for_each(F&& f) const {
        map_.for_each(std::forward<F>(f));
    }
    std::size_t size() const noexcept { return map_.size(); }

    /// Writes a snapshot of the current state and deletes the log segments
    /// it replaces; readers and writers go on meanwhile.
    Status checkpoint() {
        std::lock_guard<std::mutex> one_at_a_time(checkpoint_mutex_);
        Lsn replay_from = next_snapshot_lsn_;
        if constexpr (kLogs) {
            if (Status status = log_->rotate(replay_from); !status) return status;
        }
        detail::snapshot::Writer writer(fs_, dir_, replay_from, options_.log.file_mode);
        Status status = writer.open();
        std::string key_bytes;
        std::string value_bytes;
        map_.for_each([&](const auto& key, const auto& value) {
            if (!status) return;
            status = writer.add({bytes_of(key, key_bytes), bytes_of(value, value_bytes), 0});
        });
        if (status) status = writer.finish();
        if (!status) return status;
        if constexpr (kLogs) {
            if (Status removed = log_->remove_segments_before(replay_from); !removed) return removed;
        } else {
            ++next_snapshot_lsn_;
        }
        if (Status status = remove_snapshots_before(replay_from); !status) return status;
        checkpoints_.fetch_add(1, std::memory_order_relaxed);
        return Status::ok();
    }

    /// Makes everything durable and releases the directory. Later writes fail.
    Status close() {
        if (!lock_) return Status::ok();
        {
            std::lock_guard<std::mutex> lock(checkpointer_mutex_);
            closing_ = true;
        }
        checkpointer_wakeup_.notify_all();
        if (checkpointer_.joinable()) checkpointer_.join();
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

    StoreStats stats() const {
        const ShardStats map = map_.stats();
        StoreStats stats;
        stats.items = map.size;
        stats.shards = map_.shard_count();
        stats.load_factor = map.load_factor;
        stats.memory_bytes = map.memory_bytes;
        stats.log = log_stats();
        stats.checkpoints = checkpoints_.load(std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(checkpointer_mutex_);
        stats.checkpoint_error = checkpoint_error_;
        return stats;
    }

    const Map& map() const noexcept { return map_; }

private:
    struct Refused {};

    Store(FileSystem& fs, std::string dir, const StoreOptions& options)
        : fs_(fs), dir_(std::move(dir)), options_(options), map_(options.map) {}

    // Bytes of `value` through its codec; std::string needs no copy.
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
        if (size <= limit) return Status::ok();
        return Status::invalid_argument(std::string(what) + " of " + std::to_string(size) + " bytes exceeds " +
                                        option + " " + std::to_string(limit));
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

    template <class Q, class M>
    Status log_put(const Q& key, const M& value, Lsn& lsn) {
        if constexpr (kLogs) {
            std::string key_scratch;
            std::string value_scratch;
            return log_->append({LogRecordType::kPut, bytes_of(as_stored<K>(key), key_scratch),
                                 bytes_of(as_stored<V>(value), value_scratch), 0},
                                lsn);
        } else {
            (void)key;
            (void)value;
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

    // The automatic checkpoints: one whenever the log has grown by
    // checkpoint_bytes since the last one.
    void checkpoint_when_due() {
        std::unique_lock<std::mutex> lock(checkpointer_mutex_);
        std::uint64_t logged_at_last = 0;
        while (!checkpointer_wakeup_.wait_for(lock, options_.checkpoint_poll, [&] { return closing_; })) {
            const std::uint64_t logged = log_stats().bytes;
            if (logged - logged_at_last < options_.checkpoint_bytes) continue;
            lock.unlock();
            const Status status = checkpoint();
            lock.lock();
            if (status) {
                logged_at_last = logged;
            } else if (checkpoint_error_.empty()) {
                checkpoint_error_ = status.to_string();
            }
        }
    }

    // Inserts key -> value, logging it, if the key is absent (returns
    // true); else calls on_present(stored). A refused append inserts nothing.
    template <class Q, class M, class OnPresent>
    bool upsert_logged(const Q& key, const M& value, OnPresent&& on_present, Lsn& lsn, Status& logged) {
        try {
            return map_.upsert(key, std::forward<OnPresent>(on_present), [&]() -> V {
                logged = log_put(key, value, lsn);
                if (!logged) throw Refused{};
                return V(value);
            });
        } catch (const Refused&) {
            return false;
        }
    }

    // Waits for what the policy promises about record `lsn`, unless the
    // append failed or nothing was logged (lsn 0).
    Status commit_logged(const Status& logged, Lsn lsn) {
        if (!logged || lsn == 0) return logged;
        if constexpr (kLogs) return log_->commit(lsn);
        return Status::ok();
    }

    // Applies one logged operation during recovery.
    Status apply(const LogOperation& op, Lsn lsn) {
        switch (op.type) {
            case LogRecordType::kPut:
            case LogRecordType::kPutExpiring:
                return restore(op.key, op.value) ? Status::ok() : undecodable("entry", lsn);
            case LogRecordType::kErase: {
                if constexpr (std::is_same_v<K, std::string>) {
                    map_.erase(op.key);
                } else {
                    K key{};
                    if (!Codec<K>::decode(op.key, key)) return undecodable("key", lsn);
                    map_.erase(key);
                }
                return Status::ok();
            }
            case LogRecordType::kClear: map_.clear(); return Status::ok();
            case LogRecordType::kBatch: break;
        }
        return undecodable("operation", lsn);
    }

    // Sets an entry read from a snapshot or the log; false if its bytes do
    // not decode. A string-to-string map takes the bytes as they are,
    // without building strings for them.
    bool restore(std::string_view key_bytes, std::string_view value_bytes) {
        if constexpr (std::is_same_v<K, std::string> && std::is_same_v<V, std::string>) {
            map_.insert_or_assign(key_bytes, value_bytes);
        } else {
            K key{};
            V value{};
            if (!Codec<K>::decode(key_bytes, key) || !Codec<V>::decode(value_bytes, value)) return false;
            map_.insert_or_assign(std::move(key), std::move(value));
        }
        return true;
    }

    Status undecodable(const char* what, Lsn lsn) const {
        return Status::corruption(dir_ + " log record " + std::to_string(lsn), 0,
                                  std::string("its ") + what + " does not decode as the store's type");
    }

    Status recover(StoreRecovery& found) {
        if (Status status = fs_.create_dir(dir_, options_.log.dir_mode); !status) return status;
        if (Status status = fs_.lock_file(dir_ + "/LOCK", lock_); !status) {
            if (status.code() == StatusCode::kBusy)
                return Status::busy("the store at " + dir_ + " is open elsewhere (its LOCK file is held)");
            return status;
        }
        std::vector<std::string> names;
        if (Status status = fs_.list_dir(dir_, names); !status) return status;
        Lsn newest = 0;
        bool have_snapshot = false;
        for (const std::string& name : names) {
            Lsn lsn = 0;
            if (detail::snapshot::parse_file_name(name, lsn) && (!have_snapshot || lsn > newest)) {
                newest = lsn;
                have_snapshot = true;
            } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
                // A checkpoint that did not finish.
                if (Status status = fs_.remove(dir_ + "/" + name); !status) return status;
            }
        }
        Lsn replay_from = 1;
        if (have_snapshot) {
            found.snapshot = dir_ + "/" + detail::snapshot::file_name(newest);
            // Room for every entry first: loading into a table that keeps
            // growing takes several times as long.
            std::uint64_t entries = 0;
            if (Status status = detail::snapshot::read_entry_count(fs_, found.snapshot, entries); !status)
                return status;
            map_.reserve(static_cast<std::size_t>(entries));
            Status decoded;
            Status status = detail::snapshot::read(fs_, found.snapshot, replay_from, found.snapshot_entries,
                                                   [&](const detail::snapshot::Entry& entry) {
                                                       if (decoded && !restore(entry.key, entry.value))
                                                           decoded = Status::corruption(
                                                               found.snapshot, 0, "an entry does not decode");
                                                   });
            if (!status) return status;
            if (!decoded) return decoded;
        }
        next_snapshot_lsn_ = replay_from + 1;
        if constexpr (kLogs) {
            auto replay = [&](const LogRecord& record) {
                Status applied;
                Status decoded = for_each_operation(record, [&](const LogOperation& op) {
                    if (applied) applied = apply(op, record.lsn);
                });
                return decoded ? applied : decoded;
            };
            std::unique_ptr<Durability> log;
            if (Status status = Durability::open(dir_, options_.log, replay_from, replay, found.log, log); !status)
                return status;
            log_ = std::move(log);
        }
        return Status::ok();
    }

    Status remove_snapshots_before(Lsn replay_from) {
        std::vector<std::string> names;
        if (Status status = fs_.list_dir(dir_, names); !status) return status;
        bool removed = false;
        for (const std::string& name : names) {
            Lsn lsn = 0;
            if (!detail::snapshot::parse_file_name(name, lsn) || lsn >= replay_from) continue;
            if (Status status = fs_.remove(dir_ + "/" + name); !status) return status;
            removed = true;
        }
        return removed ? fs_.sync_dir(dir_) : Status::ok();
    }

    FileSystem& fs_;
    const std::string dir_;
    const StoreOptions options_;
    Map map_;
    std::unique_ptr<FileLock> lock_;
    std::unique_ptr<Durability> log_;  // unused under None
    std::mutex checkpoint_mutex_;
    std::atomic<std::uint64_t> checkpoints_{0};
    std::thread checkpointer_;
    mutable std::mutex checkpointer_mutex_;
    std::condition_variable checkpointer_wakeup_;
    bool closing_ = false;
    std::string checkpoint_error_;
    Lsn next_snapshot_lsn_ = 1;  // None: snapshots are numbered, there is no log
};

}  // namespace kvstore
