// LogReader: reads the records of one log segment in order, from the
// segment mapped into memory or else through large sequential reads, and
// tells a damaged record apart from the end.
#pragma once

#include <kvstore/detail/log_format.hpp>
#include <kvstore/file_system.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore::detail::log {

/// A record as read; `payload` is valid until the next call to the reader.
struct RecordView {
    RecordType type;
    std::uint64_t lsn;
    std::uint64_t timestamp;
    std::uint64_t offset;  ///< of the record header in the segment
    std::string_view payload;
    /// Null when `payload` lies in a read buffer and is valid only during
    /// the call it is handed to; else the segment is mapped, and a copy of
    /// *payload_owner keeps `payload` valid after it.
    const std::shared_ptr<const void>* payload_owner;
};

class LogReader {
public:
    enum class Next { kRecord, kEnd, kDamaged };

    static constexpr std::size_t kReadSize = std::size_t{1} << 20;

    /// REQUIRES: `file` outlives the reader; `file_size` is its size.
    LogReader(ReadableFile& file, std::string path, std::uint64_t file_size)
        : file_(file), path_(std::move(path)), file_size_(file_size), mapped_(file.map(file_size)) {
        if (mapped_ != nullptr) {
            data_ = static_cast<const char*>(mapped_.get());
            buffered_ = static_cast<std::size_t>(file_size_);
        }
    }

    const std::string& path() const noexcept { return path_; }
    std::uint64_t file_size() const noexcept { return file_size_; }
    /// The offset of the next record to read: after a kDamaged result, where
    /// the damage starts.
    std::uint64_t offset() const noexcept { return offset_; }
    /// Why the last kDamaged happened.
    const char* damage() const noexcept { return damage_; }
    /// The LSN of the record the last kDamaged happened in, when its header
    /// was whole (its checksum held) and the damage lies after it; 0 when
    /// the header itself is damaged and the LSN unknown.
    std::uint64_t damaged_lsn() const noexcept { return damaged_lsn_; }
    /// Set when the last read failed with an I/O error (not damage).
    const Status& io_status() const noexcept { return io_status_; }

    /// Reads and checks the file header. Returns kRecord on success (with
    /// `header` set), kDamaged or kEnd (an empty file).
    Next read_file_header(FileHeader& header) {
        if (file_size_ == 0) return Next::kEnd;
        if (!fill(0, kFileHeaderSize)) return damaged(file_size_ < kFileHeaderSize ? "file header cut short" : nullptr);
        if (const char* why = parse_file_header(window(0), header)) return damaged(why);
        offset_ = kFileHeaderSize;
        return Next::kRecord;
    }

    /// Reads the record at offset(). Zeros from there to the end of the
    /// file are the end too: what a writer preallocated and did not use.
    Next next(RecordView& record) {
        if (offset_ == file_size_ || rest_is_zero()) return Next::kEnd;
        if (file_size_ - offset_ < kRecordHeaderSize) {
            if (!fill(offset_, file_size_ - offset_)) return damaged(nullptr);
            return damaged("record header cut short");
        }
        if (!fill(offset_, kRecordHeaderSize)) return damaged(nullptr);
        RecordHeader header{};
        if (const char* why = parse_record_header(window(offset_), header)) return damaged(why);
        // The length is trusted only after the header checksum, and checked
        // against what is left of the file before anything is read for it.
        if (header.length > file_size_ - offset_ - kRecordHeaderSize) return damaged("record cut short", header.lsn);
        if (!fill(offset_, kRecordHeaderSize + header.length)) return damaged(nullptr, header.lsn);
        const char* payload = window(offset_) + kRecordHeaderSize;
        if (checksum(payload, header.length) != header.payload_checksum)
            return damaged("bad payload checksum", header.lsn);
        record = RecordView{header.type,
                            header.lsn,
                            header.timestamp,
                            offset_,
                            std::string_view(payload, header.length),
                            mapped_ != nullptr ? &mapped_ : nullptr};
        offset_ += kRecordHeaderSize + header.length;
        return Next::kRecord;
    }

    /// Looks for the first whole, valid record after offset() whose LSN is
    /// above `after_lsn`; on success moves offset() to it and returns true.
    /// Used after damage, to skip it or to tell a torn tail (nothing valid
    /// follows) from corruption (something does).
    bool find_next_record(std::uint64_t after_lsn) {
        const std::uint64_t damaged_at = offset_;
        for (std::uint64_t at = damaged_at + 1; at + kRecordHeaderSize <= file_size_; ++at) {
            if (!fill(at, kRecordHeaderSize)) break;
            if (!may_be_record_header(window(at))) continue;
            RecordHeader header{};
            if (parse_record_header(window(at), header) != nullptr || header.lsn <= after_lsn) continue;
            if (header.length > file_size_ - at - kRecordHeaderSize) continue;
            if (!fill(at, kRecordHeaderSize + header.length)) break;
            if (checksum(window(at) + kRecordHeaderSize, header.length) != header.payload_checksum) continue;
            offset_ = at;
            return true;
        }
        offset_ = damaged_at;
        return false;
    }

private:
    // Scans what is buffered before reading more: a record whose first
    // byte happens to be zero costs no read.
    bool rest_is_zero() {
        for (std::uint64_t at = offset_; at < file_size_;) {
            if (!fill(at, 1)) return false;
            const char* bytes = window(at);
            const auto buffered = static_cast<std::size_t>(buffer_offset_ + buffered_ - at);
            if (std::any_of(bytes, bytes + buffered, [](char byte) { return byte != 0; })) return false;
            at += buffered;
        }
        return true;
    }

    Next damaged(const char* why, std::uint64_t lsn = 0) {
        damage_ = why != nullptr ? why : "unreadable";
        damaged_lsn_ = lsn;
        return Next::kDamaged;
    }

    const char* window(std::uint64_t at) const noexcept {
        return data_ + static_cast<std::size_t>(at - buffer_offset_);
    }

    // Makes file bytes [at, at + bytes) available through window(at). A
    // mapped segment has them all already.
    // REQUIRES: at + bytes <= file_size_.
    bool fill(std::uint64_t at, std::uint64_t bytes) {
        if (at >= buffer_offset_ && at + bytes <= buffer_offset_ + buffered_) return true;
        const std::size_t want = static_cast<std::size_t>(
            std::min<std::uint64_t>(std::max<std::uint64_t>(bytes, kReadSize), file_size_ - at));
        if (buffer_.size() < want) buffer_.resize(want);
        data_ = buffer_.data();
        std::size_t got = 0;
        io_status_ = file_.read(at, want, buffer_.data(), got);
        buffer_offset_ = at;
        buffered_ = io_status_.is_ok() ? got : 0;
        return buffered_ >= bytes;
    }

    ReadableFile& file_;
    std::string path_;
    std::uint64_t file_size_;
    std::uint64_t offset_ = 0;
    std::shared_ptr<const void> mapped_;
    std::vector<char> buffer_;
    const char* data_ = nullptr;  // the mapping, or buffer_'s bytes
    std::uint64_t buffer_offset_ = 0;
    std::size_t buffered_ = 0;
    const char* damage_ = "";
    std::uint64_t damaged_lsn_ = 0;
    Status io_status_;
};

}  // namespace kvstore::detail::log
