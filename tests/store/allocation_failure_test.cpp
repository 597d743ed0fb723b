// Every allocation a Store's call makes, failed in turn (std::bad_alloc from
// the replaced operator new of support/failing_new.cpp): no exception leaves
// the call, a write refused leaves nothing logged and nothing changed, and
// whatever the outcome the store reopens to what its memory held.
#include "catch.hpp"
#include "failing_new.hpp"
#include "store_fixture.hpp"

#include <kvstore/replication.hpp>
#include <kvstore/store.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
using std::chrono::milliseconds;
using Contents = std::map<std::string, std::string>;
using StringStore = Store<std::string, std::string, SyncWAL>;

namespace {

std::string key_of(int i) { return "key" + std::to_string(i); }
std::string value_of(int i) { return std::string(40, 'v') + std::to_string(i); }

void seed(StringStore& store) {
    for (int i = 0; i < 20; ++i) REQUIRE(store.put(key_of(i), value_of(i)));
    REQUIRE(store.checkpoint());
    for (int i = 20; i < 40; ++i) REQUIRE(store.put(key_of(i), value_of(i), milliseconds(3600000)));
}

// Runs call(store) with its n-th allocation failing, for n = 0, 1, ... until
// a run makes fewer allocations than that, then check(store, status) with
// allocations working again.
void fail_each_allocation(const std::function<Status(StringStore&)>& call, bool is_write = true,
                          const std::function<void(StringStore&, const Status&)>& check = {}) {
    for (long allocation = 0;; ++allocation) {
        CAPTURE(allocation);
        StoreFixture<SyncWAL> fixture;
        REQUIRE(fixture.open());
        seed(*fixture.store);
        const Contents before = fixture.contents();
        const Lsn last_lsn = fixture.store->log_stats().last_lsn;

        Status status;
        bool threw = false;
        fail_allocation_after(allocation);
        try {
            status = call(*fixture.store);
        } catch (const std::exception&) {
            threw = true;
        }
        const bool failed = stop_failing_allocations();
        CHECK_FALSE(threw);
        INFO(status.to_string());
        if (check) check(*fixture.store, status);
        const Contents after = fixture.contents();
        if (is_write && !status && status.code() != StatusCode::kFailed) {
            CHECK(status.code() == StatusCode::kNoRoom);
            CHECK(after == before);
            CHECK(fixture.store->log_stats().last_lsn == last_lsn);
        }
        // Memory and files agree, whatever the call answered.
        REQUIRE(fixture.reopen());
        CHECK(fixture.contents() == after);
        if (!failed) {
            CHECK(status);
            return;
        }
    }
}

}  // namespace

TEST_CASE("No allocation failure in a write escapes it, and a refused write logs and changes nothing",
          "[store][room][allocation]") {
    // Keys and values are made here: what the call allocates is the store's alone.
    const std::string key = key_of(1000);
    const std::string value = value_of(1000);
    const std::string old_key = key_of(1);
    const std::string old_value = value_of(1);
    const std::string expiring_key = key_of(25);
    const milliseconds ttl(60000);
    bool flag = false;
    SECTION("put") {
        fail_each_allocation([&](StringStore& store) { return store.put(key, value); });
        fail_each_allocation([&](StringStore& store) { return store.put(old_key, value); });
        fail_each_allocation([&](StringStore& store) { return store.put(key, value, ttl); });
    }
    SECTION("put_if_absent and put_if_present") {
        fail_each_allocation([&](StringStore& store) { return store.put_if_absent(key, value, flag); }, true,
                             [&](StringStore& store, const Status& status) {
                                 CHECK(flag == (status.is_ok() && store.contains(key)));
                             });
        fail_each_allocation([&](StringStore& store) { return store.put_if_present(old_key, value, flag); }, true,
                             [&](StringStore& store, const Status&) { CHECK(flag == (store.get(old_key) == value)); });
    }
    SECTION("update, expire, persist and compare_and_set") {
        fail_each_allocation([&](StringStore& store) {
            return store.update(old_key, [](std::string& changed) { changed.back() = '+'; }, flag);
        });
        fail_each_allocation([&](StringStore& store) { return store.expire(old_key, ttl, flag); });
        fail_each_allocation([&](StringStore& store) { return store.persist(expiring_key, flag); });
        fail_each_allocation(
            [&](StringStore& store) { return store.compare_and_set(old_key, old_value, value, flag); }, true,
            [&](StringStore& store, const Status&) { CHECK(flag == (store.get(old_key) == value)); });
    }
    SECTION("erase and clear") {
        fail_each_allocation([&](StringStore& store) { return store.erase(old_key); });
        fail_each_allocation([&](StringStore& store) { return store.clear(); });
    }
    SECTION("batches, transactions and replicated records") {
        WriteBatch<std::string, std::string> batch;
        batch.put(key, value);
        batch.erase(key_of(2));
        batch.put(key_of(3), value, ttl);
        fail_each_allocation([&](StringStore& store) { return store.write(batch); });
        const std::vector<std::string> keys{key_of(4), key};
        std::string read;
        fail_each_allocation([&](StringStore& store) {
            return store.transact(keys, [&](auto& transaction) {
                return transaction.find(keys[0], read) && transaction.put(key, value).is_ok();
            });
        });
        // The batch as a leader wrote it, applied as a replicated record.
        StoreFixture<SyncWAL> leader;
        REQUIRE(leader.open());
        REQUIRE(leader.store->write(batch));
        std::string payload;
        LogRecord record{};
        REQUIRE(leader.store->read_log(1, [&](const LogRecord& read_record) {
            payload.assign(read_record.payload);
            record = read_record;
            return Status::ok();
        }));
        record.payload = payload;
        record.payload_owner = nullptr;
        fail_each_allocation([&](StringStore& store) { return store.apply_replicated(record); });
    }
}

TEST_CASE("No allocation failure escapes a checkpoint or an import, and either leaves memory and files agreeing",
          "[store][room][allocation]") {
    fail_each_allocation([](StringStore& store) { return store.checkpoint(); }, false);

    StoreFixture<SyncWAL> leader;
    REQUIRE(leader.open());
    for (int i = 0; i < 50; ++i) REQUIRE(leader.store->put("imported" + std::to_string(i), value_of(i)));
    Lsn continue_from = 0;
    const std::string bytes = exported(*leader.store, continue_from);
    bool sent = false;
    fail_each_allocation(
        [&](StringStore& store) {
            sent = false;
            return store.import_snapshot([&](std::string& chunk) {
                if (!sent) chunk.append(bytes);
                sent = true;
                return Status::ok();
            });
        },
        false);
}

TEST_CASE("No allocation failure escapes Store::open, and a failed open changes no file",
          "[store][room][allocation]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    seed(*fixture.store);
    const Contents written = fixture.contents();
    fixture.store.reset();
    for (long allocation = 0;; ++allocation) {
        CAPTURE(allocation);
        Status status;
        bool threw = false;
        fail_allocation_after(allocation);
        try {
            status = fixture.open();
        } catch (const std::exception&) {
            threw = true;
        }
        const bool failed = stop_failing_allocations();
        CHECK_FALSE(threw);
        INFO(status.to_string());
        if (!status) CHECK(status.code() == StatusCode::kNoRoom);
        fixture.store.reset();
        REQUIRE(fixture.open());
        CHECK(fixture.contents() == written);
        fixture.store.reset();
        if (!failed) {
            CHECK(status);
            break;
        }
    }
}
