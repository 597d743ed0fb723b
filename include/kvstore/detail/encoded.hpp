// A Store's keys and values as the bytes its log and snapshots hold: through
// their Codec, except that strings are used as they are, without a copy.
#pragma once

#include <kvstore/codec.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace kvstore::detail {

// The bytes of `value`; a non-string is encoded into `scratch`.
template <class T>
std::string_view encoded_bytes(const T& value, std::string& scratch) {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        return std::string_view(value);
    } else {
        scratch.resize(Codec<T>::size(value));
        Codec<T>::encode(value, scratch.data());
        return scratch;
    }
}

// How many bytes encoded_bytes gives, counted without encoding.
template <class T>
std::size_t encoded_size(const T& value) {
    if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        return std::string_view(value).size();
    } else {
        return Codec<T>::size(value);
    }
}

// A heterogeneous key or value (a literal for a std::string) as the stored
// type T, so that it encodes as T would.
template <class T, class Q>
decltype(auto) as_stored(const Q& given) {
    if constexpr (std::is_convertible_v<const Q&, std::string_view> && std::is_same_v<T, std::string>)
        return std::string_view(given);
    else if constexpr (std::is_same_v<Q, T>)
        return given;
    else
        return T(given);
}

}  // namespace kvstore::detail
