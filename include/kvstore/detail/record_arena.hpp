// Memory for packed records: a map-wide ChunkPool hands out spans, and each
// shard's RecordArena carves records out of its spans under the shard's
// exclusive lock.
//
// Why not malloc: a record would pay malloc's 8-byte header, and 1M random
// records spread over 4 KiB pages cost a TLB miss per lookup. Here records
// are packed at 2-byte granularity, and once a map holds a few MiB of records
// the pool takes 2 MiB-aligned chunks and asks for transparent huge pages
// (measured: about a third more lookups per second at 1M entries).
//
// A record is named by a 4-byte reference (its span and offset), half a
// pointer, so that a 64-byte bucket holds twelve slots instead of seven.
// That caps a shard's pooled records at 4 GiB (kMaxPooledBytes).
//
// A freed record goes to its shard's free list for its size class and is
// reused by that shard; clear() rewinds a shard's spans for reuse. Memory
// returns to the system when the map is destroyed. Records larger than
// kLargestPooled bytes come from operator new directly, named by their index
// in the arena's table of them.
#pragma once

#include <kvstore/detail/asan_poison.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
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
    /// A record's 4-byte reference, which a table slot holds instead of an
    /// 8-byte pointer: a pooled record's span and offset in granules, or a
    /// large record's index in the arena's table of them (kLargeBit set).
    using Ref = std::uint32_t;

    static constexpr std::size_t kGranule = 2;
    static constexpr std::size_t kLargestPooled = 1024;
    static constexpr std::size_t kFirstSpan = std::size_t{4} << 10;
    static constexpr std::size_t kLargestSpan = std::size_t{64} << 10;
    /// Pooled records a shard can hold, in bytes: 2^31 granules.
    static constexpr std::uint64_t kMaxPooledBytes = std::uint64_t{kGranule} << 31;

    RecordArena() noexcept { std::fill(std::begin(free_lists_), std::end(free_lists_), kNone); }
    RecordArena(const RecordArena&) = delete;
    RecordArena& operator=(const RecordArena&) = delete;

    void use_pool(ChunkPool& pool) noexcept { pool_ = &pool; }

    /// Lowers the bytes of spans this arena may take (checked when it takes
    /// a span of 4 to 64 KiB); kMaxPooledBytes is the most it can address.
    void limit_pooled_bytes(std::uint64_t limit) noexcept { pooled_limit_ = std::min(limit, kMaxPooledBytes); }

    /// A block of `bytes` and its reference. Throws std::bad_alloc (or
    /// std::length_error past kMaxPooledBytes) and changes nothing.
    Ref allocate(std::size_t bytes, unsigned char*& block) {
        if (bytes > kLargestPooled) return allocate_large(bytes, block);
        const std::size_t size_class = class_of(bytes);
        const std::size_t block_bytes = size_class * kGranule;
        if (const Ref free = free_lists_[size_class]; free != kNone) {
            block = resolve(free);
            unpoison(block, block_bytes);
            std::memcpy(&free_lists_[size_class], block, sizeof(Ref));
            return free;
        }
        if (static_cast<std::size_t>(span_end_ - bump_) < block_bytes) next_span(block_bytes);
        block = bump_;
        const Ref ref = static_cast<Ref>(current_span_ << kOffsetBits) |
                        static_cast<Ref>(static_cast<std::size_t>(bump_ - span_begin_) / kGranule);
        bump_ += block_bytes;
        unpoison(block, block_bytes);
        return ref;
    }

    /// `bytes` must be what the block was allocated with.
    void deallocate(Ref ref, std::size_t bytes) noexcept {
        if (bytes > kLargestPooled) {
            const std::size_t index = ref & ~kLargeBit;
            ::operator delete(large_[index]);
            large_[index] = nullptr;
            free_large_.push_back(static_cast<Ref>(index));  // reserved when the record was made
            large_bytes_ -= bytes;
            return;
        }
        const std::size_t size_class = class_of(bytes);
        unsigned char* block = resolve(ref);
        std::memcpy(block, &free_lists_[size_class], sizeof(Ref));
        free_lists_[size_class] = ref;
        poison(block, size_class * kGranule);
    }

    /// The block `ref` names.
    unsigned char* resolve(Ref ref) const noexcept {
        if ((ref & kLargeBit) != 0) return large_[ref & ~kLargeBit];
        return spans_[ref >> kOffsetBits].begin + static_cast<std::size_t>(ref & kOffsetMask) * kGranule;
    }

    /// Forgets every pooled record (their memory is reused from the first
    /// span on). REQUIRES: every large record was deallocated.
    void rewind() noexcept {
        std::fill(std::begin(free_lists_), std::end(free_lists_), kNone);
        for (const Span& span : spans_) poison(span.begin, span.bytes);
        current_span_ = 0;
        if (spans_.empty()) {
            span_begin_ = bump_ = span_end_ = nullptr;
        } else {
            enter_span(0);
        }
    }

    /// Bytes this arena holds: its spans and its large records.
    std::size_t reserved_bytes() const noexcept { return span_bytes_ + large_bytes_; }

private:
    static constexpr Ref kLargeBit = Ref{1} << 31;
    static constexpr Ref kNone = ~Ref{0};
    // A span of kLargestSpan bytes holds 2^15 granules.
    static constexpr unsigned kOffsetBits = 15;
    static constexpr Ref kOffsetMask = (Ref{1} << kOffsetBits) - 1;
    static constexpr std::size_t kMaxSpans = std::size_t{1} << (31 - kOffsetBits);
    static_assert(kLargestSpan / kGranule <= (std::size_t{1} << kOffsetBits));

    struct Span {
        unsigned char* begin;
        std::size_t bytes;
    };

    static std::size_t class_of(std::size_t bytes) noexcept {
        // A free block holds the next one's reference.
        return std::max<std::size_t>(sizeof(Ref) / kGranule, (bytes + kGranule - 1) / kGranule);
    }

    void enter_span(std::size_t span) noexcept {
        current_span_ = span;
        span_begin_ = bump_ = spans_[span].begin;
        span_end_ = span_begin_ + spans_[span].bytes;
    }

    Ref allocate_large(std::size_t bytes, unsigned char*& block) {
        if (free_large_.empty()) {
            if (large_.size() >= kLargeBit)
                throw std::length_error("kvstore::ConcurrentMap: too many records over 1 KiB in one shard");
            large_.reserve(large_.size() + 1);
            free_large_.reserve(large_.size() + 1);
            large_.push_back(nullptr);
            free_large_.push_back(static_cast<Ref>(large_.size() - 1));
        }
        const Ref index = free_large_.back();
        block = static_cast<unsigned char*>(::operator new(bytes));
        free_large_.pop_back();
        large_[index] = block;
        large_bytes_ += bytes;
        return kLargeBit | index;
    }

    void next_span(std::size_t at_least) {
        if (current_span_ + 1 < spans_.size()) {  // reuse a span kept by rewind()
            enter_span(current_span_ + 1);
            return;
        }
        const std::size_t bytes = std::max(next_span_bytes_, at_least);
        if (spans_.size() == kMaxSpans || span_bytes_ + bytes > pooled_limit_) throw_past_limit();
        spans_.reserve(spans_.size() + 1);
        auto* begin = static_cast<unsigned char*>(pool_->take(bytes));
        spans_.push_back({begin, bytes});
        span_bytes_ += bytes;
        next_span_bytes_ = std::min(next_span_bytes_ * 2, kLargestSpan);
        enter_span(spans_.size() - 1);
    }

    [[noreturn]] void throw_past_limit() const {
        std::string message = "kvstore::ConcurrentMap: one shard's records up to 1 KiB would exceed " +
                              std::to_string(pooled_limit_) + " bytes";
        message += pooled_limit_ < kMaxPooledBytes
                       ? " (MapOptions::max_pooled_bytes_per_shard); raise it or use more shards (MapOptions::shards)"
                       : ", the most a shard can hold; use more shards (MapOptions::shards)";
        throw std::length_error(message);
    }

    // What resolve() reads, apart from what every allocation writes.
    alignas(64) std::vector<Span> spans_;
    std::vector<unsigned char*> large_;
    ChunkPool* pool_ = nullptr;
    alignas(64) Ref free_lists_[kLargestPooled / kGranule + 1];
    std::size_t current_span_ = 0;
    unsigned char* span_begin_ = nullptr;
    unsigned char* bump_ = nullptr;
    unsigned char* span_end_ = nullptr;
    std::size_t span_bytes_ = 0;
    std::vector<Ref> free_large_;
    std::size_t large_bytes_ = 0;
    std::size_t next_span_bytes_ = kFirstSpan;
    std::uint64_t pooled_limit_ = kMaxPooledBytes;
};

}  // namespace kvstore::detail
