// A tour of kvstore::ConcurrentMap: two threads share a map of counters and
// a map of user records, then the program reports what they built.
#include <kvstore/kvstore.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

int main() {
    kvstore::ConcurrentMap<std::string, std::string> users;
    kvstore::ConcurrentMap<std::string, long> page_views;

    constexpr int kThreads = 2;
    constexpr int kUsersPerThread = 50'000;
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
        workers.emplace_back([&, t] {
            for (int i = 0; i < kUsersPerThread; ++i) {
                const std::string key = "user:" + std::to_string(t * kUsersPerThread + i);
                users.insert_or_assign(
                    key, "{\"name\":\"user " + std::to_string(i) + "\",\"thread\":" + std::to_string(t) + "}");
                // Both threads count views of the same ten pages.
                page_views.upsert(
                    "/page/" + std::to_string(i % 10), [](long& views) { ++views; }, [] { return 1L; });
            }
        });
    }
    for (std::thread& worker : workers) worker.join();

    std::printf("users stored:      %zu\n", users.size());
    std::string record;
    if (users.find(std::string_view("user:42"), record)) std::printf("user:42          -> %s\n", record.c_str());

    long total_views = 0;
    page_views.for_each([&](const std::string& page, long views) {
        std::printf("%-17s %ld views\n", page.c_str(), views);
        total_views += views;
    });
    std::printf("views counted:     %ld (expected %d)\n", total_views, kThreads * kUsersPerThread);

    users.erase_if("user:42",
                   [](std::string_view value) { return value.find("\"thread\":0") != std::string_view::npos; });
    std::printf("user:42 present:   %s\n", users.contains("user:42") ? "yes" : "no");

    const kvstore::ShardStats stats = users.stats();
    std::printf("shards %zu, capacity %zu, load factor %.2f, ~%zu bytes per entry\n", users.shard_count(),
                stats.capacity, stats.load_factor, stats.memory_bytes / (stats.size ? stats.size : 1));
    return total_views == kThreads * kUsersPerThread ? 0 : 1;
}
