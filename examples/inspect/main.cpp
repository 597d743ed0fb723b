// kvstore-inspect: the tool to reach for when Store::open refuses a
// directory. It lists what the directory holds, verifies every checksum of
// every log record and snapshot, and says where and how a file is damaged
// and what Store::open would do about it (inspect.hpp).
//
//   kvstore-inspect [--dump] [--limit N] DIR
//
// Exit status: 0 intact, 1 damage found, 2 usage error or unreadable directory.
#include "inspect.hpp"

#include <kvstore/snapshot_files.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace {

using inspect::Effect;
using inspect::Lsn;

constexpr int kIntact = 0;
constexpr int kDamaged = 1;
constexpr int kUsage = 2;

const char kHelp[] = R"(usage: kvstore-inspect [--dump] [--limit N] DIR

Checks the directory of a kvstore Store without opening the store: lists its
snapshots, log segments and other files, verifies every checksum of every log
record and snapshot block, and for each damaged place names the file, the byte
offset, the record's LSN and the reason, and says what Store::open (in its
default recovery mode, kTolerateTornTail) does about it: cut a torn tail and
open, or fail. Read-only; it does not take the LOCK, so it may run while a
Store has the directory open.

options:
  --dump       print every log record (LSN, offset, type, key, value, expiry)
               and every snapshot entry; bytes that are not printable ASCII
               are escaped as \xNN, and keys and values past 200 bytes are cut
  --limit N    print at most N records or entries per file (with --dump)
  -h, --help   print this help

exit status: 0 intact, 1 damage found, 2 usage error or a directory or file
that cannot be read
)";

int usage_error(const std::string& why) {
    std::fprintf(stderr, "kvstore-inspect: %s\n\n%s", why.c_str(), kHelp);
    return kUsage;
}

bool parse_count(const char* text, std::uint64_t& count) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') return false;
    count = value;
    return true;
}

bool ends_with(const std::string& name, const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct LockState {
    bool held = false;
    std::string text;
};

// Who holds the LOCK, read from /proc/locks: asking flock would take the
// lock, if only for a moment, and a Store opening in that moment would fail.
LockState lock_state(const std::string& path) {
    struct stat file {};
    if (::stat(path.c_str(), &file) != 0) return {false, "absent (no Store has opened this directory)"};
    std::ifstream locks("/proc/locks");
    if (!locks) return {false, "present (whether a Store holds it is unknown: /proc/locks is unreadable)"};
    // /proc/locks names a file "major:minor:inode", the device numbers in hex.
    char id[64];
    std::snprintf(id, sizeof id, "%02x:%02x:%llu", static_cast<unsigned>(major(file.st_dev)),
                  static_cast<unsigned>(minor(file.st_dev)), static_cast<unsigned long long>(file.st_ino));
    for (std::string line; std::getline(locks, line);) {
        std::istringstream fields(line);
        std::string number, kind, mode, access, device;
        long pid = 0;
        fields >> number >> kind;
        if (kind == "->") continue;  // a waiter, not the holder
        if (fields >> mode >> access >> pid >> device && kind == "FLOCK" && device == id)
            return {true, "held by process " + std::to_string(pid) +
                              ": a Store has the directory open, so its files may change while they are read"};
    }
    return {false, "not held: no Store has the directory open"};
}

std::string describe_other(const std::string& dir, const std::string& name) {
    struct stat file {};
    if (::stat((dir + "/" + name).c_str(), &file) == 0 && S_ISDIR(file.st_mode))
        return "a directory, not kvstore's: Store::open ignores it";
    if (ends_with(name, ".tmp")) {
        Lsn lsn = 0;
        if (name == "import.tmp") return "a snapshot stream import_snapshot was receiving: Store::open deletes it";
        if (kvstore::parse_snapshot_name(name.substr(0, name.size() - 4), lsn))
            return "the snapshot of a checkpoint that did not finish (or is being written now): Store::open deletes it";
        return "a temporary file: Store::open deletes every *.tmp file";
    }
    if (ends_with(name, ".damaged"))
        return "set aside by an earlier recovery (a segment without a whole header, or the log after the point where "
               "kPointInTime stopped): Store::open ignores it; keep it for a post-mortem or delete it";
    return "not kvstore's: Store::open ignores it";
}

std::string totals(const inspect::Tally& tally) {
    std::string text = std::to_string(tally.snapshots) + (tally.snapshots == 1 ? " snapshot" : " snapshots");
    if (tally.snapshot_fails_open) {
        text += " (the newest damaged)";
    } else if (tally.snapshots > 0) {
        text += " (" + std::to_string(tally.entries) + " entries in the newest)";
    }
    text += ", " + std::to_string(tally.segments) + (tally.segments == 1 ? " log segment" : " log segments") +
            " holding " + std::to_string(tally.records) + (tally.records == 1 ? " record" : " records");
    if (tally.records > 0)
        text += " (LSNs " + std::to_string(tally.first_lsn) + "-" + std::to_string(tally.last_lsn) + ")";
    return text;
}

int verdict(const inspect::Tally& tally) {
    std::printf("\n");
    if (tally.damaged() == 0) {
        if (tally.unreadable > 0) {
            std::printf("verdict: no damage found, but %llu file(s) could not be read: %s\n",
                        static_cast<unsigned long long>(tally.unreadable), totals(tally).c_str());
            return kUsage;
        }
        std::printf("verdict: intact: %s\n", totals(tally).c_str());
        return kIntact;
    }
    std::printf("verdict: DAMAGED in %llu place(s): %s\n", static_cast<unsigned long long>(tally.damaged()),
                totals(tally).c_str());
    if (tally.count(Effect::kOpenFails) > 0) {
        std::printf("  Store::open fails (RecoveryMode::kTolerateTornTail, the default)\n");
        if (tally.log_fails_open && !tally.open_anyway.empty()) {
            std::printf("  to open anyway: %s\n", tally.open_anyway.c_str());
        } else if (tally.log_fails_open) {
            std::printf("  no recovery mode opens past the log's first damage\n");
        }
    } else {
        if (tally.count(Effect::kOpenCuts) > 0)
            std::printf(
                "  Store::open opens: it cuts the torn tail off the newest segment (what a crash during a "
                "write leaves)\n");
        if (tally.count(Effect::kOpenSetsAside) > 0)
            std::printf(
                "  Store::open opens: it sets the newest segment aside (what a crash while creating it "
                "leaves)\n");
    }
    if (tally.count(Effect::kNotRead) > 0)
        std::printf("  %llu damaged place(s) in files Store::open does not read\n",
                    static_cast<unsigned long long>(tally.count(Effect::kNotRead)));
    if (tally.count(Effect::kUnnoticed) > 0)
        std::printf("  Store::open does not notice %llu of them and opens with records missing\n",
                    static_cast<unsigned long long>(tally.count(Effect::kUnnoticed)));
    return kDamaged;
}

}  // namespace

int main(int argc, char** argv) {
    inspect::Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(kHelp, stdout);
            return kIntact;
        }
        if (arg == "--dump") {
            options.dump = true;
        } else if (arg == "--limit") {
            if (++i == argc || !parse_count(argv[i], options.limit)) return usage_error("--limit wants a count");
        } else if (arg.size() > 1 && arg[0] == '-') {
            return usage_error("unknown option " + arg);
        } else if (options.dir.empty()) {
            options.dir = arg;
        } else {
            return usage_error("one directory at a time");
        }
    }
    if (options.dir.empty()) return usage_error("no directory given");
    while (options.dir.size() > 1 && options.dir.back() == '/') options.dir.pop_back();

    struct stat dir {};
    if (::stat(options.dir.c_str(), &dir) != 0) {
        std::fprintf(stderr, "kvstore-inspect: %s: %s\n", options.dir.c_str(), std::strerror(errno));
        return kUsage;
    }
    if (!S_ISDIR(dir.st_mode)) {
        std::fprintf(stderr, "kvstore-inspect: %s: not a directory\n", options.dir.c_str());
        return kUsage;
    }
    kvstore::FileSystem& fs = kvstore::default_file_system();
    std::vector<std::string> names;
    if (const kvstore::Status listed = fs.list_dir(options.dir, names); !listed) {
        std::fprintf(stderr, "kvstore-inspect: %s\n", listed.to_string().c_str());
        return kUsage;
    }
    // Zero-padded LSNs: sorting the names sorts segments and snapshots by LSN.
    std::sort(names.begin(), names.end());
    std::vector<kvstore::LogSegment> segments;
    std::vector<std::string> snapshots;
    std::vector<std::string> others;
    for (const std::string& name : names) {
        Lsn lsn = 0;
        if (kvstore::parse_log_segment_name(name, lsn)) {
            segments.push_back({lsn, name});
        } else if (kvstore::parse_snapshot_name(name, lsn)) {
            snapshots.push_back(name);
        } else if (name != "LOCK") {
            others.push_back(name);
        }
    }

    std::printf("kvstore-inspect %s\n", options.dir.c_str());
    const LockState lock = lock_state(options.dir + "/LOCK");
    std::printf("LOCK: %s\n", lock.text.c_str());
    if (segments.empty() && snapshots.empty())
        std::printf("no snapshot and no log segment: Store::open starts an empty store here\n");

    inspect::Tally tally;
    Lsn replay_from = 0;
    inspect::check_snapshots(fs, options, snapshots, segments.empty() ? 0 : segments.front().first_lsn, lock.held,
                             replay_from, tally);
    inspect::check_segments(fs, options, segments, replay_from, lock.held, tally);

    if (!others.empty()) std::printf("other files:\n");
    for (const std::string& name : others) {
        std::uint64_t size = 0;
        (void)fs.file_size(options.dir + "/" + name, size);
        std::printf("  %s  %llu bytes: %s\n", name.c_str(), static_cast<unsigned long long>(size),
                    describe_other(options.dir, name).c_str());
    }
    return verdict(tally);
}
