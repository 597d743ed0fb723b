// The failover checker: three kvstore-raft-servers on 127.0.0.1, writers
// setting keys through whichever node leads, and round after round the
// leader SIGKILLed and restarted (every fifth round a follower too). At the
// end every node must hold, for every key, the value of its last
// acknowledged write or of a write sent after it whose outcome the writer
// never learnt, and all nodes the same. Prints the time from each leader
// kill to the first write a new leader acknowledged.
//
//   kvstore-raft-failover SERVER ROUNDS DIR [BASE_PORT]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// A blocking RESP connection with timeouts; any failure closes it.
class Client {
public:
    explicit Client(unsigned port) : port_(port) {}
    ~Client() { disconnect(); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    unsigned port() const { return port_; }

    // The reply's first line ("+OK", "-REDIRECT ...", ":1") or a bulk's
    // contents prefixed with '$' ("$" alone is a null); nullopt if the
    // connection failed before a whole reply came.
    std::optional<std::string> call(const std::vector<std::string>& args) {
        if (fd_ < 0 && !connect()) return std::nullopt;
        std::string request = "*" + std::to_string(args.size()) + "\r\n";
        for (const std::string& arg : args) request += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
        if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
            return fail();
        std::optional<std::string> line = read_line();
        if (!line || line->empty()) return fail();
        if ((*line)[0] != '$') return line;
        const long length = std::stol(line->substr(1));
        if (length < 0) return std::string("$");
        while (buffer_.size() < static_cast<std::size_t>(length) + 2)
            if (!fill()) return fail();
        std::string value = "$" + buffer_.substr(0, static_cast<std::size_t>(length));
        buffer_.erase(0, static_cast<std::size_t>(length) + 2);
        return value;
    }

    void disconnect() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        buffer_.clear();
    }

private:
    bool connect() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        timeval timeout{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<unsigned short>(port_));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return true;
        disconnect();
        return false;
    }
    bool fill() {
        char chunk[4096];
        const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }
    std::optional<std::string> read_line() {
        std::size_t end;
        while ((end = buffer_.find("\r\n")) == std::string::npos)
            if (!fill()) return std::nullopt;
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return line;
    }
    std::optional<std::string> fail() {
        disconnect();
        return std::nullopt;
    }

    unsigned port_;
    int fd_ = -1;
    std::string buffer_;
};

struct Node {
    unsigned id = 0;
    unsigned port = 0;
    pid_t pid = -1;
};

class Cluster {
public:
    Cluster(std::string server, std::string dir, unsigned base_port)
        : server_(std::move(server)), dir_(std::move(dir)) {
        std::filesystem::remove_all(dir_);  // a run starts from empty nodes
        for (unsigned id = 1; id <= 3; ++id) {
            nodes_.push_back(Node{id, base_port + 2 * (id - 1), -1});
            cluster_ += (id > 1 ? "," : "") + std::to_string(id) + "=127.0.0.1:" + std::to_string(nodes_.back().port);
        }
        for (Node& node : nodes_) start(node);
    }
    ~Cluster() {
        for (Node& node : nodes_) kill(node);
    }

    std::vector<Node>& nodes() { return nodes_; }

    std::string log_path(const Node& node) const { return dir_ + "/node" + std::to_string(node.id) + ".log"; }

    void start(Node& node) {
        const std::string dir = dir_ + "/node" + std::to_string(node.id);
        std::filesystem::create_directories(dir);
        node.pid = ::fork();
        if (node.pid == 0) {
            std::freopen(log_path(node).c_str(), "a", stderr);
            const std::string id = std::to_string(node.id);
            const std::string port = std::to_string(node.port);
            ::execl(server_.c_str(), server_.c_str(), "--id", id.c_str(), "--port", port.c_str(), "--dir", dir.c_str(),
                    "--cluster", cluster_.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    void kill(Node& node) {
        if (node.pid <= 0) return;
        ::kill(node.pid, SIGKILL);
        ::waitpid(node.pid, nullptr, 0);
        node.pid = -1;
    }

    // RAFT.INFO field of a node, or nullopt if it does not answer.
    static std::optional<unsigned long long> field(unsigned port, const std::string& name) {
        Client client(port);
        std::optional<std::string> info = client.call({"RAFT.INFO"});
        if (!info || info->empty() || (*info)[0] != '$') return std::nullopt;
        const std::size_t at = info->find(name + ":");
        if (at == std::string::npos) return std::nullopt;
        if (name == "state") return info->compare(at + 6, 6, "leader") == 0 ? 1ULL : 0ULL;
        return std::stoull(info->substr(at + name.size() + 1));
    }

    Node* leader() {
        for (Node& node : nodes_)
            if (node.pid > 0 && field(node.port, "state").value_or(0) == 1) return &node;
        return nullptr;
    }

private:
    std::string server_;
    std::string dir_;
    std::string cluster_;
    std::vector<Node> nodes_;
};

// What one writer knows of its keys: the last acknowledged value, and the
// values sent after it whose outcome is unknown.
struct KeyHistory {
    std::optional<std::string> acknowledged;
    std::set<std::string> unknown;
};

class Writer {
public:
    Writer(unsigned number, std::vector<unsigned> ports) : number_(number), ports_(std::move(ports)) {}

    void run(const std::atomic<bool>& stop) {
        auto client = std::make_unique<Client>(ports_[0]);
        std::size_t port_index = 0;
        for (unsigned long long sequence = 0; !stop.load(); ++sequence) {
            const std::string key = "w" + std::to_string(number_) + ":" + std::to_string(sequence % 200);
            const std::string value = std::to_string(number_) + ":" + std::to_string(sequence);
            std::optional<std::string> reply = client->call({"SET", key, value});
            KeyHistory& history = keys_[key];
            if (reply && *reply == "+OK") {
                history.acknowledged = value;
                history.unknown.clear();
                ++acknowledged_;
                continue;
            }
            const bool rejected = reply && (reply->rfind("-REDIRECT ", 0) == 0 || reply->rfind("-TRYAGAIN no", 0) == 0);
            if (!rejected) {
                history.unknown.insert(value);
                ++unknown_;
            }
            if (reply && reply->rfind("-REDIRECT ", 0) == 0) {
                const unsigned port = static_cast<unsigned>(std::stoul(reply->substr(reply->rfind(':') + 1)));
                client = std::make_unique<Client>(port);
            } else {
                port_index = (port_index + 1) % ports_.size();
                client = std::make_unique<Client>(ports_[port_index]);
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
    }

    const std::map<std::string, KeyHistory>& keys() const { return keys_; }
    unsigned long long acknowledged() const { return acknowledged_; }
    unsigned long long unknown() const { return unknown_; }

private:
    unsigned number_;
    std::vector<unsigned> ports_;
    std::map<std::string, KeyHistory> keys_;
    unsigned long long acknowledged_ = 0;
    unsigned long long unknown_ = 0;
};

// Sets a probe key through the cluster until a leader acknowledges it.
bool acknowledged_somewhere(std::vector<Node>& nodes, const std::string& key, Clock::time_point deadline) {
    while (Clock::now() < deadline) {
        for (Node& node : nodes) {
            if (node.pid <= 0) continue;
            Client client(node.port);
            if (std::optional<std::string> reply = client.call({"SET", key, "probe"}); reply && *reply == "+OK")
                return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

bool wait_until(Clock::duration limit, const std::function<bool()>& done) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: kvstore-raft-failover SERVER ROUNDS DIR [BASE_PORT]\n";
        return 2;
    }
    const unsigned rounds = static_cast<unsigned>(std::stoul(argv[2]));
    const unsigned base_port = argc > 4 ? static_cast<unsigned>(std::stoul(argv[4])) : 17400;
    Cluster cluster(argv[1], argv[3], base_port);
    std::vector<Node>& nodes = cluster.nodes();
    std::vector<unsigned> ports;
    for (const Node& node : nodes) ports.push_back(node.port);
    if (!wait_until(std::chrono::seconds(20), [&] { return cluster.leader() != nullptr; })) {
        std::cerr << "no leader within 20 s of the start\n";
        return 1;
    }

    std::atomic<bool> stop{false};
    std::vector<Writer> writers;
    for (unsigned w = 0; w < 2; ++w) writers.emplace_back(w, ports);
    std::vector<std::thread> threads;
    for (Writer& writer : writers) threads.emplace_back([&writer, &stop] { writer.run(stop); });

    std::vector<double> failover_ms;
    unsigned follower_kills = 0;
    int failures = 0;
    for (unsigned round = 1; round <= rounds && failures == 0; ++round) {
        Node* leader = nullptr;
        if (!wait_until(std::chrono::seconds(20), [&] { return (leader = cluster.leader()) != nullptr; })) {
            std::cerr << "round " << round << ": no leader for 20 s\n";
            ++failures;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let writes flow under this leader
        const auto killed_at = Clock::now();
        cluster.kill(*leader);
        if (!acknowledged_somewhere(nodes, "probe:" + std::to_string(round), killed_at + std::chrono::seconds(20))) {
            std::cerr << "round " << round << ": no new leader served a write within 20 s\n";
            ++failures;
            break;
        }
        failover_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - killed_at).count());
        std::vector<Node*> restarted{leader};
        if (round % 5 == 0) {
            Node* follower = nullptr;
            for (Node& node : nodes)
                if (node.pid > 0 && cluster.leader() != &node) follower = &node;
            if (follower != nullptr) {
                cluster.kill(*follower);
                ++follower_kills;
                restarted.push_back(follower);
            }
        }
        for (Node* node : restarted) cluster.start(*node);
        // The next kill needs all three: wait until the restarted ones have
        // applied what the leader had committed when they came back. After
        // a follower kill the survivor may have stepped down (no majority),
        // so the target is taken once a leader is back.
        for (Node* node : restarted) {
            unsigned long long target = 0;
            if (!wait_until(std::chrono::seconds(30), [&] {
                    if (target == 0)
                        if (Node* now_leading = cluster.leader())
                            target = Cluster::field(now_leading->port, "commit_index").value_or(0);
                    return target > 0 && Cluster::field(node->port, "last_applied").value_or(0) >= target;
                })) {
                std::cerr << "round " << round << ": node " << node->id << " did not catch up within 30 s\n";
                ++failures;
            }
        }
    }
    stop = true;
    for (std::thread& thread : threads) thread.join();

    // All nodes converge on one applied index before they are compared.
    unsigned long long applied = 0;
    const bool converged = wait_until(std::chrono::seconds(30), [&] {
        std::set<unsigned long long> indexes;
        for (const Node& node : nodes) indexes.insert(Cluster::field(node.port, "last_applied").value_or(0));
        applied = *indexes.begin();
        return indexes.size() == 1 && applied > 0;
    });
    if (!converged) {
        std::cerr << "the nodes did not reach one applied index within 30 s\n";
        ++failures;
    }
    unsigned long long acknowledged = 0, unknown = 0, lost = 0, divergent = 0, keys = 0;
    std::vector<std::unique_ptr<Client>> readers;
    for (const Node& node : nodes) {
        readers.push_back(std::make_unique<Client>(node.port));
        readers.back()->call({"READONLY"});
    }
    std::vector<unsigned long long> unanswered(nodes.size(), 0);
    for (const Writer& writer : writers) {
        acknowledged += writer.acknowledged();
        unknown += writer.unknown();
        for (const auto& [key, history] : writer.keys()) {
            ++keys;
            std::optional<std::string> first;
            for (std::size_t n = 0; n < readers.size(); ++n) {
                std::optional<std::string> got = readers[n]->call({"GET", key});
                if (!got || got->empty() || (*got)[0] != '$') {
                    if (unanswered[n]++ == 0)
                        std::cerr << "node " << nodes[n].id << " did not answer GET " << key << "\n";
                    ++failures;
                    continue;
                }
                const std::optional<std::string> value =
                    *got == "$" ? std::nullopt : std::optional<std::string>(got->substr(1));
                const bool allowed = value == history.acknowledged || (value && history.unknown.count(*value) > 0);
                if (!allowed) {
                    ++lost;
                    std::cerr << "node " << nodes[n].id << ": " << key << " = " << value.value_or("(none)")
                              << ", last acknowledged " << history.acknowledged.value_or("(none)") << "\n";
                }
                if (n == 0)
                    first = value;
                else if (value != first)
                    ++divergent;
            }
        }
    }
    // A sanitizer's report in a node's log fails the run, even when the
    // node went on serving.
    for (const Node& node : nodes) {
        const std::string log = cluster.log_path(node);
        std::ifstream in(log);
        for (std::string line; std::getline(in, line);)
            if (line.find("Sanitizer") != std::string::npos || line.find("runtime error:") != std::string::npos) {
                std::cerr << log << ": " << line << "\n";
                ++failures;
                break;
            }
    }
    std::sort(failover_ms.begin(), failover_ms.end());
    const double median = failover_ms.empty() ? 0 : failover_ms[failover_ms.size() / 2];
    const double longest = failover_ms.empty() ? 0 : failover_ms.back();
    std::printf(
        "leader kills %zu, follower kills %u, acknowledged writes %llu, outcome unknown %llu, keys %llu, "
        "applied index %llu\nlost %llu, divergent %llu; time to a new serving leader: median %.0f ms, max %.0f ms\n",
        failover_ms.size(), follower_kills, acknowledged, unknown, keys, applied, lost, divergent, median, longest);
    const bool passed =
        failures == 0 && lost == 0 && divergent == 0 && failover_ms.size() == rounds && acknowledged > 0;
    std::printf("%s\n", passed ? "PASSED" : "FAILED");
    return passed ? 0 : 1;
}
