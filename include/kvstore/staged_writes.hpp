// kvstore::ConcurrentMap::StagedWrites: changes to the keys a LockedKeys
// holds, built first and stored later, all at once. Included by
// kvstore/concurrent_map.hpp, after the map.
#pragma once

#include <kvstore/concurrent_map.hpp>
#include <kvstore/detail/built_entry.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace kvstore {

/// A set of puts and erases of locked keys in two steps: put() and erase()
/// build each entry and make room for it in its shard, and may throw
/// (memory, a shard's limit) leaving the map's entries unchanged; store()
/// then applies them all in order and cannot fail. A store appends a batch's
/// log record between the two, so that a batch the map cannot hold is never
/// logged. Whatever is not stored is thrown away with this object, which
/// must not outlive the LockedKeys it was made from.
template <class K, class V, class Hasher, class KeyEqual>
class ConcurrentMap<K, V, Hasher, KeyEqual>::StagedWrites {
public:
    /// Changes to keys that `locked` holds, none staged yet.
    explicit StagedWrites(LockedKeys& locked) : locked_(locked) {}
    StagedWrites(const StagedWrites&) = delete;
    StagedWrites& operator=(const StagedWrites&) = delete;

    /// Stages key -> value. REQUIRES: `key` is held by the LockedKeys and
    /// outlives store().
    template <class M>
    void put(const K& key, M&& value) {
        Change change = locate(key);
        change.entry.build(key, std::forward<M>(value));
        make_room(change);
        changes_.push_back(std::move(change));
    }

    /// Stages the removal of `key`. REQUIRES: as put.
    void erase(const K& key) { changes_.push_back(locate(key)); }

    /// Applies every staged change, in the order staged.
    void store() noexcept {
        ConcurrentMap& map = locked_.map_;
        auto admit = [] { return true; };
        for (Change& change : changes_) {
            if (change.entry.holds()) {
                (void)map.store_built(*change.shard, change.hash, map.lookup_key(*change.key), change.entry, admit);
            } else {
                (void)locked_.erase_hashed(change.hash, *change.key);
            }
        }
        changes_.clear();
    }

private:
    struct Change {
        const K* key;
        std::uint64_t hash;
        Shard* shard;
        detail::BuiltEntry<Layout> entry;
    };

    Change locate(const K& key) {
        ConcurrentMap& map = locked_.map_;
        const std::uint64_t hash = map.key_hash(key);
        Shard& shard = locked_.locked_shard(hash, map.lookup_key(key));
        return Change{&key, hash, &shard, detail::BuiltEntry<Layout>(shard.table.memory())};
    }

    // Grows the change's shard, if need be, so that every key staged for it
    // that is not there yet can be inserted without growing it in store();
    // a key staged twice is counted twice, which only errs on the safe side.
    void make_room(const Change& change) {
        ConcurrentMap& map = locked_.map_;
        const auto& lookup = map.lookup_key(*change.key);
        if (change.shard->table.find(change.hash, lookup, map.equal_fn()) != nullptr) return;
        auto counted = std::find_if(new_keys_.begin(), new_keys_.end(),
                                    [&](const auto& shard_count) { return shard_count.first == change.shard; });
        if (counted == new_keys_.end()) counted = new_keys_.insert(counted, {change.shard, 0});
        change.shard->table.reserve(change.shard->table.size() + counted->second + 1, map.slot_hash_fn(*change.shard));
        ++counted->second;
    }

    LockedKeys& locked_;
    std::vector<Change> changes_;
    std::vector<std::pair<Shard*, std::size_t>> new_keys_;  // per shard: keys staged that it may have to insert
};

}  // namespace kvstore
