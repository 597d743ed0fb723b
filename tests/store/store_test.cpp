// Store: the map, the log and snapshots as one object that reopens to the
// state it acknowledged.
#include "catch.hpp"
#include "store_fixture.hpp"

#include <kvstore/store.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;

TEMPLATE_TEST_CASE("A store reopens to what it acknowledged", "[store]", SyncWAL, GroupCommitWAL) {
    StoreFixture<TestType> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("alpha", "1"));
    REQUIRE(store.put(std::string("beta"), std::string("2")));
    REQUIRE(store.put("alpha", "one"));  // overwrite
    bool erased = false;
    REQUIRE(store.erase("beta", &erased));
    CHECK(erased);
    REQUIRE(store.erase("never there", &erased));
    CHECK_FALSE(erased);
    REQUIRE(store.put("gamma", std::string(1000, 'g')));
    CHECK(store.get("alpha") == std::optional<std::string>("one"));
    CHECK_FALSE(store.contains("beta"));
    CHECK(store.size() == 2);
    CHECK(store.log_stats().last_lsn == 5);  // the absent key's erase wrote nothing

    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() ==
          std::map<std::string, std::string>{{"alpha", "one"}, {"gamma", std::string(1000, 'g')}});
    CHECK(fixture.recovery.log.records == 5);
    CHECK(fixture.recovery.snapshot.empty());
}

TEST_CASE("A second open of the same directory is refused until the first closes", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    std::unique_ptr<Store<std::string, std::string, GroupCommitWAL>> second;
    const Status refused = Store<std::string, std::string, GroupCommitWAL>::open(kDir, fixture.options, second);
    CHECK(refused.code() == StatusCode::kBusy);
    CHECK(refused.message().find(kDir) != std::string::npos);
    CHECK(second == nullptr);
    REQUIRE(fixture.store->close());
    CHECK(Store<std::string, std::string, GroupCommitWAL>::open(kDir, fixture.options, second));
}

TEST_CASE("Keys and values over the limits are refused and nothing is written", "[store]") {
    StoreFixture<SyncWAL> fixture;
    fixture.options.max_key_size = 8;
    fixture.options.max_value_size = 16;
    REQUIRE(fixture.open());
    const Status long_key = fixture.store->put("a key too long", "v");
    CHECK(long_key.code() == StatusCode::kInvalidArgument);
    CHECK(long_key.message().find("max_key_size 8") != std::string::npos);
    CHECK(fixture.store->put("k", std::string(17, 'v')).code() == StatusCode::kInvalidArgument);
    CHECK(fixture.store->put("k", std::string(16, 'v')));
    CHECK(fixture.store->log_stats().last_lsn == 1);
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"k", std::string(16, 'v')}});
}

TEMPLATE_TEST_CASE("A checkpoint replaces the log behind it and reopening loads it", "[store]", SyncWAL,
                   GroupCommitWAL) {
    StoreFixture<TestType> fixture;
    REQUIRE(fixture.open());
    for (int i = 0; i < 200; ++i) REQUIRE(fixture.store->put("key-" + std::to_string(i), "before"));
    const std::size_t segments_before = fixture.files_named("wal-");
    REQUIRE(fixture.store->checkpoint());
    CHECK(fixture.files_named("snapshot-") == 1);
    CHECK(fixture.files_named("wal-") == 1);  // only the segment after the snapshot
    CHECK(segments_before >= 1);
    for (int i = 0; i < 50; ++i) REQUIRE(fixture.store->put("key-" + std::to_string(i), "after"));
    REQUIRE(fixture.store->erase("key-199"));
    const auto expected = fixture.contents();

    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == expected);
    CHECK(fixture.recovery.snapshot_entries == 200);
    CHECK(fixture.recovery.log.records == 51);

    REQUIRE(fixture.store->checkpoint());  // a second one replaces the first
    CHECK(fixture.files_named("snapshot-") == 1);
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == expected);
    CHECK(fixture.recovery.log.records == 0);
}

TEST_CASE("Under None, checkpoints are the only durability and opening loads the newest", "[store]") {
    StoreFixture<None> fixture;
    REQUIRE(fixture.open());
    REQUIRE(fixture.store->put("kept", "1"));
    REQUIRE(fixture.store->checkpoint());
    REQUIRE(fixture.store->put("lost", "2"));  // after the last checkpoint
    REQUIRE(fixture.store->put("kept", "3"));
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"kept", "1"}});
    REQUIRE(fixture.store->put("kept", "4"));
    REQUIRE(fixture.store->checkpoint());
    CHECK(fixture.files_named("snapshot-") == 1);
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"kept", "4"}});
}

TEST_CASE("An unfinished checkpoint is ignored and cleaned up at open", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    REQUIRE(fixture.store->put("k", "v"));
    fixture.fs.set_contents(kDir + "/" + detail::snapshot::file_name(9) + ".tmp", "half a snapshot");
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"k", "v"}});
    CHECK(fixture.files_named("snapshot-") == 0);
}

TEST_CASE("A damaged snapshot fails the open with file, offset and reason", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    REQUIRE(fixture.store->put("k", "v"));
    REQUIRE(fixture.store->checkpoint());
    fixture.store.reset();
    std::vector<std::string> names;
    REQUIRE(fixture.fs.list_dir(kDir, names));
    const auto name = *std::find_if(names.begin(), names.end(),
                                    [](const std::string& n) { return n.compare(0, 9, "snapshot-") == 0; });
    std::string bytes = fixture.fs.contents(kDir + "/" + name);
    bytes[40] ^= 1;
    fixture.fs.set_contents(kDir + "/" + name, bytes);
    const Status status = fixture.open();
    CHECK(status.code() == StatusCode::kCorruption);
    CHECK(status.message().find(kDir + "/" + name + " at offset") == 0);
}

TEMPLATE_TEST_CASE("Random operations, checkpoints and reopens end in the model's state", "[store][model]", SyncWAL,
                   GroupCommitWAL, None) {
    const unsigned seed = GENERATE(11u, 12u, 13u);
    CAPTURE(seed);
    std::mt19937 random(seed);
    StoreFixture<TestType, std::uint64_t, std::uint64_t> fixture;
    REQUIRE(fixture.open());
    std::map<std::uint64_t, std::uint64_t> model;
    std::map<std::uint64_t, std::uint64_t> durable_model;  // under None: as of the last checkpoint
    constexpr bool kLogs = !std::is_same_v<TestType, None>;
    for (int step = 0; step < 1500; ++step) {
        const std::uint64_t key = random() % 64;
        const unsigned action = random() % 100;
        if (action < 60) {
            const std::uint64_t value = random();
            REQUIRE(fixture.store->put(key, value));
            model[key] = value;
        } else if (action < 90) {
            REQUIRE(fixture.store->erase(key));
            model.erase(key);
        } else if (action < 95) {
            REQUIRE(fixture.store->checkpoint());
            durable_model = model;
        } else {
            REQUIRE(fixture.reopen());
            if (!kLogs) model = durable_model;
            REQUIRE(fixture.contents() == model);
        }
    }
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == (kLogs ? model : durable_model));
}

TEST_CASE("Conditional writes and updates log only what they change, and reopen to it", "[store]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    bool done = false;
    REQUIRE(store.put_if_absent("k", "first", done));
    CHECK(done);
    REQUIRE(store.put_if_absent("k", "second", done));
    CHECK_FALSE(done);
    REQUIRE(store.compare_and_set("k", "wrong", "x", done));
    CHECK_FALSE(done);
    REQUIRE(store.compare_and_set("k", "first", "swapped", done));
    CHECK(done);
    REQUIRE(store.update(
        "k", [](std::string& value) { value += "+updated"; }, done));
    CHECK(done);
    REQUIRE(store.update(
        "absent", [](std::string& value) { value = "never"; }, done));
    CHECK_FALSE(done);
    CHECK(store.log_stats().last_lsn == 3);  // put_if_absent, compare_and_set, update
    CHECK_THROWS_AS(store.update(
                        "k", [](std::string&) { throw std::runtime_error("no"); }, done),
                    std::runtime_error);
    CHECK(store.get("k") == std::optional<std::string>("swapped+updated"));

    const StoreStats stats = store.stats();
    CHECK(stats.items == 1);
    CHECK(stats.shards == 4);
    CHECK(stats.memory_bytes > 0);
    CHECK(stats.log.syncs == 3);
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"k", "swapped+updated"}});
    REQUIRE(fixture.store->checkpoint());
    CHECK(fixture.store->stats().checkpoints == 1);
}

TEST_CASE("put_if_present replaces only a present key and sets or removes its expiry", "[store]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    bool replaced = true;
    REQUIRE(store.put_if_present("k", "never", replaced));
    CHECK_FALSE(replaced);
    CHECK_FALSE(store.contains("k"));
    CHECK(store.log_stats().last_lsn == 0);

    REQUIRE(store.put("k", "first", std::chrono::hours(1)));
    REQUIRE(store.put_if_present("k", "second", replaced));
    CHECK(replaced);
    std::optional<Store<std::string, std::string, SyncWAL>::TimePoint> expiry;
    REQUIRE(store.expires_at("k", expiry));
    CHECK_FALSE(expiry);
    REQUIRE(store.put_if_present("k", "third", replaced, std::chrono::hours(2)));
    CHECK(replaced);
    REQUIRE(store.expires_at("k", expiry));
    CHECK(expiry);
    CHECK(store.put_if_present("k", std::string((std::size_t{64} << 20) + 1, 'v'), replaced).code() ==
          StatusCode::kInvalidArgument);
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"k", "third"}});
}

TEST_CASE("Deferred commits return before the sync, and commit makes them durable", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    Lsn deferred_to = 0;
    {
        Store<std::string, std::string, GroupCommitWAL>::DeferredCommits deferred(store);
        // Every sync fails: a write that waited for one would report it.
        fixture.fs.inject("fdatasync", EIO);
        REQUIRE(store.put("a", "1"));
        CHECK(deferred.lsn() == 1);
        bool done = false;
        REQUIRE(store.erase("absent", &done));
        CHECK(deferred.lsn() == 1);  // nothing logged
        REQUIRE(store.put_if_present("a", "2", done));
        CHECK(deferred.lsn() == 2);
        fixture.fs.clear_fault();
        deferred_to = deferred.lsn();
    }
    CHECK(store.log_stats().durable_lsn < deferred_to);
    REQUIRE(store.commit(deferred_to));
    CHECK(store.log_stats().durable_lsn >= deferred_to);
    REQUIRE(store.put("b", "outside"));  // no scope: waits as usual
    CHECK(store.log_stats().durable_lsn == 3);

    fixture.store.reset();
    fixture.fs.power_cut();
    fixture.fs.revive();
    REQUIRE(fixture.open());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"a", "2"}, {"b", "outside"}});
}

TEST_CASE("A failed sync under deferred commits is reported by commit", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    Store<std::string, std::string, GroupCommitWAL>::DeferredCommits deferred(store);
    fixture.fs.inject("fdatasync", EIO);
    REQUIRE(store.put("a", "1"));
    const Status committed = store.commit(deferred.lsn());
    CHECK_FALSE(committed);
    CHECK(committed.to_string().find("fdatasync") != std::string::npos);
}

TEST_CASE("An update whose callback declines changes and logs nothing", "[store]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("k", "kept"));
    const Lsn before = store.log_stats().last_lsn;
    bool found = false;
    REQUIRE(store.update(
        "k",
        [](std::string& value) {
            value = "changed, then declined";
            return false;
        },
        found));
    CHECK(found);
    CHECK(store.log_stats().last_lsn == before);
    REQUIRE(store.update(
        "k",
        [](std::string& value) {
            value += " and changed";
            return true;
        },
        found));
    CHECK(store.log_stats().last_lsn == before + 1);
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"k", "kept and changed"}});
}

TEST_CASE("put_if_absent whose log append fails inserts nothing", "[store]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    // A failed sync fails the log: every later append is refused.
    fixture.fs.inject("fdatasync", EIO);
    CHECK_FALSE(store.put("before", "1"));
    const std::size_t held = store.size();
    bool inserted = true;
    const Status failed = store.put_if_absent("absent", "2", inserted);
    CHECK(failed.code() == StatusCode::kFailed);
    CHECK_FALSE(inserted);
    CHECK_FALSE(store.contains("absent"));
    CHECK(store.size() == held);
}

TEST_CASE("An update whose result exceeds the value limit is refused and changes nothing", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    fixture.options.max_value_size = 8;
    REQUIRE(fixture.open());
    REQUIRE(fixture.store->put("k", "short"));
    bool found = false;
    const Status refused = fixture.store->update(
        "k", [](std::string& value) { value += " and long"; }, found);
    CHECK(refused.code() == StatusCode::kInvalidArgument);
    CHECK(fixture.store->get("k") == std::optional<std::string>("short"));
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == std::map<std::string, std::string>{{"k", "short"}});
}

TEST_CASE("A store checkpoints by itself once its log has grown enough", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    fixture.options.checkpoint_bytes = 4096;
    fixture.options.checkpoint_poll = std::chrono::milliseconds(5);
    fixture.options.log.segment_bytes = 1024;
    REQUIRE(fixture.open());
    for (int i = 0; i < 100; ++i) REQUIRE(fixture.store->put("key-" + std::to_string(i), std::string(100, 'v')));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (fixture.store->stats().checkpoints == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(fixture.store->stats().checkpoints >= 1);
    CHECK(fixture.store->stats().checkpoint_error.empty());
    const auto expected = fixture.contents();
    REQUIRE(fixture.reopen());
    CHECK(fixture.contents() == expected);
    CHECK(fixture.recovery.snapshot_entries > 0);
}

TEST_CASE("Automatic checkpoints wait until the log has outgrown the newest snapshot by checkpoint_growth", "[store]") {
    StoreFixture<GroupCommitWAL> fixture;
    fixture.options.checkpoint_bytes = 4096;
    fixture.options.checkpoint_growth = 100;
    fixture.options.checkpoint_poll = std::chrono::milliseconds(2);
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    const std::string value(1000, 'v');
    int next_key = 0;
    auto put_bytes = [&](std::size_t bytes) {
        for (std::size_t written = 0; written < bytes; written += value.size())
            REQUIRE(store.put("key-" + std::to_string(next_key++), value));
    };
    put_bytes(100'000);
    REQUIRE(store.checkpoint());
    // A checkpoint the background thread had already decided on may follow.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const StoreStats after_checkpoint = store.stats();
    REQUIRE(after_checkpoint.snapshot_bytes > 100'000);
    REQUIRE(fixture.files_named("snapshot-") == 1);
    std::vector<std::string> names;
    REQUIRE(fixture.fs.list_dir(kDir, names));
    std::uint64_t on_disk = 0;
    for (const std::string& name : names)
        if (name.compare(0, 9, "snapshot-") == 0) REQUIRE(fixture.fs.file_size(kDir + "/" + name, on_disk));
    CHECK(after_checkpoint.snapshot_bytes == on_disk);

    // Many times checkpoint_bytes, but half the snapshot: no checkpoint.
    put_bytes(after_checkpoint.snapshot_bytes / 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(store.stats().checkpoints == after_checkpoint.checkpoints);

    // Past the snapshot's size: a checkpoint follows.
    put_bytes(after_checkpoint.snapshot_bytes / 2 + 10'000);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (store.stats().checkpoints == after_checkpoint.checkpoints && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(store.stats().checkpoints > after_checkpoint.checkpoints);
    CHECK(store.stats().checkpoint_error.empty());
}

TEMPLATE_TEST_CASE("A batch applies all its writes as one, and clear is logged", "[store]", SyncWAL, GroupCommitWAL,
                   None) {
    StoreFixture<TestType> fixture;
    fixture.options.max_value_size = 100;
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    REQUIRE(store.put("old", "1"));
    WriteBatch<std::string, std::string> batch;
    for (int i = 0; i < 20; ++i) batch.put("key-" + std::to_string(i), "v" + std::to_string(i));
    batch.erase("old");
    batch.put("key-0", "overwritten later in the batch");
    REQUIRE(store.write(batch));
    CHECK(store.size() == 20);
    CHECK(store.get("key-0") == std::optional<std::string>("overwritten later in the batch"));
    CHECK_FALSE(store.contains("old"));

    WriteBatch<std::string, std::string> too_big;
    too_big.put("fine", "1");
    too_big.put("too big", std::string(101, 'x'));
    CHECK(store.write(too_big).code() == StatusCode::kInvalidArgument);
    CHECK_FALSE(store.contains("fine"));  // nothing of a refused batch

    if (!std::is_same_v<TestType, None>) {
        CHECK(store.log_stats().last_lsn == 2);  // the put, then the whole batch as one record
        const auto expected = fixture.contents();
        REQUIRE(fixture.reopen());
        CHECK(fixture.contents() == expected);
        REQUIRE(fixture.store->clear());
        CHECK(fixture.store->size() == 0);
        REQUIRE(fixture.store->put("after clear", "x"));
        REQUIRE(fixture.reopen());
        CHECK(fixture.contents() == std::map<std::string, std::string>{{"after clear", "x"}});
    } else {
        REQUIRE(store.clear());
        CHECK(store.size() == 0);
    }
}

namespace {

// Enough to fill a snapshot block in each of a fixture's 4 shards: the
// snapshot is then appended to between the copies of the shards.
template <class Store>
void fill_a_snapshot_block_per_shard(Store& store) {
    for (int i = 0; i < 512; ++i) REQUIRE(store.put("filler-" + std::to_string(i), std::string(1024, 'f')));
}

}  // namespace

TEST_CASE("A checkpoint holds no change that a crash could still take from the log", "[store]") {
    // Relaxed commits acknowledge a write before its record is durable, so
    // the batches written during the checkpoint below are lost from the log
    // by a power cut unless the checkpoint makes them durable.
    StoreFixture<GroupCommitWAL> fixture;
    fixture.options.log.flush_interval = std::chrono::hours(1);
    REQUIRE(fixture.open());
    auto& store = *fixture.store;
    fill_a_snapshot_block_per_shard(store);
    constexpr int kPairs = 32;
    int batches = 0;
    auto write_pairs = [&] {
        WriteBatch<std::string, std::string> batch;
        for (int pair = 0; pair < kPairs; ++pair) {
            batch.put("left-" + std::to_string(pair), std::to_string(batches));
            batch.put("right-" + std::to_string(pair), std::to_string(batches));
        }
        REQUIRE(store.write(batch));
    };
    write_pairs();
    // Only the snapshot's own appends: a new log segment is a ".tmp" file
    // too, appended to by the flusher thread, where Catch may not assert.
    fixture.fs.before_append([&](const std::string& path) {
        if (path.find(".kvs.tmp") == std::string::npos) return;
        ++batches;
        write_pairs();
    });
    REQUIRE(store.checkpoint());
    fixture.fs.before_append(nullptr);
    // Opening the snapshot and finishing it append three times at most; the
    // rest came after shards' copies, with batches written between them.
    REQUIRE(batches >= 7);

    fixture.fs.power_cut();
    fixture.store.reset();
    fixture.fs.revive();
    REQUIRE(fixture.open());
    // Had the snapshot kept a batch's keys in some shards only, the batch
    // being lost from the log, the two keys of a pair would differ.
    int torn = 0;
    for (int pair = 0; pair < kPairs; ++pair) {
        const auto left = fixture.store->get("left-" + std::to_string(pair));
        if (!left || left != fixture.store->get("right-" + std::to_string(pair))) ++torn;
    }
    CHECK(torn == 0);
}

TEST_CASE("Under None, a checkpoint holds each batch and clear whole or not at all", "[store]") {
    StoreFixture<None> fixture;
    // The snapshot's appends are slowed down, so that the writer below gets
    // in between the copies of the shards.
    fixture.fs.before_append([](const std::string& path) {
        if (path.find(".kvs.tmp") != std::string::npos) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    });
    constexpr int kPairs = 32;
    for (int round = 0; round < 20; ++round) {
        REQUIRE(fixture.reopen());
        auto& store = *fixture.store;
        fill_a_snapshot_block_per_shard(store);
        std::atomic<bool> stop{false};
        std::atomic<int> failed{0};
        std::thread writer([&] {
            for (long i = 0; !stop.load(); ++i) {
                if (i % 64 == 63) {
                    if (!store.clear()) ++failed;
                    continue;
                }
                const std::string pair = std::to_string(i % kPairs);
                WriteBatch<std::string, std::string> batch;
                batch.put("left-" + pair, std::to_string(i));
                batch.put("right-" + pair, std::to_string(i));
                if (!store.write(batch)) ++failed;
            }
        });
        const Status checkpointed = store.checkpoint();
        stop = true;
        writer.join();
        REQUIRE(checkpointed);
        CHECK(failed == 0);

        REQUIRE(fixture.reopen());
        int torn = 0;
        for (int pair = 0; pair < kPairs; ++pair)
            if (fixture.store->get("left-" + std::to_string(pair)) !=
                fixture.store->get("right-" + std::to_string(pair)))
                ++torn;
        CHECK(torn == 0);
    }
}

TEST_CASE("A checkpoint cut while it removes a large old segment step by step reopens to the right state",
          "[store][checkpoint]") {
    // 12 MiB of log: the old segment is cut down in several steps.
    const std::string value(4000, 'v');
    for (const char* call : {"ftruncate", "fsync-dir"}) {
        StoreFixture<GroupCommitWAL> fixture;
        fixture.options.log.segment_bytes = std::uint64_t{64} << 20;
        REQUIRE(fixture.open());
        for (int i = 0; i < 3000; ++i)
            REQUIRE(fixture.store->put("k" + std::to_string(i % 1000), value + std::to_string(i)));
        const auto before = fixture.contents();
        // The snapshot's own writes and syncs come first; fail a later cut.
        fixture.fs.inject(call, EIO, std::string(call) == "ftruncate" ? 1 : 4);
        const Status checkpointed = fixture.store->checkpoint();
        fixture.fs.clear_fault();
        CHECK_FALSE(checkpointed);
        CHECK(checkpointed.to_string().find(call) != std::string::npos);
        fixture.store.reset();
        fixture.fs.power_cut();
        fixture.fs.revive();
        REQUIRE(fixture.open());
        CHECK(fixture.contents() == before);
        CHECK(fixture.recovery.snapshot_entries == 1000);
        REQUIRE(fixture.store->checkpoint());  // the next one finishes the removal
        CHECK(fixture.files_named("wal-") == 1);
    }
}

TEST_CASE("Acknowledged writes cut from an older segment at a record boundary are never lost silently", "[store]") {
    StoreFixture<SyncWAL> fixture;
    REQUIRE(fixture.open());
    for (int i = 0; i < 2000; ++i) REQUIRE(fixture.store->put("key-" + std::to_string(i), "v"));
    for (int i = 0; i < 100; ++i) REQUIRE(fixture.store->erase("key-" + std::to_string(i)));
    REQUIRE(fixture.reopen());
    fixture.store.reset();

    const std::string segment = kDir + "/" + detail::log::segment_name(1);
    std::vector<std::uint64_t> offsets;
    RecoveryReport read;
    REQUIRE(detail::log::replay_log(
        fixture.fs, kDir, 1, RecoveryMode::kAbsoluteConsistency,
        [&](const LogRecord& record) {
            offsets.push_back(record.offset);
            return Status::ok();
        },
        read));
    // The reopen went on in the empty segment the first close left, so
    // segment 1 holds every record.
    REQUIRE(offsets.size() == 2100);
    // Keeps LSNs 1-200: 1,800 puts and every erase are gone.
    const std::string whole = fixture.fs.contents(segment);
    fixture.fs.set_contents(segment, whole.substr(0, offsets[200]));

    const Status refused = fixture.open();
    CHECK(refused.code() == StatusCode::kCorruption);
    CHECK(refused.message().find("LSNs 201-2100 are missing") != std::string::npos);

    fixture.options.log.recovery_mode = RecoveryMode::kPointInTime;
    REQUIRE(fixture.open());
    CHECK(fixture.store->size() == 200);
    REQUIRE_FALSE(fixture.recovery.log.dropped.empty());
    CHECK(fixture.recovery.log.dropped[0].reason.find("LSNs 201-2100 are missing") != std::string::npos);
    CHECK(fixture.recovery.log.highest_set_aside_lsn == 2100);
    REQUIRE(fixture.store->put("after", "recovery"));
    CHECK(fixture.store->log_stats().last_lsn == 2101);
}
