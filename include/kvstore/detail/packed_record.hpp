// One block holding a string key and a string value back to back:
//
//   [varint key length][varint value length][key bytes][value bytes]
//
// A 16-byte key and a 100-byte value take 118 bytes, a 118-byte block of the
// shard's record arena named by a 4-byte reference, where two std::string
// objects would take a 64-byte slot plus two heap blocks. Key comparison and
// value copy then touch one block.
#pragma once

#include <kvstore/detail/record_arena.hpp>
#include <kvstore/detail/varint.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

namespace kvstore::detail {

/// A value given as two byte ranges that are stored back to back, so that a
/// caller holding a value's parts in different places (a header it built and
/// bytes in a file) does not first join them in a buffer.
struct SplitBytes {
    std::string_view head;
    std::string_view tail;
};

class PackedRecord {
public:
    /// Allocates a record whose value is `head` followed by `tail` and
    /// returns its reference; throws std::bad_alloc and leaves nothing behind.
    static RecordArena::Ref create(RecordArena& arena, std::string_view key, std::string_view head,
                                   std::string_view tail = {}) {
        const std::size_t value_size = head.size() + tail.size();
        unsigned char* block = nullptr;
        const RecordArena::Ref ref = arena.allocate(encoded_size(key.size(), value_size), block);
        auto* out = reinterpret_cast<char*>(put_varint(put_varint(block, key.size()), value_size));
        copy(out, key);
        copy(out + key.size(), head);
        copy(out + key.size() + head.size(), tail);
        return ref;
    }

    static void destroy(RecordArena& arena, RecordArena::Ref ref) noexcept {
        arena.deallocate(ref, at(arena, ref)->size());
    }

    /// The record `ref` names.
    static const PackedRecord* at(const RecordArena& arena, RecordArena::Ref ref) noexcept {
        return reinterpret_cast<const PackedRecord*>(arena.resolve(ref));
    }
    static PackedRecord* at(RecordArena& arena, RecordArena::Ref ref) noexcept {
        return reinterpret_cast<PackedRecord*>(arena.resolve(ref));
    }

    static std::size_t encoded_size(std::size_t key_size, std::size_t value_size) noexcept {
        return varint_size(key_size) + varint_size(value_size) + key_size + value_size;
    }

    std::string_view key() const noexcept { return decode().key; }
    std::string_view value() const noexcept { return decode().value; }
    std::size_t size() const noexcept {
        const Fields fields = decode();
        return encoded_size(fields.key.size(), fields.value.size());
    }

    /// Overwrites the value in place when the new one has the same length,
    /// which keeps fixed-size updates free of allocation. Returns false
    /// (record untouched) when the length differs.
    bool assign_same_size(std::string_view head, std::string_view tail = {}) noexcept {
        const Fields fields = decode();
        if (fields.value.size() != head.size() + tail.size()) return false;
        char* out = const_cast<char*>(fields.value.data());
        if (!head.empty()) std::memmove(out, head.data(), head.size());  // may be the stored value itself
        copy(out + head.size(), tail);
        return true;
    }

    /// Prefetches the lines past the first so that a long value arrives while
    /// the key is being compared. Always inlined, as PackedStringLayout::prefetch says why.
    [[gnu::always_inline]] void prefetch_tail() const noexcept {
#if defined(__GNUC__)
        __builtin_prefetch(bytes() + 64);
        __builtin_prefetch(bytes() + 127);
#endif
    }

private:
    // memcpy's pointers must not be null, even for no bytes.
    static void copy(char* out, std::string_view bytes) noexcept {
        if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
    }

    struct Fields {
        std::string_view key;
        std::string_view value;
    };

    const unsigned char* bytes() const noexcept { return reinterpret_cast<const unsigned char*>(this); }

    Fields decode() const noexcept {
        std::size_t key_size = 0;
        std::size_t value_size = 0;
        const unsigned char* p = get_trusted_varint(get_trusted_varint(bytes(), key_size), value_size);
        const char* key = reinterpret_cast<const char*>(p);
        return {{key, key_size}, {key + key_size, value_size}};
    }
};

}  // namespace kvstore::detail
