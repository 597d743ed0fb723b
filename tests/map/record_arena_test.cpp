// RecordArena on its own: the 4-byte references it hands out name the blocks
// written through them, freed blocks and large-record slots are reused, and
// clear()'s rewind starts again from the first span.
#include "catch.hpp"

#include <kvstore/detail/packed_record.hpp>
#include <kvstore/detail/record_arena.hpp>

#include <cstddef>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using kvstore::detail::ChunkPool;
using kvstore::detail::PackedRecord;
using kvstore::detail::RecordArena;

namespace {

std::string pattern(RecordArena::Ref ref, std::size_t bytes) {
    std::string text(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i) text[i] = static_cast<char>('a' + (ref * 7 + i) % 26);
    return text;
}

}  // namespace

TEST_CASE("RecordArena references name their own blocks, pooled and large, across many spans",
          "[map][memory][arena]") {
    ChunkPool pool;
    RecordArena arena;
    arena.use_pool(pool);
    std::mt19937_64 random(5);
    std::map<RecordArena::Ref, std::size_t> live;
    for (int i = 0; i < 20000; ++i) {
        // Sizes on both sides of the largest pooled record, odd ones included.
        const std::size_t bytes = random() % 16 == 0 ? 1025 + random() % 3000 : 1 + random() % 300;
        unsigned char* block = nullptr;
        const RecordArena::Ref ref = arena.allocate(bytes, block);
        REQUIRE(block == arena.resolve(ref));
        REQUIRE(live.emplace(ref, bytes).second);
        std::memcpy(block, pattern(ref, bytes).data(), bytes);
    }
    CHECK(arena.reserved_bytes() > std::size_t{4} * RecordArena::kLargestSpan);
    for (const auto& [ref, bytes] : live)
        REQUIRE(std::string(reinterpret_cast<const char*>(arena.resolve(ref)), bytes) == pattern(ref, bytes));
    for (const auto& [ref, bytes] : live) arena.deallocate(ref, bytes);
}

TEST_CASE("RecordArena reuses a freed block of the same size and a freed large record's reference",
          "[map][memory][arena]") {
    ChunkPool pool;
    RecordArena arena;
    arena.use_pool(pool);
    unsigned char* block = nullptr;
    const RecordArena::Ref small = arena.allocate(118, block);
    const RecordArena::Ref other = arena.allocate(118, block);
    CHECK(other != small);
    const std::size_t pooled = arena.reserved_bytes();
    arena.deallocate(small, 118);
    CHECK(arena.allocate(117, block) == small);  // the same 2-byte size class
    CHECK(block == arena.resolve(small));

    const RecordArena::Ref large = arena.allocate(5000, block);
    CHECK(arena.reserved_bytes() == pooled + 5000);
    std::memset(block, 'x', 5000);
    arena.deallocate(large, 5000);
    CHECK(arena.reserved_bytes() == pooled);
    CHECK(arena.allocate(7000, block) == large);
    CHECK(arena.reserved_bytes() == pooled + 7000);
    arena.deallocate(large, 7000);
}

TEST_CASE("RecordArena's rewind hands out the first span's blocks again, holding no more memory",
          "[map][memory][arena]") {
    ChunkPool pool;
    RecordArena arena;
    arena.use_pool(pool);
    unsigned char* block = nullptr;
    std::vector<RecordArena::Ref> first_fill;
    for (int i = 0; i < 3000; ++i) first_fill.push_back(arena.allocate(118, block));
    const std::size_t held = arena.reserved_bytes();
    arena.rewind();
    for (int i = 0; i < 3000; ++i) REQUIRE(arena.allocate(118, block) == first_fill[static_cast<std::size_t>(i)]);
    CHECK(arena.reserved_bytes() == held);
    CHECK(std::set<RecordArena::Ref>(first_fill.begin(), first_fill.end()).size() == first_fill.size());
}

TEST_CASE("A packed record made through a reference reads back, and is found again after its arena grows",
          "[map][memory][arena]") {
    ChunkPool pool;
    RecordArena arena;
    arena.use_pool(pool);
    const RecordArena::Ref ref = PackedRecord::create(arena, "user:00000000042", std::string(100, 'v'), "!");
    for (int i = 0; i < 5000; ++i) PackedRecord::create(arena, "filler", std::string(90, 'f'));
    const PackedRecord* record = PackedRecord::at(arena, ref);
    CHECK(record->key() == "user:00000000042");
    CHECK(record->value() == std::string(100, 'v') + "!");
    CHECK(record->size() == PackedRecord::encoded_size(16, 101));
}
