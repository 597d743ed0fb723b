// The commands kvstore-server runs against its Store: the Redis subset that
// redis-cli and redis-benchmark need, and the plain protocol's commands.
//
// Every write goes through one Store call, so it is atomic and logged as
// one record: INCR logs the resulting number, SET NX/XX are the store's
// conditional puts, MSET is one WriteBatch.
#pragma once

#include "config.hpp"
#include "glob.hpp"
#include "protocol.hpp"

#include <kvstore/store.hpp>
#include <kvstore/version.hpp>

#include <fnmatch.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kvstore::server {

/// What one connection has said so far.
struct Session {
    bool authenticated = false;
    bool close_after_reply = false;
};

/// The server's figures and hooks that commands report or use.
struct ServerState {
    explicit ServerState(const ServerConfig& server_config) : config(server_config) {}
    const ServerConfig& config;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::atomic<std::size_t> connected{0};
    std::atomic<std::uint64_t> connections_total{0};
    std::atomic<std::uint64_t> rejected_connections{0};
    std::atomic<std::uint64_t> commands{0};
    std::atomic<std::uint64_t> protocol_errors{0};
    /// Starts a checkpoint on another thread; false if one is running.
    std::function<bool()> start_background_save;
    /// Stops the server as SIGTERM does.
    std::function<void()> shut_down;
};

template <class StoreType>
class CommandExecutor {
public:
    CommandExecutor(StoreType& store, ServerState& state) : store_(store), state_(state) {
        table_ = {
            {"GET", {2, 2, &CommandExecutor::get}},
            {"SET", {3, -1, &CommandExecutor::set}},
            {"PING", {1, 2, &CommandExecutor::ping}},
            {"ECHO", {2, 2, &CommandExecutor::echo}},
            {"DEL", {2, -1, &CommandExecutor::del}},
            {"EXISTS", {2, -1, &CommandExecutor::exists}},
            {"MSET", {3, -1, &CommandExecutor::mset}},
            {"MGET", {2, -1, &CommandExecutor::mget}},
            {"INCR", {2, 2, &CommandExecutor::incr}},
            {"DECR", {2, 2, &CommandExecutor::incr}},
            {"INCRBY", {3, 3, &CommandExecutor::incr}},
            {"DECRBY", {3, 3, &CommandExecutor::incr}},
            {"EXPIRE", {3, 3, &CommandExecutor::expire}},
            {"PEXPIRE", {3, 3, &CommandExecutor::expire}},
            {"TTL", {2, 2, &CommandExecutor::ttl}},
            {"PTTL", {2, 2, &CommandExecutor::ttl}},
            {"PERSIST", {2, 2, &CommandExecutor::persist}},
            {"EXPIREAT", {3, 3, &CommandExecutor::expire}},
            {"PEXPIREAT", {3, 3, &CommandExecutor::expire}},
            {"EXPIRETIME", {2, 2, &CommandExecutor::expire_time}},
            {"PEXPIRETIME", {2, 2, &CommandExecutor::expire_time}},
            {"SETNX", {3, 3, &CommandExecutor::setnx}},
            {"SETEX", {4, 4, &CommandExecutor::setex}},
            {"PSETEX", {4, 4, &CommandExecutor::setex}},
            {"STRLEN", {2, 2, &CommandExecutor::strlen}},
            {"APPEND", {3, 3, &CommandExecutor::append}},
            {"GETRANGE", {4, 4, &CommandExecutor::getrange}},
            {"SUBSTR", {4, 4, &CommandExecutor::getrange}},
            {"SETRANGE", {4, 4, &CommandExecutor::setrange}},
            {"INCRBYFLOAT", {3, 3, &CommandExecutor::incrbyfloat}},
            {"TYPE", {2, 2, &CommandExecutor::type}},
            {"UNLINK", {2, -1, &CommandExecutor::del}},
            {"TOUCH", {2, -1, &CommandExecutor::exists}},
            {"KEYS", {2, 2, &CommandExecutor::keys}},
            {"SCAN", {2, -1, &CommandExecutor::scan}},
            {"TIME", {1, 1, &CommandExecutor::time}},
            {"DBSIZE", {1, 1, &CommandExecutor::size}},
            {"FLUSHDB", {1, 2, &CommandExecutor::flush}},
            {"FLUSHALL", {1, 2, &CommandExecutor::flush}},
            {"INFO", {1, 2, &CommandExecutor::info}},
            {"COMMAND", {1, -1, &CommandExecutor::command}},
            {"CONFIG", {2, -1, &CommandExecutor::config}},
            {"SAVE", {1, 1, &CommandExecutor::save}},
            {"BGSAVE", {1, 2, &CommandExecutor::bgsave}},
            {"QUIT", {1, 1, &CommandExecutor::quit}},
            {"AUTH", {2, 3, &CommandExecutor::auth}},
            {"SELECT", {2, 2, &CommandExecutor::select}},
            {"SHUTDOWN", {1, 2, &CommandExecutor::shutdown}},
            // The plain protocol's names.
            {"PUT", {3, 3, &CommandExecutor::set}},
            {"DELETE", {2, 2, &CommandExecutor::del}},
            {"SIZE", {1, 1, &CommandExecutor::size}},
            {"FLUSH", {1, 1, &CommandExecutor::flush}},
            {"STATS", {1, 1, &CommandExecutor::info}},
            {"COMPACT", {1, 1, &CommandExecutor::save}},
        };
    }

    /// Runs one request and appends its reply.
    void execute(const Request& request, Session& session, Reply& reply) {
        state_.commands.fetch_add(1, std::memory_order_relaxed);
        name_.assign(request.args[0].data(), request.args[0].size());
        std::transform(name_.begin(), name_.end(), name_.begin(), ascii_upper);
        const auto found = table_.find(name_);
        if (found == table_.end()) return unknown(request, reply);
        const Command& command = found->second;
        const auto argc = static_cast<long>(request.args.size());
        if (argc < command.min_args || (command.max_args >= 0 && argc > command.max_args))
            return reply.error("ERR wrong number of arguments for '" + lower(name_) + "' command");
        if (!session.authenticated && !state_.config.requirepass.empty() && name_ != "AUTH" && name_ != "QUIT")
            return reply.error("NOAUTH Authentication required.");
        (this->*command.run)(request.args, session, reply);
    }

private:
    using Args = std::vector<std::string_view>;
    struct Command {
        long min_args;
        long max_args;  // -1: any number
        void (CommandExecutor::*run)(const Args&, Session&, Reply&);
    };

    static std::string lower(std::string text) {
        for (char& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        return text;
    }
    bool is(std::string_view arg, const char* upper) const {
        return std::equal(arg.begin(), arg.end(), upper, upper + std::char_traits<char>::length(upper),
                          [](char a, char b) { return ascii_upper(a) == b; });
    }

    void unknown(const Request& request, Reply& reply) {
        std::string message =
            "ERR unknown command '" + std::string(request.args[0].substr(0, 128)) + "', with args beginning with: ";
        for (std::size_t i = 1; i < request.args.size() && message.size() < 512; ++i)
            message += "'" + std::string(request.args[i].substr(0, 128)) + "' ";
        reply.error(message);
    }

    // A store error: what the store said, Redis-style.
    static void failed(const Status& status, Reply& reply) { reply.error("ERR " + status.to_string()); }

    void get(const Args& args, Session&, Reply& reply) { reply_value(args[1], reply); }

    void reply_value(std::string_view key, Reply& reply) {
        if (store_.find(key, value_)) {
            reply.bulk(value_);
        } else {
            reply.null();
        }
    }

    void set(const Args& args, Session&, Reply& reply) {
        enum { kAlways, kIfAbsent, kIfPresent } condition = kAlways;
        std::optional<std::chrono::milliseconds> ttl;
        for (std::size_t i = 3; i < args.size(); ++i) {
            const bool has_next = i + 1 < args.size();
            if (is(args[i], "NX") && condition == kAlways) {
                condition = kIfAbsent;
            } else if (is(args[i], "XX") && condition == kAlways) {
                condition = kIfPresent;
            } else if ((is(args[i], "EX") || is(args[i], "PX")) && has_next && !ttl) {
                long long amount = 0;
                if (!parse_integer(args[i + 1], amount))
                    return reply.error("ERR value is not an integer or out of range");
                if (amount <= 0 || (is(args[i], "EX") && amount > INT64_MAX / 1000))
                    return reply.error("ERR invalid expire time in 'set' command");
                ttl = std::chrono::milliseconds(is(args[i], "EX") ? amount * 1000 : amount);
                ++i;
            } else {
                return reply.error("ERR syntax error");
            }
        }
        bool done = true;
        Status status;
        if (condition == kIfAbsent) {
            status =
                ttl ? store_.put_if_absent(args[1], args[2], done, *ttl) : store_.put_if_absent(args[1], args[2], done);
        } else if (condition == kIfPresent) {
            status = ttl ? store_.put_if_present(args[1], args[2], done, *ttl)
                         : store_.put_if_present(args[1], args[2], done);
        } else {
            status = ttl ? store_.put(args[1], args[2], *ttl) : store_.put(args[1], args[2]);
        }
        if (!status) return failed(status, reply);
        if (done) {
            reply.status("OK");
        } else {
            reply.null();
        }
    }

    void ping(const Args& args, Session&, Reply& reply) {
        if (args.size() == 2) return reply.bulk(args[1]);
        reply.status("PONG");
    }

    void echo(const Args& args, Session&, Reply& reply) { reply.bulk(args[1]); }

    void del(const Args& args, Session&, Reply& reply) {
        long long removed = 0;
        for (std::size_t i = 1; i < args.size(); ++i) {
            bool erased = false;
            if (Status status = store_.erase(args[i], &erased); !status) return failed(status, reply);
            removed += erased ? 1 : 0;
        }
        if (!reply.plain()) return reply.integer(removed);
        if (removed > 0) return reply.status("DELETED");
        reply.null();
    }

    void exists(const Args& args, Session&, Reply& reply) {
        long long present = 0;
        for (std::size_t i = 1; i < args.size(); ++i) present += store_.contains(args[i]) ? 1 : 0;
        reply.integer(present);
    }

    void mset(const Args& args, Session&, Reply& reply) {
        if (args.size() % 2 != 1) return reply.error("ERR wrong number of arguments for 'mset' command");
        WriteBatch<std::string, std::string> batch;
        for (std::size_t i = 1; i < args.size(); i += 2) batch.put(std::string(args[i]), std::string(args[i + 1]));
        if (Status status = store_.write(batch); !status) return failed(status, reply);
        reply.status("OK");
    }

    // One MGET may name a large value many times over: its reply is given
    // up past max_reply_size, as a request is past max_query_buffer.
    void mget(const Args& args, Session&, Reply& reply) {
        const std::size_t start = reply.size();
        const std::size_t limit = state_.config.max_reply_size;
        reply.array(args.size() - 1);
        for (std::size_t i = 1; i < args.size(); ++i) {
            reply_value(args[i], reply);
            if (reply.size() - start > limit) {
                reply.discard_from(start);
                return reply.error("ERR the reply to MGET would exceed max_reply_size (" + std::to_string(limit) +
                                   " bytes)");
            }
        }
    }

    // An atomic read-modify-write of one key: change(current, result) gets
    // the value (nullptr when the key is absent) and writes the new one into
    // result, or returns an error reply's text to change nothing. A present
    // key keeps its expiry (Store::update); an absent one is created by
    // put_if_absent, and the whole is retried if another writer created or
    // removed the key in between. False when an error was replied.
    template <class Change>
    bool read_modify_write(std::string_view key, Change&& change, Reply& reply) {
        struct Refused {
            std::string error;
        };
        try {
            while (true) {
                bool found = false;
                Status status = store_.update(
                    key,
                    [&](std::string& value) {
                        std::string result;
                        if (std::string error = change(&value, result); !error.empty()) throw Refused{std::move(error)};
                        value = std::move(result);
                    },
                    found);
                if (!status) {
                    failed(status, reply);
                    return false;
                }
                if (found) return true;
                std::string created;
                if (std::string error = change(nullptr, created); !error.empty()) {
                    reply.error(error);
                    return false;
                }
                bool inserted = false;
                if (Status put = store_.put_if_absent(key, created, inserted); !put) {
                    failed(put, reply);
                    return false;
                }
                if (inserted) return true;
            }
        } catch (const Refused& refused) {
            reply.error(refused.error);
            return false;
        }
    }

    // INCR, DECR, INCRBY, DECRBY: the number is parsed and stored as text,
    // and the log holds the result, never the increment.
    void incr(const Args& args, Session&, Reply& reply) {
        long long delta = 1;
        if (args.size() == 3 && !parse_integer(args[2], delta))
            return reply.error("ERR value is not an integer or out of range");
        if (name_[0] == 'D') {
            if (delta == INT64_MIN) return reply.error("ERR decrement would overflow");
            delta = -delta;
        }
        long long result = 0;
        const bool done = read_modify_write(
            args[1],
            [&](const std::string* current, std::string& out) -> std::string {
                long long value = 0;
                if (current != nullptr && !parse_integer(*current, value))
                    return "ERR value is not an integer or out of range";
                if ((delta > 0 && value > INT64_MAX - delta) || (delta < 0 && value < INT64_MIN - delta))
                    return "ERR increment or decrement would overflow";
                result = value + delta;
                out = std::to_string(result);
                return {};
            },
            reply);
        if (done) reply.integer(result);
    }

    // Redis's float syntax for INCRBYFLOAT: what strtold reads whole, with
    // no space around it, no NaN and no overflow.
    static bool parse_float(std::string_view text, long double& value) {
        if (text.empty() || text.size() > 5000 || std::isspace(static_cast<unsigned char>(text.front())) ||
            std::isspace(static_cast<unsigned char>(text.back())))
            return false;
        const std::string copy(text);
        char* end = nullptr;
        errno = 0;
        value = std::strtold(copy.c_str(), &end);
        return end == copy.c_str() + copy.size() && errno != ERANGE && !std::isnan(value);
    }

    // As Redis prints INCRBYFLOAT's result: 17 decimals, trailing zeros cut.
    static std::string format_float(long double value) {
        char buffer[5200];
        const int length = std::snprintf(buffer, sizeof buffer, "%.17Lf", value);
        std::string text(buffer, static_cast<std::size_t>(std::clamp(length, 0, static_cast<int>(sizeof buffer) - 1)));
        if (text.find('.') != std::string::npos) {
            while (text.back() == '0') text.pop_back();
            if (text.back() == '.') text.pop_back();
        }
        if (text == "-0") text = "0";
        return text;
    }

    void incrbyfloat(const Args& args, Session&, Reply& reply) {
        long double delta = 0;
        if (!parse_float(args[2], delta)) return reply.error("ERR value is not a valid float");
        std::string result;
        const bool done = read_modify_write(
            args[1],
            [&](const std::string* current, std::string& out) -> std::string {
                long double value = 0;
                if (current != nullptr && !parse_float(*current, value)) return "ERR value is not a valid float";
                value += delta;
                if (std::isnan(value) || std::isinf(value)) return "ERR increment would produce NaN or Infinity";
                out = result = format_float(value);
                return {};
            },
            reply);
        if (done) reply.bulk(result);
    }

    void append(const Args& args, Session&, Reply& reply) {
        std::size_t length = 0;
        const bool done = read_modify_write(
            args[1],
            [&](const std::string* current, std::string& out) -> std::string {
                if (current != nullptr) out = *current;
                out += args[2];
                length = out.size();
                return {};
            },
            reply);
        if (done) reply.integer(static_cast<long long>(length));
    }

    long long length_of(std::string_view key) {
        return store_.find(key, value_) ? static_cast<long long>(value_.size()) : 0;
    }

    void strlen(const Args& args, Session&, Reply& reply) { reply.integer(length_of(args[1])); }

    // GETRANGE key start end, with Redis's index rules: negative counts from
    // the end, both ends clamped, an empty reply when start passes end.
    void getrange(const Args& args, Session&, Reply& reply) {
        long long start = 0, end = 0;
        if (!parse_integer(args[2], start) || !parse_integer(args[3], end))
            return reply.error("ERR value is not an integer or out of range");
        if (!store_.find(args[1], value_)) value_.clear();
        const auto length = static_cast<long long>(value_.size());
        if (start < 0 && end < 0 && start > end) return reply.bulk("");
        if (start < 0) start = std::max(0LL, length + start);
        if (end < 0) end = std::max(0LL, length + end);
        end = std::min(end, length - 1);
        if (length == 0 || start > end) return reply.bulk("");
        reply.bulk(std::string_view(value_).substr(static_cast<std::size_t>(start),
                                                   static_cast<std::size_t>(end - start + 1)));
    }

    // SETRANGE key offset value: writes value at offset, zero-padding a
    // shorter string; an empty value creates nothing and changes nothing.
    void setrange(const Args& args, Session&, Reply& reply) {
        long long offset = 0;
        if (!parse_integer(args[2], offset)) return reply.error("ERR value is not an integer or out of range");
        if (offset < 0) return reply.error("ERR offset is out of range");
        const std::string_view piece = args[3];
        if (piece.empty()) return reply.integer(length_of(args[1]));
        // Checked before anything is allocated: an offset can ask for 2^63 bytes.
        if (static_cast<unsigned long long>(offset) + piece.size() > state_.config.max_value_size)
            return reply.error("ERR string exceeds maximum allowed size (max_value_size " +
                               std::to_string(state_.config.max_value_size) + ")");
        const auto at = static_cast<std::size_t>(offset);
        std::size_t length = 0;
        const bool done = read_modify_write(
            args[1],
            [&](const std::string* current, std::string& out) -> std::string {
                if (current != nullptr) out = *current;
                if (out.size() < at + piece.size()) out.resize(at + piece.size(), '\0');
                out.replace(at, piece.size(), piece);
                length = out.size();
                return {};
            },
            reply);
        if (done) reply.integer(static_cast<long long>(length));
    }

    void setnx(const Args& args, Session&, Reply& reply) {
        bool inserted = false;
        if (Status status = store_.put_if_absent(args[1], args[2], inserted); !status) return failed(status, reply);
        reply.integer(inserted ? 1 : 0);
    }

    // SETEX key seconds value, PSETEX key milliseconds value.
    void setex(const Args& args, Session&, Reply& reply) {
        long long amount = 0;
        if (!parse_integer(args[2], amount)) return reply.error("ERR value is not an integer or out of range");
        const bool seconds = name_ == "SETEX";
        if (amount <= 0 || (seconds && amount > INT64_MAX / 1000))
            return reply.error("ERR invalid expire time in '" + lower(name_) + "' command");
        const std::chrono::milliseconds ttl(seconds ? amount * 1000 : amount);
        if (Status status = store_.put(args[1], args[3], ttl); !status) return failed(status, reply);
        reply.status("OK");
    }

    void type(const Args& args, Session&, Reply& reply) { reply.status(store_.contains(args[1]) ? "string" : "none"); }

    static long long unix_now_ms() {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    // EXPIRE and PEXPIRE take a time to live, EXPIREAT and PEXPIREAT a
    // Unix time.
    void expire(const Args& args, Session&, Reply& reply) {
        long long amount = 0;
        if (!parse_integer(args[2], amount)) return reply.error("ERR value is not an integer or out of range");
        const bool seconds = name_ == "EXPIRE" || name_ == "EXPIREAT";
        if (seconds && (amount > INT64_MAX / 1000 || amount < INT64_MIN / 1000))
            return reply.error("ERR invalid expire time in '" + lower(name_) + "' command");
        if (seconds) amount *= 1000;
        if (name_.back() == 'T') {
            const long long now = unix_now_ms();
            amount = amount < INT64_MIN + now ? 0 : amount - now;
        }
        bool found = false;
        Status status;
        if (amount <= 0) {
            // As in Redis, a deadline already past deletes the key.
            status = store_.erase(args[1], &found);
        } else {
            status = store_.expire(args[1], std::chrono::milliseconds(amount), found);
        }
        if (!status) return failed(status, reply);
        reply.integer(found ? 1 : 0);
    }

    void ttl(const Args& args, Session&, Reply& reply) {
        std::optional<typename StoreType::TimePoint> when;
        if (!store_.expires_at(args[1], when)) return reply.integer(-2);
        if (!when) return reply.integer(-1);
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*when - std::chrono::system_clock::now());
        const long long ms = std::max<long long>(0, left.count());
        reply.integer(name_ == "PTTL" ? ms : (ms + 500) / 1000);
    }

    // EXPIRETIME, PEXPIRETIME: the deadline as a Unix time.
    void expire_time(const Args& args, Session&, Reply& reply) {
        std::optional<typename StoreType::TimePoint> when;
        if (!store_.expires_at(args[1], when)) return reply.integer(-2);
        if (!when) return reply.integer(-1);
        const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(when->time_since_epoch()).count();
        reply.integer(name_ == "PEXPIRETIME" ? ms : ms / 1000);
    }

    void time(const Args&, Session&, Reply& reply) {
        const auto micros =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        reply.array(2);
        reply.bulk(std::to_string(micros / 1000000));
        reply.bulk(std::to_string(micros % 1000000));
    }

    // Whether the keys gathered for KEYS or SCAN fit in max_reply_size; if
    // not, says so.
    bool fits_reply(const std::vector<std::string>& keys, Reply& reply) {
        std::size_t bytes = 0;
        for (const std::string& key : keys) bytes += key.size() + 16;
        if (bytes <= state_.config.max_reply_size) return true;
        reply.error("ERR the reply to " + name_ + " would exceed max_reply_size (" +
                    std::to_string(state_.config.max_reply_size) + " bytes)" +
                    (name_ == "KEYS" ? "; SCAN returns the keys in steps" : "; a smaller COUNT makes smaller steps"));
        return false;
    }

    void reply_keys(const std::vector<std::string>& keys, Reply& reply) {
        reply.array(keys.size());
        for (const std::string& key : keys) reply.bulk(key);
    }

    void keys(const Args& args, Session&, Reply& reply) {
        std::vector<std::string> found;
        store_.for_each([&](std::string_view key, std::string_view) {
            if (glob_match(args[1], key)) found.emplace_back(key);
        });
        if (fits_reply(found, reply)) reply_keys(found, reply);
    }

    // SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor is
    // the next shard to visit: a call visits whole shards until it has seen
    // COUNT keys, so a key present for the whole scan is returned exactly
    // once, and no lock is held between calls.
    void scan(const Args& args, Session&, Reply& reply) {
        unsigned long long cursor = 0;
        const std::string_view text = args[1];
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), cursor);
        if (text.empty() || error != std::errc() || end != text.data() + text.size())
            return reply.error("ERR invalid cursor");
        std::optional<std::string_view> pattern;
        long long count = 10;
        bool strings = true;
        for (std::size_t i = 2; i < args.size(); i += 2) {
            if (i + 1 >= args.size()) return reply.error("ERR syntax error");
            if (is(args[i], "MATCH")) {
                pattern = args[i + 1];
            } else if (is(args[i], "COUNT")) {
                if (!parse_integer(args[i + 1], count))
                    return reply.error("ERR value is not an integer or out of range");
                if (count < 1) return reply.error("ERR syntax error");
            } else if (is(args[i], "TYPE")) {
                strings = is(args[i + 1], "STRING");
            } else {
                return reply.error("ERR syntax error");
            }
        }
        std::vector<std::string> found;
        long long seen = 0;
        std::size_t shard = static_cast<std::size_t>(std::min<unsigned long long>(cursor, store_.shard_count()));
        while (shard < store_.shard_count() && seen < count) {
            store_.for_each_in_shard(shard++, [&](std::string_view key, std::string_view) {
                ++seen;
                if (strings && (!pattern || glob_match(*pattern, key))) found.emplace_back(key);
            });
        }
        if (!fits_reply(found, reply)) return;
        reply.array(2);
        reply.bulk(std::to_string(shard < store_.shard_count() ? shard : 0));
        reply_keys(found, reply);
    }

    void persist(const Args& args, Session&, Reply& reply) {
        bool had_expiry = false;
        if (Status status = store_.persist(args[1], had_expiry); !status) return failed(status, reply);
        reply.integer(had_expiry ? 1 : 0);
    }

    void size(const Args&, Session&, Reply& reply) { reply.integer(static_cast<long long>(store_.size())); }

    void flush(const Args& args, Session&, Reply& reply) {
        if (args.size() == 2 && !is(args[1], "SYNC") && !is(args[1], "ASYNC")) return reply.error("ERR syntax error");
        if (Status status = store_.clear(); !status) return failed(status, reply);
        reply.status("OK");
    }

    void info(const Args&, Session&, Reply& reply) {
        const StoreStats stats = store_.stats();
        const auto uptime =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - state_.started);
        const auto line = [](std::string& out, const char* name, auto value) {
            out += name;
            out += ':';
            if constexpr (std::is_convertible_v<decltype(value), std::string_view>) {
                out += value;
            } else {
                out += std::to_string(value);
            }
            out += "\r\n";
        };
        std::string text = "# Server\r\n";
        line(text, "redis_version", "7.0.0");
        line(text, "kvstore_version",
             std::to_string(KVSTORE_VERSION_MAJOR) + "." + std::to_string(KVSTORE_VERSION_MINOR) + "." +
                 std::to_string(KVSTORE_VERSION_PATCH));
        line(text, "tcp_port", state_.config.port);
        line(text, "uptime_in_seconds", static_cast<long long>(uptime.count()));
        line(text, "durability", durability_name(state_.config.durability));
        text += "\r\n# Clients\r\n";
        line(text, "connected_clients", state_.connected.load());
        line(text, "maxclients", state_.config.max_connections);
        text += "\r\n# Stats\r\n";
        line(text, "total_connections_received", state_.connections_total.load());
        line(text, "total_commands_processed", state_.commands.load());
        line(text, "rejected_connections", state_.rejected_connections.load());
        line(text, "protocol_errors", state_.protocol_errors.load());
        line(text, "expired_keys", stats.expired_keys);
        text += "\r\n# Store\r\n";
        line(text, "items", stats.items);
        line(text, "shards", stats.shards);
        line(text, "load_factor", std::to_string(stats.load_factor));
        line(text, "memory_bytes", stats.memory_bytes);
        line(text, "checkpoint_bytes", state_.config.checkpoint_bytes);
        line(text, "checkpoint_growth", state_.config.checkpoint_growth);
        line(text, "snapshot_bytes", stats.snapshot_bytes);
        line(text, "checkpoints", stats.checkpoints);
        line(text, "checkpoint_error", stats.checkpoint_error);
        line(text, "wal_records", stats.log.records);
        line(text, "wal_bytes", stats.log.bytes);
        line(text, "wal_segments", stats.log.segments);
        line(text, "wal_syncs", stats.log.syncs);
        line(text, "wal_average_group", std::to_string(stats.log.average_group));
        line(text, "wal_largest_group", stats.log.largest_group);
        line(text, "wal_average_sync_micros", std::to_string(stats.log.average_sync_micros));
        line(text, "wal_max_sync_micros", std::to_string(stats.log.max_sync_micros));
        line(text, "lsn", stats.log.last_lsn);
        line(text, "durable_lsn", stats.log.durable_lsn);
        line(text, "recovered_records", stats.recovery.log.records);
        line(text, "recovered_snapshot_entries", stats.recovery.snapshot_entries);
        line(text, "recovery_seconds", std::to_string(stats.recovery.log.seconds));
        text += "\r\n# Keyspace\r\n";
        // Redis adds expires= and avg_ttl=; the store keeps no count of
        // keys with a deadline, and a made-up 0 would mislead a monitor.
        text += "db0:keys=" + std::to_string(stats.items) + "\r\n";
        if (reply.plain()) {
            // Text lines end in "\n" alone.
            text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
        }
        reply.text(text);
    }

    // Enough of COMMAND for redis-cli: COMMAND DOCS and COMMAND COUNT, and a
    // name list for the rest.
    void command(const Args& args, Session&, Reply& reply) {
        if (args.size() >= 2 && is(args[1], "COUNT")) return reply.integer(static_cast<long long>(table_.size()));
        if (args.size() >= 2 && is(args[1], "DOCS")) return reply.array(0);
        reply.array(table_.size());
        for (const auto& [name, command] : table_) {
            reply.array(6);
            reply.bulk(lower(name));
            reply.integer(command.max_args == command.min_args ? command.min_args : -command.min_args);
            reply.array(0);
            reply.integer(command.min_args > 1 ? 1 : 0);
            reply.integer(command.min_args > 1 ? 1 : 0);
            reply.integer(command.min_args > 1 ? 1 : 0);
        }
    }

    // CONFIG GET: what redis-benchmark asks (save, appendonly) and the
    // server's own settings; CONFIG SET is refused.
    void config(const Args& args, Session&, Reply& reply) {
        if (!is(args[1], "GET") || args.size() != 3) return reply.error("ERR CONFIG supports only GET <pattern> here");
        const ServerConfig& c = state_.config;
        const std::pair<const char*, std::string> settings[] = {
            {"save", ""},
            {"appendonly", c.durability == DurabilityMode::kNone ? "no" : "yes"},
            {"appendfsync", c.durability == DurabilityMode::kGroup ? "always" : "everysec"},
            {"port", std::to_string(c.port)},
            {"bind", c.bind},
            {"dir", c.dir},
            {"durability", durability_name(c.durability)},
            {"maxclients", std::to_string(c.max_connections)},
            {"max_key_size", std::to_string(c.max_key_size)},
            {"max_value_size", std::to_string(c.max_value_size)},
            {"proto-max-bulk-len", std::to_string(c.limits.max_bulk_length)},
            {"client-query-buffer-limit", std::to_string(c.limits.max_query_buffer)},
            {"max_reply_size", std::to_string(c.max_reply_size)},
            {"databases", "1"},
        };
        const std::string pattern(args[2]);
        std::vector<const std::pair<const char*, std::string>*> matches;
        for (const auto& setting : settings) {
            if (fnmatch(pattern.c_str(), setting.first, FNM_CASEFOLD) == 0) matches.push_back(&setting);
        }
        reply.array(matches.size() * 2);
        for (const auto* setting : matches) {
            reply.bulk(setting->first);
            reply.bulk(setting->second);
        }
    }

    void save(const Args&, Session&, Reply& reply) {
        if (Status status = store_.checkpoint(); !status) return failed(status, reply);
        reply.status("OK");
    }

    void bgsave(const Args& args, Session&, Reply& reply) {
        if (args.size() == 2 && !is(args[1], "SCHEDULE")) return reply.error("ERR syntax error");
        if (!state_.start_background_save()) return reply.error("ERR Background save already in progress");
        reply.status("Background saving started");
    }

    void quit(const Args&, Session& session, Reply& reply) {
        session.close_after_reply = true;
        reply.status("OK");
    }

    // SHUTDOWN [NOSAVE|SAVE]: stops the server gracefully (SAVE checkpoints
    // first); as in Redis, the connection closes without a reply.
    void shutdown(const Args& args, Session& session, Reply& reply) {
        if (args.size() == 2 && !is(args[1], "NOSAVE") && !is(args[1], "SAVE")) return reply.error("ERR syntax error");
        if (args.size() == 2 && is(args[1], "SAVE")) {
            if (Status status = store_.checkpoint(); !status) return failed(status, reply);
        }
        session.close_after_reply = true;
        state_.shut_down();
    }

    void auth(const Args& args, Session& session, Reply& reply) {
        if (state_.config.requirepass.empty())
            return reply.error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure "
                "your configuration is correct?");
        const std::string_view user = args.size() == 3 ? args[1] : "default";
        const std::string_view password = args.back();
        session.authenticated = user == "default" && password == state_.config.requirepass;
        if (!session.authenticated) return reply.error("WRONGPASS invalid username-password pair or user is disabled.");
        reply.status("OK");
    }

    void select(const Args& args, Session&, Reply& reply) {
        if (args[1] != "0") return reply.error("ERR DB index is out of range");
        reply.status("OK");
    }

    StoreType& store_;
    ServerState& state_;
    std::unordered_map<std::string, Command> table_;
    std::string name_;   // the running command's name, upper case
    std::string value_;  // GET's copy of a value, reused
};

}  // namespace kvstore::server
