// Memory for the bucket arrays of one map's tables.
//
// Why not operator new: at 1M entries each of 64 shards has a 256 KiB array,
// too small for a transparent huge page of its own, so every bucket read also
// missed the TLB. The pool puts the arrays of one size, from every shard, side
// by side in shared 2 MiB-aligned chunks that ask for huge pages. A chunk goes
// back to the system when its last array is freed, so the arrays a growing
// map has outgrown do not stay resident.
//
// An array is pooled only when the shards' arrays of its size would fill a
// chunk: a small map keeps operator new, rather than holding a mostly empty
// 2 MiB page. An array of 2 MiB or more gets a chunk of its own.
#pragma once

#include <kvstore/detail/asan_poison.hpp>

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace kvstore::detail {

class BucketArrayPool {
public:
    static constexpr std::size_t kChunkBytes = std::size_t{2} << 20;
    static constexpr std::size_t kSmallestPooled = std::size_t{16} << 10;

    /// `tables`: how many tables allocate from this pool.
    explicit BucketArrayPool(std::size_t tables) noexcept : tables_(std::max<std::size_t>(tables, 1)) {}
    BucketArrayPool(const BucketArrayPool&) = delete;
    BucketArrayPool& operator=(const BucketArrayPool&) = delete;
    ~BucketArrayPool() {
        for (const Chunk& chunk : chunks_) unmap(chunk);
    }

    /// Returns `bytes` of uninitialised memory aligned to `alignment` (a
    /// power of two). Throws std::bad_alloc and changes nothing.
    void* allocate(std::size_t bytes, std::size_t alignment) {
        if (!pooled(bytes, alignment)) return ::operator new (bytes, std::align_val_t{alignment});
        const std::size_t stride = round_up(bytes, alignment);
        std::lock_guard<std::mutex> lock(mutex_);
        for (Chunk& chunk : chunks_)
            if (chunk.stride == stride && chunk.taken.count() < chunk.capacity()) return chunk.take();
        chunks_.reserve(chunks_.size() + 1);  // the only other thing that can throw
        chunks_.push_back(map(stride));
        return chunks_.back().take();
    }

    /// `bytes` and `alignment` must be what the array was allocated with.
    void deallocate(void* array, std::size_t bytes, std::size_t alignment) noexcept {
        if (!pooled(bytes, alignment)) {
            ::operator delete (array, std::align_val_t{alignment});
            return;
        }
        auto* address = static_cast<unsigned char*>(array);
        std::lock_guard<std::mutex> lock(mutex_);
        const auto owner = std::find_if(chunks_.begin(), chunks_.end(), [&](const Chunk& chunk) {
            return address >= chunk.begin && address < chunk.begin + chunk.bytes;
        });
        owner->give_back(address);
        if (owner->taken.none()) {
            unmap(*owner);
            chunks_.erase(owner);
        }
    }

    /// Chunks held now; for tests.
    std::size_t chunk_count() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return chunks_.size();
    }

private:
    static constexpr std::size_t kMaxArraysPerChunk = kChunkBytes / kSmallestPooled;

    struct Chunk {
        unsigned char* begin;
        std::size_t bytes;
        std::size_t stride;
        std::bitset<kMaxArraysPerChunk> taken;

        std::size_t capacity() const noexcept { return bytes / stride; }

        void* take() noexcept {
            std::size_t index = 0;
            while (taken[index]) ++index;
            taken[index] = true;
            unsigned char* array = begin + index * stride;
            unpoison(array, stride);
            return array;
        }

        void give_back(unsigned char* array) noexcept {
            taken[static_cast<std::size_t>(array - begin) / stride] = false;
            poison(array, stride);
        }
    };

    static std::size_t round_up(std::size_t bytes, std::size_t unit) noexcept {
        return (bytes + unit - 1) / unit * unit;
    }

    bool pooled(std::size_t bytes, std::size_t alignment) const noexcept {
        return bytes >= kSmallestPooled && bytes >= kChunkBytes / tables_ && alignment <= kChunkBytes;
    }

    static Chunk map(std::size_t stride) {
        const std::size_t bytes = round_up(stride, kChunkBytes);
        unsigned char* begin = nullptr;
#if defined(__linux__)
        // mmap aligns to pages only: map one chunk more and trim both ends.
        void* mapped = mmap(nullptr, bytes + kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mapped == MAP_FAILED) throw std::bad_alloc();
        auto* start = static_cast<unsigned char*>(mapped);
        begin = start + (kChunkBytes - reinterpret_cast<std::uintptr_t>(start) % kChunkBytes) % kChunkBytes;
        if (begin != start) munmap(start, static_cast<std::size_t>(begin - start));
        if (const std::size_t tail = kChunkBytes - static_cast<std::size_t>(begin - start); tail != 0)
            munmap(begin + bytes, tail);
#if defined(MADV_HUGEPAGE)
        madvise(begin, bytes, MADV_HUGEPAGE);  // a hint: failure only costs speed
#endif
#else
        begin = static_cast<unsigned char*>(::operator new (bytes, std::align_val_t{kChunkBytes}));
#endif
        poison(begin, bytes);
        return Chunk{begin, bytes, stride, {}};
    }

    static void unmap(const Chunk& chunk) noexcept {
        // The shadow of unmapped memory must not stay poisoned for whatever
        // is mapped there next.
        unpoison(chunk.begin, chunk.bytes);
#if defined(__linux__)
        munmap(chunk.begin, chunk.bytes);
#else
        ::operator delete (chunk.begin, std::align_val_t{kChunkBytes});
#endif
    }

    const std::size_t tables_;
    mutable std::mutex mutex_;
    std::vector<Chunk> chunks_;
};

}  // namespace kvstore::detail
