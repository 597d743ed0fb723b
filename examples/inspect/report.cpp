// How kvstore-inspect words what it finds: damaged places, escaped bytes, times.
#include "inspect.hpp"

#include <cstdio>
#include <ctime>

namespace inspect {

void report(Tally& tally, const std::string& where, const Finding& finding) {
    std::printf("  DAMAGE: %s at offset %llu%s%s%s: %s\n", where.c_str(),
                static_cast<unsigned long long>(finding.offset), finding.record.empty() ? "" : " (",
                finding.record.c_str(), finding.record.empty() ? "" : ")", finding.reason.c_str());
    std::printf("    -> %s\n", finding.consequence.c_str());
    ++tally.findings[static_cast<int>(finding.effect)];
}

std::string quoted(std::string_view bytes) {
    std::string out = "\"";
    for (std::size_t i = 0; i < bytes.size() && i < kShownBytes; ++i) {
        const auto byte = static_cast<unsigned char>(bytes[i]);
        if (byte == '"' || byte == '\\') {
            out += '\\';
            out += static_cast<char>(byte);
        } else if (byte >= 0x20 && byte < 0x7f) {
            out += static_cast<char>(byte);
        } else {
            char escaped[5];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            out += escaped;
        }
    }
    out += '"';
    if (bytes.size() > kShownBytes) out += "... (" + std::to_string(bytes.size()) + " bytes)";
    return out;
}

std::string format_micros(std::uint64_t micros) {
    const auto seconds = static_cast<std::time_t>(micros / 1000000);
    std::tm utc{};
    char text[64] = "?";
    if (::gmtime_r(&seconds, &utc) != nullptr) {
        char date[32];
        std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
        std::snprintf(text, sizeof text, "%s.%06lluZ", date, static_cast<unsigned long long>(micros % 1000000));
    }
    return std::string(text) + " (" + std::to_string(micros) + " us)";
}

}  // namespace inspect
