// How a Store keeps a value and its expiry together in its map, so that one
// lookup under one shard lock answers both "what is the value" and "is it
// still alive".
//
//   std::string values: a flag byte (1 if an expiry follows), the expiry as
//   8 little-endian bytes if it does, then the value's bytes. A string map's
//   packed record then holds the expiry in the same block as the value, and
//   a value without one costs a single byte.
//   Any other V: a struct holding the value and its expiry.
//
// An expiry is an absolute time in microseconds since the Unix epoch, the
// unit of the log and snapshot formats; 0 means none.
#pragma once

#include <kvstore/codec.hpp>
#include <kvstore/detail/log_format.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace kvstore::detail {

using Expiry = std::uint64_t;
inline constexpr Expiry kNoExpiry = 0;

template <class V>
struct Expiring {
    V value;
    Expiry expiry = kNoExpiry;
};

template <class V>
struct ExpiringValue {
    using Stored = Expiring<V>;

    template <class M>
    static Stored make(M&& value, Expiry expiry) {
        return Stored{V(std::forward<M>(value)), expiry};
    }
    static Expiry expiry(const Stored& stored) noexcept { return stored.expiry; }
    static const V& value(const Stored& stored) noexcept { return stored.value; }
    static bool decode(std::string_view bytes, Expiry expiry, Stored& out) {
        out.expiry = expiry;
        return Codec<V>::decode(bytes, out.value);
    }
};

template <>
struct ExpiringValue<std::string> {
    using Stored = std::string;

    static constexpr std::size_t kExpiryBytes = 8;
    static constexpr std::size_t kMaxPrefix = 1 + kExpiryBytes;

    /// Writes what precedes the value in the stored form (the flag, and the
    /// expiry if there is one) into `out`; returns its length.
    static std::size_t make_prefix(Expiry expiry, char (&out)[kMaxPrefix]) noexcept {
        out[0] = static_cast<char>(expiry == kNoExpiry ? 0 : 1);
        if (expiry == kNoExpiry) return 1;
        log::put_u64(&out[1], expiry);
        return kMaxPrefix;
    }

    /// Writes the stored form into `out`, reusing its storage, and returns it.
    static std::string_view make_into(std::string& out, std::string_view value, Expiry expiry) {
        char prefix[kMaxPrefix];
        const std::size_t prefix_size = make_prefix(expiry, prefix);
        out.resize(prefix_size + value.size());
        std::memcpy(&out[0], prefix, prefix_size);
        if (!value.empty()) std::memcpy(&out[prefix_size], value.data(), value.size());
        return out;
    }
    /// The stored form in a buffer of the calling thread, valid until its
    /// next call on this thread: writes then build no heap string.
    static std::string_view make(std::string_view value, Expiry expiry) {
        thread_local std::string buffer;
        return make_into(buffer, value, expiry);
    }
    static Expiry expiry(std::string_view stored) noexcept {
        return stored[0] == 0 ? kNoExpiry : log::get_u64(stored.data() + 1);
    }
    static std::string_view value(std::string_view stored) noexcept {
        return stored.substr(stored[0] == 0 ? 1 : 1 + kExpiryBytes);
    }
};

}  // namespace kvstore::detail
