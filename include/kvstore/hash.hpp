// kvstore::Hash<T>: the default hasher, built on XXH3.
//
// Supported out of the box:
//   - std::string, std::string_view, C strings (one transparent hasher, so a
//     map keyed by std::string is searched with a string_view or a literal
//     without building a std::string);
//   - std::vector<T> and std::basic_string<T> of byte-like T (byte buffers);
//   - every type whose object representation is unique: integers, enums,
//     pointers, std::array of those, and padding-free structs of those.
//
// A user type is made hashable in one of two ways:
//   - a free function `std::uint64_t kvstore_hash(const T&)` found by
//     argument-dependent lookup (write it next to the type), or
//   - a specialisation of kvstore::Hash<T>.
// kvstore::hash_bytes and kvstore::hash_combine help write either.
#pragma once

#include <kvstore/detail/xxhash.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kvstore {

/// XXH3 of `size` bytes at `data`.
inline std::uint64_t hash_bytes(const void* data, std::size_t size, std::uint64_t seed = 0) noexcept {
    return XXH3_64bits_withSeed(data, size, seed);
}

/// Folds `value` into `seed`; order-dependent, for hashing several fields.
inline std::uint64_t hash_combine(std::uint64_t seed, std::uint64_t value) noexcept {
    return XXH3_64bits_withSeed(&value, sizeof value, seed);
}

namespace detail {

template <class T, class = void>
struct has_adl_hash : std::false_type {};
template <class T>
struct has_adl_hash<T, std::void_t<decltype(kvstore_hash(std::declval<const T&>()))>> : std::true_type {};

template <class T>
inline constexpr bool is_byte_like_v = std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
                                       std::is_same_v<T, unsigned char> || std::is_same_v<T, std::byte>;

}  // namespace detail

/// Transparent hasher for everything that converts to std::string_view.
struct StringHash {
    using is_transparent = void;  ///< maps keyed by std::string accept std::string_view and literals for lookups
    using is_avalanching = void;  ///< XXH3 output needs no further mixing
    /// XXH3 of the string's bytes (seed 0): equal text hashes equally whatever its string type.
    std::uint64_t operator()(std::string_view s) const noexcept { return hash_bytes(s.data(), s.size()); }
};

/// Default hasher. The primary template covers types hashed through an
/// ADL `kvstore_hash` hook or, failing that, by their object bytes.
template <class T, class Enable = void>
struct Hash {
    static_assert(detail::has_adl_hash<T>::value || std::has_unique_object_representations_v<T>,
                  "kvstore::Hash<T>: T cannot be hashed by its bytes (it has padding, or is a floating-point or "
                  "non-trivial type). Declare `std::uint64_t kvstore_hash(const T&)` next to T, or specialise "
                  "kvstore::Hash<T>.");

    // Byte hashing avalanches; a user's kvstore_hash might not, so the map
    // mixes its result.
    /// void for byte hashing; std::false_type when T has a `kvstore_hash` hook, so the map mixes its result.
    using is_avalanching = std::conditional_t<detail::has_adl_hash<T>::value, std::false_type, void>;

    /// kvstore_hash(value) when T has that hook, else XXH3 of the object's sizeof(T) bytes.
    std::uint64_t operator()(const T& value) const noexcept(!detail::has_adl_hash<T>::value) {
        if constexpr (detail::has_adl_hash<T>::value) {
            return static_cast<std::uint64_t>(kvstore_hash(value));
        } else {
            return hash_bytes(&value, sizeof value);
        }
    }
};

template <class Traits, class Alloc>
struct Hash<std::basic_string<char, Traits, Alloc>> : StringHash {};
template <>
struct Hash<std::string_view> : StringHash {};
template <>
struct Hash<const char*> : StringHash {};
template <>
struct Hash<char*> : StringHash {};

/// Byte buffers: vectors and strings of byte-like elements other than char.
template <class Byte, class Alloc>
struct Hash<std::vector<Byte, Alloc>, std::enable_if_t<detail::is_byte_like_v<Byte>>> {
    using is_avalanching = void;
    std::uint64_t operator()(const std::vector<Byte, Alloc>& bytes) const noexcept {
        return hash_bytes(bytes.data(), bytes.size());
    }
};
template <class Byte, class Traits, class Alloc>
struct Hash<std::basic_string<Byte, Traits, Alloc>,
            std::enable_if_t<detail::is_byte_like_v<Byte> && !std::is_same_v<Byte, char>>> {
    using is_avalanching = void;
    std::uint64_t operator()(const std::basic_string<Byte, Traits, Alloc>& bytes) const noexcept {
        return hash_bytes(bytes.data(), bytes.size());
    }
};

}  // namespace kvstore
