// kvstore-cli: a command-line client for kvstore-server.
//
//   kvstore-cli [--host H] [--port P] [--password PW] COMMAND [ARG...]
//   kvstore-cli [--host H] [--port P]            (interactive: one command per line)
//
// It sends RESP2, so keys and values may hold any bytes, and prints replies
// as the server's plain text protocol does. Exit codes, for scripts:
//   0  the command succeeded (GET found the key, EXISTS found it, ...)
//   1  the command ran and found nothing (GET/DELETE of an absent key, EXISTS false)
//   2  usage error
//   3  the server could not be reached or broke the connection
//   4  the server answered with an error
#include "../server/protocol.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

enum Exit { kOk = 0, kNotFound = 1, kUsageError = 2, kUnreachable = 3, kServerError = 4 };

const char* const kUsage =
    "usage: kvstore-cli [--host HOST] [--port PORT] [--password PW] [COMMAND [ARG...]]\n"
    "Commands: PUT key value | GET key | DELETE key | EXISTS key | SIZE | PING | FLUSH | STATS | COMPACT,\n"
    "and any other command kvstore-server accepts (SET, INCR, EXPIRE, TTL, ...).\n"
    "Without a command, reads commands from standard input, one per line (double quotes for spaces).\n"
    "Exit codes: 0 ok, 1 not found, 2 usage, 3 connection failed, 4 server error.\n";

class Connection {
public:
    ~Connection() {
        if (fd_ >= 0) ::close(fd_);
    }

    bool connect(const std::string& host, const std::string& port, std::string& error) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
            error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
            return false;
        }
        int last_errno = 0;
        for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
            fd_ = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
            if (fd_ >= 0 && ::connect(fd_, a->ai_addr, a->ai_addrlen) != 0) {
                last_errno = errno;
                ::close(fd_);
                fd_ = -1;
            }
        }
        ::freeaddrinfo(found);
        if (fd_ < 0) {
            error = "cannot connect to " + host + ":" + port + ": " + std::strerror(last_errno);
            return false;
        }
        return true;
    }

    bool send(const std::vector<std::string>& args) {
        std::string out = "*" + std::to_string(args.size()) + "\r\n";
        for (const std::string& arg : args) out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
        for (std::size_t sent = 0; sent < out.size();) {
            const ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    // Reads one reply and renders it as text lines into `text`; false if
    // the connection broke. `kind` is the reply's RESP type byte.
    bool read_reply(std::string& text, char& kind, bool& is_null) {
        std::string line;
        if (!read_line(line) || line.empty()) return false;
        kind = line[0];
        is_null = false;
        const std::string rest = line.substr(1);
        long long count = 0;
        switch (kind) {
        case '+':
        case ':':
            text += rest + "\n";
            return true;
        case '-':
            text += "ERROR " + rest + "\n";
            return true;
        case '$': {
            if (!kvstore::server::parse_integer(rest, count)) return false;
            if (count < 0) {
                is_null = true;
                text += "NOT_FOUND\n";
                return true;
            }
            std::string value;
            if (!read_exact(static_cast<std::size_t>(count) + 2, value)) return false;
            value.resize(static_cast<std::size_t>(count));
            // Multi-line text (INFO, STATS) reads best as it is.
            if (value.find("\r\n") != std::string::npos) {
                text += value;
            } else {
                kvstore::server::append_quoted(text, value);
                text += "\n";
            }
            return true;
        }
        case '*': {
            if (!kvstore::server::parse_integer(rest, count)) return false;
            for (long long i = 0; i < count; ++i) {
                char element_kind = 0;
                bool element_null = false;
                if (!read_reply(text, element_kind, element_null)) return false;
            }
            is_null = count < 0;
            return true;
        }
        default:
            return false;
        }
    }

private:
    bool fill() {
        char chunk[64 << 10];
        while (true) {
            const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            buffer_.append(chunk, static_cast<std::size_t>(n));
            return true;
        }
    }
    bool read_line(std::string& line) {
        std::size_t end;
        while ((end = buffer_.find("\r\n")) == std::string::npos) {
            if (!fill()) return false;
        }
        line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return true;
    }
    bool read_exact(std::size_t size, std::string& out) {
        while (buffer_.size() < size) {
            if (!fill()) return false;
        }
        out = buffer_.substr(0, size);
        buffer_.erase(0, size);
        return true;
    }

    int fd_ = -1;
    std::string buffer_;
};

// Runs one command and prints its reply; returns the exit code it earns.
int run(Connection& connection, std::vector<std::string> args) {
    std::string name = args[0];
    std::transform(name.begin(), name.end(), name.begin(), kvstore::server::ascii_upper);
    if (!connection.send(args)) {
        std::cerr << "kvstore-cli: the connection broke while sending\n";
        return kUnreachable;
    }
    std::string text;
    char kind = 0;
    bool is_null = false;
    if (!connection.read_reply(text, kind, is_null)) {
        if (name == "SHUTDOWN") return kOk;  // the server closes without a reply
        std::cerr << "kvstore-cli: the connection broke while reading the reply\n";
        return kUnreachable;
    }
    // Values print as the text protocol prints them.
    if (kind == '$' && !is_null && (name == "GET" || name == "ECHO")) text.insert(0, "VALUE ");
    if (name == "DELETE" && kind == ':') text = text == "0\n" ? "NOT_FOUND\n" : "DELETED\n";
    std::cout << text << std::flush;
    if (kind == '-') return kServerError;
    if (is_null || ((name == "DELETE" || name == "EXISTS") && text.rfind("NOT_FOUND", 0) == 0) ||
        (name == "EXISTS" && text == "0\n"))
        return kNotFound;
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::string port = "7379";
    std::string password;
    int i = 1;
    for (; i < argc && std::strncmp(argv[i], "--", 2) == 0; ++i) {
        const std::string option = argv[i];
        if (option == "--help") {
            std::cout << kUsage;
            return kOk;
        }
        if (i + 1 >= argc || (option != "--host" && option != "--port" && option != "--password")) {
            std::cerr << "kvstore-cli: " << (i + 1 >= argc ? "missing the value of " : "unknown option ") << option
                      << '\n'
                      << kUsage;
            return kUsageError;
        }
        (option == "--host" ? host : option == "--port" ? port : password) = argv[++i];
    }
    Connection connection;
    std::string error;
    if (!connection.connect(host, port, error)) {
        std::cerr << "kvstore-cli: " << error << '\n';
        return kUnreachable;
    }
    if (!password.empty()) {
        if (int code = run(connection, {"AUTH", password}); code != kOk) return code;
    }
    if (i < argc) return run(connection, std::vector<std::string>(argv + i, argv + argc));

    // Interactive: the last command's exit code is the session's.
    const bool prompt = ::isatty(STDIN_FILENO) != 0;
    int code = kOk;
    std::string line;
    while ((prompt && std::cout << host << ':' << port << "> " << std::flush), std::getline(std::cin, line)) {
        std::vector<std::string> args;
        if (!kvstore::server::split_arguments(line, args, error)) {
            std::cerr << "kvstore-cli: " << error << '\n';
            code = kUsageError;
            continue;
        }
        if (args.empty()) continue;
        if (args[0] == "exit") break;
        code = run(connection, args);
        if (code == kUnreachable) return code;
        if (args[0] == "quit" || args[0] == "QUIT") break;
    }
    return code;
}
