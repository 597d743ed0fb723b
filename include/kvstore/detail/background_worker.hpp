// BackgroundWorker: one thread that runs a task every period until it is
// stopped, keeping the first error the task reported.
#pragma once

#include <kvstore/status.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace kvstore::detail {

class BackgroundWorker {
public:
    BackgroundWorker() = default;
    ~BackgroundWorker() { stop(); }
    BackgroundWorker(const BackgroundWorker&) = delete;
    BackgroundWorker& operator=(const BackgroundWorker&) = delete;

    // Calls task() -> Status every `period` (> 0), the first time one period
    // from now. A task that fails is run again at the next period; its
    // first failure is kept for first_error(). REQUIRES: not started before.
    template <class Task>
    void start(std::chrono::milliseconds period, Task task) {
        thread_ = std::thread([this, period, task = std::move(task)]() mutable {
            std::unique_lock<std::mutex> lock(mutex_);
            while (!wakeup_.wait_for(lock, period, [&] { return stopping_; })) {
                lock.unlock();
                Status status = task();
                lock.lock();
                if (!status && first_error_.empty()) first_error_ = status.to_string();
            }
        });
    }

    // Returns once the task is not running and never will again; a running
    // task is waited for, a waiting one is woken. Later calls do nothing.
    void stop() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wakeup_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

    // The first failure of the task, as Status::to_string(); "" if none.
    std::string first_error() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return first_error_;
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable wakeup_;
    bool stopping_ = false;
    std::string first_error_;
    std::thread thread_;
};

}  // namespace kvstore::detail
