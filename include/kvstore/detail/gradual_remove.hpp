// Removing a large file in steps.
//
// Unlinking a file frees all its blocks in one journal transaction, and on a
// file system mounted with online discard that transaction also trims them
// all; an fdatasync of the log that needs a journal commit meanwhile waits
// for it (measured on ext4 with discard: 45-60 ms while a checkpoint removed
// a 150 MB log and a 120 MB snapshot). Cutting the file down a few MiB at a
// time, committing after each cut, bounds what any sync can wait for.
#pragma once

#include <kvstore/file_system.hpp>

#include <cstdint>
#include <string>

namespace kvstore::detail {

inline constexpr std::uint64_t kRemovalStep = std::uint64_t{4} << 20;

inline Status remove_gradually(FileSystem& fs, const std::string& dir, const std::string& path) {
    std::uint64_t size = 0;
    if (Status status = fs.file_size(path, size); !status) return status;
    while (size > kRemovalStep) {
        size -= kRemovalStep;
        if (Status status = fs.truncate(path, size); !status) return status;
        // A directory sync commits the journal, and with it this cut.
        if (Status status = fs.sync_dir(dir); !status) return status;
    }
    return fs.remove(path);
}

}  // namespace kvstore::detail
