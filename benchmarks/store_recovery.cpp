// kvstore-store-recovery: how long opening a Store<std::string, std::string,
// GroupCommitWAL> takes with N records (16-byte keys, V-byte values) to
// recover, first from the log alone, then from a snapshot, with a warm page
// cache; and how long the checkpoint that writes the snapshot takes.
//
//   kvstore-store-recovery [--records N] [--value-size V] [--rounds R] [--dir PATH]
#include "bench_common.hpp"

#include <kvstore/store.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using StringStore = kvstore::Store<std::string, std::string, kvstore::GroupCommitWAL>;

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "kvstore-store-recovery: %s\n", message.c_str());
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

}  // namespace

int main(int argc, char** argv) {
    std::size_t records = 1'000'000;
    std::size_t value_size = 100;
    int rounds = 3;
    std::string dir = "/var/tmp/kvstore-store-recovery";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--records") {
            records = std::stoul(argv[i + 1]);
        } else if (flag == "--value-size") {
            value_size = std::stoul(argv[i + 1]);
        } else if (flag == "--rounds") {
            rounds = std::max(1, std::stoi(argv[i + 1]));
        } else if (flag == "--dir") {
            dir = argv[i + 1];
        } else {
            die("unknown option " + flag);
        }
    }
    if (argc % 2 == 0) die("usage: kvstore-store-recovery [--records N] [--value-size V] [--rounds R] [--dir PATH]");
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
    if (std::system(("rm -rf '" + dir + "'").c_str()) != 0) die("cannot remove " + dir);
    return 0;
}
