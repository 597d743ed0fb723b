// A tour of kvstore::Store: a child process writes user records from two
// threads with GroupCommitWAL and kills itself with SIGKILL in mid-run; the
// program then reopens the store, shows what recovery found, and checks that
// every write the child had acknowledged survived.
//
//   kvstore-demo [DIR]     (default: a new directory under /tmp)
#include <kvstore/kvstore.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using UserStore = kvstore::Store<std::string, std::string, kvstore::GroupCommitWAL>;

std::string record_for(const std::string& key) { return "{\"user\":\"" + key + "\",\"plan\":\"free\"}"; }

// The child: writes until it kills itself, reporting each acknowledged key
// through `report_fd`.
[[noreturn]] void write_then_die(const std::string& dir, int report_fd) {
    std::unique_ptr<UserStore> store;
    const kvstore::Status opened = UserStore::open(dir, kvstore::StoreOptions{}, store);
    if (!opened) {
        std::fprintf(stderr, "child: %s\n", opened.to_string().c_str());
        ::_exit(2);
    }
    std::vector<std::thread> writers;
    for (int t = 0; t < 2; ++t) {
        writers.emplace_back([&, t] {
            for (int i = 0;; ++i) {
                const std::string key = "user:" + std::to_string(t) + "-" + std::to_string(i);
                if (!store->put(key, record_for(key))) ::_exit(3);
                const std::string line = key + "\n";
                if (::write(report_fd, line.data(), line.size()) < 0) ::_exit(4);
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::raise(SIGKILL);  // no destructor, no flush: a crash
    ::_exit(5);
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir;
    if (argc > 1) {
        dir = argv[1];
    } else {
        char pattern[] = "/tmp/kvstore-demo-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) return 1;
        dir = std::string(pattern) + "/users";
    }

    int report[2];
    if (::pipe(report) != 0) return 1;
    const pid_t child = ::fork();
    if (child < 0) return 1;
    if (child == 0) {
        ::close(report[0]);
        write_then_die(dir, report[1]);
    }
    ::close(report[1]);
    std::set<std::string> acknowledged;
    std::string pending;
    char buffer[4096];
    for (ssize_t got; (got = ::read(report[0], buffer, sizeof buffer)) > 0;) {
        pending.append(buffer, static_cast<std::size_t>(got));
        for (std::size_t end; (end = pending.find('\n')) != std::string::npos; pending.erase(0, end + 1))
            acknowledged.insert(pending.substr(0, end));
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    std::printf("writer process:    killed by signal %d after %zu acknowledged writes\n",
                WIFSIGNALED(status) ? WTERMSIG(status) : 0, acknowledged.size());

    std::unique_ptr<UserStore> store;
    kvstore::StoreRecovery recovery;
    const kvstore::Status opened = UserStore::open(dir, kvstore::StoreOptions{}, store, &recovery);
    if (!opened) {
        std::printf("reopen failed: %s\n", opened.to_string().c_str());
        return 1;
    }
    std::printf("reopened %s: replayed %llu log records (%.1f MB) in %.3f s%s\n", dir.c_str(),
                static_cast<unsigned long long>(recovery.log.records), recovery.log.bytes / 1e6, recovery.log.seconds,
                recovery.log.truncated ? ", cut a torn tail" : "");

    std::size_t missing = 0;
    for (const std::string& key : acknowledged) {
        const std::optional<std::string> value = store->get(key);
        if (!value || *value != record_for(key)) ++missing;
    }
    std::printf("acknowledged writes found: %zu of %zu; the store holds %zu (writes in flight may be there too)\n",
                acknowledged.size() - missing, acknowledged.size(), store->size());
    if (const auto sample = store->get("user:0-0")) std::printf("user:0-0 -> %s\n", sample->c_str());

    bool swapped = false;
    if (!store->compare_and_set("user:0-0", record_for("user:0-0"), "{\"user\":\"user:0-0\",\"plan\":\"pro\"}",
                                swapped))
        return 1;
    kvstore::WriteBatch<std::string, std::string> batch;
    batch.put("user:new", record_for("user:new"));
    batch.erase("user:1-0");
    if (!store->write(batch) || !store->checkpoint()) return 1;

    const kvstore::StoreStats stats = store->stats();
    std::printf("after a compare-and-set (%s), a batch and a checkpoint: %zu items, %zu shards, %.1f MB, "
                "%llu syncs since reopening\n",
                swapped ? "swapped" : "not swapped", stats.items, stats.shards, stats.memory_bytes / 1e6,
                static_cast<unsigned long long>(stats.log.syncs));
    return missing == 0 && !acknowledged.empty() ? 0 : 1;
}
