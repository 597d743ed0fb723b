// The parts a Store is made of, each on its own: Recovery, Checkpointer,
// LoggedMap, BackgroundWorker, the expiry clock and the Durability policy
// contract.
#include "catch.hpp"
#include "fault_file_system.hpp"

#include <kvstore/concurrent_map.hpp>
#include <kvstore/detail/background_worker.hpp>
#include <kvstore/detail/checkpointer.hpp>
#include <kvstore/detail/expiring_value.hpp>
#include <kvstore/detail/logged_map.hpp>
#include <kvstore/detail/store_directory.hpp>
#include <kvstore/detail/store_recovery.hpp>
#include <kvstore/durability.hpp>
#include <kvstore/log_files.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
namespace snapshot = kvstore::detail::snapshot;
using detail::Expiry;
using detail::kNoExpiry;

namespace {

const std::string kDir = "/db";
// Microseconds since the epoch that the tests' clock shows.
constexpr Expiry kNow = 1'000'000'000'000'000;

using StringValues = detail::ExpiringValue<std::string>;
using StringMap = ConcurrentMap<std::string, StringValues::Stored>;
using NumberValues = detail::ExpiringValue<std::uint64_t>;
using NumberMap = ConcurrentMap<std::uint64_t, NumberValues::Stored>;

std::optional<std::string> value_in(const StringMap& map, const std::string& key) {
    std::optional<std::string> value;
    map.visit(key, [&](std::string_view stored) { value.emplace(StringValues::value(stored)); });
    return value;
}

void write_snapshot(FaultFileSystem& fs, Lsn replay_from, std::initializer_list<snapshot::Entry> entries) {
    snapshot::Writer writer(fs, kDir, replay_from, 0600);
    REQUIRE(writer.open());
    for (const snapshot::Entry& entry : entries) writer.add(entry);
    REQUIRE(writer.finish());
}

void write_log(FaultFileSystem& fs, std::initializer_list<LogOperation> ops) {
    LogOptions options;
    options.file_system = &fs;
    std::unique_ptr<SyncWAL> log;
    RecoveryReport report;
    REQUIRE(SyncWAL::open(kDir, options, 1, [](const LogRecord&) { return Status::ok(); }, report, log));
    for (const LogOperation& op : ops) REQUIRE(log->write(op));
    REQUIRE(log->close());
}

// Opens the SyncWAL in kDir with Recovery's replay callback, as a Store does.
template <class Map, class Recovery>
Status replay(Map& map, Recovery& recovery, FaultFileSystem& fs, Lsn from, std::unique_ptr<SyncWAL>& log) {
    LogOptions options;
    options.file_system = &fs;
    RecoveryReport report;
    return map.without_locks([&](auto& into) {
        return recovery.replay_log(into, options, [&](const LogOptions& log_options, auto& apply) {
            return SyncWAL::open(kDir, log_options, from, apply, report, log);
        });
    });
}

// A Checkpointer over its own map, in kDir of a fault file system, under None
// opened so that the first snapshot is numbered first_snapshot.
template <class K, class V>
struct CheckpointerUnderNone {
    using Map = ConcurrentMap<K, typename detail::ExpiringValue<V>::Stored>;

    explicit CheckpointerUnderNone(Lsn first_snapshot) {
        REQUIRE(fs.create_dir(kDir, 0700));
        options.log.file_system = &fs;
        RecoveryReport report;
        REQUIRE(None::open(kDir, options.log, first_snapshot - 1, [](const LogRecord&) { return Status::ok(); },
                           report, log));
    }

    FaultFileSystem fs;
    StoreOptions options;
    const detail::StoreDirectory files{fs, kDir};
    const detail::ExpiryClock clock{[] { return *detail::time_point_of(kNow); }};
    detail::ExpirySeen seen;
    Map map;
    detail::Checkpointer<K, V, Map, None> checkpointer{fs, files, map, options, clock, seen};
    std::unique_ptr<None> log;
};

// A LoggedMap of strings over a SyncWAL in kDir (or None), its clock at kNow.
template <class Log>
struct LoggedStrings {
    using CopyCursor = typename detail::Checkpointer<std::string, std::string, StringMap, Log>::CopyCursor;

    LoggedStrings() {
        REQUIRE(fs.create_dir(kDir, 0700));
        options.log.file_system = &fs;
        options.max_key_size = 8;
        options.max_value_size = 16;
        RecoveryReport report;
        REQUIRE(Log::open(kDir, options.log, 1, [](const LogRecord&) { return Status::ok(); }, report, log));
    }

    FaultFileSystem fs;
    StoreOptions options;
    std::unique_ptr<Log> log;
    CopyCursor cursor;
    const detail::ExpiryClock clock{[] { return *detail::time_point_of(kNow); }};
    detail::ExpirySeen seen;
    // Few shards: clear() holds every shard lock at once, past what ThreadSanitizer tracks at 64.
    StringMap map{MapOptions{8, 0}};
    detail::LoggedMap<std::string, std::string, StringMap, Log, CopyCursor> entries{map, log, cursor, clock, seen,
                                                                                    options};
};

// Every operation in the log of kDir, as "lsn type key=value@expiry".
std::vector<std::string> logged_operations(FaultFileSystem& fs) {
    std::vector<std::string> found;
    RecoveryReport report;
    REQUIRE(read_log_files(
        fs, kDir, 1, RecoveryMode::kAbsoluteConsistency,
        [&](const LogRecord& record) {
            return for_each_operation(record, [&](const LogOperation& op) {
                found.push_back(std::to_string(record.lsn) + " " + std::to_string(static_cast<int>(op.type)) + " " +
                                std::string(op.key) + "=" + std::string(op.value) + "@" + std::to_string(op.expiry));
            });
        },
        report));
    return found;
}

}  // namespace

TEST_CASE("LoggedMap logs each change it applies, in order, and hands back the record's LSN uncommitted",
          "[store][parts][logged-map]") {
    LoggedStrings<SyncWAL> under_sync;
    auto& [fs, options, log, cursor, clock, seen, map, entries] = under_sync;
    detail::Logged logged = entries.put(std::string("a"), std::string("1"), kNoExpiry);
    REQUIRE(logged.status);
    CHECK(logged.lsn == 1);
    CHECK(log->stats().durable_lsn == 0);

    bool inserted = true;
    logged = entries.put_if_absent(std::string("a"), std::string("2"), kNoExpiry, inserted);
    CHECK_FALSE(inserted);
    CHECK(logged.lsn == 0);
    logged = entries.put_if_absent(std::string("b"), std::string("2"), kNow + 5, inserted);
    CHECK(inserted);
    CHECK(logged.lsn == 2);
    CHECK(seen.any());

    logged = entries.change_live(std::string("a"), [](const auto& value, Expiry, auto&& store_value) {
        CHECK(std::string(value) == "1");
        CHECK(store_value(std::string("10"), kNoExpiry));
    });
    CHECK(logged.lsn == 3);
    bool erased = false;
    CHECK(entries.erase(std::string("b"), &erased).lsn == 4);
    CHECK(erased);
    CHECK(entries.erase(std::string("missing"), &erased).lsn == 0);
    CHECK_FALSE(erased);
    CHECK(entries.write_entries({"c", "a"}, {std::string("3"), std::nullopt}, {kNoExpiry, kNoExpiry}).lsn == 5);
    CHECK(value_in(map, "c") == "3");
    CHECK_FALSE(value_in(map, "a"));

    int staged = 0;
    const std::vector<std::string> staged_keys{"c"};
    const auto declines = [&](auto&) { return ++staged == 0; };
    CHECK(entries.write_locked({"c"}, declines, staged_keys, {std::string("4")}, {kNoExpiry}).lsn == 0);
    CHECK(staged == 1);
    CHECK(value_in(map, "c") == "3");
    CHECK(entries.clear().lsn == 6);
    CHECK(map.size() == 0);
    REQUIRE(log->close());
    CHECK(logged_operations(fs) == std::vector<std::string>{
                                       "1 1 a=1@0", "2 2 b=2@" + std::to_string(kNow + 5), "3 1 a=10@0", "4 3 b=@0",
                                       "5 1 c=3@0", "5 3 a=@0", "6 4 =@0"});
}

TEST_CASE("LoggedMap hides an expired entry, and a read or sweep that finds it removes it unlogged",
          "[store][parts][logged-map]") {
    LoggedStrings<SyncWAL> under_sync;
    auto& [fs, options, log, cursor, clock, seen, map, entries] = under_sync;
    REQUIRE(entries.put(std::string("old"), std::string("1"), kNow - 1).status);
    REQUIRE(entries.put(std::string("older"), std::string("2"), kNow - 2).status);
    REQUIRE(entries.put(std::string("live"), std::string("3"), kNow + 1).status);
    CHECK(map.size() == 3);

    int reads = 0;
    CHECK_FALSE(entries.read_live(std::string("old"), [&](const auto&, Expiry) { ++reads; }));
    CHECK(reads == 0);
    CHECK(entries.expired_count() == 1);
    CHECK(map.size() == 2);
    std::vector<std::string> listed;
    for (std::size_t shard = 0; shard < map.shard_count(); ++shard)
        entries.for_each_in_shard(shard, [&](const auto& key, const auto&) { listed.emplace_back(key); });
    CHECK(listed == std::vector<std::string>{"live"});
    bool changed = false;
    CHECK(entries.change_live(std::string("older"), [&](const auto&, Expiry, auto&&) { changed = true; }).lsn == 0);
    CHECK_FALSE(changed);

    CHECK(entries.remove_expired() == 1);
    CHECK(entries.expired_count() == 2);
    CHECK(map.size() == 1);
    bool inserted = false;
    CHECK(entries.put_if_absent(std::string("live"), std::string("4"), kNoExpiry, inserted).lsn == 0);
    CHECK_FALSE(inserted);
    REQUIRE(log->close());
    CHECK(logged_operations(fs).size() == 3);
}

TEST_CASE("LoggedMap changes nothing once the log refuses appends", "[store][parts][logged-map]") {
    LoggedStrings<SyncWAL> under_sync;
    auto& [fs, options, log, cursor, clock, seen, map, entries] = under_sync;
    REQUIRE(entries.put(std::string("kept"), std::string("1"), kNoExpiry).status);
    fs.inject("write", EIO);
    const detail::Logged failing = entries.put(std::string("lost"), std::string("2"), kNoExpiry);
    REQUIRE(failing.status);
    CHECK_FALSE(log->commit(failing.lsn));

    CHECK_FALSE(entries.put(std::string("new"), std::string("3"), kNoExpiry).status);
    bool inserted = true;
    CHECK_FALSE(entries.put_if_absent(std::string("new"), std::string("3"), kNoExpiry, inserted).status);
    CHECK_FALSE(inserted);
    bool erased = true;
    CHECK_FALSE(entries.erase(std::string("kept"), &erased).status);
    CHECK_FALSE(erased);
    CHECK_FALSE(entries.change_live(std::string("kept"), [](const auto&, Expiry, auto&& store_value) {
                    CHECK_FALSE(store_value(std::string("changed"), kNoExpiry));
                }).status);
    CHECK_FALSE(entries.write_entries({"kept"}, {std::nullopt}, {kNoExpiry}).status);
    CHECK_FALSE(entries.clear().status);
    CHECK_FALSE(value_in(map, "new"));
    CHECK(value_in(map, "kept") == "1");
    CHECK(map.size() == 2);
}

TEST_CASE("LoggedMap under None logs nothing, and names the limit a key or value exceeds",
          "[store][parts][logged-map]") {
    LoggedStrings<None> under_none;
    auto& [fs, options, log, cursor, clock, seen, map, entries] = under_none;
    const detail::Logged logged = entries.put(std::string("a"), std::string("1"), kNoExpiry);
    CHECK(logged.status);
    CHECK(logged.lsn == 0);
    CHECK(value_in(map, "a") == "1");
    CHECK(entries.clear().lsn == 0);
    CHECK(map.size() == 0);

    const std::string long_key(9, 'k');
    const std::string long_value(17, 'v');
    CHECK(entries.check_sizes(std::string("key"), &long_value).to_string().find("value of 17 bytes exceeds "
                                                                                 "max_value_size 16") !=
          std::string::npos);
    CHECK(entries.check_sizes(long_key, static_cast<const std::string*>(nullptr))
              .to_string()
              .find("key of 9 bytes exceeds max_key_size 8") != std::string::npos);
    const std::string fitting_value(16, 'v');
    CHECK(entries.check_sizes(std::string("key"), &fitting_value));
}

TEST_CASE("Recovery loads a snapshot, leaving out expired entries, then replays the log after it",
          "[store][parts][recovery]") {
    FaultFileSystem fs;
    REQUIRE(fs.create_dir(kDir, 0700));
    write_snapshot(fs, 1, {{"a", "1", kNoExpiry}, {"b", "2", kNow - 1}, {"c", "3", kNow + 1}});
    write_log(fs, {{LogRecordType::kPut, "d", "4", 0}, {LogRecordType::kErase, "a", {}, 0}});

    StringMap map;
    detail::ExpirySeen seen;
    detail::Recovery<std::string, std::string, StringMap> recovery(fs, kDir, map, kNow, seen);
    Lsn replay_from = 0;
    std::uint64_t entries = 0;
    REQUIRE(recovery.load_snapshot(kDir + "/" + snapshot::file_name(1), replay_from, entries));
    CHECK(replay_from == 1);
    CHECK(entries == 3);
    CHECK(map.size() == 2);
    CHECK(value_in(map, "a") == "1");
    CHECK_FALSE(value_in(map, "b"));
    CHECK(seen.any());

    std::unique_ptr<SyncWAL> log;
    REQUIRE(replay(map, recovery, fs, replay_from, log));
    REQUIRE(log != nullptr);
    CHECK_FALSE(value_in(map, "a"));
    CHECK(value_in(map, "c") == "3");
    CHECK(value_in(map, "d") == "4");
    CHECK(map.size() == 2);
}

TEST_CASE("Recovery names the log record whose key does not decode as the store's type", "[store][parts][recovery]") {
    FaultFileSystem fs;
    REQUIRE(fs.create_dir(kDir, 0700));
    write_log(fs, {{LogRecordType::kPut, std::string(8, '\1'), std::string(8, '\2'), 0},
                   {LogRecordType::kPut, "abc", std::string(8, '\2'), 0}});
    NumberMap map;
    detail::ExpirySeen seen;
    detail::Recovery<std::uint64_t, std::uint64_t, NumberMap> recovery(fs, kDir, map, kNow, seen);
    std::unique_ptr<SyncWAL> log;
    const Status status = replay(map, recovery, fs, 1, log);
    REQUIRE(status.code() == StatusCode::kCorruption);
    CHECK(status.to_string().find("log record 2") != std::string::npos);
    CHECK(status.to_string().find("does not decode") != std::string::npos);
    CHECK_FALSE(seen.any());
}

TEST_CASE("Recovery returns the log's error when the log does not open, and opens nothing itself",
          "[store][parts][recovery]") {
    FaultFileSystem fs;
    StringMap map;
    detail::ExpirySeen seen;
    detail::Recovery<std::string, std::string, StringMap> recovery(fs, kDir, map, kNow, seen);
    int opened = 0;
    const Status status = map.without_locks([&](auto& into) {
        return recovery.replay_log(into, LogOptions{}, [&](const LogOptions&, auto&) {
            ++opened;
            return Status::invalid_argument("refused by the test");
        });
    });
    CHECK(opened == 1);
    CHECK(status.to_string().find("refused by the test") != std::string::npos);
    CHECK(fs.paths().empty());
}

TEST_CASE("Checkpointer under None numbers its snapshots, leaves expired entries out and removes older ones",
          "[store][parts][checkpointer]") {
    CheckpointerUnderNone<std::string, std::string> under_none(5);
    auto& [fs, options, files, clock, seen, map, checkpointer, log] = under_none;
    map.insert_or_assign("live", StringValues::make("1", kNoExpiry));
    map.insert_or_assign("ending", StringValues::make("2", kNow + 1));
    map.insert_or_assign("ended", StringValues::make("3", kNow));
    CHECK_FALSE(checkpointer.checks_size());

    Lsn first = 0;
    REQUIRE(checkpointer.checkpoint(*log, first));
    CHECK(first == 5);
    Lsn replay_from = 0;
    std::uint64_t entries = 0;
    std::vector<std::string> keys;
    REQUIRE(snapshot::read(fs, files.snapshot_path(first), replay_from, entries,
                           [&](const snapshot::Entry& entry) { keys.emplace_back(entry.key); }));
    CHECK(entries == 2);
    CHECK(std::count(keys.begin(), keys.end(), "ended") == 0);
    CHECK(checkpointer.checkpoints() == 1);
    CHECK(checkpointer.snapshot_bytes() > 0);

    Lsn second = 0;
    REQUIRE(checkpointer.checkpoint(*log, second));
    CHECK(second == 6);
    CHECK(fs.contents(files.snapshot_path(second)).size() == checkpointer.snapshot_bytes());
    const std::vector<std::string> paths = fs.paths();
    CHECK(std::count(paths.begin(), paths.end(), files.snapshot_path(first)) == 0);
}

TEST_CASE("Checkpointer refuses an import that does not decode as the store's types, changing nothing",
          "[store][parts][checkpointer]") {
    CheckpointerUnderNone<std::uint64_t, std::uint64_t> under_none(1);
    auto& [fs, options, files, clock, seen, map, checkpointer, log] = under_none;
    map.insert_or_assign(7, NumberValues::make(70, kNoExpiry));

    write_snapshot(fs, 9, {{"not eight bytes", std::string(8, '\0'), kNoExpiry}});
    std::string stream = fs.contents(kDir + "/" + snapshot::file_name(9));
    REQUIRE(fs.remove(kDir + "/" + snapshot::file_name(9)));
    const Status status = checkpointer.import_snapshot(*log, [&](std::string& chunk) {
        chunk = std::move(stream);
        stream.clear();
        return Status::ok();
    });
    REQUIRE(status.code() == StatusCode::kCorruption);
    CHECK(status.to_string().find("does not decode") != std::string::npos);
    CHECK(map.size() == 1);
    CHECK(checkpointer.checkpoints() == 0);
    CHECK(fs.paths().size() == 0);
}

TEST_CASE("BackgroundWorker runs its task every period, keeps the first failure and stops at once",
          "[store][parts][background]") {
    detail::BackgroundWorker worker;
    std::atomic<int> runs{0};
    worker.start(std::chrono::milliseconds(1), [&] {
        const int run = ++runs;
        if (run == 2) return Status::invalid_argument("first failure");
        if (run == 3) return Status::invalid_argument("second failure");
        return Status::ok();
    });
    while (runs.load() < 5) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    worker.stop();
    const int after_stop = runs.load();
    CHECK(worker.first_error().find("first failure") != std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(runs.load() == after_stop);
    worker.stop();

    // A worker waiting out a long period is woken by stop, not left to finish it.
    detail::BackgroundWorker idle;
    idle.start(std::chrono::hours(1), [] { return Status::ok(); });
    const auto began = std::chrono::steady_clock::now();
    idle.stop();
    CHECK(std::chrono::steady_clock::now() - began < std::chrono::minutes(1));
    CHECK(idle.first_error().empty());
}

TEST_CASE("ExpiryClock turns a time-to-live into an expiry, refusing ones that cannot be one",
          "[store][parts][expiry]") {
    const detail::ExpiryClock clock([] { return *detail::time_point_of(kNow); });
    Expiry expiry = kNoExpiry;
    REQUIRE(clock.expiry_after(std::chrono::milliseconds(1500), expiry));
    CHECK(expiry == kNow + 1'500'000);
    CHECK(clock.now() == kNow);

    const Status zero = clock.expiry_after(std::chrono::milliseconds(0), expiry);
    CHECK(zero.code() == StatusCode::kInvalidArgument);
    CHECK(zero.to_string().find("must be positive") != std::string::npos);
    const Status huge = clock.expiry_after(std::chrono::milliseconds::max(), expiry);
    CHECK(huge.code() == StatusCode::kInvalidArgument);
    CHECK(huge.to_string().find("last representable time") != std::string::npos);
    CHECK(expiry == kNow + 1'500'000);

    CHECK(detail::expiry_of(detail::TimePoint{}) == 1);
    CHECK(detail::expiry_of(*detail::time_point_of(kNow)) == kNow);
    CHECK_FALSE(detail::time_point_of(kNoExpiry));
    CHECK(detail::deadline_passed(kNow, kNow));
    CHECK_FALSE(detail::deadline_passed(kNow + 1, kNow));
    CHECK_FALSE(detail::deadline_passed(kNoExpiry, kNow));
}

namespace {

// A policy with every call but append and append_batch, and rotate only if kRotates.
template <bool kKeeps, bool kRotates>
struct TestPolicy {
    static constexpr bool kKeepsRecords = kKeeps;
    template <class Apply>
    static Status open(const std::string&, const LogOptions&, Lsn, Apply&&, RecoveryReport&,
                       std::unique_ptr<TestPolicy>&) {
        return Status::ok();
    }
    Status commit(Lsn) { return Status::ok(); }
    Status flush() { return Status::ok(); }
    template <bool kHas = kRotates, std::enable_if_t<kHas, int> = 0>
    Status rotate(Lsn&) {
        return Status::ok();
    }
    Status remove_segments_before(Lsn) { return Status::ok(); }
    LogStats stats() const { return {}; }
    Status close() { return Status::ok(); }
};

}  // namespace

TEST_CASE("The Durability contract holds for the three policies and fails for a policy missing a call",
          "[store][parts][durability]") {
    CHECK(is_durability_v<None>);
    CHECK(is_durability_v<SyncWAL>);
    CHECK(is_durability_v<GroupCommitWAL>);
    CHECK(is_durability_v<TestPolicy<false, true>>);
    CHECK_FALSE(is_durability_v<TestPolicy<true, true>>);
    CHECK_FALSE(is_durability_v<TestPolicy<false, false>>);
    CHECK_FALSE(is_durability_v<int>);
}
