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
//
// The policy contract, which Store checks with is_durability_v: a policy P has
//
//   static constexpr bool kKeepsRecords;
//   static Status open(dir, const LogOptions&, Lsn from, apply, RecoveryReport&, std::unique_ptr<P>&);
//   Status commit(Lsn);                  // the promise about every record up to Lsn holds
//   Status flush();                      // every record appended is durable
//   Status rotate(Lsn& first);           // a snapshot starts here: `first` is the LSN it replays from
//   Status remove_segments_before(Lsn);  // a snapshot covers the records below
//   LogStats stats() const;
//   Status close();
//
// and, when kKeepsRecords, append(const LogOperation&, Lsn&) and
// append_batch(range of LogOperation, Lsn&). A policy that keeps no records
// is never handed one, so a store under it encodes nothing.
#pragma once

#include <kvstore/detail/write_ahead_log.hpp>
#include <kvstore/log_options.hpp>
#include <kvstore/status.hpp>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace kvstore {

using LogRecordType = detail::log::RecordType;
/// One change as bytes: type, key, value, and for kPutExpiring an absolute
/// expiry in microseconds since the Unix epoch.
using LogOperation = detail::log::Operation;
/// A record handed to a replay callback; its payload is valid only during
/// the call, unless payload_owner is set (the segment is mapped): a copy of
/// *payload_owner then keeps it valid.
using LogRecord = detail::log::RecordView;

namespace detail::log {

// As for_each_operation, returning nullptr or why the payload does not decode.
template <class Visit>
const char* decode_record_payload(const RecordView& record, Visit&& visit) {
    if (record.type == RecordType::kBatch) return decode_batch_payload(record.payload, visit);
    Operation op;
    const char* why = decode_payload(record.type, record.payload, op);
    if (why == nullptr) visit(static_cast<const Operation&>(op));
    return why;
}

}  // namespace detail::log

/// Calls visit(const LogOperation&) for each operation in `record` (one, or
/// all of a batch after checking the whole batch). Returns a corruption
/// error naming the record's LSN if its payload does not decode.
template <class Visit>
Status for_each_operation(const LogRecord& record, Visit&& visit) {
    const char* why = detail::log::decode_record_payload(record, visit);
    if (why == nullptr) return Status::ok();
    return Status::corruption("record with LSN " + std::to_string(record.lsn), record.offset, why);
}

/// No log at all: a crash loses everything since the last snapshot. It has
/// the logs' interface, each call doing nothing, so that a Store treats every
/// policy alike; it numbers the snapshots, which have no LSNs to go by.
class None {
public:
    /// Writes are never appended to it.
    static constexpr bool kKeepsRecords = false;

    /// Replays nothing; the next snapshot is numbered after `from_lsn`.
    template <class Apply>
    static Status open(const std::string&, const LogOptions&, Lsn from_lsn, Apply&&, RecoveryReport&,
                       std::unique_ptr<None>& log) {
        log.reset(new None(from_lsn + 1));
        return Status::ok();
    }

    /// Nothing is logged, so every promise already holds.
    Status commit(Lsn) const noexcept { return Status::ok(); }
    /// As commit().
    Status flush() const noexcept { return Status::ok(); }
    /// Hands out the next snapshot number.
    Status rotate(Lsn& first_lsn) noexcept {
        first_lsn = next_snapshot_++;
        return Status::ok();
    }
    /// There are no segments.
    Status remove_segments_before(Lsn) const noexcept { return Status::ok(); }
    /// All zero.
    LogStats stats() const noexcept { return LogStats{}; }
    /// As commit().
    Status close() const noexcept { return Status::ok(); }

private:
    explicit None(Lsn next_snapshot) noexcept : next_snapshot_(next_snapshot) {}
    Lsn next_snapshot_;
};

/// Every write pays for its own fdatasync before it is acknowledged.
class SyncWAL final : public detail::WriteAheadLog {
public:
    /// Every write is appended as a record.
    static constexpr bool kKeepsRecords = true;

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
    /// Every write is appended as a record.
    static constexpr bool kKeepsRecords = true;

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

namespace detail {

template <class P, class = void>
struct HasRecordAppends : std::false_type {};
template <class P>
struct HasRecordAppends<
    P, std::enable_if_t<std::is_same_v<decltype(std::declval<P&>().append(std::declval<const LogOperation&>(),
                                                                             std::declval<Lsn&>())),
                                       Status> &&
                        std::is_same_v<decltype(std::declval<P&>().append_batch(
                                           std::declval<const std::vector<LogOperation>&>(), std::declval<Lsn&>())),
                                       Status>>> : std::true_type {};

struct IgnoreRecord {
    Status operator()(const LogRecord&) const { return Status::ok(); }
};

template <class P, class = void>
struct HasLogCalls : std::false_type {};
template <class P>
struct HasLogCalls<
    P, std::enable_if_t<
           std::is_same_v<decltype(bool{P::kKeepsRecords}), bool> &&
           std::is_same_v<decltype(P::open(std::declval<const std::string&>(), std::declval<const LogOptions&>(),
                                           Lsn{}, IgnoreRecord{}, std::declval<RecoveryReport&>(),
                                           std::declval<std::unique_ptr<P>&>())),
                          Status> &&
           std::is_same_v<decltype(std::declval<P&>().commit(Lsn{})), Status> &&
           std::is_same_v<decltype(std::declval<P&>().flush()), Status> &&
           std::is_same_v<decltype(std::declval<P&>().rotate(std::declval<Lsn&>())), Status> &&
           std::is_same_v<decltype(std::declval<P&>().remove_segments_before(Lsn{})), Status> &&
           std::is_same_v<decltype(std::declval<const P&>().stats()), LogStats> &&
           std::is_same_v<decltype(std::declval<P&>().close()), Status>>> : std::true_type {};

template <class P, bool = HasLogCalls<P>::value>
struct IsDurability : std::false_type {};
template <class P>
struct IsDurability<P, true> : std::bool_constant<!P::kKeepsRecords || HasRecordAppends<P>::value> {};

}  // namespace detail

/// True iff P meets the policy contract in this file's comment.
template <class P>
inline constexpr bool is_durability_v = detail::IsDurability<P>::value;

}  // namespace kvstore
