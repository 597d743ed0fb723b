// kvstore::FileSystem: every call the log and the store make to the
// operating system's files goes through this interface, so that tests can
// put a file layer underneath that injects errors or forgets whatever was not
// synced (a power cut), and so that an application can route kvstore's files
// elsewhere. default_file_system() is the POSIX implementation.
#pragma once

#include <kvstore/status.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore {

/// A file opened for appending. Not thread-safe: one writer at a time.
class WritableFile {
public:
    virtual ~WritableFile() = default;
    /// Appends all of `data`, or fails; a failure leaves an unknown prefix
    /// of `data` in the file.
    virtual Status append(std::string_view data) = 0;
    /// Returns once everything appended so far is on stable storage
    /// (fdatasync; F_FULLFSYNC on macOS).
    virtual Status sync() = 0;
    /// Makes the file at least `bytes` long by writing zeros after what was
    /// appended, and syncs that; later appends overwrite the zeros. Appends
    /// into written blocks leave the file's size and allocation alone, so
    /// their syncs write no metadata (PostgreSQL zero-fills its WAL for the
    /// same reason). Readers see the zeros after the appended bytes. The
    /// default does nothing.
    virtual Status preallocate(std::uint64_t bytes) {
        (void)bytes;
        return Status::ok();
    }
    /// Closes the file without syncing it (call sync() first for durability).
    virtual Status close() = 0;
};

/// A file opened for reading at any offset.
class ReadableFile {
public:
    virtual ~ReadableFile() = default;
    /// Reads up to `bytes` at `offset` into `buffer`; `read` is set to the
    /// number read, which is less than `bytes` only at the end of the file.
    virtual Status read(std::uint64_t offset, std::size_t bytes, char* buffer, std::size_t& read) = 0;
    /// The file's first `bytes` bytes in memory, read-only, or null if this
    /// file cannot be mapped (the default) or is shorter: callers then
    /// read(). The bytes stay valid as long as a copy of the pointer lives
    /// and the file is not cut shorter than them. Recovery maps log segments
    /// so that it can keep pointing into them instead of copying.
    virtual std::shared_ptr<const void> map(std::uint64_t bytes) {
        (void)bytes;
        return nullptr;
    }
};

/// Held while a directory is locked; releasing it unlocks.
class FileLock {
public:
    virtual ~FileLock() = default;
};

/// The file operations kvstore performs; implement it to inject faults or to put the files elsewhere.
/// Calls may come from several threads at once; errors are reported as Status.
class FileSystem {
public:
    virtual ~FileSystem() = default;

    /// Creates directory `path` with `mode` unless it exists.
    virtual Status create_dir(const std::string& path, unsigned mode) = 0;
    /// Creates (or truncates) `path` with `mode` for appending.
    virtual Status open_writable(const std::string& path, unsigned mode, std::unique_ptr<WritableFile>& file) = 0;
    /// Opens the existing file `path` for reading; fails if it does not exist.
    virtual Status open_readable(const std::string& path, std::unique_ptr<ReadableFile>& file) = 0;
    /// Sets `bytes` to the size of file `path`, in bytes.
    virtual Status file_size(const std::string& path, std::uint64_t& bytes) = 0;
    /// The names (not paths) of the entries of directory `path`, without "." and "..".
    virtual Status list_dir(const std::string& path, std::vector<std::string>& names) = 0;
    /// Atomically replaces `to` with `from`. Durable only after sync_dir.
    virtual Status rename(const std::string& from, const std::string& to) = 0;
    /// Makes the creations, renames and removals in directory `path` durable.
    virtual Status sync_dir(const std::string& path) = 0;
    /// Shortens `path` to `bytes` and syncs it.
    virtual Status truncate(const std::string& path, std::uint64_t bytes) = 0;
    /// Deletes file `path`; an absent file is an error. Durable only after sync_dir.
    virtual Status remove(const std::string& path) = 0;
    /// Takes an exclusive lock on file `path` (created if absent), held by
    /// `lock` until it is destroyed. Fails with kBusy if another holder, in
    /// this process or another, has it.
    virtual Status lock_file(const std::string& path, std::unique_ptr<FileLock>& lock) = 0;
};

/// The operating system's files (POSIX). Lives as long as the program.
FileSystem& default_file_system();

/// `fs`, or default_file_system() when it is null (as in LogOptions).
inline FileSystem& file_system_or_default(FileSystem* fs) { return fs != nullptr ? *fs : default_file_system(); }

}  // namespace kvstore

#include <kvstore/detail/posix_file_system.hpp>
