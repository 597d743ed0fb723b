// kvstore-server's settings: defaults, a config file and the command line.
//
// The config file has one "name value" per line, '#' starts a comment, and
// a value may be double-quoted. The command line takes the same names as
// --name value or --name=value and overrides the file. An unknown name or a
// bad value is refused with where it was found (file and line, or the
// argument), so that a typo never runs a server with a setting ignored.
#pragma once

#include "protocol.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <istream>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kvstore::server {

enum class DurabilityMode {
    kGroup,    ///< GroupCommitWAL: a write is answered once it is synced
    kRelaxed,  ///< GroupCommitWAL's interval mode: answered at once, synced every flush_interval_ms
    kNone,     ///< no log: only SAVE/BGSAVE/COMPACT snapshots persist
};

struct ServerConfig {
    std::string bind = "127.0.0.1";
    unsigned port = 7379;
    std::string dir = "kvstore-data";
    DurabilityMode durability = DurabilityMode::kGroup;
    std::uint64_t flush_interval_ms = 100;
    std::size_t max_connections = 10000;
    std::size_t max_key_size = std::size_t{64} << 10;
    std::size_t max_value_size = std::size_t{64} << 20;
    std::size_t num_shards = 0;  // 0: the map's default
    std::uint64_t max_shard_memory = std::uint64_t{4} << 30;  // records up to 1 KiB per shard of a database
    std::size_t wal_buffer_size = std::size_t{16} << 20;
    std::uint64_t checkpoint_bytes = std::uint64_t{64} << 20;
    unsigned checkpoint_growth = 100;  // percent of the newest snapshot's size
    std::string requirepass;
    std::size_t threads = 0;  // 0: one per core
    RequestLimits limits{std::size_t{256} << 20, std::size_t{64} << 20, std::size_t{1} << 20};
    std::size_t max_reply_size = std::size_t{256} << 20;  // one MGET's reply
    std::size_t databases = 16;                            // SELECT 0 to databases - 1
};

inline const char* durability_name(DurabilityMode mode) {
    switch (mode) {
    case DurabilityMode::kGroup:
        return "group";
    case DurabilityMode::kRelaxed:
        return "relaxed";
    case DurabilityMode::kNone:
        return "none";
    }
    return "?";
}

/// Reads settings into a ServerConfig; every error names its source.
class ConfigReader {
public:
    explicit ConfigReader(ServerConfig& config) : config_(config) {
        auto size = [](std::size_t& field) {
            return [&field](const std::string& text, std::string& why) {
                std::uint64_t value = 0;
                if (!parse_size(text, value, why)) return false;
                field = static_cast<std::size_t>(value);
                return true;
            };
        };
        setters_["bind"] = [this](const std::string& text, std::string&) {
            config_.bind = text;
            return true;
        };
        setters_["port"] = [this](const std::string& text, std::string& why) {
            std::uint64_t value = 0;
            if (!parse_size(text, value, why) || value > 65535) {
                why = "expected a port number from 0 (any free port) to 65535";
                return false;
            }
            config_.port = static_cast<unsigned>(value);
            return true;
        };
        setters_["dir"] = [this](const std::string& text, std::string& why) {
            if (text.empty()) {
                why = "expected a directory";
                return false;
            }
            config_.dir = text;
            return true;
        };
        setters_["durability"] = [this](const std::string& text, std::string& why) {
            if (text == "group") {
                config_.durability = DurabilityMode::kGroup;
            } else if (text == "relaxed") {
                config_.durability = DurabilityMode::kRelaxed;
            } else if (text == "none") {
                config_.durability = DurabilityMode::kNone;
            } else {
                why = "expected group, relaxed or none";
                return false;
            }
            return true;
        };
        setters_["flush_interval_ms"] = [this](const std::string& text, std::string& why) {
            if (!parse_size(text, config_.flush_interval_ms, why) || config_.flush_interval_ms == 0) {
                why = "expected a positive number of milliseconds";
                return false;
            }
            return true;
        };
        setters_["max_connections"] = size(config_.max_connections);
        setters_["max_key_size"] = size(config_.max_key_size);
        setters_["max_value_size"] = size(config_.max_value_size);
        setters_["num_shards"] = size(config_.num_shards);
        setters_["max_shard_memory"] = [this](const std::string& text, std::string& why) {
            return parse_size(text, config_.max_shard_memory, why);
        };
        setters_["wal_buffer_size"] = size(config_.wal_buffer_size);
        setters_["checkpoint_bytes"] = [this](const std::string& text, std::string& why) {
            return parse_size(text, config_.checkpoint_bytes, why);
        };
        setters_["checkpoint_growth"] = [this](const std::string& text, std::string& why) {
            std::uint64_t percent = 0;
            if (!parse_size(text, percent, why) || percent > kMaxGrowthPercent) {
                why = "expected a percentage from 0 to " + std::to_string(kMaxGrowthPercent);
                return false;
            }
            config_.checkpoint_growth = static_cast<unsigned>(percent);
            return true;
        };
        setters_["requirepass"] = [this](const std::string& text, std::string&) {
            config_.requirepass = text;
            return true;
        };
        setters_["threads"] = size(config_.threads);
        setters_["max_query_buffer"] = size(config_.limits.max_query_buffer);
        setters_["max_bulk_length"] = size(config_.limits.max_bulk_length);
        setters_["max_arguments"] = size(config_.limits.max_arguments);
        setters_["max_reply_size"] = size(config_.max_reply_size);
        setters_["databases"] = [this](const std::string& text, std::string& why) {
            std::uint64_t count = 0;
            if (!parse_size(text, count, why) || count == 0 || count > kMaxDatabases) {
                why = "expected a number of databases from 1 to " + std::to_string(kMaxDatabases);
                return false;
            }
            config_.databases = static_cast<std::size_t>(count);
            return true;
        };
    }

    /// The names a file or the command line may set.
    std::vector<std::string> names() const {
        std::vector<std::string> all;
        for (const auto& [name, setter] : setters_) all.push_back(name);
        return all;
    }

    /// Sets `name` from `text`; `where` says where they came from.
    bool set(const std::string& name, const std::string& text, const std::string& where, std::string& error) {
        const auto setter = setters_.find(name);
        if (setter == setters_.end()) {
            error = where + ": unknown option '" + name + "'";
            return false;
        }
        std::string why;
        if (!setter->second(text, why)) {
            error = where + ": " + name + " '" + text + "': " + why;
            return false;
        }
        return true;
    }

    bool read_file(const std::string& path, std::string& error) {
        std::ifstream in(path);
        if (!in) {
            error = path + ": cannot open the config file";
            return false;
        }
        return read_lines(in, path, error);
    }

    /// Reads config-file lines from `in`; errors name `source` and the line.
    bool read_lines(std::istream& in, const std::string& source, std::string& error) {
        std::string line;
        for (int number = 1; std::getline(in, line); ++number) {
            const std::string where = source + ":" + std::to_string(number);
            if (const std::size_t hash = line.find('#'); hash != std::string::npos && !in_quotes(line, hash))
                line.erase(hash);
            std::vector<std::string> words;
            if (!split_arguments(line, words, error)) {
                error = where + ": " + error;
                return false;
            }
            if (words.empty()) continue;
            if (words.size() != 2) {
                error = where + ": expected 'name value', got " + std::to_string(words.size()) + " words";
                return false;
            }
            if (!set(words[0], words[1], where, error)) return false;
        }
        return true;
    }

    /// Reads --config FILE first, then every other --name value over it.
    bool read_arguments(int argc, char** argv, std::string& error) {
        std::vector<std::pair<std::string, std::string>> settings;
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg.rfind("--", 0) != 0) {
                error = "argument " + std::to_string(i) + " '" + arg + "': expected --name value";
                return false;
            }
            arg.erase(0, 2);
            std::string value;
            if (const std::size_t equals = arg.find('='); equals != std::string::npos) {
                value = arg.substr(equals + 1);
                arg.erase(equals);
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                error = "argument --" + arg + ": missing its value";
                return false;
            }
            settings.emplace_back(arg, value);
        }
        for (const auto& [name, value] : settings) {
            if (name == "config" && !read_file(value, error)) return false;
        }
        for (const auto& [name, value] : settings) {
            if (name != "config" && !set(name, value, "--" + name, error)) return false;
        }
        return true;
    }

    // Each database is a store with its own files and threads.
    static constexpr std::uint64_t kMaxDatabases = 1024;
    // A snapshot may be rewritten after the log grows by 1000 times its size at most.
    static constexpr std::uint64_t kMaxGrowthPercent = 100'000;

    /// Parses a byte count or number: digits with an optional k, m or g
    /// (KiB, MiB, GiB; "kb", "mb", "gb" too, as Redis writes them).
    static bool parse_size(const std::string& text, std::uint64_t& value, std::string& why) {
        std::size_t digits = 0;
        while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
        std::string unit = text.substr(digits);
        for (char& c : unit) c = static_cast<char>(c | 0x20);
        long long number = 0;
        const int shift = unit.empty()                    ? 0
                          : (unit == "k" || unit == "kb") ? 10
                          : (unit == "m" || unit == "mb") ? 20
                          : (unit == "g" || unit == "gb") ? 30
                                                          : -1;
        if (digits == 0 || shift < 0 || !parse_integer(std::string_view(text).substr(0, digits), number) ||
            static_cast<std::uint64_t>(number) > (UINT64_MAX >> shift)) {
            why = "expected a non-negative number, optionally with k, m or g";
            return false;
        }
        value = static_cast<std::uint64_t>(number) << shift;
        return true;
    }

private:
    static bool in_quotes(const std::string& line, std::size_t pos) {
        bool quoted = false;
        for (std::size_t i = 0; i < pos; ++i) {
            if (line[i] == '\\' && quoted) {
                ++i;
            } else if (line[i] == '"') {
                quoted = !quoted;
            }
        }
        return quoted;
    }

    ServerConfig& config_;
    std::map<std::string, std::function<bool(const std::string&, std::string&)>> setters_;
};

}  // namespace kvstore::server
