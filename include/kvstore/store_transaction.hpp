// kvstore::Store::Transaction: what Store::transact's callback reads and
// writes through. Included by kvstore/store.hpp, after the Store it belongs to.
#pragma once

#include <kvstore/store.hpp>

#include <cstddef>
#include <limits>
#include <optional>
#include <vector>

namespace kvstore {

/// What Store::transact's callback reads and writes through: the live
/// values of the keys the transaction locked, with the writes it has
/// staged already applied, and the writes it stages.
template <class K, class V, class Durability, class Hasher, class KeyEqual>
class Store<K, V, Durability, Hasher, KeyEqual>::Transaction {
public:
    /// Copies the key's value into `out` (and its expiry into `expiry`,
    /// if given: nothing if it never expires); false if it is absent or
    /// expired.
    template <class Q>
    bool find(const Q& key, V& out, std::optional<TimePoint>* expiry = nullptr) {
        if (const std::size_t i = staged_index(key); i != kNotStaged) {
            if (!values_[i] || detail::deadline_passed(expiries_[i], now_)) return false;
            out = *values_[i];
            if (expiry != nullptr) *expiry = detail::time_point_of(expiries_[i]);
            return true;
        }
        bool live = false;
        locked_->visit(key, [&](const auto& stored) {
            if (detail::deadline_passed(Values::expiry(stored), now_)) return;
            live = true;
            const auto& value = Values::value(stored);
            if constexpr (std::is_same_v<V, std::string>) {
                out.assign(value.data(), value.size());
            } else {
                out = value;
            }
            if (expiry != nullptr) *expiry = detail::time_point_of(Values::expiry(stored));
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
        if (Status status = store_.entries_.check_sizes(key, &value); !status) return status;
        const Expiry at = expiry ? detail::expiry_of(*expiry) : kNoExpiry;
        if (detail::deadline_passed(at, now_)) {
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
    TimePoint now() const { return *detail::time_point_of(now_); }

private:
    friend class Store;
    static constexpr std::size_t kNotStaged = std::numeric_limits<std::size_t>::max();
    explicit Transaction(const Store& store) : store_(store), now_(store.clock_.now()) {}

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
        keys_.emplace_back(detail::as_stored<K>(key));
        values_.push_back(std::move(value));
        expiries_.push_back(expiry);
    }

    const Store& store_;
    Expiry now_;
    typename Map::LockedKeys* locked_ = nullptr;
    std::vector<K> keys_;
    std::vector<std::optional<V>> values_;
    std::vector<Expiry> expiries_;
};

}  // namespace kvstore
