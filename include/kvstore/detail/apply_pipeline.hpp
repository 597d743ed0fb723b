// Recovery on two threads: the calling thread reads, checks and decodes
// records into batches of changes, and a second thread applies each full
// batch to the map. Reading the log and filling the map each take about
// half of a replay, so overlapping them roughly halves it.
//
// Changes are applied in the order they were queued, by one thread at a
// time, so the map ends as a serial replay would leave it. Batches pass
// between the threads under a mutex, which orders every change before its
// application. Slots are reused: a change's buffers are there for the next
// change queued in the same slot to overwrite without allocating.
//
// A log small enough to fit one batch never starts the thread; if the
// thread cannot be started, batches are applied on the calling thread. A
// pipeline made to apply on the calling thread never starts one: the reader
// then takes a share of the applying itself (see Store's recovery).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace kvstore::detail {

/// ApplyBatch is called as apply(Change* first, Change* last) on each batch,
/// in order, from one thread at a time.
template <class Change, class ApplyBatch>
class ApplyPipeline {
public:
    static constexpr std::size_t kBatchSize = 4096;
    static constexpr std::size_t kBatches = 3;

    enum class AppliedOn { kSecondThread, kCallingThread };

    explicit ApplyPipeline(ApplyBatch apply, AppliedOn applied_on = AppliedOn::kSecondThread)
        : apply_(std::move(apply)), on_calling_thread_(applied_on == AppliedOn::kCallingThread) {
        free_.resize(kBatches);
        take_free_batch();
    }
    ApplyPipeline(const ApplyPipeline&) = delete;
    ApplyPipeline& operator=(const ApplyPipeline&) = delete;

    /// Stops the applying thread without applying what is still queued: for
    /// a recovery that failed, whose map is thrown away.
    ~ApplyPipeline() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            full_.clear();
        }
        stop_thread();
    }

    /// The slot to fill with the next change.
    Change& next() {
        if (filled_ == kBatchSize) hand_over();
        if (filled_ == filling_.size()) filling_.emplace_back();
        return filling_[filled_++];
    }

    /// Applies every change queued and returns when they are all applied.
    /// Rethrows what the apply function threw, if it did.
    void finish() {
        if (!worker_.joinable()) {
            apply_filling();
            return;
        }
        hand_over();
        stop_thread();
        rethrow();
    }

private:
    void take_free_batch() {
        filling_ = std::move(free_.back());
        free_.pop_back();
        filled_ = 0;
    }

    // Queues the batch being filled and takes a free one, starting the
    // applying thread on the first hand-over.
    void hand_over() {
        if (!worker_.joinable() && (on_calling_thread_ || !start_thread())) {
            apply_filling();
            return;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        full_.push_back(Full{std::move(filling_), filled_});
        work_ready_.notify_one();
        batch_freed_.wait(lock, [this] { return !free_.empty(); });
        take_free_batch();
    }

    // Without the applying thread: a log of one batch, or no thread to be had.
    void apply_filling() {
        apply_(filling_.data(), filling_.data() + filled_);
        filled_ = 0;
    }

    bool start_thread() {
        try {
            worker_ = std::thread([this] { apply_batches(); });
            return true;
        } catch (const std::system_error&) {
            return false;
        }
    }

    void stop_thread() {
        if (!worker_.joinable()) return;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            done_ = true;
        }
        work_ready_.notify_one();
        worker_.join();
    }

    void apply_batches() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            work_ready_.wait(lock, [this] { return !full_.empty() || done_; });
            if (full_.empty()) return;
            Full batch = std::move(full_.front());
            full_.pop_front();
            lock.unlock();
            if (!failure_) {
                try {
                    apply_(batch.changes.data(), batch.changes.data() + batch.count);
                } catch (...) {
                    failure_ = std::current_exception();
                }
            }
            lock.lock();
            free_.push_back(std::move(batch.changes));
            batch_freed_.notify_one();
        }
    }

    void rethrow() {
        if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
    }

    struct Full {
        std::vector<Change> changes;
        std::size_t count;
    };

    ApplyBatch apply_;
    bool on_calling_thread_;
    std::vector<Change> filling_;
    std::size_t filled_ = 0;
    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::condition_variable batch_freed_;
    std::deque<Full> full_;
    std::vector<std::vector<Change>> free_;
    bool done_ = false;
    std::exception_ptr failure_;  // written by the applying thread, read after joining it
    std::thread worker_;
};

}  // namespace kvstore::detail
