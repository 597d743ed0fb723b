// The snapshot half of kvstore-inspect: each snapshot read whole through the
// library's kvstore::read_snapshot, which checks every block and the trailer and
// names the offset and reason of the first damage.
#include "inspect.hpp"

#include <kvstore/snapshot_files.hpp>

#include <cerrno>
#include <cstdio>
#include <thread>

namespace inspect {
namespace {

using kvstore::Status;

// What could stand in for the newest snapshot if it is damaged: the older
// snapshot, or none, and the log from where that one leaves off.
std::string remedy(const std::string& dir, const std::vector<std::string>& names, Lsn oldest_segment) {
    Lsn previous = 0;
    if (names.size() >= 2) (void)kvstore::parse_snapshot_name(names[names.size() - 2], previous);
    const Lsn needed = previous > 0 ? previous : 1;
    const std::string base = previous > 0 ? "the older snapshot " + names[names.size() - 2] : "an empty store";
    if (oldest_segment == 0 || oldest_segment > needed) {
        return "no recovery mode gets past a damaged snapshot, and the log no longer holds what it covers: restore "
               "it from a backup or a replica";
    }
    return "no recovery mode gets past a damaged snapshot; the log still holds every record from LSN " +
           std::to_string(needed) + ", so moving " + dir + "/" + names.back() +
           " out of the directory lets Store::open rebuild from " + base + " and the log";
}

}  // namespace

void check_snapshots(kvstore::FileSystem& fs, const Options& options, const std::vector<std::string>& names,
                     Lsn oldest_segment, bool store_open, Lsn& replay_from, Tally& tally) {
    replay_from = 0;
    if (names.empty()) return;
    std::printf("snapshots (oldest first):\n");
    for (std::size_t i = 0; i < names.size(); ++i) {
        const bool newest = i + 1 == names.size();
        const std::string path = options.dir + "/" + names[i];
        Lsn name_lsn = 0;
        (void)kvstore::parse_snapshot_name(names[i], name_lsn);
        if (newest) replay_from = name_lsn;
        std::uint64_t size = 0;
        (void)fs.file_size(path, size);
        std::printf("  %s  %llu bytes\n", names[i].c_str(), static_cast<unsigned long long>(size));

        Lsn header_lsn = 0;
        std::uint64_t entries = 0;
        std::uint64_t visited = 0;
        Status status = kvstore::read_snapshot(fs, path, header_lsn, entries, [&](const kvstore::SnapshotEntry& entry) {
            if (options.dump && visited < options.limit) {
                std::printf("    %s = %s", quoted(entry.key).c_str(), quoted(entry.value).c_str());
                if (entry.expiry != 0) std::printf(" expires %s", format_micros(entry.expiry).c_str());
                std::printf("\n");
            }
            ++visited;
        });
        if (options.dump && visited > options.limit)
            std::printf("    ... %llu more entries (--limit)\n",
                        static_cast<unsigned long long>(visited - options.limit));
        // A checkpoint removes an older snapshot by cutting it down first.
        for (int reread = 0; store_open && status.code() == kvstore::StatusCode::kCorruption && reread < kRereads;
             ++reread) {
            std::this_thread::sleep_for(kRereadPause);
            const Status again = kvstore::read_snapshot(fs, path, header_lsn, entries, [](const kvstore::SnapshotEntry&) {});
            if (again.code() != kvstore::StatusCode::kCorruption) {
                std::printf(
                    "    (what was first read as damage was the file changing: a Store has the directory "
                    "open; read again, the snapshot is %s)\n",
                    again ? "whole" : "gone");
                status = again;
            }
        }
        ++tally.snapshots;
        if (newest) tally.entries = status ? entries : 0;
        const char* role = newest ? "the newest: Store::open loads it" : "older: Store::open ignores it";

        if (status.code() == kvstore::StatusCode::kCorruption) {
            // The message is "<path> at offset N: reason", as report() words a finding.
            std::printf("  DAMAGE: %s\n", status.message().c_str());
            std::printf("    -> %s\n", newest ? ("Store::open loads the newest snapshot, so it fails; " +
                                                 remedy(options.dir, names, oldest_segment))
                                                    .c_str()
                                              : "Store::open loads only the newest snapshot and does not read this "
                                                "one; the next checkpoint deletes it");
            ++tally.findings[static_cast<int>(newest ? Effect::kOpenFails : Effect::kNotRead)];
            if (newest) tally.snapshot_fails_open = true;
            std::printf("    %llu entries in the blocks before the damage, DAMAGED (%s)\n",
                        static_cast<unsigned long long>(visited), role);
            continue;
        }
        if (!status) {
            if (status.error_number() == ENOENT) {
                std::printf("    removed while being read (a checkpoint deletes the snapshots older than its own)\n");
            } else {
                std::printf("    UNREADABLE: %s\n", status.to_string().c_str());
                ++tally.unreadable;
            }
            continue;
        }
        if (header_lsn != name_lsn) {
            report(tally, path,
                   Finding{16, "",
                           "the header says to replay the log from LSN " + std::to_string(header_lsn) +
                               ", the file name from LSN " + std::to_string(name_lsn),
                           newest ? Effect::kUnnoticed : Effect::kNotRead,
                           newest ? "Store::open replays the log from the header's LSN"
                                  : "Store::open does not read this snapshot"});
        }
        std::printf("    replay the log from LSN %llu, %llu entr%s, intact (%s)\n",
                    static_cast<unsigned long long>(header_lsn), static_cast<unsigned long long>(entries),
                    entries == 1 ? "y" : "ies", role);
    }
}

}  // namespace inspect
