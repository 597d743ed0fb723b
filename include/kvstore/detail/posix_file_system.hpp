// The POSIX FileSystem behind kvstore::default_file_system().
#pragma once

#include <kvstore/file_system.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>

namespace kvstore::detail {

// Retries a system call that was interrupted by a signal.
template <class Call>
auto retry_on_eintr(Call call) {
    for (;;) {
        auto result = call();
        if (result != -1 || errno != EINTR) return result;
    }
}

// fdatasync where it is a real data barrier; on macOS only F_FULLFSYNC
// flushes the drive's cache, and fsync is the fallback where it is refused.
inline int sync_data(int fd) {
#if defined(__APPLE__)
    if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
    return ::fsync(fd);
#elif defined(__linux__)
    return ::fdatasync(fd);
#else
    return ::fsync(fd);
#endif
}

class PosixWritableFile final : public WritableFile {
public:
    PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    ~PosixWritableFile() override {
        if (fd_ >= 0) ::close(fd_);
    }

    Status append(std::string_view data) override { return write_at(appended_, data, appended_); }

    Status preallocate(std::uint64_t bytes) override {
        static const std::string zeros(std::size_t{1} << 20, '\0');
        while (allocated_ < bytes) {
            const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), bytes - allocated_));
            if (Status status = write_at(allocated_, std::string_view(zeros).substr(0, chunk), allocated_); !status)
                return status;
        }
        return sync();
    }

    Status sync() override {
        if (retry_on_eintr([&] { return sync_data(fd_); }) != 0) return Status::io_error("fdatasync", path_, errno);
        return Status::ok();
    }

    Status close() override {
        const int fd = fd_;
        fd_ = -1;
        if (fd >= 0 && ::close(fd) != 0) return Status::io_error("close", path_, errno);
        return Status::ok();
    }

private:
    // Writes `data` at `offset` and advances `end` past it (appends go after
    // the appended bytes, not after the preallocated zeros).
    Status write_at(std::uint64_t offset, std::string_view data, std::uint64_t& end) {
        while (!data.empty()) {
            const ssize_t written =
                retry_on_eintr([&] { return ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset)); });
            if (written < 0) return Status::io_error("write", path_, errno);
            data.remove_prefix(static_cast<std::size_t>(written));
            offset += static_cast<std::uint64_t>(written);
        }
        end = offset;
        allocated_ = std::max(allocated_, offset);
        return Status::ok();
    }

    int fd_;
    std::string path_;
    std::uint64_t appended_ = 0;
    std::uint64_t allocated_ = 0;
};

class PosixReadableFile final : public ReadableFile {
public:
    PosixReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    ~PosixReadableFile() override { ::close(fd_); }

    Status read(std::uint64_t offset, std::size_t bytes, char* buffer, std::size_t& read) override {
        read = 0;
        while (read < bytes) {
            const ssize_t got = retry_on_eintr(
                [&] { return ::pread(fd_, buffer + read, bytes - read, static_cast<off_t>(offset + read)); });
            if (got < 0) return Status::io_error("pread", path_, errno);
            if (got == 0) break;
            read += static_cast<std::size_t>(got);
        }
        return Status::ok();
    }

    std::shared_ptr<const void> map(std::uint64_t bytes) override {
        struct stat info {};
        if (bytes == 0 || bytes > SIZE_MAX || ::fstat(fd_, &info) != 0 ||
            static_cast<std::uint64_t>(info.st_size) < bytes)
            return nullptr;
        int flags = MAP_PRIVATE;
#if defined(MAP_POPULATE)
        flags |= MAP_POPULATE;  // one call maps every page, rather than a fault per page as they are read
#endif
        const auto length = static_cast<std::size_t>(bytes);
        void* address = ::mmap(nullptr, length, PROT_READ, flags, fd_, 0);
        if (address == MAP_FAILED) return nullptr;
        return std::shared_ptr<const void>(
            address, [length](const void* mapped) { ::munmap(const_cast<void*>(mapped), length); });
    }

private:
    int fd_;
    std::string path_;
};

class PosixFileLock final : public FileLock {
public:
    explicit PosixFileLock(int fd) : fd_(fd) {}
    ~PosixFileLock() override { ::close(fd_); }  // closing the descriptor drops the flock

private:
    int fd_;
};

class PosixFileSystem final : public FileSystem {
public:
    Status create_dir(const std::string& path, unsigned mode) override {
        if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) == 0 || errno == EEXIST) {
            struct stat info {};
            if (::stat(path.c_str(), &info) != 0) return Status::io_error("stat", path, errno);
            if (!S_ISDIR(info.st_mode)) return Status::io_error("mkdir", path, ENOTDIR);
            return Status::ok();
        }
        return Status::io_error("mkdir", path, errno);
    }

    Status open_writable(const std::string& path, unsigned mode, std::unique_ptr<WritableFile>& file) override {
        const int fd = retry_on_eintr(
            [&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode)); });
        if (fd < 0) return Status::io_error("open", path, errno);
        file = std::make_unique<PosixWritableFile>(fd, path);
        return Status::ok();
    }

    Status open_readable(const std::string& path, std::unique_ptr<ReadableFile>& file) override {
        const int fd = retry_on_eintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
        if (fd < 0) return Status::io_error("open", path, errno);
        file = std::make_unique<PosixReadableFile>(fd, path);
        return Status::ok();
    }

    Status file_size(const std::string& path, std::uint64_t& bytes) override {
        struct stat info {};
        if (::stat(path.c_str(), &info) != 0) return Status::io_error("stat", path, errno);
        bytes = static_cast<std::uint64_t>(info.st_size);
        return Status::ok();
    }

    Status list_dir(const std::string& path, std::vector<std::string>& names) override {
        DIR* dir = ::opendir(path.c_str());
        if (dir == nullptr) return Status::io_error("opendir", path, errno);
        names.clear();
        errno = 0;
        while (const dirent* entry = ::readdir(dir)) {
            const std::string_view name = entry->d_name;
            if (name != "." && name != "..") names.emplace_back(name);
        }
        const int error = errno;
        ::closedir(dir);
        if (error != 0) return Status::io_error("readdir", path, error);
        return Status::ok();
    }

    Status rename(const std::string& from, const std::string& to) override {
        if (::rename(from.c_str(), to.c_str()) != 0) return Status::io_error("rename", from + " -> " + to, errno);
        return Status::ok();
    }

    Status sync_dir(const std::string& path) override {
        const int fd = retry_on_eintr([&] { return ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
        if (fd < 0) return Status::io_error("open", path, errno);
        const int result = retry_on_eintr([&] { return ::fsync(fd); });
        const int error = errno;
        ::close(fd);
        if (result != 0) return Status::io_error("fsync", path, error);
        return Status::ok();
    }

    Status truncate(const std::string& path, std::uint64_t bytes) override {
        const int fd = retry_on_eintr([&] { return ::open(path.c_str(), O_WRONLY | O_CLOEXEC); });
        if (fd < 0) return Status::io_error("open", path, errno);
        Status status;
        if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
            status = Status::io_error("ftruncate", path, errno);
        } else if (retry_on_eintr([&] { return sync_data(fd); }) != 0) {
            status = Status::io_error("fdatasync", path, errno);
        }
        ::close(fd);
        return status;
    }

    Status remove(const std::string& path) override {
        if (::unlink(path.c_str()) != 0) return Status::io_error("unlink", path, errno);
        return Status::ok();
    }

    Status lock_file(const std::string& path, std::unique_ptr<FileLock>& lock) override {
        const int fd = retry_on_eintr([&] { return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); });
        if (fd < 0) return Status::io_error("open", path, errno);
        // flock locks belong to the open file description, so a second open
        // in this same process is refused too.
        if (retry_on_eintr([&] { return ::flock(fd, LOCK_EX | LOCK_NB); }) != 0) {
            const int error = errno;
            ::close(fd);
            if (error == EWOULDBLOCK) return Status::busy(path + " is locked by another user of the directory");
            return Status::io_error("flock", path, error);
        }
        try {
            lock = std::make_unique<PosixFileLock>(fd);
        } catch (...) {
            ::close(fd);  // and with it the lock, which would otherwise be held until the process ends
            throw;
        }
        return Status::ok();
    }
};

}  // namespace kvstore::detail

namespace kvstore {

inline FileSystem& default_file_system() {
    static detail::PosixFileSystem file_system;
    return file_system;
}

}  // namespace kvstore
