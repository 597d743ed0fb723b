// An entry built before it is stored, so that a change can be split into a
// part that may fail (allocating the entry's memory, which may throw
// std::bad_alloc or hit a shard's limit) and a part that cannot (storing
// it). A store puts its log append between the two: a change the map
// cannot hold is then never logged. An entry not stored is thrown away
// with its BuiltEntry.
#pragma once

#include <utility>

namespace kvstore::detail {

template <class Layout>
class BuiltEntry {
public:
    using Memory = typename Layout::Memory;
    using Slot = typename Layout::Slot;

    explicit BuiltEntry(Memory& memory) noexcept : memory_(&memory) {}
    BuiltEntry(BuiltEntry&& other) noexcept : memory_(other.memory_) { Layout::take(built_, other.built_); }
    BuiltEntry& operator=(BuiltEntry&&) = delete;
    BuiltEntry(const BuiltEntry&) = delete;
    BuiltEntry& operator=(const BuiltEntry&) = delete;
    ~BuiltEntry() { Layout::discard(*memory_, built_); }

    /// Builds the entry key -> V(args...). Throws what the layout's memory
    /// or the key's and value's constructors throw, holding nothing then.
    /// REQUIRES: !holds().
    template <class Q, class... Args>
    void build(const Q& key, Args&&... args) {
        Layout::build(*memory_, built_, key, std::forward<Args>(args)...);
    }

    /// Whether an entry is held.
    bool holds() const noexcept { return Layout::holds(built_); }

    /// Moves the entry into the empty slot storage at `where`. REQUIRES: holds().
    void place(void* where) noexcept { Layout::place(where, built_); }

    /// Makes the entry the value of `slot`, whose key equals the entry's,
    /// freeing the old value. REQUIRES: holds().
    void replace(Slot& slot) noexcept { Layout::replace(*memory_, slot, built_); }

private:
    Memory* memory_;
    typename Layout::Built built_{};
};

}  // namespace kvstore::detail
