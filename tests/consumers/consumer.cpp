// What every consumer project builds: a Store that takes a put and gives it
// back after a reopen, through whichever way the project found kvstore.
#include <kvstore/kvstore.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

int main() {
    char dir_template[] = "/tmp/kvstore-consumer-XXXXXX";
    const char* dir = ::mkdtemp(dir_template);
    if (dir == nullptr) return 2;
    const std::string path = std::string(dir) + "/store";
    using StringStore = kvstore::Store<std::string, std::string, kvstore::SyncWAL>;
    std::unique_ptr<StringStore> store;
    if (kvstore::Status status = StringStore::open(path, {}, store); !status) {
        std::fprintf(stderr, "%s\n", status.to_string().c_str());
        return 1;
    }
    if (!store->put("greeting", "hello")) return 1;
    store.reset();
    if (!StringStore::open(path, {}, store)) return 1;
    const bool found = store->get("greeting") == "hello";
    store.reset();
    const int removed = std::system(("rm -rf '" + std::string(dir) + "'").c_str());
    std::printf("kvstore %d.%d.%d: %s\n", KVSTORE_VERSION_MAJOR, KVSTORE_VERSION_MINOR, KVSTORE_VERSION_PATCH,
                found ? "put and get after a reopen work" : "the put was lost");
    return found && removed == 0 ? 0 : 1;
}
