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
// unit of the log and snapshot formats; 0 means none. The rest of the file
// holds the rules and the clock that every expiry is read against.
#pragma once

#include <kvstore/codec.hpp>
#include <kvstore/detail/log_format.hpp>
#include <kvstore/status.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
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

using TimePoint = std::chrono::system_clock::time_point;

// The one expiry rule: a deadline at or before `now` has passed.
constexpr bool deadline_passed(Expiry expiry, Expiry now) noexcept { return expiry != kNoExpiry && expiry <= now; }

inline std::optional<TimePoint> time_point_of(Expiry expiry) {
    if (expiry == kNoExpiry) return std::nullopt;
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds(expiry)));
}

// Before the epoch counts as already past: the earliest expiry there is.
inline Expiry expiry_of(TimePoint when) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count();
    return us > 0 ? static_cast<Expiry>(us) : 1;
}

// "Now" for expiries: the store's clock if it was given one, else the system clock.
class ExpiryClock {
public:
    explicit ExpiryClock(std::function<TimePoint()> clock) : clock_(std::move(clock)) {}

    Expiry now() const { return expiry_of(clock_ ? clock_() : std::chrono::system_clock::now()); }

    // The expiry `ttl` from now, or why there is none.
    Status expiry_after(std::chrono::milliseconds ttl, Expiry& expiry) const {
        const Expiry at = now();
        const auto ms = ttl.count();
        if (ms <= 0)
            return Status::invalid_argument("a time-to-live must be positive; got " + std::to_string(ms) + " ms");
        if (static_cast<std::uint64_t>(ms) > (std::numeric_limits<Expiry>::max() - at) / 1000)
            return Status::invalid_argument("a time-to-live of " + std::to_string(ms) +
                                            " ms ends past the last representable time");
        expiry = at + static_cast<Expiry>(ms) * 1000;
        return Status::ok();
    }

private:
    std::function<TimePoint()> clock_;
};

// Whether any key has had an expiry since the store opened: until then the
// sweeper has nothing to look for.
class ExpirySeen {
public:
    void note(Expiry expiry) noexcept {
        if (expiry != kNoExpiry && !seen_.load(std::memory_order_relaxed)) seen_.store(true, std::memory_order_relaxed);
    }
    bool any() const noexcept { return seen_.load(std::memory_order_relaxed); }
    // For an entry read while loading: notes its expiry, and returns whether it had passed at `now`.
    bool note_passed(Expiry expiry, Expiry now) noexcept {
        note(expiry);
        return deadline_passed(expiry, now);
    }

private:
    std::atomic<bool> seen_{false};
};

}  // namespace kvstore::detail
