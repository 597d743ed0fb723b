// kvstore::ConcurrentMap::BulkInserter: fills a map from one thread, holding
// a shard's lock across consecutive keys of that shard. Included by
// kvstore/concurrent_map.hpp, after the map.
#pragma once

#include <kvstore/concurrent_map.hpp>

#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <utility>

namespace kvstore {

/// Inserts or assigns entries from one thread, keeping the exclusive
/// lock of the last key's shard until a key of another shard comes or
/// the inserter is destroyed. Keys that come grouped by shard (a store's
/// snapshot is written shard by shard) then take each lock once rather
/// than once per key, and inserters on several threads fill one map
/// together. It holds one lock at most, and releases it before taking
/// another, so inserters cannot deadlock one another; but the thread
/// that owns one must not call the map on the held shard meanwhile.
template <class K, class V, class Hasher, class KeyEqual>
class ConcurrentMap<K, V, Hasher, KeyEqual>::BulkInserter {
public:
    /// An inserter into `map`, holding no lock yet.
    explicit BulkInserter(ConcurrentMap& map) : map_(map) {}
    BulkInserter(const BulkInserter&) = delete;
    BulkInserter& operator=(const BulkInserter&) = delete;

    /// As ConcurrentMap::insert_or_assign.
    template <class Q, class M>
    bool insert_or_assign(Q&& key, M&& value) {
        const auto& lookup = map_.lookup_key(key);
        const std::uint64_t hash = map_.hash_of(lookup);
        Shard& shard = map_.shard_for(hash);
        if (!lock_.owns_lock() || lock_.mutex() != &shard.mutex) {
            release();
            lock_ = map_.write_lock(shard);
        }
        return map_.insert_or_assign_locked(shard, hash, lookup, std::forward<Q>(key), std::forward<M>(value));
    }

    /// As ConcurrentMap::prefetch.
    template <class Q>
    void prefetch(const Q& key) const {
        map_.prefetch(key);
    }

    /// Unlocks the shard held, if any.
    void release() {
        if (lock_.owns_lock()) lock_.unlock();
    }

private:
    ConcurrentMap& map_;
    std::unique_lock<std::shared_mutex> lock_;
};

}  // namespace kvstore
