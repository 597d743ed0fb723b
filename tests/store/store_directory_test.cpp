#include "catch.hpp"
#include "fault_file_system.hpp"

#include <kvstore/detail/store_directory.hpp>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
namespace snapshot = kvstore::detail::snapshot;
using kvstore::detail::StoreDirectory;

namespace {

const std::string kDir = "/db";

bool exists(const FaultFileSystem& fs, const std::string& path) {
    const std::vector<std::string> paths = fs.paths();
    return std::find(paths.begin(), paths.end(), path) != paths.end();
}

// A directory as a crash can leave it: three complete snapshots, the
// temporary files of a checkpoint and an import, a log segment and a file
// that is none of these.
void fill(FaultFileSystem& fs) {
    REQUIRE(fs.create_dir(kDir, 0700));
    for (const Lsn lsn : {1, 7, 3}) fs.set_contents(kDir + "/" + snapshot::file_name(lsn), "snapshot");
    fs.set_contents(kDir + "/" + snapshot::file_name(9) + ".tmp", "half a snapshot");
    fs.set_contents(kDir + "/import.tmp", "half an import");
    fs.set_contents(kDir + "/" + detail::log::segment_name(5), "log");
    fs.set_contents(kDir + "/notes", "the user's");
    REQUIRE(fs.sync_dir(kDir));
}

}  // namespace

TEST_CASE("StoreDirectory names every file under its directory", "[store][directory]") {
    FaultFileSystem fs;
    const StoreDirectory files(fs, kDir);
    CHECK(files.path() == kDir);
    CHECK(files.lock_path() == kDir + "/LOCK");
    CHECK(files.snapshot_path(42) == kDir + "/" + snapshot::file_name(42));
    CHECK(files.import_path() == kDir + "/import.tmp");
    Lsn parsed = 0;
    CHECK(snapshot::parse_file_name(files.snapshot_path(42).substr(kDir.size() + 1), parsed));
    CHECK(parsed == 42);
}

TEST_CASE("StoreDirectory creates the directory and refuses a second lock, naming it", "[store][directory]") {
    FaultFileSystem fs;
    const StoreDirectory files(fs, kDir);
    std::unique_ptr<FileLock> first;
    REQUIRE(files.create_and_lock(0700, first));
    std::vector<std::string> names;
    CHECK(fs.list_dir(kDir, names));

    std::unique_ptr<FileLock> second;
    const Status refused = files.create_and_lock(0700, second);
    CHECK(refused.code() == StatusCode::kBusy);
    CHECK(refused.to_string().find("the store at " + kDir + " is open elsewhere") != std::string::npos);
    CHECK(second == nullptr);

    first.reset();
    CHECK(files.create_and_lock(0700, second));
}

TEST_CASE("StoreDirectory removes unfinished files and finds the newest snapshot", "[store][directory]") {
    FaultFileSystem fs;
    fill(fs);
    const StoreDirectory files(fs, kDir);
    std::string newest = "stale";
    REQUIRE(files.remove_unfinished_and_find_snapshot(newest));
    CHECK(newest == files.snapshot_path(7));
    CHECK_FALSE(exists(fs, files.snapshot_path(9) + ".tmp"));
    CHECK_FALSE(exists(fs, files.import_path()));
    for (const Lsn lsn : {1, 3, 7}) CHECK(exists(fs, files.snapshot_path(lsn)));
    CHECK(exists(fs, kDir + "/" + detail::log::segment_name(5)));
    CHECK(exists(fs, kDir + "/notes"));
}

TEST_CASE("StoreDirectory finds no snapshot in a directory without one", "[store][directory]") {
    FaultFileSystem fs;
    REQUIRE(fs.create_dir(kDir, 0700));
    fs.set_contents(kDir + "/" + detail::log::segment_name(1), "log");
    std::string newest = "stale";
    REQUIRE(StoreDirectory(fs, kDir).remove_unfinished_and_find_snapshot(newest));
    CHECK(newest.empty());
}

TEST_CASE("StoreDirectory reports a failed clean-up with the file's name", "[store][directory]") {
    FaultFileSystem fs;
    fill(fs);
    fs.inject("unlink", EIO);
    std::string newest;
    const Status failed = StoreDirectory(fs, kDir).remove_unfinished_and_find_snapshot(newest);
    CHECK(failed.code() == StatusCode::kIoError);
    CHECK(failed.to_string().find(".tmp") != std::string::npos);
}

TEST_CASE("StoreDirectory removes older snapshots durably and keeps the rest", "[store][directory]") {
    FaultFileSystem fs;
    fill(fs);
    const StoreDirectory files(fs, kDir);
    // Larger than one removal step, so that it is cut down before it goes.
    fs.set_contents(files.snapshot_path(3), std::string(detail::kRemovalStep * 2 + 5, 's'));
    REQUIRE(fs.sync_dir(kDir));

    REQUIRE(files.remove_snapshots_before(7));
    fs.power_cut();
    fs.revive();
    CHECK_FALSE(exists(fs, files.snapshot_path(1)));
    CHECK_FALSE(exists(fs, files.snapshot_path(3)));
    CHECK(exists(fs, files.snapshot_path(7)));
    CHECK(exists(fs, kDir + "/" + detail::log::segment_name(5)));
    CHECK(exists(fs, kDir + "/notes"));

    // Nothing older is left: no removal, no error.
    CHECK(files.remove_snapshots_before(7));
}
