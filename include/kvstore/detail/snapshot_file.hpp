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
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
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
/// The smallest entry: flags, an empty key's length and an empty value's.
inline constexpr std::size_t kMinEntrySize = 3;

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

    /// Makes room for `bytes` more of encoded entries and touches it, so
    /// that the add() calls filling it neither allocate nor fault in fresh
    /// pages: a caller adding under a lock then holds it only to copy.
    void reserve(std::size_t bytes) {
        const std::size_t used = pending_.size();
        if (pending_.capacity() - used >= bytes) return;
        pending_.resize(used + bytes);
        pending_.resize(used);
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

/// Reads a snapshot's blocks one after another from a block's offset,
/// checking each block's header, its length against the format's limit and
/// the bytes left in the file (before allocating), its payload checksum, and
/// that its entries fill it exactly. Errors name the file, the offset of the
/// damaged part and the reason.
class BlockReader {
public:
    BlockReader(ReadableFile& file, const std::string& path, std::uint64_t size, std::uint64_t offset)
        : file_(file), path_(path), size_(size), offset_(offset) {}

    /// Where the next block starts, or the trailer once at_trailer().
    std::uint64_t offset() const noexcept { return offset_; }
    /// True iff the bytes left are exactly a trailer's.
    bool at_trailer() const noexcept { return size_ - offset_ == kTrailerSize; }
    /// The blocks and entries read so far (skipped blocks not counted).
    std::uint64_t blocks() const noexcept { return blocks_; }
    std::uint64_t entries() const noexcept { return entries_; }

    /// Reads the next block into `entries`, whose views stay valid until
    /// the next call.
    Status read_block(std::vector<Entry>& entries) {
        const std::uint64_t block_at = offset_;
        BlockHeader header;
        if (Status status = read_header(header); !status) return status;
        if (Status status = read_exactly(offset_ + kBlockHeaderSize, header.length, "block"); !status) return status;
        if (log::checksum(buffer_.data(), header.length) != header.payload_checksum)
            return Status::corruption(path_, block_at, "bad block checksum");
        if (Status status = parse(block_at, header.count, entries); !status) return status;
        ++blocks_;
        entries_ += header.count;
        return step_over(header);
    }

    /// Steps over the next block, checking its header only.
    Status skip_block() {
        BlockHeader header;
        if (Status status = read_header(header); !status) return status;
        if (header.length > size_ - offset_ - kBlockHeaderSize)
            return Status::corruption(path_, offset_ + kBlockHeaderSize, "block cut short");
        return step_over(header);
    }

    /// Reads and checks the trailer, which must hold `entries` and `blocks`.
    Status read_trailer(std::uint64_t entries, std::uint64_t blocks) {
        if (Status status = read_exactly(offset_, kTrailerSize, "trailer"); !status) return status;
        if (!is_trailer(buffer_.data()))
            return Status::corruption(path_, offset_, "bad trailer (the snapshot was not finished)");
        if (log::get_u64(buffer_.data() + 8) != entries || log::get_u64(buffer_.data() + 16) != blocks)
            return Status::corruption(path_, offset_, "trailer counts disagree with the blocks");
        return Status::ok();
    }

private:
    struct BlockHeader {
        std::uint32_t payload_checksum = 0;
        std::uint32_t length = 0;
        std::uint32_t count = 0;
    };

    // Reads exactly `bytes` at `at` into buffer_.
    Status read_exactly(std::uint64_t at, std::uint64_t bytes, const char* what) {
        if (bytes > size_ - at) return Status::corruption(path_, at, std::string(what) + " cut short");
        buffer_.resize(static_cast<std::size_t>(bytes));
        std::size_t got = 0;
        if (Status status = file_.read(at, buffer_.size(), buffer_.data(), got); !status) return status;
        if (got != bytes) return Status::corruption(path_, at, std::string(what) + " cut short");
        return Status::ok();
    }

    Status read_header(BlockHeader& header) {
        if (Status status = read_exactly(offset_, kBlockHeaderSize, "block header"); !status) return status;
        const char* bytes = buffer_.data();
        if (log::get_u32(bytes + 12) != log::checksum(bytes, 12))
            return Status::corruption(path_, offset_, "bad block header checksum");
        header.payload_checksum = log::get_u32(bytes);
        header.length = log::get_u32(bytes + 4);
        header.count = log::get_u32(bytes + 8);
        if (header.length > kMaxBlock)
            return Status::corruption(path_, offset_, "block length beyond the format's limit");
        return Status::ok();
    }

    Status step_over(const BlockHeader& header) {
        offset_ += kBlockHeaderSize + header.length;
        if (size_ - offset_ < kTrailerSize) return Status::corruption(path_, offset_, "trailer missing");
        return Status::ok();
    }

    // Splits the payload in buffer_ into `count` entries.
    Status parse(std::uint64_t block_at, std::uint32_t count, std::vector<Entry>& entries) const {
        std::string_view in(buffer_.data(), buffer_.size());
        // Checked before the entries are made: a count the payload cannot
        // hold (the header's checksum can hold by chance or by design) would
        // otherwise allocate up to 2^32 entries for a block of a few bytes.
        if (count > in.size() / kMinEntrySize)
            return Status::corruption(path_, block_at, "entry count larger than the block can hold");
        entries.resize(count);
        for (Entry& entry : entries) {
            std::uint64_t key_size = 0;
            std::uint64_t value_size = 0;
            if (in.empty()) return Status::corruption(path_, block_at, "block shorter than its entry count");
            const auto flags = static_cast<std::uint8_t>(in.front());
            in.remove_prefix(1);
            if ((flags & ~kHasExpiry) != 0) return Status::corruption(path_, block_at, "unknown entry flags");
            entry.expiry = 0;
            if ((flags & kHasExpiry) != 0) {
                if (in.size() < 8) return Status::corruption(path_, block_at, "entry expiry cut short");
                entry.expiry = log::get_u64(in.data());
                in.remove_prefix(8);
            }
            if (!get_varint(in, key_size) || key_size > in.size())
                return Status::corruption(path_, block_at, "entry key runs past its block");
            entry.key = in.substr(0, static_cast<std::size_t>(key_size));
            in.remove_prefix(static_cast<std::size_t>(key_size));
            if (!get_varint(in, value_size) || value_size > in.size())
                return Status::corruption(path_, block_at, "entry value runs past its block");
            entry.value = in.substr(0, static_cast<std::size_t>(value_size));
            in.remove_prefix(static_cast<std::size_t>(value_size));
        }
        if (!in.empty()) return Status::corruption(path_, block_at, "block longer than its entries");
        return Status::ok();
    }

    ReadableFile& file_;
    const std::string& path_;
    std::uint64_t size_;
    std::uint64_t offset_;
    std::vector<char> buffer_;
    std::uint64_t blocks_ = 0;
    std::uint64_t entries_ = 0;
};

/// Opens snapshot `path` and checks its header, then that its trailer is
/// whole: sets `size`, `file`, `replay_from` and `trailer_entries` (the
/// entry count the trailer gives; read() checks it against the blocks).
/// Every reader opens through here, so a damaged or unfinished snapshot is
/// named with the same offset and reason whichever reads it.
inline Status open(FileSystem& fs, const std::string& path, std::uint64_t& size, std::unique_ptr<ReadableFile>& file,
                   Lsn& replay_from, std::uint64_t& trailer_entries) {
    if (Status status = fs.file_size(path, size); !status) return status;
    if (Status status = fs.open_readable(path, file); !status) return status;
    if (size < kHeaderSize) return Status::corruption(path, 0, "header cut short");
    char header[kHeaderSize];
    std::size_t got = 0;
    if (Status status = file->read(0, kHeaderSize, header, got); !status) return status;
    if (got != kHeaderSize) return Status::corruption(path, 0, "header cut short");
    if (std::memcmp(header, kMagic, sizeof kMagic) != 0)
        return Status::corruption(path, 0, "not a kvstore snapshot (bad magic)");
    if (log::get_u32(header + 24) != log::checksum(header, 24))
        return Status::corruption(path, 0, "bad header checksum");
    if (log::get_u32(header + 8) != kFormatVersion)
        return Status::corruption(path, 8, "unsupported snapshot format version");
    if (log::get_u32(header + 28) != 0) return Status::corruption(path, 28, "reserved header bytes set");
    if (size < kHeaderSize + kTrailerSize)
        return Status::corruption(path, kHeaderSize, "trailer missing (the snapshot was not finished)");
    char trailer[kTrailerSize];
    if (Status status = file->read(size - kTrailerSize, kTrailerSize, trailer, got); !status) return status;
    if (got != kTrailerSize || !is_trailer(trailer))
        return Status::corruption(path, size - kTrailerSize, "bad trailer (the snapshot was not finished)");
    replay_from = log::get_u64(header + 16);
    trailer_entries = log::get_u64(trailer + 8);
    return Status::ok();
}

/// Sets `entries` from the trailer of snapshot `path`, after the checks of
/// open(), so that a loader can make room before reading.
inline Status read_entry_count(FileSystem& fs, const std::string& path, std::uint64_t& entries) {
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> file;
    Lsn replay_from = 0;
    return open(fs, path, size, file, replay_from, entries);
}

/// Reads the blocks from `reader`'s offset on, up to the trailer or the
/// first block that starts at or after `end`, and calls visit_block(const Entry* first, const Entry* last) ->
/// Status on each block's entries; stops early once `stop` is set.
inline constexpr std::uint64_t kWholeFile = ~std::uint64_t{0};

template <class VisitBlock>
Status visit_blocks(BlockReader& reader, VisitBlock& visit_block, std::uint64_t end = kWholeFile,
                    const std::atomic<bool>* stop = nullptr) {
    std::vector<Entry> entries;
    while (!reader.at_trailer() && reader.offset() < end) {
        if (stop != nullptr && stop->load(std::memory_order_relaxed)) return Status::ok();
        if (Status status = reader.read_block(entries); !status) return status;
        if (Status status = visit_block(entries.data(), entries.data() + entries.size()); !status) return status;
    }
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
    std::uint64_t trailer_entries = 0;
    if (Status status = open(fs, path, size, file, replay_from, trailer_entries); !status) return status;
    BlockReader reader(*file, path, size, kHeaderSize);
    auto visit_block = [&](const Entry* first, const Entry* last) {
        for (const Entry* entry = first; entry != last; ++entry) visit(*entry);
        return Status::ok();
    };
    if (Status status = visit_blocks(reader, visit_block); !status) return status;
    if (Status status = reader.read_trailer(reader.entries(), reader.blocks()); !status) return status;
    entries = reader.entries();
    return Status::ok();
}

/// Below this size a snapshot is read on the calling thread alone.
inline constexpr std::uint64_t kSplitFrom = std::uint64_t{4} << 20;

/// As read(), on two threads for a file of at least `split_from` bytes: the
/// calling thread reads the blocks that start in the first half of the file
/// and a second thread the rest, each calling visit_block(const Entry*
/// first, const Entry* last) -> Status on its blocks' entries, so
/// visit_block must allow calls from both at once. The error reported is
/// the first in the file, as read() would report it. Exceptions from
/// visit_block propagate once both threads have stopped.
template <class VisitBlock>
Status read_in_parallel(FileSystem& fs, const std::string& path, Lsn& replay_from, std::uint64_t& entries,
                        VisitBlock&& visit_block, std::uint64_t split_from = kSplitFrom) {
    std::uint64_t size = 0;
    std::unique_ptr<ReadableFile> file;
    std::uint64_t trailer_entries = 0;
    if (Status status = open(fs, path, size, file, replay_from, trailer_entries); !status) return status;
    BlockReader first_half(*file, path, size, kHeaderSize);
    std::unique_ptr<ReadableFile> second_file;
    std::thread second_thread;
    std::atomic<bool> stop{false};
    Status second_status;
    std::exception_ptr second_failure;
    std::uint64_t second_entries = 0;
    std::uint64_t second_blocks = 0;
    std::uint64_t middle = kWholeFile;
    if (size >= split_from && fs.open_readable(path, second_file)) {
        middle = size / 2;
        try {
            second_thread = std::thread([&] {
                try {
                    // Both halves split at the first block that starts in the
                    // second half of the file, found by walking the headers.
                    BlockReader reader(*second_file, path, size, kHeaderSize);
                    while (second_status && !reader.at_trailer() && reader.offset() < middle)
                        second_status = reader.skip_block();
                    if (second_status) second_status = visit_blocks(reader, visit_block, kWholeFile, &stop);
                    second_entries = reader.entries();
                    second_blocks = reader.blocks();
                } catch (...) {
                    second_failure = std::current_exception();
                }
            });
        } catch (const std::system_error&) {
            middle = kWholeFile;
        }
    }
    Status status;
    std::exception_ptr failure;
    try {
        status = visit_blocks(first_half, visit_block, middle);
    } catch (...) {
        failure = std::current_exception();
    }
    if (second_thread.joinable()) {
        if (!status || failure) stop.store(true, std::memory_order_relaxed);
        second_thread.join();
    }
    if (failure) std::rethrow_exception(failure);
    if (!status) return status;
    if (second_failure) std::rethrow_exception(second_failure);
    if (!second_status) return second_status;
    const std::uint64_t total_entries = first_half.entries() + second_entries;
    BlockReader trailer(*file, path, size, size - kTrailerSize);
    if (Status checked = trailer.read_trailer(total_entries, first_half.blocks() + second_blocks); !checked)
        return checked;
    entries = total_entries;
    return Status::ok();
}

}  // namespace kvstore::detail::snapshot
