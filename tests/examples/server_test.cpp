// kvstore-server and kvstore-cli, driven by the real redis-cli and
// redis-benchmark, raw sockets and SIGKILL.
#include "catch.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore::test;

namespace {

// Sixteen shards: FLUSHDB locks every shard and the log together, and
// ThreadSanitizer cannot follow more than 64 locks held by one thread.
std::vector<std::string> in_dir(const TempDir& dir, std::vector<std::string> args = {}) {
    args.insert(args.begin(), {"--dir", dir.path() + "/data", "--num_shards", "16"});
    return args;
}

long long as_number(const std::string& text) { return std::stoll(text); }

}  // namespace

TEST_CASE("redis-cli runs every command the server offers", "[server][redis-cli]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    CHECK(server.cli({"PING"}) == "PONG");
    CHECK(server.cli({"PING", "hello there"}) == "hello there");
    CHECK(server.cli({"ECHO", "echoed"}) == "echoed");

    CHECK(server.cli({"SET", "k", "v1"}) == "OK");
    CHECK(server.cli({"GET", "k"}) == "v1");
    CHECK(server.cli({"GET", "absent"}).empty());
    CHECK(server.cli({"SET", "k", "v2", "NX"}).empty());
    CHECK(server.cli({"SET", "fresh", "v", "NX"}) == "OK");
    CHECK(server.cli({"SET", "absent", "v", "XX"}).empty());
    CHECK(server.cli({"SET", "k", "v3", "XX"}) == "OK");
    CHECK(server.cli({"GET", "k"}) == "v3");
    CHECK(server.cli({"SET", "k", "v", "NX", "XX"}).find("syntax error") != std::string::npos);
    CHECK(server.cli({"SET", "k", "v", "EX", "0"}).find("invalid expire time") != std::string::npos);

    CHECK(server.cli({"SET", "t", "v", "EX", "100"}) == "OK");
    CHECK(server.cli({"TTL", "t"}) == "100");
    CHECK(server.cli({"SET", "p", "v", "PX", "50000"}) == "OK");
    const long long pttl = as_number(server.cli({"PTTL", "p"}));
    CHECK(pttl > 40000);
    CHECK(pttl <= 50000);
    CHECK(server.cli({"PERSIST", "t"}) == "1");
    CHECK(server.cli({"PERSIST", "t"}) == "0");
    CHECK(server.cli({"TTL", "t"}) == "-1");
    CHECK(server.cli({"TTL", "absent"}) == "-2");
    CHECK(server.cli({"EXPIRE", "t", "30"}) == "1");
    CHECK(server.cli({"TTL", "t"}) == "30");
    CHECK(server.cli({"EXPIRE", "absent", "30"}) == "0");
    CHECK(server.cli({"SET", "short", "v", "PX", "100"}) == "OK");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(server.cli({"GET", "short"}).empty());
    CHECK(server.cli({"EXPIRE", "fresh", "0"}) == "1");  // a past deadline deletes
    CHECK(server.cli({"EXISTS", "fresh"}) == "0");

    CHECK(server.cli({"MSET", "a", "1", "b", "2"}) == "OK");
    CHECK(server.cli({"MSET", "a", "1", "b"}).find("wrong number of arguments") != std::string::npos);
    CHECK(server.cli({"MGET", "a", "absent", "b"}) == "1\n\n2");
    CHECK(server.cli({"INCR", "a"}) == "2");
    CHECK(server.cli({"DECR", "a"}) == "1");
    CHECK(server.cli({"INCRBY", "a", "41"}) == "42");
    CHECK(server.cli({"DECRBY", "a", "50"}) == "-8");
    CHECK(server.cli({"INCR", "counter"}) == "1");
    CHECK(server.cli({"INCR", "k"}).find("not an integer") != std::string::npos);
    CHECK(server.cli({"SET", "big", "9223372036854775807"}) == "OK");
    CHECK(server.cli({"INCR", "big"}).find("overflow") != std::string::npos);
    CHECK(server.cli({"GET", "big"}) == "9223372036854775807");

    CHECK(server.cli({"EXISTS", "a", "b", "absent", "a"}) == "3");
    CHECK(server.cli({"DEL", "a", "absent", "b"}) == "2");
    CHECK(server.cli({"DBSIZE"}) == "5");  // k t p counter big
    CHECK(server.cli({"INFO"}).find("redis_version:") != std::string::npos);
    CHECK(server.cli({"INFO"}).find("wal_syncs:") != std::string::npos);
    CHECK(server.cli({"INFO"}).find("db0:keys=5") != std::string::npos);
    CHECK(as_number(server.cli({"COMMAND", "COUNT"})) > 30);
    CHECK(server.cli({"CONFIG", "GET", "appendonly"}) == "appendonly\nyes");
    CHECK(server.cli({"CONFIG", "GET", "save"}) == "save\n");
    CHECK(server.cli({"CONFIG", "SET", "save", ""}).find("ERR") == 0);
    CHECK(server.cli({"SAVE"}) == "OK");
    CHECK(server.cli({"BGSAVE"}) == "Background saving started");
    CHECK(server.cli({"SELECT", "0"}) == "OK");
    CHECK(server.cli({"SELECT", "15"}) == "OK");
    CHECK(server.cli({"SELECT", "16"}).find("out of range") != std::string::npos);
    CHECK(server.cli({"AUTH", "pw"}).find("without any password configured") != std::string::npos);
    CHECK(server.cli({"NOSUCH", "x"}).find("ERR unknown command 'NOSUCH', with args beginning with: 'x' ") == 0);
    CHECK(server.cli({"GET"}).find("ERR wrong number of arguments for 'get' command") == 0);
    CHECK(server.cli({"QUIT"}) == "OK");

    CHECK(server.cli({"FLUSHDB"}) == "OK");
    CHECK(server.cli({"DBSIZE"}) == "0");
    CHECK(server.cli({"SET", "after", "flush"}) == "OK");
    std::string ignored;
    CHECK(server.redis_cli({"SHUTDOWN"}, ignored) == 0);
    CHECK(server.stop(0) == 0);  // already gone: SHUTDOWN ended it cleanly
    ServerProcess reopened(in_dir(dir));
    CHECK(reopened.cli({"DBSIZE"}) == "1");
    CHECK(reopened.cli({"GET", "after"}) == "flush");
}

TEST_CASE("The string and keyspace commands answer as Redis does", "[server][redis-cli]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    CHECK(server.cli({"SETNX", "n", "first"}) == "1");
    CHECK(server.cli({"SETNX", "n", "second"}) == "0");
    CHECK(server.cli({"GET", "n"}) == "first");
    CHECK(server.cli({"SETEX", "e", "100", "v"}) == "OK");
    CHECK(server.cli({"TTL", "e"}) == "100");
    CHECK(server.cli({"PSETEX", "pe", "100000", "v"}) == "OK");
    CHECK(as_number(server.cli({"PTTL", "pe"})) > 90000);
    CHECK(server.cli({"SETEX", "e", "0", "v"}).find("ERR invalid expire time in 'setex' command") == 0);
    CHECK(server.cli({"PSETEX", "e", "x", "v"}).find("ERR value is not an integer or out of range") == 0);

    CHECK(server.cli({"APPEND", "s", "Hello"}) == "5");
    CHECK(server.cli({"APPEND", "s", " World"}) == "11");
    CHECK(server.cli({"STRLEN", "s"}) == "11");
    CHECK(server.cli({"STRLEN", "absent"}) == "0");
    CHECK(server.cli({"GETRANGE", "s", "0", "4"}) == "Hello");
    CHECK(server.cli({"GETRANGE", "s", "-5", "-1"}) == "World");
    CHECK(server.cli({"GETRANGE", "s", "6", "1000"}) == "World");
    CHECK(server.cli({"GETRANGE", "s", "5", "2"}).empty());
    CHECK(server.cli({"GETRANGE", "s", "-1", "-5"}).empty());
    CHECK(server.cli({"GETRANGE", "absent", "0", "-1"}).empty());
    CHECK(server.cli({"SUBSTR", "s", "0", "0"}) == "H");
    CHECK(server.cli({"SETRANGE", "s", "6", "Redis"}) == "11");
    CHECK(server.cli({"GET", "s"}) == "Hello Redis");
    CHECK(server.cli({"SETRANGE", "pad", "3", "x"}) == "4");
    CHECK(server.cli({"STRLEN", "pad"}) == "4");
    CHECK(server.cli({"SETRANGE", "none", "5", ""}) == "0");
    CHECK(server.cli({"EXISTS", "none"}) == "0");
    CHECK(server.cli({"SETRANGE", "s", "-1", "x"}).find("ERR offset is out of range") == 0);
    CHECK(server.cli({"SETRANGE", "s", "9223372036854775000", "x"}).find("ERR string exceeds maximum allowed size") ==
          0);
    CHECK(server.cli({"GET", "s"}) == "Hello Redis");
    // APPEND and SETRANGE keep a key's expiry, as in Redis.
    CHECK(server.cli({"APPEND", "e", "w"}) == "2");
    // Thirty commands after the SETEX: its 100 s, less the time they took
    // (TTL rounds to the nearest second), never -1.
    CHECK(as_number(server.cli({"TTL", "e"})) >= 90);

    CHECK(server.cli({"SET", "f", "10.50"}) == "OK");
    CHECK(server.cli({"INCRBYFLOAT", "f", "0.1"}) == "10.6");
    CHECK(server.cli({"INCRBYFLOAT", "f", "-5"}) == "5.6");
    CHECK(server.cli({"INCRBYFLOAT", "newf", "5.0e3"}) == "5000");
    CHECK(server.cli({"INCRBYFLOAT", "s", "1"}).find("ERR value is not a valid float") == 0);
    CHECK(server.cli({"INCRBYFLOAT", "f", "abc"}).find("ERR value is not a valid float") == 0);
    CHECK(server.cli({"INCRBYFLOAT", "f", "inf"}).find("ERR increment would produce NaN or Infinity") == 0);
    CHECK(server.cli({"GET", "f"}) == "5.6");
    CHECK(server.cli({"INCR", "f"}).find("not an integer") != std::string::npos);

    CHECK(server.cli({"TYPE", "s"}) == "string");
    CHECK(server.cli({"TYPE", "absent"}) == "none");
    CHECK(server.cli({"TOUCH", "s", "absent", "f"}) == "2");
    CHECK(server.cli({"SET", "gone", "v"}) == "OK");
    CHECK(server.cli({"UNLINK", "gone", "absent"}) == "1");

    const long long now = as_number(server.cli({"TIME"}).substr(0, 10));
    CHECK(now > 1700000000);
    CHECK(server.cli({"EXPIREAT", "n", std::to_string(now + 1000)}) == "1");
    const long long ttl = as_number(server.cli({"TTL", "n"}));
    CHECK(ttl > 990);
    CHECK(ttl <= 1001);
    CHECK(as_number(server.cli({"EXPIRETIME", "n"})) == now + 1000);
    CHECK(as_number(server.cli({"PEXPIRETIME", "n"})) == (now + 1000) * 1000);
    CHECK(server.cli({"EXPIRETIME", "s"}) == "-1");
    CHECK(server.cli({"EXPIRETIME", "absent"}) == "-2");
    CHECK(server.cli({"PEXPIREAT", "n", std::to_string((now - 10) * 1000)}) == "1");  // past: deleted
    CHECK(server.cli({"EXISTS", "n"}) == "0");
    CHECK(server.cli({"EXPIREAT", "absent", std::to_string(now + 10)}) == "0");

    CHECK(server.cli({"FLUSHDB"}) == "OK");
    for (int i = 0; i < 300; ++i) REQUIRE(server.cli({"SET", "key:" + std::to_string(i), "v"}) == "OK");
    REQUIRE(server.cli({"SET", "other", "v"}) == "OK");
    std::string keys = server.cli({"KEYS", "key:1?"});
    std::vector<std::string> listed;
    for (std::size_t at = 0, next; at < keys.size(); at = next + 1) {
        next = std::min(keys.find('\n', at), keys.size());
        listed.push_back(keys.substr(at, next - at));
    }
    std::sort(listed.begin(), listed.end());
    CHECK(listed == std::vector<std::string>{"key:10", "key:11", "key:12", "key:13", "key:14", "key:15", "key:16",
                                             "key:17", "key:18", "key:19"});
    CHECK(server.cli({"KEYS", "key:[12]9[^0-8]"}).find("key:199") != std::string::npos);
    CHECK(server.cli({"SCAN", "x"}).find("ERR invalid cursor") == 0);
    CHECK(server.cli({"SCAN", "0", "COUNT", "0"}).find("ERR syntax error") == 0);
    CHECK(server.cli({"SCAN", "0", "NOSUCH", "1"}).find("ERR syntax error") == 0);
    CHECK(server.cli({"SCAN", "0", "TYPE", "list"}).find("key:") == std::string::npos);
    // redis-cli --scan follows the cursor to its end: every key once.
    std::string scanned;
    REQUIRE(server.redis_cli({"--scan", "--pattern", "key:*"}, scanned) == 0);
    std::map<std::string, int> times;
    for (std::size_t at = 0, next; at < scanned.size(); at = next + 1) {
        next = std::min(scanned.find('\n', at), scanned.size());
        if (next > at) ++times[scanned.substr(at, next - at)];
    }
    CHECK(times.size() == 300);
    CHECK(std::all_of(times.begin(), times.end(), [](const auto& entry) { return entry.second == 1; }));
    CHECK(times.count("other") == 0);
}

TEST_CASE("Reads that write, and writes that read, answer as Redis does and are one write each", "[server][redis-cli]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    CHECK(server.cli({"GETSET", "g", "one"}).empty());
    CHECK(server.cli({"GETSET", "g", "two"}) == "one");
    CHECK(server.cli({"SET", "g", "three", "GET"}) == "two");
    CHECK(server.cli({"SET", "fresh", "v", "NX", "GET"}).empty());
    CHECK(server.cli({"SET", "fresh", "w", "NX", "GET"}) == "v");
    CHECK(server.cli({"GET", "fresh"}) == "v");
    CHECK(server.cli({"SET", "missing", "v", "XX", "GET"}).empty());
    CHECK(server.cli({"EXISTS", "missing"}) == "0");
    CHECK(server.cli({"GETDEL", "g"}) == "three");
    CHECK(server.cli({"GETDEL", "g"}).empty());

    CHECK(server.cli({"SET", "t", "v", "EX", "100"}) == "OK");
    CHECK(server.cli({"SET", "t", "w", "KEEPTTL"}) == "OK");
    CHECK(as_number(server.cli({"TTL", "t"})) > 90);
    CHECK(server.cli({"SET", "t", "x"}) == "OK");
    CHECK(server.cli({"TTL", "t"}) == "-1");
    CHECK(server.cli({"SET", "t", "x", "KEEPTTL", "EX", "5"}).find("ERR syntax error") == 0);
    const long long now = as_number(server.cli({"TIME"}).substr(0, 10));
    CHECK(server.cli({"SET", "at", "v", "EXAT", std::to_string(now + 500)}) == "OK");
    CHECK(as_number(server.cli({"EXPIRETIME", "at"})) == now + 500);
    CHECK(server.cli({"SET", "at", "v", "PXAT", std::to_string((now + 600) * 1000 + 123)}) == "OK");
    CHECK(as_number(server.cli({"PEXPIRETIME", "at"})) == (now + 600) * 1000 + 123);
    CHECK(server.cli({"GETEX", "at", "PERSIST"}) == "v");
    CHECK(server.cli({"TTL", "at"}) == "-1");
    CHECK(server.cli({"GETEX", "at", "EX", "50"}) == "v");
    CHECK(as_number(server.cli({"TTL", "at"})) > 45);
    CHECK(server.cli({"GETEX", "at", "EX", "50", "PX", "5"}).find("ERR syntax error") == 0);
    CHECK(server.cli({"GETEX", "absent", "EX", "50"}).empty());

    // EXPIRE's conditions: NX only without a deadline, XX only with one,
    // GT only later (no deadline is later than any), LT only earlier.
    CHECK(server.cli({"SET", "e", "v"}) == "OK");
    CHECK(server.cli({"EXPIRE", "e", "100", "XX"}) == "0");
    CHECK(server.cli({"EXPIRE", "e", "100", "GT"}) == "0");
    CHECK(server.cli({"EXPIRE", "e", "100", "NX"}) == "1");
    CHECK(server.cli({"EXPIRE", "e", "200", "NX"}) == "0");
    CHECK(server.cli({"EXPIRE", "e", "50", "GT"}) == "0");
    CHECK(server.cli({"EXPIRE", "e", "200", "GT"}) == "1");
    CHECK(server.cli({"EXPIRE", "e", "300", "LT"}) == "0");
    CHECK(server.cli({"EXPIRE", "e", "150", "LT", "XX"}) == "1");
    CHECK(as_number(server.cli({"TTL", "e"})) <= 150);
    CHECK(server.cli({"EXPIRE", "e", "1", "NX", "GT"}).find("ERR NX and XX, GT or LT options") == 0);
    CHECK(server.cli({"EXPIRE", "e", "1", "GT", "LT"}).find("ERR GT and LT options") == 0);
    CHECK(server.cli({"EXPIRE", "e", "1", "SOON"}).find("ERR Unsupported option SOON") == 0);
    CHECK(server.cli({"PERSIST", "e"}) == "1");
    CHECK(server.cli({"PERSIST", "e"}) == "0");
    // Deadlines past the clock's last time point (2262) are held as it.
    CHECK(server.cli({"PEXPIREAT", "e", "9223372036854770000"}) == "1");
    CHECK(as_number(server.cli({"TTL", "e"})) > 7'000'000'000LL);
    CHECK(server.cli({"PEXPIREAT", "e", "-9223372036854770000"}) == "1");
    CHECK(server.cli({"EXISTS", "e"}) == "0");

    CHECK(server.cli({"SET", "src", "value", "EX", "100"}) == "OK");
    CHECK(server.cli({"RENAME", "src", "dst"}) == "OK");
    CHECK(server.cli({"EXISTS", "src"}) == "0");
    CHECK(server.cli({"GET", "dst"}) == "value");
    CHECK(as_number(server.cli({"TTL", "dst"})) > 90);  // the deadline moves with it
    CHECK(server.cli({"RENAME", "src", "x"}).find("ERR no such key") == 0);
    CHECK(server.cli({"SET", "other", "o"}) == "OK");
    CHECK(server.cli({"RENAMENX", "dst", "other"}) == "0");
    CHECK(server.cli({"RENAMENX", "dst", "third"}) == "1");
    CHECK(server.cli({"COPY", "third", "copied"}) == "1");
    CHECK(server.cli({"COPY", "third", "copied"}) == "0");
    CHECK(server.cli({"COPY", "other", "copied", "REPLACE"}) == "1");
    CHECK(server.cli({"GET", "copied"}) == "o");
    CHECK(server.cli({"COPY", "other", "other"}).find("ERR source and destination objects are the same") == 0);
    CHECK(server.cli({"MSETNX", "m1", "a", "m2", "b"}) == "1");
    CHECK(server.cli({"MSETNX", "m2", "c", "m3", "d"}) == "0");
    CHECK(server.cli({"EXISTS", "m3"}) == "0");
    CHECK(server.cli({"MSETNX", "m4"}).find("ERR wrong number of arguments for 'msetnx' command") == 0);

    CHECK(server.cli({"SETBIT", "bits", "7", "1"}) == "0");
    CHECK(server.cli({"SETBIT", "bits", "7", "0"}) == "1");
    CHECK(server.cli({"SETBIT", "bits", "1", "1"}) == "0");
    CHECK(server.cli({"GET", "bits"}) == "@");  // 0100 0000
    CHECK(server.cli({"GETBIT", "bits", "1"}) == "1");
    CHECK(server.cli({"GETBIT", "bits", "100"}) == "0");
    CHECK(server.cli({"SETBIT", "bits", "1", "2"}).find("ERR bit is not an integer or out of range") == 0);
    CHECK(server.cli({"SETBIT", "bits", "-1", "1"}).find("ERR bit offset is not an integer or out of range") == 0);
    CHECK(server.cli({"SET", "a", "ohmytext"}) == "OK");
    CHECK(server.cli({"SET", "b", "mynewtext"}) == "OK");
    CHECK(server.cli({"LCS", "a", "b"}) == "mytext");
    CHECK(server.cli({"LCS", "a", "b", "LEN"}) == "6");
    CHECK(server.cli({"LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"}) ==
          "matches\n4\n7\n5\n8\n4\nlen\n6");
    CHECK(server.cli({"OBJECT", "ENCODING", "a"}) == "embstr");
    CHECK(server.cli({"SET", "number", "12345"}) == "OK");
    CHECK(server.cli({"OBJECT", "ENCODING", "number"}) == "int");
    CHECK(server.cli({"OBJECT", "ENCODING", "absent"}).empty());
    CHECK(server.cli({"FLUSHDB"}) == "OK");
    CHECK(server.cli({"RANDOMKEY"}).empty());
    CHECK(server.cli({"SET", "only", "v"}) == "OK");
    CHECK(server.cli({"RANDOMKEY"}) == "only");
}

TEST_CASE("MULTI/EXEC applies the queued commands as one, and WATCH aborts it when a key changed", "[server][multi]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    Socket socket(server.port());
    // The replies to `commands`, sent as one pipeline.
    const auto exchange = [&](const std::vector<std::vector<std::string>>& commands) {
        std::string requests;
        for (const auto& command : commands) requests += resp(command);
        REQUIRE(socket.send(requests + resp({"ECHO", "end"})));
        const std::string reply = socket.receive_until("$3\r\nend\r\n");
        return reply.substr(0, reply.size() - std::string("$3\r\nend\r\n").size());
    };
    CHECK(exchange({{"SET", "counter", "10"},
                    {"MULTI"},
                    {"INCR", "counter"},
                    {"SET", "copy", "x"},
                    {"GET", "counter"},
                    {"DBSIZE"},
                    {"SELECT", "2"},
                    {"SET", "in-two", "y"},
                    {"EXEC"}}) ==
                   "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
                   "*6\r\n:11\r\n+OK\r\n$2\r\n11\r\n:2\r\n+OK\r\n+OK\r\n");
    CHECK(server.cli({"-n", "2", "GET", "in-two"}) == "y");
    CHECK(server.cli({"EXISTS", "in-two"}) == "0");
    // An error while queueing discards the whole block; one while running
    // is that command's reply alone.
    CHECK(exchange({{"SELECT", "0"}, {"MULTI"}, {"SET", "a", "1"}, {"NOSUCH"}, {"EXEC"}, {"EXISTS", "a"}}) ==
                   "+OK\r\n+OK\r\n+QUEUED\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
                   "-EXECABORT Transaction discarded because of previous errors.\r\n:0\r\n");
    CHECK(exchange({{"MULTI"}, {"SET", "s", "text"}, {"INCR", "s"}, {"SET", "after", "1"}, {"EXEC"}}) ==
                   "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
                   "*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n");
    CHECK(exchange({{"MULTI"}, {"SET", "d", "1"}, {"DISCARD"}, {"EXISTS", "d"}}) == "+OK\r\n+QUEUED\r\n+OK\r\n:0\r\n");
    CHECK(exchange({{"EXEC"}, {"DISCARD"}, {"MULTI"}, {"MULTI"}, {"WATCH", "x"}, {"DISCARD"}}) ==
                   "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n-ERR MULTI calls can not be "
                   "nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n");

    // WATCH: a change by another client between WATCH and EXEC aborts it.
    CHECK(exchange({{"WATCH", "counter"}}) == "+OK\r\n");
    CHECK(server.cli({"SET", "counter", "100"}) == "OK");
    CHECK(exchange({{"MULTI"}, {"SET", "counter", "0"}, {"EXEC"}}) == "+OK\r\n+QUEUED\r\n*-1\r\n");
    CHECK(server.cli({"GET", "counter"}) == "100");
    CHECK(exchange({{"WATCH", "counter"}, {"MULTI"}, {"SET", "counter", "0"}, {"EXEC"}}) ==
                   "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
    CHECK(server.cli({"GET", "counter"}) == "0");
}

TEST_CASE("A MULTI/EXEC block survives kill -9 whole or not at all", "[server][multi][crash]") {
    TempDir dir;
    long long acknowledged = -1;
    {
        ServerProcess server(in_dir(dir));
        std::atomic<bool> killed{false};
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(1000));
            killed = true;
            ::kill(server.pid(), SIGKILL);
        });
        // Each block sets ten keys to its round number.
        Socket socket(server.port());
        for (long long round = 0; !killed; ++round) {
            std::string block = resp({"MULTI"});
            for (int k = 0; k < 10; ++k) block += resp({"SET", "key:" + std::to_string(k), std::to_string(round)});
            block += resp({"EXEC"});
            if (!socket.send(block)) break;
            std::string expected = "+OK\r\n";
            for (int k = 0; k < 10; ++k) expected += "+QUEUED\r\n";
            expected += "*10\r\n";
            for (int k = 0; k < 10; ++k) expected += "+OK\r\n";
            if (socket.receive(expected.size()) != expected) break;
            acknowledged = round;
        }
        killer.join();
        CHECK(server.stop(SIGKILL) == 128 + SIGKILL);
    }
    INFO("blocks acknowledged before the kill: " << acknowledged + 1);
    REQUIRE(acknowledged > 10);
    ServerProcess restarted(in_dir(dir));
    const std::string first = restarted.cli({"GET", "key:0"});
    for (int k = 1; k < 10; ++k) CHECK(restarted.cli({"GET", "key:" + std::to_string(k)}) == first);
    CHECK(as_number(first) >= acknowledged);
}

TEST_CASE("Each database is a store of its own: SELECT, MOVE, COPY DB, FLUSHDB and FLUSHALL, across restarts",
          "[server][databases]") {
    TempDir dir;
    {
        ServerProcess server(in_dir(dir));
        CHECK(server.cli({"SET", "k", "zero"}) == "OK");
        CHECK(server.cli({"-n", "3", "SET", "k", "three"}) == "OK");
        CHECK(server.cli({"-n", "3", "SET", "t", "v", "EX", "1000"}) == "OK");
        CHECK(server.cli({"GET", "k"}) == "zero");
        CHECK(server.cli({"-n", "3", "DBSIZE"}) == "2");
        CHECK(server.cli({"MOVE", "k", "3"}) == "0");  // there already
        CHECK(server.cli({"SET", "m", "moved"}) == "OK");
        CHECK(server.cli({"MOVE", "m", "5"}) == "1");
        CHECK(server.cli({"EXISTS", "m"}) == "0");
        CHECK(server.cli({"MOVE", "m", "0"}).find("ERR source and destination objects are the same") == 0);
        CHECK(server.cli({"MOVE", "m", "16"}).find("ERR DB index is out of range") == 0);
        CHECK(server.cli({"-n", "3", "COPY", "t", "t2", "DB", "7"}) == "1");
        CHECK(as_number(server.cli({"-n", "7", "TTL", "t2"})) > 990);
        CHECK(server.cli({"SWAPDB", "0", "1"}).find("ERR SWAPDB is not supported") == 0);
        CHECK(server.cli({"INFO", "keyspace"}).find("db3:keys=2") != std::string::npos);
        CHECK(server.stop(SIGTERM) == 0);
    }
    {
        ServerProcess server(in_dir(dir));
        CHECK(server.cli({"GET", "k"}) == "zero");
        CHECK(server.cli({"-n", "3", "GET", "k"}) == "three");
        CHECK(server.cli({"-n", "5", "GET", "m"}) == "moved");
        CHECK(server.cli({"-n", "7", "GET", "t2"}) == "v");
        CHECK(server.cli({"-n", "3", "FLUSHDB"}) == "OK");
        CHECK(server.cli({"-n", "3", "DBSIZE"}) == "0");
        CHECK(server.cli({"DBSIZE"}) == "1");
        CHECK(server.cli({"FLUSHALL"}) == "OK");
        CHECK(server.cli({"DBSIZE"}) == "0");
        CHECK(server.cli({"-n", "5", "DBSIZE"}) == "0");
        CHECK(server.stop(SIGTERM) == 0);
    }
    ServerProcess server(in_dir(dir, {"--databases", "4"}));
    CHECK(server.cli({"-n", "3", "DBSIZE"}) == "0");
    CHECK(server.cli({"SELECT", "4"}).find("ERR DB index is out of range") == 0);
}

TEST_CASE("HELLO, CLIENT, CONFIG SET, INFO sections and DEBUG answer as Redis does", "[server][connection]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    Socket socket(server.port());
    REQUIRE(socket.send(resp({"HELLO", "3", "SETNAME", "tester"})));
    const std::string hello = socket.receive_until("*0\r\n");
    CHECK(hello.find("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n") == 0);
    CHECK(hello.find("$5\r\nproto\r\n:3\r\n") != std::string::npos);
    REQUIRE(socket.send(resp({"GET", "absent"}) + resp({"DEBUG", "PROTOCOL", "TRUE"}) + resp({"CLIENT", "GETNAME"})));
    CHECK(socket.receive_until("tester\r\n") == "_\r\n#t\r\n$6\r\ntester\r\n");
    REQUIRE(socket.send(resp({"HELLO", "2"})));
    socket.receive_until("*0\r\n");
    REQUIRE(socket.send(resp({"GET", "absent"}) + resp({"HELLO", "4"})));
    CHECK(socket.receive_until("version\r\n") == "$-1\r\n-NOPROTO unsupported protocol version\r\n");

    const std::string clients = server.cli({"CLIENT", "LIST"});
    CHECK(clients.find("name=tester") != std::string::npos);
    CHECK(server.cli({"CLIENT", "SETNAME", "has space"}).find("ERR Client names cannot contain spaces") == 0);
    const std::string id = clients.substr(3, clients.find(' ') - 3);
    CHECK(server.cli({"CLIENT", "KILL", "ID", id}) == "1");
    CHECK(socket.closed_by_peer());
    CHECK(server.cli({"CLIENT", "KILL", "ID", id}) == "0");

    CHECK(server.cli({"CONFIG", "SET", "max_reply_size", "1k"}) == "OK");
    CHECK(server.cli({"CONFIG", "GET", "max_reply_size"}) == "max_reply_size\n1024");
    CHECK(server.cli({"CONFIG", "SET", "maxclients", "50", "port", "1"}).find("ERR CONFIG SET 'port'") == 0);
    CHECK(server.cli({"CONFIG", "GET", "maxclients"}) == "maxclients\n10000");  // all or nothing
    CHECK(server.cli({"CONFIG", "SET", "appendonly", "yes"}) == "OK");
    CHECK(server.cli({"CONFIG", "SET", "appendonly", "no"}).find("ERR CONFIG SET 'appendonly'") == 0);
    CHECK(server.cli({"CONFIG", "RESETSTAT"}) == "OK");

    const std::string cpu = server.cli({"INFO", "cpu"});
    CHECK(cpu.find("used_cpu_user:") != std::string::npos);
    CHECK(cpu.find("used_memory:") == std::string::npos);
    const std::string all = server.cli({"INFO", "all"});
    CHECK(all.find("cmdstat_info:calls=2,") != std::string::npos);  // counted since RESETSTAT
    CHECK(all.find("rejected_calls=") != std::string::npos);
    CHECK(server.cli({"INFO"}).find("rejected_calls") == std::string::npos);
    CHECK(server.cli({"INFO", "nosuchsection"}).empty());

    CHECK(server.cli({"SET", "x", "v", "PX", "50"}) == "OK");
    CHECK(server.cli({"DEBUG", "SET-ACTIVE-EXPIRE", "0"}) == "OK");
    CHECK(server.cli({"DEBUG", "SLEEP", "0.2"}) == "OK");
    CHECK(server.cli({"DBSIZE"}) == "1");  // expired, held until read
    CHECK(server.cli({"GET", "x"}).empty());
    CHECK(server.cli({"DBSIZE"}) == "0");
    CHECK(server.cli({"DEBUG", "SET-ACTIVE-EXPIRE", "1"}) == "OK");
    CHECK(server.cli({"DEBUG", "RELOAD"}) == "OK");
    CHECK(server.cli({"DEBUG", "JMAP"}).find("ERR DEBUG JMAP is not supported") == 0);
    CHECK(server.cli({"FUNCTION", "FLUSH"}) == "OK");
}

TEST_CASE("An inline request is answered in its own framing, and one with no end is refused", "[server][plain]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    {
        Socket socket(server.port());
        REQUIRE(socket.send("set \"\"\"key\"\"\" value\r\n"));
        CHECK(socket.receive(1 << 16) == "-ERR Protocol error: unbalanced quotes in request\r\n");
    }
    {
        Socket socket(server.port());
        REQUIRE(socket.send("set \"\"\"key\"\"\" value\n"));
        CHECK(socket.receive(1 << 16) == "ERROR ERR Protocol error: unbalanced quotes in request\n");
    }
    {
        Socket socket(server.port());
        REQUIRE(socket.send(std::string(70 << 10, 'x')));
        CHECK(socket.receive(1 << 16).find("-ERR Protocol error: too big inline request") == 0);
    }
    CHECK(server.cli({"PING"}) == "PONG");
}

TEST_CASE("With requirepass, commands wait for AUTH", "[server][redis-cli]") {
    TempDir dir;
    ServerProcess server(in_dir(dir, {"--requirepass", "s3cret"}));
    CHECK(server.cli({"GET", "k"}).find("NOAUTH Authentication required.") == 0);
    std::string output;
    server.redis_cli({"-a", "wrong", "--no-auth-warning", "PING"}, output);
    CHECK(output.find("WRONGPASS") != std::string::npos);
    server.redis_cli({"-a", "s3cret", "--no-auth-warning", "SET", "k", "v"}, output);
    CHECK(output == "OK\n");
    Socket socket(server.port());
    REQUIRE(socket.send("AUTH s3cret\nGET k\n"));
    CHECK(socket.receive_until("VALUE v\n") == "OK\nVALUE v\n");
}

TEST_CASE("redis-benchmark runs finish without errors, pipelined or not", "[server][redis-benchmark]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    for (const char* pipeline : {"1", "16"}) {
        std::string output;
        const int status =
            run_command(std::string(REDIS_BENCHMARK_PATH) + " -p " + std::to_string(server.port()) +
                            " -t ping,set,get,incr,mset -n 20000 -r 1000 -d 100 -c 20 -q -P " + pipeline + " 2>&1",
                        output);
        INFO(output);
        CHECK(status == 0);
        for (const char* test : {"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"})
            CHECK(output.find(std::string(test) + ": ") != std::string::npos);
        CHECK(output.find("rror") == std::string::npos);
    }
    CHECK(as_number(server.cli({"DBSIZE"})) > 100);
}

TEST_CASE("The plain text protocol answers inline commands in plain words", "[server][plain]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    Socket socket(server.port());
    REQUIRE(
        socket.send("PUT greeting hello\nPUT \"two words\" \"a \\\"quoted\\\" value\\n\"\n"
                    "GET greeting\nGET \"two words\"\nEXISTS greeting\nEXISTS nothing\nSIZE\n"
                    "DELETE greeting\nDELETE greeting\nGET greeting\nPING\nFLUSH\nSIZE\nCOMPACT\n"
                    "PUT only-key\nPUT \"unbalanced value\n"));
    const std::string expected =
        "OK\nOK\nVALUE hello\nVALUE \"a \\\"quoted\\\" value\\n\"\n1\n0\n2\nDELETED\nNOT_FOUND\nNOT_FOUND\nPONG\n"
        "OK\n0\nOK\nERROR ERR wrong number of arguments for 'put' command\n"
        "ERROR ERR Protocol error: unbalanced quotes in request\n";
    CHECK(socket.receive(expected.size() + 1) == expected);  // and then the connection closes
    Socket redis_inline(server.port());                      // Redis's inline form, as telnet sends it
    REQUIRE(redis_inline.send("SET k \"v w\"\r\nGET k\r\nPING\r\n"));
    CHECK(redis_inline.receive_until("+PONG\r\n") == "+OK\r\n$3\r\nv w\r\n+PONG\r\n");
    Socket stats(server.port());
    REQUIRE(stats.send("STATS\n"));
    const std::string text = stats.receive_until("END\n");
    CHECK(text.find("items:1\n") != std::string::npos);
    CHECK(text.find("wal_records:") != std::string::npos);
}

TEST_CASE("kvstore-cli runs the plain commands with exit codes a script can test", "[server][cli]") {
    TempDir dir;
    ServerProcess server(in_dir(dir));
    const std::string cli = std::string(KVSTORE_CLI_PATH) + " --port " + std::to_string(server.port()) + " ";
    std::string output;
    CHECK(run_command(cli + "PUT 'a key' 'a value'", output) == 0);
    CHECK(output == "OK\n");
    CHECK(run_command(cli + "GET 'a key'", output) == 0);
    CHECK(output == "VALUE \"a value\"\n");
    CHECK(run_command(cli + "GET nothing", output) == 1);
    CHECK(output == "NOT_FOUND\n");
    CHECK(run_command(cli + "EXISTS 'a key'", output) == 0);
    CHECK(run_command(cli + "EXISTS nothing", output) == 1);
    CHECK(run_command(cli + "DELETE nothing", output) == 1);
    CHECK(run_command(cli + "SIZE", output) == 0);
    CHECK(output == "1\n");
    CHECK(run_command(cli + "STATS", output) == 0);
    CHECK(output.find("items:1") != std::string::npos);
    CHECK(run_command(cli + "COMPACT", output) == 0);
    CHECK(run_command(cli + "PING", output) == 0);
    CHECK(output == "PONG\n");
    CHECK(run_command(cli + "NOSUCH", output) == 4);
    CHECK(run_command(cli + "--bogus x PING", output) == 2);
    CHECK(run_command(std::string(KVSTORE_CLI_PATH) + " --port 1 PING 2>/dev/null", output) == 3);
    CHECK(run_command("printf 'PUT n 41\\nINCR n\\nGET \"a key\"\\nDELETE \"a key\"\\nFLUSH\\nSIZE\\n' | " + cli,
                      output) == 0);
    CHECK(output == "OK\n42\nVALUE \"a value\"\nDELETED\nOK\n0\n");
}

namespace {

// The server notices closed connections asynchronously: under a sanitizer on
// a loaded machine, connections the test has just closed may still count
// against max_connections for a while.
bool answers_ping_soon(ServerProcess& server) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::string reply = server.cli({"PING"});
    while (reply != "PONG" && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        reply = server.cli({"PING"});
    }
    return reply == "PONG";
}

// The environment for a server whose resident memory a test bounds. Under
// AddressSanitizer freed memory stays resident in its quarantine (256 MB by
// default), which would be counted as the server's growth.
std::vector<std::string> environment_for_memory_bounds() {
#if defined(__SANITIZE_ADDRESS__)
    const char* options = std::getenv("ASAN_OPTIONS");
    return {std::string("ASAN_OPTIONS=") + (options != nullptr ? std::string(options) + ":" : "") +
            "quarantine_size_mb=1"};
#else
    return {};
#endif
}

}  // namespace

TEST_CASE("Hostile input is answered with an error and a closed connection while the server stays up",
          "[server][limits]") {
    TempDir dir;
    ServerProcess server(in_dir(dir, {"--max_bulk_length", "1024", "--max_query_buffer", "64k", "--max_arguments", "16",
                                      "--max_connections", "8", "--max_value_size", "512", "--max_reply_size", "4k"}),
                         environment_for_memory_bounds());
    const auto refused = [&](const std::string& input, const std::string& reason) {
        Socket socket(server.port());
        socket.send(input);
        const std::string reply = socket.receive(1 << 20);  // until the server closes
        INFO("input starts with " << input.substr(0, 40));
        CHECK(reply.find(reason) != std::string::npos);
        CHECK(server.cli({"PING"}) == "PONG");
    };
    refused("*1\r\n$999999\r\n", "invalid bulk length 999999");
    refused("*1\r\n$-5\r\n", "invalid bulk length");
    refused("*100\r\n", "exceed max_arguments");
    refused("*2\r\n$3\r\nGET\r\n$1\r\nkk\r\n", "not followed by CRLF");
    refused("*x\r\n", "invalid multibulk length");
    refused(std::string(100 << 10, 'a'), "max_query_buffer");

    // Random bytes, with and without a RESP start: every connection ends,
    // none takes the server down.
    std::mt19937 random(7);
    for (int round = 0; round < 40; ++round) {
        std::string garbage(1 + random() % 3000, '\0');
        for (char& c : garbage) c = static_cast<char>(random());
        if (round % 2 == 0) garbage.insert(0, "*3\r\n$3\r\nSET\r\n");
        Socket socket(server.port());
        socket.send(garbage);
    }
    CHECK(answers_ping_soon(server));
    // A value over max_value_size is refused by the store; the connection stays.
    {
        Socket socket(server.port());
        REQUIRE(socket.send(resp({"SET", "k", std::string(600, 'v')}) + resp({"PING"})));
        const std::string reply = socket.receive_until("+PONG\r\n");
        CHECK(reply.find("-ERR ") == 0);
        CHECK(reply.find("max_value_size") != std::string::npos);
    }
    // An MGET naming a large value many times over is refused past
    // max_reply_size, none of its reply sent; the connection stays.
    {
        Socket socket(server.port());
        const std::string big(500, 'b');
        std::vector<std::string> many{"MGET"};
        many.resize(16, "big");  // the most max_arguments allows: 15 x 507 reply bytes
        REQUIRE(socket.send(resp({"SET", "big", big}) + resp(many) + resp({"MGET", "big", "big"}) + resp({"PING"})));
        const std::string value = "$500\r\n" + big + "\r\n";
        CHECK(socket.receive_until("+PONG\r\n") ==
              "+OK\r\n-ERR the reply to MGET would exceed max_reply_size (4096 bytes)\r\n*2\r\n" + value + value +
                  "+PONG\r\n");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the connections above are gone

    // Connections past max_connections are refused; closing one frees a place.
    {
        std::vector<std::unique_ptr<Socket>> held;
        for (int i = 0; i < 8; ++i) {
            held.push_back(std::make_unique<Socket>(server.port()));
            REQUIRE(held.back()->send("PING\n"));
            REQUIRE(held.back()->receive_until("PONG\n") == "PONG\n");
        }
        Socket extra(server.port());
        CHECK(extra.receive_until("\r\n") == "-ERR max number of clients reached\r\n");
        held.pop_back();
        CHECK(answers_ping_soon(server));
    }

    // Memory stays bounded: many connections that each park a request just
    // under the query buffer limit cost at most that limit each.
    const long before = server.resident_kib();
    for (int round = 0; round < 20; ++round) {
        std::vector<std::unique_ptr<Socket>> parked;
        for (int i = 0; i < 7; ++i) {
            parked.push_back(std::make_unique<Socket>(server.port()));
            parked.back()->send(std::string(60 << 10, 'p'));
        }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const long after = server.resident_kib();
    INFO("resident memory before " << before << " KiB, after " << after << " KiB");
    CHECK(after - before < 16 * 1024);
    CHECK(answers_ping_soon(server));
    CHECK(server.running());
}

TEST_CASE("Config files set options, and unknown names or bad values are refused with the line", "[server][config]") {
    TempDir dir;
    const auto write = [&](const std::string& text) {
        std::ofstream(dir.path() + "/kvstore.conf") << text;
        return dir.path() + "/kvstore.conf";
    };
    std::string output;
    const std::string server = KVSTORE_SERVER_PATH;
    CHECK(run_command(server + " --config " + write("port 0\n# comment\nbogus 1\n") + " 2>&1", output) == 2);
    CHECK(output.find("kvstore.conf:3: unknown option 'bogus'") != std::string::npos);
    CHECK(run_command(server + " --config " + write("max_connections lots\n") + " 2>&1", output) == 2);
    CHECK(output.find("kvstore.conf:1: max_connections 'lots'") != std::string::npos);
    CHECK(run_command(server + " --config " + write("port 0\ncheckpoint_growth -5\n") + " 2>&1", output) == 2);
    CHECK(output.find("kvstore.conf:2: checkpoint_growth '-5': expected a percentage") != std::string::npos);
    CHECK(run_command(server + " --durability fast 2>&1", output) == 2);
    CHECK(output.find("durability 'fast': expected group, relaxed or none") != std::string::npos);

    ServerProcess configured({"--config", write("dir \"" + dir.path() +
                                                "/from file\"\nrequirepass \"pw # not a comment\"\n"
                                                "durability relaxed\nnum_shards 8\ncheckpoint_growth 250\n")});
    CHECK(configured.cli({"PING"}).find("NOAUTH Authentication required.") == 0);
    configured.redis_cli({"-a", "pw # not a comment", "--no-auth-warning", "INFO"}, output);
    CHECK(output.find("durability:relaxed") != std::string::npos);
    CHECK(output.find("shards:8") != std::string::npos);
    CHECK(output.find("checkpoint_growth:250") != std::string::npos);
    CHECK(output.find("checkpoint_bytes:67108864") != std::string::npos);
}

TEST_CASE("SIGTERM makes every acknowledged write durable, even in the relaxed mode", "[server][shutdown]") {
    TempDir dir;
    // An interval far longer than the test: only shutdown can sync these.
    ServerProcess server(in_dir(dir, {"--durability", "relaxed", "--flush_interval_ms", "600000"}));
    Socket socket(server.port());
    std::string requests;
    for (int i = 0; i < 1000; ++i) requests += resp({"SET", "key:" + std::to_string(i), std::to_string(i * 7)});
    REQUIRE(socket.send(requests));
    std::string expected;
    for (int i = 0; i < 1000; ++i) expected += "+OK\r\n";
    REQUIRE(socket.receive(expected.size()) == expected);
    CHECK(server.stop(SIGTERM) == 0);
    CHECK(server.log().find("everything acknowledged is durable") != std::string::npos);

    ServerProcess reopened(in_dir(dir));
    CHECK(reopened.cli({"DBSIZE"}) == "1000");
    CHECK(reopened.cli({"GET", "key:999"}) == "6993");
}

TEST_CASE("kill -9 during redis-benchmark loses no acknowledged SET", "[server][crash]") {
    TempDir dir;
    std::map<std::string, std::string> acknowledged;
    {
        ServerProcess server(in_dir(dir));
        std::string benchmark_output;
        std::thread load([&] {
            run_command(std::string(REDIS_BENCHMARK_PATH) + " -p " + std::to_string(server.port()) +
                            " -t set -n 100000000 -r 100000 -d 100 -c 20 -P 4 -q >/dev/null 2>&1",
                        benchmark_output);
        });
        // Our own writer pipelines SETs of distinct keys and records each
        // acknowledgement as it reads it, until the server is killed.
        std::atomic<bool> killed{false};
        std::thread killer([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(1500));
            killed = true;
            ::kill(server.pid(), SIGKILL);  // reaped below: Catch's checks are for the main thread
        });
        Socket socket(server.port());
        for (int batch = 0; !killed; ++batch) {
            std::string requests;
            std::vector<std::pair<std::string, std::string>> sent;
            for (int i = 0; i < 16; ++i) {
                sent.emplace_back("ack:" + std::to_string(batch * 16 + i),
                                  "value-" + std::to_string(batch) + "-" + std::to_string(i));
                requests += resp({"SET", sent.back().first, sent.back().second});
            }
            if (!socket.send(requests)) break;
            bool broken = false;
            for (const auto& [key, value] : sent) {
                if (socket.receive_until("\r\n") != "+OK\r\n") {
                    broken = true;
                    break;
                }
                acknowledged[key] = value;
            }
            if (broken) break;
        }
        killer.join();
        load.join();
        CHECK(server.stop(SIGKILL) == 128 + SIGKILL);
    }
    INFO(acknowledged.size() << " SETs acknowledged before the kill");
    REQUIRE(acknowledged.size() > 100);
    ServerProcess restarted(in_dir(dir));
    // Pipelined GETs of every acknowledged key, compared reply by reply.
    Socket socket(restarted.port());
    std::size_t missing = 0;
    for (auto chunk = acknowledged.begin(); chunk != acknowledged.end();) {
        std::string requests;
        std::string expected;
        for (int i = 0; i < 256 && chunk != acknowledged.end(); ++i, ++chunk) {
            requests += resp({"GET", chunk->first});
            expected += "$" + std::to_string(chunk->second.size()) + "\r\n" + chunk->second + "\r\n";
        }
        REQUIRE(socket.send(requests));
        const std::string got = socket.receive(expected.size());
        if (got != expected) ++missing;
    }
    CHECK(missing == 0);
}

TEST_CASE("A write past max_shard_memory answers OOM, changes nothing, and a restart keeps every acknowledged write",
          "[server][room]") {
    TempDir dir;
    const std::vector<std::string> args{"--dir", dir.path() + "/data", "--num_shards", "1", "--max_shard_memory",
                                        "64k"};
    // MSET of `count` keys from `first` on, each with a 100-byte value.
    auto mset = [](int first, int count) {
        std::vector<std::string> command{"MSET"};
        for (int i = first; i < first + count; ++i) {
            command.push_back("key" + std::to_string(i));
            command.push_back(std::string(100, 'v'));
        }
        return command;
    };
    {
        ServerProcess server(args);
        CHECK(server.cli(mset(0, 300)) == "OK");
        const std::string refused = server.cli(mset(300, 300));
        CHECK(refused.find("OOM no room") == 0);
        CHECK(refused.find("max_pooled_bytes_per_shard") != std::string::npos);
        CHECK(server.cli({"DBSIZE"}) == "300");
        CHECK(server.cli({"EXISTS", "key300"}) == "0");
        CHECK(server.cli({"GET", "key299"}) == std::string(100, 'v'));
        // Writes that fit go on: an erase, and a record the size of one freed.
        CHECK(server.cli({"DEL", "key100"}) == "1");
        CHECK(server.cli({"SET", "key300", std::string(100, 'w')}) == "OK");
        CHECK(server.stop(SIGKILL) != 0);
    }
    ServerProcess restarted(args);
    CHECK(restarted.cli({"DBSIZE"}) == "300");
    CHECK(restarted.cli({"EXISTS", "key100"}) == "0");
    CHECK(restarted.cli({"GET", "key300"}) == std::string(100, 'w'));
    CHECK(restarted.cli({"EXISTS", "key301"}) == "0");
}
