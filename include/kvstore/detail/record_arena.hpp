// Memory for packed records: a map-wide ChunkPool hands out spans, and each
// shard's RecordArena carves records out of its spans under the shard's
// exclusive lock.
//
// Why not malloc: a record would pay malloc's 8-byte header, and 1M random
// records spread over 4 KiB pages cost a TLB miss per lookup. Here records
// are packed at 8-byte granularity, and once a map holds a few MiB of records
// the pool takes 2 MiB-aligned chunks and asks for transparent huge pages
// (measured: about a third more lookups per second at 1M entries).
//
// A freed record goes to its shard's free list for its size class and is
// reused by that shard; clear() rewinds a shard's spans for reuse. Memory
// returns to the system when the map is destroyed. Records larger than
// kLargestPooled bytes come from operator new directly.
#pragma once

#include <kvstore/detail/asan_poison.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace kvstore::detail {

class ChunkPool {
public:
    static constexpr std::size_t kSmallChunk = std::size_t{256} << 10;
    static constexpr std::size_t kHugePage = std::size_t{2} << 20;
    // Below this much handed out, a map is small: no huge pages.
    static constexpr std::size_t kHugePagesAfter = std::size_t{4} << 20;

    ChunkPool() = default;
    ChunkPool(const ChunkPool&) = delete;
    ChunkPool& operator=(const ChunkPool&) = delete;
    ~ChunkPool() {
        for (const Chunk& chunk : chunks_) ::operator delete (chunk.memory, std::align_val_t{chunk.alignment});
    }

    /// Returns `bytes` of fresh memory, 64-byte aligned. Throws
    /// std::bad_alloc and changes nothing.
    void* take(std::size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (static_cast<std::size_t>(end_ - next_) < bytes) refill(bytes);
        unsigned char* span = next_;
        next_ += bytes;
        handed_out_ += bytes;
        return span;
    }

private:
    struct Chunk {
        void* memory;
        std::size_t alignment;
    };

    void refill(std::size_t at_least) {
        const bool huge = handed_out_ >= kHugePagesAfter;
        const std::size_t unit = huge ? kHugePage : kSmallChunk;
        const std::size_t bytes = (at_least + unit - 1) / unit * unit;
        const std::size_t alignment = huge ? kHugePage : 64;
        chunks_.reserve(chunks_.size() + 1);  // the only other thing that can throw
        void* memory = ::operator new (bytes, std::align_val_t{alignment});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (huge) madvise(memory, bytes, MADV_HUGEPAGE);  // a hint: failure only costs speed
#endif
        poison(memory, bytes);
        chunks_.push_back({memory, alignment});
        next_ = static_cast<unsigned char*>(memory);
        end_ = next_ + bytes;
    }

    std::mutex mutex_;
    std::vector<Chunk> chunks_;
    unsigned char* next_ = nullptr;
    unsigned char* end_ = nullptr;
    std::size_t handed_out_ = 0;
};

class RecordArena {
public:
    static constexpr std::size_t kGranule = 8;
    static constexpr std::size_t kLargestPooled = 1024;
    static constexpr std::size_t kFirstSpan = std::size_t{4} << 10;
    static constexpr std::size_t kLargestSpan = std::size_t{64} << 10;

    RecordArena() = default;
    RecordArena(const RecordArena&) = delete;
    RecordArena& operator=(const RecordArena&) = delete;

    void use_pool(ChunkPool& pool) noexcept { pool_ = &pool; }

    /// Throws std::bad_alloc and changes nothing.
    void* allocate(std::size_t bytes) {
        if (bytes > kLargestPooled) {
            void* block = ::operator new(bytes);
            large_bytes_ += bytes;
            return block;
        }
        const std::size_t size_class = class_of(bytes);
        const std::size_t block_bytes = size_class * kGranule;
        if (FreeBlock* block = free_lists_[size_class]) {
            unpoison(block, block_bytes);
            free_lists_[size_class] = block->next;
            return block;
        }
        if (static_cast<std::size_t>(span_end_ - bump_) < block_bytes) next_span(block_bytes);
        void* block = bump_;
        bump_ += block_bytes;
        unpoison(block, block_bytes);
        return block;
    }

    /// `bytes` must be what the block was allocated with.
    void deallocate(void* block, std::size_t bytes) noexcept {
        if (bytes > kLargestPooled) {
            ::operator delete(block);
            large_bytes_ -= bytes;
            return;
        }
        const std::size_t size_class = class_of(bytes);
        auto* freed = static_cast<FreeBlock*>(block);
        freed->next = free_lists_[size_class];
        free_lists_[size_class] = freed;
        poison(block, size_class * kGranule);
    }

    /// Forgets every pooled record (their memory is reused from the first
    /// span on). REQUIRES: every large record was deallocated.
    void rewind() noexcept {
        std::fill(std::begin(free_lists_), std::end(free_lists_), nullptr);
        for (const Span& span : spans_) poison(span.begin, span.bytes);
        current_span_ = 0;
        bump_ = spans_.empty() ? nullptr : spans_[0].begin;
        span_end_ = spans_.empty() ? nullptr : spans_[0].begin + spans_[0].bytes;
    }

    /// Bytes this arena holds: its spans and its large records.
    std::size_t reserved_bytes() const noexcept { return span_bytes_ + large_bytes_; }

private:
    struct FreeBlock {
        FreeBlock* next;
    };
    struct Span {
        unsigned char* begin;
        std::size_t bytes;
    };

    static std::size_t class_of(std::size_t bytes) noexcept {
        return std::max<std::size_t>(1, (bytes + kGranule - 1) / kGranule);
    }

    void next_span(std::size_t at_least) {
        if (current_span_ + 1 < spans_.size()) {  // reuse a span kept by rewind()
            ++current_span_;
        } else {
            const std::size_t bytes = std::max(next_span_bytes_, at_least);
            spans_.reserve(spans_.size() + 1);
            auto* begin = static_cast<unsigned char*>(pool_->take(bytes));
            spans_.push_back({begin, bytes});
            current_span_ = spans_.size() - 1;
            span_bytes_ += bytes;
            next_span_bytes_ = std::min(next_span_bytes_ * 2, kLargestSpan);
        }
        bump_ = spans_[current_span_].begin;
        span_end_ = bump_ + spans_[current_span_].bytes;
    }

    ChunkPool* pool_ = nullptr;
    FreeBlock* free_lists_[kLargestPooled / kGranule + 1] = {};
    std::vector<Span> spans_;
    std::size_t current_span_ = 0;
    unsigned char* bump_ = nullptr;
    unsigned char* span_end_ = nullptr;
    std::size_t span_bytes_ = 0;
    std::size_t large_bytes_ = 0;
    std::size_t next_span_bytes_ = kFirstSpan;
};

}  // namespace kvstore::detail
