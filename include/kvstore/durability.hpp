// The durability policies a Store is parameterised on, and the log they use.
//
//   None            no log: a crash loses everything since the last snapshot.
//   SyncWAL         each write is written and synced (fdatasync) on its own
//                   before it is acknowledged.
//   GroupCommitWAL  writers that arrive while a sync is in flight share the
//                   next one; every write is still acknowledged only once it
//                   is durable. With LogOptions::flush_interval set it is
//                   relaxed instead: writes are acknowledged at once and
//                   synced every interval, and a crash loses at most the
//                   last interval.
//
// SyncWAL and GroupCommitWAL are also usable on their own as a log:
//
//   std::unique_ptr<kvstore::GroupCommitWAL> log;
//   kvstore::RecoveryReport report;
//   kvstore::Status s = kvstore::GroupCommitWAL::open(dir, {}, 0,
//       [&](const kvstore::LogRecord& r) { return kvstore::for_each_operation(r, apply); }, report, log);
//   s = log->write({kvstore::LogRecordType::kPut, "key", "value"});
//
// Readers of whatever the caller keeps in memory may see a change before its
// record is durable: the log only decides when a write is acknowledged.
#pragma once

#include <kvstore/detail/write_ahead_log.hpp>
#include <kvstore/log_options.hpp>
#include <kvstore/status.hpp>

#include <memory>
#include <string>

namespace kvstore {

using LogRecordType = detail::log::RecordType;
/// One change as bytes: type, key, value, and for kPutExpiring an absolute
/// expiry in microseconds since the Unix epoch.
using LogOperation = detail::log::Operation;
/// A record handed to a replay callback; its payload is valid only during
/// the call, unless payload_owner is set (the segment is mapped): a copy of
/// *payload_owner then keeps it valid.
using LogRecord = detail::log::RecordView;

/// Calls visit(const LogOperation&) for each operation in `record` (one, or
/// all of a batch after checking the whole batch). Returns a corruption
/// error naming the record's LSN if its payload does not decode.
template <class Visit>
Status for_each_operation(const LogRecord& record, Visit&& visit) {
    const char* why = nullptr;
    if (record.type == LogRecordType::kBatch) {
        why = detail::log::decode_batch_payload(record.payload, visit);
    } else {
        LogOperation op;
        why = detail::log::decode_payload(record.type, record.payload, op);
        if (why == nullptr) visit(static_cast<const LogOperation&>(op));
    }
    if (why == nullptr) return Status::ok();
    return Status::corruption("record with LSN " + std::to_string(record.lsn), record.offset, why);
}

/// No log at all.
struct None {};

/// Every write pays for its own fdatasync before it is acknowledged.
class SyncWAL final : public detail::WriteAheadLog {
public:
    /// Opens (creating if needed) the log in `dir`, replays the records
    /// from `from_lsn` on through apply(const LogRecord&) -> Status,
    /// repairs a torn tail as options.recovery_mode allows, and starts a
    /// new segment. `report` says what was read and what was cut.
    template <class Apply>
    static Status open(const std::string& dir, const LogOptions& options, Lsn from_lsn, Apply&& apply,
                       RecoveryReport& report, std::unique_ptr<SyncWAL>& log) {
        return open_log(dir, options, detail::CommitMode::kEachWrite, from_lsn, apply, report, log);
    }

private:
    friend class detail::WriteAheadLog;
    using WriteAheadLog::WriteAheadLog;
};

/// Concurrent writers share syncs; see the file comment for the relaxed mode.
class GroupCommitWAL final : public detail::WriteAheadLog {
public:
    /// As SyncWAL::open.
    template <class Apply>
    static Status open(const std::string& dir, const LogOptions& options, Lsn from_lsn, Apply&& apply,
                       RecoveryReport& report, std::unique_ptr<GroupCommitWAL>& log) {
        const auto mode =
            options.flush_interval.count() > 0 ? detail::CommitMode::kInterval : detail::CommitMode::kGroup;
        return open_log(dir, options, mode, from_lsn, apply, report, log);
    }

private:
    friend class detail::WriteAheadLog;
    using WriteAheadLog::WriteAheadLog;
};

}  // namespace kvstore
