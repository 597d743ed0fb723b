// The smallest embedding of kvstore: open a Store in a directory, write,
// read, close, and open it again to find the writes still there.
//
//   kvstore-example-embed [DIR]   (default: a new directory under /tmp, removed at the end)
#include "example_support.hpp"

#include <kvstore/kvstore.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

// The default durability, GroupCommitWAL, returns from a write only once it
// is on disk, and lets concurrent writers share that sync.
using Store = kvstore::Store<std::string, std::string>;

int main(int argc, char** argv) {
    const example::StoreDir dir(argc, argv, "embed");
    using example::ok;

    {
        std::unique_ptr<Store> store;
        // Opening creates the directory if needed and takes its LOCK: a
        // second Store on the same directory, in any process, gets kBusy.
        if (!ok(Store::open(dir.path(), kvstore::StoreOptions{}, store), "open")) return 1;
        if (!ok(store->put("greeting", "hello, world"), "put") || !ok(store->put("visits", "1"), "put") ||
            !ok(store->put("draft", "not for keeps"), "put") || !ok(store->erase("draft"), "erase"))
            return 1;
        std::printf("before closing: greeting = %s\n", store->get("greeting").value_or("(none)").c_str());
        // The destructor would close too, but it has nowhere to report an
        // error; close() does.
        if (!ok(store->close(), "close")) return 1;
    }

    std::unique_ptr<Store> store;
    kvstore::StoreRecovery recovery;
    if (!ok(Store::open(dir.path(), kvstore::StoreOptions{}, store, &recovery), "reopen")) return 1;
    std::printf("reopened %s: %llu log records replayed\n", dir.path().c_str(),
                static_cast<unsigned long long>(recovery.log.records));
    // The map hands out views of its packed keys and values: no copies.
    store->for_each([](std::string_view key, std::string_view value) {
        std::printf("  %.*s = %.*s\n", static_cast<int>(key.size()), key.data(), static_cast<int>(value.size()),
                    value.data());
    });

    bool holds = example::expect(store->get("greeting") == std::optional<std::string>("hello, world"),
                                 "the put before closing is there after reopening");
    holds &= example::expect(!store->contains("draft"), "the erase is too");
    return holds ? 0 : 1;
}
