// The kill and power-cut torture: rounds of writers (puts, puts with a TTL,
// erases, batches) and a checkpointing thread on one Store, each round
// ended by a SIGKILL of the writing process or by a simulated power cut of
// the in-memory file layer, then a reopen that must hold every
// acknowledged write.
//
// Each writer owns its keys and runs its operations one after another, so
// whatever the log kept, the recovered state of a writer's keys is the state
// after some prefix of its operations. The check: that prefix takes in every
// operation that had to be durable (under SyncWAL and GroupCommitWAL each
// acknowledged one; under the relaxed mode each acknowledged more than
// flush_interval plus a scheduling allowance before the cut) and matches the
// recovered keys exactly, values and absences both. The next round goes on
// from the recovered state.
//
// Usage: kvstore-torture [--kills N] [--power-cuts N] [--seed S] [--dir D]
//                        [--durability sync|group|relaxed|all]
// Rounds cycle through the durability modes. The operations of a round are
// drawn from the seed, the round and the writer; the timing of the cut is
// not, so a failure is reproduced by the same seed with the same counts,
// run until it shows again.
#include "fault_file_system.hpp"
#include "torture_support.hpp"

#include <kvstore/store.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace kvstore;
using namespace std::chrono_literals;
using kvstore::torture::die;

namespace {

using State = std::map<std::string, std::string>;

constexpr int kWriters = 2;
constexpr int kKeysPerWriter = 24;
constexpr auto kRelaxedInterval = 10ms;
// A relaxed flush can start late on a loaded two-core machine; a write
// acknowledged longer than the interval plus this before the cut must have
// been synced.
constexpr auto kSchedulingAllowance = 150ms;

enum class Durability { kSync, kGroup, kRelaxed };
constexpr std::array<const char*, 3> kDurabilityNames = {"SyncWAL", "GroupCommitWAL", "GroupCommitWAL relaxed"};

std::int64_t monotonic_ns() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);  // one clock for the parent and its children
    return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

std::string key_of(int writer, int k) { return "w" + std::to_string(writer) + "-k" + std::to_string(k); }

// One operation of a writer: a put (with or without a TTL), an erase, or a
// batch of puts and erases over distinct keys of the writer.
struct Op {
    enum Kind { kPut, kPutWithTtl, kErase, kBatch } kind = kPut;
    std::vector<std::pair<int, bool>> parts;  // (key, put?) in order
};

// Operation `i` of `writer` in `round`: drawn from those alone, so the parent
// of a killed writer knows what its child did.
Op op_of(std::uint64_t seed, int round, int writer, long i) {
    std::mt19937_64 rng(seed ^ (static_cast<std::uint64_t>(round) << 40) ^
                        (static_cast<std::uint64_t>(writer) << 32) ^ static_cast<std::uint64_t>(i));
    Op op;
    const unsigned pick = static_cast<unsigned>(rng() % 20);
    op.kind = pick < 10 ? Op::kPut : pick < 13 ? Op::kPutWithTtl : pick < 16 ? Op::kErase : Op::kBatch;
    const int parts = op.kind == Op::kBatch ? 2 + static_cast<int>(rng() % 3) : 1;
    const int first = static_cast<int>(rng() % kKeysPerWriter);
    for (int n = 0; n < parts; ++n)
        op.parts.emplace_back((first + n * 7) % kKeysPerWriter, op.kind != Op::kErase && (n == 0 || rng() % 4 != 0));
    return op;
}

std::string value_of(int round, int writer, long i, int k) {
    // Lengths vary so that records straddle segment ends at varied places.
    const std::size_t padding = static_cast<std::size_t>((i * 31 + k * 17) % 180);
    return "r" + std::to_string(round) + "-w" + std::to_string(writer) + "-" + std::to_string(i) + "-k" +
           std::to_string(k) + std::string(padding, '.');
}

void apply(const Op& op, int round, int writer, long i, State& state) {
    for (const auto& [k, put] : op.parts) {
        if (put)
            state[key_of(writer, k)] = value_of(round, writer, i, k);
        else
            state.erase(key_of(writer, k));
    }
}

template <class S>
Status execute(S& store, const Op& op, int round, int writer, long i) {
    const auto& [k, put] = op.parts.front();
    switch (op.kind) {
        case Op::kPut: return store.put(key_of(writer, k), value_of(round, writer, i, k));
        case Op::kPutWithTtl: return store.put(key_of(writer, k), value_of(round, writer, i, k), 1h);
        case Op::kErase: return store.erase(key_of(writer, k));
        case Op::kBatch: break;
    }
    WriteBatch<std::string, std::string> batch;
    for (const auto& [key, is_put] : op.parts) {
        if (is_put)
            batch.put(key_of(writer, key), value_of(round, writer, i, key));
        else
            batch.erase(key_of(writer, key));
    }
    return store.write(batch);
}

StoreOptions store_options(Durability durability) {
    StoreOptions options;
    options.checkpoint_bytes = 0;  // the checkpointing thread does them
    options.sweep_interval = 0ms;  // every TTL is an hour: nothing expires
    options.log.segment_bytes = 16 << 10;
    options.log.preallocate_bytes = 8 << 10;
    if (durability == Durability::kRelaxed) options.log.flush_interval = kRelaxedInterval;
    options.map.shards = 4;
    return options;
}

State writer_keys(const State& all, int writer) {
    State mine;
    const std::string prefix = "w" + std::to_string(writer) + "-";
    for (const auto& [key, value] : all)
        if (key.compare(0, prefix.size(), prefix) == 0) mine.emplace(key, value);
    return mine;
}

// What a round of one writer did: from `base`, operations 0..attempted-1
// were started, and 0..required-1 had to be durable. `acked_at[i]` is when
// operation i was acknowledged (for the relaxed mode's losses).
struct WriterRound {
    State base;
    long required = 0;
    long attempted = 0;
    std::vector<std::int64_t> acked_at;
};

struct Tally {
    std::uint64_t rounds = 0;
    std::uint64_t acknowledged = 0;
    std::uint64_t required = 0;
    std::uint64_t lost = 0;               // required operations missing: must stay 0
    std::uint64_t lost_in_interval = 0;   // relaxed: acknowledged within the interval, lost (allowed)
    std::int64_t oldest_loss_ns = 0;      // relaxed: the longest before the cut such a loss was acknowledged
    std::uint64_t in_flight_kept = 0;     // started, not (known to be) acknowledged, found durable
};

// Checks one writer's recovered keys; false (with `why`) when no prefix that
// holds every required operation gives them.
bool check_writer(std::uint64_t seed, int round, int writer, const WriterRound& w, const State& recovered,
                  std::int64_t cut_ns, Tally& tally, std::string& why) {
    State state = w.base;
    for (long c = 0;; ++c) {
        if (c >= w.required && state == recovered) {
            const long acked = static_cast<long>(w.acked_at.size());
            for (long i = c; i < acked; ++i) {
                ++tally.lost_in_interval;
                tally.oldest_loss_ns = std::max(tally.oldest_loss_ns, cut_ns - w.acked_at[static_cast<std::size_t>(i)]);
            }
            if (c > acked) tally.in_flight_kept += static_cast<std::uint64_t>(c - acked);
            return true;
        }
        if (c == w.attempted) break;
        apply(op_of(seed, round, writer, c), round, writer, c, state);
    }
    why = "writer " + std::to_string(writer) + ": no prefix of its " + std::to_string(w.attempted) +
          " operations with the " + std::to_string(w.required) +
          " that had to be durable gives the recovered keys; " + std::to_string(recovered.size()) +
          " recovered, e.g.";
    State required = w.base;
    for (long c = 0; c < w.required; ++c) apply(op_of(seed, round, writer, c), round, writer, c, required);
    for (const auto& [key, value] : required) {
        const auto found = recovered.find(key);
        if (found == recovered.end() || found->second != value) {
            why += " " + key + " is " + (found == recovered.end() ? "missing" : "'" + found->second.substr(0, 24) + "...'") +
                   " where operation " + std::to_string(w.required - 1) + " or later left '" + value.substr(0, 24) +
                   "...'";
            break;
        }
    }
    ++tally.lost;
    return false;
}

template <class S>
State contents(const S& store) {
    State state;
    store.for_each([&](const auto& key, const auto& value) { state.emplace(std::string(key), std::string(value)); });
    return state;
}

// Writers and a checkpointer on `store` until `stop` or an error. Writer t
// calls on_ack(t, i) after its operation i is acknowledged, and
// attempted[t] counts the operations it started.
template <class S, class OnAck>
void run_writers(S& store, std::uint64_t seed, int round, const std::atomic<bool>& stop,
                 std::array<long, kWriters>& attempted, OnAck&& on_ack) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
        threads.emplace_back([&, t] {
            for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
                attempted[static_cast<std::size_t>(t)] = i + 1;
                if (!execute(store, op_of(seed, round, t, i), round, t, i)) return;
                on_ack(t, i);
            }
        });
    }
    threads.emplace_back([&] {
        std::mt19937 rng(static_cast<unsigned>(seed) + static_cast<unsigned>(round));
        while (!stop.load(std::memory_order_relaxed)) {
            std::this_thread::sleep_for(std::chrono::microseconds(500 + rng() % 4000));
            if (!store.checkpoint()) return;
        }
    });
    for (std::thread& thread : threads) thread.join();
}

// How long a round writes before its cut: short under the synced modes
// (each write waits for its sync), long enough under the relaxed one that
// some writes fall out of the interval.
std::chrono::microseconds round_length(Durability durability, std::mt19937_64& rng) {
    if (durability == Durability::kRelaxed) return std::chrono::microseconds(rng() % 320'000);
    return std::chrono::microseconds(rng() % 12'000);
}

// Checks a reopened store against the round's writers and makes what it
// recovered the next round's state.
template <class S>
bool verify_round(const S& store, std::uint64_t seed, int round, Durability durability,
                  std::array<WriterRound, kWriters>& writers, std::int64_t cut_ns, State& state, Tally& tally,
                  std::string& why) {
    const State recovered = contents(store);
    const std::int64_t durable_before =
        cut_ns - std::chrono::nanoseconds(kRelaxedInterval + kSchedulingAllowance).count();
    bool ok = true;
    for (int t = 0; t < kWriters; ++t) {
        WriterRound& w = writers[static_cast<std::size_t>(t)];
        w.required = static_cast<long>(w.acked_at.size());
        if (durability == Durability::kRelaxed)
            w.required = static_cast<long>(std::lower_bound(w.acked_at.begin(), w.acked_at.end(), durable_before) -
                                           w.acked_at.begin());
        tally.acknowledged += w.acked_at.size();
        tally.required += static_cast<std::uint64_t>(w.required);
        if (!check_writer(seed, round, t, w, writer_keys(recovered, t), cut_ns, tally, why)) ok = false;
    }
    ++tally.rounds;
    state = recovered;
    return ok;
}

// Reopens the store after a cut, checks it (verify_round) and closes it.
template <class D>
bool reopen_and_verify(const std::string& dir, const StoreOptions& options, const char* cut, std::uint64_t seed,
                       int round, Durability durability, std::array<WriterRound, kWriters>& writers,
                       std::int64_t cut_ns, State& state, Tally& tally, std::string& why) {
    std::unique_ptr<Store<std::string, std::string, D>> store;
    if (Status reopened = Store<std::string, std::string, D>::open(dir, options, store); !reopened) {
        why = std::string("reopen after the ") + cut + ": " + reopened.to_string();
        return false;
    }
    const bool ok = verify_round(*store, seed, round, durability, writers, cut_ns, state, tally, why);
    if (Status closed = store->close(); !closed) {
        why = "close after the check: " + closed.to_string();
        return false;
    }
    return ok;
}

template <class D>
bool power_cut_round(test::FaultFileSystem& fs, Durability durability, std::uint64_t seed, int round,
                     std::mt19937_64& rng, State& state, Tally& tally, std::string& why) {
    using S = Store<std::string, std::string, D>;
    StoreOptions options = store_options(durability);
    options.log.file_system = &fs;
    std::unique_ptr<S> store;
    if (Status opened = S::open("/store", options, store); !opened) {
        why = "open: " + opened.to_string();
        return false;
    }
    std::array<WriterRound, kWriters> writers;
    for (int t = 0; t < kWriters; ++t) writers[static_cast<std::size_t>(t)].base = writer_keys(state, t);
    std::array<long, kWriters> attempted{};
    std::atomic<bool> stop{false};
    std::int64_t cut_ns = 0;
    std::thread cutter([&, length = round_length(durability, rng)] {
        std::this_thread::sleep_for(length);
        cut_ns = monotonic_ns();
        fs.power_cut();
        stop = true;
    });
    run_writers(*store, seed, round, stop, attempted, [&](int t, long) {
        writers[static_cast<std::size_t>(t)].acked_at.push_back(monotonic_ns());
    });
    cutter.join();
    for (int t = 0; t < kWriters; ++t) writers[static_cast<std::size_t>(t)].attempted = attempted[static_cast<std::size_t>(t)];
    store.reset();
    fs.revive();
    return reopen_and_verify<D>("/store", options, "power cut", seed, round, durability, writers, cut_ns, state,
                                tally, why);
}

// The child of a kill round: writes until killed, reporting each
// acknowledgement as "writer index nanoseconds\n" on report_fd.
template <class D>
[[noreturn]] void write_until_killed(const std::string& dir, Durability durability, std::uint64_t seed, int round,
                                     int report_fd) {
    using S = Store<std::string, std::string, D>;
    std::unique_ptr<S> store;
    if (!S::open(dir, store_options(durability), store)) ::_exit(2);
    std::array<long, kWriters> attempted{};
    const std::atomic<bool> never{false};
    run_writers(*store, seed, round, never, attempted, [&](int t, long i) {
        const std::string line =
            std::to_string(t) + " " + std::to_string(i) + " " + std::to_string(monotonic_ns()) + "\n";
        if (::write(report_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(4);
    });
    ::_exit(3);  // a writer failed
}

template <class D>
bool kill_round(const std::string& dir, Durability durability, std::uint64_t seed, int round, std::mt19937_64& rng,
                State& state, Tally& tally, std::string& why) {
    int report[2];
    if (::pipe(report) != 0) die("pipe failed");
    const pid_t child = ::fork();
    if (child < 0) die("fork failed");
    if (child == 0) {
        ::close(report[0]);
        write_until_killed<D>(dir, durability, seed, round, report[1]);
    }
    ::close(report[1]);
    std::string reported;
    char buffer[4096];
    // The delay counts from the first acknowledgement, so that a slow start
    // (under a sanitizer, say) does not leave the round empty.
    const ssize_t first = ::read(report[0], buffer, sizeof buffer);
    if (first > 0) reported.append(buffer, static_cast<std::size_t>(first));
    std::this_thread::sleep_for(round_length(durability, rng));
    const std::int64_t cut_ns = monotonic_ns();
    ::kill(child, SIGKILL);
    int status = 0;
    if (::waitpid(child, &status, 0) != child) die("waitpid failed");
    for (ssize_t got; (got = ::read(report[0], buffer, sizeof buffer)) > 0;)
        reported.append(buffer, static_cast<std::size_t>(got));
    ::close(report[0]);
    if (!WIFSIGNALED(status)) {
        why = "the writing process exited by itself with status " + std::to_string(WEXITSTATUS(status));
        return false;
    }

    std::array<WriterRound, kWriters> writers;
    for (int t = 0; t < kWriters; ++t) writers[static_cast<std::size_t>(t)].base = writer_keys(state, t);
    for (std::size_t start = 0, end; (end = reported.find('\n', start)) != std::string::npos; start = end + 1) {
        char* rest = nullptr;
        const long t = std::strtol(reported.c_str() + start, &rest, 10);
        const long i = std::strtol(rest, &rest, 10);
        const long long at = std::strtoll(rest, &rest, 10);
        WriterRound& w = writers.at(static_cast<std::size_t>(t));
        if (i != static_cast<long>(w.acked_at.size())) die("acknowledgements out of order");
        w.acked_at.push_back(at);
    }
    // The operation after the last one reported may have been acknowledged
    // without the report getting out, and the one after it started.
    for (WriterRound& w : writers) w.attempted = static_cast<long>(w.acked_at.size()) + 2;

    return reopen_and_verify<D>(dir, store_options(durability), "kill", seed, round, durability, writers, cut_ns,
                                state, tally, why);
}

struct Arguments {
    long kills = 30;
    long power_cuts = 60;
    std::uint64_t seed = std::random_device{}();
    std::string dir;
    std::vector<Durability> durabilities = {Durability::kSync, Durability::kGroup, Durability::kRelaxed};
};

Arguments parse_arguments(int argc, char** argv) {
    Arguments args;
    args.dir = torture::default_scratch_base();
    torture::CommandLine line(argc, argv);
    for (std::string arg; line.next(arg);) {
        if (arg == "--kills") {
            args.kills = static_cast<long>(line.number());
        } else if (arg == "--power-cuts") {
            args.power_cuts = static_cast<long>(line.number());
        } else if (arg == "--seed") {
            args.seed = line.number();
        } else if (arg == "--dir") {
            args.dir = line.value();
        } else if (arg == "--durability") {
            const std::string name = line.value();
            if (name == "sync") args.durabilities = {Durability::kSync};
            else if (name == "group") args.durabilities = {Durability::kGroup};
            else if (name == "relaxed") args.durabilities = {Durability::kRelaxed};
            else if (name != "all") die("--durability takes sync, group, relaxed or all, not '" + name + "'");
        } else {
            line.unknown("torture.cpp");
        }
    }
    return args;
}

// Names a durability policy type for a generic lambda.
template <class D>
struct LogType {
    using type = D;
};

// Runs `rounds` rounds of one_round(LogType<policy>, durability, round, rng,
// state, tally, why), cycling through the durability modes; prints a line
// per mode and returns the number of failed rounds.
template <class OneRound>
long run_rounds(const char* what, long rounds, const Arguments& args, OneRound&& one_round) {
    if (rounds == 0) return 0;
    std::array<Tally, kDurabilityNames.size()> tallies{};
    std::mt19937_64 rng(args.seed);
    State state;
    long failures = 0;
    const auto started = std::chrono::steady_clock::now();
    for (long round = 0; round < rounds; ++round) {
        const Durability durability = args.durabilities[static_cast<std::size_t>(round) % args.durabilities.size()];
        std::string why;
        Tally& tally = tallies[static_cast<std::size_t>(durability)];
        const bool ok = durability == Durability::kSync
                            ? one_round(LogType<SyncWAL>{}, durability, static_cast<int>(round), rng, state, tally, why)
                            : one_round(LogType<GroupCommitWAL>{}, durability, static_cast<int>(round), rng, state,
                                        tally, why);
        if (!ok) {
            ++failures;
            std::printf("FAILED %s round %ld (%s, seed %llu): %s\n", what, round,
                        kDurabilityNames[static_cast<std::size_t>(durability)],
                        static_cast<unsigned long long>(args.seed), why.c_str());
            std::fflush(stdout);
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("%s: %ld rounds in %.0f s, seed %llu\n", what, rounds, seconds,
                static_cast<unsigned long long>(args.seed));
    std::printf("  %-24s %8s %12s %12s %6s %14s %12s %12s\n", "durability", "rounds", "acknowledged", "had to last",
                "lost", "lost in intvl", "oldest (ms)", "in flight kept");
    for (std::size_t d = 0; d < tallies.size(); ++d) {
        const Tally& t = tallies[d];
        if (t.rounds == 0) continue;
        std::printf("  %-24s %8llu %12llu %12llu %6llu %14llu %12.1f %12llu\n", kDurabilityNames[d],
                    static_cast<unsigned long long>(t.rounds), static_cast<unsigned long long>(t.acknowledged),
                    static_cast<unsigned long long>(t.required), static_cast<unsigned long long>(t.lost),
                    static_cast<unsigned long long>(t.lost_in_interval), static_cast<double>(t.oldest_loss_ns) / 1e6,
                    static_cast<unsigned long long>(t.in_flight_kept));
    }
    std::fflush(stdout);
    return failures;
}

}  // namespace

int main(int argc, char** argv) {
    const Arguments args = parse_arguments(argc, argv);
    std::printf("kvstore-torture: seed %llu, %ld kills, %ld power cuts\n", static_cast<unsigned long long>(args.seed),
                args.kills, args.power_cuts);
    std::fflush(stdout);

    test::FaultFileSystem fs;
    const long cut_failures = run_rounds(
        "power cuts", args.power_cuts, args,
        [&](auto log, Durability durability, int round, std::mt19937_64& rng, State& state, Tally& tally,
            std::string& why) {
            using D = typename decltype(log)::type;
            return power_cut_round<D>(fs, durability, args.seed, round, rng, state, tally, why);
        });

    const std::string root = torture::make_scratch_dir(args.dir, "kvstore-torture");
    const std::string dir = root + "/store";
    const long kill_failures = run_rounds(
        "kills", args.kills, args,
        [&](auto log, Durability durability, int round, std::mt19937_64& rng, State& state, Tally& tally,
            std::string& why) {
            return kill_round<typename decltype(log)::type>(dir, durability, args.seed, round, rng, state, tally, why);
        });
    std::filesystem::remove_all(root);
    return cut_failures + kill_failures == 0 ? 0 : 1;
}
