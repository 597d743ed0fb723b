#include <kvstore/kvstore.hpp>

#include <string>

int main() {
    kvstore::ConcurrentMap<std::string, std::string> map;
    map.insert("key", "value");
    return map.get("key") == "value" ? 0 : 1;
}
