// Marks memory that a pool holds but has not handed out, so that
// AddressSanitizer reports a read of a freed record or bucket array as it
// would for memory from malloc. Without AddressSanitizer both are no-ops.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define KVSTORE_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KVSTORE_POOL_ASAN 1
#endif
#endif
#if defined(KVSTORE_POOL_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace kvstore::detail {

inline void poison(const void* memory, std::size_t bytes) noexcept {
#if defined(KVSTORE_POOL_ASAN)
    ASAN_POISON_MEMORY_REGION(memory, bytes);
#else
    (void)memory;
    (void)bytes;
#endif
}

inline void unpoison(const void* memory, std::size_t bytes) noexcept {
#if defined(KVSTORE_POOL_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(memory, bytes);
#else
    (void)memory;
    (void)bytes;
#endif
}

}  // namespace kvstore::detail
