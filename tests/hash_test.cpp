#include <kvstore/hash.hpp>

#include "catch.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace geometry {
struct Point {
    double x;
    double y;
};
// Found by argument-dependent lookup: the documented way to hash a user type.
std::uint64_t kvstore_hash(const Point& p) {
    return kvstore::hash_combine(kvstore::hash_bytes(&p.x, sizeof p.x), kvstore::hash_bytes(&p.y, sizeof p.y));
}
}  // namespace geometry

struct Ticket {
    std::uint32_t id;
    std::uint32_t shelf;
};

enum class Colour : std::uint8_t { red, green };

TEST_CASE("StringsHashTheSameWhateverTheirType", "[hash]") {
    const kvstore::Hash<std::string> hash;
    const std::string owned = "user:00000000042";
    const std::uint64_t expected = hash(owned);
    CHECK(hash(std::string_view(owned)) == expected);
    CHECK(hash("user:00000000042") == expected);
    const char* c_string = owned.c_str();
    CHECK(hash(c_string) == expected);
    CHECK(kvstore::Hash<std::string_view>{}(owned) == expected);
    CHECK(kvstore::Hash<const char*>{}(c_string) == expected);
    CHECK(expected == kvstore::hash_bytes(owned.data(), owned.size()));
}

TEST_CASE("StringHashSeparatesNearbyKeys", "[hash]") {
    const kvstore::Hash<std::string> hash;
    CHECK(hash("") != hash(std::string(1, '\0')));
    CHECK(hash("user:1") != hash("user:2"));
    CHECK(hash("ab") != hash("ba"));
}

TEST_CASE("IntegralEnumAndPaddingFreeTypesHashByBytes", "[hash]") {
    CHECK(kvstore::Hash<int>{}(7) == kvstore::hash_bytes(std::array<int, 1>{7}.data(), sizeof(int)));
    CHECK(kvstore::Hash<int>{}(7) != kvstore::Hash<int>{}(8));
    CHECK(kvstore::Hash<std::uint64_t>{}(1) != kvstore::Hash<std::uint64_t>{}(1ull << 63));
    CHECK(kvstore::Hash<Colour>{}(Colour::red) != kvstore::Hash<Colour>{}(Colour::green));
    const Ticket a{1, 2};
    const Ticket b{2, 1};
    CHECK(kvstore::Hash<Ticket>{}(a) != kvstore::Hash<Ticket>{}(b));
    CHECK(kvstore::Hash<Ticket>{}(a) == kvstore::Hash<Ticket>{}(Ticket{1, 2}));
}

TEST_CASE("ByteBuffersHashTheirContents", "[hash]") {
    const std::vector<std::byte> bytes{std::byte{1}, std::byte{2}, std::byte{3}};
    const std::vector<unsigned char> uchars{1, 2, 3};
    const std::uint64_t expected = kvstore::Hash<std::vector<std::byte>>{}(bytes);
    CHECK(kvstore::Hash<std::vector<unsigned char>>{}(uchars) == expected);
    CHECK(kvstore::Hash<std::vector<unsigned char>>{}({1, 2, 4}) != expected);
    CHECK(kvstore::Hash<std::vector<std::byte>>{}({}) == kvstore::hash_bytes(nullptr, 0));
}

TEST_CASE("UserTypesHashThroughAnAdlHook", "[hash]") {
    const kvstore::Hash<geometry::Point> hash;
    CHECK(hash({1.0, 2.0}) == hash({1.0, 2.0}));
    CHECK(hash({1.0, 2.0}) != hash({2.0, 1.0}));
    // A user's hook is not assumed to avalanche, so the map mixes it.
    CHECK_FALSE(std::is_same_v<kvstore::Hash<geometry::Point>::is_avalanching, void>);
    CHECK(std::is_same_v<kvstore::Hash<std::string>::is_avalanching, void>);
}

TEST_CASE("HashCombineDependsOnOrder", "[hash]") {
    CHECK(kvstore::hash_combine(kvstore::hash_combine(0, 1), 2) !=
          kvstore::hash_combine(kvstore::hash_combine(0, 2), 1));
    CHECK(kvstore::hash_bytes("abc", 3, 1) != kvstore::hash_bytes("abc", 3, 2));
}
