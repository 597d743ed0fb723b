// The POSIX file layer: what the log relies on from it, on the real file
// system.
#include "catch.hpp"
#include "temp_dir.hpp"

#include <kvstore/durability.hpp>
#include <kvstore/file_system.hpp>

#include <sys/stat.h>
#include <algorithm>
#include <string>
#include <vector>

using namespace kvstore;

namespace {

unsigned mode_of(const std::string& path) {
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return static_cast<unsigned>(info.st_mode) & 0777u;
}

}  // namespace

TEST_CASE("Files append, sync, read back, rename, truncate and go away", "[wal][posix]") {
    test::TempDir scratch;
    FileSystem& fs = default_file_system();
    const std::string path = scratch.path() + "/file";
    std::unique_ptr<WritableFile> out;
    REQUIRE(fs.open_writable(path, 0600, out));
    REQUIRE(out->append("hello "));
    REQUIRE(out->append("world"));
    REQUIRE(out->sync());
    REQUIRE(out->close());

    std::uint64_t size = 0;
    REQUIRE(fs.file_size(path, size));
    CHECK(size == 11);
    std::unique_ptr<ReadableFile> in;
    REQUIRE(fs.open_readable(path, in));
    std::string buffer(32, '\0');
    std::size_t read = 0;
    REQUIRE(in->read(6, buffer.size(), buffer.data(), read));
    CHECK(buffer.substr(0, read) == "world");

    REQUIRE(fs.rename(path, scratch.path() + "/renamed"));
    REQUIRE(fs.sync_dir(scratch.path()));
    std::vector<std::string> names;
    REQUIRE(fs.list_dir(scratch.path(), names));
    CHECK(names == std::vector<std::string>{"renamed"});
    REQUIRE(fs.truncate(scratch.path() + "/renamed", 5));
    REQUIRE(fs.file_size(scratch.path() + "/renamed", size));
    CHECK(size == 5);
    REQUIRE(fs.remove(scratch.path() + "/renamed"));
    REQUIRE(fs.list_dir(scratch.path(), names));
    CHECK(names.empty());
}

TEST_CASE("Failures name the call, the path and errno", "[wal][posix]") {
    test::TempDir scratch;
    FileSystem& fs = default_file_system();
    std::unique_ptr<ReadableFile> in;
    const Status missing = fs.open_readable(scratch.path() + "/absent", in);
    CHECK(missing.code() == StatusCode::kIoError);
    CHECK(missing.error_number() == ENOENT);
    CHECK(missing.message().find("open " + scratch.path() + "/absent") != std::string::npos);
    CHECK(fs.remove(scratch.path() + "/absent").error_number() == ENOENT);

    std::unique_ptr<WritableFile> out;
    REQUIRE(fs.open_writable(scratch.path() + "/plain", 0600, out));
    const Status not_a_dir = fs.create_dir(scratch.path() + "/plain", 0700);
    CHECK(not_a_dir.error_number() == ENOTDIR);
}

TEST_CASE("A locked file refuses a second lock, in this process too, until released", "[wal][posix]") {
    test::TempDir scratch;
    FileSystem& fs = default_file_system();
    const std::string path = scratch.path() + "/LOCK";
    std::unique_ptr<FileLock> first;
    REQUIRE(fs.lock_file(path, first));
    std::unique_ptr<FileLock> second;
    const Status refused = fs.lock_file(path, second);
    CHECK(refused.code() == StatusCode::kBusy);
    CHECK(refused.message().find(path) != std::string::npos);
    first.reset();
    CHECK(fs.lock_file(path, second));
}

TEST_CASE("Log files are private by default and take the modes asked for", "[wal][posix]") {
    test::TempDir scratch;
    RecoveryReport report;
    auto ignore = [](const LogRecord&) { return Status::ok(); };
    {
        std::unique_ptr<SyncWAL> wal;
        REQUIRE(SyncWAL::open(scratch.path() + "/private", LogOptions{}, 0, ignore, report, wal));
        REQUIRE(wal->write({LogRecordType::kPut, "k", "v", 0}));
    }
    CHECK(mode_of(scratch.path() + "/private") == 0700);
    CHECK(mode_of(scratch.path() + "/private/wal-00000000000000000001.log") == 0600);

    const mode_t old_mask = ::umask(0);
    LogOptions shared;
    shared.dir_mode = 0750;
    shared.file_mode = 0640;
    std::unique_ptr<SyncWAL> wal;
    const Status opened = SyncWAL::open(scratch.path() + "/shared", shared, 0, ignore, report, wal);
    ::umask(old_mask);
    REQUIRE(opened);
    CHECK(mode_of(scratch.path() + "/shared") == 0750);
    CHECK(mode_of(scratch.path() + "/shared/wal-00000000000000000001.log") == 0640);
}

TEST_CASE("A readable file maps its bytes, which outlive the file object, and an empty or short file does not map",
          "[wal][posix]") {
    test::TempDir scratch;
    FileSystem& fs = default_file_system();
    const std::string path = scratch.path() + "/data";
    const std::string contents(10000, 'k');
    {
        std::unique_ptr<WritableFile> out;
        REQUIRE(fs.open_writable(path, 0600, out));
        REQUIRE(out->append(contents));
        REQUIRE(out->close());
    }
    std::shared_ptr<const void> mapping;
    {
        std::unique_ptr<ReadableFile> in;
        REQUIRE(fs.open_readable(path, in));
        CHECK(in->map(contents.size() + 1) == nullptr);
        CHECK(in->map(0) == nullptr);
        mapping = in->map(contents.size());
        REQUIRE(mapping != nullptr);
    }
    CHECK(std::string_view(static_cast<const char*>(mapping.get()), contents.size()) == contents);
}
