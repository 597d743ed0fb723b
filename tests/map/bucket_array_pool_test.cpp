// The pool that packs the shards' bucket arrays into shared huge-page chunks.
#include <kvstore/detail/bucket_array_pool.hpp>

#include "catch.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using kvstore::detail::BucketArrayPool;

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;

std::uintptr_t address_of(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// Fills each array with its own byte, then checks that no array wrote over another.
void check_disjoint(const std::vector<void*>& arrays, std::size_t bytes) {
    for (std::size_t i = 0; i < arrays.size(); ++i) std::memset(arrays[i], static_cast<int>(i % 251), bytes);
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        const auto* array = static_cast<const unsigned char*>(arrays[i]);
        CHECK(std::all_of(array, array + bytes, [&](unsigned char c) { return c == i % 251; }));
    }
}

}  // namespace

TEST_CASE("Arrays of one size from all tables share a chunk, which goes back with its last array", "[map][pool]") {
    BucketArrayPool pool(64);
    const std::size_t bytes = BucketArrayPool::kChunkBytes / 64;  // the smallest pooled size for 64 tables
    std::vector<void*> arrays;
    for (int i = 0; i < 64; ++i) arrays.push_back(pool.allocate(bytes, 64));
    CHECK(pool.chunk_count() == 1);
    const auto [lowest, highest] = std::minmax_element(arrays.begin(), arrays.end(),
                                                       [](void* a, void* b) { return address_of(a) < address_of(b); });
    CHECK(address_of(*lowest) % BucketArrayPool::kChunkBytes == 0);  // the chunk is aligned for a huge page
    CHECK(address_of(*highest) + bytes - address_of(*lowest) == BucketArrayPool::kChunkBytes);
    check_disjoint(arrays, bytes);

    arrays.push_back(pool.allocate(bytes, 64));
    CHECK(pool.chunk_count() == 2);
    pool.deallocate(arrays.back(), bytes, 64);
    arrays.pop_back();
    CHECK(pool.chunk_count() == 1);

    for (std::size_t i = 0; i + 1 < arrays.size(); ++i) pool.deallocate(arrays[i], bytes, 64);
    CHECK(pool.chunk_count() == 1);
    pool.deallocate(arrays.back(), bytes, 64);
    CHECK(pool.chunk_count() == 0);
}

TEST_CASE("A freed place in a chunk is handed out again", "[map][pool]") {
    BucketArrayPool pool(64);
    const std::size_t bytes = 64 * kKiB;
    void* first = pool.allocate(bytes, 64);
    void* second = pool.allocate(bytes, 64);
    pool.deallocate(first, bytes, 64);
    void* third = pool.allocate(bytes, 64);
    CHECK(third == first);
    CHECK(pool.chunk_count() == 1);
    check_disjoint({second, third}, bytes);
    pool.deallocate(second, bytes, 64);
    pool.deallocate(third, bytes, 64);
    CHECK(pool.chunk_count() == 0);
}

TEST_CASE("Arrays the tables would not fill a chunk with come from the heap", "[map][pool]") {
    BucketArrayPool many_tables(64);
    void* below_the_floor = many_tables.allocate(BucketArrayPool::kSmallestPooled / 2, 64);
    BucketArrayPool few_tables(4);
    void* too_few_to_fill = few_tables.allocate(256 * kKiB, 64);  // 4 of them fill half a chunk
    CHECK(many_tables.chunk_count() == 0);
    CHECK(few_tables.chunk_count() == 0);
    check_disjoint({below_the_floor}, BucketArrayPool::kSmallestPooled / 2);
    check_disjoint({too_few_to_fill}, 256 * kKiB);
    many_tables.deallocate(below_the_floor, BucketArrayPool::kSmallestPooled / 2, 64);
    few_tables.deallocate(too_few_to_fill, 256 * kKiB, 64);
}

TEST_CASE("An array of a chunk or more gets a chunk of its own", "[map][pool]") {
    BucketArrayPool pool(1);
    const std::size_t bytes = 3 * kMiB;
    std::vector<void*> arrays{pool.allocate(bytes, 64), pool.allocate(bytes, 64)};
    CHECK(pool.chunk_count() == 2);
    for (void* array : arrays) CHECK(address_of(array) % BucketArrayPool::kChunkBytes == 0);
    check_disjoint(arrays, bytes);
    pool.deallocate(arrays[0], bytes, 64);
    CHECK(pool.chunk_count() == 1);
    pool.deallocate(arrays[1], bytes, 64);
    CHECK(pool.chunk_count() == 0);
}

TEST_CASE("Sizes that are no power of two keep the requested alignment", "[map][pool]") {
    BucketArrayPool pool(64);
    const std::size_t bytes = 40000;  // e.g. buckets of 120-byte inline slots
    std::vector<void*> arrays;
    for (int i = 0; i < 60; ++i) arrays.push_back(pool.allocate(bytes, 128));
    for (void* array : arrays) CHECK(address_of(array) % 128 == 0);
    CHECK(pool.chunk_count() == 2);  // 52 arrays of 40064 bytes fit in one chunk
    check_disjoint(arrays, bytes);
    for (void* array : arrays) pool.deallocate(array, bytes, 128);
    CHECK(pool.chunk_count() == 0);
}
