// LoggedMap: a Store's map as the Store's calls see it. A read skips an
// expired entry (and removes it); a write appends its record to the log
// inside the shard's critical section that applies it, so the log's order is
// the order of the changes. The change's entry is built (and its shard grown)
// before the record is appended (detail/built_entry.hpp): a change the map
// cannot hold throws with nothing logged and nothing changed. A write
// returns its record's LSN without waiting for it: committing, and deferring
// commits, is the Store's.
#pragma once

#include <kvstore/detail/encoded.hpp>
#include <kvstore/detail/expiring_value.hpp>
#include <kvstore/durability.hpp>
#include <kvstore/status.hpp>
#include <kvstore/store_options.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kvstore::detail {

// What a write did to the log: the append's Status, and the LSN of its
// record (0 if it wrote none).
struct Logged {
    Status status;
    Lsn lsn = 0;
};

// K, V: the Store's types; Map: its ConcurrentMap of ExpiringValue<V>::Stored;
// Log: its Durability policy; CopyCursor: what a change to several shards
// goes through (Checkpointer::CopyCursor).
template <class K, class V, class Map, class Log, class CopyCursor>
class LoggedMap {
    using Values = ExpiringValue<V>;

public:
    // Every argument must outlive it; `log` may be opened after it is made.
    LoggedMap(Map& map, const std::unique_ptr<Log>& log, const CopyCursor& copy_cursor, const ExpiryClock& clock,
              ExpirySeen& expiries, const StoreOptions& options)
        : map_(map), log_(log), copy_cursor_(copy_cursor), clock_(clock), expiries_(expiries), options_(options) {}

    // Why `key` (and `*value`, unless null) may not be stored, if they exceed
    // max_key_size or max_value_size encoded.
    template <class Q, class M>
    Status check_sizes(const Q& key, const M* value) const {
        const std::size_t key_size = encoded_size(as_stored<K>(key));
        if (Status status = check_limit("key", key_size, options_.max_key_size, "max_key_size"); !status)
            return status;
        if (value == nullptr) return Status::ok();
        const std::size_t value_size = encoded_size(as_stored<V>(*value));
        return check_limit("value", value_size, options_.max_value_size, "max_value_size");
    }

    // ---- Reads ----

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
        if (found_expired) erase_if_expired(key, clock_.now());
        return found && !found_expired;
    }

    // Calls f(key, value) on every live entry of shard `shard`, under its shared lock.
    template <class F>
    void for_each_in_shard(std::size_t shard, F&& f) const {
        const Expiry now = clock_.now();
        map_.for_each_in_shard(shard, [&](const auto& key, const auto& stored) {
            if (!expired_at(stored, now)) f(key, Values::value(stored));
        });
    }

    // Removes every expired key, a shard at a time (see Store::remove_expired).
    std::size_t remove_expired() const {
        std::size_t removed = 0;
        std::vector<K> expired;
        for (std::size_t shard = 0; shard < map_.shard_count(); ++shard) {
            const Expiry now = clock_.now();
            expired.clear();
            map_.for_each_in_shard(shard, [&](const auto& key, const auto& stored) {
                if (expired_at(stored, now)) expired.emplace_back(key);
            });
            for (const K& key : expired)
                if (erase_if_expired(key, now)) ++removed;
        }
        return removed;
    }

    // Expired keys removed so far.
    std::uint64_t expired_count() const noexcept { return expired_.load(std::memory_order_relaxed); }

    // ---- Writes: sizes are checked by the caller ----

    // Sets `key` to `value`, expiring at `expiry`.
    template <class Q, class M>
    Logged put(const Q& key, const M& value, Expiry expiry) {
        Logged logged;
        expiries_.note(expiry);
        map_.insert_or_assign_if(key, Values::make(value, expiry), [&] { return log_put(key, value, expiry, logged); });
        return logged;
    }

    // Removes `key` if live; `erased` (if not null) says whether it was.
    template <class Q>
    Logged erase(const Q& key, bool* erased) {
        Logged logged;
        bool live = false;
        const Expiry now = clock_.now();
        const bool removed = map_.erase_if(key, [&](const auto& stored) {
            if (expired_at(stored, now)) return true;
            live = log_erase(key, logged);
            return live;
        });
        if (removed && !live) expired_.fetch_add(1, std::memory_order_relaxed);
        if (erased != nullptr) *erased = live;
        return logged;
    }

    // Sets `key` to `value` if it is absent or expired; `inserted` says whether it did.
    template <class Q, class M>
    Logged put_if_absent(const Q& key, const M& value, Expiry expiry, bool& inserted) {
        Logged logged;
        inserted = false;
        expiries_.note(expiry);
        map_.decide_write(key, [&](const auto* current, auto&& write) {
            if (current != nullptr && !expired(*current)) return;
            inserted = write(Values::make(value, expiry), [&] { return log_put(key, value, expiry, logged); });
        });
        return logged;
    }

    // Calls change(value, expiry, store_value) under the exclusive lock if
    // the key is live; store_value(new_value, new_expiry), called once at
    // most, logs and stores it and returns whether it did.
    template <class Q, class Change>
    Logged change_live(const Q& key, Change&& change) {
        Logged logged;
        map_.decide_write(key, [&](const auto* current, auto&& write) {
            if (current == nullptr || expired(*current)) return;
            auto store_value = [&](const auto& value, Expiry expiry) {
                if (!write(Values::make(value, expiry), [&] { return log_put(key, value, expiry, logged); }))
                    return false;
                expiries_.note(expiry);
                return true;
            };
            change(Values::value(*current), Values::expiry(*current), store_value);
        });
        return logged;
    }

    // Removes every entry, logged as one record.
    Logged clear() {
        Logged logged;
        copy_cursor_.apply_whole([&](auto copy_between) {
            map_.clear_if([&] {
                if (copy_between(0, map_.shard_count() - 1)) return false;
                return append([](auto&& to_log) { return to_log(LogOperation{LogRecordType::kClear, {}, {}, 0}); },
                              logged);
            });
        });
        return logged;
    }

    // Puts (values[i] set, expiring at expiries[i] if not kNoExpiry) and
    // erases as one log record, with the shards of all keys locked together.
    Logged write_entries(const std::vector<K>& keys, const std::vector<std::optional<V>>& values,
                         const std::vector<Expiry>& expiries) {
        return write_locked(keys, [](auto&) { return true; }, keys, values, expiries);
    }

    // Locks the shards of lock_keys together and calls stage(locked), which
    // may fill keys, values and expiries from what it reads there (keys
    // within lock_keys, sizes checked) and returns false to write nothing;
    // then logs those entries as one record and applies them. stage runs
    // once: a copy between the shards that must be waited out (see
    // Checkpointer) is waited out before it.
    template <class Stage>
    Logged write_locked(const std::vector<K>& lock_keys, Stage&& stage, const std::vector<K>& keys,
                        const std::vector<std::optional<V>>& values, const std::vector<Expiry>& expiries) {
        Logged logged;
        if (lock_keys.empty()) return logged;
        copy_cursor_.apply_whole([&](auto copy_between) {
            map_.with_keys_locked(lock_keys, [&](auto& locked) {
                const auto shards = locked.shards();
                if (copy_between(*shards.begin(), shards.end()[-1])) return;
                if (!stage(locked) || keys.empty()) return;
                // Every entry is built before the record is appended, so a
                // batch the map cannot hold is never logged.
                typename Map::StagedWrites staged(locked);
                std::string scratch;
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    if (values[i]) {
                        staged.put(keys[i], stored_form(*values[i], expiries[i], scratch));
                    } else {
                        staged.erase(keys[i]);
                    }
                }
                const bool appended = append(
                    [&](auto&& to_log) {
                        std::vector<std::string> encoded;
                        return to_log(batch_operations(keys, values, expiries, encoded));
                    },
                    logged);
                if (!appended) return;
                staged.store();
                for (std::size_t i = 0; i < keys.size(); ++i)
                    if (values[i]) expiries_.note(expiries[i]);
            });
        });
        return logged;
    }

private:
    static Status check_limit(const char* what, std::size_t size, std::size_t limit, const char* option) {
        return size <= limit ? Status::ok() : over_limit(what, size, limit, option);
    }

    // Apart from check_limit, so that the check inlines into every write.
    static Status over_limit(const char* what, std::size_t size, std::size_t limit, const char* option) {
        return Status::invalid_argument(std::string(what) + " of " + std::to_string(size) + " bytes exceeds " + option +
                                        " " + std::to_string(limit));
    }

    template <class S>
    static bool expired_at(const S& stored, Expiry now) noexcept {
        return deadline_passed(Values::expiry(stored), now);
    }

    // The clock is read only for keys that have an expiry.
    template <class S>
    bool expired(const S& stored) const {
        return Values::expiry(stored) != kNoExpiry && expired_at(stored, clock_.now());
    }

    // Removes the key if it is still expired at `now` (it may have been
    // rewritten since it was seen expired), counting it. Unlogged: the key's
    // own record says when it ends, so replaying it after then removes it.
    template <class Q>
    bool erase_if_expired(const Q& key, Expiry now) const {
        if (!map_.erase_if(key, [&](const auto& stored) { return expired_at(stored, now); })) return false;
        expired_.fetch_add(1, std::memory_order_relaxed);
        return true;
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

    // A batch's operations, viewing bytes it encodes into `encoded`, which must outlive them.
    static std::vector<LogOperation> batch_operations(const std::vector<K>& keys,
                                                      const std::vector<std::optional<V>>& values,
                                                      const std::vector<Expiry>& expiries,
                                                      std::vector<std::string>& encoded) {
        encoded.assign(2 * keys.size(), std::string());
        std::vector<LogOperation> ops(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            ops[i].type = !values[i]                 ? LogRecordType::kErase
                          : expiries[i] == kNoExpiry ? LogRecordType::kPut
                                                     : LogRecordType::kPutExpiring;
            ops[i].key = encoded_bytes(keys[i], encoded[2 * i]);
            if (values[i]) ops[i].value = encoded_bytes(*values[i], encoded[2 * i + 1]);
            ops[i].expiry = expiries[i];
        }
        return ops;
    }

    template <class Q, class M>
    bool log_put(const Q& key, const M& value, Expiry expiry, Logged& logged) {
        return append(
            [&](auto&& to_log) {
                std::string key_scratch;
                std::string value_scratch;
                return to_log(LogOperation{expiry == kNoExpiry ? LogRecordType::kPut : LogRecordType::kPutExpiring,
                                           encoded_bytes(as_stored<K>(key), key_scratch),
                                           encoded_bytes(as_stored<V>(value), value_scratch), expiry});
            },
            logged);
    }

    template <class Q>
    bool log_erase(const Q& key, Logged& logged) {
        return append(
            [&](auto&& to_log) {
                std::string scratch;
                return to_log(LogOperation{LogRecordType::kErase, encoded_bytes(as_stored<K>(key), scratch), {}, 0});
            },
            logged);
    }

    // Calls build(to_log), which builds a LogOperation, or a batch of them
    // as one record, and returns to_log(it): the bytes it views live as long
    // as build's scope. Under a policy that keeps no records build is not
    // called, so no key or value is converted or encoded for it. Returns
    // whether the append succeeded.
    template <class Build>
    bool append(Build&& build, Logged& logged) {
        if constexpr (Log::kKeepsRecords) {
            logged.status = build([&](const auto& made) {
                if constexpr (std::is_same_v<std::decay_t<decltype(made)>, LogOperation>) {
                    return log_->append(made, logged.lsn);
                } else {
                    return log_->append_batch(made, logged.lsn);
                }
            });
            return logged.status.is_ok();
        } else {
            (void)build;
            return true;
        }
    }

    Map& map_;
    const std::unique_ptr<Log>& log_;
    const CopyCursor& copy_cursor_;
    const ExpiryClock& clock_;
    ExpirySeen& expiries_;
    const StoreOptions& options_;
    mutable std::atomic<std::uint64_t> expired_{0};
};

}  // namespace kvstore::detail
