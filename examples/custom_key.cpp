// A key type of your own: a tenant id and a name, stored in a Store, hashed
// by a hasher written next to it and turned into bytes by a codec, so that
// it survives a checkpoint and a reopen.
//
//   kvstore-example-custom-key [DIR]   (default: a new directory under /tmp, removed at the end)
#include "example_support.hpp"

#include <kvstore/kvstore.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace app {

struct TenantKey {
    std::uint32_t tenant = 0;
    std::string name;

    bool operator==(const TenantKey& other) const { return tenant == other.tenant && name == other.name; }
};

// kvstore::Hash<TenantKey> finds this by argument-dependent lookup. The
// struct cannot be hashed by its bytes (a std::string holds a pointer), so
// the fields are hashed and combined.
inline std::uint64_t kvstore_hash(const TenantKey& key) {
    return kvstore::hash_combine(key.tenant, kvstore::hash_bytes(key.name.data(), key.name.size()));
}

// Trivially copyable and without padding, so the built-in codec stores its
// bytes as they are and needs nothing from us.
struct Quota {
    std::uint64_t used_bytes = 0;
    std::uint64_t limit_bytes = 0;
};

}  // namespace app

// How a TenantKey becomes the bytes of log records and snapshots: the tenant
// as 4 little-endian bytes, then the name. A fixed byte order, unlike the
// built-in codec of trivially copyable types, lets the files move between
// machines.
namespace kvstore {

template <>
struct Codec<app::TenantKey> {
    static std::size_t size(const app::TenantKey& key) { return 4 + key.name.size(); }
    static char* encode(const app::TenantKey& key, char* out) {
        for (int i = 0; i < 4; ++i) *out++ = static_cast<char>(key.tenant >> (8 * i));
        return std::copy(key.name.begin(), key.name.end(), out);
    }
    // A false return makes Store::open fail with the record's LSN rather than
    // load a key that is not one.
    static bool decode(std::string_view bytes, app::TenantKey& out) {
        if (bytes.size() < 4) return false;
        out.tenant = 0;
        for (int i = 0; i < 4; ++i) out.tenant |= std::uint32_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
        out.name.assign(bytes.substr(4));
        return true;
    }
};

}  // namespace kvstore

namespace {

using Quotas = kvstore::Store<app::TenantKey, app::Quota, kvstore::SyncWAL>;

std::map<std::uint32_t, std::uint64_t> usage_by_tenant(const Quotas& quotas) {
    std::map<std::uint32_t, std::uint64_t> usage;
    quotas.for_each([&](const app::TenantKey& key, const app::Quota& quota) { usage[key.tenant] += quota.used_bytes; });
    return usage;
}

}  // namespace

int main(int argc, char** argv) {
    const example::StoreDir dir(argc, argv, "custom-key");
    using example::expect;
    using example::ok;

    std::unique_ptr<Quotas> quotas;
    if (!ok(Quotas::open(dir.path(), kvstore::StoreOptions{}, quotas), "open")) return 1;
    // The same name in two tenants: two keys.
    if (!ok(quotas->put(app::TenantKey{1, "alice"}, app::Quota{100, 1000}), "put") ||
        !ok(quotas->put(app::TenantKey{2, "alice"}, app::Quota{5, 50}), "put") ||
        !ok(quotas->put(app::TenantKey{1, "bob"}, app::Quota{300, 1000}), "put"))
        return 1;
    // The snapshot holds these three through the codec; what follows goes to
    // the log only, so the reopen below reads keys from both.
    if (!ok(quotas->checkpoint(), "checkpoint")) return 1;
    bool found = false;
    if (!ok(quotas->update(
                app::TenantKey{1, "alice"}, [](app::Quota& quota) { quota.used_bytes += 250; }, found),
            "update"))
        return 1;
    if (!ok(quotas->erase(app::TenantKey{1, "bob"}), "erase")) return 1;
    if (!ok(quotas->close(), "close")) return 1;

    if (!ok(Quotas::open(dir.path(), kvstore::StoreOptions{}, quotas), "reopen")) return 1;
    for (const auto& [tenant, used] : usage_by_tenant(*quotas))
        std::printf("tenant %u uses %llu bytes\n", tenant, static_cast<unsigned long long>(used));

    const std::optional<app::Quota> alice1 = quotas->get(app::TenantKey{1, "alice"});
    const std::optional<app::Quota> alice2 = quotas->get(app::TenantKey{2, "alice"});
    bool holds = expect(alice1 && alice1->used_bytes == 350, "tenant 1's alice: the update after the checkpoint");
    holds &= expect(alice2 && alice2->used_bytes == 5, "tenant 2's alice is another key, untouched");
    holds &= expect(!quotas->contains(app::TenantKey{1, "bob"}), "bob's erase survived the reopen");
    return holds ? 0 : 1;
}
