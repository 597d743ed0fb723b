// A write the map cannot hold (a shard's pooled-records limit, lowered here
// through MapOptions::max_pooled_bytes_per_shard) is refused before its
// record reaches the log, on every write path; opening, checkpointing and
// importing into a map too small return a Status and change nothing; a
// store whose log failed keeps serving reads.
#include "catch.hpp"
#include "store_fixture.hpp"

#include <kvstore/replication.hpp>
#include <kvstore/store.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
using std::chrono::milliseconds;
using Contents = std::map<std::string, std::string>;

namespace {

constexpr std::uint64_t kLimit = std::uint64_t{64} << 10;

// Keys and values of one size each, so that once one put is refused for
// room every later new record is too.
std::string key_of(int i) {
    char key[16];
    std::snprintf(key, sizeof key, "key%06d", i);
    return key;
}
std::string value_of(int i, char fill = 'v') { return std::string(100, fill) + key_of(i); }

std::map<std::string, std::string> files_of(FaultFileSystem& fs) {
    std::map<std::string, std::string> files;
    for (const std::string& path : fs.paths()) files[path] = fs.contents(path);
    return files;
}

bool mentions(const Status& status, const std::string& text) {
    return status.message().find(text) != std::string::npos;
}

// A one-shard store whose shard holds kLimit bytes of records, filled
// with puts until one is refused.
template <class Durability>
struct FullStore : StoreFixture<Durability> {
    Contents acknowledged;
    int refused_at = 0;
    Lsn last_lsn = 0;

    FullStore() {
        this->options.map.shards = 1;
        this->options.map.max_pooled_bytes_per_shard = kLimit;
    }

    void fill() {
        REQUIRE(this->open());
        for (;; ++refused_at) {
            REQUIRE(refused_at < 10000);
            const Status status = this->store->put(key_of(refused_at), value_of(refused_at));
            if (!status) {
                CHECK(status.code() == StatusCode::kNoRoom);
                CHECK(mentions(status, "MapOptions::max_pooled_bytes_per_shard"));
                CHECK(mentions(status, "nothing was logged or changed"));
                break;
            }
            acknowledged[key_of(refused_at)] = value_of(refused_at);
        }
        REQUIRE(refused_at > 100);
        last_lsn = this->store->log_stats().last_lsn;
        CHECK(last_lsn == acknowledged.size());
    }

    // A write refused for room that logged nothing and changed nothing.
    void check_refused(const Status& status) {
        CHECK(status.code() == StatusCode::kNoRoom);
        CHECK(this->store->log_stats().last_lsn == last_lsn);
        CHECK(this->contents() == acknowledged);
    }
};

template <class Durability>
void every_write_path_is_refused_unlogged() {
    FullStore<Durability> full;
    full.fill();
    auto& store = *full.store;
    const int n = full.refused_at;

    full.check_refused(store.put(key_of(n), value_of(n)));
    full.check_refused(store.put(key_of(n), value_of(n), milliseconds(60000)));
    full.check_refused(store.put(key_of(0), value_of(0, 'w')));

    bool inserted = true;
    full.check_refused(store.put_if_absent(key_of(n), value_of(n), inserted));
    CHECK_FALSE(inserted);
    bool replaced = true;
    full.check_refused(store.put_if_present(key_of(0), value_of(0, 'w'), replaced));
    CHECK_FALSE(replaced);
    bool found = false;
    full.check_refused(store.update(key_of(0), [](std::string& value) { value[0] = 'u'; }, found));
    CHECK(found);
    bool swapped = true;
    full.check_refused(store.compare_and_set(key_of(0), value_of(0), value_of(0, 'w'), swapped));
    CHECK_FALSE(swapped);
    full.check_refused(store.expire(key_of(0), milliseconds(60000), found));

    WriteBatch<std::string, std::string> batch;
    batch.erase(key_of(1));
    batch.put(key_of(n), value_of(n));
    full.check_refused(store.write(batch));
    bool staged = false;
    full.check_refused(store.transact({key_of(2), key_of(n)}, [&](auto& transaction) {
        staged = transaction.erase(key_of(2)) && transaction.put(key_of(n), value_of(n));
        return staged;
    }));
    CHECK(staged);

    // The same put, as a replicated record from a leader with room.
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    REQUIRE(leader.store->put(key_of(n), value_of(n)));
    std::vector<Status> applied;
    REQUIRE(leader.store->read_log(1, [&](const LogRecord& record) {
        applied.push_back(store.apply_replicated(record));
        return Status::ok();
    }));
    REQUIRE(applied.size() == 1);
    full.check_refused(applied[0]);

    // Room made by an erase is used again; a checkpoint and a reopen with
    // the same options bring back exactly what was acknowledged.
    bool erased = false;
    REQUIRE(store.erase(key_of(0), &erased));
    CHECK(erased);
    full.acknowledged.erase(key_of(0));
    REQUIRE(store.put(key_of(n), value_of(n)));
    full.acknowledged[key_of(n)] = value_of(n);
    REQUIRE(store.checkpoint());
    REQUIRE(full.reopen());
    CHECK(full.contents() == full.acknowledged);
    REQUIRE(full.reopen());
    CHECK(full.contents() == full.acknowledged);
}

}  // namespace

TEST_CASE("A write the map cannot hold is refused with no record logged, on every write path", "[store][room]") {
    SECTION("SyncWAL") { every_write_path_is_refused_unlogged<SyncWAL>(); }
    SECTION("GroupCommitWAL") { every_write_path_is_refused_unlogged<GroupCommitWAL>(); }
}

TEST_CASE("A store refused for room reopens to exactly its acknowledged writes, its log replayed or checkpointed",
          "[store][room]") {
    for (const bool checkpointed : {false, true}) {
        CAPTURE(checkpointed);
        FullStore<GroupCommitWAL> full;
        full.fill();
        // Further puts of new keys are refused, each with nothing logged.
        for (int i = 1; i <= 3; ++i) full.check_refused(full.store->put(key_of(full.refused_at + i), value_of(i)));
        if (checkpointed) REQUIRE(full.store->checkpoint());
        REQUIRE(full.reopen());
        CHECK(full.contents() == full.acknowledged);
        CHECK_FALSE(full.store->contains(key_of(full.refused_at)));
    }
}

TEST_CASE("Opening into a map too small for the log or the snapshot is a Status naming the record or file, "
          "and changes no file",
          "[store][room]") {
    // 1,000 records are applied on the opening thread; 10,000 fill batches
    // that a second thread applies.
    for (const int records : {1000, 10000}) {
        for (const bool checkpointed : {false, true}) {
            CAPTURE(records, checkpointed);
            StoreFixture<SyncWAL> roomy;
            roomy.options.map.shards = 1;
            REQUIRE(roomy.open());
            WriteBatch<std::string, std::string> batch;
            for (int i = 0; i < records; ++i) {
                batch.put(key_of(i), value_of(i));
                if (batch.size() == 100) {
                    REQUIRE(roomy.store->write(batch));
                    batch = WriteBatch<std::string, std::string>();
                }
            }
            if (checkpointed) REQUIRE(roomy.store->checkpoint());
            const Contents written = roomy.contents();
            roomy.store.reset();
            const std::map<std::string, std::string> files_before = files_of(roomy.fs);

            roomy.options.map.max_pooled_bytes_per_shard = kLimit;
            const Status refused = roomy.open();
            CHECK(refused.code() == StatusCode::kNoRoom);
            CHECK(mentions(refused, "MapOptions::max_pooled_bytes_per_shard"));
            CHECK(mentions(refused, "more shards (MapOptions::shards)"));
            CHECK(mentions(refused, checkpointed ? "loading snapshot " + kDir + "/snapshot-" : "at LSN "));
            CHECK(files_of(roomy.fs) == files_before);

            roomy.options.map.max_pooled_bytes_per_shard = std::uint64_t{4} << 30;
            REQUIRE(roomy.open());
            CHECK(roomy.contents() == written);
        }
    }
}

TEST_CASE("An import the map cannot hold is refused and leaves the store as it was, in memory and on disk",
          "[store][room]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    for (int i = 0; i < 2000; ++i) REQUIRE(leader.store->put(key_of(i), value_of(i)));
    Lsn continue_from = 0;
    const std::string bytes = exported(*leader.store, continue_from);

    StoreFixture<GroupCommitWAL> follower;
    follower.options.map.shards = 1;
    follower.options.map.max_pooled_bytes_per_shard = kLimit;
    REQUIRE(follower.open());
    for (int i = 0; i < 10; ++i) REQUIRE(follower.store->put("own" + key_of(i), value_of(i)));
    REQUIRE(follower.store->checkpoint());
    for (int i = 10; i < 20; ++i) REQUIRE(follower.store->put("own" + key_of(i), value_of(i)));
    const Contents before = follower.contents();

    bool sent = false;
    const Status refused = follower.store->import_snapshot([&](std::string& chunk) {
        if (!sent) chunk = bytes;
        sent = true;
        return Status::ok();
    });
    CHECK(refused.code() == StatusCode::kNoRoom);
    CHECK(mentions(refused, "MapOptions::max_pooled_bytes_per_shard"));
    CHECK(follower.contents() == before);
    REQUIRE(follower.store->put("after", "import"));
    REQUIRE(follower.reopen());
    Contents expected = before;
    expected["after"] = "import";
    CHECK(follower.contents() == expected);
}

TEST_CASE("A store whose log failed refuses writes and keeps serving reads", "[store][durability]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    for (int i = 0; i < 10; ++i) REQUIRE(fixture.store->put(key_of(i), value_of(i)));
    REQUIRE(fixture.store->put("expiring", "soon", milliseconds(60000)));
    const Contents acknowledged = fixture.contents();

    fixture.fs.inject("fdatasync", EIO);
    const Status failed = fixture.store->put("lost", "x");
    CHECK(failed.code() == StatusCode::kIoError);
    fixture.fs.clear_fault();
    // Fail-stop: later writes are refused with the first error, though the disk works again.
    const Status after = fixture.store->put("later", "y");
    CHECK(after.code() == StatusCode::kFailed);
    CHECK(mentions(after, "fdatasync"));
    bool erased = false;
    CHECK(fixture.store->erase(key_of(0), &erased).code() == StatusCode::kFailed);
    CHECK_FALSE(fixture.store->contains("later"));

    // Reads go on: every acknowledged key, its value and its expiry.
    for (int i = 0; i < 10; ++i) CHECK(fixture.store->get(key_of(i)) == value_of(i));
    std::optional<Store<std::string, std::string, SyncWAL>::TimePoint> when;
    CHECK(fixture.store->expires_at("expiring", when));
    CHECK(when.has_value());
    Contents seen = fixture.contents();
    seen.erase("lost");  // applied in memory before its sync failed; the log decides at reopen
    CHECK(seen == acknowledged);
    CHECK(fixture.store->size() >= acknowledged.size());
}
