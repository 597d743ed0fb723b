// kvstore-server as a child process, and the clients the tests talk to it
// with: raw sockets, and the real redis-cli and redis-benchmark.
#pragma once

#include "catch.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace kvstore::test {

/// Quotes `arg` for /bin/sh.
inline std::string shell_quote(const std::string& arg) {
    std::string quoted = "'";
    for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

/// Runs a shell command; returns its exit code (-1 if it could not start)
/// and sets `output` to its standard output. Safe off the test's thread.
inline int run_command(const std::string& command, std::string& output) {
    output.clear();
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return -1;
    std::array<char, 4096> buffer;
    for (std::size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) output.append(buffer.data(), n);
    const int status = ::pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// A running kvstore-server on a port the system chose.
class ServerProcess {
public:
    /// Starts the server with `args` (--port 0 is added) and the variables
    /// of `environment` ("NAME=value") added to its environment, and waits
    /// until it listens.
    explicit ServerProcess(const std::vector<std::string>& args, std::vector<std::string> environment = {}) {
        int err[2];
        REQUIRE(::pipe(err) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(err[1], STDERR_FILENO);
            ::close(err[0]);
            ::close(err[1]);
            for (std::string& variable : environment) ::putenv(variable.data());
            std::vector<std::string> all{KVSTORE_SERVER_PATH, "--port", "0"};
            all.insert(all.end(), args.begin(), args.end());
            std::vector<char*> argv;
            for (std::string& arg : all) argv.push_back(arg.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(err[1]);
        stderr_fd_ = err[0];
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (port_ == 0 && std::chrono::steady_clock::now() < deadline) {
            if (!read_stderr(std::chrono::milliseconds(100))) break;
            if (const std::size_t ready = log_.find("ready on "); ready != std::string::npos) {
                const std::size_t colon = log_.find(':', ready + 9);
                const std::size_t end = log_.find('\n', ready);
                if (colon != std::string::npos && end != std::string::npos)
                    port_ = static_cast<unsigned short>(std::stoi(log_.substr(colon + 1, end - colon - 1)));
            }
        }
        INFO("server log: " << log_);
        REQUIRE(port_ != 0);
    }
    ~ServerProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(stderr_fd_);
    }
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    unsigned short port() const noexcept { return port_; }
    pid_t pid() const noexcept { return pid_; }

    /// Sends `signal` and waits for the exit; returns the exit status
    /// (128 + signal number if it was killed).
    int stop(int signal) {
        REQUIRE(::kill(pid_, signal) == 0);
        int status = 0;
        REQUIRE(::waitpid(pid_, &status, 0) == pid_);
        pid_ = -1;
        while (read_stderr(std::chrono::milliseconds(0))) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    /// True while the process runs.
    bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

    /// Resident memory in KiB, from /proc.
    long resident_kib() const {
        std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
        }
        return -1;
    }

    const std::string& log() const noexcept { return log_; }

    /// redis-cli against this server; returns its exit code.
    int redis_cli(const std::vector<std::string>& args, std::string& output) const {
        std::string command = std::string(REDIS_CLI_PATH) + " -p " + std::to_string(port_);
        for (const std::string& arg : args) command += " " + shell_quote(arg);
        return run_command(command + " 2>&1", output);
    }
    /// redis-cli's output, without the final newline.
    std::string cli(const std::vector<std::string>& args) const {
        std::string output;
        redis_cli(args, output);
        if (!output.empty() && output.back() == '\n') output.pop_back();
        return output;
    }

private:
    bool read_stderr(std::chrono::milliseconds wait) {
        pollfd fd{stderr_fd_, POLLIN, 0};
        if (::poll(&fd, 1, static_cast<int>(wait.count())) <= 0) return wait.count() > 0;
        char buffer[4096];
        const ssize_t n = ::read(stderr_fd_, buffer, sizeof buffer);
        if (n <= 0) return false;
        log_.append(buffer, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int stderr_fd_ = -1;
    unsigned short port_ = 0;
    std::string log_;
};

/// A blocking TCP connection to 127.0.0.1 with a receive timeout.
class Socket {
public:
    explicit Socket(unsigned short port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        timeval timeout{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    }
    ~Socket() { ::close(fd_); }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    /// Sends all of `data`; false if the server closed the connection.
    bool send(const std::string& data) {
        for (std::size_t sent = 0; sent < data.size();) {
            const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    /// Reads until `size` bytes have come, the connection closes or the
    /// timeout passes; returns what came.
    std::string receive(std::size_t size) {
        std::string got;
        char buffer[4096];
        while (got.size() < size) {
            const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            got.append(buffer, static_cast<std::size_t>(n));
        }
        return got;
    }

    /// Reads until the reply ends in `terminator` (or closes/times out).
    std::string receive_until(const std::string& terminator) {
        std::string got;
        char c;
        while (got.size() < terminator.size() ||
               got.compare(got.size() - terminator.size(), terminator.size(), terminator) != 0) {
            if (::recv(fd_, &c, 1, 0) != 1) break;
            got.push_back(c);
        }
        return got;
    }

    /// True once the server has closed the connection (reads end of file).
    bool closed_by_peer() {
        char c;
        return ::recv(fd_, &c, 1, 0) == 0;
    }

private:
    int fd_ = -1;
};

/// A RESP2 request.
inline std::string resp(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& arg : args) out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    return out;
}

}  // namespace kvstore::test
