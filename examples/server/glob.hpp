// Redis's glob patterns, as KEYS and SCAN MATCH take them: `*` (any run of
// bytes), `?` (one byte), `[abc]`, `[a-z]`, `[^a]` (one byte of, or not of,
// a set) and `\x` (x itself). Binary-safe, unlike fnmatch: a key may hold
// NUL bytes.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>

namespace kvstore::server {

namespace detail {

// Whether the token at pattern[p] (not '*') matches `c`; sets `next` to the
// token's end. An unclosed '[' is a set running to the pattern's end, as in
// Redis.
inline bool token_matches(std::string_view pattern, std::size_t p, unsigned char c, std::size_t& next) {
    if (pattern[p] == '?') {
        next = p + 1;
        return true;
    }
    if (pattern[p] == '\\' && p + 1 < pattern.size()) {
        next = p + 2;
        return static_cast<unsigned char>(pattern[p + 1]) == c;
    }
    if (pattern[p] != '[') {
        next = p + 1;
        return static_cast<unsigned char>(pattern[p]) == c;
    }
    std::size_t i = p + 1;
    const bool negated = i < pattern.size() && pattern[i] == '^';
    if (negated) ++i;
    bool found = false;
    for (; i < pattern.size() && pattern[i] != ']'; ++i) {
        if (pattern[i] == '\\' && i + 1 < pattern.size()) {
            ++i;
            found |= static_cast<unsigned char>(pattern[i]) == c;
        } else if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
            unsigned char low = static_cast<unsigned char>(pattern[i]);
            unsigned char high = static_cast<unsigned char>(pattern[i + 2]);
            if (low > high) std::swap(low, high);
            found |= c >= low && c <= high;
            i += 2;
        } else {
            found |= static_cast<unsigned char>(pattern[i]) == c;
        }
    }
    next = i < pattern.size() ? i + 1 : i;
    return found != negated;
}

}  // namespace detail

/// Whether `text` matches the glob `pattern`. Time is O(pattern × text): on
/// a mismatch only the last `*` is retried, never every earlier one.
inline bool glob_match(std::string_view pattern, std::string_view text) {
    std::size_t p = 0, t = 0;
    std::size_t star = std::string_view::npos, star_text = 0;
    while (t < text.size()) {
        std::size_t next = 0;
        if (p < pattern.size() && pattern[p] == '*') {
            star = ++p;
            star_text = t;
        } else if (p < pattern.size() && detail::token_matches(pattern, p, static_cast<unsigned char>(text[t]), next)) {
            p = next;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star;
            t = ++star_text;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

}  // namespace kvstore::server
