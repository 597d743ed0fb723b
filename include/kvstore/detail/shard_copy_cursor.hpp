// ShardCopyCursor: how far a copy that takes a map's shards one at a time
// has got, so that a change to several shards can wait instead of landing
// between the copies of two of them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <limits>
#include <mutex>

namespace kvstore::detail {

// A copy makes a ShardCopyCursor::Copy and calls its visit(s) before it
// takes shard s's lock and after it is done with shard s - 1, for s = 0, 1,
// 2… in order (visit(n) after the last of n shards); destroying the Copy
// ends it. A change that holds the locks of shards first..last may apply when
// allows(first, last): the copy has then announced none of them yet, so it
// will take all of them after the change, or has announced a shard past
// them, so it took all of them before. Otherwise the change releases its
// locks, waits in wait_past(last) and tries again.
class ShardCopyCursor {
public:
    // One copy's progress, announced; it ends however the copy does.
    class Copy {
    public:
        explicit Copy(ShardCopyCursor& cursor) : cursor_(cursor) {}
        ~Copy() { cursor_.move_to(kIdle); }
        Copy(const Copy&) = delete;
        Copy& operator=(const Copy&) = delete;
        void visit(std::size_t shard) { cursor_.move_to(shard); }

    private:
        ShardCopyCursor& cursor_;
    };

    // REQUIRES: the locks of shards first..last held. A relaxed load is
    // enough: the copy announced a shard before taking its lock, so a change
    // holding a lock the copy has released sees that announcement or a later
    // one. With no copy running this is one load of a line nobody writes.
    bool allows(std::size_t first, std::size_t last) const noexcept {
        if (first == last) return true;  // one shard is copied whole, before the change or after it
        const std::size_t next = next_.load(std::memory_order_relaxed);
        return next < first || next > last;
    }

    // REQUIRES: no shard lock held, and not called by the copying thread:
    // either would keep the copy from moving on.
    void wait_past(std::size_t last) const {
        std::unique_lock<std::mutex> lock(mutex_);
        moved_.wait(lock, [&] { return next_.load(std::memory_order_relaxed) > last; });
    }

private:
    static constexpr std::size_t kIdle = std::numeric_limits<std::size_t>::max();

    void move_to(std::size_t next) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            next_.store(next, std::memory_order_relaxed);
        }
        moved_.notify_all();
    }

    mutable std::mutex mutex_;  // for the waiters
    mutable std::condition_variable moved_;
    std::atomic<std::size_t> next_{kIdle};  // the shard announced last; kIdle while no copy runs
};

}  // namespace kvstore::detail
