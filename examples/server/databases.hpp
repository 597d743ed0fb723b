// kvstore-server's numbered databases (SELECT n): each is a Store of its
// own, database 0 in the data directory and database n in its "db<n>"
// subdirectory. A database is opened when it is first used, or at start-up
// if its directory exists; separate stores keep DBSIZE and FLUSHDB O(1) and
// leave database 0's layout what it was before there were others.
#pragma once

#include <kvstore/store.hpp>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kvstore::server {

template <class StoreType>
class Databases {
public:
    Databases(std::string dir, const StoreOptions& options, std::size_t count)
        : dir_(std::move(dir)), options_(options), stores_(count), owned_(count) {}

    /// Opens database 0 and every other whose directory exists; `opened`
    /// gets each one's index and what its recovery found, `failed` the
    /// index of the one that could not be opened.
    Status open_existing(std::vector<std::pair<std::size_t, StoreRecovery>>& opened, std::size_t& failed) {
        for (std::size_t index = 0; index < count(); ++index) {
            std::error_code ignored;
            if (index > 0 && !std::filesystem::is_directory(directory(index), ignored)) continue;
            StoreRecovery recovery;
            failed = index;
            if (Status status = open(index, &recovery); !status) return status;
            opened.emplace_back(index, recovery);
        }
        return Status::ok();
    }

    std::size_t count() const noexcept { return stores_.size(); }

    /// Where database `index` keeps its files.
    std::string directory(std::size_t index) const {
        return index == 0 ? dir_ : dir_ + "/db" + std::to_string(index);
    }

    /// The store of database `index` (below count()), opened on first use;
    /// nullptr, with the reason in `status`, if it cannot be opened.
    StoreType* get(std::size_t index, Status& status) {
        if (StoreType* store = stores_[index].load(std::memory_order_acquire)) return store;
        status = open(index, nullptr);
        return stores_[index].load(std::memory_order_acquire);
    }

    /// The store of database `index` if it is open, else nullptr.
    StoreType* opened(std::size_t index) const { return stores_[index].load(std::memory_order_acquire); }

    /// Closes every open store; the first failure is returned.
    Status close() {
        Status first;
        for (auto& store : owned_) {
            if (store == nullptr) continue;
            if (Status status = store->close(); !status && first) first = status;
        }
        return first;
    }

private:
    Status open(std::size_t index, StoreRecovery* recovery) {
        std::lock_guard<std::mutex> lock(open_mutex_);
        if (stores_[index].load(std::memory_order_relaxed) != nullptr) return Status::ok();
        std::unique_ptr<StoreType> store;
        if (Status status = StoreType::open(directory(index), options_, store, recovery); !status) return status;
        stores_[index].store(store.get(), std::memory_order_release);
        owned_[index] = std::move(store);
        return Status::ok();
    }

    const std::string dir_;
    const StoreOptions options_;
    std::vector<std::atomic<StoreType*>> stores_;  // read without the mutex
    std::vector<std::unique_ptr<StoreType>> owned_;
    std::mutex open_mutex_;
};

}  // namespace kvstore::server
