// Fuzzes the log reader and replay: the input is the bytes of one segment,
// replayed in every recovery mode, read-only and repairing. Replay must
// return a Status (never crash or read past the file), hand out records in
// LSN order, and leave a repaired log that the default mode reopens to the
// same records.
#include "fault_file_system.hpp"

#include <kvstore/detail/log_repair.hpp>
#include <kvstore/detail/log_replay.hpp>
#include <kvstore/durability.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using namespace kvstore;
namespace wal = kvstore::detail::log;

const std::string kDir = "/log";

void require(bool holds, const char* what) {
    if (holds) return;
    std::fprintf(stderr, "log_reader fuzzer: %s\n", what);
    std::abort();
}

Status replay(test::FaultFileSystem& fs, RecoveryMode mode, bool repair, std::uint64_t& records) {
    RecoveryReport report;
    Lsn previous = 0;
    records = 0;
    wal::RepairPlan plan;
    const Status replayed = wal::replay_log(
        fs, kDir, 0, mode,
        [&](const LogRecord& record) {
            require(record.lsn > previous, "records out of LSN order");
            previous = record.lsn;
            ++records;
            return for_each_operation(record, [](const LogOperation&) {});
        },
        report, {}, &plan);
    if (!replayed || !repair) return replayed;
    return wal::repair_log(fs, kDir, plan, report, 0600);
}

// The segment is named after the LSN its header gives (when it gives a
// plausible one), so that inputs get past the name check.
Lsn named_lsn(const std::string& segment) {
    if (segment.size() < wal::kFileHeaderSize) return 1;
    const Lsn lsn = wal::get_u64(segment.data() + 16);
    return lsn >= 1 && lsn < (Lsn{1} << 62) ? lsn : 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string segment(reinterpret_cast<const char*>(data), size);
    for (const RecoveryMode mode : {RecoveryMode::kTolerateTornTail, RecoveryMode::kAbsoluteConsistency,
                                    RecoveryMode::kPointInTime, RecoveryMode::kSkipBadRecords}) {
        for (const bool repair : {false, true}) {
            test::FaultFileSystem fs;
            require(fs.create_dir(kDir, 0700).is_ok(), "create_dir failed");
            fs.set_contents(kDir + "/" + wal::segment_name(named_lsn(segment)), segment);
            std::uint64_t records = 0;
            const Status replayed = replay(fs, mode, repair, records);
            require(fs.largest_read() <= size, "read more than the file holds");
            if (!replayed || !repair || mode == RecoveryMode::kSkipBadRecords) continue;
            std::uint64_t again = 0;
            require(replay(fs, RecoveryMode::kTolerateTornTail, false, again).is_ok(), "a repaired log does not reopen");
            require(again == records, "a repaired log reopens to other records");
        }
    }
    return 0;
}
