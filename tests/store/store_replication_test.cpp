// The replication hooks: reading committed log records from an LSN, and
// exporting and importing a snapshot as a byte stream.
#include "catch.hpp"
#include "store_fixture.hpp"

#include <kvstore/store.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
using std::chrono::milliseconds;
using Contents = std::map<std::string, std::string>;

namespace {

// A second store that follows the leader of a fixture.
struct Follower : StoreFixture<GroupCommitWAL> {
    // Applies the leader's durable records from `from` on; returns the LSN
    // after the last one applied.
    Lsn catch_up(Store<std::string, std::string, GroupCommitWAL>& leader, Lsn from) {
        Lsn next = from;
        REQUIRE(leader.read_log(from, [&](const LogRecord& record) {
            next = record.lsn + 1;
            return store->apply_replicated(record);
        }));
        return next;
    }
};

// A source that hands out `bytes` in chunks of 100.
std::function<Status(std::string&)> chunks_of(const std::string& bytes) {
    auto at = std::make_shared<std::size_t>(0);
    return [bytes, at](std::string& chunk) {
        chunk = bytes.substr(*at, 100);
        *at += chunk.size();
        return Status::ok();
    };
}

void write_history(Store<std::string, std::string, GroupCommitWAL>& store) {
    REQUIRE(store.put("a", "1"));
    REQUIRE(store.put("b", "2", milliseconds(3'600'000)));
    REQUIRE(store.put("gone", "x"));
    REQUIRE(store.erase("gone"));
    WriteBatch<std::string, std::string> batch;
    batch.put("c", "3");
    batch.put("d", "4", milliseconds(3'600'000));
    batch.erase("a");
    REQUIRE(store.write(batch));
    bool found = false;
    REQUIRE(store.update(
        "c", [](std::string& value) { value += "3"; }, found));
    REQUIRE(found);
}

}  // namespace

TEST_CASE("A follower that applies the leader's log from LSN 1 ends in the leader's state", "[store][replication]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    write_history(*leader.store);
    Follower follower;
    REQUIRE(follower.open());
    Lsn next = follower.catch_up(*leader.store, 1);
    CHECK(next == leader.store->log_stats().durable_lsn + 1);
    CHECK(follower.contents() == leader.contents());
    std::optional<std::chrono::system_clock::time_point> leader_expiry;
    std::optional<std::chrono::system_clock::time_point> follower_expiry;
    REQUIRE(leader.store->expires_at("d", leader_expiry));
    REQUIRE(follower.store->expires_at("d", follower_expiry));
    CHECK(leader_expiry == follower_expiry);

    // A clear, then more: reading on from where it stopped.
    REQUIRE(leader.store->clear());
    REQUIRE(leader.store->put("after", "clear"));
    next = follower.catch_up(*leader.store, next);
    CHECK(follower.contents() == Contents{{"after", "clear"}});

    // What the follower applied is durable in its own log.
    REQUIRE(follower.reopen());
    CHECK(follower.contents() == Contents{{"after", "clear"}});
    CHECK(follower.catch_up(*leader.store, next) == next);  // nothing new
}

TEST_CASE("read_log stops where its callback says, and reads only durable records", "[store][replication]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    for (int i = 0; i < 10; ++i) REQUIRE(leader.store->put("k" + std::to_string(i), "v"));
    std::vector<Lsn> seen;
    const Status stopped = leader.store->read_log(3, [&](const LogRecord& record) {
        seen.push_back(record.lsn);
        return record.lsn == 5 ? Status::invalid_argument("enough") : Status::ok();
    });
    CHECK(stopped.message() == "enough");
    CHECK(seen == std::vector<Lsn>{3, 4, 5});

    seen.clear();
    REQUIRE(leader.store->read_log(100, [&](const LogRecord& record) {
        seen.push_back(record.lsn);
        return Status::ok();
    }));
    CHECK(seen.empty());
}

TEST_CASE("read_log while writers append sees durable records in order without gaps", "[store][replication]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (int i = 0; !stop; ++i)
            if (!leader.store->put("k" + std::to_string(i % 50), std::to_string(i))) break;
    });
    Lsn next = 1;
    int beyond_durable = 0;
    int short_of_durable = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (next < 2000 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // lets the writer get on
        const Lsn durable_before = leader.store->log_stats().durable_lsn;
        Lsn last = 0;
        REQUIRE(leader.store->read_log(next, [&](const LogRecord& record) {
            if (record.lsn != next) return Status::invalid_argument("gap at LSN " + std::to_string(record.lsn));
            ++next;
            last = record.lsn;
            return Status::ok();
        }));
        if (last > leader.store->log_stats().durable_lsn) ++beyond_durable;
        if (last != 0 && last < durable_before) ++short_of_durable;
    }
    stop = true;
    writer.join();
    CHECK(next >= 2000);
    CHECK(beyond_durable == 0);
    CHECK(short_of_durable == 0);
}

TEST_CASE("read_log refuses LSNs that a checkpoint compacted away, and a store without a log", "[store][replication]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    write_history(*leader.store);
    REQUIRE(leader.store->checkpoint());
    REQUIRE(leader.store->put("later", "1"));
    const Status compacted = leader.store->read_log(1, [](const LogRecord&) { return Status::ok(); });
    CHECK(compacted.code() == StatusCode::kCompacted);
    CHECK(compacted.message().find("LSN 1") != std::string::npos);
    CHECK(compacted.message().find("export_snapshot") != std::string::npos);

    StoreFixture<None> unlogged;
    REQUIRE(unlogged.open());
    CHECK(unlogged.store->read_log(1, [](const LogRecord&) { return Status::ok(); }).code() ==
          StatusCode::kInvalidArgument);
}

TEST_CASE("A follower starts from an exported snapshot and goes on with the log from its LSN", "[store][replication]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    write_history(*leader.store);
    for (int i = 0; i < 2000; ++i) REQUIRE(leader.store->put("bulk" + std::to_string(i), std::string(50, 'v')));
    Lsn continue_from = 0;
    const std::string bytes = exported(*leader.store, continue_from);
    REQUIRE(leader.store->put("after", "snapshot"));
    REQUIRE(leader.store->erase("bulk7"));

    Follower follower;
    REQUIRE(follower.open());
    REQUIRE(follower.store->put("stale", "replaced by the import"));
    REQUIRE(follower.store->import_snapshot(chunks_of(bytes)));
    CHECK_FALSE(follower.store->contains("stale"));
    CHECK(follower.store->size() == 2003);
    follower.catch_up(*leader.store, continue_from);
    CHECK(follower.contents() == leader.contents());

    REQUIRE(follower.reopen());
    CHECK(follower.contents() == leader.contents());
    CHECK(follower.recovery.snapshot_entries == 2003);
}

TEST_CASE("A damaged or short snapshot stream is refused and changes nothing", "[store][replication]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    write_history(*leader.store);
    Lsn continue_from = 0;
    const std::string bytes = exported(*leader.store, continue_from);

    Follower follower;
    REQUIRE(follower.open());
    REQUIRE(follower.store->put("mine", "kept"));
    const Contents before = follower.contents();
    for (std::size_t at = 0; at < bytes.size(); at += 7) {
        std::string damaged = bytes;
        damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
        const Status status = follower.store->import_snapshot(chunks_of(damaged));
        CHECK(status.code() == StatusCode::kCorruption);
        CHECK(follower.contents() == before);
    }
    const Status short_one = follower.store->import_snapshot(chunks_of(bytes.substr(0, bytes.size() / 2)));
    CHECK(short_one.code() == StatusCode::kCorruption);
    const Status failing_source =
        follower.store->import_snapshot([](std::string&) { return Status::invalid_argument("connection lost"); });
    CHECK(failing_source.message() == "connection lost");
    REQUIRE(follower.reopen());
    CHECK(follower.contents() == before);
}

TEST_CASE("An import cut by an I/O error and a power cut leaves the old state or the new one", "[store][replication]") {
    StoreFixture<GroupCommitWAL> leader;
    REQUIRE(leader.open());
    for (int i = 0; i < 300; ++i) REQUIRE(leader.store->put("new" + std::to_string(i), std::string(40, 'n')));
    Lsn continue_from = 0;
    const std::string bytes = exported(*leader.store, continue_from);
    const Contents wanted = leader.contents();

    const auto [call, error] =
        GENERATE(std::pair<const char*, int>{"write", EIO}, std::pair<const char*, int>{"fdatasync", EIO},
                 std::pair<const char*, int>{"rename", EIO}, std::pair<const char*, int>{"fsync-dir", EIO});
    int old_state = 0;
    int new_state = 0;
    for (int skip = 0; skip < 6; ++skip) {
        Follower follower;
        REQUIRE(follower.open());
        REQUIRE(follower.store->put("old", "state"));
        const Contents before = follower.contents();
        follower.fs.inject(call, error, skip);
        (void)follower.store->import_snapshot(chunks_of(bytes));
        follower.fs.clear_fault();
        follower.store.reset();
        follower.fs.power_cut();
        follower.fs.revive();
        const Status reopened = follower.open();
        if (!reopened) FAIL(call << " failing after " << skip << ": " << reopened.to_string());
        const Contents after = follower.contents();
        if (after == before) {
            ++old_state;
        } else {
            CHECK(after == wanted);
            ++new_state;
        }
    }
    CHECK(old_state + new_state == 6);
    CHECK(old_state > 0);
}
