// How a table slot holds one entry. The table's probing is the same for all
// layouts; a layout decides what sits in the slot and how a callback sees it.
//
//   InlineLayout<K, V>   the key and value objects themselves (no heap node);
//                        callbacks see `const K&` and `const V&` / `V&`.
//   PackedStringLayout   for std::string keys and values: the 4-byte
//                        reference of one PackedRecord in the shard's arena;
//                        callbacks see std::string_view, and a mutating
//                        callback gets a std::string that is copied back
//                        afterwards.
//
// A layout also says how many slots a 64-byte-aligned bucket holds.
#pragma once

#include <kvstore/detail/packed_record.hpp>

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kvstore::detail {

/// The record memory of a layout that needs none.
struct NoPool {};
struct NoArena {
    void use_pool(NoPool&) noexcept {}
    void limit_pooled_bytes(std::uint64_t) noexcept {}
    void rewind() noexcept {}
    std::size_t reserved_bytes() const noexcept { return 0; }
};

template <class K, class V>
struct InlineLayout {
    static_assert(std::is_nothrow_move_constructible_v<K> && std::is_nothrow_move_constructible_v<V>,
                  "kvstore::ConcurrentMap: keys and values must be nothrow move constructible, so that growing "
                  "a shard cannot fail half-way");

    struct Slot {
        template <class Q, class... Args>
        explicit Slot(Q&& k, Args&&... args) : key(std::forward<Q>(k)), value(std::forward<Args>(args)...) {}
        K key;
        V value;
    };
    using key_ref = const K&;
    using value_ref = const V&;
    using Pool = NoPool;
    using Memory = NoArena;
    static constexpr unsigned kSlotsPerBucket = 7;

    static const K& key(const Memory&, const Slot& slot) noexcept { return slot.key; }
    static const V& value(const Memory&, const Slot& slot) noexcept { return slot.value; }

    template <class Q, class... Args>
    static void construct(Memory&, void* where, Q&& key, Args&&... args) {
        ::new (where) Slot(std::forward<Q>(key), std::forward<Args>(args)...);
    }
    static void destroy(Memory&, Slot& slot) noexcept { slot.~Slot(); }
    static void relocate(void* where, Slot& from) noexcept {
        ::new (where) Slot(std::move(from));
        from.~Slot();
    }

    // An entry built before it is stored (see BuiltEntry), or none: storing
    // it only moves, so it cannot fail. (Raw storage rather than
    // std::optional, which GCC 12 reports as maybe uninitialized.)
    struct Built {
        alignas(Slot) unsigned char storage[sizeof(Slot)];
        bool held = false;
        Slot& slot() noexcept { return *std::launder(reinterpret_cast<Slot*>(storage)); }
    };
    static bool holds(const Built& built) noexcept { return built.held; }
    template <class Q, class... Args>
    static void build(Memory&, Built& into, const Q& key, Args&&... args) {
        ::new (static_cast<void*>(into.storage)) Slot(key, std::forward<Args>(args)...);
        into.held = true;
    }
    static void place(void* where, Built& built) noexcept {
        relocate(where, built.slot());
        built.held = false;
    }
    static void replace(Memory&, Slot& slot, Built& built) noexcept {
        slot.value.~V();
        ::new (static_cast<void*>(&slot.value)) V(std::move(built.slot().value));
        built.slot().~Slot();
        built.held = false;
    }
    static void discard(Memory&, Built& built) noexcept {
        if (built.held) built.slot().~Slot();
        built.held = false;
    }
    // Moves what `from` holds into the empty `into`.
    static void take(Built& into, Built& from) noexcept {
        if (!from.held) return;
        place(into.storage, from);
        into.held = true;
    }

    template <class M>
    static void assign(Memory&, Slot& slot, M&& value) {
        slot.value = std::forward<M>(value);
    }
    /// If `f` throws, the value is left as `f` left it (basic guarantee).
    template <class F>
    static decltype(auto) modify(Memory&, Slot& slot, F&& f) {
        return std::forward<F>(f)(slot.value);
    }
    static void prefetch(const Memory&, const Slot&) noexcept {}
};

struct PackedStringLayout {
    using Slot = RecordArena::Ref;
    using key_ref = std::string_view;
    using value_ref = std::string_view;
    using Pool = ChunkPool;
    using Memory = RecordArena;
    // 12 tags, the overflow counter and 12 references: one 64-byte line.
    static constexpr unsigned kSlotsPerBucket = 12;

    static std::string_view key(const Memory& memory, const Slot& slot) noexcept {
        return PackedRecord::at(memory, slot)->key();
    }
    static std::string_view value(const Memory& memory, const Slot& slot) noexcept {
        return PackedRecord::at(memory, slot)->value();
    }

    template <class Q, class... Args>
    static void construct(Memory& memory, void* where, const Q& key, Args&&... args) {
        ::new (where) Slot(create(memory, key, std::forward<Args>(args)...));
    }
    static void destroy(Memory& memory, Slot& slot) noexcept { PackedRecord::destroy(memory, slot); }
    static void relocate(void* where, Slot& from) noexcept { ::new (where) Slot(from); }

    // An entry built before it is stored (see BuiltEntry), or none: a whole
    // record, key included, so that storing it only swaps references.
    struct Built {
        Slot record = 0;
        bool held = false;
    };
    static bool holds(const Built& built) noexcept { return built.held; }
    template <class Q, class... Args>
    static void build(Memory& memory, Built& into, const Q& key, Args&&... args) {
        into.record = create(memory, key, std::forward<Args>(args)...);
        into.held = true;
    }
    static void place(void* where, Built& built) noexcept {
        ::new (where) Slot(built.record);
        built.held = false;
    }
    static void replace(Memory& memory, Slot& slot, Built& built) noexcept {
        PackedRecord::destroy(memory, slot);
        slot = built.record;
        built.held = false;
    }
    static void discard(Memory& memory, Built& built) noexcept {
        if (built.held) PackedRecord::destroy(memory, built.record);
        built.held = false;
    }
    static void take(Built& into, Built& from) noexcept { into = std::exchange(from, Built{}); }

    /// Strong guarantee: a new record is built before the old one is freed.
    template <class M>
    static void assign(Memory& memory, Slot& slot, const M& value) {
        const SplitBytes bytes = as_bytes(value);
        PackedRecord* record = PackedRecord::at(memory, slot);
        if (record->assign_same_size(bytes.head, bytes.tail)) return;
        const Slot replacement = PackedRecord::create(memory, record->key(), bytes.head, bytes.tail);
        PackedRecord::destroy(memory, slot);
        slot = replacement;
    }
    /// `f` works on a copy; if it throws, the stored value is unchanged.
    template <class F>
    static decltype(auto) modify(Memory& memory, Slot& slot, F&& f) {
        std::string value(PackedRecord::at(memory, slot)->value());
        if constexpr (std::is_void_v<std::invoke_result_t<F, std::string&>>) {
            std::forward<F>(f)(value);
            assign(memory, slot, value);
        } else {
            auto result = std::forward<F>(f)(value);
            assign(memory, slot, value);
            return result;
        }
    }
    // Inlined early on purpose: GCC judges a function that only prefetches to
    // have no effect, and drops calls to it that it has not inlined yet.
    [[gnu::always_inline]] static void prefetch(const Memory& memory, const Slot& slot) noexcept {
        PackedRecord::at(memory, slot)->prefetch_tail();
    }

private:
    template <class Q, class... Args>
    static Slot create(Memory& memory, const Q& key, Args&&... args) {
        if constexpr (sizeof...(Args) == 1 && (is_byte_value<Args> && ...)) {
            const SplitBytes value = as_bytes(args...);
            return PackedRecord::create(memory, std::string_view(key), value.head, value.tail);
        } else {
            const std::string value(std::forward<Args>(args)...);
            return PackedRecord::create(memory, std::string_view(key), value);
        }
    }

    template <class M>
    static constexpr bool is_byte_value =
        std::is_convertible_v<const M&, std::string_view> || std::is_same_v<std::decay_t<M>, SplitBytes>;

    static SplitBytes as_bytes(SplitBytes value) noexcept { return value; }
    static SplitBytes as_bytes(std::string_view value) noexcept { return {value, {}}; }
};

template <class K, class V>
using layout_for = std::conditional_t<std::is_same_v<K, std::string> && std::is_same_v<V, std::string>,
                                      PackedStringLayout, InlineLayout<K, V>>;

}  // namespace kvstore::detail
