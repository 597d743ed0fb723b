// Micro-benchmarks of kvstore::ConcurrentMap<std::string, std::string> with
// the standard data: 16-byte keys "user:%011llu" and 100-byte values.
//
// Each operation runs at 1 and 2 threads on one shared map. Throughput is
// items/s over wall time (UseRealTime), summed over the threads. Lookups,
// updates and erases work on a map preloaded with kPreloaded keys, built once
// (a function-local static) and shared by all of them; erase re-inserts what
// it removed, so the map keeps its size. Insert starts from an empty map on
// every run.
//
//   kvstore-micro-bench --benchmark_min_time=0.5
#include "bench_common.hpp"

#include <kvstore/concurrent_map.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

namespace {

using Map = kvstore::ConcurrentMap<std::string, std::string>;
using kvstore_bench::KeyBuffer;
using kvstore_bench::SplitMix64;

constexpr std::uint32_t kPreloaded = 1'000'000;
constexpr std::size_t kValueSize = 100;

/// The preloaded map, built by whichever benchmark thread gets here first
/// (the others wait on the static's initialisation).
Map& preloaded_map() {
    static const std::unique_ptr<Map> map = [] {
        auto built = std::make_unique<Map>();
        KeyBuffer key;
        const std::string value(kValueSize, 'v');
        for (std::uint32_t i = 0; i < kPreloaded; ++i) built->insert(key.format(i), value);
        return built;
    }();
    return *map;
}

SplitMix64 thread_rng(const benchmark::State& state, std::uint64_t salt) {
    return SplitMix64(0x5eed0000ull + salt * 1000 + static_cast<std::uint64_t>(state.thread_index()));
}

/// Writes `stamp` over the start of the value, so that each update stores
/// different bytes.
void stamp_value(std::string& value, std::uint64_t stamp) {
    std::memcpy(value.data(), &stamp, std::min(sizeof stamp, value.size()));
}

void BM_GetHit(benchmark::State& state) {
    const Map& map = preloaded_map();
    SplitMix64 rng = thread_rng(state, 1);
    KeyBuffer key;
    std::string out;
    std::uint64_t misses = 0;
    for (auto _ : state) {
        if (!map.find(key.format(rng.below(kPreloaded)), out)) ++misses;
        benchmark::DoNotOptimize(out.data());
    }
    if (misses != 0) state.SkipWithError("get hit: a preloaded key was missing");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_GetMiss(benchmark::State& state) {
    const Map& map = preloaded_map();
    SplitMix64 rng = thread_rng(state, 2);
    KeyBuffer key;
    std::string out;
    std::uint64_t hits = 0;
    for (auto _ : state) {
        // Indices past the preloaded range are never inserted.
        if (map.find(key.format(kPreloaded + rng.below(kPreloaded)), out)) ++hits;
        benchmark::DoNotOptimize(out.data());
    }
    if (hits != 0) state.SkipWithError("get miss: found a key that was never inserted");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Written by thread 0 before the timed loop and reset after it; the loop's
// start and end are barriers for all benchmark threads.
std::unique_ptr<Map> g_insert_map;

void BM_Insert(benchmark::State& state) {
    if (state.thread_index() == 0) g_insert_map = std::make_unique<Map>();
    KeyBuffer key;
    std::string value(kValueSize, 'i');
    // Each thread inserts its own keys: thread t uses t * 10^10 + 0, 1, 2, ...
    std::uint64_t next = static_cast<std::uint64_t>(state.thread_index()) * 10'000'000'000ull;
    std::uint64_t duplicates = 0;
    for (auto _ : state) {
        if (!g_insert_map->insert(key.format(next++), value)) ++duplicates;
    }
    if (duplicates != 0) state.SkipWithError("insert: a fresh key was already present");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    if (state.thread_index() == 0) g_insert_map.reset();
}

void BM_Update(benchmark::State& state) {
    Map& map = preloaded_map();
    SplitMix64 rng = thread_rng(state, 3);
    KeyBuffer key;
    std::string value(kValueSize, 'u');
    std::uint64_t inserted = 0;
    std::uint64_t stamp = 0;
    for (auto _ : state) {
        stamp_value(value, ++stamp);
        if (map.insert_or_assign(key.format(rng.below(kPreloaded)), value)) ++inserted;
    }
    if (inserted != 0) state.SkipWithError("update: a preloaded key was missing");
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

/// One iteration is an erase and the re-insert of the same key.
void BM_EraseReinsert(benchmark::State& state) {
    Map& map = preloaded_map();
    SplitMix64 rng = thread_rng(state, 4);
    KeyBuffer key;
    const std::string value(kValueSize, 'v');
    for (auto _ : state) {
        const std::string& k = key.format(rng.below(kPreloaded));
        // With two threads both may pick the same key; then one erase finds
        // nothing and one insert finds it back, and the size still holds.
        benchmark::DoNotOptimize(map.erase(k));
        benchmark::DoNotOptimize(map.insert(k, value));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    if (state.thread_index() == 0 && map.size() != kPreloaded)
        state.SkipWithError("erase: the map did not keep its size");
}

BENCHMARK(BM_GetHit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_GetMiss)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Insert)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Update)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_EraseReinsert)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
