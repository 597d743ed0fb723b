// A Store over the in-memory fault-injecting file layer, reopened at will.
#pragma once

#include "catch.hpp"
#include "fault_file_system.hpp"

#include <kvstore/store.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore::test {

inline const std::string kDir = "/store";

template <class Durability, class K = std::string, class V = std::string>
struct StoreFixture {
    using StoreType = Store<K, V, Durability>;
    FaultFileSystem fs;
    StoreOptions options;
    StoreRecovery recovery;
    std::unique_ptr<StoreType> store;

    StoreFixture() {
        options.log.file_system = &fs;
        options.log.preallocate_bytes = 4096;  // keeps the in-memory files small
        options.map.shards = 4;
    }
    Status open() { return StoreType::open(kDir, options, store, &recovery); }
    Status reopen() {
        store.reset();
        return open();
    }
    std::map<K, V> contents() const {
        std::map<K, V> all;
        store->for_each([&](const auto& key, const auto& value) { all.emplace(K(key), V(value)); });
        return all;
    }
    std::size_t files_named(const std::string& prefix) {
        std::vector<std::string> names;
        REQUIRE(fs.list_dir(kDir, names));
        return static_cast<std::size_t>(std::count_if(names.begin(), names.end(), [&](const std::string& name) {
            return name.compare(0, prefix.size(), prefix) == 0;
        }));
    }
};

/// The bytes of a snapshot `store` exports; `continue_from` gets the LSN
/// to read its log from.
template <class StoreType>
std::string exported(StoreType& store, Lsn& continue_from) {
    std::string bytes;
    REQUIRE(store.export_snapshot(
        [&](std::string_view chunk) {
            bytes.append(chunk);
            return Status::ok();
        },
        continue_from));
    return bytes;
}

}  // namespace kvstore::test
