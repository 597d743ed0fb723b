// The corruption sweep: damages a copy of a store's directory (a snapshot,
// then log records after it over several segments) in one place, opens it in
// one recovery mode in a child process, and classifies what came back:
//
//   refused        open failed with an error that names a file of the store,
//                  and left every file as it was
//   intact         open succeeded with exactly the acknowledged state
//   loss reported  open succeeded without some acknowledged writes, and its
//                  report says that it dropped or set aside bytes
//   unreported     open succeeded with another state than the acknowledged
//                  one and said nothing, or with a value never written, or a
//                  refusal that named no file or changed a file
//   unstable       after a successful open, a write and a reopen do not give
//                  back the recovered state plus that write
//   crash, hang    the child died by a signal or an unexpected exit, or
//                  took longer than the time limit
//
// The last four must never happen; the program exits 1 if one did. The
// damage: a cut at every record and block boundary of every file and at
// random offsets, 1-8 flipped bytes, a zeroed 4 KiB page; every recovery mode
// for each boundary cut, one drawn at random for the rest.
//
// Usage: kvstore-corruption-sweep [--cases N | --long] [--seed S] [--dir D]
//        [--only CASE] [--verbose]
// The default runs a short sample (for CI); --long runs every boundary cut
// in every mode and 10,000 random cases. A case is reproduced by its seed
// and number: --seed S --only CASE.
#include "torture_support.hpp"

#include <kvstore/detail/log_reader.hpp>
#include <kvstore/detail/snapshot_file.hpp>
#include <kvstore/store.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace kvstore;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using kvstore::torture::die;

namespace {

using SweepStore = Store<std::string, std::string, SyncWAL>;
using State = std::map<std::string, std::string>;

constexpr unsigned kTimeLimitSeconds = 20;
constexpr int kRandomCasesLong = 10000;
constexpr int kCasesShort = 400;

const std::array<RecoveryMode, 4> kModes = {RecoveryMode::kTolerateTornTail, RecoveryMode::kAbsoluteConsistency,
                                            RecoveryMode::kPointInTime, RecoveryMode::kSkipBadRecords};

const char* mode_name(RecoveryMode mode) {
    switch (mode) {
        case RecoveryMode::kTolerateTornTail: return "tolerate-torn-tail";
        case RecoveryMode::kAbsoluteConsistency: return "absolute";
        case RecoveryMode::kPointInTime: return "point-in-time";
        case RecoveryMode::kSkipBadRecords: return "skip-bad-records";
    }
    return "?";
}

enum class Outcome { kRefused, kIntact, kLossReported, kUnreported, kUnstable, kCrash, kHang };
constexpr std::array<const char*, 7> kOutcomeNames = {"refused", "intact",   "loss reported", "unreported",
                                                      "unstable", "crash", "hang"};
constexpr std::size_t kOutcomes = kOutcomeNames.size();
bool is_failure(Outcome outcome) { return outcome >= Outcome::kUnreported; }

enum class Damage { kCutAtBoundary, kCutAtRandom, kFlipBytes, kZeroPage };
constexpr std::array<const char*, 4> kDamageNames = {"cut at a boundary", "cut at random", "flipped bytes",
                                                     "zeroed 4 KiB page"};

StoreOptions store_options(RecoveryMode mode) {
    StoreOptions options;
    options.checkpoint_bytes = 0;  // the sweep says when to checkpoint
    options.sweep_interval = 0ms;  // no expiry runs: every TTL is an hour
    options.log.recovery_mode = mode;
    options.log.segment_bytes = 32 << 10;
    options.log.preallocate_bytes = 16 << 10;
    options.map.shards = 4;
    return options;
}

void check(const Status& status, const char* what) {
    if (!status) die(std::string(what) + ": " + status.to_string());
}

// What the pristine store acknowledged: its final state, and every value
// each key ever held (a recovered value outside that set was never written).
struct Written {
    State state;
    std::map<std::string, std::set<std::string>> values;

    void put(const std::string& key, const std::string& value) {
        state[key] = value;
        values[key].insert(value);
    }
    void erase(const std::string& key) { state.erase(key); }
};

// 400 puts (some with a TTL), a checkpoint, then 900 puts, erases, TTL
// writes and batches over several segments, and a clean close.
Written build_pristine(const std::string& dir) {
    Written written;
    std::unique_ptr<SweepStore> store;
    check(SweepStore::open(dir, store_options(RecoveryMode::kTolerateTornTail), store), "opening the pristine store");
    auto key = [](int i) { return "key-" + std::to_string(i); };
    int op = 0;
    auto value = [&](int i) { return "value " + std::to_string(++op) + " of key " + std::to_string(i); };
    for (int i = 0; i < 400; ++i) {
        const std::string v = value(i);
        check(i % 5 == 0 ? store->put(key(i), v, 1h) : store->put(key(i), v), "put");
        written.put(key(i), v);
    }
    check(store->checkpoint(), "checkpoint");
    std::mt19937 rng(7);
    for (int step = 0; step < 900; ++step) {
        const int i = static_cast<int>(rng() % 600);
        switch (rng() % 8) {
            case 0:
            case 1: check(store->erase(key(i)), "erase"); written.erase(key(i)); break;
            case 2: {
                const std::string v = value(i);
                check(store->put(key(i), v, 1h), "put with a TTL");
                written.put(key(i), v);
                break;
            }
            case 3: {
                WriteBatch<std::string, std::string> batch;
                Written after = written;
                for (int n = 0; n < 4; ++n) {
                    const int j = static_cast<int>(rng() % 600);
                    if (n == 3) {
                        batch.erase(key(j));
                        after.erase(key(j));
                    } else {
                        const std::string v = value(j);
                        batch.put(key(j), v);
                        after.put(key(j), v);
                    }
                }
                check(store->write(batch), "batch");
                written = std::move(after);
                break;
            }
            default: {
                const std::string v = value(i);
                check(store->put(key(i), v), "put");
                written.put(key(i), v);
            }
        }
    }
    check(store->close(), "closing the pristine store");
    return written;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) die("cannot write " + path);
}

// A file of the pristine store, with the offsets a cut at a record boundary
// tries and where its data ends (preallocated zeros follow in a segment).
struct StoreFile {
    std::string name;
    std::string bytes;
    std::vector<std::uint64_t> boundaries;
    std::uint64_t data_end = 0;
};

void find_segment_boundaries(const std::string& path, StoreFile& file) {
    std::unique_ptr<ReadableFile> readable;
    check(default_file_system().open_readable(path, readable), "reading a segment");
    detail::log::LogReader reader(*readable, path, file.bytes.size());
    detail::log::FileHeader header;
    if (reader.read_file_header(header) != detail::log::LogReader::Next::kRecord) die(path + ": no file header");
    file.boundaries = {0, detail::log::kFileHeaderSize};
    detail::log::RecordView record{};
    std::uint64_t end = detail::log::kFileHeaderSize;
    while (reader.next(record) == detail::log::LogReader::Next::kRecord) {
        file.boundaries.push_back(record.offset);
        end = reader.offset();
    }
    file.boundaries.push_back(end);
    file.data_end = end;
}

void find_snapshot_boundaries(StoreFile& file) {
    constexpr std::uint64_t kHeader = 32, kBlockHeader = 16, kTrailer = 32;
    const std::uint64_t size = file.bytes.size();
    file.boundaries = {0, kHeader};
    for (std::uint64_t at = kHeader; at + kBlockHeader <= size - kTrailer;) {
        at += kBlockHeader + detail::log::get_u32(file.bytes.data() + at + 4);
        file.boundaries.push_back(at);
    }
    file.boundaries.push_back(size);
    file.data_end = size;
}

std::vector<StoreFile> read_store_files(const std::string& dir) {
    std::vector<StoreFile> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        StoreFile file;
        file.name = entry.path().filename().string();
        if (file.name == "LOCK") continue;  // its bytes mean nothing: only the lock on it does
        file.bytes = read_file(entry.path().string());
        if (file.name.compare(0, 4, "wal-") == 0) {
            find_segment_boundaries(entry.path().string(), file);
        } else if (file.name.compare(0, 9, "snapshot-") == 0) {
            find_snapshot_boundaries(file);
        } else {
            die("unexpected file in the pristine store: " + file.name);
        }
        files.push_back(std::move(file));
    }
    std::sort(files.begin(), files.end(), [](const StoreFile& a, const StoreFile& b) { return a.name < b.name; });
    return files;
}

struct Case {
    std::size_t file = 0;
    Damage damage = Damage::kCutAtBoundary;
    RecoveryMode mode = RecoveryMode::kTolerateTornTail;
    std::uint64_t offset = 0;               // of the cut or the page
    std::vector<std::uint64_t> flipped;     // offsets of flipped bytes
    std::vector<unsigned char> flip_masks;  // non-zero

    std::string describe(const std::vector<StoreFile>& files) const {
        std::string text = files[file].name + ", " + kDamageNames[static_cast<int>(damage)];
        if (damage == Damage::kFlipBytes) {
            text += " at";
            for (std::uint64_t at : flipped) text += " " + std::to_string(at);
        } else {
            text += " at offset " + std::to_string(offset);
        }
        return text + ", " + mode_name(mode);
    }
};

// Every boundary cut in every mode, then random damage.
std::vector<Case> boundary_cases(const std::vector<StoreFile>& files) {
    std::vector<Case> cases;
    for (std::size_t f = 0; f < files.size(); ++f)
        for (std::uint64_t offset : files[f].boundaries)
            for (RecoveryMode mode : kModes) cases.push_back(Case{f, Damage::kCutAtBoundary, mode, offset, {}, {}});
    return cases;
}

Case random_case(const std::vector<StoreFile>& files, std::mt19937_64& rng) {
    Case c;
    c.file = rng() % files.size();
    c.mode = kModes[rng() % kModes.size()];
    const StoreFile& file = files[c.file];
    const std::uint64_t size = file.bytes.size();
    // Most damage falls where the data is; some in the preallocated zeros.
    const std::uint64_t span = rng() % 5 == 0 ? size : file.data_end;
    switch (rng() % 3) {
        case 0:
            c.damage = Damage::kCutAtRandom;
            c.offset = rng() % span;
            break;
        case 1: {
            c.damage = Damage::kFlipBytes;
            const std::size_t count = 1 + rng() % 8;
            // Half the time the flips fall together, as in one bad sector.
            const std::uint64_t base = rng() % span;
            for (std::size_t n = 0; n < count; ++n) {
                const std::uint64_t at = rng() % 2 == 0 ? (base + rng() % 64) % size : rng() % span;
                c.flipped.push_back(at);
                c.flip_masks.push_back(static_cast<unsigned char>(1 + rng() % 255));
            }
            break;
        }
        default:
            c.damage = Damage::kZeroPage;
            c.offset = (rng() % span) & ~std::uint64_t{4095};
    }
    return c;
}

void apply_damage(const Case& c, const StoreFile& file, const std::string& path) {
    std::string bytes = file.bytes;
    switch (c.damage) {
        case Damage::kCutAtBoundary:
        case Damage::kCutAtRandom: bytes.resize(c.offset); break;
        case Damage::kFlipBytes:
            for (std::size_t n = 0; n < c.flipped.size(); ++n)
                bytes[c.flipped[n]] = static_cast<char>(static_cast<unsigned char>(bytes[c.flipped[n]]) ^ c.flip_masks[n]);
            break;
        case Damage::kZeroPage:
            std::memset(bytes.data() + c.offset, 0, std::min<std::uint64_t>(4096, bytes.size() - c.offset));
    }
    write_file(path, bytes);
}

std::map<std::string, std::string> snapshot_of_dir(const std::string& dir) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::directory_iterator(dir)) files[entry.path().filename().string()] = read_file(entry.path().string());
    return files;
}

State contents(const SweepStore& store) {
    State state;
    store.for_each([&](const auto& key, const auto& value) { state.emplace(std::string(key), std::string(value)); });
    return state;
}

struct Verdict {
    Outcome outcome = Outcome::kCrash;
    std::uint64_t lost_keys = 0;  // acknowledged keys missing or with another value
    std::string detail;
};

// Runs in the child: opens the damaged copy and judges what came back.
Verdict judge(const std::string& dir, RecoveryMode mode, const Written& written) {
    const auto before = snapshot_of_dir(dir);
    Verdict verdict;
    std::unique_ptr<SweepStore> store;
    StoreRecovery recovery;
    const Status opened = SweepStore::open(dir, store_options(mode), store, &recovery);
    if (!opened) {
        const bool names_file = opened.message().find(dir + "/") != std::string::npos;
        const bool unchanged = snapshot_of_dir(dir) == before;
        verdict.outcome = names_file && unchanged ? Outcome::kRefused : Outcome::kUnreported;
        verdict.detail = (names_file ? "" : "the error names no file: ") +
                         std::string(unchanged ? "" : "a refused open changed files: ") + opened.to_string();
        return verdict;
    }
    const State recovered = contents(*store);
    for (const auto& [key, value] : written.state) {
        const auto found = recovered.find(key);
        if (found == recovered.end() || found->second != value) ++verdict.lost_keys;
    }
    for (const auto& [key, value] : recovered) {
        const auto ever = written.values.find(key);
        if (ever == written.values.end() || ever->second.count(value) == 0) {
            verdict.outcome = Outcome::kUnreported;
            verdict.detail = "key " + key + " holds a value never written";
            return verdict;
        }
    }
    const bool reported = recovery.log.truncated || !recovery.log.dropped.empty();
    if (recovered == written.state) {
        verdict.outcome = Outcome::kIntact;
    } else if (reported) {
        verdict.outcome = Outcome::kLossReported;
    } else {
        verdict.outcome = Outcome::kUnreported;
        verdict.detail = std::to_string(verdict.lost_keys) + " acknowledged keys differ, and the report is clean";
        return verdict;
    }

    // What recovery left must take a new write and reopen to it.
    if (Status put = store->put("sweep-probe", "after recovery"); !put) {
        verdict.outcome = Outcome::kUnstable;
        verdict.detail = "a put after recovery failed: " + put.to_string();
        return verdict;
    }
    store.reset();
    const RecoveryMode again = mode == RecoveryMode::kSkipBadRecords ? mode : RecoveryMode::kTolerateTornTail;
    const Status reopened = SweepStore::open(dir, store_options(again), store, &recovery);
    State expected = recovered;
    expected["sweep-probe"] = "after recovery";
    if (!reopened || contents(*store) != expected) {
        verdict.outcome = Outcome::kUnstable;
        verdict.detail = "the reopen after recovery " +
                         (reopened ? std::string("gave another state") : "failed: " + reopened.to_string());
    }
    return verdict;
}

// Judges a case in a child process, so that a crash or a hang is seen and
// counted rather than ending the sweep.
Verdict run_case(const std::string& dir, RecoveryMode mode, const Written& written) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) die("pipe failed");
    const pid_t child = ::fork();
    if (child < 0) die("fork failed");
    if (child == 0) {
        ::close(pipe_fds[0]);
        ::alarm(kTimeLimitSeconds);
        const Verdict verdict = judge(dir, mode, written);
        const std::string message = std::to_string(static_cast<int>(verdict.outcome)) + " " +
                                    std::to_string(verdict.lost_keys) + " " + verdict.detail;
        for (std::size_t done = 0; done < message.size();) {
            const ssize_t wrote = ::write(pipe_fds[1], message.data() + done, message.size() - done);
            if (wrote <= 0) ::_exit(3);
            done += static_cast<std::size_t>(wrote);
        }
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    std::string message;
    char buffer[4096];
    for (ssize_t got; (got = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
        message.append(buffer, static_cast<std::size_t>(got));
    ::close(pipe_fds[0]);
    int status = 0;
    if (::waitpid(child, &status, 0) != child) die("waitpid failed");
    Verdict verdict;
    if (WIFSIGNALED(status)) {
        verdict.outcome = WTERMSIG(status) == SIGALRM ? Outcome::kHang : Outcome::kCrash;
        verdict.detail = std::string("the child died by ") + strsignal(WTERMSIG(status));
        return verdict;
    }
    if (WEXITSTATUS(status) != 0 || message.empty()) {
        verdict.detail = "the child exited with status " + std::to_string(WEXITSTATUS(status));
        return verdict;
    }
    char* rest = nullptr;
    verdict.outcome = static_cast<Outcome>(std::strtol(message.c_str(), &rest, 10));
    verdict.lost_keys = std::strtoull(rest, &rest, 10);
    verdict.detail = *rest == ' ' ? rest + 1 : rest;
    return verdict;
}

struct Arguments {
    long cases = kCasesShort;
    bool long_run = false;
    std::uint64_t seed = std::random_device{}();
    std::string dir;
    long only = -1;
    bool verbose = false;
};

Arguments parse_arguments(int argc, char** argv) {
    Arguments args;
    args.dir = torture::default_scratch_base();
    torture::CommandLine line(argc, argv);
    for (std::string arg; line.next(arg);) {
        if (arg == "--cases") args.cases = static_cast<long>(line.number());
        else if (arg == "--long") args.long_run = true;
        else if (arg == "--seed") args.seed = line.number();
        else if (arg == "--dir") args.dir = line.value();
        else if (arg == "--only") args.only = static_cast<long>(line.number());
        else if (arg == "--verbose") args.verbose = true;
        else line.unknown("corruption_sweep.cpp");
    }
    return args;
}

// The cases of a run: a long run has every boundary case and
// kRandomCasesLong random ones; a short one an even sample of the boundary
// cases and as many random ones.
std::vector<Case> plan(const Arguments& args, const std::vector<StoreFile>& files) {
    std::vector<Case> boundaries = boundary_cases(files);
    std::mt19937_64 rng(args.seed);
    std::vector<Case> cases;
    if (args.long_run) {
        cases = std::move(boundaries);
        for (int n = 0; n < kRandomCasesLong; ++n) cases.push_back(random_case(files, rng));
        return cases;
    }
    const std::size_t sampled = std::min<std::size_t>(boundaries.size(), static_cast<std::size_t>(args.cases) / 2);
    const std::size_t offset = rng() % std::max<std::size_t>(1, boundaries.size() / std::max<std::size_t>(1, sampled));
    for (std::size_t n = 0; n < sampled; ++n) cases.push_back(boundaries[(offset + n * boundaries.size() / sampled) % boundaries.size()]);
    while (cases.size() < static_cast<std::size_t>(args.cases)) cases.push_back(random_case(files, rng));
    return cases;
}

}  // namespace

int main(int argc, char** argv) {
    const Arguments args = parse_arguments(argc, argv);
    const std::string root = torture::make_scratch_dir(args.dir, "kvstore-sweep");
    const std::string pristine = root + "/pristine";
    const std::string work = root + "/case";

    const auto started = std::chrono::steady_clock::now();
    const Written written = build_pristine(pristine);
    const std::vector<StoreFile> files = read_store_files(pristine);
    const std::vector<Case> cases = plan(args, files);
    std::printf("corruption sweep: seed %llu, %zu cases over %zu files (%zu acknowledged keys)%s\n",
                static_cast<unsigned long long>(args.seed), cases.size(), files.size(), written.state.size(),
                args.long_run ? ", long run" : "");
    for (const StoreFile& file : files)
        std::printf("  %s: %zu bytes, %zu boundaries\n", file.name.c_str(), file.bytes.size(), file.boundaries.size());

    std::array<std::array<std::uint64_t, kOutcomes>, kModes.size()> by_mode{};
    std::array<std::array<std::uint64_t, kOutcomes>, kDamageNames.size()> by_damage{};
    std::uint64_t failures = 0, lost_reported = 0, run = 0;
    for (std::size_t n = 0; n < cases.size(); ++n) {
        if (args.only >= 0 && static_cast<long>(n) != args.only) continue;
        const Case& c = cases[n];
        fs::remove_all(work);
        fs::copy(pristine, work);
        apply_damage(c, files[c.file], work + "/" + files[c.file].name);
        const Verdict verdict = run_case(work, c.mode, written);
        ++run;
        const std::size_t mode_index =
            static_cast<std::size_t>(std::find(kModes.begin(), kModes.end(), c.mode) - kModes.begin());
        ++by_mode[mode_index][static_cast<std::size_t>(verdict.outcome)];
        ++by_damage[static_cast<std::size_t>(c.damage)][static_cast<std::size_t>(verdict.outcome)];
        if (verdict.outcome == Outcome::kLossReported) lost_reported += verdict.lost_keys;
        if (is_failure(verdict.outcome)) {
            ++failures;
            std::printf("FAILED case %zu (reproduce: --seed %llu --only %zu): %s: %s: %s\n", n,
                        static_cast<unsigned long long>(args.seed), n, c.describe(files).c_str(),
                        kOutcomeNames[static_cast<std::size_t>(verdict.outcome)], verdict.detail.c_str());
        } else if (args.verbose) {
            std::printf("case %zu: %s: %s %s\n", n, c.describe(files).c_str(),
                        kOutcomeNames[static_cast<std::size_t>(verdict.outcome)], verdict.detail.c_str());
        }
    }
    fs::remove_all(root);

    auto print_table = [&](const char* title, const auto& rows, const auto& row_name) {
        std::printf("\n%-22s", title);
        for (const char* name : kOutcomeNames) std::printf(" %13s", name);
        std::printf("\n");
        for (std::size_t r = 0; r < rows.size(); ++r) {
            std::printf("%-22s", row_name(r));
            for (std::uint64_t count : rows[r]) std::printf(" %13llu", static_cast<unsigned long long>(count));
            std::printf("\n");
        }
    };
    print_table("recovery mode", by_mode, [](std::size_t r) { return mode_name(kModes[r]); });
    print_table("damage", by_damage, [](std::size_t r) { return kDamageNames[r]; });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("\n%llu cases in %.1f s; %llu acknowledged keys lost in reported losses; %llu failures\n",
                static_cast<unsigned long long>(run), seconds, static_cast<unsigned long long>(lost_reported),
                static_cast<unsigned long long>(failures));
    return failures == 0 ? 0 : 1;
}
