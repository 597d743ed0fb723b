// kvstore::Codec<T>: how keys and values become the bytes of log records and
// snapshots, and back.
//
// A codec is a struct with three static members:
//
//   static std::size_t size(const T& value);            // bytes encode writes
//   static char* encode(const T& value, char* out);     // writes size() bytes, returns the end
//   static bool decode(std::string_view bytes, T& out); // false if bytes are not a T
//
// Provided: std::string (its bytes), byte buffers (std::vector of char,
// signed/unsigned char or std::byte), and every trivially copyable type,
// arithmetic types included (their object representation: files move only
// between machines with the same byte order and type layout). Other types
// get a specialisation of kvstore::Codec<T> next to them.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace kvstore {

/// How a key or value of type T is written to the log and snapshots and
/// read back; specialised for byte strings and trivially copyable types, and
/// by an application for its own types (see the file's comment).
template <class T, class Enable = void>
struct Codec {
    static_assert(sizeof(T) == 0,
                  "kvstore::Codec<T> has no specialisation for this type: specialise kvstore::Codec<T> "
                  "(see kvstore/codec.hpp)");
};

namespace detail {

template <class T>
struct is_byte_like : std::bool_constant<std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
                                         std::is_same_v<T, unsigned char> || std::is_same_v<T, std::byte>> {};

// Byte sequences: their bytes, nothing else.
template <class Bytes>
struct ByteSequenceCodec {
    static std::size_t size(const Bytes& value) noexcept { return value.size(); }
    static char* encode(const Bytes& value, char* out) noexcept {
        if (!value.empty()) std::memcpy(out, value.data(), value.size());
        return out + value.size();
    }
    static bool decode(std::string_view bytes, Bytes& out) {
        out.resize(bytes.size());
        if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
        return true;
    }
};

}  // namespace detail

template <>
struct Codec<std::string> : detail::ByteSequenceCodec<std::string> {};

template <class Byte>
struct Codec<std::vector<Byte>, std::enable_if_t<detail::is_byte_like<Byte>::value>>
    : detail::ByteSequenceCodec<std::vector<Byte>> {};

/// Trivially copyable non-pointer types (arithmetic types included): their object representation,
/// sizeof(T) bytes, readable only on machines with the same byte order and layout.
template <class T>
struct Codec<T, std::enable_if_t<std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>>> {
    /// Always sizeof(T).
    static constexpr std::size_t size(const T&) noexcept { return sizeof(T); }
    /// Copies the object's bytes to `out`; returns out + sizeof(T).
    static char* encode(const T& value, char* out) noexcept {
        std::memcpy(out, &value, sizeof(T));
        return out + sizeof(T);
    }
    /// False, leaving `out` untouched, unless `bytes` is exactly sizeof(T) long.
    static bool decode(std::string_view bytes, T& out) noexcept {
        if (bytes.size() != sizeof(T)) return false;
        std::memcpy(&out, bytes.data(), sizeof(T));
        return true;
    }
};

/// Encodes `value` into a new string, through Codec<T>.
template <class T>
std::string encode_to_string(const T& value) {
    std::string bytes(Codec<T>::size(value), '\0');
    Codec<T>::encode(value, bytes.data());
    return bytes;
}

}  // namespace kvstore
