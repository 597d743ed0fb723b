// kvstore-server: a kvstore Store served over TCP, in RESP2 (redis-cli,
// redis-benchmark) and in a plain text protocol, on one port.
//
//   kvstore-server [--config FILE] [--port 7379] [--dir kvstore-data] [--durability group|relaxed|none] ...
//
// SIGINT or SIGTERM stop it; what it acknowledged is durable when it exits.
#include "config.hpp"
#include "databases.hpp"
#include "server.hpp"

#include <kvstore/store.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

using kvstore::server::ConfigReader;
using kvstore::server::DurabilityMode;
using kvstore::server::ServerConfig;

const char* const kUsage =
    "usage: kvstore-server [--config FILE] [--NAME VALUE | --NAME=VALUE]...\n"
    "Serves a kvstore Store over RESP2 (redis-cli, redis-benchmark) and a plain text protocol.\n"
    "Settings (also in the config file as 'NAME VALUE' lines; sizes take k, m or g):\n"
    "  port (7379; 0 picks a free one)  bind (127.0.0.1)  dir (kvstore-data)\n"
    "  durability: group (answer writes once synced; default), relaxed (sync every\n"
    "              flush_interval_ms, default 100), none (only SAVE/BGSAVE persist)\n"
    "  max_connections (10000)  max_key_size (64k)  max_value_size (64m)  num_shards\n"
    "  max_shard_memory (4g; records up to 1 KiB in one shard; writes past it answer OOM)\n"
    "  wal_buffer_size (16m)  checkpoint_bytes (64m)  checkpoint_growth (100, percent)\n"
    "  requirepass  threads (one per core)  databases (16; database n > 0 in dir/db<n>)\n"
    "  max_query_buffer (256m)  max_bulk_length (64m)  max_arguments (1048576)\n"
    "  max_reply_size (256m)\n";

kvstore::StoreOptions store_options(const ServerConfig& config) {
    kvstore::StoreOptions options;
    if (config.num_shards > 0) options.map.shards = config.num_shards;
    options.map.max_pooled_bytes_per_shard = config.max_shard_memory;
    options.max_key_size = config.max_key_size;
    options.max_value_size = config.max_value_size;
    options.log.buffer_bytes = config.wal_buffer_size;
    options.checkpoint_bytes = config.checkpoint_bytes;
    options.checkpoint_growth = config.checkpoint_growth;
    if (config.durability == DurabilityMode::kRelaxed)
        options.log.flush_interval = std::chrono::milliseconds(config.flush_interval_ms);
    return options;
}

template <class StoreType>
int serve(const ServerConfig& config) {
    kvstore::server::Databases<StoreType> databases(config.dir, store_options(config), config.databases);
    std::vector<std::pair<std::size_t, kvstore::StoreRecovery>> opened;
    std::size_t failed = 0;
    if (kvstore::Status status = databases.open_existing(opened, failed); !status) {
        std::cerr << "kvstore-server: cannot open the store: " << status.to_string() << "\n(kvstore-inspect "
                  << databases.directory(failed) << " shows what is damaged)\n";
        return 1;
    }
    for (const auto& [db, recovery] : opened) {
        std::cerr << "kvstore-server: opened " << databases.directory(db) << ": " << databases.opened(db)->size()
                  << " keys (" << recovery.snapshot_entries << " from snapshot, " << recovery.log.records
                  << " log records replayed in " << recovery.log.seconds << " s"
                  << (recovery.log.truncated ? ", a torn tail cut off" : "") << ")\n";
    }
    kvstore::server::Server<StoreType> server(databases, config);
    std::string error;
    if (!server.listen(error)) {
        std::cerr << "kvstore-server: " << error << '\n';
        return 1;
    }
    std::cerr << "kvstore-server: durability " << kvstore::server::durability_name(config.durability) << ", ready on "
              << config.bind << ':' << server.port() << std::endl;
    server.run();
    std::cerr << "kvstore-server: shutting down\n";
    if (kvstore::Status status = databases.close(); !status) {
        std::cerr << "kvstore-server: closing the store failed: " << status.to_string() << '\n';
        return 1;
    }
    std::cerr << "kvstore-server: everything acknowledged is durable; bye\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::cout << kUsage;
            return 0;
        }
    }
    ServerConfig config;
    std::string error;
    if (!ConfigReader(config).read_arguments(argc, argv, error)) {
        std::cerr << "kvstore-server: " << error << '\n' << kUsage;
        return 2;
    }
    using kvstore::GroupCommitWAL;
    using kvstore::None;
    using kvstore::Store;
    if (config.durability == DurabilityMode::kNone) return serve<Store<std::string, std::string, None>>(config);
    return serve<Store<std::string, std::string, GroupCommitWAL>>(config);
}
