// The two request framings kvstore-server accepts on one port, and the
// replies in each.
//
// A request that starts with '*' is RESP2, as redis-cli and redis-benchmark
// send it: an array of bulk strings, binary-safe. Anything else is an inline
// command: one line, arguments separated by spaces, double quotes around an
// argument that holds spaces or escapes. A line ending in a bare "\n" is the
// plain text protocol and is answered in plain words ("OK", "VALUE v",
// "NOT_FOUND"), for a person at `nc` or a script. A line ending in "\r\n" is
// Redis's inline form (redis-benchmark's PING_INLINE, telnet) and is
// answered in RESP2, as Redis answers it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore::server {

namespace detail {
inline bool is_space(char c) { return c == ' ' || c == '\t'; }
inline bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
inline int hex_value(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }
inline bool is_printable(char c) { return c > 0x20 && c < 0x7f; }
}  // namespace detail

/// `c` in upper case if it is an ASCII letter: command names are matched
/// without regard to case, and only ever in ASCII.
inline char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }

/// Splits a line into arguments: runs of non-space bytes, or double-quoted
/// strings with \" \\ \n \r \t \xHH escapes. False, with `error`, for an
/// unbalanced quote or a quote not followed by a space.
inline bool split_arguments(std::string_view line, std::vector<std::string>& out, std::string& error) {
    out.clear();
    std::size_t i = 0;
    while (true) {
        while (i < line.size() && detail::is_space(line[i])) ++i;
        if (i == line.size()) return true;
        std::string arg;
        if (line[i] == '"') {
            ++i;
            bool closed = false;
            while (i < line.size()) {
                const char c = line[i++];
                if (c == '"') {
                    closed = true;
                    break;
                }
                if (c != '\\' || i == line.size()) {
                    arg.push_back(c);
                    continue;
                }
                const char e = line[i++];
                if (e == 'x' && i + 2 <= line.size() && detail::is_hex(line[i]) && detail::is_hex(line[i + 1])) {
                    arg.push_back(static_cast<char>(detail::hex_value(line[i]) * 16 + detail::hex_value(line[i + 1])));
                    i += 2;
                } else {
                    arg.push_back(e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e);
                }
            }
            if (!closed || (i < line.size() && !detail::is_space(line[i]))) {
                error = "Protocol error: unbalanced quotes in request";
                return false;
            }
        } else {
            while (i < line.size() && !detail::is_space(line[i])) arg.push_back(line[i++]);
        }
        out.push_back(std::move(arg));
    }
}

/// Parses a whole decimal int64, sign allowed, nothing else around it.
inline bool parse_integer(std::string_view text, long long& value) {
    if (text.empty() || text.size() > 20) return false;
    std::size_t i = text[0] == '-' ? 1 : 0;
    if (i == text.size()) return false;
    unsigned long long magnitude = 0;
    const unsigned long long limit = i == 1 ? 9223372036854775808ULL : static_cast<unsigned long long>(INT64_MAX);
    for (; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        const unsigned digit = static_cast<unsigned>(text[i] - '0');
        if (magnitude > (limit - digit) / 10) return false;
        magnitude = magnitude * 10 + digit;
    }
    value = text[0] == '-' ? static_cast<long long>(0 - magnitude) : static_cast<long long>(magnitude);
    return true;
}

/// Appends `value` to `out` as one argument of the text protocol: as it is
/// when it is one printable word, else double-quoted with escapes, so that
/// split_arguments reads it back unchanged.
inline void append_quoted(std::string& out, std::string_view value) {
    const bool word = !value.empty() && std::all_of(value.begin(), value.end(), detail::is_printable) &&
                      value.find_first_of("\"\\") == std::string_view::npos;
    if (word) {
        out += value;
        return;
    }
    static const char digits[] = "0123456789abcdef";
    out += '"';
    for (char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (byte < 0x20 || byte >= 0x7f) {
                out += "\\x";
                out += digits[byte >> 4];
                out += digits[byte & 0xf];
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

/// The longest inline request awaited without its newline, as in Redis: a
/// person types less, and a client sending more is not speaking inline.
inline constexpr std::size_t kMaxInlineRequest = std::size_t{64} << 10;

/// The most a connection may make the server hold for one request.
struct RequestLimits {
    std::size_t max_query_buffer = std::size_t{512} << 20;  ///< unparsed bytes of one connection
    std::size_t max_bulk_length = std::size_t{512} << 20;   ///< one RESP argument
    std::size_t max_arguments = std::size_t{1} << 20;       ///< arguments of one request
};

/// One parsed request. Arguments point into the connection's input buffer
/// (RESP) or into `unquoted` (inline), so they live until the next parse.
struct Request {
    std::vector<std::string_view> args;
    bool plain_reply = false;  ///< answer in the plain text protocol
    std::vector<std::string> unquoted;
};

enum class ParseResult {
    kComplete,    ///< `request` holds a command; `consumed` bytes were used
    kIncomplete,  ///< more bytes are needed; at least `needed` in all
    kEmpty,       ///< an empty line or array was skipped (`consumed` bytes)
    kError,       ///< the input breaks the protocol or a limit; `error` says how
};

/// Parses the first request in `input`. Stateless apart from its limits:
/// an incomplete request is parsed again from its start when more bytes
/// arrive, so `needed` tells the caller how long it may wait before trying.
class RequestParser {
public:
    explicit RequestParser(const RequestLimits& limits) : limits_(limits) {}

    ParseResult parse(std::string_view input, Request& request, std::size_t& consumed, std::size_t& needed,
                      std::string& error) const {
        consumed = 0;
        needed = input.size() + 1;
        request.args.clear();
        request.unquoted.clear();
        if (input.empty()) return ParseResult::kIncomplete;
        request.plain_reply = false;
        if (input[0] == '*') return parse_resp(input, request, consumed, needed, error);
        return parse_inline(input, request, consumed, error);
    }

private:
    static std::string hex_byte(char c) {
        static const char digits[] = "0123456789abcdef";
        const auto byte = static_cast<unsigned char>(c);
        return {digits[byte >> 4], digits[byte & 15]};
    }

    // Reads "<prefix><integer>\r\n" at `pos`.
    static ParseResult read_length_line(std::string_view input, std::size_t& pos, char prefix, long long& value,
                                        std::string& error) {
        const std::size_t end = input.find('\r', pos);
        if (end == std::string_view::npos || end + 1 >= input.size()) {
            // A header line is a few digits; a long one without CR is garbage.
            if (input.size() - pos > 32) {
                error = std::string("Protocol error: expected '") + prefix + "' line";
                return ParseResult::kError;
            }
            return ParseResult::kIncomplete;
        }
        if (input[pos] != prefix || input[end + 1] != '\n') {
            error = std::string("Protocol error: expected '") + prefix + "', got '" +
                    (input[pos] >= ' ' && input[pos] <= '~' ? std::string(1, input[pos]) : "\\x" + hex_byte(input[pos])) +
                    "'";
            return ParseResult::kError;
        }
        if (!parse_integer(input.substr(pos + 1, end - pos - 1), value)) {
            error = std::string("Protocol error: invalid ") + (prefix == '*' ? "multibulk" : "bulk") + " length";
            return ParseResult::kError;
        }
        pos = end + 2;
        return ParseResult::kComplete;
    }

    ParseResult parse_resp(std::string_view input, Request& request, std::size_t& consumed, std::size_t& needed,
                           std::string& error) const {
        std::size_t pos = 0;
        long long count = 0;
        if (ParseResult r = read_length_line(input, pos, '*', count, error); r != ParseResult::kComplete) return r;
        if (count > static_cast<long long>(limits_.max_arguments)) {
            error = "Protocol error: invalid multibulk length: " + std::to_string(count) +
                    " arguments exceed max_arguments (" + std::to_string(limits_.max_arguments) + ")";
            return ParseResult::kError;
        }
        if (count <= 0) {
            consumed = pos;
            return ParseResult::kEmpty;
        }
        request.args.reserve(static_cast<std::size_t>(count));
        for (long long i = 0; i < count; ++i) {
            long long length = 0;
            if (ParseResult r = read_length_line(input, pos, '$', length, error); r != ParseResult::kComplete) return r;
            if (length < 0 || static_cast<unsigned long long>(length) > limits_.max_bulk_length) {
                error = "Protocol error: invalid bulk length " + std::to_string(length) + " (max_bulk_length is " +
                        std::to_string(limits_.max_bulk_length) + ")";
                return ParseResult::kError;
            }
            const std::size_t size = static_cast<std::size_t>(length);
            if (input.size() - pos < size + 2) {
                needed = pos + size + 2;
                return ParseResult::kIncomplete;
            }
            if (input[pos + size] != '\r' || input[pos + size + 1] != '\n') {
                error = "Protocol error: bulk string of " + std::to_string(size) + " bytes not followed by CRLF";
                return ParseResult::kError;
            }
            request.args.push_back(input.substr(pos, size));
            pos += size + 2;
        }
        consumed = pos;
        return ParseResult::kComplete;
    }

    // Errors are answered in the line's framing; a line too long to be
    // typed, with no end yet, in RESP, as Redis answers it.
    ParseResult parse_inline(std::string_view input, Request& request, std::size_t& consumed,
                             std::string& error) const {
        const std::size_t newline = input.find('\n');
        if (newline == std::string_view::npos) {
            if (input.size() <= kMaxInlineRequest) return ParseResult::kIncomplete;
            error = "Protocol error: too big inline request (over " + std::to_string(kMaxInlineRequest) +
                    " bytes with no newline)";
            return ParseResult::kError;
        }
        std::string_view line = input.substr(0, newline);
        const bool crlf = !line.empty() && line.back() == '\r';
        if (crlf) line.remove_suffix(1);
        consumed = newline + 1;
        request.plain_reply = !crlf;
        if (!split_arguments(line, request.unquoted, error)) return ParseResult::kError;
        if (request.unquoted.size() > limits_.max_arguments) {
            error = "Protocol error: " + std::to_string(request.unquoted.size()) + " arguments exceed max_arguments (" +
                    std::to_string(limits_.max_arguments) + ")";
            return ParseResult::kError;
        }
        if (request.unquoted.empty()) return ParseResult::kEmpty;
        for (const std::string& arg : request.unquoted) request.args.emplace_back(arg);
        return ParseResult::kComplete;
    }

private:
    RequestLimits limits_;
};

/// Appends replies to a connection's output, in the framing of the request:
/// RESP2, RESP3 (after HELLO 3) or plain text.
class Reply {
public:
    Reply(std::string& out, bool plain, bool resp3 = false) : out_(out), plain_(plain), resp3_(resp3 && !plain) {}
    /// Appends to what `other` appends to, in RESP3 or RESP2 (HELLO's own
    /// reply is in the version it asks for).
    Reply(Reply& other, bool resp3) : Reply(other.out_, other.plain_, resp3) {}

    bool plain() const noexcept { return plain_; }
    /// The bytes of replies written so far, a mark for discard_from.
    std::size_t size() const noexcept { return out_.size(); }
    /// Drops what was written after `mark`: a reply given up half way.
    void discard_from(std::size_t mark) { out_.resize(mark); }
    /// Whether the reply written after `mark` is an error.
    bool is_error_from(std::size_t mark) const {
        return out_.size() > mark && (plain_ ? out_.compare(mark, 6, "ERROR ") == 0 : out_[mark] == '-');
    }

    /// A status word: "+OK" in RESP, "OK" in text.
    void status(std::string_view word) {
        out_ += plain_ ? "" : "+";
        out_ += word;
        end_line();
    }
    /// An error; `message` starts with its code ("ERR ...", "NOAUTH ...").
    void error(std::string_view message) {
        out_ += plain_ ? "ERROR " : "-";
        for (char c : message) out_.push_back(c == '\r' || c == '\n' ? ' ' : c);
        end_line();
    }
    void integer(long long value) {
        if (!plain_) out_ += ':';
        out_ += std::to_string(value);
        end_line();
    }
    /// A value: a bulk string in RESP, "VALUE <value>" in text, the value
    /// double-quoted with escapes unless it is one plain word.
    void bulk(std::string_view value) {
        if (plain_) {
            out_ += "VALUE ";
            append_quoted(out_, value);
        } else {
            sized('$', value);
        }
        end_line();
    }
    /// No value: RESP2's null bulk string, RESP3's null, "NOT_FOUND" in text.
    void null() {
        out_ += plain_ ? "NOT_FOUND" : resp3_ ? "_" : "$-1";
        end_line();
    }
    /// An array of `count` replies that follow; text has no header line.
    void array(std::size_t count) { header('*', count); }
    /// A map of `count` name, value pairs that follow: in RESP2, an array
    /// of 2 x count replies.
    void map_or_array(std::size_t count) {
        if (resp3_) return header('%', count);
        array(2 * count);
    }
    /// No array (EXEC of a transaction a WATCHed key aborted): "*-1" in
    /// RESP2, RESP3's null, "NOT_FOUND" in text.
    void null_array() {
        out_ += plain_ ? "NOT_FOUND" : resp3_ ? "_" : "*-1";
        end_line();
    }
    /// A boolean: RESP3's #t/#f, 1 or 0 in RESP2.
    void boolean(bool value) {
        if (!resp3_) return integer(value ? 1 : 0);
        out_ += value ? "#t" : "#f";
        end_line();
    }
    /// A number of any size, as decimal digits: RESP3's big number, a bulk
    /// string in RESP2.
    void big_number(std::string_view digits) {
        if (!resp3_) return bulk(digits);
        out_ += '(';
        out_ += digits;
        end_line();
    }
    /// Text to show as it is: RESP3's verbatim string, a bulk string in RESP2.
    void verbatim(std::string_view text) {
        if (!resp3_) return bulk(text);
        sized('=', "txt:" + std::string(text));
        end_line();
    }
    /// `count` name, value pairs about the reply that follows, in RESP3;
    /// RESP2 has none, and the caller writes none there.
    void attributes(std::size_t count) { header('|', count); }
    bool resp3() const noexcept { return resp3_; }
    /// Lines of "name:value" text (INFO, STATS): a bulk string in RESP, the
    /// lines and then "END" in text.
    void text(std::string_view lines) {
        if (!plain_) return bulk(lines);
        out_ += lines;
        out_ += "END";
        end_line();
    }

private:
    void end_line() { out_ += plain_ ? "\n" : "\r\n"; }
    void header(char type, std::size_t count) {
        if (plain_) return;
        out_ += type;
        out_ += std::to_string(count);
        end_line();
    }
    void sized(char type, std::string_view value) {
        out_ += type;
        out_ += std::to_string(value.size());
        out_ += "\r\n";
        out_ += value;
    }

    std::string& out_;
    bool plain_;
    bool resp3_;
};

}  // namespace kvstore::server
