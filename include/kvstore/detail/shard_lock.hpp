// Taking a shard's std::shared_mutex: spin briefly with try_lock before
// blocking. Critical sections here last a few hundred nanoseconds, while
// blocking in pthread_rwlock costs a futex sleep and wake-up (microseconds);
// on a hot shard (skewed keys) sleeping readers and writers otherwise cut
// throughput. The spin is bounded (~1-2 us), so a preempted lock holder costs
// little more than it would anyway.
#pragma once

#include <mutex>
#include <shared_mutex>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kvstore::detail {

inline constexpr int kLockSpins = 32;

inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

inline std::shared_lock<std::shared_mutex> lock_shared_spinning(std::shared_mutex& mutex) {
    for (int spin = 0; spin < kLockSpins; ++spin) {
        if (mutex.try_lock_shared()) return std::shared_lock<std::shared_mutex>(mutex, std::adopt_lock);
        spin_pause();
    }
    return std::shared_lock<std::shared_mutex>(mutex);
}

template <class Mutex>
std::unique_lock<Mutex> lock_spinning(Mutex& mutex) {
    for (int spin = 0; spin < kLockSpins; ++spin) {
        if (mutex.try_lock()) return std::unique_lock<Mutex>(mutex, std::adopt_lock);
        spin_pause();
    }
    return std::unique_lock<Mutex>(mutex);
}

}  // namespace kvstore::detail
