// kvstore::ConcurrentMap: a sharded concurrent hash map.
//
// The key space is split into a power-of-two number of shards by the top
// bits of the hash. Each shard owns a std::shared_mutex, an element count and
// a flat open-addressing table (detail/flat_table.hpp) that grows under that
// shard's lock alone. Readers of a shard share its lock; writers take it
// exclusively. Shards are cache-line aligned, so two never share a line.
//
// Access is by value or through a callback that runs under the shard lock;
// there are no iterators into the live table.
//
// Callbacks (visit, update, upsert, erase_if, for_each, for_each_mutable)
// run while a shard lock is held. A callback must not call into the same map:
// re-entering the shard it runs under deadlocks, and reaching another shard
// can deadlock against a thread doing the reverse. Builds with
// KVSTORE_DETECT_REENTRY (the default without NDEBUG) throw std::logic_error
// on re-entry into the same shard instead of deadlocking.
//
// std::string -> std::string maps store each entry as one packed record
// (key and value bytes in one block of the shard's record arena, see
// detail/record_arena.hpp) behind a pointer; their callbacks
// receive std::string_view for keys and read-only values, and a mutating
// callback receives a std::string that is stored back when it returns. Every
// other key and value type lives inline in the table's slots and callbacks
// receive references to it. `key_ref` and `value_ref` name what a callback
// receives.
//
// Exception guarantees: if the hasher, the key comparison, a key or value
// constructor, or an allocation throws, the operation has no effect on the
// map's contents and the map stays valid (strong guarantee; the shard's table
// may already have grown), with one exception: if a callback given
// to update, upsert or for_each_mutable throws after changing an inline value,
// the change stays (basic guarantee; packed values are unchanged). Keys and
// values must be nothrow move constructible.
//
// Why this header is over 600 lines: it is the map's whole public interface
// with its documentation (about two thirds of it) and the few private calls
// every operation shares; the table, the slot layouts, the locks, the arenas,
// LockedKeys and BulkInserter have headers of their own.
#pragma once

#include <kvstore/detail/built_entry.hpp>
#include <kvstore/detail/flat_table.hpp>
#include <kvstore/detail/reentry_check.hpp>
#include <kvstore/detail/shard_lock.hpp>
#include <kvstore/detail/slot_layout.hpp>
#include <kvstore/hash.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace kvstore {

/// Construction parameters of a ConcurrentMap.
struct MapOptions {
    /// Number of shards: a power of two from 1 to 65536, or 0 for
    /// default_shard_count(). In a string map one shard holds at most
    /// 4 GiB of records up to 1 KiB each (an insert past it throws
    /// std::length_error), so a map for more needs more shards.
    std::size_t shards = 0;
    /// Entries to make room for at construction, spread over the shards.
    std::size_t initial_capacity = 0;
    /// In a string map, the bytes of records up to 1 KiB one shard may
    /// hold, checked as it takes memory in spans of 4 to 64 KiB; an insert
    /// past it throws std::length_error. At most (and by default) 4 GiB.
    std::uint64_t max_pooled_bytes_per_shard = std::uint64_t{4} << 30;
};

/// A snapshot of one shard, or of the whole map.
struct ShardStats {
    std::size_t size = 0;          ///< entries
    std::size_t capacity = 0;      ///< slots allocated
    double load_factor = 0.0;      ///< size / capacity (0 when nothing is allocated)
    std::size_t memory_bytes = 0;  ///< table, record arena and large records held by the shard
};

/// Shards for a machine: 16 per hardware thread, at least 64, at most 4096.
inline std::size_t default_shard_count() noexcept {
    const std::size_t wanted = std::clamp<std::size_t>(std::thread::hardware_concurrency() * 16u, 64, 4096);
    std::size_t shards = 1;
    while (shards < wanted) shards *= 2;
    return shards;
}

namespace detail {

template <class T>
inline constexpr bool is_optional_v = false;
template <class T>
inline constexpr bool is_optional_v<std::optional<T>> = true;

template <class T, class = void>
struct is_transparent : std::false_type {};
template <class T>
struct is_transparent<T, std::void_t<typename T::is_transparent>> : std::true_type {};

/// A hasher declares `is_avalanching` (any type but std::false_type) when
/// every output bit depends on every input bit; other hashers are mixed.
template <class T, class = void>
struct is_avalanching : std::false_type {};
template <class T>
struct is_avalanching<T, std::void_t<typename T::is_avalanching>>
    : std::bool_constant<!std::is_same_v<typename T::is_avalanching, std::false_type>> {};

/// MurmurHash3's finaliser: spreads a weak hash over all 64 bits, since
/// shard and bucket are taken from opposite ends of the word.
inline std::uint64_t mix(std::uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

}  // namespace detail

/// A thread-safe hash map from K to V, split into independently locked shards. Access is by copy or through
/// callbacks run under a shard lock, which must not call back into the map; there are no iterators.
template <class K, class V, class Hasher = Hash<K>, class KeyEqual = std::equal_to<>>
class ConcurrentMap {
    using Layout = detail::layout_for<K, V>;
    using Table = detail::FlatTable<Layout>;
    using Slot = typename Layout::Slot;

public:
    using key_type = K;          ///< K
    using mapped_type = V;       ///< V
    using hasher = Hasher;       ///< Hash<K> by default
    using key_equal = KeyEqual;  ///< std::equal_to<> (transparent) by default
    /// What callbacks receive for a key: `const K&`, or std::string_view.
    using key_ref = typename Layout::key_ref;
    /// What read-only callbacks receive for a value: `const V&`, or std::string_view.
    using value_ref = typename Layout::value_ref;

    /// Throws std::invalid_argument when options.shards is not 0 or a power
    /// of two up to 65536.
    explicit ConcurrentMap(MapOptions options = {}, const Hasher& hash = Hasher(), const KeyEqual& equal = KeyEqual())
        : ConcurrentMap(checked_shard_count(options), options, hash, equal) {}

    ConcurrentMap(const ConcurrentMap&) = delete;
    ConcurrentMap& operator=(const ConcurrentMap&) = delete;

    // ---- Writers (exclusive shard lock) ----

    /// Inserts key -> V(args...) if the key is absent. Returns true iff inserted.
    template <class Q, class... Args>
    bool try_emplace(Q&& key, Args&&... args) {
        return insert_or_else(
            key,
            [&](Shard& shard, void* where) {
                Layout::construct(shard.table.memory(), where, std::forward<Q>(key), std::forward<Args>(args)...);
            },
            [](Shard&, Slot&) {});
    }

    /// Inserts key -> value if the key is absent. Returns true iff inserted.
    template <class Q, class M>
    bool insert(Q&& key, M&& value) {
        return try_emplace(std::forward<Q>(key), std::forward<M>(value));
    }

    /// Inserts key -> value, or assigns value to the existing entry.
    /// Returns true iff inserted.
    template <class Q, class M>
    bool insert_or_assign(Q&& key, M&& value) {
        const auto& lookup = lookup_key(key);
        const std::uint64_t hash = hash_of(lookup);
        Shard& shard = shard_for(hash);
        std::unique_lock lock = write_lock(shard, hash);
        return insert_or_assign_locked(shard, hash, lookup, std::forward<Q>(key), std::forward<M>(value));
    }

    /// As insert_or_assign, but calls admit() -> bool under the shard's
    /// exclusive lock once the entry is built and the shard has room for it,
    /// and changes nothing if it returns false: a caller can make the write
    /// conditional on something done in the same critical section (a store
    /// appends its log record there). If building the entry throws (memory,
    /// a shard's limit), admit is not called and nothing changes. Returns
    /// true iff inserted.
    template <class Q, class M, class Admit>
    bool insert_or_assign_if(const Q& key, M&& value, Admit&& admit) {
        const auto& lookup = lookup_key(key);
        const std::uint64_t hash = hash_of(lookup);
        Shard& shard = shard_for(hash);
        std::unique_lock lock = write_lock(shard, hash);
        detail::BuiltEntry<Layout> entry(shard.table.memory());
        entry.build(key, std::forward<M>(value));
        return store_built(shard, hash, lookup, entry, admit).inserted;
    }

    /// Calls decide(current, write) under the key's exclusive lock: `current`
    /// points to the key's value (a value_ref), or is null if the key is
    /// absent. decide may call write(value, admit) once, after which
    /// `current` is not to be read: write builds the entry key -> value
    /// (making room for it), then calls admit() -> bool and stores the entry
    /// only if that returns true, and returns whether it stored. If building
    /// throws, admit is not called and nothing changes; if admit declines or
    /// throws, the entry built is thrown away. Returns what decide returns.
    template <class Q, class Decide>
    decltype(auto) decide_write(const Q& key, Decide&& decide) {
        const auto& lookup = lookup_key(key);
        const std::uint64_t hash = hash_of(lookup);
        Shard& shard = shard_for(hash);
        std::unique_lock lock = write_lock(shard, hash);
        const Slot* slot = shard.table.find(hash, lookup, equal_fn());
        auto write = [&](auto&& value, auto&& admit) {
            detail::BuiltEntry<Layout> entry(shard.table.memory());
            entry.build(key, std::forward<decltype(value)>(value));
            return store_built(shard, hash, lookup, entry, admit).stored;
        };
        detail::CallbackScope scope(&shard);
        if constexpr (std::is_reference_v<value_ref>) {
            return std::forward<Decide>(decide)(slot ? &Layout::value(shard.table.memory(), *slot) : nullptr, write);
        } else {
            std::optional<value_ref> view;
            if (slot != nullptr) view.emplace(Layout::value(shard.table.memory(), *slot));
            return std::forward<Decide>(decide)(view ? &*view : nullptr, write);
        }
    }

    /// Removes the key. Returns true iff it was present.
    template <class Q>
    bool erase(const Q& key) {
        return erase_if(key, [](value_ref) { return true; });
    }

    /// Removes the key if pred(value) returns true. Returns true iff removed.
    template <class Q, class Pred>
    bool erase_if(const Q& key, Pred&& pred) {
        return with_slot_exclusive(key, [&](Shard& shard, std::uint64_t hash, Slot& slot) {
            {
                detail::CallbackScope scope(&shard);
                if (!pred(Layout::value(shard.table.memory(), slot))) return false;
            }
            shard.table.erase(hash, slot);
            shard.count.store(shard.table.size(), std::memory_order_relaxed);
            return true;
        });
    }

    /// Calls f(V&) on the key's value under the exclusive lock. Returns true
    /// iff the key was present.
    template <class Q, class F>
    bool update(const Q& key, F&& f) {
        return with_slot_exclusive(key, [&](Shard& shard, std::uint64_t, Slot& slot) {
            detail::CallbackScope scope(&shard);
            Layout::modify(shard.table.memory(), slot, std::forward<F>(f));
            return true;
        });
    }

    /// If the key is present calls f(V&) on its value, else inserts
    /// key -> make(). make() may instead return a std::optional, and decline
    /// with std::nullopt: nothing is inserted then. Returns true iff inserted.
    template <class Q, class F, class Make>
    bool upsert(Q&& key, F&& f, Make&& make) {
        using Made = std::decay_t<std::invoke_result_t<Make>>;
        // A V that is itself a std::optional is a value to insert, never a refusal.
        constexpr bool kMayDecline = detail::is_optional_v<Made> && !std::is_same_v<Made, V>;
        return insert_or_else(
            key,
            [&](Shard& shard, void* where) {
                detail::CallbackScope scope(&shard);
                if constexpr (kMayDecline) {
                    auto made = std::forward<Make>(make)();
                    if (!made) return false;
                    Layout::construct(shard.table.memory(), where, std::forward<Q>(key), std::move(*made));
                    return true;
                } else {
                    Layout::construct(shard.table.memory(), where, std::forward<Q>(key), std::forward<Make>(make)());
                }
            },
            [&](Shard& shard, Slot& slot) {
                detail::CallbackScope scope(&shard);
                Layout::modify(shard.table.memory(), slot, std::forward<F>(f));
            });
    }

    // Exclusive access to the keys with_keys_locked locked (kvstore/locked_keys.hpp).
    class LockedKeys;
    // Fills the map from one thread, a shard's lock held across keys (kvstore/bulk_inserter.hpp).
    class BulkInserter;
    // Changes to locked keys built first and stored later, all at once (kvstore/staged_writes.hpp).
    class StagedWrites;

    /// Locks the shards of every key in `keys` exclusively, in shard order
    /// (so that concurrent callers cannot deadlock), calls f(LockedKeys&)
    /// and unlocks: other threads see all of f's changes or none of them.
    /// f may change only those keys, through the LockedKeys, and must not
    /// call the map. Returns what f returns.
    template <class Range, class F>
    decltype(auto) with_keys_locked(const Range& keys, F&& f) {
        std::vector<std::size_t> shards;
        for (const auto& key : keys) shards.push_back(shard_index(hash_of(lookup_key(key))));
        std::sort(shards.begin(), shards.end());
        shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
        std::vector<std::unique_lock<std::shared_mutex>> locks;
        locks.reserve(shards.size());
        for (const std::size_t index : shards) locks.push_back(write_lock(shards_[index]));
        LockedKeys locked(*this, shards);
        return std::forward<F>(f)(locked);
    }

    /// Locks every shard exclusively (in order) and calls f(LockedKeys&),
    /// through which any key may be changed with no further locking: for
    /// loading a map in bulk, or replacing its contents so that other threads
    /// see the old contents or the new, never a mix. f must not call the map.
    /// Returns what f returns.
    template <class F>
    decltype(auto) with_all_locked(F&& f) {
        std::vector<std::unique_lock<std::shared_mutex>> locks;
        locks.reserve(shard_count());
        for (std::size_t i = 0; i < shard_count(); ++i) locks.push_back(write_lock(shards_[i]));
        return without_locks(std::forward<F>(f));
    }

    /// Calls f(LockedKeys&) over every shard without taking any lock: for
    /// filling a map that no other thread can reach yet (a store recovering
    /// before its open returns), where a lock per entry, or every shard's
    /// lock held at once, buys nothing. REQUIRES: no other thread uses the
    /// map meanwhile; otherwise it is a data race. Returns what f returns.
    template <class F>
    decltype(auto) without_locks(F&& f) {
        std::vector<std::size_t> shards(shard_count());
        for (std::size_t i = 0; i < shard_count(); ++i) shards[i] = i;
        LockedKeys all(*this, shards);
        return std::forward<F>(f)(all);
    }

    /// Locks every shard exclusively (in order), calls f(), and if it
    /// returns true removes every entry, before unlocking: other threads see
    /// the map as it was or empty, never half cleared. Returns f's result.
    template <class F>
    bool clear_if(F&& f) {
        std::vector<std::unique_lock<std::shared_mutex>> locks;
        locks.reserve(shard_count());
        for (std::size_t i = 0; i < shard_count(); ++i) locks.push_back(write_lock(shards_[i]));
        if (!std::forward<F>(f)()) return false;
        for (std::size_t i = 0; i < shard_count(); ++i) {
            shards_[i].table.clear();
            shards_[i].count.store(0, std::memory_order_relaxed);
        }
        return true;
    }

    /// Removes every entry and frees the shards' tables, one shard at a time.
    /// Packed records' memory stays with each shard for reuse; it returns to
    /// the system when the map is destroyed.
    void clear() {
        for (std::size_t i = 0; i < shard_count(); ++i) {
            Shard& shard = shards_[i];
            std::unique_lock lock = write_lock(shard);
            shard.table.clear();
            shard.count.store(0, std::memory_order_relaxed);
        }
    }

    /// Makes room for `count` entries in total, so that inserting them does
    /// not grow a shard (with high probability: keys spread randomly).
    void reserve(std::size_t count) {
        if (count == 0) return;
        const std::size_t per_shard = reserve_per_shard(count);
        for (std::size_t i = 0; i < shard_count(); ++i) {
            Shard& shard = shards_[i];
            std::unique_lock lock = write_lock(shard);
            shard.table.reserve(per_shard, slot_hash_fn(shard));
        }
    }

    // ---- Readers (shared shard lock) ----

    /// A copy of the key's value, or std::nullopt.
    template <class Q>
    std::optional<V> get(const Q& key) const {
        std::optional<V> result;
        visit(key, [&](value_ref value) { result.emplace(value); });
        return result;
    }

    /// Copies the key's value into `out` (reusing its storage where V allows).
    /// Returns true iff the key was present; `out` is untouched otherwise.
    template <class Q>
    bool find(const Q& key, V& out) const {
        return visit(key, [&](value_ref value) { copy_into(out, value); });
    }

    /// True iff the key is present (taken under the shared lock).
    template <class Q>
    bool contains(const Q& key) const {
        return visit(key, [](value_ref) {});
    }

    /// Starts loading the bucket `key` maps to, without a lock, and returns
    /// at once. A caller that knows its next keys (a bulk load, a batch)
    /// issues this a few operations ahead, so that their cache misses
    /// overlap instead of each operation waiting for its own.
    template <class Q>
    void prefetch(const Q& key) const {
        prefetch_hashed(key_hash(key));
    }

    /// The 64-bit hash by which the map places `key`: computed once, it can
    /// be handed to prefetch_hashed and to LockedKeys' *_hashed calls, or
    /// computed on one thread for another that does the insert.
    template <class Q>
    std::uint64_t key_hash(const Q& key) const {
        return hash_of(lookup_key(key));
    }

    /// As prefetch, for a key whose key_hash is `hash`.
    void prefetch_hashed(std::uint64_t hash) const noexcept { shard_for(hash).table.prefetch(hash); }

    /// Calls f(value_ref) on the key's value under the shared lock. Returns
    /// true iff the key was present.
    template <class Q, class F>
    bool visit(const Q& key, F&& f) const {
        const auto& lookup = lookup_key(key);
        const std::uint64_t hash = hash_of(lookup);
        const Shard& shard = shard_for(hash);
        std::shared_lock lock = read_lock(shard, hash);
        const Slot* slot = shard.table.find(hash, lookup, equal_fn());
        if (slot == nullptr) return false;
        detail::CallbackScope scope(&shard);
        std::forward<F>(f)(Layout::value(shard.table.memory(), *slot));
        return true;
    }

    /// Calls f(key_ref, value_ref) on every entry, one shard at a time under
    /// that shard's shared lock. Each entry is seen once, whole, in the state
    /// of the moment its shard was visited; an entry written concurrently in
    /// a shard not yet visited may or may not be seen.
    template <class F>
    void for_each(F&& f) const {
        for (std::size_t i = 0; i < shard_count(); ++i) for_each_in_shard(i, f);
    }

    /// Calls f(key_ref, value_ref) on every entry of shard `shard_index`
    /// (below shard_count()) under that shard's shared lock, which is all it
    /// holds: work done shard by shard blocks writers of one shard at a time.
    template <class F>
    void for_each_in_shard(std::size_t shard_index, F&& f) const {
        const Shard& shard = shards_[shard_index];
        std::shared_lock lock = read_lock(shard);
        detail::CallbackScope scope(&shard);
        shard.table.for_each([&](const Slot& slot) {
            f(Layout::key(shard.table.memory(), slot), Layout::value(shard.table.memory(), slot));
        });
    }

    /// Calls f(key_ref, V&) on every entry, one shard at a time under that
    /// shard's exclusive lock.
    template <class F>
    void for_each_mutable(F&& f) {
        for (std::size_t i = 0; i < shard_count(); ++i) {
            Shard& shard = shards_[i];
            std::unique_lock lock = write_lock(shard);
            detail::CallbackScope scope(&shard);
            shard.table.for_each([&](Slot& slot) {
                const auto& key = Layout::key(shard.table.memory(), slot);
                Layout::modify(shard.table.memory(), slot, [&](V& value) { f(key, value); });
            });
        }
    }

    /// Entries in the map; reads per-shard counters without locking, so under
    /// concurrent writes it is a moment's approximation.
    std::size_t size() const noexcept {
        std::size_t total = 0;
        for (std::size_t i = 0; i < shard_count(); ++i) total += shards_[i].count.load(std::memory_order_relaxed);
        return total;
    }

    /// size() == 0, with the same approximation under concurrent writes.
    bool empty() const noexcept { return size() == 0; }

    /// Shards in the map: a power of two, fixed at construction.
    std::size_t shard_count() const noexcept { return std::size_t{1} << shard_bits_; }

    /// Figures of one shard, read under its shared lock.
    ShardStats shard_stats(std::size_t shard_index) const {
        if (shard_index >= shard_count())
            throw std::out_of_range("kvstore::ConcurrentMap::shard_stats: shard " + std::to_string(shard_index) +
                                    " does not exist (the map has " + std::to_string(shard_count()) + ")");
        const Shard& shard = shards_[shard_index];
        std::shared_lock lock = read_lock(shard);
        ShardStats stats;
        stats.size = shard.table.size();
        stats.capacity = shard.table.capacity();
        stats.load_factor = load_factor(stats.size, stats.capacity);
        stats.memory_bytes = sizeof(Shard) + shard.table.bucket_bytes() + shard.table.record_bytes();
        return stats;
    }

    /// The sum of all shards' figures (each shard read at its own moment).
    ShardStats stats() const {
        ShardStats total;
        for (std::size_t i = 0; i < shard_count(); ++i) {
            const ShardStats shard = shard_stats(i);
            total.size += shard.size;
            total.capacity += shard.capacity;
            total.memory_bytes += shard.memory_bytes;
        }
        total.load_factor = load_factor(total.size, total.capacity);
        return total;
    }

    /// The hasher given at construction.
    const Hasher& hash_function() const noexcept { return hash_; }
    /// The key comparison given at construction.
    const KeyEqual& key_eq() const noexcept { return equal_; }

private:
    static constexpr std::size_t kMaxShards = std::size_t{1} << 16;
    static constexpr bool kTransparent =
        detail::is_transparent<Hasher>::value && detail::is_transparent<KeyEqual>::value;

    // Three cache lines: the table's read-mostly line, its counters, and the
    // lock with the lock-free element count.
    struct alignas(64) Shard {
        Table table;
        alignas(64) mutable std::shared_mutex mutex;
        std::atomic<std::size_t> count{0};
    };

    static std::size_t checked_shard_count(const MapOptions& options) {
        const std::size_t shards = options.shards == 0 ? default_shard_count() : options.shards;
        if (shards > kMaxShards || (shards & (shards - 1)) != 0)
            throw std::invalid_argument("kvstore::ConcurrentMap: shard count " + std::to_string(shards) +
                                        " is not a power of two between 1 and " + std::to_string(kMaxShards));
        return shards;
    }

    ConcurrentMap(std::size_t shards, const MapOptions& options, const Hasher& hash, const KeyEqual& equal)
        : hash_(hash), equal_(equal), bucket_pool_(shards) {
        while ((std::size_t{1} << shard_bits_) < shards) ++shard_bits_;
        shards_ = std::make_unique<Shard[]>(shards);
        for (std::size_t i = 0; i < shards; ++i) {
            shards_[i].table.memory().use_pool(record_pool_);
            shards_[i].table.memory().limit_pooled_bytes(options.max_pooled_bytes_per_shard);
            shards_[i].table.use_bucket_pool(bucket_pool_);
        }
        reserve(options.initial_capacity);
    }

    static double load_factor(std::size_t size, std::size_t capacity) noexcept {
        return capacity == 0 ? 0.0 : static_cast<double>(size) / static_cast<double>(capacity);
    }

    /// The key to hash and compare: `key` itself when the hasher and key
    /// comparison are transparent (or it already is a K), else a K made from it.
    template <class Q>
    decltype(auto) lookup_key(const Q& key) const {
        if constexpr (kTransparent || std::is_same_v<Q, K>) {
            return (key);
        } else {
            return K(key);
        }
    }

    template <class Q>
    std::uint64_t hash_of(const Q& key) const {
        const auto hash = static_cast<std::uint64_t>(hash_(key));
        if constexpr (detail::is_avalanching<Hasher>::value) {
            return hash;
        } else {
            return detail::mix(hash);
        }
    }

    // A packed table hands out std::string_view keys; a hasher or comparison
    // that only takes a std::string gets one built for it.
    auto slot_hash_fn(const Shard& shard) const {
        return [this, &memory = shard.table.memory()](const Slot& slot) {
            if constexpr (std::is_invocable_v<const Hasher&, key_ref>) {
                return hash_of(Layout::key(memory, slot));
            } else {
                return hash_of(K(Layout::key(memory, slot)));
            }
        };
    }

    auto equal_fn() const {
        return [this](key_ref stored, const auto& key) -> bool {
            if constexpr (std::is_invocable_r_v<bool, const KeyEqual&, key_ref, decltype(key)>) {
                return equal_(stored, key);
            } else {
                return equal_(K(stored), key);
            }
        };
    }

    std::size_t shard_index(std::uint64_t hash) const noexcept {
        // Top bits; the table inside the shard indexes by the low bits.
        return static_cast<std::size_t>((hash >> 32) >> (32 - shard_bits_));
    }

    Shard& shard_for(std::uint64_t hash) const noexcept { return shards_[shard_index(hash)]; }

    std::shared_lock<std::shared_mutex> read_lock(const Shard& shard) const {
        detail::check_not_in_callback(&shard);
        return detail::lock_shared_spinning(shard.mutex);
    }

    std::unique_lock<std::shared_mutex> write_lock(Shard& shard) const {
        detail::check_not_in_callback(&shard);
        return detail::lock_spinning(shard.mutex);
    }

    // For operations on one key: the bucket starts loading before the lock
    // is taken.
    std::shared_lock<std::shared_mutex> read_lock(const Shard& shard, std::uint64_t hash) const {
        shard.table.prefetch(hash);
        return read_lock(shard);
    }

    std::unique_lock<std::shared_mutex> write_lock(Shard& shard, std::uint64_t hash) const {
        shard.table.prefetch(hash);
        return write_lock(shard);
    }

    /// Finds `key` under its shard's exclusive lock and returns
    /// on_found(shard, hash, slot), or false when the key is absent.
    template <class Q, class OnFound>
    bool with_slot_exclusive(const Q& key, OnFound&& on_found) {
        const auto& lookup = lookup_key(key);
        const std::uint64_t hash = hash_of(lookup);
        Shard& shard = shard_for(hash);
        std::unique_lock lock = write_lock(shard, hash);
        Slot* slot = shard.table.find(hash, lookup, equal_fn());
        return slot != nullptr && std::forward<OnFound>(on_found)(shard, hash, *slot);
    }

    /// Under the key's exclusive lock: if the key is absent, inserts the
    /// entry construct(shard, where) builds (a construct returning false
    /// declines, see FlatTable::insert), else calls on_present(shard, slot).
    /// Returns true iff inserted.
    template <class Q, class Construct, class OnPresent>
    bool insert_or_else(const Q& key, Construct&& construct, OnPresent&& on_present) {
        const auto& lookup = lookup_key(key);
        const std::uint64_t hash = hash_of(lookup);
        Shard& shard = shard_for(hash);
        std::unique_lock lock = write_lock(shard, hash);
        return insert_or_else_locked(shard, hash, lookup, construct, on_present);
    }

    /// insert_or_assign, with the shard already locked exclusively.
    template <class Lookup, class Q, class M>
    bool insert_or_assign_locked(Shard& shard, std::uint64_t hash, const Lookup& lookup, Q&& key, M&& value) {
        return insert_or_else_locked(
            shard, hash, lookup,
            [&](Shard& owner, void* where) {
                Layout::construct(owner.table.memory(), where, std::forward<Q>(key), std::forward<M>(value));
            },
            [&](Shard& owner, Slot& slot) { Layout::assign(owner.table.memory(), slot, std::forward<M>(value)); });
    }

    struct Stored {
        bool stored;    // the entry is in the table
        bool inserted;  // as a new key
    };

    /// Stores `entry` (built for the key `lookup`, hashing to `hash`) if
    /// admit() returns true, called once the shard has room for it; with
    /// the shard locked exclusively.
    template <class Lookup, class Admit>
    Stored store_built(Shard& shard, std::uint64_t hash, const Lookup& lookup, detail::BuiltEntry<Layout>& entry,
                       Admit& admit) {
        bool admitted = false;
        const bool inserted = insert_or_else_locked(
            shard, hash, lookup,
            [&](Shard&, void* where) {
                admitted = admit();
                if (admitted) entry.place(where);
                return admitted;
            },
            [&](Shard&, Slot& slot) {
                admitted = admit();
                if (admitted) entry.replace(slot);
            });
        return {admitted, inserted};
    }

    /// insert_or_else, with the shard already locked exclusively.
    template <class Lookup, class Construct, class OnPresent>
    bool insert_or_else_locked(Shard& shard, std::uint64_t hash, const Lookup& lookup, Construct&& construct,
                               OnPresent&& on_present) {
        const auto [slot, inserted] =
            shard.table.insert(hash, lookup, equal_fn(), slot_hash_fn(shard),
                               [&](void* where) { return construct(shard, where); });
        if (inserted) {
            shard.count.store(shard.table.size(), std::memory_order_relaxed);
        } else if (slot != nullptr) {
            on_present(shard, *slot);
        }
        return inserted;
    }

    // Room per shard for `count` entries spread randomly over the shards:
    // the mean plus four standard deviations.
    std::size_t reserve_per_shard(std::size_t count) const {
        const double mean = static_cast<double>(count) / static_cast<double>(shard_count());
        return static_cast<std::size_t>(mean + 4.0 * std::sqrt(mean) + 1.0);
    }

    static void copy_into(V& out, value_ref value) {
        if constexpr (std::is_same_v<value_ref, std::string_view>) {
            out.assign(value.data(), value.size());
        } else {
            out = value;
        }
    }

    Hasher hash_;
    KeyEqual equal_;
    unsigned shard_bits_ = 0;
    // Declared before the shards, so that they outlive their records and tables.
    typename Layout::Pool record_pool_;
    detail::BucketArrayPool bucket_pool_;
    std::unique_ptr<Shard[]> shards_;
};

}  // namespace kvstore

#include <kvstore/bulk_inserter.hpp>
#include <kvstore/locked_keys.hpp>
#include <kvstore/staged_writes.hpp>
