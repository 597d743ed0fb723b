// kvstore::ConcurrentMap::LockedKeys: what with_keys_locked's callback
// changes the locked keys through (and a store's recovery fills the map
// through). Included by kvstore/concurrent_map.hpp, after the map.
#pragma once

#include <kvstore/concurrent_map.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace kvstore {

/// Exclusive access to the entries of the keys given to
/// with_keys_locked, for its callback only: other keys' shards may not
/// be locked (the debug build checks).
template <class K, class V, class Hasher, class KeyEqual>
class ConcurrentMap<K, V, Hasher, KeyEqual>::LockedKeys {
public:
    /// As ConcurrentMap::insert_or_assign.
    template <class Q, class M>
    bool insert_or_assign(Q&& key, M&& value) {
        return insert_or_assign_hashed(map_.key_hash(key), std::forward<Q>(key), std::forward<M>(value));
    }

    /// As insert_or_assign, for a key whose ConcurrentMap::key_hash is
    /// `hash` (the debug build checks).
    template <class Q, class M>
    bool insert_or_assign_hashed(std::uint64_t hash, Q&& key, M&& value) {
        const auto& lookup = map_.lookup_key(key);
        return map_.insert_or_assign_locked(locked_shard(hash, lookup), hash, lookup, std::forward<Q>(key),
                                            std::forward<M>(value));
    }

    /// As ConcurrentMap::prefetch.
    template <class Q>
    void prefetch(const Q& key) const {
        map_.prefetch(key);
    }

    /// As ConcurrentMap::prefetch_hashed.
    void prefetch_hashed(std::uint64_t hash) const noexcept { map_.prefetch_hashed(hash); }

    /// As ConcurrentMap::erase.
    template <class Q>
    bool erase(const Q& key) {
        return erase_hashed(map_.key_hash(key), key);
    }

    /// As erase, for a key whose ConcurrentMap::key_hash is `hash` (the
    /// debug build checks).
    template <class Q>
    bool erase_hashed(std::uint64_t hash, const Q& key) {
        const auto& lookup = map_.lookup_key(key);
        Shard& shard = locked_shard(hash, lookup);
        Slot* slot = shard.table.find(hash, lookup, map_.equal_fn());
        if (slot == nullptr) return false;
        shard.table.erase(hash, *slot);
        shard.count.store(shard.table.size(), std::memory_order_relaxed);
        return true;
    }

    /// As ConcurrentMap::visit, under the lock already held: calls
    /// f(value_ref) if the key is there and returns whether it was.
    template <class Q, class F>
    bool visit(const Q& key, F&& f) {
        const std::uint64_t hash = map_.key_hash(key);
        const auto& lookup = map_.lookup_key(key);
        Shard& shard = locked_shard(hash, lookup);
        Slot* slot = shard.table.find(hash, lookup, map_.equal_fn());
        if (slot == nullptr) return false;
        std::forward<F>(f)(Layout::value(shard.table.memory(), *slot));
        return true;
    }

    /// Removes every entry of the locked shards.
    void clear() {
        for (const std::size_t index : shards()) {
            map_.shards_[index].table.clear();
            map_.shards_[index].count.store(0, std::memory_order_relaxed);
        }
    }

    /// As ConcurrentMap::reserve, for the locked shards' share of `count`.
    void reserve(std::size_t count) {
        if (count == 0) return;
        const std::size_t per_shard = map_.reserve_per_shard(count);
        for (const std::size_t index : shards()) {
            Shard& shard = map_.shards_[index];
            shard.table.reserve(per_shard, map_.slot_hash_fn(shard));
        }
    }

    /// Whether the key whose ConcurrentMap::key_hash is `hash` lies in
    /// one of the shards this object holds.
    bool holds(std::uint64_t hash) const { return holds_shard(map_.shard_index(hash)); }

    /// Divides the shards held between two LockedKeys, the first taking
    /// `count` of them (or all if there are fewer), so that two threads
    /// can fill the map at once, each through its own and only with the
    /// keys it holds(). Both are valid as long as this one is.
    std::pair<LockedKeys, LockedKeys> split(std::size_t count) const {
        const std::size_t* middle = first_ + std::min<std::size_t>(count, static_cast<std::size_t>(last_ - first_));
        return {LockedKeys(map_, first_, middle), LockedKeys(map_, middle, last_)};
    }

    /// The indices of the shards held, ascending.
    struct ShardRange {
        const std::size_t* first;                                    ///< the lowest index
        const std::size_t* last;                                     ///< one past the highest
        const std::size_t* begin() const noexcept { return first; }  ///< the lowest index
        const std::size_t* end() const noexcept { return last; }     ///< one past the highest
    };
    /// The indices of the shards held, ascending.
    ShardRange shards() const noexcept { return {first_, last_}; }

private:
    friend class ConcurrentMap;
    friend class StagedWrites;
    LockedKeys(ConcurrentMap& map, const std::vector<std::size_t>& shards)
        : LockedKeys(map, shards.data(), shards.data() + shards.size()) {}
    LockedKeys(ConcurrentMap& map, const std::size_t* first, const std::size_t* last)
        : map_(map),
          first_(first),
          last_(last),
          contiguous_(first != last && last[-1] - first[0] == static_cast<std::size_t>(last - first) - 1) {}

    template <class Lookup>
    Shard& locked_shard(std::uint64_t hash, const Lookup& lookup) {
#ifndef NDEBUG
        if (hash != map_.hash_of(lookup))
            throw std::logic_error("kvstore::ConcurrentMap: a hash that is not the key's key_hash");
#else
        (void)lookup;
#endif
        const std::size_t index = map_.shard_index(hash);
        if (!holds_shard(index)) throw std::logic_error("kvstore::ConcurrentMap: a key outside the shards held");
        return map_.shards_[index];
    }

    bool holds_shard(std::size_t index) const {
        if (contiguous_) return index - *first_ < static_cast<std::size_t>(last_ - first_);
        return std::binary_search(first_, last_, index);
    }

    ConcurrentMap& map_;
    const std::size_t* first_;  // the indices of the shards held, ascending
    const std::size_t* last_;
    bool contiguous_;  // first_[0], first_[0] + 1, ...: holds() needs no search
};

}  // namespace kvstore
