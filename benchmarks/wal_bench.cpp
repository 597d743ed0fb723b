// kvstore-wal-bench: the write-ahead log's durable writes per second under
// each policy, next to the physical limit of one sequential log writer (a
// raw write + fdatasync loop on the same disk) and RocksDB with sync=true,
// at several writer-thread counts; then replay speed.
//
// Every cell (peer x thread count) runs in a child process of its own (fork)
// in a fresh directory, for S seconds: each writer thread writes records with
// unique 16-byte keys and V-byte values and counts acknowledgements. The
// parent repeats the peers R times, rotating their order each round, and
// prints the medians and the ratios the durability docs quote. Replay: a
// child writes N records, reads the files once (warm page cache), then
// times a replay that decodes every record.
//
//   kvstore-wal-bench --seconds 2 --rounds 3 --threads 1,2,8,32,64
//   kvstore-wal-bench --peers raw,sync,group --markdown wal.md
#include "bench_common.hpp"

#include <kvstore/durability.hpp>
#include <kvstore/log_files.hpp>

#if KVSTORE_WAL_BENCH_HAVE_ROCKSDB
#include <rocksdb/db.h>
#endif

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Config {
    std::string dir;
    double seconds = 2;
    int rounds = 3;
    std::vector<unsigned> threads{1, 2, 8, 32, 64};
    std::vector<std::string> peers;
    std::size_t value_size = 100;
    std::uint64_t replay_records = 1'000'000;
    std::string markdown;
    std::string json;
};

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "kvstore-wal-bench: %s\n", message.c_str());
    std::exit(1);
}

void check(const kvstore::Status& status, const char* what) {
    if (!status) die(std::string(what) + ": " + status.to_string());
}

// A writer: write(thread, index) makes one record durable.
using WriteFn = std::function<void(unsigned, std::uint64_t)>;

struct Peer {
    const char* name;
    const char* description;
    // Opens the peer in `dir`, returns the write function and a closer
    // that returns extra figures to print.
    std::function<std::pair<WriteFn, std::function<std::string()>>(const Config&, const std::string& dir)> open;
};

std::string key_of(unsigned thread, std::uint64_t index) {
    kvstore_bench::KeyBuffer key;
    return key.format(static_cast<std::uint64_t>(thread) * 1'000'000'000ull + index);
}

auto ignore_records = [](const kvstore::LogRecord&) { return kvstore::Status::ok(); };

template <class Log>
std::pair<WriteFn, std::function<std::string()>> open_log(const Config& config, const std::string& dir,
                                                          kvstore::LogOptions options) {
    std::shared_ptr<Log> shared;
    {
        std::unique_ptr<Log> log;
        kvstore::RecoveryReport report;
        check(Log::open(dir, options, 0, ignore_records, report, log), "open");
        shared = std::move(log);
    }
    const std::string value(config.value_size, 'v');
    WriteFn write = [shared, value](unsigned thread, std::uint64_t index) {
        const std::string key = key_of(thread, index);
        check(shared->write({kvstore::LogRecordType::kPut, key, value, 0}), "write");
    };
    auto finish = [shared] {
        check(shared->flush(), "flush");
        const kvstore::LogStats stats = shared->stats();
        char text[160];
        std::snprintf(text, sizeof text, "avg group %.1f, largest %llu, avg sync %.0f us", stats.average_group,
                      static_cast<unsigned long long>(stats.largest_group), stats.average_sync_micros);
        return std::string(text);
    };
    return {write, finish};
}

std::vector<Peer> all_peers() {
    std::vector<Peer> peers;
    peers.push_back({"raw", "write + fdatasync loop (one file, one mutex)",
                     [](const Config& config, const std::string& dir) {
                         const int fd = ::open((dir + "/raw").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
                         if (fd < 0) die("open raw file");
                         auto mutex = std::make_shared<std::mutex>();
                         const std::string record(kvstore_bench::kKeySize + config.value_size + 32, 'r');
                         WriteFn write = [fd, mutex, record](unsigned, std::uint64_t) {
                             std::lock_guard<std::mutex> lock(*mutex);
                             if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size()) ||
                                 ::fdatasync(fd) != 0)
                                 die("raw write");
                         };
                         return std::make_pair(write, std::function<std::string()>([] { return std::string(); }));
                     }});
    peers.push_back({"sync", "kvstore SyncWAL", [](const Config& config, const std::string& dir) {
                         return open_log<kvstore::SyncWAL>(config, dir, kvstore::LogOptions{});
                     }});
    peers.push_back({"group", "kvstore GroupCommitWAL", [](const Config& config, const std::string& dir) {
                         return open_log<kvstore::GroupCommitWAL>(config, dir, kvstore::LogOptions{});
                     }});
    peers.push_back({"relaxed", "kvstore GroupCommitWAL, 100 ms interval (not durable at ack)",
                     [](const Config& config, const std::string& dir) {
                         kvstore::LogOptions options;
                         options.flush_interval = std::chrono::milliseconds(100);
                         return open_log<kvstore::GroupCommitWAL>(config, dir, options);
                     }});
#if KVSTORE_WAL_BENCH_HAVE_ROCKSDB
    peers.push_back({"rocksdb", "RocksDB, WriteOptions::sync = true", [](const Config& config, const std::string& dir) {
                         rocksdb::Options options;
                         options.create_if_missing = true;
                         rocksdb::DB* raw = nullptr;
                         const rocksdb::Status status = rocksdb::DB::Open(options, dir + "/rocksdb", &raw);
                         if (!status.ok()) die("rocksdb open: " + status.ToString());
                         std::shared_ptr<rocksdb::DB> db(raw);
                         const std::string value(config.value_size, 'v');
                         WriteFn write = [db, value](unsigned thread, std::uint64_t index) {
                             rocksdb::WriteOptions sync;
                             sync.sync = true;
                             const rocksdb::Status put = db->Put(sync, key_of(thread, index), value);
                             if (!put.ok()) die("rocksdb put: " + put.ToString());
                         };
                         return std::make_pair(write, std::function<std::string()>([] { return std::string(); }));
                     }});
#endif
    return peers;
}

void remove_tree(const std::string& path) {
    const std::string command = "rm -rf '" + path + "'";
    if (std::system(command.c_str()) != 0) die("could not remove " + path);
}

// Runs `body` in a child process and returns the line it writes.
std::string in_child(const std::function<std::string()>& body) {
    int fds[2];
    if (::pipe(fds) != 0) die("pipe");
    const pid_t child = ::fork();
    if (child < 0) die("fork");
    if (child == 0) {
        ::close(fds[0]);
        const std::string line = body() + "\n";
        if (::write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(3);
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string out;
    char buffer[512];
    ssize_t got = 0;
    while ((got = ::read(fds[0], buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(got));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("a benchmark child failed");
    return out;
}

// One cell: records/s and the peer's own figures.
std::pair<double, std::string> run_cell(const Config& config, const Peer& peer, unsigned threads) {
    const std::string line = in_child([&] {
        const std::string dir = config.dir + "/cell";
        remove_tree(dir);
        ::mkdir(dir.c_str(), 0700);
        auto [write, finish] = peer.open(config, dir);
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> acknowledged{0};
        std::vector<std::thread> writers;
        const auto started = std::chrono::steady_clock::now();
        for (unsigned t = 0; t < threads; ++t) {
            writers.emplace_back([&, t, write = write] {
                std::uint64_t done = 0;
                while (!stop.load(std::memory_order_relaxed)) write(t, done++);
                acknowledged += done;
            });
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(config.seconds));
        stop = true;
        for (std::thread& writer : writers) writer.join();
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const std::string extra = finish();
        return std::to_string(static_cast<double>(acknowledged) / elapsed) + " " + extra;
    });
    std::istringstream in(line);
    double rate = 0;
    in >> rate;
    std::string extra;
    std::getline(in, extra);
    return {rate, extra};
}

// Replay: records/s and MB/s of segment bytes.
std::pair<double, double> run_replay(const Config& config) {
    const std::string line = in_child([&] {
        const std::string dir = config.dir + "/replay";
        remove_tree(dir);
        {
            kvstore::LogOptions options;
            options.flush_interval = std::chrono::milliseconds(100);
            std::unique_ptr<kvstore::GroupCommitWAL> log;
            kvstore::RecoveryReport report;
            check(kvstore::GroupCommitWAL::open(dir, options, 0, ignore_records, report, log), "open");
            const std::string value(config.value_size, 'v');
            kvstore_bench::KeyBuffer key;
            for (std::uint64_t i = 0; i < config.replay_records; ++i)
                check(log->write({kvstore::LogRecordType::kPut, key.format(i), value, 0}), "write");
            check(log->close(), "close");
        }
        std::uint64_t operations = 0;
        std::uint64_t value_bytes = 0;
        auto apply = [&](const kvstore::LogRecord& record) {
            return kvstore::for_each_operation(record, [&](const kvstore::LogOperation& op) {
                ++operations;
                value_bytes += op.value.size();
            });
        };
        kvstore::RecoveryReport report;
        kvstore::FileSystem& fs = kvstore::default_file_system();
        const kvstore::RecoveryMode mode = kvstore::RecoveryMode::kTolerateTornTail;
        check(kvstore::read_log_files(fs, dir, 0, mode, apply, report), "warm-up replay");
        operations = 0;
        const auto started = std::chrono::steady_clock::now();
        check(kvstore::read_log_files(fs, dir, 0, mode, apply, report), "replay");
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (operations != config.replay_records) die("replay lost records");
        return std::to_string(static_cast<double>(operations) / elapsed) + " " +
               std::to_string(static_cast<double>(report.bytes) / elapsed / 1e6);
    });
    std::istringstream in(line);
    double records = 0;
    double megabytes = 0;
    in >> records >> megabytes;
    return {records, megabytes};
}

std::string describe_disk(const std::string& dir) {
    struct statfs info {};
    if (::statfs(dir.c_str(), &info) != 0) return "unknown";
    static const std::map<long, const char*> kTypes{{0xEF53, "ext2/3/4"}, {0x58465342, "xfs"},
                                                    {0x9123683E, "btrfs"},  {0x01021994, "tmpfs"},
                                                    {0x794c7630, "overlayfs"}};
    const auto it = kTypes.find(static_cast<long>(info.f_type));
    struct stat where {};
    ::stat(dir.c_str(), &where);
    char text[200];
    std::snprintf(text, sizeof text, "%s (device %u:%u)", it == kTypes.end() ? "unknown file system" : it->second,
                  major(where.st_dev), minor(where.st_dev));
    return text;
}

Config parse(int argc, char** argv) {
    Config config;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value after " + flag);
            return argv[++i];
        };
        if (flag == "--dir") {
            config.dir = value();
        } else if (flag == "--seconds") {
            config.seconds = std::stod(value());
        } else if (flag == "--rounds") {
            config.rounds = std::stoi(value());
        } else if (flag == "--threads") {
            config.threads.clear();
            for (const std::string& part : kvstore_bench::split_list(value())) config.threads.push_back(static_cast<unsigned>(std::stoul(part)));
        } else if (flag == "--peers") {
            config.peers = kvstore_bench::split_list(value());
        } else if (flag == "--value-size") {
            config.value_size = std::stoul(value());
        } else if (flag == "--replay-records") {
            config.replay_records = std::stoull(value());
        } else if (flag == "--markdown") {
            config.markdown = value();
        } else if (flag == "--json") {
            config.json = value();
        } else {
            std::fprintf(stderr,
                         "usage: kvstore-wal-bench [--dir PATH] [--seconds S] [--rounds R] [--threads 1,2,8,32,64]\n"
                         "                         [--peers raw,sync,group,relaxed,rocksdb] [--value-size B]\n"
                         "                         [--replay-records N] [--markdown FILE] [--json FILE]\n");
            std::exit(flag == "--help" ? 0 : 1);
        }
    }
    if (config.seconds <= 0 || config.rounds < 1 || config.threads.empty()) die("bad --seconds, --rounds or --threads");
    return config;
}

}  // namespace

int main(int argc, char** argv) {
    Config config = parse(argc, argv);
    const bool own_dir = config.dir.empty();
    if (own_dir) {
        char pattern[] = "/var/tmp/kvstore-wal-bench-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) die("mkdtemp in /var/tmp");
        config.dir = pattern;
    }
    std::vector<Peer> peers;
    for (Peer& peer : all_peers())
        if (config.peers.empty() || std::find(config.peers.begin(), config.peers.end(), peer.name) != config.peers.end())
            peers.push_back(std::move(peer));
    if (peers.empty()) die("no peer selected is built in");

    // [peer][thread index] -> rates over rounds
    std::vector<std::vector<std::vector<double>>> rates(peers.size(),
                                                        std::vector<std::vector<double>>(config.threads.size()));
    std::vector<std::vector<std::string>> extras(peers.size(), std::vector<std::string>(config.threads.size()));
    std::vector<double> replay_records;
    std::vector<double> replay_megabytes;
    for (int round = 0; round < config.rounds; ++round) {
        for (std::size_t n = 0; n < peers.size(); ++n) {
            const std::size_t p = (n + static_cast<std::size_t>(round)) % peers.size();
            for (std::size_t t = 0; t < config.threads.size(); ++t) {
                auto [rate, extra] = run_cell(config, peers[p], config.threads[t]);
                rates[p][t].push_back(rate);
                extras[p][t] = extra;
                std::fprintf(stderr, "round %d %-8s %3u threads: %9.0f records/s %s\n", round + 1, peers[p].name,
                             config.threads[t], rate, extra.c_str());
            }
        }
        auto [records, megabytes] = run_replay(config);
        replay_records.push_back(records);
        replay_megabytes.push_back(megabytes);
        std::fprintf(stderr, "round %d replay: %.2f M records/s, %.0f MB/s\n", round + 1, records / 1e6, megabytes);
    }

    // [peer][thread index] -> the median over rounds
    std::vector<std::vector<double>> medians(peers.size());
    for (std::size_t p = 0; p < peers.size(); ++p)
        for (const std::vector<double>& round_rates : rates[p])
            medians[p].push_back(kvstore_bench::median(round_rates));
    const std::string disk = describe_disk(config.dir);

    std::string out;
    char line[512];
    std::snprintf(line, sizeof line,
                  "Disk: %s. Records: 16-byte keys, %zu-byte values. %g s per cell, median of %d round(s).\n\n",
                  disk.c_str(), config.value_size, config.seconds, config.rounds);
    out += line;
    out += "| records/s |";
    for (unsigned threads : config.threads) out += " " + std::to_string(threads) + " thr |";
    out += "\n|---|";
    for (std::size_t t = 0; t < config.threads.size(); ++t) out += "---|";
    out += "\n";
    auto rate_of = [&](const char* name, unsigned threads) -> double {
        for (std::size_t p = 0; p < peers.size(); ++p) {
            if (std::strcmp(peers[p].name, name) != 0) continue;
            for (std::size_t t = 0; t < config.threads.size(); ++t)
                if (config.threads[t] == threads) return medians[p][t];
        }
        return 0;
    };
    for (std::size_t p = 0; p < peers.size(); ++p) {
        out += std::string("| ") + peers[p].description + " |";
        for (std::size_t t = 0; t < config.threads.size(); ++t) {
            std::snprintf(line, sizeof line, " %.0f |", medians[p][t]);
            out += line;
        }
        out += "\n";
    }
    std::snprintf(line, sizeof line, "\nReplay (warm page cache, every record decoded): %.2f M records/s, %.0f MB/s\n",
                  kvstore_bench::median(replay_records) / 1e6, kvstore_bench::median(replay_megabytes));
    out += line;

    out += "\n| figure | value |\n|---|---|\n";
    auto ratio = [&](const char* label, double numerator, double denominator) {
        if (numerator <= 0 || denominator <= 0) return;
        std::snprintf(line, sizeof line, "| %s | %.2f |\n", label, numerator / denominator);
        out += line;
    };
    ratio("SyncWAL 1 thr / raw write+fdatasync 1 thr", rate_of("sync", 1), rate_of("raw", 1));
    ratio("GroupCommitWAL 32 thr / SyncWAL 1 thr", rate_of("group", 32), rate_of("sync", 1));
    ratio("GroupCommitWAL 32 thr / RocksDB sync 32 thr", rate_of("group", 32), rate_of("rocksdb", 32));
    ratio("GroupCommitWAL 64 thr / RocksDB sync 64 thr", rate_of("group", 64), rate_of("rocksdb", 64));
    std::snprintf(line, sizeof line, "| replay M records/s | %.2f |\n", kvstore_bench::median(replay_records) / 1e6);
    out += line;

    std::fputs(out.c_str(), stdout);
    if (!config.markdown.empty()) {
        FILE* file = std::fopen(config.markdown.c_str(), "w");
        if (file == nullptr) die("cannot write " + config.markdown);
        std::fputs(out.c_str(), file);
        std::fclose(file);
    }
    if (!config.json.empty()) {
        using namespace kvstore_bench;
        std::vector<std::string> threads, entries;
        for (const unsigned t : config.threads) threads.push_back(std::to_string(t));
        for (std::size_t p = 0; p < peers.size(); ++p)
            entries.push_back(json_object({{"id", json_string(peers[p].name)},
                                           {"label", json_string(peers[p].description)},
                                           {"records_per_second", json_numbers(medians[p])}}));
        const std::string json =
            json_object({{"driver", json_string("kvstore-wal-bench")},
                         {"disk", json_string(disk)},
                         {"value_size", std::to_string(config.value_size)},
                         {"seconds", json_number(config.seconds)},
                         {"rounds", std::to_string(config.rounds)},
                         {"threads", json_array(threads)},
                         {"peers", json_array(entries)},
                         {"replay_records", std::to_string(config.replay_records)},
                         {"replay_records_per_second", json_number(median(replay_records))},
                         {"replay_megabytes_per_second", json_number(median(replay_megabytes))}});
        if (!write_file(config.json, json)) die("cannot write " + config.json);
    }
    if (own_dir) remove_tree(config.dir);
    return 0;
}
