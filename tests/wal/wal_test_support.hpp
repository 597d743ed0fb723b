// Helpers shared by the log tests: open a log over a FaultFileSystem and
// collect what replay hands back.
#pragma once

#include "fault_file_system.hpp"

#include <kvstore/durability.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace kvstore::test {

inline const std::string kLogDir = "/db";

/// An operation as replayed, owning its bytes.
struct ReplayedOp {
    Lsn lsn;
    LogRecordType record_type;  // kBatch for the operations of a batch
    LogRecordType type;
    std::string key;
    std::string value;
    std::uint64_t expiry;

    bool operator==(const ReplayedOp& other) const {
        return lsn == other.lsn && record_type == other.record_type && type == other.type && key == other.key &&
               value == other.value && expiry == other.expiry;
    }
};

/// A replay callback that appends every operation to `out`.
inline auto collect_into(std::vector<ReplayedOp>& out) {
    return [&out](const LogRecord& record) {
        return for_each_operation(record, [&](const LogOperation& op) {
            out.push_back({record.lsn, record.type, op.type, std::string(op.key), std::string(op.value), op.expiry});
        });
    };
}

template <class Log>
Status open_collecting(FaultFileSystem& fs, std::vector<ReplayedOp>& replayed, std::unique_ptr<Log>& log,
                       LogOptions options = {}, RecoveryReport* report_out = nullptr) {
    options.file_system = &fs;
    // Small preallocation steps: the in-memory files stay small, and the
    // zero-filling is extended often, so it is exercised often.
    options.preallocate_bytes = std::min<std::size_t>(options.preallocate_bytes, 4096);
    RecoveryReport report;
    replayed.clear();
    Status status = Log::open(kLogDir, options, 0, collect_into(replayed), report, log);
    if (report_out != nullptr) *report_out = report;
    return status;
}

/// A log over a FaultFileSystem: set `options`, then open().
template <class Log>
struct LogFixture {
    FaultFileSystem fs;
    LogOptions options;
    std::vector<ReplayedOp> replayed;
    RecoveryReport report;
    std::unique_ptr<Log> wal;

    Status open() { return open_collecting(fs, replayed, wal, options, &report); }
    /// Closes the log (if open) and opens it again.
    Status reopen() {
        wal.reset();
        return open();
    }
};

/// The path of the segment that starts at `first_lsn`.
inline std::string segment_path(Lsn first_lsn) { return kLogDir + "/" + detail::log::segment_name(first_lsn); }

inline LogOperation put(std::string_view key, std::string_view value) {
    return {LogRecordType::kPut, key, value, 0};
}

}  // namespace kvstore::test
