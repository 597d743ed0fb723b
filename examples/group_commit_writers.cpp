// Many writers, few syncs: threads write to one Store<..., GroupCommitWAL>.
// Every put still returns only once its record is on disk, but writers that
// arrive while a sync is in flight are made durable together by the next
// one, so the store makes far fewer syncs than writes. The log's figures
// show the sharing; a reopen shows that every acknowledged write is there.
//
//   kvstore-example-group-commit [DIR]   (default: a new directory under /tmp, removed at the end)
#include "example_support.hpp"

#include <kvstore/kvstore.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Store = kvstore::Store<std::string, std::string, kvstore::GroupCommitWAL>;

constexpr int kWriters = 8;
constexpr int kWritesEach = 500;

std::string key_of(int writer, int i) { return "writer-" + std::to_string(writer) + "/" + std::to_string(i); }
std::string value_of(int writer, int i) { return "payload " + std::to_string(writer * kWritesEach + i); }

}  // namespace

int main(int argc, char** argv) {
    const example::StoreDir dir(argc, argv, "group-commit");
    using example::ok;

    kvstore::StoreOptions options;
    // No automatic checkpoint in the middle: the figures below are then the
    // log's alone.
    options.checkpoint_bytes = 0;
    std::unique_ptr<Store> store;
    if (!ok(Store::open(dir.path(), options, store), "open")) return 1;

    std::atomic<int> failed{0};
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
        writers.emplace_back([&, w] {
            for (int i = 0; i < kWritesEach; ++i)
                if (!ok(store->put(key_of(w, i), value_of(w, i)), "put")) failed.fetch_add(1);
        });
    }
    for (std::thread& writer : writers) writer.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    const kvstore::LogStats log = store->stats().log;
    std::printf("%d writes from %d threads in %.2f s, each acknowledged only once durable\n", kWriters * kWritesEach,
                kWriters, seconds);
    std::printf("%llu syncs: %.1f writes per sync on average, at most %llu in one, %.0f us per sync\n",
                static_cast<unsigned long long>(log.syncs), log.average_group,
                static_cast<unsigned long long>(log.largest_group), log.average_sync_micros);
    if (!ok(store->close(), "close")) return 1;

    std::unique_ptr<Store> reopened;
    if (!ok(Store::open(dir.path(), options, reopened), "reopen")) return 1;
    int missing = 0;
    for (int w = 0; w < kWriters; ++w)
        for (int i = 0; i < kWritesEach; ++i)
            if (reopened->get(key_of(w, i)) != value_of(w, i)) ++missing;

    bool holds = example::expect(failed.load() == 0, "every put succeeded");
    holds &= example::expect(log.records == static_cast<std::uint64_t>(kWriters * kWritesEach),
                             "the log wrote one record per put");
    // With eight writers waiting on the disk at once, some of them must
    // have shared a sync.
    holds &= example::expect(log.syncs < log.records, "writers shared syncs (fewer syncs than writes)");
    holds &= example::expect(missing == 0, "after reopening, every acknowledged write is there");
    return holds ? 0 : 1;
}
