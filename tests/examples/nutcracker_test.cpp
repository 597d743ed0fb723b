// kvstore-servers sharded behind a real nutcracker (twemproxy) with ketama
// distribution: keys land on every backend, read back through the proxy,
// redis-benchmark and redis-cli work through it, and kvstore::HashRing puts
// every key exactly where the proxy did.
#include "catch.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

#include <kvstore/hash_ring.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;

namespace {

// A port nothing listens on now (the kernel's choice for a socket bound to
// port 0, released at once).
unsigned short free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

bool accepts(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return connected;
}

// nutcracker as a child process, listening on port() once constructed.
class Nutcracker {
public:
    Nutcracker(const std::string& config, const std::string& log) : port_(0) {
        std::ifstream in(config);
        for (std::string line; std::getline(in, line);)
            if (const auto at = line.find("listen: 127.0.0.1:"); at != std::string::npos)
                port_ = static_cast<unsigned short>(std::stoi(line.substr(at + 18)));
        REQUIRE(port_ != 0);
        const std::string stats_port = std::to_string(free_port());
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::execl(NUTCRACKER_PATH, NUTCRACKER_PATH, "-c", config.c_str(), "-o", log.c_str(), "-a", "127.0.0.1", "-s",
                    stats_port.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!accepts(port_) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::ifstream log_file(log);
        const std::string logged((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
        INFO("nutcracker log: " << logged);
        REQUIRE(accepts(port_));
    }
    ~Nutcracker() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    Nutcracker(const Nutcracker&) = delete;
    Nutcracker& operator=(const Nutcracker&) = delete;

    unsigned short port() const noexcept { return port_; }

private:
    pid_t pid_ = -1;
    unsigned short port_;
};

// Every tenth key is UTF-8, so that bytes past 0x7f, which nutcracker hashes
// as signed chars, are placed too.
std::string key_of(int i) { return (i % 10 == 0 ? "ключ:" : "key:") + std::to_string(i); }

// Sends `requests` in pipelined rounds and returns the replies, each
// `reply_size` bytes long.
std::string pipelined(Socket& socket, const std::vector<std::string>& requests, std::size_t reply_size) {
    constexpr std::size_t kRound = 1000;
    std::string replies;
    for (std::size_t first = 0; first < requests.size(); first += kRound) {
        const std::size_t last = std::min(requests.size(), first + kRound);
        std::string round;
        for (std::size_t i = first; i < last; ++i) round += requests[i];
        REQUIRE(socket.send(round));
        replies += socket.receive((last - first) * reply_size);
    }
    return replies;
}

}  // namespace

TEST_CASE("Behind nutcracker with ketama, keys land where HashRing says, on every backend, and read back",
          "[nutcracker][ring]") {
    // nutcracker's default key hash, and the one its short keys need.
    const std::string hash = GENERATE(as<std::string>{}, "fnv1a_64", "md5");
    INFO("hash: " << hash);
    HashRingOptions options;
    options.key_hash = hash == "md5" ? RingKeyHash::kMd5 : RingKeyHash::kFnv1a64;
    TempDir dir;
    constexpr int kBackends = 4;
    std::vector<std::unique_ptr<ServerProcess>> backends;
    for (int b = 0; b < kBackends; ++b)
        backends.push_back(std::make_unique<ServerProcess>(std::vector<std::string>{
            "--dir", dir.path() + "/backend" + std::to_string(b), "--num_shards", "16", "--threads", "1"}));

    // Backends 0-2 go by "host:port", with weights 1, 2, 1; backend 3 by a
    // name of its own, as nutcracker allows.
    std::vector<RingNode> nodes;
    std::string servers;
    for (int b = 0; b < kBackends; ++b) {
        const std::string address = "127.0.0.1:" + std::to_string(backends[b]->port());
        const std::uint32_t weight = b == 1 ? 2 : 1;
        const std::string name = b == 3 ? "shard-three" : ketama_node_name("127.0.0.1", backends[b]->port());
        servers += "   - " + address + ":" + std::to_string(weight) + (b == 3 ? " " + name : "") + "\n";
        nodes.push_back({name, weight});
    }
    const std::string config = dir.path() + "/nutcracker.yml";
    std::ofstream(config) << "kvstore:\n"
                          << "  listen: 127.0.0.1:" << free_port() << "\n"
                          << "  hash: " << hash << "\n  distribution: ketama\n  redis: true\n"
                          << "  auto_eject_hosts: false\n  timeout: 10000\n  servers:\n"
                          << servers;
    Nutcracker proxy(config, dir.path() + "/nutcracker.log");

    std::optional<HashRing> ring;
    REQUIRE(HashRing::build(nodes, options, ring).is_ok());

    constexpr int kKeys = 100'000;
    std::vector<std::string> sets;
    std::vector<std::string> exists;
    for (int i = 0; i < kKeys; ++i) {
        sets.push_back(resp({"SET", key_of(i), "value-" + std::to_string(i)}));
        exists.push_back(resp({"EXISTS", key_of(i)}));
    }
    {
        Socket through_proxy(proxy.port());
        const std::string replies = pipelined(through_proxy, sets, 5);
        std::string all_ok;
        for (int i = 0; i < kKeys; ++i) all_ok += "+OK\r\n";
        REQUIRE(replies == all_ok);
    }

    // Each backend, asked directly, holds exactly the keys the ring gives it.
    std::vector<int> held(kBackends);
    int misplaced = 0;
    for (int b = 0; b < kBackends; ++b) {
        Socket direct(backends[b]->port());
        const std::string replies = pipelined(direct, exists, 4);
        REQUIRE(replies.size() == static_cast<std::size_t>(kKeys) * 4);
        for (int i = 0; i < kKeys; ++i) {
            const bool here = replies.compare(static_cast<std::size_t>(i) * 4, 4, ":1\r\n") == 0;
            const bool ring_says_here = ring->node_index(key_of(i)) == static_cast<std::size_t>(b);
            if (here != ring_says_here) ++misplaced;
            held[b] += here;
        }
        CHECK(std::stoi(backends[b]->cli({"DBSIZE"})) == held[b]);
    }
    CHECK(misplaced == 0);
    int total = 0;
    for (int b = 0; b < kBackends; ++b) {
        INFO("backend " << b << " holds " << held[b]);
        CHECK(held[b] > kKeys / 10);
        total += held[b];
    }
    CHECK(total == kKeys);
    // The weight-2 backend holds about twice the others' share.
    CHECK(held[1] > held[0] * 3 / 2);
    CHECK(held[1] > held[2] * 3 / 2);

    // Read back through the proxy: redis-cli's GET and an MGET that
    // nutcracker splits over the backends.
    std::string output;
    const std::string cli = std::string(REDIS_CLI_PATH) + " -p " + std::to_string(proxy.port());
    REQUIRE(run_command(cli + " GET " + shell_quote(key_of(70)), output) == 0);
    CHECK(output == "value-70\n");
    std::string mget = cli + " MGET";
    std::string expected;
    for (int i = 0; i < 40; ++i) {
        mget += " " + shell_quote(key_of(i * 997));
        expected += "value-" + std::to_string(i * 997) + "\n";
    }
    REQUIRE(run_command(mget, output) == 0);
    CHECK(output == expected);

    // redis-benchmark through the proxy, pipelined, over random keys.
    REQUIRE(run_command(std::string(REDIS_BENCHMARK_PATH) + " -p " + std::to_string(proxy.port()) +
                            " -t set,get -n 20000 -r 50000 -P 16 -c 20 -q 2>&1",
                        output) == 0);
    INFO("redis-benchmark: " << output);
    CHECK(output.find("SET: ") != std::string::npos);
    CHECK(output.find("GET: ") != std::string::npos);
    CHECK(output.find("rror") == std::string::npos);
    // Its keys ("key:000000012345") spread over every backend too.
    for (int b = 0; b < kBackends; ++b) CHECK(std::stoi(backends[b]->cli({"DBSIZE"})) > held[b]);
}
