// Recovery: fills a Store's map from its newest snapshot and the log after
// it, before the Store is opened to anyone; and, for an imported snapshot,
// refills it.
//
// It reads files and fills the map, nothing more: the Store owns the
// directory, the lock and the log, and opens the log itself through the
// callable replay_log is given (the policy's open replays the records).
// Changes are decoded on the reading thread and applied on two (see
// RecoveryQueue), in the order read, so the map ends as a serial replay
// would leave it.
#pragma once

#include <kvstore/codec.hpp>
#include <kvstore/detail/apply_pipeline.hpp>
#include <kvstore/detail/expiring_value.hpp>
#include <kvstore/detail/log_format.hpp>
#include <kvstore/detail/no_room.hpp>
#include <kvstore/detail/snapshot_file.hpp>
#include <kvstore/durability.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/log_files.hpp>
#include <kvstore/log_options.hpp>
#include <kvstore/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kvstore::detail {

// The error for a log record whose bytes do not decode as the store's types.
inline Status undecodable(const std::string& dir, const char* what, Lsn lsn) {
    return Status::corruption(dir + " log record " + std::to_string(lsn), 0,
                              std::string("its ") + what + " does not decode as the store's type");
}

// K, V: the Store's key and value types; Map: its ConcurrentMap of
// ExpiringValue<V>::Stored.
template <class K, class V, class Map>
class Recovery {
    using Values = ExpiringValue<V>;
    using Stored = typename Values::Stored;
    static constexpr bool kPackedStrings = std::is_same_v<K, std::string> && std::is_same_v<V, std::string>;

public:
    // Entries whose expiry is at or before `now` are left out (removed, if
    // the log brings them back); the others' expiries are noted in `expiries`.
    Recovery(FileSystem& fs, std::string dir, Map& map, Expiry now, ExpirySeen& expiries)
        : fs_(fs), dir_(std::move(dir)), map_(map), now_(now), expiries_(expiries) {}

    // Loads snapshot `path` into the empty map on two threads, each taking
    // the blocks of one half of the file. A checkpoint writes the shards in
    // order, so the halves fill different shards and each thread takes a
    // shard's lock once, except where they meet.
    Status load_snapshot(const std::string& path, Lsn& replay_from, std::uint64_t& loaded) {
        // Room for every entry first: loading into a table that keeps
        // growing takes several times as long.
        std::uint64_t entries = 0;
        if (Status status = snapshot::read_entry_count(fs_, path, entries); !status) return status;
        map_.reserve(static_cast<std::size_t>(entries));
        return snapshot::read_in_parallel(
            fs_, path, replay_from, loaded,
            [&](const snapshot::Entry* first, const snapshot::Entry* last) {
                return no_room_in("loading snapshot", path, kNoLsn, [&] {
                    typename Map::BulkInserter inserter(map_);
                    for (const snapshot::Entry* entry = first; entry != last; ++entry) {
                        if (last - entry > kPrefetchDistance) prefetch_key(inserter, entry[kPrefetchDistance].key);
                        if (expiries_.note_passed(entry->expiry, now_)) continue;
                        if (!insert_entry(inserter, *entry))
                            return Status::corruption(path, 0, "an entry does not decode");
                    }
                    return Status::ok();
                });
            });
    }

    // Replays the log into `into` (the map without locks, or locked whole)
    // through open_log(const LogOptions&, replay) -> Status, which opens the
    // store's log with replay(const LogRecord&) -> Status as its record
    // callback; `options` are the log's, whose progress callback is kept.
    template <class Into, class OpenLog>
    Status replay_log(Into& into, const LogOptions& options, OpenLog&& open_log) {
        // The log holds no entry count, so room is made from its size
        // and the mean size of its first records: replaying into tables
        // that keep growing takes about a third longer. Logs are kept
        // short by checkpoints, which bounds what an overestimate (a log
        // of many overwrites) costs in empty buckets.
        const std::size_t loaded = map_.size();
        std::uint64_t log_bytes = 0;
        std::uint64_t sampled_bytes = 0;
        std::uint64_t sampled_records = 0;
        LogOptions log_options = options;
        log_options.on_replay_progress = [&](std::uint64_t done, std::uint64_t total) {
            log_bytes = total;
            if (options.on_replay_progress) options.on_replay_progress(done, total);
        };
        // Mapped segments that queued changes point into; declared
        // before the queue, so that they outlive its applying thread.
        std::vector<std::shared_ptr<const void>> borrowed_from;
        // Made at the first record: an empty log allocates no batches.
        std::optional<RecoveryQueue<Into>> changes;
        Lsn replaying = 0;
        auto replay_record = [&](const LogRecord& record) {
            if (!changes) changes.emplace(into, map_.shard_count() / kReaderShare);
            changes->reading(record.lsn);
            if (sampled_records < kReserveSample) {
                sampled_bytes += log::kRecordHeaderSize + record.payload.size();
                if (++sampled_records == kReserveSample) {
                    changes->queue_everywhere(
                        RecoveredChange::Kind::kReserve,
                        loaded + static_cast<std::size_t>(log_bytes / (sampled_bytes / kReserveSample)));
                }
            }
            const bool borrow = kPackedStrings && record.payload_owner != nullptr;
            if (borrow && (borrowed_from.empty() || borrowed_from.back() != *record.payload_owner))
                borrowed_from.push_back(*record.payload_owner);
            return queue_record(*changes, record, borrow);
        };
        auto replay = [&](const LogRecord& record) {
            replaying = record.lsn;
            return no_room_in("replaying the log in", dir_, replaying, [&] { return replay_record(record); });
        };
        if (Status status = open_log(static_cast<const LogOptions&>(log_options), replay); !status) return status;
        return no_room_in("replaying the log in", dir_, replaying, [&] {
            if (changes) changes->finish();
            return Status::ok();
        });
    }

    // Replaces what `into` (the map, locked whole) holds with the `entries`
    // entries of snapshot `path`, which a Store has checked.
    template <class Into>
    Status load_snapshot_into(const std::string& path, std::uint64_t entries, Into& into) {
        Lsn replay_from = 0;
        return load_snapshot_into(path, entries, into, replay_from);
    }

    // Refills `into` (the map locked whole) from the files alone: the
    // snapshot `snapshot` (none if empty), then, if `with_log`, every log
    // record after it, read without opening the log. The log's records must
    // all be written (flushed) first.
    template <class Into>
    Status reload(Into& into, const std::string& snapshot, bool with_log) {
        Lsn replay_from = 1;
        if (snapshot.empty()) {
            into.clear();
        } else {
            std::uint64_t entries = 0;
            if (Status status = snapshot::read_entry_count(fs_, snapshot, entries); !status) return status;
            if (Status status = load_snapshot_into(snapshot, entries, into, replay_from); !status) return status;
        }
        if (!with_log) return Status::ok();
        Lsn reading = 0;
        return no_room_in("reloading the log in", dir_, reading, [&] {
            RecoveryQueue<Into> changes(into, map_.shard_count() / kReaderShare);
            RecoveryReport report;
            Status read = read_log_files(
                fs_, dir_, replay_from, RecoveryMode::kTolerateTornTail,
                [&](const LogRecord& record) {
                    reading = record.lsn;
                    changes.reading(record.lsn);
                    return queue_record(changes, record, false);
                },
                report);
            if (read) changes.finish();
            return read;
        });
    }

private:
    // Loads the snapshot in `path` (`entries` entries) into `into`, locked
    // whole, replacing what it held; `replay_from` gets the snapshot's LSN.
    template <class Into>
    Status load_snapshot_into(const std::string& path, std::uint64_t entries, Into& into, Lsn& replay_from) {
        return no_room_in("loading snapshot", path, kNoLsn, [&] {
            into.clear();
            into.reserve(static_cast<std::size_t>(entries));
            RecoveryQueue<Into> changes(into, map_.shard_count() / kReaderShare);
            Status read = snapshot::read(fs_, path, replay_from, entries, [&](const snapshot::Entry& entry) {
                (void)queue_entry(changes, entry.key, entry.value, entry.expiry, now_, false);
            });
            if (read) changes.finish();
            return read;
        });
    }

    // Queues the changes of `record`, viewing its bytes if `borrow`.
    template <class Queue>
    Status queue_record(Queue& changes, const LogRecord& record, bool borrow) {
        Status queued;
        Status decoded = for_each_operation(record, [&](const LogOperation& op) {
            if (queued) queued = queue(changes, op, record.lsn, borrow);
        });
        return decoded ? queued : decoded;
    }

    // Log records whose mean size estimates how many entries a replay brings.
    static constexpr std::uint64_t kReserveSample = 1024;
    static constexpr Lsn kNoLsn = 0;
    static constexpr const char* kMoreRoom =
        "nothing was changed; open it with more memory, or more shards (MapOptions::shards)";

    // A change that ran out of room while applied; `lsn` names its record.
    struct NoRoomAt {
        Lsn lsn;
        std::string why;
    };

    // Returns f() (a Status), or the kNoRoom Status "<doing> <file> at LSN
    // n: why" of a change that ran out of room: a change applied on the
    // other thread names its own record, one that failed on this thread is
    // taken to come from record `reading` (0: from a snapshot, no LSN).
    template <class F>
    Status no_room_in(const char* doing, const std::string& file, const Lsn& reading, F&& f) const {
        auto where = [&](Lsn lsn) {
            std::string said = std::string(doing) + " " + file;
            return lsn == kNoLsn ? said : said + " at LSN " + std::to_string(lsn);
        };
        try {
            return no_room_as_status([&] { return where(reading); }, kMoreRoom, std::forward<F>(f));
        } catch (const NoRoomAt& failed) {
            return Status::no_room(where(failed.lsn) + ": " + failed.why + "; " + kMoreRoom);
        }
    }

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
        char prefix[ExpiringValue<std::string>::kMaxPrefix] = {};
        std::uint64_t hash = 0;  // kSet, kErase: the key's key_hash
        std::string_view borrowed_key;
        std::string_view borrowed_value;
        std::size_t reserve = 0;  // kReserve: the entries to make room for
        Lsn lsn = 0;              // of the record the change comes from
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
                try {
                    apply(into, *change);
                } catch (const std::length_error& error) {
                    throw NoRoomAt{change->lsn, error.what()};
                } catch (const std::bad_alloc&) {
                    throw NoRoomAt{change->lsn, "out of memory (std::bad_alloc)"};
                }
            }
        };
    }

    template <class Into>
    using RecoveryPipeline = ApplyPipeline<RecoveredChange, decltype(batch_applier(std::declval<Into&>()))>;

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
            change.lsn = lsn_;
            return change;
        }

        // The changes queued from now on come from record `lsn`.
        void reading(Lsn lsn) noexcept { lsn_ = lsn; }

        // Queues a change to every shard (kClear, kReserve) to both threads.
        void queue_everywhere(typename RecoveredChange::Kind kind, std::size_t reserve = 0) {
            for (RecoveryPipeline<Into>* pipeline : {&here_, &there_}) {
                RecoveredChange& change = pipeline->next();
                change.kind = kind;
                change.reserve = reserve;
                change.lsn = lsn_;
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
        Lsn lsn_ = 0;
    };

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
                        SplitBytes{std::string_view(change.prefix, change.prefix_size), change.borrowed_value});
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
            decoded = queue_entry(changes, op.key, op.value, kNoExpiry, now_, borrow);
            break;
        case LogRecordType::kPutExpiring:
            decoded = queue_entry(changes, op.key, op.value, op.expiry, now_, borrow);
            break;
        case LogRecordType::kErase:
            decoded = queue_erase(changes, op.key, borrow);
            break;
        case LogRecordType::kClear:
            changes.queue_everywhere(RecoveredChange::Kind::kClear);
            break;
        case LogRecordType::kBatch:
            return undecodable(dir_, "operation", lsn);
        }
        return decoded ? Status::ok() : undecodable(dir_, "entry", lsn);
    }

    // Queues the setting of an entry read from a snapshot or the log, or the
    // removal of its key if it expired before `now`; false if its bytes do
    // not decode, and then nothing is queued.
    template <class Queue>
    bool queue_entry(Queue& changes, std::string_view key_bytes, std::string_view value_bytes, Expiry expiry,
                     Expiry now, bool borrow) {
        if (expiries_.note_passed(expiry, now)) return queue_erase(changes, key_bytes, borrow);
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
    static bool insert_entry(Inserter& inserter, const snapshot::Entry& entry) {
        if constexpr (std::is_same_v<K, std::string>) {
            return insert_value(inserter, entry.key, entry);
        } else {
            K key{};
            return decode_key(entry.key, key) && insert_value(inserter, std::move(key), entry);
        }
    }

    template <class Inserter, class Key>
    static bool insert_value(Inserter& inserter, Key&& key, const snapshot::Entry& entry) {
        if constexpr (std::is_same_v<V, std::string>) {
            inserter.insert_or_assign(std::forward<Key>(key), Values::make(entry.value, entry.expiry));
        } else {
            Stored stored{};
            if (!Values::decode(entry.value, entry.expiry, stored)) return false;
            inserter.insert_or_assign(std::forward<Key>(key), std::move(stored));
        }
        return true;
    }

    FileSystem& fs_;
    const std::string dir_;
    Map& map_;
    const Expiry now_;
    ExpirySeen& expiries_;
};

}  // namespace kvstore::detail
