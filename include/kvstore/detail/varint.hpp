// LEB128 variable-length integers: 7 bits per byte, low bits first, the high
// bit set on every byte but the last. Used for lengths in packed records and
// log payloads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kvstore::detail {

inline std::size_t varint_size(std::uint64_t value) noexcept {
    std::size_t bytes = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++bytes;
    }
    return bytes;
}

/// Writes varint_size(value) bytes at `out` and returns the end.
template <class Byte>
Byte* put_varint(Byte* out, std::uint64_t value) noexcept {
    while (value >= 0x80) {
        *out++ = static_cast<Byte>(value | 0x80);
        value >>= 7;
    }
    *out++ = static_cast<Byte>(value);
    return out;
}

/// Reads a varint from memory this process wrote; no bounds checks.
inline const unsigned char* get_trusted_varint(const unsigned char* in, std::size_t& value) noexcept {
    std::size_t result = 0;
    unsigned shift = 0;
    while (*in & 0x80) {
        result |= static_cast<std::size_t>(*in++ & 0x7F) << shift;
        shift += 7;
    }
    value = result | (static_cast<std::size_t>(*in++) << shift);
    return in;
}

/// Reads a varint from the front of `in`, which may hold anything; false if
/// it is cut off or does not fit in 64 bits.
inline bool get_varint(std::string_view& in, std::uint64_t& value) noexcept {
    value = 0;
    for (unsigned shift = 0; shift < 64 && !in.empty(); shift += 7) {
        const auto byte = static_cast<unsigned char>(in.front());
        in.remove_prefix(1);
        value |= std::uint64_t{byte & 0x7fu} << shift;
        if ((byte & 0x80) == 0) return shift < 63 || byte <= 1;
    }
    return false;
}

}  // namespace kvstore::detail
