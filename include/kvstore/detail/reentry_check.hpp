// Detects a callback that calls back into the shard it runs under, which
// would otherwise deadlock (std::shared_mutex is not recursive). Enabled when
// KVSTORE_DETECT_REENTRY is 1; it defaults to 1 in builds without NDEBUG.
// The cost is a thread-local list of at most a few shard addresses, searched
// whenever a shard lock is taken.
#pragma once

#include <cstddef>
#include <stdexcept>

#ifndef KVSTORE_DETECT_REENTRY
#ifdef NDEBUG
#define KVSTORE_DETECT_REENTRY 0
#else
#define KVSTORE_DETECT_REENTRY 1
#endif
#endif

namespace kvstore::detail {

#if KVSTORE_DETECT_REENTRY

struct ShardsInCallbacks {
    static constexpr std::size_t kDepth = 16;
    const void* shards[kDepth];
    std::size_t depth = 0;
};

inline thread_local ShardsInCallbacks shards_in_callbacks;

/// Throws std::logic_error if this thread runs a callback under `shard`.
inline void check_not_in_callback(const void* shard) {
    const ShardsInCallbacks& held = shards_in_callbacks;
    for (std::size_t i = 0; i < held.depth && i < ShardsInCallbacks::kDepth; ++i)
        if (held.shards[i] == shard)
            throw std::logic_error(
                "kvstore::ConcurrentMap: a callback called back into the shard it runs under (this deadlocks); "
                "callbacks must not call the map they are invoked from");
}

/// Marks `shard` as running a user callback for the lifetime of the scope.
class CallbackScope {
public:
    explicit CallbackScope(const void* shard) noexcept {
        ShardsInCallbacks& held = shards_in_callbacks;
        if (held.depth < ShardsInCallbacks::kDepth) held.shards[held.depth] = shard;
        ++held.depth;
    }
    ~CallbackScope() { --shards_in_callbacks.depth; }
    CallbackScope(const CallbackScope&) = delete;
    CallbackScope& operator=(const CallbackScope&) = delete;
};

#else

inline void check_not_in_callback(const void*) noexcept {}

class CallbackScope {
public:
    explicit CallbackScope(const void*) noexcept {}
};

#endif

}  // namespace kvstore::detail
