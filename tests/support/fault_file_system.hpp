// FaultFileSystem: an in-memory kvstore::FileSystem for tests that
//   - fails a chosen call with a chosen errno (the n-th time it is made),
//   - knows which bytes and directory entries were synced, and
//   - simulates a power cut: power_cut() throws away every byte appended
//     since the file's last sync and every creation, rename or removal since
//     its directory's last sync (as LevelDB's fault_injection_test does).
#pragma once

#include <kvstore/file_system.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace kvstore::test {

class FaultFileSystem final : public FileSystem {
public:
    /// The `skip`+1-th call named `call` ("write", "fdatasync", "rename",
    /// "fsync-dir", "open" (for writing), "open-read", "ftruncate") fails with `error`; the calls before
    /// and after it succeed. A failing write first appends half its bytes.
    void inject(std::string call, int error, int skip = 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        fault_ = Fault{std::move(call), error, skip};
    }

    /// Forgets a fault that inject() armed and no call has met yet.
    void clear_fault() {
        std::lock_guard<std::mutex> lock(mutex_);
        fault_.reset();
    }

    /// Whether readable files can be mapped (ReadableFile::map): a mapping
    /// is a copy of the file's bytes when mapped, which later writes do not
    /// change. Off by default, so that readers read.
    void set_mappable(bool mappable) {
        std::lock_guard<std::mutex> lock(mutex_);
        mappable_ = mappable;
    }

    /// Every sync first sleeps this long (outside the file system's lock),
    /// as a disk would.
    void set_sync_delay(std::chrono::microseconds delay) {
        std::lock_guard<std::mutex> lock(mutex_);
        sync_delay_ = delay;
    }

    /// Calls `hook` with the file's path before every append, outside the
    /// file system's lock, so that a test can act between a writer's steps.
    void before_append(std::function<void(const std::string&)> hook) {
        std::lock_guard<std::mutex> lock(mutex_);
        append_hook_ = std::move(hook);
    }

    /// Forgets everything not synced, as a power cut would. Until revive(),
    /// every call fails with EIO, as nothing runs without power.
    void power_cut() {
        std::lock_guard<std::mutex> lock(mutex_);
        powered_ = false;
        files_.clear();
        for (auto& [path, file] : durable_entries_) {
            // Appends go only after the synced bytes; what they wrote is lost
            // and the (synced) preallocated zeros under them come back.
            auto copy = std::make_shared<File>();
            copy->data = file->data.substr(0, file->synced);
            copy->data.resize(file->durable_size, '\0');
            copy->end = copy->synced = file->synced;
            copy->durable_size = file->durable_size;
            files_[path] = copy;
        }
        durable_entries_ = files_;
    }

    void revive() {
        std::lock_guard<std::mutex> lock(mutex_);
        powered_ = true;
    }

    /// The appended bytes of `path` that a power cut would keep (empty if
    /// its directory entry is not durable).
    std::string durable_contents(const std::string& path) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = durable_entries_.find(path);
        if (it == durable_entries_.end()) return {};
        return it->second->data.substr(0, it->second->synced);
    }

    /// The bytes appended to `path` (without preallocated zeros after them).
    std::string contents(const std::string& path) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = files_.find(path);
        return it == files_.end() ? std::string() : it->second->data.substr(0, it->second->end);
    }

    /// The size of `path` as a reader sees it, preallocated zeros included.
    std::size_t size_of(const std::string& path) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = files_.find(path);
        return it == files_.end() ? 0 : it->second->data.size();
    }

    /// Replaces the bytes of `path` (a test damaging a file); they count as synced.
    void set_contents(const std::string& path, std::string data) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto& file = files_[path];
        if (!file) file = std::make_shared<File>();
        file->data = std::move(data);
        file->end = file->synced = file->durable_size = file->data.size();
        durable_entries_[path] = file;
    }

    std::vector<std::string> paths() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<std::string> paths;
        for (const auto& entry : files_) paths.push_back(entry.first);
        return paths;
    }

    /// The most bytes one read asked for.
    std::size_t largest_read() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return largest_read_;
    }

    Status create_dir(const std::string& path, unsigned) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (Status status = take_fault("mkdir", path); !status) return status;
        dirs_.insert(path);
        return Status::ok();
    }

    Status open_writable(const std::string& path, unsigned, std::unique_ptr<WritableFile>& file) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (Status status = take_fault("open", path); !status) return status;
        if (dirs_.count(parent(path)) == 0) return Status::io_error("open", path, ENOENT);
        auto created = std::make_shared<File>();
        files_[path] = created;
        file = std::make_unique<Writable>(*this, path, created);
        return Status::ok();
    }

    Status open_readable(const std::string& path, std::unique_ptr<ReadableFile>& file) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (Status status = take_fault("open-read", path); !status) return status;
        const auto it = files_.find(path);
        if (it == files_.end()) return Status::io_error("open", path, ENOENT);
        file = std::make_unique<Readable>(*this, it->second);
        return Status::ok();
    }

    Status file_size(const std::string& path, std::uint64_t& bytes) override {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = files_.find(path);
        if (it == files_.end()) return Status::io_error("stat", path, ENOENT);
        bytes = it->second->data.size();
        return Status::ok();
    }

    Status list_dir(const std::string& path, std::vector<std::string>& names) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (dirs_.count(path) == 0) return Status::io_error("opendir", path, ENOENT);
        names.clear();
        for (const auto& entry : files_)
            if (parent(entry.first) == path) names.push_back(entry.first.substr(path.size() + 1));
        return Status::ok();
    }

    Status rename(const std::string& from, const std::string& to) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (Status status = take_fault("rename", from); !status) return status;
        const auto it = files_.find(from);
        if (it == files_.end()) return Status::io_error("rename", from, ENOENT);
        files_[to] = it->second;
        files_.erase(from);
        return Status::ok();
    }

    Status sync_dir(const std::string& path) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (Status status = take_fault("fsync-dir", path); !status) return status;
        for (auto it = durable_entries_.begin(); it != durable_entries_.end();)
            it = parent(it->first) == path ? durable_entries_.erase(it) : std::next(it);
        for (const auto& entry : files_)
            if (parent(entry.first) == path) durable_entries_.insert(entry);
        return Status::ok();
    }

    Status truncate(const std::string& path, std::uint64_t bytes) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (Status status = take_fault("ftruncate", path); !status) return status;
        const auto it = files_.find(path);
        if (it == files_.end()) return Status::io_error("open", path, ENOENT);
        File& file = *it->second;
        file.data.resize(static_cast<std::size_t>(bytes));
        file.end = file.synced = file.durable_size = file.data.size();
        return Status::ok();
    }

    Status remove(const std::string& path) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (Status status = take_fault("unlink", path); !status) return status;
        if (files_.erase(path) == 0) return Status::io_error("unlink", path, ENOENT);
        return Status::ok();
    }

    Status lock_file(const std::string& path, std::unique_ptr<FileLock>& lock) override {
        std::lock_guard<std::mutex> guard(mutex_);
        if (!locked_.insert(path).second) return Status::busy(path + " is locked");
        try {
            lock = std::make_unique<Lock>(*this, path);
        } catch (...) {
            locked_.erase(path);
            throw;
        }
        return Status::ok();
    }

private:
    struct File {
        std::string data;              // appended bytes, then preallocated zeros
        std::size_t end = 0;           // where the next append goes
        std::size_t synced = 0;        // appended bytes that survive a power cut
        std::size_t durable_size = 0;  // the size a power cut leaves
    };
    struct Fault {
        std::string call;
        int error;
        int skip;
    };

    class Writable final : public WritableFile {
    public:
        Writable(FaultFileSystem& fs, std::string path, std::shared_ptr<File> file)
            : fs_(fs), path_(std::move(path)), file_(std::move(file)) {}
        Status append(std::string_view data) override {
            fs_.run_append_hook(path_);
            std::lock_guard<std::mutex> lock(fs_.mutex_);
            Status status = fs_.take_fault("write", path_);
            write(status ? data : data.substr(0, data.size() / 2));
            return status;
        }
        Status preallocate(std::uint64_t bytes) override {
            std::lock_guard<std::mutex> lock(fs_.mutex_);
            if (Status status = fs_.take_fault("write", path_); !status) return status;
            if (file_->data.size() < bytes) file_->data.resize(static_cast<std::size_t>(bytes), '\0');
            file_->synced = file_->end;
            file_->durable_size = file_->data.size();
            return Status::ok();
        }
        Status sync() override {
            std::this_thread::sleep_for(fs_.sync_delay());
            std::lock_guard<std::mutex> lock(fs_.mutex_);
            if (Status status = fs_.take_fault("fdatasync", path_); !status) return status;
            file_->synced = file_->end;
            file_->durable_size = file_->data.size();
            return Status::ok();
        }
        Status close() override { return Status::ok(); }

    private:
        // REQUIRES: fs_.mutex_ held.
        void write(std::string_view data) {
            std::string& bytes = file_->data;
            if (bytes.size() < file_->end + data.size()) bytes.resize(file_->end + data.size());
            bytes.replace(file_->end, data.size(), data);
            file_->end += data.size();
        }

        FaultFileSystem& fs_;
        std::string path_;
        std::shared_ptr<File> file_;
    };

    class Readable final : public ReadableFile {
    public:
        Readable(FaultFileSystem& fs, std::shared_ptr<File> file) : fs_(fs), file_(std::move(file)) {}
        Status read(std::uint64_t offset, std::size_t bytes, char* buffer, std::size_t& read) override {
            std::lock_guard<std::mutex> lock(fs_.mutex_);
            fs_.largest_read_ = std::max(fs_.largest_read_, bytes);
            const std::string& data = file_->data;
            read = offset >= data.size() ? 0 : std::min<std::size_t>(bytes, data.size() - offset);
            std::copy_n(data.data() + offset, read, buffer);
            return Status::ok();
        }
        std::shared_ptr<const void> map(std::uint64_t bytes) override {
            std::lock_guard<std::mutex> lock(fs_.mutex_);
            if (!fs_.mappable_ || bytes == 0 || bytes > file_->data.size()) return nullptr;
            auto copy = std::make_shared<const std::string>(file_->data, 0, static_cast<std::size_t>(bytes));
            return std::shared_ptr<const void>(copy, copy->data());
        }

    private:
        FaultFileSystem& fs_;
        std::shared_ptr<File> file_;
    };

    class Lock final : public FileLock {
    public:
        Lock(FaultFileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
        ~Lock() override {
            std::lock_guard<std::mutex> lock(fs_.mutex_);
            fs_.locked_.erase(path_);
        }

    private:
        FaultFileSystem& fs_;
        std::string path_;
    };

    static std::string parent(const std::string& path) {
        const auto slash = path.rfind('/');
        return slash == std::string::npos ? std::string() : path.substr(0, slash);
    }

    void run_append_hook(const std::string& path) {
        std::function<void(const std::string&)> hook;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            hook = append_hook_;
        }
        if (hook) hook(path);
    }

    std::chrono::microseconds sync_delay() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return sync_delay_;
    }

    // REQUIRES: mutex_ held.
    Status take_fault(const char* call, const std::string& path) {
        if (!powered_) return Status::io_error(call, path, EIO);
        if (!fault_ || fault_->call != call) return Status::ok();
        if (fault_->skip-- > 0) return Status::ok();
        const int error = fault_->error;
        fault_.reset();
        return Status::io_error(call, path, error);
    }

    mutable std::mutex mutex_;
    std::map<std::string, std::shared_ptr<File>> files_;
    std::map<std::string, std::shared_ptr<File>> durable_entries_;
    std::set<std::string> dirs_;
    std::set<std::string> locked_;
    std::optional<Fault> fault_;
    std::size_t largest_read_ = 0;
    std::chrono::microseconds sync_delay_{0};
    std::function<void(const std::string&)> append_hook_;
    bool powered_ = true;
    bool mappable_ = false;
};

}  // namespace kvstore::test
