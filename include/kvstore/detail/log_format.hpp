// The write-ahead log's on-disk format; docs/wal-format.md explains it.
//
// A log is a sequence of segment files named by the LSN of their first
// record. Each segment starts with a file header and holds whole records:
//
//   file header (32 bytes)
//     magic "kvstWAL\n" | version u32 | flags u32 | first LSN u64
//     | checksum u32 (of the 24 bytes before it) | reserved u32 (0)
//   record header (32 bytes)
//     header checksum u32 (of the 28 header bytes after it) | payload checksum u32
//     | payload length u32 | type u8 | reserved 3 bytes (0) | LSN u64
//     | timestamp u64 (microseconds since the Unix epoch, when appended)
//   payload (length bytes)
//
// Integers are little-endian. Checksums are the low 32 bits of XXH3-64 with
// seed kChecksumSeed. The header has its own checksum so that a reader can
// trust a length before it reads or allocates for the payload, and can find
// the next whole record after a damaged one.
#pragma once

#include <kvstore/detail/xxhash.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace kvstore::detail::log {

inline constexpr char kMagic[8] = {'k', 'v', 's', 't', 'W', 'A', 'L', '\n'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kFileHeaderSize = 32;
inline constexpr std::size_t kRecordHeaderSize = 32;
inline constexpr std::uint64_t kChecksumSeed = 0x6b7673744c6f67ull;
/// The largest payload a writer produces; a reader refuses longer ones.
inline constexpr std::uint32_t kMaxPayload = std::uint32_t{1} << 30;

/// What a record holds; docs/wal-format.md gives each payload's layout.
/// Zero is not a type, so a zeroed region never parses as a record.
enum class RecordType : std::uint8_t {
    kPut = 1,          ///< key, value
    kPutExpiring = 2,  ///< absolute expiry, key, value
    kErase = 3,        ///< key
    kClear = 4,        ///< nothing: every key is removed
    kBatch = 5,        ///< several of the above, applied all or none
};
inline constexpr std::uint8_t kLastRecordType = 5;

inline bool is_record_type(std::uint8_t type) noexcept { return type >= 1 && type <= kLastRecordType; }

inline void put_u32(char* out, std::uint32_t value) noexcept {
    for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
inline void put_u64(char* out, std::uint64_t value) noexcept {
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
inline std::uint32_t get_u32(const char* in) noexcept {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value |= std::uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
    return value;
}
inline std::uint64_t get_u64(const char* in) noexcept {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    return value;
}

inline std::uint32_t checksum(const char* data, std::size_t size) noexcept {
    return static_cast<std::uint32_t>(XXH3_64bits_withSeed(data, size, kChecksumSeed));
}

// Field offsets in the record header.
inline constexpr std::size_t kHeaderChecksumAt = 0;
inline constexpr std::size_t kPayloadChecksumAt = 4;
inline constexpr std::size_t kLengthAt = 8;
inline constexpr std::size_t kTypeAt = 12;
inline constexpr std::size_t kLsnAt = 16;
inline constexpr std::size_t kTimestampAt = 24;

/// Writes a record header for a payload of `payload_size` bytes whose
/// checksum() is `payload_checksum`.
inline void seal_record(char* out, RecordType type, std::uint64_t lsn, std::uint64_t timestamp,
                        std::uint32_t payload_size, std::uint32_t payload_checksum) noexcept {
    put_u32(out + kPayloadChecksumAt, payload_checksum);
    put_u32(out + kLengthAt, payload_size);
    out[kTypeAt] = static_cast<char>(type);
    out[kTypeAt + 1] = out[kTypeAt + 2] = out[kTypeAt + 3] = 0;
    put_u64(out + kLsnAt, lsn);
    put_u64(out + kTimestampAt, timestamp);
    put_u32(out + kHeaderChecksumAt, checksum(out + 4, kRecordHeaderSize - 4));
}

struct RecordHeader {
    std::uint32_t payload_checksum;
    std::uint32_t length;
    RecordType type;
    std::uint64_t lsn;
    std::uint64_t timestamp;
};

/// True unless the 32 bytes at `in` certainly are not a record header: a
/// reader looking for the next record after damage runs this at every
/// offset, before the checksum.
inline bool may_be_record_header(const char* in) noexcept {
    return is_record_type(static_cast<std::uint8_t>(in[kTypeAt])) && in[kTypeAt + 1] == 0 && in[kTypeAt + 2] == 0 &&
           in[kTypeAt + 3] == 0;
}

/// Returns nullptr and fills `header` iff the 32 bytes at `in` are a record
/// header written by kvstore; otherwise returns why not. The checksum comes
/// first: a header whose checksum holds and whose type or reserved bytes
/// are not this version's was written by another version, not damaged.
inline const char* parse_record_header(const char* in, RecordHeader& header) noexcept {
    if (get_u32(in + kHeaderChecksumAt) != checksum(in + 4, kRecordHeaderSize - 4)) return "bad header checksum";
    const auto type = static_cast<std::uint8_t>(in[kTypeAt]);
    if (!is_record_type(type)) return "unknown record type";
    if (in[kTypeAt + 1] != 0 || in[kTypeAt + 2] != 0 || in[kTypeAt + 3] != 0) return "reserved header bytes set";
    header.payload_checksum = get_u32(in + kPayloadChecksumAt);
    header.length = get_u32(in + kLengthAt);
    header.type = static_cast<RecordType>(type);
    header.lsn = get_u64(in + kLsnAt);
    header.timestamp = get_u64(in + kTimestampAt);
    if (header.length > kMaxPayload) return "payload length beyond the format's limit";
    return nullptr;
}

/// File header flag: the LSNs between the previous segment's last record
/// and this segment's first were set aside by a point-in-time recovery
/// (RecoveryMode::kPointInTime), so their absence is not damage. The log
/// goes on after the highest LSN set aside, so that no LSN names two
/// different records.
inline constexpr std::uint32_t kFollowsSetAside = 1;
inline constexpr std::uint32_t kKnownFileFlags = kFollowsSetAside;

struct FileHeader {
    std::uint64_t first_lsn = 0;
    std::uint32_t flags = 0;
};

inline void write_file_header(char* out, const FileHeader& header) noexcept {
    std::memcpy(out, kMagic, sizeof kMagic);
    put_u32(out + 8, kFormatVersion);
    put_u32(out + 12, header.flags);
    put_u64(out + 16, header.first_lsn);
    put_u32(out + 24, checksum(out, 24));
    put_u32(out + 28, 0);
}

/// Returns nullptr and fills `header` iff `in` is a valid file header.
inline const char* parse_file_header(const char* in, FileHeader& header) noexcept {
    if (std::memcmp(in, kMagic, sizeof kMagic) != 0) return "not a kvstore log (bad magic)";
    if (get_u32(in + 24) != checksum(in, 24)) return "bad file header checksum";
    if (get_u32(in + 8) != kFormatVersion) return "unsupported log format version";
    if ((get_u32(in + 12) & ~kKnownFileFlags) != 0) return "unknown file header flags";
    if (get_u32(in + 28) != 0) return "reserved file header bytes set";
    header.flags = get_u32(in + 12);
    header.first_lsn = get_u64(in + 16);
    return nullptr;
}

/// "<prefix><LSN as 20 decimal digits><suffix>": zero-padded, so that the
/// names of segments and snapshots sort by LSN.
inline std::string lsn_file_name(const char* prefix, std::uint64_t lsn, const char* suffix) {
    char digits[24];
    std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(lsn));
    return prefix + std::string(digits) + suffix;
}

/// Returns true and sets `lsn` iff `name` is lsn_file_name(prefix, lsn, suffix).
inline bool parse_lsn_file_name(const std::string& name, const char* prefix, const char* suffix, std::uint64_t& lsn) {
    const std::size_t prefix_size = std::strlen(prefix);
    const std::size_t suffix_size = std::strlen(suffix);
    if (name.size() != prefix_size + 20 + suffix_size || name.compare(0, prefix_size, prefix) != 0 ||
        name.compare(prefix_size + 20, suffix_size, suffix) != 0)
        return false;
    std::uint64_t value = 0;
    for (std::size_t i = prefix_size; i < prefix_size + 20; ++i) {
        if (name[i] < '0' || name[i] > '9') return false;
        const auto digit = static_cast<std::uint64_t>(name[i] - '0');
        if (value > (~std::uint64_t{0} - digit) / 10) return false;
        value = value * 10 + digit;
    }
    lsn = value;
    return true;
}

/// "wal-00000000000000000001.log", the segment whose first record has LSN 1.
inline std::string segment_name(std::uint64_t first_lsn) { return lsn_file_name("wal-", first_lsn, ".log"); }

inline bool parse_segment_name(const std::string& name, std::uint64_t& first_lsn) {
    return parse_lsn_file_name(name, "wal-", ".log", first_lsn);
}

}  // namespace kvstore::detail::log
