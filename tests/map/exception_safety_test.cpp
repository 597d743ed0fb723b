// The documented exception guarantees: a throwing hasher, key comparison,
// copy, allocation or callback leaves the map valid and unchanged.
//
// Allocation failures are injected by replacing the global allocation
// functions for this test binary.
#include <kvstore/concurrent_map.hpp>

#include "catch.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

// Number of allocations still allowed to succeed; negative means no limit.
std::atomic<long> allocations_before_failure{-1};

void* allocate_or_fail(std::size_t size, std::size_t alignment) {
    if (allocations_before_failure.load() >= 0 && allocations_before_failure.fetch_sub(1) == 0) {
        allocations_before_failure.store(-1);
        throw std::bad_alloc();
    }
    void* memory = nullptr;
    if (posix_memalign(&memory, alignment < sizeof(void*) ? sizeof(void*) : alignment, size ? size : 1) != 0)
        throw std::bad_alloc();
    return memory;
}

}  // namespace

void* operator new(std::size_t size) { return allocate_or_fail(size, alignof(std::max_align_t)); }
void* operator new[](std::size_t size) { return allocate_or_fail(size, alignof(std::max_align_t)); }
void* operator new(std::size_t size, std::align_val_t al) { return allocate_or_fail(size, std::size_t(al)); }
void* operator new[](std::size_t size, std::align_val_t al) { return allocate_or_fail(size, std::size_t(al)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    try {
        return allocate_or_fail(size, alignof(std::max_align_t));
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
    try {
        return allocate_or_fail(size, std::size_t(al));
    } catch (const std::bad_alloc&) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t& tag) noexcept {
    return operator new(size, al, tag);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

using StringMap = kvstore::ConcurrentMap<std::string, std::string>;

std::string key_of(int i) { return "user:" + std::to_string(i); }

struct InjectedFault : std::runtime_error {
    InjectedFault() : std::runtime_error("injected fault") {}
};

// Throws on the key "boom", and on every call once `calls_before_throw` runs out.
struct FaultyHash {
    std::atomic<long>* calls_before_throw;
    std::uint64_t operator()(std::string_view key) const {
        if (key == "boom") throw InjectedFault();
        if (calls_before_throw->load() >= 0 && calls_before_throw->fetch_sub(1) == 0) throw InjectedFault();
        return kvstore::hash_bytes(key.data(), key.size());
    }
};

struct FaultyEqual {
    bool operator()(std::string_view stored, std::string_view key) const {
        if (key == "explode") throw InjectedFault();
        return stored == key;
    }
};

// A value whose copy throws while `copies_fail` is set.
struct FragileValue {
    static inline bool copies_fail = false;
    int payload = 0;
    explicit FragileValue(int p) : payload(p) {}
    FragileValue(const FragileValue& other) : payload(other.payload) {
        if (copies_fail) throw InjectedFault();
    }
    FragileValue(FragileValue&&) noexcept = default;
    FragileValue& operator=(const FragileValue& other) {
        if (copies_fail) throw InjectedFault();
        payload = other.payload;
        return *this;
    }
    FragileValue& operator=(FragileValue&&) noexcept = default;
};

template <class Map>
std::map<std::string, std::string> snapshot(const Map& map) {
    std::map<std::string, std::string> result;
    map.for_each([&](std::string_view key, std::string_view value) { result.emplace(key, value); });
    return result;
}

// Fills a one-shard map to one entry short of its growth threshold.
void fill_to_growth_threshold(StringMap& map) {
    int i = 0;
    for (;;) {
        const std::size_t capacity = map.shard_stats(0).capacity;
        map.insert(key_of(i), "value-" + std::to_string(i));
        if (map.shard_stats(0).capacity != capacity && capacity != 0) break;
        ++i;
    }
    map.erase(key_of(i));
    // Refill up to the new threshold so that the next insert grows again.
    const std::size_t capacity = map.shard_stats(0).capacity;
    for (++i; map.size() < capacity * 7 / 8; ++i) map.insert(key_of(i), "value-" + std::to_string(i));
    REQUIRE(map.shard_stats(0).capacity == capacity);
}

}  // namespace

TEST_CASE("FailedAllocationLeavesTheMapUnchanged", "[map][exceptions]") {
    StringMap map({1, 0});
    fill_to_growth_threshold(map);
    const auto before = snapshot(map);
    const std::size_t capacity_before = map.shard_stats(0).capacity;

    int failures = 0;
    for (long allowed = 0;; ++allowed) {
        const std::string key = "new-key";  // allocated before the injector is armed
        const std::string value(200, 'n');
        allocations_before_failure.store(allowed);
        bool inserted = false;
        try {
            inserted = map.insert(key, value);
        } catch (const std::bad_alloc&) {
            ++failures;
            allocations_before_failure.store(-1);
            REQUIRE(snapshot(map) == before);
            REQUIRE(map.size() == before.size());
            REQUIRE_FALSE(map.contains(key));
            continue;
        }
        allocations_before_failure.store(-1);
        REQUIRE(inserted);
        break;
    }
    CHECK(failures >= 2);  // the growth's allocations and the record's
    CHECK(map.shard_stats(0).capacity > capacity_before);
    CHECK(map.get("new-key") == std::string(200, 'n'));
}

TEST_CASE("FailedAllocationOnAssignKeepsTheOldValue", "[map][exceptions]") {
    StringMap map({1, 0});
    map.insert("k", "old");
    const std::string longer(5000, 'x');  // past the arena's pooled sizes: its own allocation
    allocations_before_failure.store(0);
    CHECK_THROWS_AS(map.insert_or_assign("k", longer), std::bad_alloc);
    allocations_before_failure.store(-1);
    CHECK(map.get("k") == "old");
    CHECK(map.insert_or_assign("k", longer) == false);
    CHECK(map.get("k") == longer);
}

TEST_CASE("ThrowingHasherLeavesTheMapUnchanged", "[map][exceptions]") {
    std::atomic<long> calls_before_throw{-1};
    kvstore::ConcurrentMap<std::string, std::string, FaultyHash> map({1, 0}, FaultyHash{&calls_before_throw});
    for (int i = 0; i < 100; ++i) map.insert(key_of(i), "v");
    const auto before = snapshot(map);
    CHECK_THROWS_AS(map.insert("boom", "v"), InjectedFault);
    CHECK_THROWS_AS(map.contains("boom"), InjectedFault);
    CHECK(snapshot(map) == before);

    // A throw in the middle of growth: the new key hashes, then rehashing fails.
    while (map.shard_stats(0).capacity * 7 / 8 > map.size()) map.insert(key_of(int(map.size())), "v");
    const auto full = snapshot(map);
    const std::size_t capacity = map.shard_stats(0).capacity;
    calls_before_throw.store(5);
    CHECK_THROWS_AS(map.insert("growth-trigger", "v"), InjectedFault);
    calls_before_throw.store(-1);
    CHECK(snapshot(map) == full);
    CHECK(map.shard_stats(0).capacity == capacity);
    for (const auto& entry : full) REQUIRE(map.contains(entry.first));
    CHECK(map.insert("growth-trigger", "v"));
}

TEST_CASE("ThrowingKeyComparisonLeavesTheMapUnchanged", "[map][exceptions]") {
    kvstore::ConcurrentMap<std::string, std::string, kvstore::Hash<std::string>, FaultyEqual> map({1, 0});
    map.insert("explode", "v");  // nothing to compare against yet
    map.insert("other", "w");
    const auto before = snapshot(map);
    CHECK_THROWS_AS(map.insert("explode", "again"), InjectedFault);
    CHECK_THROWS_AS(map.erase("explode"), InjectedFault);
    CHECK(snapshot(map) == before);
}

TEST_CASE("ThrowingCopyLeavesTheMapUnchanged", "[map][exceptions]") {
    kvstore::ConcurrentMap<int, FragileValue> map({1, 0});
    for (int i = 0; i < 50; ++i) map.insert(i, FragileValue(i));
    const FragileValue value(999);
    FragileValue::copies_fail = true;
    CHECK_THROWS_AS(map.insert(1000, value), InjectedFault);
    CHECK_THROWS_AS(map.insert_or_assign(3, value), InjectedFault);
    CHECK_THROWS_AS(map.get(3), InjectedFault);
    FragileValue::copies_fail = false;
    CHECK(map.size() == 50);
    CHECK_FALSE(map.contains(1000));
    CHECK(map.get(3)->payload == 3);
}

TEST_CASE("ThrowingCallbackOnPackedValueChangesNothing", "[map][exceptions]") {
    StringMap map({1, 0});
    map.insert("k", "original");
    CHECK_THROWS_AS(map.update("k",
                               [](std::string& v) {
                                   v = "half-done";
                                   throw InjectedFault();
                               }),
                    InjectedFault);
    CHECK(map.get("k") == "original");
    CHECK_THROWS_AS(map.upsert(
                        "n", [](std::string&) {}, []() -> std::string { throw InjectedFault(); }),
                    InjectedFault);
    CHECK_FALSE(map.contains("n"));
    CHECK_THROWS_AS(map.for_each([](std::string_view, std::string_view) { throw InjectedFault(); }), InjectedFault);
    CHECK(map.insert("n", "usable"));  // every lock was released
}
