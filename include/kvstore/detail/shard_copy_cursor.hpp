// ShardCopyCursor: how far a copy that takes a map's shards one at a time
// has got, so that a change to several shards can wait instead of landing
// between the copies of two of them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <limits>
#include <mutex>
#include <optional>

namespace kvstore::detail {

// A copy makes a ShardCopyCursor::Copy and calls its visit(s) before it
// takes shard s's lock and after it is done with shard s - 1, for s = 0, 1,
// 2… in order (visit(n) after the last of n shards); destroying the Copy
// ends it. A change to several shards goes through apply_whole, which has it
// back off and wait while the copy is between them.
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

    // Calls apply(copy_between) until it has applied. apply locks the shards
    // it changes and, before changing anything, calls copy_between(first,
    // last) with the lowest and highest of them: if that returns true, apply
    // must return without changing anything, and it is called again once
    // the copy has passed `last`. REQUIRES: not called by the copying thread,
    // which the wait would keep from moving on.
    template <class Apply>
    void apply_whole(Apply&& apply) const {
        for (;;) {
            std::optional<std::size_t> wait_for;  // the highest shard apply held, if it backed off
            apply([&](std::size_t first, std::size_t last) {
                if (allows(first, last)) return false;
                wait_for = last;
                return true;
            });
            if (!wait_for) return;
            wait_past(*wait_for);
        }
    }

private:
    static constexpr std::size_t kIdle = std::numeric_limits<std::size_t>::max();

    // May a change holding the locks of shards first..last apply? Yes if the
    // copy has announced none of them yet, so it will take all of them after
    // the change, or has announced a shard past them, so it took all of them
    // before. A relaxed load is enough: the copy announced a shard before
    // taking its lock, so a change holding a lock the copy has released sees
    // that announcement or a later one. With no copy running this is one
    // load of a line nobody writes.
    bool allows(std::size_t first, std::size_t last) const noexcept {
        if (first == last) return true;  // one shard is copied whole, before the change or after it
        const std::size_t next = next_.load(std::memory_order_relaxed);
        return next < first || next > last;
    }

    // With no shard lock held, which would keep the copy from moving on.
    void wait_past(std::size_t last) const {
        std::unique_lock<std::mutex> lock(mutex_);
        moved_.wait(lock, [&] { return next_.load(std::memory_order_relaxed) > last; });
    }

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

// For a store whose log completes a change that a copy holds half of (the
// records replayed after the snapshot): nothing is tracked and no change waits.
class NullShardCopyCursor {
public:
    class Copy {
    public:
        explicit Copy(NullShardCopyCursor&) noexcept {}
        Copy(const Copy&) = delete;
        Copy& operator=(const Copy&) = delete;
        void visit(std::size_t) noexcept {}
    };

    template <class Apply>
    void apply_whole(Apply&& apply) const {
        apply([](std::size_t, std::size_t) { return false; });
    }
};

}  // namespace kvstore::detail
