// The open-addressing table inside one shard. Not synchronised: the owning
// shard's lock protects it.
//
// Buckets of Layout::kSlotsPerBucket slots, probed linearly. A bucket begins
// with one one-byte tag per slot (0 = empty, else 0x80 | seven hash bits) and
// one overflow counter: how many entries whose home is this bucket live in a
// later one. A lookup reads the tags of one bucket with a single load (8
// bytes for seven slots, 16 for twelve), compares keys only where a tag
// matches, and stops at the first bucket whose overflow counter is zero.
// Erase clears the tag and decrements the counters it passed on insert, so it
// leaves no tombstone and lookups never slow down after churn. Seven 8-byte
// slots or twelve 4-byte record references make a bucket one 64-byte line.
#pragma once

#include <kvstore/detail/bucket_array_pool.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kvstore::detail {

inline constexpr unsigned kOverflowSaturated = 0xFF;

/// Set bits mark the lanes of a bucket that satisfy a test: lane i is bit
/// kBitsPerLane*(i+1)-1, so lanes come out of a count of trailing zeros.
template <unsigned kBitsPerLane>
class LaneMask {
public:
    explicit LaneMask(std::uint64_t bits) noexcept : bits_(bits) {}
    static std::uint64_t bit_of(unsigned lane) noexcept { return std::uint64_t{1} << (kBitsPerLane * (lane + 1) - 1); }
    bool any() const noexcept { return bits_ != 0; }
    unsigned lowest() const noexcept {
#if defined(__GNUC__)
        return static_cast<unsigned>(__builtin_ctzll(bits_)) / kBitsPerLane;
#else
        unsigned lane = 0;
        while ((bits_ & bit_of(lane)) == 0) ++lane;
        return lane;
#endif
    }
    void drop_lowest() noexcept { bits_ &= bits_ - 1; }

private:
    std::uint64_t bits_;
};

/// Lanes (0..6) whose tag equals `tag` among seven tags followed by the
/// overflow counter; `tag == 0` finds empty lanes.
inline LaneMask<8> match_lanes(const std::uint8_t* tags, std::uint8_t tag) noexcept {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    constexpr std::uint64_t kLowBits = 0x0101010101010101ull;
    constexpr std::uint64_t kSevenBits = 0x7F7F7F7F7F7F7F7Full;
    constexpr std::uint64_t kTagLanes = 0x0080808080808080ull;  // byte 7 is the overflow counter
    std::uint64_t word;
    std::memcpy(&word, tags, sizeof word);
    const std::uint64_t diff = word ^ (kLowBits * tag);
    // Exact zero-byte test: the high bit of a byte ends up set iff the byte is 0.
    const std::uint64_t zero_bytes = ~(((diff & kSevenBits) + kSevenBits) | diff | kSevenBits);
    return LaneMask<8>(zero_bytes & kTagLanes);
#else
    std::uint64_t bits = 0;
    for (unsigned lane = 0; lane < 7; ++lane)
        if (tags[lane] == tag) bits |= LaneMask<8>::bit_of(lane);
    return LaneMask<8>(bits);
#endif
}

/// Lanes (0..kSlots-1) whose tag equals `tag` among kSlots tags, read
/// with one 16-byte load. REQUIRES: 16 readable bytes at `tags`.
template <unsigned kSlots>
LaneMask<1> match_wide_lanes(const std::uint8_t* tags, std::uint8_t tag) noexcept {
    static_assert(kSlots <= 16);
#if defined(__SSE2__)
    const __m128i word = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tags));
    const auto bits = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(word, _mm_set1_epi8(static_cast<char>(tag)))));
    return LaneMask<1>(bits & ((1u << kSlots) - 1));
#else
    std::uint64_t bits = 0;
    for (unsigned lane = 0; lane < kSlots; ++lane)
        if (tags[lane] == tag) bits |= LaneMask<1>::bit_of(lane);
    return LaneMask<1>(bits);
#endif
}

template <class Layout>
class FlatTable {
    static constexpr unsigned kSlotsPerBucket = Layout::kSlotsPerBucket;
    static_assert(kSlotsPerBucket == 7 || (kSlotsPerBucket > 7 && kSlotsPerBucket <= 15));
    using Lanes = std::conditional_t<kSlotsPerBucket == 7, LaneMask<8>, LaneMask<1>>;

public:
    using Slot = typename Layout::Slot;

    struct Bucket {
        std::uint8_t tags[kSlotsPerBucket];
        std::uint8_t overflow;
        alignas(Slot) unsigned char storage[kSlotsPerBucket][sizeof(Slot)];

        Slot& slot(unsigned lane) noexcept { return *std::launder(reinterpret_cast<Slot*>(storage[lane])); }
        const Slot& slot(unsigned lane) const noexcept {
            return *std::launder(reinterpret_cast<const Slot*>(storage[lane]));
        }
    };

    FlatTable() noexcept = default;
    FlatTable(const FlatTable&) = delete;
    FlatTable& operator=(const FlatTable&) = delete;
    ~FlatTable() { release(); }

    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return buckets_ == empty_bucket() ? 0 : bucket_count() * kSlotsPerBucket; }
    std::size_t bucket_bytes() const noexcept {
        return buckets_ == empty_bucket() ? 0 : bucket_count() * sizeof(Bucket);
    }
    /// Bytes held for entries outside the table (packed records).
    std::size_t record_bytes() const noexcept { return memory_.reserved_bytes(); }

    typename Layout::Memory& memory() noexcept { return memory_; }
    const typename Layout::Memory& memory() const noexcept { return memory_; }

    /// Where the bucket arrays come from. REQUIRES: called before the first
    /// insert or reserve, with a pool that outlives the table.
    void use_bucket_pool(BucketArrayPool& pool) noexcept { bucket_pool_ = &pool; }

    /// Starts loading the bucket `hash` maps to. Needs no lock, so a caller
    /// issues it before taking the shard lock and the cache miss overlaps the
    /// lock's own. While another thread grows the table the hint may be stale;
    /// a prefetch of a stale address is harmless (it never faults).
    void prefetch(std::uint64_t hash) const noexcept {
#if defined(__GNUC__)
        const Bucket* buckets = hint_buckets_.load(std::memory_order_relaxed);
        __builtin_prefetch(buckets + (hash & hint_mask_.load(std::memory_order_relaxed)));
#else
        (void)hash;
#endif
    }

    /// Returns the slot holding a key equal to `key`, or nullptr.
    template <class Q, class KeyEqual>
    Slot* find(std::uint64_t hash, const Q& key, const KeyEqual& equal) const {
        const std::uint8_t tag = tag_of(hash);
        std::size_t index = hash & bucket_mask_;
        // After erasures every bucket can keep a non-zero overflow counter, so
        // the probe is also bounded by one lap of the table.
        for (std::size_t probed = 0; probed <= bucket_mask_; ++probed) {
            Bucket& bucket = buckets_[index];
            for (Lanes lanes = match(bucket, tag); lanes.any(); lanes.drop_lowest()) {
                Slot& slot = bucket.slot(lanes.lowest());
                Layout::prefetch(memory_, slot);
                if (equal(Layout::key(memory_, slot), key)) return &slot;
            }
            if (bucket.overflow == 0) return nullptr;
            index = (index + 1) & bucket_mask_;
        }
        return nullptr;
    }

    /// Inserts an entry built by `construct(void* where)` unless a key equal
    /// to `key` is present. Returns the entry's slot and whether it was
    /// inserted. A `construct` that returns bool may decline with false,
    /// building nothing: then {nullptr, false}. If hashing during growth,
    /// allocation or `construct` throws, or `construct` declines, the entries
    /// are unchanged (the table may have grown).
    template <class Q, class KeyEqual, class SlotHash, class Construct>
    std::pair<Slot*, bool> insert(std::uint64_t hash, const Q& key, const KeyEqual& equal, const SlotHash& slot_hash,
                                  Construct&& construct) {
        if (Slot* existing = find(hash, key, equal)) return {existing, false};
        if (size_ + 1 > max_size_) rehash(bucket_count_for(size_ + 1), slot_hash);

        const std::size_t home = hash & bucket_mask_;
        const std::size_t index = first_bucket_with_room(buckets_, bucket_mask_, home);
        Bucket& target = buckets_[index];
        const unsigned lane = match(target, 0).lowest();
        void* const where = static_cast<void*>(target.storage[lane]);
        if constexpr (std::is_same_v<decltype(construct(where)), bool>) {
            if (!std::forward<Construct>(construct)(where)) return {nullptr, false};
        } else {
            std::forward<Construct>(construct)(where);
        }

        count_overflow(buckets_, bucket_mask_, home, index);
        target.tags[lane] = tag_of(hash);
        ++size_;
        return {&target.slot(lane), true};
    }

    /// Removes the entry in `slot`, which must come from find() with `hash`.
    void erase(std::uint64_t hash, Slot& slot) noexcept {
        const std::size_t offset = static_cast<std::size_t>(reinterpret_cast<unsigned char*>(&slot) -
                                                            reinterpret_cast<unsigned char*>(buckets_));
        const std::size_t index = offset / sizeof(Bucket);
        Bucket& bucket = buckets_[index];
        const unsigned lane =
            static_cast<unsigned>((offset % sizeof(Bucket) - offsetof(Bucket, storage)) / sizeof(Slot));

        Layout::destroy(memory_, slot);
        bucket.tags[lane] = 0;
        --size_;
        for (std::size_t passed = hash & bucket_mask_; passed != index; passed = (passed + 1) & bucket_mask_) {
            std::uint8_t& overflow = buckets_[passed].overflow;
            // A saturated counter has lost count; it stays saturated, which
            // costs probes but never a wrong answer.
            if (overflow != kOverflowSaturated) --overflow;
        }
    }

    template <class F>
    void for_each(F&& f) {
        visit_occupied(buckets_, f);
    }
    template <class F>
    void for_each(F&& f) const {
        visit_occupied(static_cast<const Bucket*>(buckets_), f);
    }

    /// Makes room for `count` entries without further growth.
    template <class SlotHash>
    void reserve(std::size_t count, const SlotHash& slot_hash) {
        if (count > max_size_) rehash(bucket_count_for(count), slot_hash);
    }

    /// Destroys every entry and returns the memory.
    void clear() noexcept {
        release();
        memory_.rewind();
        buckets_ = empty_bucket();
        bucket_mask_ = 0;
        size_ = 0;
        max_size_ = 0;
        publish_hint();
    }

private:
    static Bucket* empty_bucket() noexcept {
        // Lookups in a table that never held anything probe this bucket and
        // stop: no tags, no overflow. It is never written.
        static Bucket sentinel{};
        return &sentinel;
    }

    static Lanes match(const Bucket& bucket, std::uint8_t tag) noexcept {
        if constexpr (kSlotsPerBucket == 7) {
            return match_lanes(bucket.tags, tag);
        } else {
            static_assert(sizeof(Bucket) >= 16);
            return match_wide_lanes<kSlotsPerBucket>(bucket.tags, tag);
        }
    }

    static std::uint8_t tag_of(std::uint64_t hash) noexcept {
        // Bits 32..38: the bucket index uses the low bits and the shard the top ones.
        return static_cast<std::uint8_t>(0x80 | ((hash >> 32) & 0x7F));
    }

    /// The first bucket from `home` on with an empty lane. REQUIRES: the
    /// load factor is below one, so there is one.
    static std::size_t first_bucket_with_room(const Bucket* buckets, std::size_t mask, std::size_t home) noexcept {
        std::size_t index = home;
        while (!match(buckets[index], 0).any()) index = (index + 1) & mask;
        return index;
    }

    /// Records that an entry whose home is `home` lives in bucket `index`:
    /// every bucket passed on the way counts one more overflowing entry.
    static void count_overflow(Bucket* buckets, std::size_t mask, std::size_t home, std::size_t index) noexcept {
        for (std::size_t passed = home; passed != index; passed = (passed + 1) & mask) {
            std::uint8_t& overflow = buckets[passed].overflow;
            if (overflow != kOverflowSaturated) ++overflow;
        }
    }

    template <class BucketPointer, class F>
    void visit_occupied(BucketPointer buckets, F& f) const {
        if (buckets_ == empty_bucket()) return;
        for (std::size_t index = 0; index <= bucket_mask_; ++index)
            for (Lanes lanes = occupied_lanes(buckets[index]); lanes.any(); lanes.drop_lowest())
                f(buckets[index].slot(lanes.lowest()));
    }

    static Lanes occupied_lanes(const Bucket& bucket) noexcept {
        std::uint64_t bits = 0;
        for (unsigned lane = 0; lane < kSlotsPerBucket; ++lane)
            if (bucket.tags[lane] != 0) bits |= Lanes::bit_of(lane);
        return Lanes(bits);
    }

    static std::size_t max_size_for(std::size_t buckets) noexcept {
        return buckets * kSlotsPerBucket * 7 / 8;  // load factor 7/8
    }

    static std::size_t bucket_count_for(std::size_t count) noexcept {
        std::size_t buckets = 2;
        while (max_size_for(buckets) < count) buckets *= 2;
        return buckets;
    }

    std::size_t bucket_count() const noexcept { return bucket_mask_ + 1; }

    static constexpr std::size_t kBucketAlignment = std::max<std::size_t>(64, alignof(Bucket));

    Bucket* allocate(std::size_t count) {
        void* memory = bucket_pool_->allocate(count * sizeof(Bucket), kBucketAlignment);
        auto* buckets = static_cast<Bucket*>(memory);
        for (std::size_t i = 0; i < count; ++i) {
            std::memset(buckets[i].tags, 0, kSlotsPerBucket);
            buckets[i].overflow = 0;
        }
        return buckets;
    }

    void deallocate(Bucket* buckets, std::size_t count) noexcept {
        bucket_pool_->deallocate(buckets, count * sizeof(Bucket), kBucketAlignment);
    }

    /// Moves every entry into a new array of `new_bucket_count` buckets. All
    /// hashes are computed before anything moves, so a throwing hasher or
    /// allocation leaves the table as it was.
    template <class SlotHash>
    void rehash(std::size_t new_bucket_count, const SlotHash& slot_hash) {
        std::unique_ptr<std::uint64_t[]> hashes(new std::uint64_t[size_]);
        std::size_t counted = 0;
        for_each([&](const Slot& slot) { hashes[counted++] = slot_hash(slot); });
        Bucket* const fresh = allocate(new_bucket_count);

        const std::size_t fresh_mask = new_bucket_count - 1;
        counted = 0;
        for_each([&](Slot& slot) {
            const std::uint64_t hash = hashes[counted++];
            const std::size_t home = hash & fresh_mask;
            const std::size_t index = first_bucket_with_room(fresh, fresh_mask, home);
            count_overflow(fresh, fresh_mask, home, index);
            const unsigned lane = match(fresh[index], 0).lowest();
            Layout::relocate(fresh[index].storage[lane], slot);
            fresh[index].tags[lane] = tag_of(hash);
        });
        if (buckets_ != empty_bucket()) deallocate(buckets_, bucket_count());
        buckets_ = fresh;
        bucket_mask_ = fresh_mask;
        max_size_ = max_size_for(new_bucket_count);
        publish_hint();
    }

    void publish_hint() noexcept {
        hint_buckets_.store(buckets_, std::memory_order_relaxed);
        hint_mask_.store(bucket_mask_, std::memory_order_relaxed);
    }

    void release() noexcept {
        if (buckets_ == empty_bucket()) return;
        for_each([this](Slot& slot) { Layout::destroy(memory_, slot); });
        deallocate(buckets_, bucket_count());
    }

    // The first cache line changes only when the table grows or is cleared,
    // so every core keeps a shared copy; the counters that change on each
    // insert and erase live on the next line.
    Bucket* buckets_ = empty_bucket();
    std::size_t bucket_mask_ = 0;
    std::size_t max_size_ = 0;
    std::atomic<const Bucket*> hint_buckets_{empty_bucket()};
    std::atomic<std::size_t> hint_mask_{0};
    BucketArrayPool* bucket_pool_ = nullptr;
    alignas(64) std::size_t size_ = 0;
    typename Layout::Memory memory_;
};

}  // namespace kvstore::detail
