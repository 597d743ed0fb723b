// Snapshot files: a store's entries at a point of its log, written by a
// checkpoint and loaded at open before the log is replayed from that point.
// docs/snapshot-format.md explains the format; in short:
//
//   header (32 bytes)
//     magic "kvstSNP\n" | version u32 | reserved u32 (0) | replay-from LSN u64
//     | checksum u32 (of the 24 bytes before it) | reserved u32 (0)
//   blocks, each
//     payload checksum u32 | payload length u32 | entry count u32
//     | header checksum u32 (of the 12 bytes before it) | payload
//   trailer (32 bytes)
//     magic "kvstEND\n" | entries u64 | blocks u64 | reserved u32 (0)
//     | checksum u32 (of the 28 bytes before it)
//
// A block's payload is its entries, each
//   flags u8 (bit 0: has an expiry) | [expiry u64] | varint key length | key
//   | varint value length | value
//
// A snapshot is written to "<name>.tmp", synced, renamed and the directory
// synced: a file with the final name is complete, and one without a valid
// trailer is not a snapshot.
#pragma once

#include <kvstore/detail/log_format.hpp>
#include <kvstore/detail/varint.hpp>
#include <kvstore/file_system.hpp>
#include <kvstore/log_options.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore::detail::snapshot {

inline constexpr char kMagic[8] = {'k', 'v', 's', 't', 'S', 'N', 'P', '\n'};
inline constexpr char kTrailerMagic[8] = {'k', 'v', 's', 't', 'E', 'N', 'D', '\n'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kHeaderSize = 32;
inline constexpr std::size_t kBlockHeaderSize = 16;
inline constexpr std::size_t kTrailerSize = 32;
/// A writer closes a block once it holds this much.
inline constexpr std::size_t kBlockTarget = std::size_t{64} << 10;
/// The largest block a reader accepts: one entry of the largest size.
inline constexpr std::uint32_t kMaxBlock = log::kMaxPayload + 64;
inline constexpr std::uint8_t kHasExpiry = 1;

/// "snapshot-00000000000000000042.kvs": replay the log from LSN 42 on.
inline std::string file_name(Lsn replay_from) { return log::lsn_file_name("snapshot-", replay_from, ".kvs"); }

/// Returns true and sets `replay_from` iff `name` is a (complete) snapshot's name.
inline bool parse_file_name(const std::string& name, Lsn& replay_from) {
    return log::parse_lsn_file_name(name, "snapshot-", ".kvs", replay_from);
}

/// One entry as stored; views bytes owned by the reader or the caller.
struct Entry {
    std::string_view key;
    std::string_view value;
    std::uint64_t expiry = 0;  ///< microseconds since the Unix epoch; 0: none
};

/// Writes a snapshot file. Use: open(), add() each entry, write_pending()
/// now and then, finish(). add() only encodes into memory, so that a caller
/// holding a lock while it adds does no I/O under it; write_pending() writes
/// the blocks completed so far and syncs once every kSyncEvery bytes, so that
/// the final sync has little left to write and a log's syncs on the same
/// disk never queue behind the whole snapshot.
/// Destroying an unfinished writer leaves only the temporary file, which
/// no reader takes for a snapshot.
class Writer {
public:
    static constexpr std::size_t kSyncEvery = std::size_t{256} << 10;

    Writer(FileSystem& fs, std::string dir, Lsn replay_from, unsigned file_mode)
        : fs_(fs),
          dir_(std::move(dir)),
          final_path_(dir_ + "/" + file_name(replay_from)),
          temp_path_(final_path_ + ".tmp"),
          replay_from_(replay_from),
          file_mode_(file_mode) {}

    Status open() {
        if (Status status = fs_.open_writable(temp_path_, file_mode_, file_); !status) return status;
        char header[kHeaderSize];
        std::memcpy(header, kMagic, sizeof kMagic);
        log::put_u32(header + 8, kFormatVersion);
        log::put_u32(header + 12, 0);
        log::put_u64(header + 16, replay_from_);
        log::put_u32(header + 24, log::checksum(header, 24));
        log::put_u32(header + 28, 0);
        return file_->append(std::string_view(header, sizeof header));
    }

    /// Adds one entry, in memory.
    void add(const Entry& entry) {
        const std::size_t at = block_.size();
        block_.resize(at + 1 + (entry.expiry != 0 ? 8 : 0) + varint_size(entry.key.size()) + entry.key.size() +
                      varint_size(entry.value.size()) + entry.value.size());
        char* out = block_.data() + at;
        *out++ = static_cast<char>(entry.expiry != 0 ? kHasExpiry : 0);
        if (entry.expiry != 0) {
            log::put_u64(out, entry.expiry);
            out += 8;
        }
        out = put_varint(out, entry.key.size());
        if (!entry.key.empty()) std::memcpy(out, entry.key.data(), entry.key.size());
        out = put_varint(out + entry.key.size(), entry.value.size());
        if (!entry.value.empty()) std::memcpy(out, entry.value.data(), entry.value.size());
        ++block_entries_;
        if (block_.size() - kBlockHeaderSize >= kBlockTarget) seal_block();
    }

    /// Writes the blocks completed so far; syncs if kSyncEvery bytes were
    /// written since the last sync.
    Status write_pending() {
        std::string_view rest = pending_;
        Status status;
        while (status && !rest.empty()) {
            const std::string_view piece = rest.substr(0, kSyncEvery - unsynced_);
            status = file_->append(piece);
            rest.remove_prefix(piece.size());
            unsynced_ += piece.size();
            if (status && unsynced_ == kSyncEvery) {
                status = file_->sync();
                unsynced_ = 0;
            }
        }
        pending_.clear();
        return status;
    }

    /// Writes the trailer, syncs, renames the file to its final name and
    /// syncs the directory: on success the snapshot is durable.
    Status finish() {
        seal_block();
        if (Status status = write_pending(); !status) return status;
        char trailer[kTrailerSize];
        std::memcpy(trailer, kTrailerMagic, sizeof kTrailerMagic);
        log::put_u64(trailer + 8, entries_);
        log::put_u64(trailer + 16, blocks_);
        log::put_u32(trailer + 24, 0);
        log::put_u32(trailer + 28, log::checksum(trailer, 28));
        if (Status status = file_->append(std::string_view(trailer, sizeof trailer)); !status) return status;
        if (Status status = file_->sync(); !status) return status;
        if (Status status = file_->close(); !status) return status;
        if (Status status = fs_.rename(temp_path_, final_path_); !status) return status;
        return fs_.sync_dir(dir_);
    }

    std::uint64_t entries() const noexcept { return entries_ + block_entries_; }
    const std::string& path() const noexcept { return final_path_; }

private:
    // Moves the block being filled, with its header, to the pending bytes.
    void seal_block() {
        if (block_entries_ == 0) return;
        const auto length = static_cast<std::uint32_t>(block_.size() - kBlockHeaderSize);
        log::put_u32(block_.data(), log::checksum(block_.data() + kBlockHeaderSize, length));
        log::put_u32(block_.data() + 4, length);
        log::put_u32(block_.data() + 8, block_entries_);
        log::put_u32(block_.data() + 12, log::checksum(block_.data(), 12));
        pending_ += block_;
        entries_ += block_entries_;
        ++blocks_;
        block_entries_ = 0;
        block_.assign(kBlockHeaderSize, '\0');
    }

    FileSystem& fs_;
    std::string dir_;
    std::string final_path_;
    std::string temp_path_;
    Lsn replay_from_;
    unsigned file_mode_;
    std::unique_ptr<WritableFile> file_;
    std::string block_ = std::string(kBlockHeaderSize, '\0');
    std::uint32_t block_entries_ = 0;
    std::string pending_;       // sealed blocks not yet written
    std::size_t unsynced_ = 0;  // bytes written since the last sync
    std::uint64_t entries_ = 0;
    std::uint64_t blocks_ = 0;
};

/// True iff the 32 bytes at `in` are a whole trailer (magic and checksum).
inline bool is_trailer(const char* in) noexcept {
    return std::memcmp(in, kTrailerMagic, sizeof kTrailerMagic) == 0 && log::get_u32(in + 28) == log::checksum(in, 28);
}

/// Sets `entries` from the trailer of snapshot `path` alone, so that a
/// loader can make room before reading; read() checks it against the blocks.
inline Status read_entry_count(FileSystem& fs, const std::string& path, std::uint64_t& entries) {
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> file;
    if (Status status = fs.file_size(path, size); !status) return status;
    if (size < kHeaderSize + kTrailerSize) return Status::corruption(path, 0, "too short to be a snapshot");
    if (Status status = fs.open_readable(path, file); !status) return status;
    char trailer[kTrailerSize];
    std::size_t got = 0;
    if (Status status = file->read(size - kTrailerSize, kTrailerSize, trailer, got); !status) return status;
    if (got != kTrailerSize || !is_trailer(trailer))
        return Status::corruption(path, size - kTrailerSize, "bad trailer (the snapshot was not finished)");
    entries = log::get_u64(trailer + 8);
    return Status::ok();
}

/// Reads snapshot `path` and calls visit(const Entry&) for each entry,
/// after checking the block that holds it. Sets `replay_from` from the
/// header and `entries` to the count. Errors name the file, the offset and
/// the reason; entries of earlier blocks may have been visited when a later
/// block turns out damaged, so on error discard what was visited. A reader
/// never allocates more than the file can hold.
template <class Visit>
Status read(FileSystem& fs, const std::string& path, Lsn& replay_from, std::uint64_t& entries, Visit&& visit) {
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> file;
    if (Status status = fs.file_size(path, size); !status) return status;
    if (Status status = fs.open_readable(path, file); !status) return status;
    std::vector<char> buffer;
    std::uint64_t offset = 0;
    // Reads exactly `bytes` at `offset` into buffer.
    auto read_exactly = [&](std::uint64_t bytes, const char* what) -> Status {
        if (bytes > size - offset) return Status::corruption(path, offset, std::string(what) + " cut short");
        buffer.resize(static_cast<std::size_t>(bytes));
        std::size_t got = 0;
        if (Status status = file->read(offset, buffer.size(), buffer.data(), got); !status) return status;
        if (got != bytes) return Status::corruption(path, offset, std::string(what) + " cut short");
        return Status::ok();
    };

    if (Status status = read_exactly(kHeaderSize, "header"); !status) return status;
    if (std::memcmp(buffer.data(), kMagic, sizeof kMagic) != 0)
        return Status::corruption(path, 0, "not a kvstore snapshot (bad magic)");
    if (log::get_u32(buffer.data() + 24) != log::checksum(buffer.data(), 24))
        return Status::corruption(path, 0, "bad header checksum");
    if (log::get_u32(buffer.data() + 8) != kFormatVersion)
        return Status::corruption(path, 8, "unsupported snapshot format version");
    if (log::get_u32(buffer.data() + 28) != 0) return Status::corruption(path, 28, "reserved header bytes set");
    replay_from = log::get_u64(buffer.data() + 16);
    offset = kHeaderSize;

    std::uint64_t seen_entries = 0;
    std::uint64_t seen_blocks = 0;
    while (size - offset != kTrailerSize) {
        if (Status status = read_exactly(kBlockHeaderSize, "block header"); !status) return status;
        const char* header = buffer.data();
        if (log::get_u32(header + 12) != log::checksum(header, 12))
            return Status::corruption(path, offset, "bad block header checksum");
        const std::uint32_t payload_checksum = log::get_u32(header);
        const std::uint32_t length = log::get_u32(header + 4);
        const std::uint32_t count = log::get_u32(header + 8);
        if (length > kMaxBlock) return Status::corruption(path, offset, "block length beyond the format's limit");
        const std::uint64_t block_at = offset;
        offset += kBlockHeaderSize;
        if (Status status = read_exactly(length, "block"); !status) return status;
        if (log::checksum(buffer.data(), length) != payload_checksum)
            return Status::corruption(path, block_at, "bad block checksum");
        std::string_view in(buffer.data(), length);
        for (std::uint32_t i = 0; i < count; ++i) {
            Entry entry;
            std::uint64_t key_size = 0;
            std::uint64_t value_size = 0;
            if (in.empty()) return Status::corruption(path, block_at, "block shorter than its entry count");
            const auto flags = static_cast<std::uint8_t>(in.front());
            in.remove_prefix(1);
            if ((flags & ~kHasExpiry) != 0) return Status::corruption(path, block_at, "unknown entry flags");
            if ((flags & kHasExpiry) != 0) {
                if (in.size() < 8) return Status::corruption(path, block_at, "entry expiry cut short");
                entry.expiry = log::get_u64(in.data());
                in.remove_prefix(8);
            }
            if (!get_varint(in, key_size) || key_size > in.size())
                return Status::corruption(path, block_at, "entry key runs past its block");
            entry.key = in.substr(0, static_cast<std::size_t>(key_size));
            in.remove_prefix(static_cast<std::size_t>(key_size));
            if (!get_varint(in, value_size) || value_size > in.size())
                return Status::corruption(path, block_at, "entry value runs past its block");
            entry.value = in.substr(0, static_cast<std::size_t>(value_size));
            in.remove_prefix(static_cast<std::size_t>(value_size));
            visit(static_cast<const Entry&>(entry));
        }
        if (!in.empty()) return Status::corruption(path, block_at, "block longer than its entries");
        seen_entries += count;
        ++seen_blocks;
        offset += length;
        if (size - offset < kTrailerSize) return Status::corruption(path, offset, "trailer missing");
    }
    if (Status status = read_exactly(kTrailerSize, "trailer"); !status) return status;
    if (!is_trailer(buffer.data()))
        return Status::corruption(path, offset, "bad trailer (the snapshot was not finished)");
    if (log::get_u64(buffer.data() + 8) != seen_entries || log::get_u64(buffer.data() + 16) != seen_blocks)
        return Status::corruption(path, offset, "trailer counts disagree with the blocks");
    entries = seen_entries;
    return Status::ok();
}

}  // namespace kvstore::detail::snapshot
