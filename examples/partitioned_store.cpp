// One process, several Stores: each partition has its own directory, log and
// snapshots, a HashRing routes every key to one of them, and opening
// recovers all partitions at once, one thread each. The partitions share
// nothing, so writers to different partitions never meet on a lock or a
// sync, and a damaged partition is refused on its own.
//
//   kvstore-example-partitioned [DIR]   (default: a new directory under /tmp, removed at the end)
#include "example_support.hpp"

#include <kvstore/hash_ring.hpp>
#include <kvstore/kvstore.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Store = kvstore::Store<std::string, std::string>;
using kvstore::Status;

// Writes `path` whole or not at all: a crash leaves no half-written file.
Status write_durably(const std::string& path, const std::string& contents) {
    const std::string temporary = path + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return Status::io_error("open", temporary, errno);
    const bool written = ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
    const int write_error = errno;
    if (!written || ::fsync(fd) != 0) {
        const Status failed = Status::io_error(written ? "fsync" : "write", temporary, written ? errno : write_error);
        ::close(fd);
        return failed;
    }
    if (::close(fd) != 0) return Status::io_error("close", temporary, errno);
    if (::rename(temporary.c_str(), path.c_str()) != 0) return Status::io_error("rename", path, errno);
    const std::string dir = std::filesystem::path(path).parent_path().string();
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dir_fd < 0) return Status::io_error("open", dir, errno);
    const int synced = ::fsync(dir_fd);
    const int sync_error = errno;
    ::close(dir_fd);
    return synced == 0 ? Status::ok() : Status::io_error("fsync", dir, sync_error);
}

class PartitionedStore {
public:
    /// Opens (or creates) `partitions` Stores under `dir`, in parallel. The
    /// partition count is kept in `dir`/PARTITIONS: reopening with another
    /// count would route keys to partitions that do not hold them, so it is
    /// refused.
    static Status open(const std::string& dir, std::uint32_t partitions, std::unique_ptr<PartitionedStore>& out,
                       std::vector<kvstore::StoreRecovery>& recoveries) {
        if (partitions == 0) return Status::invalid_argument("a partitioned store needs at least one partition");
        std::error_code error;
        std::filesystem::create_directories(dir, error);
        if (error) return Status::io_error("mkdir", dir, error.value());
        const std::string count_file = dir + "/PARTITIONS";
        if (std::ifstream in(count_file); in) {
            std::uint32_t recorded = 0;
            if (!(in >> recorded) || recorded == 0)
                return Status::invalid_argument(count_file + ": not a partition count");
            if (recorded != partitions)
                return Status::invalid_argument(count_file + ": the store has " + std::to_string(recorded) +
                                                " partitions, not the " + std::to_string(partitions) + " asked for");
        } else if (Status recorded = write_durably(count_file, std::to_string(partitions) + "\n"); !recorded) {
            return recorded;
        }

        std::vector<kvstore::RingNode> nodes;
        for (std::uint32_t p = 0; p < partitions; ++p) nodes.push_back({"partition-" + std::to_string(p), 1});
        std::optional<kvstore::HashRing> ring;
        if (Status built = kvstore::HashRing::build(nodes, {}, ring); !built) return built;

        std::unique_ptr<PartitionedStore> store(new PartitionedStore(std::move(*ring)));
        store->partitions_.resize(partitions);
        recoveries.assign(partitions, {});
        std::vector<Status> opened(partitions);
        std::vector<std::thread> openers;
        for (std::uint32_t p = 0; p < partitions; ++p)
            openers.emplace_back([&, p] {
                opened[p] = Store::open(dir + "/" + nodes[p].name, kvstore::StoreOptions{}, store->partitions_[p],
                                        &recoveries[p]);
            });
        for (std::thread& opener : openers) opener.join();
        for (const Status& status : opened)
            if (!status) return status;
        out = std::move(store);
        return Status::ok();
    }

    Store& partition_for(const std::string& key) { return *partitions_[ring_.node_index(key)]; }
    Status put(const std::string& key, const std::string& value) { return partition_for(key).put(key, value); }
    std::optional<std::string> get(const std::string& key) { return partition_for(key).get(key); }
    Status erase(const std::string& key) { return partition_for(key).erase(key); }

    std::size_t partitions() const noexcept { return partitions_.size(); }
    Store& partition(std::size_t p) { return *partitions_[p]; }

    /// Checkpoints every partition, one thread each.
    Status checkpoint() {
        return for_each_partition([](Store& partition) { return partition.checkpoint(); });
    }
    Status close() {
        return for_each_partition([](Store& partition) { return partition.close(); });
    }

private:
    explicit PartitionedStore(kvstore::HashRing ring) : ring_(std::move(ring)) {}

    template <class Action>
    Status for_each_partition(Action action) {
        std::vector<Status> results(partitions_.size());
        std::vector<std::thread> threads;
        for (std::size_t p = 0; p < partitions_.size(); ++p)
            threads.emplace_back([&, p] { results[p] = action(*partitions_[p]); });
        for (std::thread& thread : threads) thread.join();
        for (const Status& status : results)
            if (!status) return status;
        return Status::ok();
    }

    kvstore::HashRing ring_;
    std::vector<std::unique_ptr<Store>> partitions_;
};

constexpr std::uint32_t kPartitions = 4;
constexpr int kWriters = 4;
constexpr int kKeysPerWriter = 5000;

std::string key_of(int writer, int i) { return "user:" + std::to_string(writer) + ":" + std::to_string(i); }

}  // namespace

int main(int argc, char** argv) {
    const example::StoreDir dir(argc, argv, "partitioned");
    using example::ok;
    std::vector<kvstore::StoreRecovery> recoveries;
    {
        std::unique_ptr<PartitionedStore> store;
        if (!ok(PartitionedStore::open(dir.path(), kPartitions, store, recoveries), "open")) return 1;
        // Writers each write their own keys; a key's partition, not its
        // writer, decides which log it goes to.
        std::vector<std::thread> writers;
        std::vector<Status> written(kWriters);
        for (int w = 0; w < kWriters; ++w)
            writers.emplace_back([&, w] {
                for (int i = 0; i < kKeysPerWriter && written[w].is_ok(); ++i) {
                    written[w] = store->put(key_of(w, i), std::to_string(i));
                    if (written[w] && i == kKeysPerWriter / 2) written[w] = store->checkpoint();
                }
            });
        for (std::thread& writer : writers) writer.join();
        for (const Status& status : written)
            if (!ok(status, "put")) return 1;
        if (!ok(store->erase(key_of(0, 0)), "erase") || !ok(store->close(), "close")) return 1;
    }

    std::unique_ptr<PartitionedStore> store;
    const auto started = std::chrono::steady_clock::now();
    if (!ok(PartitionedStore::open(dir.path(), kPartitions, store, recoveries), "reopen")) return 1;
    const double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    std::printf("reopened %u partitions in parallel in %.1f ms:\n", kPartitions, open_ms);
    std::size_t total = 0;
    bool every_partition_used = true;
    for (std::size_t p = 0; p < store->partitions(); ++p) {
        const std::size_t size = store->partition(p).size();
        std::printf("  partition-%zu: %zu keys, snapshot %s, %llu log records replayed\n", p, size,
                    recoveries[p].snapshot.empty() ? "(none)" : recoveries[p].snapshot.c_str(),
                    static_cast<unsigned long long>(recoveries[p].log.records));
        total += size;
        every_partition_used &= size > 0;
    }

    int missing = 0;
    for (int w = 0; w < kWriters; ++w)
        for (int i = (w == 0 ? 1 : 0); i < kKeysPerWriter; ++i)
            if (store->get(key_of(w, i)) != std::to_string(i)) ++missing;
    bool holds = example::expect(missing == 0, "every write is back after reopening, in its own partition");
    holds &= example::expect(!store->get(key_of(0, 0)), "so is the erase");
    holds &= example::expect(total == kWriters * kKeysPerWriter - 1, "the partitions hold each key once");
    holds &= example::expect(every_partition_used, "every partition holds a share of the keys");
    std::unique_ptr<PartitionedStore> other_count;
    std::vector<kvstore::StoreRecovery> unused;
    const Status refused = PartitionedStore::open(dir.path(), kPartitions + 1, other_count, unused);
    if (!refused) std::printf("  reopening with %u partitions: %s\n", kPartitions + 1, refused.to_string().c_str());
    holds &= example::expect(refused.code() == kvstore::StatusCode::kInvalidArgument && !other_count,
                             "reopening with another partition count is refused");
    return holds ? 0 : 1;
}
