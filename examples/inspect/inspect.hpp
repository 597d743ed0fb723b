// kvstore-inspect: checks a store's directory without opening the store.
//
// Every checksum of every log record and snapshot block is verified through
// the library's own readers (kvstore/log_files.hpp, kvstore/snapshot_files.hpp),
// and each damaged place is reported with its file, offset, record LSN and
// reason, together with what Store::open in its default recovery mode
// (kTolerateTornTail) would do about it. Nothing is written and the LOCK is
// not taken, so the tool runs beside a Store that has the directory open.
#pragma once

#include <kvstore/log_files.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/log_options.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace inspect {

using kvstore::Lsn;

struct Options {
    std::string dir;
    bool dump = false;
    /// Most records or entries printed per file by --dump.
    std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
};

/// How often damage in a directory that a Store holds open is read again
/// before it is believed: a group of records may be half written at the
/// moment it is read, and a checkpoint may be removing an old file.
inline constexpr int kRereads = 3;
inline constexpr std::chrono::milliseconds kRereadPause{150};

/// What Store::open, in its default mode (kTolerateTornTail), does about a
/// damaged place.
enum class Effect {
    kOpenFails,      ///< open refuses the directory
    kOpenCuts,       ///< a torn tail: open truncates the segment there and opens
    kOpenSetsAside,  ///< the newest segment lacks a whole header: open renames it <name>.damaged
    kNotRead,        ///< open never reads these bytes (a newer snapshot covers them)
    kUnnoticed,      ///< open does not see it and opens without the records concerned
};
inline constexpr int kEffects = 5;

/// One damaged place in a file.
struct Finding {
    std::uint64_t offset = 0;
    std::string record;  ///< "record LSN 57", "expected LSN 57" or empty
    std::string reason;
    Effect effect = Effect::kOpenFails;
    std::string consequence;  ///< why `effect`, in a sentence
};

/// What the whole run found: the verdict and the exit code come from it.
struct Tally {
    std::uint64_t segments = 0;
    std::uint64_t records = 0;
    Lsn first_lsn = 0;  ///< of the oldest whole record in any segment
    Lsn last_lsn = 0;   ///< of the newest
    std::uint64_t snapshots = 0;
    std::uint64_t entries = 0;              ///< of the newest snapshot
    std::uint64_t findings[kEffects] = {};  ///< indexed by Effect
    std::uint64_t unreadable = 0;           ///< files that could not be read (I/O errors)
    /// Set at the first damage in the log that fails open, with the
    /// recovery mode that opens despite it ("" when none does).
    bool log_fails_open = false;
    std::string open_anyway;
    bool snapshot_fails_open = false;

    std::uint64_t count(Effect effect) const { return findings[static_cast<int>(effect)]; }
    std::uint64_t damaged() const {
        std::uint64_t all = 0;
        for (std::uint64_t n : findings) all += n;
        return all;
    }
};

/// Prints `finding` in `path` ("DAMAGE: <path> at offset N (record LSN L):
/// reason", then its consequence) and counts it.
void report(Tally& tally, const std::string& path, const Finding& finding);

/// `bytes` in double quotes with backslash escapes for everything that is
/// not printable ASCII; at most kShownBytes of them, then a count of the rest.
inline constexpr std::size_t kShownBytes = 200;
std::string quoted(std::string_view bytes);

/// "2025-01-02T03:04:05.123456Z (1735787045123456 us)".
std::string format_micros(std::uint64_t micros);

/// Checks the snapshots named `names` (sorted oldest first) and sets
/// `replay_from` to the newest one's LSN, the LSN Store::open replays the
/// log from (0 when there is none). `oldest_segment` is the first LSN of
/// the oldest log segment (0 when there is none), used to say whether the
/// log could replace a damaged snapshot; `store_open` as for check_segments.
void check_snapshots(kvstore::FileSystem& fs, const Options& options, const std::vector<std::string>& names,
                     Lsn oldest_segment, bool store_open, Lsn& replay_from, Tally& tally);

/// Checks every record of `segments` (oldest first). `replay_from` is what
/// check_snapshots found; `store_open` says a Store holds the LOCK, so that
/// damage is read again before it is reported (see kRereads).
void check_segments(kvstore::FileSystem& fs, const Options& options,
                    const std::vector<kvstore::LogSegment>& segments, Lsn replay_from, bool store_open,
                    Tally& tally);

}  // namespace inspect
