// kvstore-store-bench: a Store<std::string, std::string, GroupCommitWAL>
// holding N records (16-byte keys, V-byte values):
//   - how long opening it takes, recovering first from the log alone, then
//     from a snapshot, with a warm page cache, and how long the checkpoint
//     that writes the snapshot takes;
//   - the longest time a writer waits while a checkpoint runs under a steady
//     write load (W writer threads putting random keys, each flat out or at
//     a steady rate of P puts/s), next to the longest
//     wait outside it, with the log relaxed (what the checkpoint's shard
//     locks cost) and durable (what its disk traffic adds to syncs).
// Throughput of the Store under each policy next to the bare map is in
// kvstore-compare (peers store-none, store-relaxed, store-group, store-sync).
//
//   kvstore-store-bench [--records N] [--value-size V] [--rounds R] [--writers W] [--write-rate P]
//                       [--dir PATH] [--json FILE]
#include "bench_common.hpp"

#include <kvstore/store.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using StringStore = kvstore::Store<std::string, std::string, kvstore::GroupCommitWAL>;

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "kvstore-store-bench: %s\n", message.c_str());
    std::exit(1);
}

void check(const kvstore::Status& status, const char* what) {
    if (!status) die(std::string(what) + ": " + status.to_string());
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Opens the store `rounds` times and returns the median open time.
double median_open(const std::string& dir, const kvstore::StoreOptions& options, int rounds, std::size_t expected) {
    std::vector<double> times;
    for (int round = 0; round < rounds; ++round) {
        const auto started = std::chrono::steady_clock::now();
        std::unique_ptr<StringStore> store;
        check(StringStore::open(dir, options, store), "open");
        times.push_back(seconds_since(started));
        if (store->size() != expected) die("recovered " + std::to_string(store->size()) + " entries");
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

struct CheckpointUnderLoad {
    double checkpoint_seconds = 0;
    std::uint64_t writes_during = 0;
    double longest_wait_during_ms = 0;
    double longest_wait_outside_ms = 0;
};

// Writers put random existing keys for `settle`, then through a checkpoint,
// then for `settle` again, each `rate` puts a second (0: flat out); each
// put's wait counts as during the checkpoint if the checkpoint ran at any
// moment of it.
CheckpointUnderLoad checkpoint_under_load(const std::string& dir, const kvstore::StoreOptions& options,
                                          std::size_t records, std::size_t value_size, int writers, double rate) {
    using Clock = std::chrono::steady_clock;
    constexpr auto settle = std::chrono::milliseconds(300);
    std::unique_ptr<StringStore> store;
    check(StringStore::open(dir, options, store), "open");
    std::atomic<std::uint64_t> checkpoints_started{0};
    std::atomic<std::uint64_t> checkpoints_done{0};
    std::atomic<bool> stop{false};
    std::vector<CheckpointUnderLoad> seen(static_cast<std::size_t>(writers));
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            kvstore_bench::KeyBuffer key;
            kvstore_bench::SplitMix64 random(static_cast<std::uint64_t>(w) + 1);
            std::string value(value_size, 'w');
            CheckpointUnderLoad& mine = seen[static_cast<std::size_t>(w)];
            const auto period =
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(rate > 0 ? 1.0 / rate : 0.0));
            auto next_put = Clock::now();
            while (!stop.load(std::memory_order_relaxed)) {
                if (rate > 0) {
                    // Sleeping, not spinning, while ahead of the rate: a
                    // spinning writer would take a core from the checkpoint
                    // and the log thread, and its puts would then wait for
                    // the scheduler rather than for the store. The sleep is
                    // coarser than the period, so puts come in short bursts
                    // that keep the rate.
                    next_put += period;
                    if (Clock::now() < next_put) std::this_thread::sleep_until(next_put);
                }
                const std::uint64_t done_before = checkpoints_done.load();
                const bool running_before = checkpoints_started.load() != done_before;
                const auto started = Clock::now();
                check(store->put(key.format(random.next() % records), value), "put");
                const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
                const bool during = running_before || checkpoints_started.load() != done_before;
                if (during) {
                    ++mine.writes_during;
                    mine.longest_wait_during_ms = std::max(mine.longest_wait_during_ms, ms);
                } else {
                    mine.longest_wait_outside_ms = std::max(mine.longest_wait_outside_ms, ms);
                }
            }
        });
    }
    CheckpointUnderLoad figures;
    std::this_thread::sleep_for(settle);
    checkpoints_started.fetch_add(1);
    const auto started = Clock::now();
    check(store->checkpoint(), "checkpoint");
    figures.checkpoint_seconds = seconds_since(started);
    checkpoints_done.fetch_add(1);
    std::this_thread::sleep_for(settle);
    stop = true;
    for (std::thread& thread : threads) thread.join();
    for (const CheckpointUnderLoad& writer : seen) {
        figures.writes_during += writer.writes_during;
        figures.longest_wait_during_ms = std::max(figures.longest_wait_during_ms, writer.longest_wait_during_ms);
        figures.longest_wait_outside_ms = std::max(figures.longest_wait_outside_ms, writer.longest_wait_outside_ms);
    }
    return figures;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t records = 1'000'000;
    std::size_t value_size = 100;
    int rounds = 3;
    int writers = 1;
    double write_rate = 0;
    std::string dir = "/var/tmp/kvstore-store-bench";
    std::string json_path;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--records") {
            records = std::stoul(argv[i + 1]);
        } else if (flag == "--value-size") {
            value_size = std::stoul(argv[i + 1]);
        } else if (flag == "--rounds") {
            rounds = std::max(1, std::stoi(argv[i + 1]));
        } else if (flag == "--writers") {
            writers = std::max(1, std::stoi(argv[i + 1]));
        } else if (flag == "--write-rate") {
            write_rate = std::max(0.0, std::stod(argv[i + 1]));
        } else if (flag == "--dir") {
            dir = argv[i + 1];
        } else if (flag == "--json") {
            json_path = argv[i + 1];
        } else {
            die("unknown option " + flag);
        }
    }
    if (argc % 2 == 0)
        die("usage: kvstore-store-bench [--records N] [--value-size V] [--rounds R] [--writers W] [--write-rate P] "
            "[--dir PATH] [--json FILE]");
    if (std::system(("rm -rf '" + dir + "'").c_str()) != 0) die("cannot clear " + dir);

    kvstore::StoreOptions options;
    options.log.flush_interval = std::chrono::milliseconds(100);  // loading fast; durability is not measured here
    options.checkpoint_bytes = 0;
    {
        std::unique_ptr<StringStore> store;
        check(StringStore::open(dir, options, store), "open");
        const std::string value(value_size, 'v');
        kvstore_bench::KeyBuffer key;
        for (std::size_t i = 0; i < records; ++i) check(store->put(key.format(i), value), "put");
    }
    const double from_log = median_open(dir, options, rounds, records);

    double checkpoint_seconds = 0;
    {
        std::unique_ptr<StringStore> store;
        check(StringStore::open(dir, options, store), "open");
        const auto started = std::chrono::steady_clock::now();
        check(store->checkpoint(), "checkpoint");
        checkpoint_seconds = seconds_since(started);
    }
    const double from_snapshot = median_open(dir, options, rounds, records);

    std::printf("| %zu records, %zu-byte values, median of %d | seconds |\n|---|---|\n", records, value_size, rounds);
    std::printf("| open, recovering from the log alone | %.3f |\n", from_log);
    std::printf("| checkpoint | %.3f |\n", checkpoint_seconds);
    std::printf("| open, recovering from the snapshot | %.3f |\n", from_snapshot);

    const std::string pace = write_rate > 0 ? std::to_string(static_cast<long>(write_rate)) + " puts/s" : "flat out";
    std::printf(
        "\n| checkpoint of %zu entries under %d writer thread(s), %s | checkpoint s | writes during it | "
        "longest write wait during it, ms | longest wait outside it, ms |\n|---|---|---|---|---|\n",
        records, writers, pace.c_str());
    std::vector<std::string> under_load;
    for (const bool durable : {false, true}) {
        kvstore::StoreOptions load_options = options;
        if (durable) load_options.log.flush_interval = std::chrono::milliseconds(0);
        const CheckpointUnderLoad figures =
            checkpoint_under_load(dir, load_options, records, value_size, writers, write_rate);
        std::printf("| %s | %.3f | %llu | %.2f | %.2f |\n",
                    durable ? "GroupCommitWAL, durable" : "GroupCommitWAL, relaxed 100 ms", figures.checkpoint_seconds,
                    static_cast<unsigned long long>(figures.writes_during), figures.longest_wait_during_ms,
                    figures.longest_wait_outside_ms);
        using namespace kvstore_bench;
        under_load.push_back(json_object({{"log", json_string(durable ? "durable" : "relaxed")},
                                          {"checkpoint_seconds", json_number(figures.checkpoint_seconds)},
                                          {"writes_during", std::to_string(figures.writes_during)},
                                          {"longest_wait_during_ms", json_number(figures.longest_wait_during_ms)},
                                          {"longest_wait_outside_ms", json_number(figures.longest_wait_outside_ms)}}));
    }
    if (!json_path.empty()) {
        using namespace kvstore_bench;
        const std::string json = json_object({{"driver", json_string("kvstore-store-bench")},
                                              {"records", std::to_string(records)},
                                              {"value_size", std::to_string(value_size)},
                                              {"rounds", std::to_string(rounds)},
                                              {"writers", std::to_string(writers)},
                                              {"write_rate", json_number(write_rate)},
                                              {"open_from_log_seconds", json_number(from_log)},
                                              {"checkpoint_seconds", json_number(checkpoint_seconds)},
                                              {"open_from_snapshot_seconds", json_number(from_snapshot)},
                                              {"checkpoint_under_load", json_array(under_load)}});
        if (!write_file(json_path, json)) die("cannot write " + json_path);
    }
    if (std::system(("rm -rf '" + dir + "'").c_str()) != 0) die("cannot remove " + dir);
    return 0;
}
