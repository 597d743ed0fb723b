// The files in a Store's directory, and the one owner of their names:
//
//   LOCK                          held while a Store has the directory open
//   wal-<lsn>.log                 log segments; <lsn> is the segment's first
//                                 record (named by log::segment_name)
//   snapshot-<lsn>.kvs            snapshots; <lsn> is the first log record the
//                                 snapshot does not hold (snapshot::file_name)
//   snapshot-<lsn>.kvs.tmp        a snapshot being written
//   import.tmp                    a snapshot being received by import_snapshot
//
// A `.tmp` file found at open was being written when the process stopped;
// nothing reads it, so it is removed. Snapshots older than the newest
// complete one are removed once the newest is durable.
#pragma once

#include <kvstore/detail/gradual_remove.hpp>
#include <kvstore/detail/snapshot_file.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/status.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kvstore::detail {

class StoreDirectory {
public:
    StoreDirectory(FileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}

    const std::string& path() const noexcept { return path_; }
    std::string lock_path() const { return path_ + "/LOCK"; }
    std::string snapshot_path(Lsn replay_from) const { return path_ + "/" + snapshot::file_name(replay_from); }
    std::string import_path() const { return path_ + "/import.tmp"; }

    /// Creates the directory if it is missing and takes its LOCK. Fails with
    /// kBusy, naming the directory, if another Store holds it.
    Status create_and_lock(unsigned dir_mode, std::unique_ptr<FileLock>& lock) const {
        if (Status status = fs_.create_dir(path_, dir_mode); !status) return status;
        if (Status status = fs_.lock_file(lock_path(), lock); !status) {
            if (status.code() == StatusCode::kBusy)
                return Status::busy("the store at " + path_ + " is open elsewhere (its LOCK file is held)");
            return status;
        }
        return Status::ok();
    }

    /// Removes the `.tmp` files an interrupted write left, and sets
    /// `newest_snapshot` to the path of the newest complete snapshot, or to
    /// "" if there is none.
    Status remove_unfinished_and_find_snapshot(std::string& newest_snapshot) const {
        return find_snapshot(newest_snapshot, true);
    }

    /// Sets `newest_snapshot` as remove_unfinished_and_find_snapshot does,
    /// removing nothing.
    Status find_snapshot(std::string& newest_snapshot) const { return find_snapshot(newest_snapshot, false); }

    /// Removes every snapshot whose replay point is before `replay_from`
    /// (large ones a few MiB at a time), then makes the removals durable.
    Status remove_snapshots_before(Lsn replay_from) const {
        std::vector<std::string> names;
        if (Status status = fs_.list_dir(path_, names); !status) return status;
        bool removed = false;
        for (const std::string& name : names) {
            Lsn lsn = 0;
            if (!snapshot::parse_file_name(name, lsn) || lsn >= replay_from) continue;
            if (Status status = remove_gradually(fs_, path_, path_ + "/" + name); !status) return status;
            removed = true;
        }
        return removed ? fs_.sync_dir(path_) : Status::ok();
    }

private:
    Status find_snapshot(std::string& newest_snapshot, bool remove_unfinished) const {
        newest_snapshot.clear();
        std::vector<std::string> names;
        if (Status status = fs_.list_dir(path_, names); !status) return status;
        Lsn newest = 0;
        for (const std::string& name : names) {
            Lsn lsn = 0;
            if (snapshot::parse_file_name(name, lsn)) {
                if (newest_snapshot.empty() || lsn > newest) {
                    newest = lsn;
                    newest_snapshot = snapshot_path(lsn);
                }
            } else if (remove_unfinished && is_unfinished(name)) {
                if (Status status = fs_.remove(path_ + "/" + name); !status) return status;
            }
        }
        return Status::ok();
    }

    static bool is_unfinished(const std::string& name) {
        static constexpr char kSuffix[] = ".tmp";
        constexpr std::size_t kSuffixSize = sizeof kSuffix - 1;
        return name.size() > kSuffixSize && name.compare(name.size() - kSuffixSize, kSuffixSize, kSuffix) == 0;
    }

    FileSystem& fs_;
    std::string path_;
};

}  // namespace kvstore::detail
