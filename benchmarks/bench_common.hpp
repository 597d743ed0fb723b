// Pieces shared by kvstore's benchmark programs: the standard key format of
// the performance guide, "user:%011llu" (16 bytes), written without snprintf,
// a small random generator, and the JSON that benchmarks/run collects.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvstore_bench {

/// "user:" and eleven digits: 16 bytes, one more than libstdc++'s short
/// string buffer, so std::string keys live on the heap as in real use.
inline constexpr std::size_t kKeyPrefixSize = 5;
inline constexpr std::size_t kKeyDigits = 11;
inline constexpr std::size_t kKeySize = kKeyPrefixSize + kKeyDigits;
/// Largest index the key format holds.
inline constexpr std::uint64_t kMaxKeyIndex = 99'999'999'999ull;

/// Formats "user:%011llu" into a reused std::string, two digits per step.
/// REQUIRES: index <= kMaxKeyIndex.
class KeyBuffer {
public:
    KeyBuffer() : key_("user:00000000000") {}

    const std::string& format(std::uint64_t index) noexcept {
        static constexpr char kPairs[] =
            "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
            "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
            "8081828384858687888990919293949596979899";
        char* end = key_.data() + kKeySize;
        for (int pair = 0; pair < 5; ++pair) {
            const auto two = static_cast<std::size_t>(index % 100);
            index /= 100;
            end -= 2;
            end[0] = kPairs[2 * two];
            end[1] = kPairs[2 * two + 1];
        }
        end[-1] = static_cast<char>('0' + index % 10);
        return key_;
    }

    const std::string& str() const noexcept { return key_; }

private:
    std::string key_;
};

/// SplitMix64: small, fast, good enough to pick keys.
class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

    /// Uniform in [0, bound) for bound < 2^32 (multiply-shift, no division).
    std::uint32_t below(std::uint32_t bound) noexcept {
        return static_cast<std::uint32_t>(((next() >> 32) * bound) >> 32);
    }

    /// Uniform in [0, 1).
    double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    std::uint64_t state_;
};

/// The median of `values`. REQUIRES: `values` is not empty.
inline double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t middle = values.size() / 2;
    return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2.0;
}

/// "a,b,,c" -> {"a", "b", "c"}: a command-line list.
inline std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::size_t begin = 0;
    while (begin <= text.size()) {
        std::size_t end = text.find(',', begin);
        if (end == std::string::npos) end = text.size();
        if (end > begin) items.push_back(text.substr(begin, end - begin));
        begin = end + 1;
    }
    return items;
}

/// JSON text for the drivers' --json output. Each function returns one
/// complete JSON value; NaN (a figure not measured) becomes null.
inline std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
            out += escaped;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

inline std::string json_number(double value) {
    if (!std::isfinite(value)) return "null";
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
}

inline std::string json_array(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : ", ") + items[i];
    return out + "]";
}

inline std::string json_numbers(const std::vector<double>& values) {
    std::vector<std::string> items;
    for (const double value : values) items.push_back(json_number(value));
    return json_array(items);
}

/// Members are (name, JSON value) pairs, written in order.
inline std::string json_object(const std::vector<std::pair<std::string, std::string>>& members) {
    std::string out = "{";
    for (std::size_t i = 0; i < members.size(); ++i)
        out += (i == 0 ? "" : ", ") + json_string(members[i].first) + ": " + members[i].second;
    return out + "}";
}

/// Writes `text` and a newline to `path`; false if it could not.
inline bool write_file(const std::string& path, const std::string& text) {
    std::FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr) return false;
    const bool written = std::fputs(text.c_str(), file) >= 0 && std::fputc('\n', file) != EOF;
    return std::fclose(file) == 0 && written;
}

}  // namespace kvstore_bench
