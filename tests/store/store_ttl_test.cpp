// Time-to-live: expired keys are never returned, are removed lazily and by
// the sweeper, and keep their absolute expiry across reopens and snapshots.
#include "catch.hpp"
#include "store_fixture.hpp"

#include <kvstore/store.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

namespace {

// A wall clock the test moves by hand, shared by every store it opens.
struct ManualClock {
    std::atomic<std::int64_t> now_ms{1'700'000'000'000};

    std::function<TimePoint()> function() {
        return [this] { return TimePoint(milliseconds(now_ms.load())); };
    }
    TimePoint at(std::int64_t ms) const { return TimePoint(milliseconds(ms)); }
    void advance(milliseconds by) { now_ms += by.count(); }
};

template <class Durability, class K = std::string, class V = std::string>
struct TtlFixture : StoreFixture<Durability, K, V> {
    ManualClock clock;
    TtlFixture() {
        this->options.clock = clock.function();
        this->options.sweep_interval = milliseconds(0);  // tests sweep by hand unless they say otherwise
    }
};

}  // namespace

TEMPLATE_TEST_CASE("An expired key is never returned and is removed when read", "[store][ttl]", None, SyncWAL,
                   GroupCommitWAL) {
    TtlFixture<TestType> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("session", "alice", milliseconds(1000)));
    REQUIRE(store.put("forever", "bob"));
    std::optional<TimePoint> when;
    REQUIRE(store.expires_at("session", when));
    REQUIRE(when);
    CHECK(*when == fixture.clock.at(fixture.clock.now_ms + 1000));
    REQUIRE(store.expires_at("forever", when));
    CHECK_FALSE(when);
    CHECK_FALSE(store.expires_at("nobody", when));

    fixture.clock.advance(milliseconds(999));
    CHECK(store.get("session") == "alice");

    fixture.clock.advance(milliseconds(1));
    CHECK(store.size() == 2);  // still held until something finds it
    CHECK_FALSE(store.get("session"));
    CHECK(store.size() == 1);
    CHECK(store.stats().expired_keys == 1);
    std::string out = "untouched";
    CHECK_FALSE(store.find("session", out));
    CHECK(out == "untouched");
    CHECK_FALSE(store.contains("session"));
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"forever", "bob"}});
}

TEST_CASE("for_each, contains and find skip an expired key that is still held", "[store][ttl]") {
    TtlFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("short", "x", milliseconds(10)));
    REQUIRE(store.put("long", "y", milliseconds(100'000)));
    fixture.clock.advance(milliseconds(10));
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"long", "y"}});
    CHECK(store.size() == 2);
    std::string out;
    CHECK(store.find("long", out));
    CHECK(out == "y");
    CHECK_FALSE(store.contains("short"));
}

TEMPLATE_TEST_CASE("Writes treat an expired key as absent", "[store][ttl]", None, GroupCommitWAL) {
    TtlFixture<TestType> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("k", "old", milliseconds(5)));
    fixture.clock.advance(milliseconds(5));

    bool flag = true;
    REQUIRE(store.compare_and_set("k", "old", "new", flag));
    CHECK_FALSE(flag);
    REQUIRE(store.update(
        "k", [](std::string& value) { value += "!"; }, flag));
    CHECK_FALSE(flag);
    REQUIRE(store.expire("k", milliseconds(100), flag));
    CHECK_FALSE(flag);
    REQUIRE(store.persist("k", flag));
    CHECK_FALSE(flag);
    REQUIRE(store.put_if_absent("k", "fresh", flag));
    CHECK(flag);
    CHECK(store.get("k") == "fresh");
    std::optional<TimePoint> when;
    REQUIRE(store.expires_at("k", when));
    CHECK_FALSE(when);

    REQUIRE(store.put("gone", "v", milliseconds(1)));
    fixture.clock.advance(milliseconds(1));
    bool erased = true;
    REQUIRE(store.erase("gone", &erased));
    CHECK_FALSE(erased);  // it had already expired
    CHECK(store.size() == 1);
}

TEMPLATE_TEST_CASE("put clears an expiry, and update, compare_and_set and expire keep or set it", "[store][ttl]",
                   SyncWAL, GroupCommitWAL) {
    TtlFixture<TestType> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    const std::int64_t start = fixture.clock.now_ms;
    std::optional<TimePoint> when;

    REQUIRE(store.put("a", "1", milliseconds(50)));
    bool flag = false;
    REQUIRE(store.update(
        "a", [](std::string& value) { value = "2"; }, flag));
    REQUIRE(flag);
    REQUIRE(store.compare_and_set("a", "2", "3", flag));
    REQUIRE(flag);
    REQUIRE(store.expires_at("a", when));
    CHECK(when == fixture.clock.at(start + 50));

    REQUIRE(store.expire("a", milliseconds(500), flag));
    REQUIRE(flag);
    REQUIRE(store.expires_at("a", when));
    CHECK(when == fixture.clock.at(start + 500));

    REQUIRE(store.persist("a", flag));
    CHECK(flag);
    REQUIRE(store.persist("a", flag));
    CHECK_FALSE(flag);  // had none left

    REQUIRE(store.put("b", "1", milliseconds(50)));
    REQUIRE(store.put("b", "2"));
    REQUIRE(store.expires_at("b", when));
    CHECK_FALSE(when);

    // All of it survives a reopen as it was acknowledged.
    REQUIRE(fixture.reopen());
    fixture.clock.advance(milliseconds(10'000));
    CHECK(fixture.store->get("a") == "3");
    CHECK(fixture.store->get("b") == "2");
}

TEST_CASE("A time-to-live that is not positive or ends past the last time is refused, writing nothing",
          "[store][ttl]") {
    TtlFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    const auto records = store.log_stats().records;
    for (const milliseconds ttl : {milliseconds(0), milliseconds(-5), milliseconds::max()}) {
        const Status status = store.put("k", "v", ttl);
        CHECK(status.code() == StatusCode::kInvalidArgument);
        CHECK(status.to_string().find("time-to-live") != std::string::npos);
        bool flag = true;
        CHECK(store.put_if_absent("k", "v", flag, ttl).code() == StatusCode::kInvalidArgument);
        CHECK_FALSE(flag);
        CHECK(store.expire("k", ttl, flag).code() == StatusCode::kInvalidArgument);
        WriteBatch<std::string, std::string> batch;
        batch.put("k", "v", ttl);
        CHECK(store.write(batch).code() == StatusCode::kInvalidArgument);
    }
    CHECK_FALSE(store.contains("k"));
    CHECK(store.log_stats().records == records);
}

TEMPLATE_TEST_CASE("An expiry is absolute across reopens, from the log and from a snapshot", "[store][ttl]", SyncWAL,
                   GroupCommitWAL) {
    const bool from_snapshot = GENERATE(false, true);
    TtlFixture<TestType> fixture;
    REQUIRE(fixture.open());
    REQUIRE(fixture.store->put("early", "1", milliseconds(1000)));
    REQUIRE(fixture.store->put("late", "2", milliseconds(5000)));
    // An older value under the key must not come back when its expiring
    // replacement is replayed after its time.
    REQUIRE(fixture.store->put("replaced", "old"));
    REQUIRE(fixture.store->put("replaced", "new", milliseconds(1000)));
    if (from_snapshot) REQUIRE(fixture.store->checkpoint());
    const std::int64_t written_at = fixture.clock.now_ms;

    fixture.clock.advance(milliseconds(500));
    REQUIRE(fixture.reopen());
    CHECK(fixture.store->get("early") == "1");
    CHECK(fixture.store->get("replaced") == "new");
    std::optional<TimePoint> when;
    REQUIRE(fixture.store->expires_at("late", when));
    CHECK(when == fixture.clock.at(written_at + 5000));

    fixture.clock.advance(milliseconds(1000));
    REQUIRE(fixture.reopen());
    CHECK_FALSE(fixture.store->contains("early"));
    CHECK_FALSE(fixture.store->contains("replaced"));
    CHECK(fixture.store->get("late") == "2");
    CHECK(fixture.store->size() == 1);  // expired entries are not even loaded

    fixture.clock.advance(milliseconds(5000));
    REQUIRE(fixture.reopen());
    CHECK(fixture.store->size() == 0);
}

TEST_CASE("A snapshot leaves out expired keys and keeps the expiry of live ones under None", "[store][ttl]") {
    TtlFixture<None> fixture;
    REQUIRE(fixture.open());
    REQUIRE(fixture.store->put("short", "1", milliseconds(10)));
    REQUIRE(fixture.store->put("long", "2", milliseconds(10'000)));
    REQUIRE(fixture.store->put("plain", "3"));
    fixture.clock.advance(milliseconds(10));
    REQUIRE(fixture.store->checkpoint());
    REQUIRE(fixture.reopen());
    CHECK(fixture.recovery.snapshot_entries == 2);
    fixture.clock.advance(milliseconds(10'000));
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"plain", "3"}});
}

TEST_CASE("Batch puts may expire, and replay as they were written", "[store][ttl]") {
    TtlFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    WriteBatch<std::string, std::string> batch;
    batch.put("a", "1", milliseconds(100));
    batch.put("b", "2");
    REQUIRE(fixture.store->write(batch));
    fixture.clock.advance(milliseconds(50));
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}});
    fixture.clock.advance(milliseconds(50));
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"b", "2"}});
}

TEMPLATE_TEST_CASE("Values of other types expire too", "[store][ttl]", None, GroupCommitWAL) {
    TtlFixture<TestType, std::uint64_t, std::uint64_t> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put(std::uint64_t{1}, std::uint64_t{10}, milliseconds(100)));
    REQUIRE(store.put(std::uint64_t{2}, std::uint64_t{20}));
    bool found = false;
    REQUIRE(store.update(
        std::uint64_t{1}, [](std::uint64_t& value) { ++value; }, found));
    CHECK(found);
    REQUIRE(store.checkpoint());
    REQUIRE(fixture.reopen());
    CHECK(fixture.store->get(std::uint64_t{1}) == std::uint64_t{11});
    fixture.clock.advance(milliseconds(100));
    CHECK_FALSE(fixture.store->get(std::uint64_t{1}));
    CHECK(fixture.store->get(std::uint64_t{2}) == std::uint64_t{20});
}

TEST_CASE("remove_expired removes exactly the expired keys", "[store][ttl]") {
    TtlFixture<GroupCommitWAL> fixture;
    fixture.options.map.shards = 16;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    for (int i = 0; i < 1000; ++i) {
        const std::string key = "k" + std::to_string(i);
        if (i % 3 == 0) {
            REQUIRE(store.put(key, "v"));
        } else {
            REQUIRE(store.put(key, "v", milliseconds(i % 3 == 1 ? 10 : 1000)));
        }
    }
    const auto records = store.log_stats().records;
    fixture.clock.advance(milliseconds(10));
    CHECK(store.remove_expired() == 333);
    CHECK(store.size() == 667);
    CHECK(store.stats().expired_keys == 333);
    CHECK(store.log_stats().records == records);  // removals of expired keys are not logged
    CHECK(store.remove_expired() == 0);
    for (int i = 0; i < 1000; ++i) CHECK(store.contains("k" + std::to_string(i)) == (i % 3 != 1));
}

TEST_CASE("The background sweeper removes expired keys while others read and write", "[store][ttl]") {
    TtlFixture<GroupCommitWAL> fixture;
    fixture.options.sweep_interval = milliseconds(1);
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    for (int i = 0; i < 500; ++i) REQUIRE(store.put("expiring" + std::to_string(i), "v", milliseconds(10)));
    std::atomic<bool> stop{false};
    std::atomic<int> wrong{0};
    std::thread writer([&] {
        for (int i = 0; !stop; i = (i + 1) % 100)
            if (!store.put("kept" + std::to_string(i), std::to_string(i))) ++wrong;
    });
    std::thread reader([&] {
        while (!stop) {
            for (int i = 0; i < 100; ++i) {
                const auto value = store.get("kept" + std::to_string(i));
                if (value && *value != std::to_string(i)) ++wrong;
            }
        }
    });
    fixture.clock.advance(milliseconds(10));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (store.stats().expired_keys < 500 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(milliseconds(1));
    stop = true;
    writer.join();
    reader.join();
    CHECK(store.stats().expired_keys == 500);
    CHECK(wrong == 0);
    for (int i = 0; i < 500; ++i) CHECK_FALSE(store.contains("expiring" + std::to_string(i)));
}

TEST_CASE("A paused sweeper leaves expired keys held, unreturned, until it resumes", "[store][ttl]") {
    TtlFixture<None> fixture;
    fixture.options.sweep_interval = milliseconds(1);
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    store.pause_sweeps(true);
    for (int i = 0; i < 50; ++i) REQUIRE(store.put("expiring" + std::to_string(i), "v", milliseconds(10)));
    fixture.clock.advance(milliseconds(10));
    // Many sweep intervals pass: a sweeper that ignored the pause would
    // have removed them by now.
    std::this_thread::sleep_for(milliseconds(100));
    CHECK(store.size() == 50);
    CHECK(store.stats().expired_keys == 0);
    CHECK_FALSE(store.contains("expiring0"));  // never returned; this read removes it
    CHECK(store.size() == 49);
    store.pause_sweeps(false);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (store.size() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
    CHECK(store.size() == 0);
}

namespace {

// What a store should hold: each key's value and its expiry in ms (0: none).
using Model = std::map<std::string, std::pair<std::string, std::int64_t>>;

std::map<std::string, std::string> live_at(const Model& model, std::int64_t now_ms) {
    std::map<std::string, std::string> live;
    for (const auto& [key, entry] : model)
        if (entry.second == 0 || entry.second > now_ms) live.emplace(key, entry.first);
    return live;
}

}  // namespace

TEMPLATE_TEST_CASE("Logs and snapshots of many batches of changes recover to the model on two threads",
                   "[store][ttl][model]", SyncWAL, None) {
    // Recovery hands decoded changes to a second thread in batches of a few
    // thousand; these runs cross many batches with every kind of change, and
    // expiries that pass while the store is closed.
    constexpr bool kLogs = !std::is_same_v<TestType, None>;
    const unsigned seed = GENERATE(21u, 22u);
    CAPTURE(seed);
    std::mt19937 random(seed);
    TtlFixture<TestType> fixture;
    REQUIRE(fixture.open());
    Model model;
    Model checkpointed;
    auto value_for = [&](std::size_t step) { return std::string(random() % 160, static_cast<char>('a' + step % 26)); };
    constexpr int kSteps = 30'000;
    constexpr int kClearsUntil = 5'000;
    constexpr int kCheckpointAt = 20'000;
    for (int step = 0; step < kSteps; ++step) {
        const std::string key = "key-" + std::to_string(random() % 8000);
        const unsigned action = random() % 1000;
        const std::int64_t now = fixture.clock.now_ms;
        if (action < 600) {
            const std::string value = value_for(step);
            REQUIRE(fixture.store->put(key, value));
            model[key] = {value, 0};
        } else if (action < 700) {
            const std::string value = value_for(step);
            const std::int64_t ttl = 1 + random() % 20'000;
            REQUIRE(fixture.store->put(key, value, milliseconds(ttl)));
            model[key] = {value, now + ttl};
        } else if (action < 850) {
            REQUIRE(fixture.store->erase(key));
            model.erase(key);
        } else if (action < 950) {
            WriteBatch<std::string, std::string> batch;
            for (unsigned i = random() % 8; i > 0; --i) {
                const std::string batch_key = "key-" + std::to_string(random() % 8000);
                if (random() % 4 == 0) {
                    batch.erase(batch_key);
                    model.erase(batch_key);
                } else {
                    const std::string value = value_for(step + i);
                    batch.put(batch_key, value);
                    model[batch_key] = {value, 0};
                }
            }
            REQUIRE(fixture.store->write(batch));
        } else if (action < 999) {
            fixture.clock.advance(milliseconds(random() % 100));
        } else if (step < kClearsUntil) {
            REQUIRE(fixture.store->clear());
            model.clear();
        }
        if (step == kCheckpointAt) {
            REQUIRE(fixture.store->checkpoint());
            checkpointed = model;
        }
    }
    const Model& durable = kLogs ? model : checkpointed;
    fixture.clock.advance(milliseconds(5'000));  // some expiries pass while the store is closed
    REQUIRE(fixture.reopen());
    CHECK(fixture.recovery.snapshot_entries > 4096);
    if (kLogs) CHECK(fixture.recovery.log.records > 4096);
    CHECK(fixture.contents() == live_at(durable, fixture.clock.now_ms));

    // From the snapshot alone, the same.
    REQUIRE(fixture.store->checkpoint());
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == live_at(durable, fixture.clock.now_ms));
}

TEST_CASE("A snapshot large enough to be loaded on two threads reopens to the model", "[store][ttl][model]") {
    std::mt19937 random(41);
    TtlFixture<None> fixture;
    REQUIRE(fixture.open());
    Model model;
    for (int i = 0; i < 40'000; ++i) {
        const std::string key = "key-" + std::to_string(random());
        const std::string value(60 + random() % 120, static_cast<char>('a' + i % 26));
        const std::int64_t ttl = i % 3 == 0 ? 1 + random() % 20'000 : 0;
        REQUIRE((ttl == 0 ? fixture.store->put(key, value) : fixture.store->put(key, value, milliseconds(ttl))));
        model[key] = {value, ttl == 0 ? 0 : fixture.clock.now_ms + ttl};
    }
    REQUIRE(fixture.store->checkpoint());
    fixture.clock.advance(milliseconds(10'000));  // about half the expiries pass while the store is closed
    REQUIRE(fixture.reopen());
    CHECK(fixture.fs.size_of(fixture.recovery.snapshot) >= detail::snapshot::kSplitFrom);
    CHECK(fixture.recovery.snapshot_entries == model.size());
    CHECK(fixture.contents() == live_at(model, fixture.clock.now_ms));
}

TEST_CASE("A snapshot of keys and values of other types, loaded on two threads, reopens to the model", "[store]") {
    std::mt19937_64 random(43);
    StoreFixture<None, std::uint64_t, std::uint64_t> fixture;
    REQUIRE(fixture.open());
    std::map<std::uint64_t, std::uint64_t> model;
    for (int i = 0; i < 250'000; ++i) {
        const std::uint64_t key = random();
        const std::uint64_t value = random();
        REQUIRE(fixture.store->put(key, value));
        model[key] = value;
    }
    REQUIRE(fixture.store->checkpoint());
    REQUIRE(fixture.reopen());
    CHECK(fixture.fs.size_of(fixture.recovery.snapshot) >= detail::snapshot::kSplitFrom);
    CHECK(fixture.contents() == model);
}

TEST_CASE("A log of many batches of changes to keys and values of other types recovers to the model",
          "[store][model]") {
    std::mt19937 random(31);
    StoreFixture<SyncWAL, std::uint64_t, std::uint64_t> fixture;
    REQUIRE(fixture.open());
    std::map<std::uint64_t, std::uint64_t> model;
    for (int step = 0; step < 20'000; ++step) {
        const std::uint64_t key = random() % 3000;
        if (random() % 4 == 0) {
            REQUIRE(fixture.store->erase(key));
            model.erase(key);
        } else {
            const std::uint64_t value = random();
            REQUIRE(fixture.store->put(key, value));
            model[key] = value;
        }
    }
    REQUIRE(fixture.reopen());
    CHECK(fixture.recovery.log.records > 4096);
    CHECK(fixture.contents() == model);
}
