// kvstore::WriteBatch: puts and erases that Store::write applies as one.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace kvstore {

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

}  // namespace kvstore
