// WriteAheadLog: the log behind SyncWAL and GroupCommitWAL.
//
// append() assigns the next LSN and encodes the record into an in-memory
// buffer under a short mutex; it is what a caller does inside the critical
// section that applies the change, so that log order equals apply order.
// commit(lsn) then waits, outside that section, until the record is durable.
// Whoever writes takes a group of records from the front of the buffer and
// writes it with one append and one sync, with the mutex released; only one
// writer (the "leader") does so at a time.
//
//   - kEachWrite (SyncWAL): the committing thread leads itself and takes the
//     records up to its own, so every write pays for a sync of its own.
//     Committers that find a leader at work queue up and the leader hands
//     over to the first when it is done.
//   - kGroup (GroupCommitWAL): a log thread leads. Committers queue up; the
//     log thread takes every record waiting (up to max_group_bytes), and
//     when the sync returns marks exactly the committers it made durable.
//     Those arriving during a sync form the next group, which starts as
//     soon as the sync returns: no hand-over, so the disk never waits for a
//     thread to be scheduled.
//   - kInterval (relaxed GroupCommitWAL): commit() returns at once; the log
//     thread writes and syncs once per interval.
//
// Committers made durable are woken one after another, each waking the next,
// so the leader pays for one wake-up per group rather than one per writer.
//
// A failed write or sync is final (after a failed fsync the kernel may have
// dropped the dirty pages, so a retry could report success for lost data):
// every committer not yet durable gets the error, and every later call too.
#pragma once

#include <kvstore/detail/gradual_remove.hpp>
#include <kvstore/detail/log_record.hpp>
#include <kvstore/detail/log_repair.hpp>
#include <kvstore/detail/log_replay.hpp>
#include <kvstore/detail/shard_lock.hpp>
#include <kvstore/log_options.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace kvstore::detail {

enum class CommitMode { kEachWrite, kGroup, kInterval };

class WriteAheadLog {
public:
    WriteAheadLog(const WriteAheadLog&) = delete;
    WriteAheadLog& operator=(const WriteAheadLog&) = delete;

    /// Makes everything appended durable, then closes the segment. Errors
    /// are dropped here; call close() to see them.
    ~WriteAheadLog() { (void)close(); }

    /// Appends `op` (not kBatch) and sets `lsn` to its LSN. The record is
    /// durable only after commit(lsn). Waits while the buffer is full.
    Status append(const log::Operation& op, Lsn& lsn) {
        const std::size_t payload = log::payload_size(op);
        return append_encoded(op.type, payload, lsn, [&](char* out) { log::encode_payload(op, out); });
    }

    /// Appends `ops` as one batch record: after recovery all of them or none.
    template <class Range>
    Status append_batch(const Range& ops, Lsn& lsn) {
        const std::size_t payload = log::batch_payload_size(ops);
        return append_encoded(log::RecordType::kBatch, payload, lsn,
                              [&](char* out) { log::encode_batch_payload(ops, out); });
    }

    /// Returns once record `lsn` and every record before it are durable
    /// (kEachWrite, kGroup), or at once (kInterval). Returns the log's
    /// error if it failed before they were.
    Status commit(Lsn lsn) {
        if (mode_ == CommitMode::kInterval) {
            // Relaxed writers only ask whether the log has failed; the log's
            // mutex, which every append takes, is left to the appenders.
            if (!failed_.load(std::memory_order_acquire)) return Status::ok();
            std::lock_guard<std::mutex> lock(mutex_);
            return failure_;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        return make_durable(lock, lsn);
    }

    /// append() then commit().
    Status write(const log::Operation& op) {
        Lsn lsn = 0;
        if (Status status = append(op, lsn); !status) return status;
        return commit(lsn);
    }

    /// Makes every record appended so far durable, in any mode.
    Status flush() {
        std::unique_lock<std::mutex> lock(mutex_);
        return make_durable(lock, last_lsn_);
    }

    /// Makes every record appended so far durable, then starts a new
    /// segment; `first_lsn` is set to the LSN its first record will get.
    /// Records from first_lsn on are in that segment or later ones.
    Status rotate(Lsn& first_lsn) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (Status status = make_durable(lock, last_lsn_); !status) return status;
        if (!become_leader(lock)) return failure_;
        if (segment_first_lsn_ <= durable_lsn_) {
            lock.unlock();
            Status status = start_segment(durable_lsn_ + 1);
            lock.lock();
            if (!status) fail(status);
        }
        first_lsn = segment_first_lsn_;
        step_down();
        return failure_;
    }

    /// Makes everything durable, stops the log thread and closes the
    /// segment. Later calls fail. REQUIRES: no other thread is in a call.
    ///
    /// A segment holding records is followed by an empty one (header only)
    /// whose first LSN names the record after the last: the segment with the
    /// last records is then not the newest, so a later cut of it, even at a
    /// record boundary, shows as missing LSNs rather than passing for the
    /// end of the log.
    Status close() {
        Status status = flush();
        std::unique_lock<std::mutex> lock(mutex_);
        if (closed_) return status;
        closed_ = true;
        const bool seal = status && segment_ && segment_first_lsn_ <= last_lsn_;
        if (failure_) fail(Status::invalid_argument("the log at " + dir_ + " is closed"));
        log_thread_wakeup_.notify_all();
        lock.unlock();
        if (log_thread_.joinable()) log_thread_.join();
        if (seal) status = start_segment(last_lsn_ + 1, 0, false);
        lock.lock();
        if (segment_) {
            Status closing = segment_->close();
            if (status && !closing) status = closing;
            segment_.reset();
        }
        return status;
    }

    /// Removes the segments that hold only records below `lsn` (a snapshot
    /// covers them). The current segment is never removed.
    Status remove_segments_before(Lsn lsn) {
        std::vector<log::Segment> segments;
        if (Status status = log::list_segments(fs_, dir_, segments); !status) return status;
        Lsn current_first = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            current_first = segment_first_lsn_;
        }
        bool removed = false;
        for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
            if (segments[i + 1].first_lsn > lsn || segments[i].first_lsn >= current_first) break;
            if (Status status = remove_gradually(fs_, dir_, log::join_path(dir_, segments[i].name)); !status)
                return status;
            removed = true;
        }
        return removed ? fs_.sync_dir(dir_) : Status::ok();
    }

    LogStats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        LogStats stats = stats_;
        stats.last_lsn = last_lsn_;
        stats.durable_lsn = durable_lsn_;
        stats.average_group = stats_.syncs == 0 ? 0 : static_cast<double>(stats_.records) / stats_.syncs;
        stats.average_sync_micros = stats_.syncs == 0 ? 0 : sync_micros_total_ / stats_.syncs;
        return stats;
    }

protected:
    /// Replays the log in `dir` from `from_lsn` on through `apply` (see
    /// log::replay_log), repairs what the recovery mode allows, and starts
    /// a new segment after the last record.
    template <class Log, class Apply>
    static Status open_log(const std::string& dir, const LogOptions& options, CommitMode mode, Lsn from_lsn,
                           Apply&& apply, RecoveryReport& report, std::unique_ptr<Log>& log) {
        FileSystem& fs = file_system_or_default(options.file_system);
        if (Status status = fs.create_dir(dir, options.dir_mode); !status) return status;
        log::RepairPlan repairs;
        if (Status status = log::replay_log(fs, dir, from_lsn, options.recovery_mode, apply, report,
                                            options.on_replay_progress, &repairs);
            !status)
            return status;
        const auto repair_started = std::chrono::steady_clock::now();
        if (Status status = log::repair_log(fs, dir, repairs, report, options.file_mode); !status) return status;
        report.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - repair_started).count();
        const Lsn last = std::max({report.last_lsn, report.highest_set_aside_lsn, from_lsn == 0 ? 0 : from_lsn - 1});
        // The segment a clean close left, header only, is started again
        // with its flag.
        const std::uint32_t flags = report.highest_set_aside_lsn > report.last_lsn
                                        ? log::kFollowsSetAside
                                        : log::segment_flags(fs, dir, last + 1);
        std::unique_ptr<Log> opened(new Log(fs, dir, options, mode, last));
        if (Status status = opened->start_segment(last + 1, flags); !status) return status;
        if (mode != CommitMode::kEachWrite) opened->log_thread_ = std::thread([raw = opened.get()] { raw->lead(); });
        log = std::move(opened);
        return Status::ok();
    }

    WriteAheadLog(FileSystem& fs, std::string dir, const LogOptions& options, CommitMode mode, Lsn last_lsn)
        : fs_(fs), dir_(std::move(dir)), options_(options), mode_(mode), last_lsn_(last_lsn), durable_lsn_(last_lsn) {}

private:
    struct Waiter {
        Waiter(Lsn waits_for, bool may_lead) : lsn(waits_for), wants_lead(may_lead) {}
        Lsn lsn;
        bool wants_lead;    // leads when its turn comes (kEachWrite, rotate)
        bool lead = false;  // set by the previous leader: its turn has come
        bool done = false;  // made durable, or failed
        bool woken = false;
        std::condition_variable wakeup;
    };

    // An appending thread keeps its record buffer for the next record up to
    // this size; the buffer of a larger one is freed after it.
    static constexpr std::size_t kKeptRecordBuffer = std::size_t{64} << 10;

    struct RecordEnd {
        Lsn lsn;
        std::size_t offset;  // in pending_, just past the record
    };

    static std::uint64_t now_micros() {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
    }

    template <class Encode>
    Status append_encoded(log::RecordType type, std::size_t payload, Lsn& lsn, Encode&& encode) {
        if (payload > log::kMaxPayload)
            return Status::invalid_argument("log record of " + std::to_string(payload) + " bytes exceeds the " +
                                            std::to_string(log::kMaxPayload) + "-byte limit");
        const std::size_t record_size = log::kRecordHeaderSize + payload;
        // The payload is encoded and checksummed before the mutex is taken:
        // appenders on other threads then wait only for a copy.
        thread_local std::string record;
        record.resize(record_size);
        encode(record.data() + log::kRecordHeaderSize);
        const std::uint32_t payload_checksum = log::checksum(record.data() + log::kRecordHeaderSize, payload);
        std::unique_lock<std::mutex> lock = lock_spinning(mutex_);
        // A full buffer holds appenders back until a group is written.
        while (failure_ && !pending_.empty() && pending_.size() + record_size > options_.buffer_bytes) {
            if (mode_ == CommitMode::kInterval) {
                flush_requested_ = true;
                log_thread_wakeup_.notify_one();
                buffer_space_.wait(lock);
            } else {
                (void)make_durable(lock, record_ends_.front().lsn);
            }
        }
        if (!failure_) return Status::failed(failure_);
        // Room first: once the record has its LSN nothing may throw, or the
        // log would skip an LSN or hold a record its writer was told failed.
        pending_.reserve(pending_.size() + record_size);
        record_ends_.push_back({0, 0});
        lsn = ++last_lsn_;
        log::seal_record(record.data(), type, lsn, now_micros(), static_cast<std::uint32_t>(payload), payload_checksum);
        pending_.append(record.data(), record_size);
        record_ends_.back() = {lsn, pending_.size()};
        stats_.max_pending_bytes = std::max<std::uint64_t>(stats_.max_pending_bytes, pending_.size());
        lock.unlock();
        if (record.capacity() > kKeptRecordBuffer) std::string().swap(record);
        return Status::ok();
    }

    // Waits until `lsn` is durable. REQUIRES: `lock` holds mutex_.
    Status make_durable(std::unique_lock<std::mutex>& lock, Lsn lsn) {
        if (durable_lsn_ >= lsn) return Status::ok();
        if (!failure_) return Status::failed(failure_);
        const bool leads_itself = mode_ == CommitMode::kEachWrite;
        Waiter self(lsn, leads_itself);
        if (leading_ || !leads_itself) {
            waiters_.push_back(&self);
            if (!leads_itself) log_thread_wakeup_.notify_one();
            self.wakeup.wait(lock, [&] { return self.lead || self.done; });
            leave(self);
            // A waiter handed the lead keeps it even if the log failed
            // meanwhile, so that it steps down below.
            if (!self.lead) return durable_lsn_ >= lsn ? Status::ok() : failure_;
        }
        leading_ = true;
        while (durable_lsn_ < lsn && failure_) write_group(lock, lsn);
        step_down();
        return durable_lsn_ >= lsn ? Status::ok() : failure_;
    }

    // The log thread of kGroup and kInterval: writes groups while anyone
    // waits (or, relaxed, once per interval) until the log is closed.
    void lead() {
        std::unique_lock<std::mutex> lock(mutex_);
        auto has_work = [&] {
            return !leading_ && !pending_.empty() &&
                   (flush_requested_ || pending_.size() >= options_.buffer_bytes / 2 ||
                    std::any_of(waiters_.begin(), waiters_.end(), [](const Waiter* w) { return !w->wants_lead; }));
        };
        while (!closed_) {
            if (mode_ == CommitMode::kInterval) {
                const auto deadline = std::chrono::steady_clock::now() + options_.flush_interval;
                log_thread_wakeup_.wait_until(lock, deadline, [&] { return closed_ || has_work(); });
                flush_requested_ = flush_requested_ || std::chrono::steady_clock::now() >= deadline;
            } else {
                log_thread_wakeup_.wait(lock, [&] { return closed_ || has_work(); });
            }
            if (leading_ || pending_.empty() || !failure_) continue;
            flush_requested_ = false;
            leading_ = true;
            write_group(lock, ~Lsn{0});
            step_down();
        }
    }

    // The leader writes and syncs one group: up to its own record for
    // kEachWrite, up to max_group_bytes (at least one record) otherwise.
    // REQUIRES: lock holds mutex_, this thread leads.
    void write_group(std::unique_lock<std::mutex>& lock, Lsn own_lsn) {
        if (options_.commit_delay.count() > 0 && mode_ == CommitMode::kGroup) {
            lock.unlock();
            std::this_thread::sleep_for(options_.commit_delay);
            lock.lock();
        }
        std::size_t records = 0;
        std::size_t cut = 0;
        for (const RecordEnd& end : record_ends_) {
            if (records > 0 &&
                (mode_ == CommitMode::kEachWrite ? end.lsn > own_lsn : end.offset > options_.max_group_bytes)) {
                break;
            }
            ++records;
            cut = end.offset;
        }
        if (records == 0) return;
        const Lsn group_last = record_ends_[records - 1].lsn;
        if (cut == pending_.size()) {
            writing_.swap(pending_);
            pending_.clear();
        } else {
            writing_.assign(pending_, 0, cut);
            pending_.erase(0, cut);
        }
        record_ends_.erase(record_ends_.begin(), record_ends_.begin() + static_cast<std::ptrdiff_t>(records));
        for (RecordEnd& end : record_ends_) end.offset -= cut;
        buffer_space_.notify_all();

        lock.unlock();
        const auto started = std::chrono::steady_clock::now();
        Status status = segment_->append(writing_);
        if (status) status = segment_->sync();
        const double micros =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count();
        lock.lock();
        if (!status) {
            fail(status);
            return;
        }
        segment_bytes_ += writing_.size();
        stats_.records += records;
        stats_.bytes += writing_.size();
        ++stats_.syncs;
        stats_.largest_group = std::max<std::uint64_t>(stats_.largest_group, records);
        stats_.largest_group_bytes = std::max<std::uint64_t>(stats_.largest_group_bytes, writing_.size());
        sync_micros_total_ += micros;
        stats_.max_sync_micros = std::max(stats_.max_sync_micros, micros);
        durable_lsn_ = group_last;
        writing_.clear();
        for (Waiter* waiter : waiters_)
            if (waiter->lsn <= durable_lsn_) waiter->done = true;
        wake_next_done();

        if (segment_bytes_ >= options_.segment_bytes) {
            lock.unlock();
            status = start_segment(group_last + 1);
            lock.lock();
        } else if (options_.preallocate_bytes > 0 && segment_bytes_ + options_.preallocate_bytes / 2 > preallocated_) {
            const std::uint64_t target =
                std::min<std::uint64_t>(segment_bytes_ + options_.preallocate_bytes, options_.segment_bytes);
            if (target > preallocated_) {
                lock.unlock();
                status = extend_preallocation(target);
                lock.lock();
            }
        }
        if (!status) fail(status);
    }

    // Wakes the first committer made durable (or failed) that is still
    // asleep; each one woken wakes the next. REQUIRES: lock held.
    void wake_next_done() {
        for (Waiter* waiter : waiters_) {
            if (waiter->done && !waiter->woken) {
                waiter->woken = true;
                waiter->wakeup.notify_one();
                return;
            }
        }
    }

    // Removes a woken waiter from the queue and passes the wake-up on.
    void leave(Waiter& self) {
        waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &self));
        self.woken = true;
        wake_next_done();
    }

    // Puts the log in its failed state and wakes every waiter.
    void fail(const Status& status) {
        failure_ = status;
        failed_.store(true, std::memory_order_release);
        pending_.clear();
        record_ends_.clear();
        for (Waiter* waiter : waiters_) waiter->done = true;
        wake_next_done();
        buffer_space_.notify_all();
    }

    // Becomes the leader without a record to wait for; false if the log
    // failed first. REQUIRES: lock holds mutex_.
    bool become_leader(std::unique_lock<std::mutex>& lock) {
        if (!failure_) return false;
        if (leading_) {
            Waiter self(~Lsn{0}, true);  // no group can make it done; only fail() does
            waiters_.push_front(&self);
            self.wakeup.wait(lock, [&] { return self.lead || self.done; });
            leave(self);
            if (!self.lead) return false;
        }
        leading_ = true;
        return true;
    }

    // Hands the lead to the first waiter that leads itself, or to the log
    // thread. REQUIRES: lock held.
    void step_down() {
        leading_ = false;
        for (Waiter* waiter : waiters_) {
            if (waiter->wants_lead && !waiter->done) {
                waiter->lead = true;
                leading_ = true;
                waiter->wakeup.notify_one();
                return;
            }
        }
        log_thread_wakeup_.notify_one();
    }

    // Creates segment `first_lsn` and makes it durable, preallocated unless
    // it is the one a clean close leaves. Called by the leader, or before
    // the log is shared, without the mutex.
    Status start_segment(Lsn first_lsn, std::uint32_t flags = 0, bool preallocate = true) {
        std::unique_ptr<WritableFile> file;
        const std::uint64_t preallocated =
            preallocate ? std::min<std::uint64_t>(options_.preallocate_bytes, options_.segment_bytes) : 0;
        if (Status status = log::create_segment(fs_, dir_, log::FileHeader{first_lsn, flags}, preallocated,
                                                options_.file_mode, file);
            !status)
            return status;
        if (segment_) {
            if (Status status = segment_->close(); !status) return status;
        }
        segment_ = std::move(file);
        segment_bytes_ = log::kFileHeaderSize;
        preallocated_ = preallocated;
        std::lock_guard<std::mutex> lock(mutex_);
        segment_first_lsn_ = first_lsn;
        ++stats_.segments;
        return Status::ok();
    }

    Status extend_preallocation(std::uint64_t target) {
        if (Status status = segment_->preallocate(target); !status) return status;
        preallocated_ = target;
        return Status::ok();
    }

    FileSystem& fs_;
    const std::string dir_;
    const LogOptions options_;
    const CommitMode mode_;

    mutable std::mutex mutex_;
    std::string pending_;
    std::deque<RecordEnd> record_ends_;
    Lsn last_lsn_;
    Lsn durable_lsn_;
    bool leading_ = false;
    std::deque<Waiter*> waiters_;
    std::condition_variable buffer_space_;
    Status failure_;                   // ok until a write or sync fails
    std::atomic<bool> failed_{false};  // !failure_, for readers without the mutex
    bool closed_ = false;
    bool flush_requested_ = false;
    Lsn segment_first_lsn_ = 0;
    LogStats stats_;
    double sync_micros_total_ = 0;

    // The leader's alone.
    std::string writing_;
    std::unique_ptr<WritableFile> segment_;
    std::uint64_t segment_bytes_ = 0;
    std::uint64_t preallocated_ = 0;

    std::thread log_thread_;
    std::condition_variable log_thread_wakeup_;
};

}  // namespace kvstore::detail
