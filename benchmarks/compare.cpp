// kvstore-compare: kvstore::ConcurrentMap against the peer maps of the
// performance guide, on its standard map workloads.
//
// Data: N keys "user:%011llu" (16 bytes) with B-byte values (default 1M keys,
// 100 bytes). Each peer runs in a child process of its own (fork), which
//   1. records VmRSS, loads all N keys at one thread (timed: load M ops/s),
//      and records VmRSS and VmHWM again: bytes/entry is the RSS growth over
//      N, peak bytes/entry the high-water mark's;
//   2. runs every workload (read-only, 95/5 and 50/50 read/update, uniform;
//      95/5 and 50/50 zipfian with theta 0.99) at every thread count for D
//      seconds each, and reports total M ops/s;
//   3. writes its figures to the parent through a pipe as text lines.
// The parent repeats the sequence of peers R times, rotating their order each
// round, and prints the median over the rounds as Markdown tables.
//
// Workers draw key indices from per-thread arrays and operation types from
// per-thread patterns, all generated before any timing (in the parent, so
// every peer gets the same streams), format keys with a digit loop into a
// reused string, and copy each value found into a reused string. Every get
// must hit and return a value of the right size; a miss aborts the run.
//
// The machines are shared: each workload run counts the process's
// involuntary context switches, and the tables say how many runs were
// preempted often enough to have shared a core with another process.
//
//   kvstore-compare --keys 1000000 --seconds 2 --rounds 3 --threads 1,2
//   kvstore-compare --peers kvstore,libcuckoo --markdown compare.md
#include "bench_common.hpp"

#include <kvstore/concurrent_map.hpp>
#include <kvstore/store.hpp>

#if KVSTORE_COMPARE_HAVE_LIBCUCKOO
#include <libcuckoo/cuckoohash_map.hh>
#endif
#if KVSTORE_COMPARE_HAVE_TBB
#include <tbb/concurrent_hash_map.h>
#endif
#if KVSTORE_COMPARE_HAVE_ABSL
#include <absl/container/flat_hash_map.h>
#endif
#if KVSTORE_COMPARE_HAVE_TKRZW
#include <tkrzw_dbm_tiny.h>
#endif

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using kvstore_bench::KeyBuffer;
using kvstore_bench::SplitMix64;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Peers. Each is a small adapter with the same members, used as a template
// argument so that the measured loop makes no virtual call:
//   explicit Peer(std::size_t expected_keys);
//   void load(const std::string& key, const std::string& value);    // insert
//   bool get(const std::string& key, std::string& out);             // copy into out
//   void update(const std::string& key, const std::string& value);  // insert or assign
//   std::size_t size();
//   static constexpr bool kSingleThreadOnly;
// and, if it leaves files behind, void remove_files(), called before the
// child exits.
// ---------------------------------------------------------------------------

/// A concurrent map whose own API is already insert, find into a caller's
/// value, and insert_or_assign: kvstore's and libcuckoo's.
template <class Map>
class DirectPeer {
public:
    static constexpr bool kSingleThreadOnly = false;
    explicit DirectPeer(std::size_t) {}
    void load(const std::string& key, const std::string& value) { map_.insert(key, value); }
    bool get(const std::string& key, std::string& out) { return map_.find(key, out); }
    void update(const std::string& key, const std::string& value) { map_.insert_or_assign(key, value); }
    std::size_t size() { return map_.size(); }

private:
    Map map_;
};

using KvstorePeer = DirectPeer<kvstore::ConcurrentMap<std::string, std::string>>;

/// kvstore::Store with one durability policy, in a directory of its own
/// under /var/tmp: what durability costs next to the bare map. Stores that
/// sync on every acknowledgement load in batches of kLoadBatch keys, so that
/// loading takes seconds rather than minutes; their load figure is that.
template <class Durability, bool kRelaxed = false>
class StorePeer {
    static constexpr bool kBatchLoad = !std::is_same_v<Durability, kvstore::None> && !kRelaxed;
    static constexpr std::size_t kLoadBatch = 1000;

public:
    static constexpr bool kSingleThreadOnly = false;
    explicit StorePeer(std::size_t) : dir_("/var/tmp/kvstore-compare-store-" + std::to_string(::getpid())) {
        kvstore::StoreOptions options;
        if (kRelaxed) options.log.flush_interval = std::chrono::milliseconds(100);
        const kvstore::Status opened = Store::open(dir_, options, store_);
        if (!opened) {
            std::fprintf(stderr, "kvstore-compare: %s\n", opened.to_string().c_str());
            std::exit(1);
        }
    }
    void load(const std::string& key, const std::string& value) {
        if constexpr (kBatchLoad) {
            loading_.put(key, value);
            if (loading_.size() == kLoadBatch) write_loaded();
        } else {
            update(key, value);
        }
    }
    bool get(const std::string& key, std::string& out) { return store_->find(key, out); }
    void update(const std::string& key, const std::string& value) {
        if (!store_->put(key, value)) std::abort();
    }
    std::size_t size() {
        write_loaded();
        return store_->size();
    }
    void remove_files() {
        (void)store_->close();
        if (std::system(("rm -rf '" + dir_ + "'").c_str()) != 0)
            std::fprintf(stderr, "cannot remove %s\n", dir_.c_str());
    }

private:
    using Store = kvstore::Store<std::string, std::string, Durability>;

    void write_loaded() {
        if (loading_.empty()) return;
        if (!store_->write(loading_)) std::abort();
        loading_.clear();
    }

    std::string dir_;
    std::unique_ptr<Store> store_;
    kvstore::WriteBatch<std::string, std::string> loading_;
};
using StoreNonePeer = StorePeer<kvstore::None>;
using StoreRelaxedPeer = StorePeer<kvstore::GroupCommitWAL, true>;
using StoreGroupPeer = StorePeer<kvstore::GroupCommitWAL>;
using StoreSyncPeer = StorePeer<kvstore::SyncWAL>;

template <class Peer, class = void>
struct leaves_files : std::false_type {};
template <class Peer>
struct leaves_files<Peer, std::void_t<decltype(std::declval<Peer&>().remove_files())>> : std::true_type {};

/// Any std::unordered_map-like map behind one std::shared_mutex (or none).
template <class Map, bool kLocked>
class SingleLockPeer {
public:
    static constexpr bool kSingleThreadOnly = !kLocked;
    explicit SingleLockPeer(std::size_t) {}

    void load(const std::string& key, const std::string& value) {
        [[maybe_unused]] const auto lock = exclusive();
        map_.emplace(key, value);
    }
    bool get(const std::string& key, std::string& out) {
        [[maybe_unused]] const auto lock = shared();
        const auto it = map_.find(key);
        if (it == map_.end()) return false;
        out = it->second;
        return true;
    }
    void update(const std::string& key, const std::string& value) {
        [[maybe_unused]] const auto lock = exclusive();
        map_.insert_or_assign(key, value);
    }
    std::size_t size() { return map_.size(); }

private:
    struct NoLock {};
    auto shared() {
        if constexpr (kLocked) {
            return std::shared_lock<std::shared_mutex>(mutex_);
        } else {
            return NoLock{};
        }
    }
    auto exclusive() {
        if constexpr (kLocked) {
            return std::unique_lock<std::shared_mutex>(mutex_);
        } else {
            return NoLock{};
        }
    }

    std::shared_mutex mutex_;
    Map map_;
};

using StdUnorderedPeer = SingleLockPeer<std::unordered_map<std::string, std::string>, true>;

#if KVSTORE_COMPARE_HAVE_ABSL
using AbslLockedPeer = SingleLockPeer<absl::flat_hash_map<std::string, std::string>, true>;
using AbslNoLockPeer = SingleLockPeer<absl::flat_hash_map<std::string, std::string>, false>;
#endif

#if KVSTORE_COMPARE_HAVE_LIBCUCKOO
using LibcuckooPeer = DirectPeer<libcuckoo::cuckoohash_map<std::string, std::string>>;
#endif

#if KVSTORE_COMPARE_HAVE_TBB
class TbbPeer {
public:
    static constexpr bool kSingleThreadOnly = false;
    explicit TbbPeer(std::size_t) {}
    void load(const std::string& key, const std::string& value) { map_.emplace(key, value); }
    bool get(const std::string& key, std::string& out) {
        Map::const_accessor entry;
        if (!map_.find(entry, key)) return false;
        out = entry->second;
        return true;
    }
    void update(const std::string& key, const std::string& value) {
        Map::accessor entry;
        map_.insert(entry, key);
        entry->second = value;
    }
    std::size_t size() { return map_.size(); }

private:
    using Map = tbb::concurrent_hash_map<std::string, std::string>;
    Map map_;
};
#endif

#if KVSTORE_COMPARE_HAVE_TKRZW
class TkrzwPeer {
public:
    static constexpr bool kSingleThreadOnly = false;
    // TinyDBM's table does not grow: give it about one bucket per key (its
    // default is 1,048,583).
    explicit TkrzwPeer(std::size_t expected_keys)
        : db_(std::max<std::int64_t>(static_cast<std::int64_t>(expected_keys), 1048583)) {}
    void load(const std::string& key, const std::string& value) { db_.Set(key, value); }
    bool get(const std::string& key, std::string& out) { return db_.Get(key, &out).IsOK(); }
    void update(const std::string& key, const std::string& value) { db_.Set(key, value); }
    std::size_t size() {
        std::int64_t count = -1;
        if (!db_.Count(&count).IsOK()) return 0;
        return static_cast<std::size_t>(count);
    }

private:
    tkrzw::TinyDBM db_;
};
#endif

// ---------------------------------------------------------------------------
// Configuration, workloads and the pre-generated inputs.
// ---------------------------------------------------------------------------

struct Config {
    std::uint64_t keys = 1'000'000;
    double seconds = 2.0;
    unsigned rounds = 3;
    std::vector<unsigned> threads = {1, 2};
    std::vector<std::string> peers;  // empty: all available
    std::size_t value_size = 100;
    std::string markdown_path;
    std::string json_path;
    // Keys read from a shuffled array of std::string, one heap block each, as
    // a server reads them from requests: a cache miss or two per key before
    // the map is touched. Otherwise formatted into a buffer that stays in cache.
    bool cold_keys = false;
};

enum class Distribution { kUniform, kZipfian };

struct Workload {
    const char* name;  // column title
    Distribution distribution;
    unsigned updates_per_mille;
};

constexpr Workload kWorkloads[] = {
    {"ro", Distribution::kUniform, 0},           {"95/5", Distribution::kUniform, 50},
    {"50/50", Distribution::kUniform, 500},      {"zipf 95/5", Distribution::kZipfian, 50},
    {"zipf 50/50", Distribution::kZipfian, 500},
};
constexpr std::size_t kWorkloadCount = sizeof kWorkloads / sizeof kWorkloads[0];

constexpr std::size_t kIndexCount = std::size_t{1} << 22;    // key indices per thread
constexpr std::size_t kPatternCount = std::size_t{1} << 16;  // operation types per thread
constexpr unsigned kOpsBetweenStopChecks = 256;
/// A run with at most one thread per core that was preempted more often than
/// this (involuntary context switches per second, all threads) shared its
/// cores with another process. Undisturbed runs here see 0-45 (thread start
/// and stop), disturbed ones 200-350.
constexpr double kPreemptionLimit = 100.0;

/// YCSB's ZipfianGenerator (after Gray et al., "Quickly generating
/// billion-record synthetic databases"): rank 0 is the most popular item.
class ZipfianGenerator {
public:
    ZipfianGenerator(std::uint64_t items, double theta)
        : items_(items),
          alpha_(1.0 / (1.0 - theta)),
          zetan_(zeta(items, theta)),
          eta_((1.0 - std::pow(2.0 / static_cast<double>(items), 1.0 - theta)) / (1.0 - zeta(2, theta) / zetan_)),
          half_pow_theta_(1.0 + std::pow(0.5, theta)) {}

    std::uint64_t next(double u) const {
        const double uz = u * zetan_;
        if (uz < 1.0) return 0;
        if (uz < half_pow_theta_) return 1;
        const auto rank =
            static_cast<std::uint64_t>(static_cast<double>(items_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
        return std::min(rank, items_ - 1);
    }

private:
    static double zeta(std::uint64_t n, double theta) {
        double sum = 0.0;
        for (std::uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
        return sum;
    }

    std::uint64_t items_;
    double alpha_;
    double zetan_;
    double eta_;
    double half_pow_theta_;
};

/// YCSB's scramble (Utils.fnvhash64): FNV-1a over the eight bytes of a rank,
/// so that the popular ranks land all over the key space.
std::uint64_t fnv_scramble(std::uint64_t value) {
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (int i = 0; i < 8; ++i) {
        hash ^= value & 0xff;
        value >>= 8;
        hash *= 1099511628211ull;
    }
    return hash;
}

struct Inputs {
    // [thread] -> kIndexCount key indices
    std::vector<std::vector<std::uint32_t>> uniform;
    std::vector<std::vector<std::uint32_t>> zipfian;
    // [workload][thread] -> kPatternCount operation types (1 = update)
    std::vector<std::vector<std::vector<std::uint8_t>>> patterns;

    const std::uint32_t* indices(Distribution distribution, unsigned thread) const {
        return (distribution == Distribution::kUniform ? uniform : zipfian)[thread].data();
    }
};

Inputs make_inputs(const Config& config) {
    const unsigned max_threads = *std::max_element(config.threads.begin(), config.threads.end());
    const auto keys = static_cast<std::uint32_t>(config.keys);
    const ZipfianGenerator zipf(config.keys, 0.99);
    Inputs inputs;
    for (unsigned t = 0; t < max_threads; ++t) {
        SplitMix64 uniform_rng(0x756e69666f726dull + t);
        SplitMix64 zipf_rng(0x7a697066ull + 1000 * t);
        std::vector<std::uint32_t> uniform(kIndexCount);
        std::vector<std::uint32_t> zipfian(kIndexCount);
        for (std::size_t i = 0; i < kIndexCount; ++i) {
            uniform[i] = uniform_rng.below(keys);
            zipfian[i] = static_cast<std::uint32_t>(fnv_scramble(zipf.next(zipf_rng.unit())) % config.keys);
        }
        inputs.uniform.push_back(std::move(uniform));
        inputs.zipfian.push_back(std::move(zipfian));
    }
    for (std::size_t w = 0; w < kWorkloadCount; ++w) {
        std::vector<std::vector<std::uint8_t>> per_thread;
        for (unsigned t = 0; t < max_threads; ++t) {
            // Exactly the workload's share of updates, in random order.
            std::vector<std::uint8_t> pattern(kPatternCount, 0);
            const std::size_t updates = kPatternCount * kWorkloads[w].updates_per_mille / 1000;
            std::fill(pattern.begin(), pattern.begin() + static_cast<std::ptrdiff_t>(updates), 1);
            SplitMix64 rng(0x6f7073ull + 100 * w + t);
            for (std::size_t i = kPatternCount - 1; i > 0; --i)
                std::swap(pattern[i], pattern[rng.below(static_cast<std::uint32_t>(i + 1))]);
            per_thread.push_back(std::move(pattern));
        }
        inputs.patterns.push_back(std::move(per_thread));
    }
    return inputs;
}

// ---------------------------------------------------------------------------
// The child: load, measure memory, run the workloads.
// ---------------------------------------------------------------------------

volatile std::uint64_t g_sink;

/// A field of /proc/self/status ("VmRSS", "VmHWM") in bytes, or 0.
std::uint64_t status_bytes(const char* field) {
    std::FILE* file = std::fopen("/proc/self/status", "r");
    if (file == nullptr) return 0;
    char line[256];
    const std::size_t length = std::strlen(field);
    std::uint64_t bytes = 0;
    while (std::fgets(line, sizeof line, file) != nullptr) {
        if (std::strncmp(line, field, length) == 0 && line[length] == ':') {
            bytes = std::strtoull(line + length + 1, nullptr, 10) * 1024;
            break;
        }
    }
    std::fclose(file);
    return bytes;
}

/// Resets VmHWM to the current RSS (Linux 4.0+); the fork already did, so a
/// failure here changes nothing.
void reset_peak_rss() {
    if (std::FILE* file = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", file);
        std::fclose(file);
    }
}

[[gnu::format(printf, 2, 3)]] void send_line(int fd, const char* format, ...) {
    char line[512];
    va_list args;
    va_start(args, format);
    const int length = std::vsnprintf(line, sizeof line, format, args);
    va_end(args);
    if (length <= 0) return;
    const char* p = line;
    std::size_t left = std::min(static_cast<std::size_t>(length), sizeof line - 1);
    while (left > 0) {
        const ssize_t written = ::write(fd, p, left);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) return;
        p += written;
        left -= static_cast<std::size_t>(written);
    }
}

[[noreturn]] void child_fail(int fd, const char* peer, const std::string& message) {
    std::fprintf(stderr, "kvstore-compare: %s: %s\n", peer, message.c_str());
    send_line(fd, "error %s\n", message.c_str());
    ::_exit(2);
}

struct alignas(64) WorkerResult {
    std::uint64_t ops = 0;
    std::uint64_t bad_gets = 0;  // misses and values of the wrong size
    std::uint64_t checksum = 0;
};

// kStoredKeys: the key of index i is stored_keys[i] (cold keys); else it is
// formatted into a reused buffer.
template <class Peer, bool kStoredKeys>
void worker(Peer& peer, const std::string* stored_keys, const std::uint32_t* indices, const std::uint8_t* pattern,
            std::size_t value_size, std::uint64_t stamp_base, const std::atomic<bool>& go,
            const std::atomic<bool>& stop, WorkerResult& result) {
    KeyBuffer key;
    std::string out;
    out.reserve(value_size);
    std::string value(value_size, 'u');
    const std::size_t stamp_size = std::min(sizeof(std::uint64_t), value_size);
    std::uint64_t n = 0;
    std::uint64_t bad = 0;
    std::uint64_t checksum = 0;
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    do {
        for (unsigned i = 0; i < kOpsBetweenStopChecks; ++i, ++n) {
            const std::uint32_t index = indices[n & (kIndexCount - 1)];
            const std::string& k = kStoredKeys ? stored_keys[index] : key.format(index);
            if (pattern[n & (kPatternCount - 1)] != 0) {
                const std::uint64_t stamp = stamp_base + n;
                std::memcpy(value.data(), &stamp, stamp_size);
                peer.update(k, value);
            } else if (peer.get(k, out) && out.size() == value_size) {
                checksum += static_cast<unsigned char>(out[value_size - 1]);
            } else {
                ++bad;
            }
        }
    } while (!stop.load(std::memory_order_relaxed));
    result.ops = n;
    result.bad_gets = bad;
    result.checksum = checksum;
}

struct CellResult {
    double mops = 0.0;
    std::uint64_t bad_gets = 0;
    /// CPU time the process used over the wall time of the cores it could
    /// use (min(threads, hardware threads)). Below 1 when threads sleep on a
    /// lock, or when another process takes a core.
    double cpu_share = 0.0;
    /// Involuntary context switches per second: another process (or more
    /// threads than cores) took the CPU away.
    double preemptions_per_second = 0.0;
    bool disturbed = false;
};

struct ProcessUsage {
    double cpu_seconds = 0.0;
    double involuntary_switches = 0.0;
};

ProcessUsage process_usage() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return {seconds(usage.ru_utime) + seconds(usage.ru_stime), static_cast<double>(usage.ru_nivcsw)};
}

template <class Peer>
CellResult run_cell(Peer& peer, const Config& config, const Inputs& inputs, const std::vector<std::string>& stored_keys,
                    std::size_t workload, unsigned threads) {
    std::atomic<bool> go{false};
    std::atomic<bool> stop{false};
    std::vector<WorkerResult> results(threads);
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back(config.cold_keys ? worker<Peer, true> : worker<Peer, false>, std::ref(peer),
                          stored_keys.data(), inputs.indices(kWorkloads[workload].distribution, t),
                          inputs.patterns[workload][t].data(), config.value_size, (std::uint64_t{t} + 1) << 48,
                          std::cref(go), std::cref(stop), std::ref(results[t]));
    }
    // Workers wait for `go`; let them all reach that point first.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const ProcessUsage usage_start = process_usage();
    const auto start = Clock::now();
    go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(config.seconds));
    stop.store(true, std::memory_order_relaxed);
    for (std::thread& thread : pool) thread.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const ProcessUsage usage_end = process_usage();

    CellResult cell;
    const unsigned cores = std::max(1u, std::min(threads, std::thread::hardware_concurrency()));
    cell.cpu_share = (usage_end.cpu_seconds - usage_start.cpu_seconds) / (elapsed * cores);
    cell.preemptions_per_second = (usage_end.involuntary_switches - usage_start.involuntary_switches) / elapsed;
    cell.disturbed = threads <= cores && cell.preemptions_per_second > kPreemptionLimit;
    std::uint64_t ops = 0;
    std::uint64_t checksum = 0;
    for (const WorkerResult& result : results) {
        ops += result.ops;
        cell.bad_gets += result.bad_gets;
        checksum += result.checksum;
    }
    g_sink = g_sink + checksum;
    cell.mops = static_cast<double>(ops) / elapsed / 1e6;
    return cell;
}

// Every key, each in its own heap block, in a shuffled order: index i
// names whichever key the shuffle put at i, so that neighbouring indices
// are unrelated keys. Built before the peer's memory is measured.
std::vector<std::string> shuffled_keys(std::uint64_t count) {
    std::vector<std::string> keys;
    keys.reserve(count);
    KeyBuffer key;
    for (std::uint64_t i = 0; i < count; ++i) keys.push_back(key.format(i));
    SplitMix64 random(0x636f6c64ull);
    for (std::uint64_t i = count - 1; i > 0; --i) std::swap(keys[i], keys[random.next() % (i + 1)]);
    return keys;
}

template <class Peer>
[[noreturn]] void run_child(const char* id, const Config& config, const Inputs& inputs, int fd) {
    const std::vector<std::string> stored_keys = config.cold_keys ? shuffled_keys(config.keys) : std::vector<std::string>{};
    const std::uint64_t rss_before = status_bytes("VmRSS");
    reset_peak_rss();

    auto peer = std::make_unique<Peer>(config.keys);
    {
        KeyBuffer key;
        std::string value(config.value_size, 'v');
        const auto start = Clock::now();
        for (std::uint64_t i = 0; i < config.keys; ++i) peer->load(key.format(i), value);
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        const std::uint64_t rss_after = status_bytes("VmRSS");
        const std::uint64_t rss_peak = status_bytes("VmHWM");
        if (peer->size() != config.keys)
            child_fail(fd, id,
                       "holds " + std::to_string(peer->size()) + " keys after loading " + std::to_string(config.keys));
        const double load_mops = static_cast<double>(config.keys) / elapsed / 1e6;
        send_line(fd, "mem %llu %llu %llu\n", static_cast<unsigned long long>(rss_before),
                  static_cast<unsigned long long>(rss_after), static_cast<unsigned long long>(rss_peak));
        send_line(fd, "load %.6f\n", load_mops);
        std::fprintf(
            stderr, "  %-13s load %.2f M ops/s, %.0f bytes/entry\n", id, load_mops,
            static_cast<double>(rss_after - std::min(rss_after, rss_before)) / static_cast<double>(config.keys));
    }

    for (std::size_t w = 0; w < kWorkloadCount; ++w) {
        for (const unsigned threads : config.threads) {
            if (Peer::kSingleThreadOnly && threads > 1) continue;
            const CellResult cell = run_cell(*peer, config, inputs, stored_keys, w, threads);
            if (cell.bad_gets != 0)
                child_fail(fd, id,
                           std::to_string(cell.bad_gets) + " gets missed or returned a wrong-sized value in " +
                               kWorkloads[w].name + " at " + std::to_string(threads) + " threads");
            send_line(fd, "run %zu %u %.6f %.4f %.1f %d\n", w, threads, cell.mops, cell.cpu_share,
                      cell.preemptions_per_second, cell.disturbed ? 1 : 0);
            std::fprintf(stderr, "  %-13s %-10s %u thr %6.2f M ops/s  (cpu share %.2f, %.0f preemptions/s%s)\n", id,
                         kWorkloads[w].name, threads, cell.mops, cell.cpu_share, cell.preemptions_per_second,
                         cell.disturbed ? ": DISTURBED by another process" : "");
        }
    }
    if (peer->size() != config.keys)
        child_fail(
            fd, id,
            "holds " + std::to_string(peer->size()) + " keys after the workloads, not " + std::to_string(config.keys));
    if constexpr (leaves_files<Peer>::value) peer->remove_files();
    // Skip destructors: freeing millions of entries measures nothing.
    ::_exit(0);
}

// ---------------------------------------------------------------------------
// The parent: peers, rounds, medians, tables.
// ---------------------------------------------------------------------------

using ChildMain = void (*)(const char*, const Config&, const Inputs&, int);

struct PeerEntry {
    const char* id;       // --peers name
    const char* label;    // table row
    const char* package;  // Debian package providing it
    bool single_thread_only;
    ChildMain child;  // nullptr: not compiled in
};

template <class Peer>
PeerEntry peer_entry(const char* id, const char* label, const char* package) {
    return {id, label, package, Peer::kSingleThreadOnly, &run_child<Peer>};
}

std::vector<PeerEntry> all_peers() {
    std::vector<PeerEntry> peers;
    peers.push_back(peer_entry<KvstorePeer>("kvstore", "kvstore ConcurrentMap", ""));
    peers.push_back(peer_entry<StoreNonePeer>("store-none", "kvstore Store, None", ""));
    peers.push_back(peer_entry<StoreRelaxedPeer>("store-relaxed", "kvstore Store, GroupCommitWAL relaxed 100 ms", ""));
    peers.push_back(peer_entry<StoreGroupPeer>("store-group", "kvstore Store, GroupCommitWAL durable", ""));
    peers.push_back(peer_entry<StoreSyncPeer>("store-sync", "kvstore Store, SyncWAL", ""));
#if KVSTORE_COMPARE_HAVE_LIBCUCKOO
    peers.push_back(peer_entry<LibcuckooPeer>("libcuckoo", "libcuckoo", "libcuckoo-dev"));
#else
    peers.push_back({"libcuckoo", "libcuckoo", "libcuckoo-dev", false, nullptr});
#endif
#if KVSTORE_COMPARE_HAVE_TKRZW
    peers.push_back(peer_entry<TkrzwPeer>("tkrzw", "tkrzw TinyDBM", "libtkrzw-dev"));
#else
    peers.push_back({"tkrzw", "tkrzw TinyDBM", "libtkrzw-dev", false, nullptr});
#endif
#if KVSTORE_COMPARE_HAVE_TBB
    peers.push_back(peer_entry<TbbPeer>("tbb", "TBB concurrent_hash_map", "libtbb-dev"));
#else
    peers.push_back({"tbb", "TBB concurrent_hash_map", "libtbb-dev", false, nullptr});
#endif
#if KVSTORE_COMPARE_HAVE_ABSL
    peers.push_back(peer_entry<AbslLockedPeer>("absl", "abseil flat_hash_map, one shared_mutex", "libabsl-dev"));
#else
    peers.push_back({"absl", "abseil flat_hash_map, one shared_mutex", "libabsl-dev", false, nullptr});
#endif
    peers.push_back(peer_entry<StdUnorderedPeer>("unordered_map", "std::unordered_map, one shared_mutex", ""));
#if KVSTORE_COMPARE_HAVE_ABSL
    peers.push_back(
        peer_entry<AbslNoLockPeer>("absl-nolock", "abseil flat_hash_map, no lock (1-thread ceiling)", "libabsl-dev"));
#else
    peers.push_back({"absl-nolock", "abseil flat_hash_map, no lock (1-thread ceiling)", "libabsl-dev", true, nullptr});
#endif
    return peers;
}

constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();

/// One peer's figures from one child, or their medians over rounds.
struct PeerFigures {
    double bytes_per_entry = kAbsent;
    double peak_bytes_per_entry = kAbsent;
    double load_mops = kAbsent;
    std::vector<std::vector<double>> mops;  // [workload][thread-count index]
    // One per workload run, over all rounds once merged.
    std::vector<double> cpu_shares;
    std::vector<double> preemption_rates;
    std::size_t disturbed_runs = 0;

    explicit PeerFigures(std::size_t thread_counts)
        : mops(kWorkloadCount, std::vector<double>(thread_counts, kAbsent)) {}
};

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "kvstore-compare: %s\n", message.c_str());
    std::exit(1);
}

PeerFigures run_peer(const PeerEntry& peer, const Config& config, const Inputs& inputs) {
    int fds[2];
    if (::pipe(fds) != 0) die(std::string("pipe: ") + std::strerror(errno));
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::close(fds[0]);
        peer.child(peer.id, config, inputs, fds[1]);
        ::_exit(3);  // not reached
    }
    ::close(fds[1]);
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t got = ::read(fds[0], buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        text.append(buffer, static_cast<std::size_t>(got));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    PeerFigures figures(config.threads.size());
    std::size_t begin = 0;
    while (begin < text.size()) {
        std::size_t end = text.find('\n', begin);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(begin, end - begin);
        begin = end + 1;
        unsigned long long before = 0, after = 0, peak = 0;
        std::size_t workload = 0;
        unsigned threads = 0;
        double mops = 0.0;
        double share = 0.0;
        double preemptions = 0.0;
        int disturbed = 0;
        if (std::sscanf(line.c_str(), "mem %llu %llu %llu", &before, &after, &peak) == 3) {
            const auto keys = static_cast<double>(config.keys);
            figures.bytes_per_entry = (static_cast<double>(after) - static_cast<double>(before)) / keys;
            figures.peak_bytes_per_entry = (static_cast<double>(peak) - static_cast<double>(before)) / keys;
        } else if (std::sscanf(line.c_str(), "load %lf", &mops) == 1) {
            figures.load_mops = mops;
        } else if (std::sscanf(line.c_str(), "run %zu %u %lf %lf %lf %d", &workload, &threads, &mops, &share,
                               &preemptions, &disturbed) == 6) {
            figures.cpu_shares.push_back(share);
            figures.preemption_rates.push_back(preemptions);
            if (disturbed != 0) ++figures.disturbed_runs;
            const auto it = std::find(config.threads.begin(), config.threads.end(), threads);
            if (workload < kWorkloadCount && it != config.threads.end())
                figures.mops[workload][static_cast<std::size_t>(it - config.threads.begin())] = mops;
        } else if (line.rfind("error ", 0) == 0) {
            die(std::string(peer.id) + " failed: " + line.substr(6));
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        die(std::string(peer.id) + "'s process " +
            (WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                                 : "exited with status " + std::to_string(WEXITSTATUS(status))));
    }
    return figures;
}

// The median of the figures present; kAbsent if none is.
double median_present(std::vector<double> values) {
    values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }), values.end());
    return values.empty() ? kAbsent : kvstore_bench::median(std::move(values));
}

PeerFigures median_figures(const std::vector<PeerFigures>& rounds, std::size_t thread_counts) {
    PeerFigures result(thread_counts);
    auto collect = [&](auto field) {
        std::vector<double> values;
        for (const PeerFigures& round : rounds) values.push_back(field(round));
        return median_present(values);
    };
    result.bytes_per_entry = collect([](const PeerFigures& f) { return f.bytes_per_entry; });
    result.peak_bytes_per_entry = collect([](const PeerFigures& f) { return f.peak_bytes_per_entry; });
    result.load_mops = collect([](const PeerFigures& f) { return f.load_mops; });
    for (std::size_t w = 0; w < kWorkloadCount; ++w)
        for (std::size_t t = 0; t < thread_counts; ++t)
            result.mops[w][t] = collect([&](const PeerFigures& f) { return f.mops[w][t]; });
    for (const PeerFigures& round : rounds) {
        result.cpu_shares.insert(result.cpu_shares.end(), round.cpu_shares.begin(), round.cpu_shares.end());
        result.preemption_rates.insert(result.preemption_rates.end(), round.preemption_rates.begin(),
                                       round.preemption_rates.end());
        result.disturbed_runs += round.disturbed_runs;
    }
    return result;
}

std::string format_number(double value, int decimals) {
    if (std::isnan(value)) return "–";
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
}

std::string thread_list(const std::vector<unsigned>& threads, const char* separator) {
    std::string text;
    for (std::size_t i = 0; i < threads.size(); ++i) {
        if (i != 0) text += separator;
        text += std::to_string(threads[i]);
    }
    return text;
}

/// The first three fields of /proc/loadavg, or "?".
std::string load_average() {
    std::ifstream file("/proc/loadavg");
    std::string one, five, fifteen;
    if (!(file >> one >> five >> fifteen)) return "?";
    return one + " " + five + " " + fifteen;
}

// The Store peers are kvstore itself behind a durability policy, not peers.
bool is_store(const PeerEntry& peer) { return std::strncmp(peer.id, "store-", 6) == 0; }

// Each Store peer against the bare map of the same run (the cost of its
// policy), and its bytes per entry against tkrzw's.
std::string store_table(const Config& config, const std::vector<const PeerEntry*>& peers,
                        const std::vector<PeerFigures>& medians, std::size_t kvstore) {
    std::size_t tkrzw = peers.size();
    for (std::size_t p = 0; p < peers.size(); ++p)
        if (std::strcmp(peers[p]->id, "tkrzw") == 0) tkrzw = p;
    std::string out = "\n| Store / bare map | bytes/entry | / tkrzw TinyDBM | load |";
    for (std::size_t w = 0; w < kWorkloadCount; ++w) out += std::string(" ") + kWorkloads[w].name + " |";
    out += "\n|---|---|---|---|";
    for (std::size_t w = 0; w < kWorkloadCount; ++w) out += "---|";
    out += "\n";
    auto ratio = [](double mine, double theirs) {
        return std::isnan(mine) || std::isnan(theirs) ? std::string("–") : format_number(mine / theirs, 2);
    };
    bool any = false;
    for (std::size_t p = 0; p < peers.size(); ++p) {
        if (!is_store(*peers[p])) continue;
        any = true;
        const PeerFigures& store = medians[p];
        const PeerFigures& map = medians[kvstore];
        out +=
            "| " + std::string(peers[p]->label) + " | " + ratio(store.bytes_per_entry, map.bytes_per_entry) + " | " +
            (tkrzw == peers.size() ? std::string("–") : ratio(store.bytes_per_entry, medians[tkrzw].bytes_per_entry)) +
            " | " + ratio(store.load_mops, map.load_mops) + " |";
        for (std::size_t w = 0; w < kWorkloadCount; ++w) {
            out += " ";
            for (std::size_t t = 0; t < config.threads.size(); ++t) {
                if (t != 0) out += " / ";
                out += ratio(store.mops[w][t], map.mops[w][t]);
            }
            out += " |";
        }
        out += "\n";
    }
    return any ? out : std::string();
}

std::string render_tables(const Config& config, const std::vector<const PeerEntry*>& peers,
                          const std::vector<PeerFigures>& medians, const std::string& load_before,
                          const std::string& load_after) {
    const std::size_t thread_counts = config.threads.size();
    std::string out;
    char line[512];

    std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
    std::snprintf(line, sizeof line,
                  "### Concurrent maps, %llu keys preloaded, total M ops/s (median of %u round%s of %.3g s; "
                  "%u hardware threads; %s; %s)\n\n",
                  static_cast<unsigned long long>(config.keys), config.rounds, config.rounds == 1 ? "" : "s",
                  config.seconds, std::thread::hardware_concurrency(), "g++ " __VERSION__, date);
    out += line;
    std::snprintf(line, sizeof line,
                  "Keys: %zu bytes (\"user:%%011llu\"), %s; values: %zu bytes, raw %zu bytes/entry. Each peer "
                  "runs in a fresh process, peers alternated (order rotated each round). Zipfian: theta 0.99, "
                  "ranks scrambled with FNV. Load average before / after: %s / %s.\n\n",
                  kvstore_bench::kKeySize,
                  config.cold_keys ? "cache-cold (read from a shuffled array of std::string)"
                                   : "cache-warm (formatted into a reused buffer)",
                  config.value_size, kvstore_bench::kKeySize + config.value_size, load_before.c_str(),
                  load_after.c_str());
    out += line;
    std::size_t runs = 0;
    std::size_t disturbed = 0;
    double highest_rate = 0.0;
    for (const PeerFigures& f : medians) {
        runs += f.preemption_rates.size();
        disturbed += f.disturbed_runs;
        for (const double rate : f.preemption_rates) highest_rate = std::max(highest_rate, rate);
    }
    std::snprintf(line, sizeof line,
                  "Disturbance check: %zu of %zu workload runs (at most one thread per core) were preempted more "
                  "than %.0f times/s%s; highest %.0f/s.\n\n",
                  disturbed, runs, kPreemptionLimit,
                  disturbed != 0 ? ", so another process was running: treat those figures with care" : "",
                  highest_rate);
    out += line;

    const std::string thr = thread_list(config.threads, " / ") + " thr";
    out += "| map | bytes/entry | peak bytes/entry | load M ops/s |";
    for (const Workload& workload : kWorkloads) out += " " + std::string(workload.name) + " " + thr + " |";
    out += "\n|---|---|---|---|";
    for (std::size_t w = 0; w < kWorkloadCount; ++w) out += "---|";
    out += "\n";
    for (std::size_t p = 0; p < peers.size(); ++p) {
        const PeerFigures& f = medians[p];
        out += "| " + std::string(peers[p]->label) + " | " + format_number(f.bytes_per_entry, 0) + " | " +
               format_number(f.peak_bytes_per_entry, 0) + " | " + format_number(f.load_mops, 2) + " |";
        for (std::size_t w = 0; w < kWorkloadCount; ++w) {
            out += " ";
            for (std::size_t t = 0; t < thread_counts; ++t) {
                if (t != 0) out += " / ";
                out += format_number(f.mops[w][t], 2);
            }
            out += " |";
        }
        out += "\n";
    }

    // Ratios: kvstore over the best other concurrent peer (abseil without a
    // lock is the single-thread ceiling, not a peer), and over that ceiling.
    std::size_t kvstore = peers.size();
    std::size_t ceiling = peers.size();
    for (std::size_t p = 0; p < peers.size(); ++p) {
        if (std::strcmp(peers[p]->id, "kvstore") == 0) kvstore = p;
        if (std::strcmp(peers[p]->id, "absl-nolock") == 0) ceiling = p;
    }
    if (kvstore == peers.size()) return out;

    out += "\n| figure | threads | kvstore | best other peer | kvstore / best other | kvstore / abseil no lock |\n";
    out += "|---|---|---|---|---|---|\n";
    auto ratio_row = [&](const std::string& figure, const std::string& threads, auto value, bool lower_is_better,
                         bool against_ceiling, int decimals) {
        const double mine = value(medians[kvstore]);
        double best = kAbsent;
        std::size_t best_peer = peers.size();
        for (std::size_t p = 0; p < peers.size(); ++p) {
            if (p == kvstore || p == ceiling || is_store(*peers[p])) continue;
            const double theirs = value(medians[p]);
            if (std::isnan(theirs)) continue;
            if (std::isnan(best) || (lower_is_better ? theirs < best : theirs > best)) {
                best = theirs;
                best_peer = p;
            }
        }
        const std::string best_text =
            best_peer == peers.size() ? "–" : format_number(best, decimals) + " (" + peers[best_peer]->label + ")";
        const std::string ratio = std::isnan(best) || std::isnan(mine) ? "–" : format_number(mine / best, 2);
        std::string versus_ceiling = "–";
        if (against_ceiling && ceiling != peers.size()) {
            const double top = value(medians[ceiling]);
            if (!std::isnan(top) && !std::isnan(mine)) versus_ceiling = format_number(mine / top, 2);
        }
        out += "| " + figure + " | " + threads + " | " + format_number(mine, decimals) + " | " + best_text + " | " +
               ratio + " | " + versus_ceiling + " |\n";
    };
    ratio_row(
        "bytes/entry (lower is better)", "–", [](const PeerFigures& f) { return f.bytes_per_entry; }, true, true, 0);
    ratio_row(
        "peak bytes/entry (lower is better)", "–", [](const PeerFigures& f) { return f.peak_bytes_per_entry; }, true,
        true, 0);
    ratio_row(
        "load M ops/s", "1", [](const PeerFigures& f) { return f.load_mops; }, false, true, 2);
    for (std::size_t w = 0; w < kWorkloadCount; ++w) {
        for (std::size_t t = 0; t < thread_counts; ++t) {
            ratio_row(
                std::string(kWorkloads[w].name) + " M ops/s", std::to_string(config.threads[t]),
                [&](const PeerFigures& f) { return f.mops[w][t]; }, false, config.threads[t] == 1, 2);
        }
    }
    out += store_table(config, peers, medians, kvstore);
    return out;
}

// The same medians as the tables, for benchmarks/run's charts.
std::string render_json(const Config& config, const std::vector<const PeerEntry*>& peers,
                        const std::vector<PeerFigures>& medians, const std::string& load_before,
                        const std::string& load_after) {
    using namespace kvstore_bench;
    std::vector<std::string> threads, workloads, entries;
    for (const unsigned t : config.threads) threads.push_back(std::to_string(t));
    for (const Workload& workload : kWorkloads) workloads.push_back(json_string(workload.name));
    std::size_t disturbed = 0;
    for (std::size_t p = 0; p < peers.size(); ++p) {
        const PeerFigures& f = medians[p];
        disturbed += f.disturbed_runs;
        std::vector<std::string> mops;
        for (const std::vector<double>& per_thread : f.mops) mops.push_back(json_numbers(per_thread));
        entries.push_back(json_object({{"id", json_string(peers[p]->id)},
                                       {"label", json_string(peers[p]->label)},
                                       {"bytes_per_entry", json_number(f.bytes_per_entry)},
                                       {"peak_bytes_per_entry", json_number(f.peak_bytes_per_entry)},
                                       {"load_mops", json_number(f.load_mops)},
                                       {"mops", json_array(mops)}}));
    }
    return json_object({{"driver", json_string("kvstore-compare")},
                        {"keys", std::to_string(config.keys)},
                        {"key_size", std::to_string(kKeySize)},
                        {"value_size", std::to_string(config.value_size)},
                        {"keys_cache", json_string(config.cold_keys ? "cold" : "warm")},
                        {"seconds", json_number(config.seconds)},
                        {"rounds", std::to_string(config.rounds)},
                        {"threads", json_array(threads)},
                        {"workloads", json_array(workloads)},
                        {"load_average_before", json_string(load_before)},
                        {"load_average_after", json_string(load_after)},
                        {"disturbed_runs", std::to_string(disturbed)},
                        {"peers", json_array(entries)}});
}

// ---------------------------------------------------------------------------
// Command line.
// ---------------------------------------------------------------------------

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: kvstore-compare [--keys N] [--seconds S] [--rounds R] [--threads 1,2,...]\n"
                 "                       [--peers kvstore,libcuckoo,...] [--value-size B] [--cold-keys]\n"
                 "                       [--markdown FILE] [--json FILE]\n"
                 "  --keys N        keys preloaded (default 1000000)\n"
                 "  --seconds S     duration of each workload at each thread count (default 2)\n"
                 "  --rounds R      rounds over all peers; the median is reported (default 3)\n"
                 "  --threads LIST  thread counts (default 1,2)\n"
                 "  --peers LIST    peers to run (default: all built in):\n");
    for (const PeerEntry& peer : all_peers())
        std::fprintf(to, "                    %-14s %s%s\n", peer.id, peer.label,
                     peer.child != nullptr ? "" : "  [not built in]");
    std::fprintf(to,
                 "  --value-size B  value bytes (default 100)\n"
                 "  --cold-keys     read keys from a shuffled array of std::string (a miss or two per key, as\n"
                 "                  a server reading requests) instead of formatting them in a cached buffer\n"
                 "  --markdown FILE also write the tables to FILE\n"
                 "  --json FILE     also write the medians to FILE as JSON\n");
}

std::uint64_t parse_unsigned(const std::string& flag, const std::string& text) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || text[0] == '-')
        die(flag + " wants a non-negative integer, got '" + text + "'");
    return value;
}

Config parse_args(int argc, char** argv) {
    Config config;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        std::string value;
        const std::size_t equals = flag.find('=');
        if (flag == "--help" || flag == "-h") {
            usage(stdout);
            std::exit(0);
        }
        if (flag == "--cold-keys") {
            config.cold_keys = true;
            continue;
        }
        if (equals != std::string::npos) {
            value = flag.substr(equals + 1);
            flag.resize(equals);
        } else {
            if (i + 1 >= argc) die(flag + " wants a value (see --help)");
            value = argv[++i];
        }
        if (flag == "--keys") {
            config.keys = parse_unsigned(flag, value);
        } else if (flag == "--seconds") {
            char* end = nullptr;
            config.seconds = std::strtod(value.c_str(), &end);
            if (value.empty() || *end != '\0' || !(config.seconds > 0.0))
                die("--seconds wants a positive number, got '" + value + "'");
        } else if (flag == "--rounds") {
            config.rounds = static_cast<unsigned>(parse_unsigned(flag, value));
        } else if (flag == "--threads") {
            config.threads.clear();
            for (const std::string& item : kvstore_bench::split_list(value)) {
                const std::uint64_t threads = parse_unsigned(flag, item);
                if (threads == 0 || threads > 1024) die("--threads: " + item + " is not between 1 and 1024");
                if (std::find(config.threads.begin(), config.threads.end(), threads) == config.threads.end())
                    config.threads.push_back(static_cast<unsigned>(threads));
            }
        } else if (flag == "--peers") {
            config.peers = kvstore_bench::split_list(value);
        } else if (flag == "--value-size") {
            config.value_size = parse_unsigned(flag, value);
        } else if (flag == "--markdown") {
            config.markdown_path = value;
        } else if (flag == "--json") {
            config.json_path = value;
        } else {
            usage(stderr);
            die("unknown flag " + flag);
        }
    }
    if (config.keys == 0 || config.keys > std::numeric_limits<std::uint32_t>::max())
        die("--keys must be between 1 and " + std::to_string(std::numeric_limits<std::uint32_t>::max()));
    if (config.rounds == 0) die("--rounds must be at least 1");
    if (config.threads.empty()) die("--threads needs at least one thread count");
    if (config.value_size == 0) die("--value-size must be at least 1");
    return config;
}

std::vector<const PeerEntry*> select_peers(const Config& config, const std::vector<PeerEntry>& all) {
    std::vector<const PeerEntry*> chosen;
    if (config.peers.empty()) {
        for (const PeerEntry& peer : all)
            if (peer.child != nullptr) chosen.push_back(&peer);
        return chosen;
    }
    for (const std::string& id : config.peers) {
        const auto it = std::find_if(all.begin(), all.end(), [&](const PeerEntry& p) { return id == p.id; });
        if (it == all.end()) die("unknown peer '" + id + "' (see --help)");
        if (it->child == nullptr)
            die("peer '" + id + "' was not built in (install " + it->package + " and reconfigure)");
        if (std::find(chosen.begin(), chosen.end(), &*it) == chosen.end()) chosen.push_back(&*it);
    }
    return chosen;
}

}  // namespace

int main(int argc, char** argv) {
    const Config config = parse_args(argc, argv);
    const std::vector<PeerEntry> all = all_peers();
    const std::vector<const PeerEntry*> peers = select_peers(config, all);
    for (const PeerEntry& peer : all)
        if (peer.child == nullptr)
            std::fprintf(stderr, "kvstore-compare: %s was not built in (install %s and reconfigure)\n", peer.id,
                         peer.package);

    std::fprintf(stderr, "kvstore-compare: generating key streams (%u threads x %zu indices)...\n",
                 *std::max_element(config.threads.begin(), config.threads.end()), kIndexCount);
    const Inputs inputs = make_inputs(config);
    const std::string load_before = load_average();

    // [peer][round]
    std::vector<std::vector<PeerFigures>> rounds(peers.size());
    for (unsigned round = 0; round < config.rounds; ++round) {
        for (std::size_t k = 0; k < peers.size(); ++k) {
            const std::size_t p = (k + round) % peers.size();
            std::fprintf(stderr, "kvstore-compare: round %u/%u, %s\n", round + 1, config.rounds, peers[p]->id);
            rounds[p].push_back(run_peer(*peers[p], config, inputs));
        }
    }

    std::vector<PeerFigures> medians;
    for (std::size_t p = 0; p < peers.size(); ++p) medians.push_back(median_figures(rounds[p], config.threads.size()));
    const std::string load_after = load_average();
    const std::string tables = render_tables(config, peers, medians, load_before, load_after);
    std::fputs(tables.c_str(), stdout);
    std::fflush(stdout);
    if (!config.markdown_path.empty()) {
        std::ofstream file(config.markdown_path);
        file << tables;
        if (!file.flush()) die("cannot write " + config.markdown_path);
    }
    if (!config.json_path.empty() &&
        !kvstore_bench::write_file(config.json_path, render_json(config, peers, medians, load_before, load_after)))
        die("cannot write " + config.json_path);
    return 0;
}
