// Store::transact: reads and writes of several keys as one, under their
// shards' locks, logged as one record.
#include "catch.hpp"
#include "store_fixture.hpp"

#include <kvstore/store.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
using namespace std::chrono_literals;

TEMPLATE_TEST_CASE("A transaction reads its own writes and applies them as one record", "[store][transaction]",
                   SyncWAL, GroupCommitWAL, None) {
    StoreFixture<TestType> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("from", "10"));
    REQUIRE(store.put("gone", "x"));
    const auto lsn_before = store.log_stats().last_lsn;

    using Transaction = typename decltype(fixture)::StoreType::Transaction;
    std::string seen_from, seen_to;
    bool to_was_there = true;
    REQUIRE(store.transact({"from", "to", "gone"}, [&](Transaction& txn) {
        REQUIRE(txn.find("from", seen_from));
        to_was_there = txn.contains("to");
        REQUIRE(txn.put("to", seen_from));
        REQUIRE(txn.put("from", "0"));
        CHECK(txn.erase("gone"));
        CHECK_FALSE(txn.erase("gone"));  // already staged as removed
        REQUIRE(txn.find("to", seen_to));
        CHECK_FALSE(txn.contains("gone"));
        return true;
    }));
    CHECK(seen_from == "10");
    CHECK_FALSE(to_was_there);
    CHECK(seen_to == "10");
    const std::map<std::string, std::string> expected{{"from", "0"}, {"to", "10"}};
    CHECK(fixture.contents() == expected);
    if constexpr (!std::is_same_v<TestType, None>) {
        CHECK(store.log_stats().last_lsn == lsn_before + 1);
        REQUIRE(fixture.reopen());
        CHECK(fixture.contents() == expected);
    }
}

TEST_CASE("A transaction that declines, or stages nothing, changes and logs nothing", "[store][transaction]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("a", "1"));
    using Transaction = StoreFixture<SyncWAL>::StoreType::Transaction;
    REQUIRE(store.transact({"a", "b"}, [](Transaction& txn) {
        REQUIRE(txn.put("a", "changed"));
        REQUIRE(txn.put("b", "new"));
        return false;
    }));
    REQUIRE(store.transact({"a"}, [](Transaction& txn) { return txn.contains("a"); }));
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"a", "1"}});
    CHECK(store.log_stats().last_lsn == 1);
}

TEST_CASE("A transaction's expiries: read, set, kept across reopen, and past ones remove", "[store][transaction]") {
    StoreFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    using Transaction = StoreFixture<GroupCommitWAL>::StoreType::Transaction;
    using TimePoint = StoreFixture<GroupCommitWAL>::StoreType::TimePoint;
    REQUIRE(store.put("doomed", "x", 3'600'000ms));
    REQUIRE(store.put("forever", "y"));
    std::optional<TimePoint> doomed_at, forever_at = TimePoint{};
    const TimePoint later = std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now() + std::chrono::hours(2));
    REQUIRE(store.transact({"doomed", "forever", "moved"}, [&](Transaction& txn) {
        std::string value;
        REQUIRE(txn.find("doomed", value, &doomed_at));
        REQUIRE(txn.find("forever", value, &forever_at));
        REQUIRE(txn.put("moved", value, later));
        REQUIRE(txn.put("forever", value, txn.now() - 1s));  // a deadline already past removes
        return true;
    }));
    REQUIRE(doomed_at);
    CHECK(*doomed_at > std::chrono::system_clock::now() + 3500s);
    CHECK_FALSE(forever_at);
    CHECK_FALSE(store.contains("forever"));
    REQUIRE(fixture.reopen());
    std::optional<TimePoint> moved_at;
    REQUIRE(fixture.store->expires_at("moved", moved_at));
    CHECK(moved_at == later);
    CHECK_FALSE(fixture.store->contains("forever"));
}

TEST_CASE("A transaction's put over the size limits fails and stages nothing", "[store][transaction]") {
    StoreFixture<SyncWAL> fixture;
    fixture.options.max_value_size = 4;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    using Transaction = StoreFixture<SyncWAL>::StoreType::Transaction;
    Status refused;
    REQUIRE(store.transact({"k"}, [&](Transaction& txn) {
        refused = txn.put("k", "too long");
        return true;
    }));
    CHECK(refused.code() == StatusCode::kInvalidArgument);
    CHECK_FALSE(store.contains("k"));
    CHECK(store.log_stats().last_lsn == 0);
}

TEST_CASE("A transaction naming a key whose shard it did not lock is refused", "[store][transaction]") {
    StoreFixture<None> fixture;
    fixture.options.map.shards = 64;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    using Transaction = StoreFixture<None>::StoreType::Transaction;
    // With 64 shards, some key among these lies outside "locked"'s shard.
    CHECK_THROWS_AS(store.transact({"locked"},
                                   [](Transaction& txn) {
                                       for (int i = 0; i < 64; ++i) txn.contains("other-" + std::to_string(i));
                                       return true;
                                   }),
                    std::logic_error);
    CHECK(store.size() == 0);
}

TEMPLATE_TEST_CASE("Concurrent transfers between keys keep their sum, live and after reopen",
                   "[store][transaction][concurrency]", SyncWAL, GroupCommitWAL) {
    StoreFixture<TestType> fixture;
    fixture.options.map.shards = 8;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    using Transaction = typename decltype(fixture)::StoreType::Transaction;
    constexpr int kAccounts = 16;
    constexpr int kStart = 1000;
    const auto account = [](int i) { return "account-" + std::to_string(i); };
    for (int i = 0; i < kAccounts; ++i) REQUIRE(store.put(account(i), std::to_string(kStart)));
    const auto total = [&] {
        long sum = 0;
        store.for_each([&](const auto&, const auto& value) { sum += std::stol(std::string(value)); });
        return sum;
    };

    std::atomic<bool> failed{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
        writers.emplace_back([&, t] {
            std::mt19937 random(static_cast<unsigned>(t));
            for (int n = 0; n < 300; ++n) {
                const int from = static_cast<int>(random() % kAccounts);
                const int to = (from + 1 + static_cast<int>(random() % (kAccounts - 1))) % kAccounts;
                const Status status = store.transact({account(from), account(to)}, [&](Transaction& txn) {
                    std::string a, b;
                    if (!txn.find(account(from), a) || !txn.find(account(to), b)) return false;
                    const long amount = static_cast<long>(random() % 50);
                    return txn.put(account(from), std::to_string(std::stol(a) - amount)).is_ok() &&
                           txn.put(account(to), std::to_string(std::stol(b) + amount)).is_ok();
                });
                if (!status) failed = true;
            }
        });
    }
    // A reader sees each transfer whole: every account read in one
    // transaction sums to the total.
    long smallest = 0, largest = 0;
    std::vector<std::string> all;
    for (int i = 0; i < kAccounts; ++i) all.push_back(account(i));
    for (int n = 0; n < 200; ++n) {
        long sum = 0;
        REQUIRE(store.transact(all, [&](Transaction& txn) {
            for (const std::string& key : all) {
                std::string value;
                if (txn.find(key, value)) sum += std::stol(value);
            }
            return false;
        }));
        smallest = n == 0 ? sum : std::min(smallest, sum);
        largest = n == 0 ? sum : std::max(largest, sum);
    }
    for (auto& writer : writers) writer.join();
    CHECK_FALSE(failed);
    CHECK(smallest == kAccounts * kStart);
    CHECK(largest == kAccounts * kStart);
    CHECK(total() == kAccounts * kStart);
    const auto expected = fixture.contents();
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == expected);
}
