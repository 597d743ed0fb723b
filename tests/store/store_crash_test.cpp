// Stores killed with SIGKILL at random points while writing and
// checkpointing: reopening finds every acknowledged write, and no value that
// was never written.
#include "catch.hpp"
#include "kill_child.hpp"
#include "temp_dir.hpp"

#include <kvstore/store.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;

namespace {

constexpr int kWriters = 3;
constexpr int kKeysPerWriter = 40;
// In the TTL run, writer 0's keys live an hour, writer 1's a millisecond.
constexpr int kLongLived = 0;
constexpr std::chrono::milliseconds kShortTtl(1);

// Writer t owns keys "t<t>-<k>" and writes them in turn with values
// "t<t>-<i>", i = 0, 1, 2...: key k gets i with i % kKeysPerWriter == k, and
// later writes to a key always carry larger i.
std::string key_of(int writer, long i) {
    return "t" + std::to_string(writer) + "-" + std::to_string(i % kKeysPerWriter);
}
std::string value_of(int writer, long i) { return "t" + std::to_string(writer) + "-" + std::to_string(i); }

// `first` grows from run to run, so that every write to a key carries a
// larger i than the writes of earlier runs.
// Writers 0..writers-1 write their keys, writer t's with ttl_of(t) if that
// has a value, while another thread checkpoints every 2 ms.
[[noreturn]] void write_until_killed(const std::string& dir, int report_fd, long first, int writers,
                                     std::function<std::optional<std::chrono::milliseconds>(int)> ttl_of,
                                     const StoreOptions& options) {
    std::unique_ptr<Store<std::string, std::string, GroupCommitWAL>> store;
    if (!Store<std::string, std::string, GroupCommitWAL>::open(dir, options, store)) ::_exit(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < writers; ++t) {
        threads.emplace_back([&, t] {
            const auto ttl = ttl_of(t);
            for (long i = first;; ++i) {
                const Status written =
                    ttl ? store->put(key_of(t, i), value_of(t, i), *ttl) : store->put(key_of(t, i), value_of(t, i));
                if (!written) ::_exit(3);
                const std::string line = value_of(t, i) + "\n";
                if (::write(report_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(4);
            }
        });
    }
    threads.emplace_back([&] {
        for (;;) {
            if (!store->checkpoint()) ::_exit(5);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    });
    for (std::thread& thread : threads) thread.join();
    ::_exit(0);
}

StoreOptions small_segments() {
    StoreOptions options;
    options.log.segment_bytes = 8 << 10;
    return options;
}

// "t<t>-<i>" -> (t, i)
std::pair<int, long> parse(const std::string& value) {
    const auto dash = value.find('-');
    return {std::stoi(value.substr(1, dash - 1)), std::stol(value.substr(dash + 1))};
}

}  // namespace

TEST_CASE("200 random kills during writes and checkpoints lose no acknowledged write", "[store][crash]") {
    test::TempDir scratch;
    const std::string dir = scratch.path() + "/store";
    std::mt19937 random(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::map<std::string, long> acknowledged;  // key -> newest i acknowledged, over every run
    long acknowledged_writes = 0;
    int lost = 0;
    int invented = 0;
    for (int run = 0; run < 200; ++run) {
        // As in the TTL test below: each run starts at another key, so that
        // short runs on a slow machine still spread over every key.
        const long first = static_cast<long>(run) * 100'000'000L + (run * 13) % kKeysPerWriter;
        const std::string all = test::kill_after(std::chrono::microseconds(2000 + random() % 25000), [&](int fd) {
            write_until_killed(dir, fd, first, kWriters, [](int) { return std::nullopt; }, small_segments());
        });
        for (std::size_t start = 0, end; (end = all.find('\n', start)) != std::string::npos; start = end + 1) {
            ++acknowledged_writes;
            const auto [writer, i] = parse(all.substr(start, end - start));
            long& newest = acknowledged[key_of(writer, i)];
            newest = std::max(newest, i);
        }

        std::unique_ptr<Store<std::string, std::string, GroupCommitWAL>> store;
        const Status opened = Store<std::string, std::string, GroupCommitWAL>::open(dir, StoreOptions{}, store);
        if (!opened) FAIL("run " << run << ": " << opened.to_string());
        std::map<std::string, std::string> recovered;
        store->for_each([&](const auto& key, const auto& value) { recovered.emplace(key, value); });
        for (const auto& [key, newest] : acknowledged) {
            const auto it = recovered.find(key);
            if (it == recovered.end() || parse(it->second).second < newest) ++lost;
        }
        for (const auto& [key, value] : recovered) {
            const auto [writer, i] = parse(value);
            if (key != key_of(writer, i)) ++invented;
        }
        // Continue from what this open recovered: later runs must keep it.
        for (const auto& [key, value] : recovered) {
            long& newest = acknowledged[key];
            newest = std::max(newest, parse(value).second);
        }
    }
    CHECK(lost == 0);
    CHECK(invented == 0);
    // kill_after waits for a first acknowledgement, so every run has one.
    CHECK(acknowledged_writes >= 200);
    CHECK(scratch.remove());
}

TEST_CASE("Batches cut by SIGKILL are there whole or not at all", "[store][crash]") {
    test::TempDir scratch;
    const std::string dir = scratch.path() + "/store";
    std::mt19937 random(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
    constexpr int kPairs = 16;
    int torn = 0;
    for (int run = 0; run < 50; ++run) {
        test::kill_after(std::chrono::microseconds(1000 + random() % 10000), [&](int fd) {
            StoreOptions options;
            options.log.segment_bytes = 8 << 10;
            std::unique_ptr<Store<std::string, std::string, GroupCommitWAL>> store;
            if (!Store<std::string, std::string, GroupCommitWAL>::open(dir, options, store)) ::_exit(2);
            std::thread checkpointer([&] {
                for (;;) {
                    if (!store->checkpoint()) ::_exit(5);
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
            });
            // Each batch gives both keys of a pair the same new value.
            for (long i = 0;; ++i) {
                const std::string pair = std::to_string(i % kPairs);
                const std::string value = std::to_string(run) + ":" + std::to_string(i);
                WriteBatch<std::string, std::string> batch;
                batch.put("left-" + pair, value);
                batch.put("right-" + pair, value);
                if (!store->write(batch)) ::_exit(3);
                if (::write(fd, "+", 1) != 1) ::_exit(4);
            }
        });
        std::unique_ptr<Store<std::string, std::string, GroupCommitWAL>> store;
        const Status opened = Store<std::string, std::string, GroupCommitWAL>::open(dir, StoreOptions{}, store);
        if (!opened) FAIL("run " << run << ": " << opened.to_string());
        for (int pair = 0; pair < kPairs; ++pair)
            if (store->get("left-" + std::to_string(pair)) != store->get("right-" + std::to_string(pair))) ++torn;
    }
    CHECK(torn == 0);
    CHECK(scratch.remove());
}

TEST_CASE("Kills during TTL sweeps keep every live acknowledged key and bring back no expired one",
          "[store][crash][ttl]") {
    test::TempDir scratch;
    const std::string dir = scratch.path() + "/store";
    std::mt19937 random(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::map<std::string, long> acknowledged;  // writer 0's keys -> newest i
    int lost = 0;
    int resurrected = 0;
    int invented = 0;
    for (int run = 0; run < 50; ++run) {
        // Each run starts at another key (13 and kKeysPerWriter share no
        // factor), so that short runs, under a sanitizer say, still cover
        // every key between them; i still grows from run to run.
        const long first = static_cast<long>(run) * 100'000'000L + (run * 13) % kKeysPerWriter;
        const std::string all = test::kill_after(std::chrono::microseconds(1000 + random() % 15000), [&](int fd) {
            StoreOptions options = small_segments();
            options.sweep_interval = std::chrono::milliseconds(1);
            write_until_killed(
                dir, fd, first, 2,
                [](int t) -> std::optional<std::chrono::milliseconds> {
                    return t == kLongLived ? std::chrono::milliseconds(std::chrono::hours(1)) : kShortTtl;
                },
                options);
        });
        for (std::size_t start = 0, end; (end = all.find('\n', start)) != std::string::npos; start = end + 1) {
            const auto [writer, i] = parse(all.substr(start, end - start));
            if (writer != kLongLived) continue;
            long& newest = acknowledged[key_of(writer, i)];
            newest = std::max(newest, i);
        }
        std::this_thread::sleep_for(2 * kShortTtl);  // every short-lived key has expired

        std::unique_ptr<Store<std::string, std::string, GroupCommitWAL>> store;
        const Status opened = Store<std::string, std::string, GroupCommitWAL>::open(dir, StoreOptions{}, store);
        if (!opened) FAIL("run " << run << ": " << opened.to_string());
        for (const auto& [key, newest] : acknowledged) {
            const auto value = store->get(key);
            if (!value || parse(*value).second < newest) ++lost;
        }
        std::size_t live = 0;
        store->for_each([&](const auto& key, const auto& value) {
            const auto [writer, i] = parse(std::string(value));
            if (key != key_of(writer, i)) ++invented;
            if (writer != kLongLived) ++resurrected;
            ++live;
        });
        // Expired keys are not even loaded.
        if (store->size() != live) ++resurrected;
    }
    CHECK(lost == 0);
    CHECK(resurrected == 0);
    CHECK(invented == 0);
    CHECK(acknowledged.size() == kKeysPerWriter);
    CHECK(scratch.remove());
}
