// Status: an ok outcome or an error with its code, errno and message.
#include "catch.hpp"

#include <kvstore/status.hpp>

#include <cerrno>
#include <string>
#include <utility>

using kvstore::Status;
using kvstore::StatusCode;

TEST_CASE("An ok Status has no code, errno or message", "[status]") {
    const Status ok = Status::ok();
    CHECK(ok.is_ok());
    CHECK(static_cast<bool>(ok));
    CHECK(ok.code() == StatusCode::kOk);
    CHECK(ok.error_number() == 0);
    CHECK(ok.message().empty());
    CHECK(ok.to_string() == "ok");
    CHECK(Status().is_ok());
}

TEST_CASE("An error keeps its code, errno and message through copies and moves", "[status]") {
    const Status error = Status::io_error("fdatasync", "/store/wal-1.log", EIO);
    CHECK_FALSE(error);
    CHECK(error.code() == StatusCode::kIoError);
    CHECK(error.error_number() == EIO);
    CHECK(error.message().find("fdatasync /store/wal-1.log") == 0);
    CHECK(error.to_string().find("I/O error: fdatasync") == 0);

    Status copy = error;
    CHECK(copy.code() == error.code());
    CHECK(copy.message() == error.message());
    copy = Status::corruption("/store/snapshot", 96, "bad checksum");
    CHECK(copy.message() == "/store/snapshot at offset 96: bad checksum");
    CHECK(error.code() == StatusCode::kIoError);  // the copy was independent
    const Status& same = copy;
    copy = same;  // self-assignment keeps it
    CHECK(copy.code() == StatusCode::kCorruption);

    Status moved = std::move(copy);
    CHECK(moved.code() == StatusCode::kCorruption);
    CHECK(copy.is_ok());  // a moved-from Status is ok
    Status assigned;
    assigned = std::move(moved);
    CHECK(assigned.message() == "/store/snapshot at offset 96: bad checksum");
    assigned = Status::ok();
    CHECK(assigned.is_ok());
    CHECK(Status::failed(error).error_number() == EIO);
}
