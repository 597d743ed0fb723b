// Single-threaded behaviour of every ConcurrentMap operation, for both slot
// layouts (packed std::string -> std::string, and inline K/V).
#include <kvstore/concurrent_map.hpp>

#include "catch.hpp"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using StringMap = kvstore::ConcurrentMap<std::string, std::string>;

std::string key_of(std::uint64_t i) { return "user:" + std::to_string(i); }

// Every key lands in the same shard and the same home bucket.
struct CollidingHash {
    std::uint64_t operator()(std::string_view) const noexcept { return 42; }
};

// A weak hasher: the map must spread its output over shards itself.
struct IdentityHash {
    std::uint64_t operator()(std::uint64_t key) const noexcept { return key; }
};

// Takes only std::string, the way many existing hashers are written.
struct StdStringOnlyHash {
    std::size_t operator()(const std::string& s) const { return std::hash<std::string>{}(s); }
};

template <class Map>
std::map<typename Map::key_type, typename Map::mapped_type> contents_of(const Map& map) {
    std::map<typename Map::key_type, typename Map::mapped_type> result;
    map.for_each([&](const auto& key, const auto& value) {
        const bool fresh = result.emplace(typename Map::key_type(key), typename Map::mapped_type(value)).second;
        REQUIRE(fresh);
    });
    return result;
}

}  // namespace

TEST_CASE("InsertIfAbsentKeepsTheFirstValue", "[map]") {
    StringMap map;
    CHECK(map.insert("alpha", "one"));
    CHECK_FALSE(map.insert("alpha", "two"));
    CHECK(map.try_emplace(std::string("beta"), 3, 'x'));
    CHECK_FALSE(map.try_emplace("beta", "y"));
    CHECK(map.get("alpha") == "one");
    CHECK(map.get("beta") == "xxx");
    CHECK(map.size() == 2);
}

TEST_CASE("InsertOrAssignReplacesWhateverTheValueSize", "[map]") {
    StringMap map;
    CHECK(map.insert_or_assign("k", "short"));
    CHECK_FALSE(map.insert_or_assign("k", "equal"));  // same length: rewritten in place
    CHECK(map.get("k") == "equal");
    CHECK_FALSE(map.insert_or_assign("k", std::string(300, 'L')));
    CHECK(map.get("k") == std::string(300, 'L'));
    CHECK_FALSE(map.insert_or_assign("k", ""));
    CHECK(map.get("k") == "");
    CHECK(map.size() == 1);
}

TEST_CASE("InsertOrAssignIfWritesOnlyWhenAdmitted", "[map]") {
    StringMap map;
    int asked = 0;
    CHECK_FALSE(map.insert_or_assign_if("k", "refused", [&] { return ++asked, false; }));
    CHECK_FALSE(map.contains("k"));
    CHECK(map.insert_or_assign_if("k", "first", [&] { return ++asked, true; }));
    CHECK_FALSE(map.insert_or_assign_if("k", "refused again", [&] { return ++asked, false; }));
    CHECK(map.get("k") == "first");
    CHECK_FALSE(map.insert_or_assign_if("k", std::string(300, 'x'), [&] { return ++asked, true; }));
    CHECK(map.get("k") == std::string(300, 'x'));
    CHECK(asked == 4);
    CHECK(map.size() == 1);

    kvstore::ConcurrentMap<int, std::unique_ptr<int>> owners;
    CHECK(owners.insert_or_assign_if(1, std::make_unique<int>(7), [] { return true; }));
    int seen = 0;
    owners.visit(1, [&](const std::unique_ptr<int>& value) { seen = *value; });
    CHECK(seen == 7);
}

TEST_CASE("GetFindAndContainsReportMissingKeys", "[map]") {
    StringMap map;
    map.insert("present", "value");
    CHECK(map.get("absent") == std::nullopt);
    std::string out = "untouched";
    CHECK_FALSE(map.find("absent", out));
    CHECK(out == "untouched");
    CHECK(map.find("present", out));
    CHECK(out == "value");
    CHECK(map.contains("present"));
    CHECK_FALSE(map.contains("absent"));
}

TEST_CASE("HeterogeneousLookupNeedsNoStdString", "[map]") {
    StringMap map;
    map.insert(std::string_view("view-key"), std::string_view("v"));
    const std::string owned = "view-key";
    const char* c_string = "view-key";
    CHECK(map.contains(owned));
    CHECK(map.contains(std::string_view(owned)));
    CHECK(map.contains(c_string));
    CHECK(map.contains("view-key"));
    CHECK(map.update("view-key", [](std::string& v) { v += "!"; }));
    CHECK(map.visit(std::string_view("view-key"), [](std::string_view v) { CHECK(v == "v!"); }));
    CHECK(map.erase(c_string));
    CHECK(map.empty());
}

TEST_CASE("PrefetchIsAHintThatChangesNothing", "[map]") {
    StringMap map;
    map.prefetch("absent from an empty map");
    for (std::uint64_t i = 0; i < 1000; ++i) map.insert(key_of(i), "v");
    const auto before = contents_of(map);
    map.prefetch(key_of(7));
    map.prefetch(std::string_view("absent"));
    map.prefetch(std::string(""));
    CHECK(contents_of(map) == before);
    map.clear();
    map.prefetch(key_of(7));
    CHECK(map.empty());

    // While another thread grows and clears the tables, the hint it reads
    // may be stale: still no fault and no data race.
    std::atomic<bool> done{false};
    std::thread prefetcher([&] {
        for (std::uint64_t i = 0; !done.load(); ++i) map.prefetch(key_of(i % 50'000));
    });
    for (int round = 0; round < 3; ++round) {
        for (std::uint64_t i = 0; i < 50'000; ++i) map.insert(key_of(i), "v");
        map.clear();
    }
    done = true;
    prefetcher.join();
    CHECK(map.empty());
}

TEST_CASE("EraseRemovesOnlyTheKey", "[map]") {
    StringMap map;
    for (int i = 0; i < 100; ++i) map.insert(key_of(i), "v" + std::to_string(i));
    CHECK(map.erase(key_of(50)));
    CHECK_FALSE(map.erase(key_of(50)));
    CHECK_FALSE(map.erase("never-there"));
    CHECK(map.size() == 99);
    for (int i = 0; i < 100; ++i) CHECK(map.contains(key_of(i)) == (i != 50));
}

TEST_CASE("VisitSeesTheValueAndReportsPresence", "[map]") {
    StringMap map;
    map.insert("k", "value");
    std::string seen;
    CHECK(map.visit("k", [&](std::string_view value) { seen = value; }));
    CHECK(seen == "value");
    CHECK_FALSE(map.visit("missing", [&](std::string_view) { FAIL("called for a missing key"); }));
}

TEST_CASE("UpdateChangesPresentKeysOnly", "[map]") {
    kvstore::ConcurrentMap<std::string, long> counters;
    counters.insert("hits", 1L);
    CHECK(counters.update("hits", [](long& n) { n += 41; }));
    CHECK(counters.get("hits") == 42);
    CHECK_FALSE(counters.update("misses", [](long& n) { ++n; }));
    CHECK_FALSE(counters.contains("misses"));

    StringMap strings;
    strings.insert("k", "abc");
    CHECK(strings.update("k", [](std::string& v) { v.append(1000, 'z'); }));
    CHECK(strings.get("k") == "abc" + std::string(1000, 'z'));
}

TEST_CASE("UpsertInsertsThenUpdates", "[map]") {
    StringMap map;
    const auto append = [](std::string& v) { v += "+"; };
    CHECK(map.upsert("k", append, [] { return std::string("first"); }));
    CHECK_FALSE(map.upsert("k", append, [] { return std::string("never"); }));
    CHECK_FALSE(map.upsert(std::string_view("k"), append, [] { return std::string("never"); }));
    CHECK(map.get("k") == "first++");
}

TEST_CASE("UpsertWhoseMakerDeclinesInsertsNothing", "[map]") {
    StringMap map;
    int made = 0;
    const auto decline = [&]() -> std::optional<std::string> {
        ++made;
        return std::nullopt;
    };
    const auto append = [](std::string& v) { v += "+"; };
    CHECK_FALSE(map.upsert("k", append, decline));
    CHECK(made == 1);
    CHECK_FALSE(map.contains("k"));
    CHECK(map.size() == 0);
    CHECK(map.upsert("k", append, [&]() -> std::optional<std::string> { return std::string("made"); }));
    CHECK_FALSE(map.upsert("k", append, decline));
    CHECK(made == 1);  // present: only the update runs
    CHECK(map.get("k") == "made+");

    // A map of optionals inserts an empty one: it is a value, not a refusal.
    kvstore::ConcurrentMap<int, std::optional<int>> optionals;
    CHECK(optionals.upsert(1, [](std::optional<int>&) {}, [] { return std::optional<int>{}; }));
    CHECK(optionals.contains(1));
}

TEST_CASE("EraseIfErasesOnlyWhenThePredicateHolds", "[map]") {
    StringMap map;
    map.insert("keep", "1");
    map.insert("drop", "2");
    CHECK_FALSE(map.erase_if("keep", [](std::string_view v) { return v == "2"; }));
    CHECK(map.erase_if("drop", [](std::string_view v) { return v == "2"; }));
    CHECK_FALSE(map.erase_if("missing", [](std::string_view) { return true; }));
    CHECK(map.contains("keep"));
    CHECK_FALSE(map.contains("drop"));
}

TEST_CASE("ForEachVisitsEveryEntryOnce", "[map]") {
    StringMap map;
    std::map<std::string, std::string> model;
    for (int i = 0; i < 5000; ++i) {
        map.insert(key_of(i), std::to_string(i * 7));
        model.emplace(key_of(i), std::to_string(i * 7));
    }
    CHECK(contents_of(map) == model);
}

TEST_CASE("ForEachMutableRewritesValues", "[map]") {
    StringMap strings;
    kvstore::ConcurrentMap<std::uint64_t, std::uint64_t> numbers;
    for (std::uint64_t i = 0; i < 1000; ++i) {
        strings.insert(key_of(i), "x");
        numbers.insert(i, i);
    }
    strings.for_each_mutable(
        [](std::string_view key, std::string& value) { value = std::string(key) + "/long-value"; });
    numbers.for_each_mutable([](std::uint64_t key, std::uint64_t& value) { value = key * 2; });
    for (std::uint64_t i = 0; i < 1000; ++i) {
        CHECK(strings.get(key_of(i)) == key_of(i) + "/long-value");
        CHECK(numbers.get(i) == i * 2);
    }
}

TEST_CASE("EmptyKeyAndEmptyValueAreOrdinary", "[map]") {
    StringMap map;
    CHECK(map.insert("", ""));
    CHECK(map.contains(""));
    CHECK(map.get("") == "");
    CHECK(map.insert_or_assign("", "now set") == false);
    CHECK(map.get("") == "now set");
    CHECK(map.erase(""));
    CHECK_FALSE(map.contains(""));
}

TEST_CASE("LargeKeysAndValuesRoundTrip", "[map]") {
    StringMap map;
    const std::string big_key(70000, 'k');  // needs a three-byte length prefix
    std::string big_value(4 << 20, '\0');
    for (std::size_t i = 0; i < big_value.size(); ++i) big_value[i] = static_cast<char>(i * 31);
    CHECK(map.insert(big_key, big_value));
    std::string out;
    CHECK(map.find(big_key, out));
    CHECK(out == big_value);
    CHECK_FALSE(map.contains(std::string(69999, 'k')));
    CHECK(map.stats().memory_bytes >= big_key.size() + big_value.size());
}

TEST_CASE("CollidingHasherStillFindsEveryKey", "[map]") {
    kvstore::ConcurrentMap<std::string, std::string, CollidingHash> map({4, 0});
    constexpr int kKeys = 3000;  // overflows the home bucket's saturating counter
    for (int i = 0; i < kKeys; ++i) REQUIRE(map.insert(key_of(i), std::to_string(i)));
    for (int i = 0; i < kKeys; ++i) REQUIRE(map.get(key_of(i)) == std::to_string(i));
    CHECK_FALSE(map.contains("not-a-key"));
    for (int i = 0; i < kKeys; i += 2) REQUIRE(map.erase(key_of(i)));
    for (int i = 0; i < kKeys; ++i) REQUIRE(map.contains(key_of(i)) == (i % 2 == 1));
    int nonempty_shards = 0;
    for (std::size_t s = 0; s < map.shard_count(); ++s) nonempty_shards += map.shard_stats(s).size > 0;
    CHECK(nonempty_shards == 1);
}

TEST_CASE("GrowthThroughManyRehashesKeepsEveryEntry", "[map]") {
    StringMap map({1, 0});
    std::size_t last_capacity = 0;
    int growths = 0;
    constexpr int kKeys = 200000;
    for (int i = 0; i < kKeys; ++i) {
        REQUIRE(map.insert(key_of(i), std::to_string(i)));
        const std::size_t capacity = map.shard_stats(0).capacity;
        if (capacity != last_capacity) {
            ++growths;
            last_capacity = capacity;
        }
    }
    CHECK(growths >= 14);
    const kvstore::ShardStats stats = map.stats();
    CHECK(stats.size == kKeys);
    CHECK(stats.load_factor <= 0.875);
    CHECK(stats.load_factor > 0.4);
    for (int i = 0; i < kKeys; ++i) REQUIRE(map.get(key_of(i)) == std::to_string(i));
}

TEST_CASE("ShardsGrowingThroughSharedBucketChunksKeepEveryEntry", "[map]") {
    // With 16 shards, arrays of 128 KiB and up are packed into shared 2 MiB
    // chunks: every shard grows through two sizes of them, then erase and clear free them.
    kvstore::ConcurrentMap<std::uint64_t, std::uint64_t> map({16, 0});
    constexpr std::uint64_t kKeys = 400000;
    const auto count_where = [](auto&& wrong) {
        std::uint64_t found = 0;
        for (std::uint64_t i = 0; i < kKeys; ++i) found += wrong(i) ? 1 : 0;
        return found;
    };
    CHECK(count_where([&](std::uint64_t i) { return !map.insert(i, i * 3); }) == 0);
    CHECK(map.shard_stats(0).capacity * 16 > kKeys);
    CHECK(count_where([&](std::uint64_t i) { return map.get(i) != i * 3; }) == 0);
    CHECK(count_where([&](std::uint64_t i) { return i % 2 == 0 && !map.erase(i); }) == 0);
    CHECK(count_where([&](std::uint64_t i) { return map.contains(i) != (i % 2 == 1); }) == 0);
    map.clear();
    CHECK(count_where([&](std::uint64_t i) { return !map.insert(i, i + 1); }) == 0);
    CHECK(count_where([&](std::uint64_t i) { return map.get(i) != i + 1; }) == 0);
}

TEST_CASE("EraseChurnLeavesNoResidue", "[map]") {
    StringMap map({1, 0});
    std::map<std::string, std::string> model;
    std::mt19937_64 random(7);
    constexpr int kLiveKeys = 1000;
    for (int step = 0; step < 300000; ++step) {
        const std::string key = key_of(random() % (2 * kLiveKeys));
        if (random() % 2) {
            const std::string value = std::to_string(step);
            CHECK(map.insert_or_assign(key, value) == model.insert_or_assign(key, value).second);
        } else {
            CHECK(map.erase(key) == (model.erase(key) == 1));
        }
    }
    CHECK(contents_of(map) == model);
    // Tombstones would have pushed the table to grow; here capacity only
    // follows the live count.
    CHECK(map.stats().capacity <= 4 * 2 * kLiveKeys);
    for (int i = 0; i < 2 * kLiveKeys; ++i) CHECK(map.contains(key_of(i)) == (model.count(key_of(i)) == 1));
}

TEST_CASE("ClearWhilePopulatedEmptiesAndStaysUsable", "[map]") {
    StringMap map;
    for (int i = 0; i < 10000; ++i) map.insert(key_of(i), "value");
    map.clear();
    CHECK(map.size() == 0);
    CHECK(map.empty());
    CHECK(map.stats().capacity == 0);
    CHECK_FALSE(map.contains(key_of(1)));
    int visited = 0;
    map.for_each([&](std::string_view, std::string_view) { ++visited; });
    CHECK(visited == 0);
    CHECK(map.insert(key_of(1), "again"));
    CHECK(map.get(key_of(1)) == "again");
}

TEST_CASE("ReserveAvoidsGrowth", "[map]") {
    StringMap map({8, 0});
    map.reserve(50000);
    const std::size_t reserved = map.stats().capacity;
    CHECK(reserved >= 50000);
    for (int i = 0; i < 50000; ++i) map.insert(key_of(i), "v");
    CHECK(map.stats().capacity == reserved);

    StringMap presized({8, 20000});
    CHECK(presized.stats().capacity >= 20000);
}

TEST_CASE("ShardStatsDescribeEachShard", "[map]") {
    StringMap map({16, 0});
    for (int i = 0; i < 16000; ++i) map.insert(key_of(i), std::string(100, 'v'));
    std::size_t total = 0;
    for (std::size_t s = 0; s < map.shard_count(); ++s) {
        const kvstore::ShardStats stats = map.shard_stats(s);
        CHECK(stats.size > 600);  // an even spread is ~1000 per shard
        CHECK(stats.capacity >= stats.size);
        CHECK(std::abs(stats.load_factor - double(stats.size) / double(stats.capacity)) < 1e-12);
        CHECK(stats.memory_bytes >= stats.size * 116);
        total += stats.size;
    }
    CHECK(total == map.size());
    CHECK_THROWS_AS(map.shard_stats(16), std::out_of_range);
}

TEST_CASE("WeakHashersAreSpreadOverShards", "[map]") {
    kvstore::ConcurrentMap<std::uint64_t, int, IdentityHash> map({64, 0});
    for (std::uint64_t i = 0; i < 64000; ++i) map.insert(i, 1);
    for (std::size_t s = 0; s < map.shard_count(); ++s) {
        CHECK(map.shard_stats(s).size > 700);
        CHECK(map.shard_stats(s).size < 1300);
    }
}

TEST_CASE("BadShardCountsAreRejectedWithTheReason", "[map]") {
    CHECK_THROWS_AS(StringMap({48, 0}), std::invalid_argument);
    CHECK_THROWS_AS(StringMap({std::size_t{1} << 17, 0}), std::invalid_argument);
    try {
        StringMap map({3, 0});
        FAIL("accepted 3 shards");
    } catch (const std::invalid_argument& error) {
        CHECK(std::string(error.what()).find("shard count 3 is not a power of two") != std::string::npos);
    }
    CHECK(StringMap({1, 0}).shard_count() == 1);
    CHECK(StringMap().shard_count() == kvstore::default_shard_count());
    CHECK(kvstore::default_shard_count() >= 64);
}

TEST_CASE("MoveOnlyValuesWork", "[map]") {
    kvstore::ConcurrentMap<int, std::unique_ptr<int>> map({4, 0});
    for (int i = 0; i < 2000; ++i) REQUIRE(map.insert(i, std::make_unique<int>(i)));
    CHECK_FALSE(map.insert(7, std::make_unique<int>(-1)));
    CHECK_FALSE(map.insert_or_assign(7, std::make_unique<int>(700)));
    CHECK(map.visit(7, [](const std::unique_ptr<int>& p) { CHECK(*p == 700); }));
    CHECK(map.update(8, [](std::unique_ptr<int>& p) { p = std::make_unique<int>(800); }));
    CHECK(map.upsert(
        5000, [](std::unique_ptr<int>&) {}, [] { return std::make_unique<int>(5); }));
    long sum = 0;
    map.for_each([&](int, const std::unique_ptr<int>& p) { sum += *p; });
    CHECK(sum == 1999L * 2000 / 2 - 7 - 8 + 700 + 800 + 5);
    CHECK(map.erase(5000));
}

TEST_CASE("InlineLayoutWithStringKeysTakesHeterogeneousKeys", "[map]") {
    kvstore::ConcurrentMap<std::string, std::uint64_t> map({4, 0});
    CHECK(map.insert("literal", std::uint64_t{1}));
    CHECK(map.contains(std::string_view("literal")));
    CHECK(map.get("literal") == 1u);
    CHECK(map.erase(std::string_view("literal")));
}

TEST_CASE("NonTransparentHasherAndComparisonStillWork", "[map]") {
    kvstore::ConcurrentMap<std::string, std::string, StdStringOnlyHash, std::equal_to<std::string>> map({2, 0});
    for (int i = 0; i < 5000; ++i) map.insert(key_of(i), std::to_string(i));
    for (int i = 0; i < 5000; ++i) REQUIRE(map.get(key_of(i)) == std::to_string(i));
    CHECK(map.contains("user:10"));  // converted to std::string for the hasher
}

TEST_CASE("CallbacksThatReenterTheirShardAreCaught", "[map]") {
    StringMap map({1, 0});
    map.insert("k", "v");
    CHECK_THROWS_AS(map.visit("k", [&](std::string_view) { (void)map.contains("k"); }), std::logic_error);
    CHECK_THROWS_AS(map.update("k", [&](std::string&) { map.insert("other", "v"); }), std::logic_error);
    CHECK_THROWS_AS(map.for_each([&](std::string_view, std::string_view) { (void)map.get("k"); }), std::logic_error);
    CHECK_THROWS_AS(map.upsert(
                        "new", [](std::string&) {}, [&] { return *map.get("k"); }),
                    std::logic_error);
    // Each throw released the shard lock: the map is still usable.
    CHECK(map.insert("after", "ok"));
    CHECK(map.size() == 2);
    CHECK(map.get("k") == "v");
}

namespace {
// Places key k in bucket k % bucket count: lets a test lay out a table.
struct BucketPlacingHash {
    using is_avalanching = void;
    std::uint64_t operator()(std::uint64_t key) const noexcept { return key; }
};
}  // namespace

TEST_CASE("LookupsOfMissingKeysEndWhenEveryBucketHasOverflowed", "[map]") {
    kvstore::ConcurrentMap<std::uint64_t, std::uint64_t, BucketPlacingHash> map({1, 0});
    constexpr std::uint64_t kBuckets = 4;
    for (std::uint64_t k = 0; k < 13; ++k) map.insert(k, k);  // grows to four buckets of seven
    for (std::uint64_t k = 0; k < 13; ++k) map.erase(k);
    REQUIRE(map.shard_stats(0).capacity == kBuckets * 7);

    // For each bucket in turn: fill it, push one more of its keys into the
    // next bucket (raising its overflow counter), then erase two of its own.
    // Afterwards no bucket is full, yet every overflow counter is non-zero.
    std::uint64_t next_key[kBuckets] = {0, 1, 2, 3};
    std::size_t held[kBuckets] = {0, 0, 0, 0};
    for (std::uint64_t b = 0; b < kBuckets; ++b) {
        std::vector<std::uint64_t> own;
        while (held[b] < 7) {
            own.push_back(next_key[b]);
            map.insert(next_key[b], b);
            next_key[b] += kBuckets;
            ++held[b];
        }
        map.insert(next_key[b], b);  // displaced into the next bucket
        next_key[b] += kBuckets;
        ++held[(b + 1) % kBuckets];
        map.erase(own[0]);
        map.erase(own[1]);
        held[b] -= 2;
    }
    REQUIRE(map.shard_stats(0).capacity == kBuckets * 7);
    CHECK_FALSE(map.contains(std::uint64_t{1000}));
    CHECK_FALSE(map.contains(std::uint64_t{1001}));
    CHECK(map.size() == 21);
}

TEST_CASE("ErasedRecordsAreReusedNotAccumulated", "[map][memory]") {
    StringMap map({1, 0});
    constexpr int kKeys = 20000;
    // Keys of one length, so that every record has the same size.
    const auto fixed_key = [](int i) { return key_of(100000000 + i); };
    for (int i = 0; i < kKeys; ++i) map.insert(fixed_key(i), std::string(100, 'v'));
    const std::size_t filled = map.stats().memory_bytes;
    for (int round = 1; round <= 5; ++round) {
        for (int i = 0; i < kKeys; ++i) REQUIRE(map.erase(fixed_key(i + kKeys * (round - 1))));
        for (int i = 0; i < kKeys; ++i) REQUIRE(map.insert(fixed_key(i + kKeys * round), std::string(100, 'w')));
    }
    CHECK(map.size() == kKeys);
    CHECK(map.stats().memory_bytes == filled);
}

TEST_CASE("ClearAndRefillReusesRecordMemory", "[map][memory]") {
    StringMap map({4, 0});
    std::size_t first_fill = 0;
    for (int round = 0; round < 10; ++round) {
        for (int i = 0; i < 10000; ++i) map.insert(key_of(i), std::string(60, static_cast<char>('a' + round)));
        for (int i = 0; i < 10000; i += 997)
            REQUIRE(map.get(key_of(i)) == std::string(60, static_cast<char>('a' + round)));
        if (round == 0) first_fill = map.stats().memory_bytes;
        CHECK(map.stats().memory_bytes == first_fill);
        map.clear();
    }
}

TEST_CASE("MixedRecordSizesChurnMatchesTheModel", "[map][memory]") {
    StringMap map({2, 0});
    std::map<std::string, std::string> model;
    std::mt19937_64 random(11);
    for (int step = 0; step < 60000; ++step) {
        const std::string key = key_of(random() % 3000);
        switch (random() % 4) {
        case 0:
            CHECK(map.erase(key) == (model.erase(key) == 1));
            break;
        case 1: {
            const std::string suffix = std::to_string(step);
            CHECK(map.update(key, [&](std::string& v) { v = suffix + std::string(random() % 64, 'u'); }) ==
                  (model.count(key) == 1));
            if (model.count(key)) model[key] = *map.get(key);
            break;
        }
        default: {
            // Sizes on both sides of the arena's largest pooled record.
            const std::size_t size = random() % 8 == 0 ? 1000 + random() % 2000 : random() % 300;
            const std::string value(size, static_cast<char>('a' + step % 26));
            CHECK(map.insert_or_assign(key, value) == model.insert_or_assign(key, value).second);
        }
        }
    }
    CHECK(contents_of(map) == model);
}

TEST_CASE("with_keys_locked changes several keys under their shards' locks, and clear_if clears only when told to",
          "[map]") {
    kvstore::ConcurrentMap<std::string, int> map(kvstore::MapOptions{16, 0});
    map.insert("stays", 1);
    const std::vector<std::string> keys{"a", "b", "c", "stays"};
    const int changed = map.with_keys_locked(keys, [](auto& locked) {
        locked.insert_or_assign(std::string("a"), 1);
        locked.insert_or_assign(std::string("b"), 2);
        locked.insert_or_assign(std::string("a"), 3);
        CHECK(locked.erase(std::string("stays")));
        CHECK_FALSE(locked.erase(std::string("c")));
        return 3;
    });
    CHECK(changed == 3);
    CHECK(map.get("a") == std::optional<int>(3));
    CHECK(map.get("b") == std::optional<int>(2));
    CHECK_FALSE(map.contains("stays"));
    CHECK(map.size() == 2);

    // A key whose shard was not locked is refused rather than changed
    // unlocked: of 64 keys, some fall outside the shard of "a".
    CHECK_THROWS_AS(map.with_keys_locked(std::vector<std::string>{"a"},
                                         [&](auto& locked) {
                                             for (int i = 0; i < 64; ++i)
                                                 locked.insert_or_assign("x" + std::to_string(i), i);
                                         }),
                    std::logic_error);

    CHECK_FALSE(map.clear_if([] { return false; }));
    CHECK(map.size() >= 2);
    CHECK(map.clear_if([] { return true; }));
    CHECK(map.empty());
}
