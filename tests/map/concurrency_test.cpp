// Multi-threaded tests whose outcome is checked exactly. They are sized to
// finish in seconds under ThreadSanitizer on two cores.
#include <kvstore/concurrent_map.hpp>

#include "catch.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr int kThreads = 4;

// Catch2's assertions are not thread-safe: worker threads record failures
// here, and the test thread checks them once the workers have joined.
class ThreadChecks {
public:
    void expect(bool ok, const char* condition, int line) {
        if (ok) return;
        std::lock_guard<std::mutex> lock(mutex_);
        if (failures_++ == 0) first_ = std::string(condition) + " at line " + std::to_string(line);
    }
    void require_none() const {
        std::lock_guard<std::mutex> lock(mutex_);
        INFO("first failure: " << first_);
        REQUIRE(failures_ == 0);
    }

private:
    mutable std::mutex mutex_;
    long failures_ = 0;
    std::string first_;
};

#define EXPECT_IN_THREAD(condition)                         \
    checks.expect(static_cast<bool>(condition), #condition, \
                  __LINE__)  // more threads than cores, to force preemption inside critical sections

std::string key_of(std::uint64_t i) { return "user:" + std::to_string(i); }

template <class Body>
void run_threads(int count, Body body) {
    std::vector<std::thread> threads;
    for (int t = 0; t < count; ++t) threads.emplace_back(body, t);
    for (std::thread& thread : threads) thread.join();
}

// A value whose every byte is derived from (key id, version), so a reader can
// tell a whole value from a mix of two writes. Its length varies with the
// version so that packed records get replaced as well as rewritten in place.
std::string value_for(std::uint64_t id, std::uint64_t version) {
    const std::string stamp = std::to_string(id) + ":" + std::to_string(version) + ";";
    std::string value;
    const std::size_t length = 64 + (version % 3) * 40;
    while (value.size() < length) value += stamp;
    return value;
}

bool is_whole_value(std::string_view key, std::string_view value) {
    const std::size_t colon = value.find(':');
    const std::size_t semicolon = value.find(';');
    if (colon == std::string_view::npos || semicolon == std::string_view::npos) return false;
    const std::uint64_t id = std::stoull(std::string(value.substr(0, colon)));
    const std::uint64_t version = std::stoull(std::string(value.substr(colon + 1, semicolon - colon - 1)));
    return key == key_of(id) && value == value_for(id, version);
}

}  // namespace

TEST_CASE("ConcurrentUpdatesSumToTheExpectedTotal", "[map][concurrency]") {
    ThreadChecks checks;
    kvstore::ConcurrentMap<std::string, std::uint64_t> counters({8, 0});
    constexpr int kKeys = 64;
    constexpr int kIncrementsPerThread = 20000;
    for (int k = 0; k < kKeys; ++k) counters.insert(key_of(k), std::uint64_t{0});
    run_threads(kThreads, [&](int t) {
        std::mt19937 random(static_cast<unsigned>(t));
        for (int i = 0; i < kIncrementsPerThread; ++i)
            EXPECT_IN_THREAD(counters.update(key_of(random() % kKeys), [](std::uint64_t& n) { ++n; }));
    });
    std::uint64_t total = 0;
    counters.for_each([&](const std::string&, std::uint64_t n) { total += n; });
    CHECK(total == std::uint64_t{kThreads} * kIncrementsPerThread);
    checks.require_none();
}

TEST_CASE("ConcurrentUpsertsCountEveryCall", "[map][concurrency]") {
    kvstore::ConcurrentMap<std::string, std::string> counters({4, 0});
    constexpr int kKeys = 50;
    constexpr int kCallsPerThread = 5000;
    // Each thread hits every key the same number of times, racing to create it.
    run_threads(kThreads, [&](int) {
        for (int i = 0; i < kCallsPerThread; ++i)
            counters.upsert(
                key_of(i % kKeys), [](std::string& n) { n = std::to_string(std::stoi(n) + 1); },
                [] { return std::string("1"); });
    });
    REQUIRE(counters.size() == kKeys);
    counters.for_each([&](std::string_view, std::string_view n) {
        CHECK(std::stoi(std::string(n)) == kThreads * kCallsPerThread / kKeys);
    });
}

TEST_CASE("ConcurrentInsertEraseEndsInTheModelsState", "[map][concurrency]") {
    ThreadChecks checks;
    // Keys [0, kPrivate * kThreads) belong to one thread each: its own model
    // predicts their final state exactly. Keys from kShared on are contended:
    // every successful insert and erase is counted, and a key must be present
    // at the end iff its successful inserts outnumber its erases by one.
    constexpr std::uint64_t kPrivate = 500;
    constexpr std::uint64_t kShared = kPrivate * kThreads;
    constexpr std::uint64_t kSharedKeys = 300;
    constexpr int kSteps = 30000;
    kvstore::ConcurrentMap<std::string, std::string> map({16, 0});
    std::vector<std::map<std::string, std::string>> models(kThreads);
    std::vector<std::atomic<long>> balance(kSharedKeys);

    run_threads(kThreads, [&](int t) {
        std::mt19937_64 random(static_cast<std::uint64_t>(t) * 7919);
        auto& model = models[t];
        for (int step = 0; step < kSteps; ++step) {
            const bool shared = random() % 2;
            const std::uint64_t id = shared ? kShared + random() % kSharedKeys : t * kPrivate + random() % kPrivate;
            const std::string key = key_of(id);
            switch (random() % 3) {
            case 0: {
                const std::string value = value_for(id, step);
                const bool inserted = map.insert(key, value);
                if (shared && inserted) ++balance[id - kShared];
                if (!shared) EXPECT_IN_THREAD(inserted == model.emplace(key, value).second);
                break;
            }
            case 1: {
                const bool erased = map.erase(key);
                if (shared && erased) --balance[id - kShared];
                if (!shared) EXPECT_IN_THREAD(erased == (model.erase(key) == 1));
                break;
            }
            default:
                if (!shared) {
                    const std::string value = value_for(id, step);
                    EXPECT_IN_THREAD(map.insert_or_assign(key, value) == model.insert_or_assign(key, value).second);
                }
                break;
            }
        }
    });

    std::size_t expected_size = 0;
    for (int t = 0; t < kThreads; ++t) {
        for (std::uint64_t id = t * kPrivate; id < (t + 1) * kPrivate; ++id) {
            const auto modelled = models[t].find(key_of(id));
            const std::optional<std::string> actual = map.get(key_of(id));
            if (modelled == models[t].end()) {
                REQUIRE_FALSE(actual.has_value());
            } else {
                REQUIRE(actual == modelled->second);
            }
        }
        expected_size += models[t].size();
    }
    for (std::uint64_t k = 0; k < kSharedKeys; ++k) {
        const long net = balance[k].load();
        REQUIRE((net == 0 || net == 1));
        REQUIRE(map.contains(key_of(kShared + k)) == (net == 1));
        expected_size += static_cast<std::size_t>(net);
    }
    CHECK(map.size() == expected_size);
    std::size_t visited = 0;
    map.for_each([&](std::string_view key, std::string_view value) {
        ++visited;
        REQUIRE(is_whole_value(key, value));
    });
    CHECK(visited == expected_size);
    checks.require_none();
}

TEST_CASE("ForEachDuringWritesNeverSeesATornValue", "[map][concurrency]") {
    ThreadChecks checks;
    constexpr std::uint64_t kKeys = 2000;
    kvstore::ConcurrentMap<std::string, std::string> map({8, 0});
    for (std::uint64_t id = 0; id < kKeys; ++id) map.insert(key_of(id), value_for(id, 0));
    std::atomic<bool> writers_done{false};
    std::atomic<long> entries_checked{0};

    std::thread reader([&] {
        do {
            std::size_t seen = 0;
            map.for_each([&](std::string_view key, std::string_view value) {
                ++seen;
                EXPECT_IN_THREAD(is_whole_value(key, value));
            });
            // Writers replace values but never remove keys here.
            EXPECT_IN_THREAD(seen == kKeys);
            entries_checked += static_cast<long>(seen);
        } while (!writers_done.load());
    });
    run_threads(2, [&](int t) {
        std::mt19937_64 random(static_cast<std::uint64_t>(t) + 1);
        for (std::uint64_t version = 1; version <= 40000; ++version) {
            const std::uint64_t id = random() % kKeys;
            if (version % 2) {
                map.insert_or_assign(key_of(id), value_for(id, version));
            } else {
                map.update(key_of(id), [&](std::string& value) { value = value_for(id, version); });
            }
        }
    });
    writers_done = true;
    reader.join();
    CHECK(entries_checked.load() >= static_cast<long>(kKeys));
    checks.require_none();
}

TEST_CASE("InlineValuesAreNeverTornEither", "[map][concurrency]") {
    ThreadChecks checks;
    using Block = std::array<std::uint64_t, 16>;  // 128 bytes: copied in many stores
    kvstore::ConcurrentMap<std::uint64_t, Block> map({4, 0});
    constexpr std::uint64_t kKeys = 512;
    for (std::uint64_t k = 0; k < kKeys; ++k) map.insert(k, Block{});
    std::atomic<bool> done{false};
    std::thread reader([&] {
        Block copy{};
        while (!done.load()) {
            for (std::uint64_t k = 0; k < kKeys; ++k) {
                EXPECT_IN_THREAD(map.find(k, copy));
                for (std::uint64_t word : copy) EXPECT_IN_THREAD(word == copy[0]);
            }
            map.for_each([&](std::uint64_t, const Block& block) {
                for (std::uint64_t word : block) EXPECT_IN_THREAD(word == block[0]);
            });
        }
    });
    run_threads(2, [&](int t) {
        for (std::uint64_t round = 1; round <= 30000; ++round) {
            Block block;
            block.fill(round * 2 + static_cast<std::uint64_t>(t));
            map.insert_or_assign((round * 31 + static_cast<std::uint64_t>(t)) % kKeys, block);
        }
    });
    done = true;
    reader.join();
    checks.require_none();
}

TEST_CASE("ConcurrentGrowthKeepsEveryInsert", "[map][concurrency]") {
    ThreadChecks checks;
    // Few shards, so that threads keep growing the same tables.
    kvstore::ConcurrentMap<std::string, std::string> map({2, 0});
    constexpr std::uint64_t kPerThread = 25000;
    std::atomic<long> lookups_failed{0};
    run_threads(kThreads, [&](int t) {
        const std::uint64_t first = static_cast<std::uint64_t>(t) * kPerThread;
        for (std::uint64_t id = first; id < first + kPerThread; ++id) {
            EXPECT_IN_THREAD(map.insert(key_of(id), value_for(id, 0)));
            // Read back an earlier key of this thread while others grow the table.
            const std::uint64_t earlier = first + (id - first) / 2;
            if (!map.contains(key_of(earlier))) ++lookups_failed;
        }
    });
    CHECK(lookups_failed.load() == 0);
    REQUIRE(map.size() == kThreads * kPerThread);
    for (std::uint64_t id = 0; id < kThreads * kPerThread; ++id) REQUIRE(map.get(key_of(id)) == value_for(id, 0));
    checks.require_none();
}

TEST_CASE("ConcurrentEraseIfAndClearKeepCountsConsistent", "[map][concurrency]") {
    ThreadChecks checks;
    kvstore::ConcurrentMap<std::uint64_t, std::uint64_t> map({8, 0});
    std::atomic<bool> done{false};
    std::thread clearer([&] {
        while (!done.load()) {
            map.clear();
            std::this_thread::yield();
        }
    });
    run_threads(2, [&](int t) {
        for (std::uint64_t i = 0; i < 40000; ++i) {
            const std::uint64_t key = (i * 13 + static_cast<std::uint64_t>(t)) % 1000;
            map.insert_or_assign(key, key);
            map.erase_if(key, [&](std::uint64_t value) {
                EXPECT_IN_THREAD(value == key);
                return i % 2 == 0;
            });
        }
    });
    done = true;
    clearer.join();
    std::size_t counted = 0;
    map.for_each([&](std::uint64_t key, std::uint64_t value) {
        ++counted;
        REQUIRE(key == value);
    });
    CHECK(counted == map.size());
    checks.require_none();
}

TEST_CASE("BulkInsertersOnSeveralThreadsFillOneMapExactly", "[map][concurrency]") {
    ThreadChecks checks;
    kvstore::ConcurrentMap<std::string, std::string> map({8, 0});
    // Keys [0, kPrivate * kThreads) belong to one thread each; every thread
    // writes all of [kShared, kShared + kSharedKeys), its own version.
    constexpr std::uint64_t kPrivate = 6000;
    constexpr std::uint64_t kShared = kPrivate * kThreads;
    constexpr std::uint64_t kSharedKeys = 2000;
    std::atomic<bool> done{false};
    std::thread reader([&] {
        std::mt19937_64 random(99);
        std::string value;
        while (!done.load()) {
            const std::uint64_t id = random() % (kShared + kSharedKeys);
            if (map.find(key_of(id), value)) EXPECT_IN_THREAD(is_whole_value(key_of(id), value));
        }
    });
    run_threads(kThreads, [&](int t) {
        std::vector<std::uint64_t> ids;
        for (std::uint64_t id = 0; id < kPrivate; ++id) ids.push_back(static_cast<std::uint64_t>(t) * kPrivate + id);
        for (std::uint64_t id = kShared; id < kShared + kSharedKeys; ++id) ids.push_back(id);
        // Half the threads change shards at almost every key.
        if (t % 2 == 0) std::shuffle(ids.begin(), ids.end(), std::mt19937_64(static_cast<std::uint64_t>(t)));
        kvstore::ConcurrentMap<std::string, std::string>::BulkInserter inserter(map);
        const auto version = static_cast<std::uint64_t>(t) + 1;
        for (const std::uint64_t id : ids) {
            inserter.prefetch(key_of(id));
            inserter.insert_or_assign(key_of(id), value_for(id, id < kShared ? 0 : version));
        }
    });
    done = true;
    reader.join();
    REQUIRE(map.size() == kShared + kSharedKeys);
    for (std::uint64_t id = 0; id < kShared; ++id) REQUIRE(map.get(key_of(id)) == value_for(id, 0));
    for (std::uint64_t id = kShared; id < kShared + kSharedKeys; ++id) {
        const std::optional<std::string> value = map.get(key_of(id));
        REQUIRE(value.has_value());
        const std::string_view stamp(*value);
        const std::uint64_t version = std::stoull(std::string(stamp.substr(stamp.find(':') + 1)));
        CHECK(version >= 1);
        CHECK(version <= kThreads);
        CHECK(*value == value_for(id, version));
    }
    checks.require_none();
}

TEST_CASE("ABulkInserterHoldsItsShardUntilItReleasesIt", "[map][concurrency]") {
    kvstore::ConcurrentMap<std::string, std::string> map({1, 0});  // every key in one shard
    std::optional<kvstore::ConcurrentMap<std::string, std::string>::BulkInserter> inserter(std::in_place, map);
    inserter->insert_or_assign("a", "1");
    inserter->release();
    CHECK(map.insert("b", "2"));           // released: no wait
    inserter->insert_or_assign("c", "3");  // locks the shard again
    std::atomic<bool> written{false};
    std::thread writer([&] {
        map.insert_or_assign("d", "4");
        written = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(written.load());
    inserter.reset();  // destroying it releases the shard
    writer.join();
    CHECK(written.load());
    CHECK(map.size() == 4);
    CHECK(map.get("c") == "3");
}

TEST_CASE("TwoThreadsFillOneMapThroughTheTwoPartsOfASplitWithoutLocks", "[map][concurrency]") {
    using Map = kvstore::ConcurrentMap<std::string, std::string>;
    constexpr std::uint64_t kKeys = 40'000;
    Map map({64, 0});
    ThreadChecks checks;
    map.without_locks([&](Map::LockedKeys& all) {
        auto [first, rest] = all.split(8);
        std::uint64_t held_by_first = 0;
        for (std::uint64_t i = 0; i < kKeys; ++i) {
            const std::uint64_t hash = map.key_hash(key_of(i));
            REQUIRE(first.holds(hash) != rest.holds(hash));
            REQUIRE(all.holds(hash));
            if (first.holds(hash)) ++held_by_first;
        }
        CHECK(held_by_first > kKeys / 16);  // 8 shards of 64: about an eighth
        CHECK(held_by_first < kKeys / 4);
        // Each thread sets, overwrites (in two parts) and erases only the
        // keys of its own part; the keys' hashes come from the other side.
        auto fill = [&](Map::LockedKeys& part) {
            for (std::uint64_t i = 0; i < kKeys; ++i) {
                const std::string key = key_of(i);
                const std::uint64_t hash = map.key_hash(key);
                if (!part.holds(hash)) continue;
                part.prefetch_hashed(hash);
                part.insert_or_assign_hashed(hash, key, "first");
                part.insert_or_assign_hashed(hash, key, kvstore::detail::SplitBytes{"value-", std::to_string(i)});
                if (i % 3 == 0) EXPECT_IN_THREAD(part.erase_hashed(hash, key));
            }
        };
        std::thread other([&] { fill(rest); });
        fill(first);
        other.join();
    });
    checks.require_none();
    std::uint64_t expected = 0;
    for (std::uint64_t i = 0; i < kKeys; ++i) {
        const std::optional<std::string> value = map.get(key_of(i));
        if (i % 3 == 0) {
            CHECK(!value);
        } else {
            ++expected;
            CHECK(value == "value-" + std::to_string(i));
        }
    }
    CHECK(map.size() == expected);
}

TEST_CASE("AKeyOutsideThePartHeldOrAWrongHashIsRefused", "[map]") {
    using Map = kvstore::ConcurrentMap<std::string, std::string>;
    Map map({8, 0});
    map.without_locks([&](Map::LockedKeys& all) {
        auto [first, rest] = all.split(4);
        std::uint64_t i = 0;
        while (first.holds(map.key_hash(key_of(i)))) ++i;
        const std::string outside = key_of(i);
        CHECK_THROWS_AS(first.insert_or_assign(outside, "v"), std::logic_error);
        CHECK(rest.insert_or_assign(outside, "v"));
        auto [none, everything] = all.split(0);
        CHECK(!none.holds(map.key_hash(outside)));
        CHECK(everything.holds(map.key_hash(outside)));
#ifndef NDEBUG
        CHECK_THROWS_AS(rest.insert_or_assign_hashed(map.key_hash(outside) ^ 1, outside, "w"), std::logic_error);
#endif
    });
    CHECK(map.size() == 1);
}
