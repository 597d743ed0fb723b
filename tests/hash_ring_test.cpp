// HashRing: the hashes nutcracker uses, the ketama ring's shape, and what
// consistent hashing promises when nodes come and go. That it places keys
// exactly where a running nutcracker does is checked against the proxy
// itself (tests/scale-out/nutcracker_test.py).
#include "catch.hpp"

#include <kvstore/detail/md5.hpp>
#include <kvstore/hash_ring.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

using namespace kvstore;

namespace {

std::string hex(const detail::Md5::Digest& digest) {
    std::string out;
    char byte[3];
    for (const std::uint8_t b : digest) {
        std::snprintf(byte, sizeof byte, "%02x", b);
        out += byte;
    }
    return out;
}

HashRing ring_of(std::vector<RingNode> nodes, HashRingOptions options = {}) {
    std::optional<HashRing> ring;
    const Status built = HashRing::build(std::move(nodes), std::move(options), ring);
    REQUIRE(built.is_ok());
    return std::move(*ring);
}

std::vector<RingNode> equal_nodes(int count) {
    std::vector<RingNode> nodes;
    for (int i = 0; i < count; ++i) nodes.push_back({ketama_node_name("127.0.0.1", 7000 + i), 1});
    return nodes;
}

std::string key(int i) { return "key:" + std::to_string(i); }

}  // namespace

TEST_CASE("MD5 gives RFC 1321's test-suite digests", "[ring]") {
    const std::pair<std::string, std::string> suite[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (const auto& [input, digest] : suite) CHECK(hex(detail::Md5::of(input.data(), input.size())) == digest);
    // Lengths around the 56-byte padding edge and the 64-byte block.
    const std::string sixty_four(64, 'x');
    CHECK(hex(detail::Md5::of(sixty_four.data(), 55)) == "04364420e25c512fd958a70738aa8f72");
    CHECK(hex(detail::Md5::of(sixty_four.data(), 56)) == "668a72d5ba17f08e62dabcafad6db14b");
    CHECK(hex(detail::Md5::of(sixty_four.data(), 64)) == "c1bb4f81d892b2d57947682aeb252456");
}

TEST_CASE("Key hashes are nutcracker's", "[ring]") {
    auto hash_of = [](RingKeyHash kind, const std::string& key) {
        HashRingOptions options;
        options.key_hash = kind;
        return ring_of(equal_nodes(2), options).key_hash(key);
    };
    // FNV-1a 32 of "a" and "foobar": the published test values.
    CHECK(hash_of(RingKeyHash::kFnv1a32, "a") == 0xe40c292cU);
    CHECK(hash_of(RingKeyHash::kFnv1a32, "foobar") == 0xbf9cf968U);
    CHECK(hash_of(RingKeyHash::kFnv1_32, "a") == 0x050c5d7eU);
    // FNV-1 64 of "a" is 0xaf63bd4c8601b7be; nutcracker keeps its low half.
    CHECK(hash_of(RingKeyHash::kFnv1_64, "a") == 0x8601b7beU);
    // nutcracker's "fnv1a_64" runs in 32 bits from the 64-bit constants'
    // low halves: basis 0x84222325, prime 0x000001b3.
    CHECK(hash_of(RingKeyHash::kFnv1a64, "a") == static_cast<std::uint32_t>((0x84222325U ^ 'a') * 0x1b3U));
    // MD5("a") = 0cc175b9...: its first word, little-endian.
    CHECK(hash_of(RingKeyHash::kMd5, "a") == 0xb975c10cU);
    CHECK(hash_of(RingKeyHash::kFnv1a64, "") == 0);
}

TEST_CASE("Equal nodes get 160 points each and a fair share of keys", "[ring]") {
    for (const int count : {2, 3, 5, 8}) {
        const HashRing ring = ring_of(equal_nodes(count));
        CHECK(ring.points() == static_cast<std::size_t>(160 * count));
        std::vector<int> held(count);
        constexpr int kKeys = 100'000;
        for (int i = 0; i < kKeys; ++i) ++held[ring.node_index(key(i))];
        for (int n = 0; n < count; ++n) {
            INFO("node " << n << " of " << count << " holds " << held[n]);
            CHECK(held[n] > kKeys / count * 6 / 10);
            CHECK(held[n] < kKeys / count * 14 / 10);
        }
    }
}

TEST_CASE("Weights share the ring out in proportion", "[ring]") {
    std::vector<RingNode> nodes = equal_nodes(3);
    nodes[0].weight = 1;
    nodes[1].weight = 2;
    nodes[2].weight = 3;
    const HashRing ring = ring_of(nodes);
    // 160 / 4 * 3 * share, rounded down to a multiple of 4: 80, 160, 240.
    CHECK(ring.points() == 480);
    std::vector<int> held(3);
    for (int i = 0; i < 60'000; ++i) ++held[ring.node_index(key(i))];
    CHECK(held[0] < held[1]);
    CHECK(held[1] < held[2]);
    CHECK(held[2] > 20'000);
}

TEST_CASE("Adding a node moves keys only onto it, removing one only off it", "[ring]") {
    const HashRing four = ring_of(equal_nodes(4));
    const HashRing five = ring_of(equal_nodes(5));
    const std::string added = five.nodes()[4].name;
    int moved = 0;
    constexpr int kKeys = 50'000;
    for (int i = 0; i < kKeys; ++i) {
        const std::string& before = four.node_for(key(i)).name;
        const std::string& after = five.node_for(key(i)).name;
        if (before == after) continue;
        ++moved;
        CHECK(after == added);
    }
    // About a fifth of the keys move, and every one to the new node.
    CHECK(moved > kKeys / 10);
    CHECK(moved < kKeys * 3 / 10);
}

TEST_CASE("The order nodes are given in does not change where a key goes", "[ring]") {
    std::vector<RingNode> nodes = equal_nodes(4);
    const HashRing forward = ring_of(nodes);
    std::reverse(nodes.begin(), nodes.end());
    const HashRing backward = ring_of(nodes);
    for (int i = 0; i < 10'000; ++i) CHECK(forward.node_for(key(i)).name == backward.node_for(key(i)).name);
}

TEST_CASE("A hash tag places keys by the text between its characters", "[ring]") {
    HashRingOptions options;
    options.hash_tag = "{}";
    const HashRing ring = ring_of(equal_nodes(5), options);
    const HashRing untagged = ring_of(equal_nodes(5));
    for (int i = 0; i < 1000; ++i) {
        const std::string tag = "user:" + std::to_string(i);
        CHECK(ring.node_index("{" + tag + "}:name") == ring.node_index("mail:{" + tag + "}"));
        CHECK(ring.node_index("{" + tag + "}:name") == untagged.node_index(tag));
    }
    // No tag, or an empty one: the whole key.
    CHECK(ring.key_hash("{}abc") == untagged.key_hash("{}abc"));
    CHECK(ring.key_hash("abc{") == untagged.key_hash("abc{"));
}

TEST_CASE("A single node holds every key", "[ring]") {
    const HashRing ring = ring_of({{"only", 1}});
    for (int i = 0; i < 100; ++i) CHECK(ring.node_index(key(i)) == 0);
    CHECK(ring.points() == 160);
}

TEST_CASE("Bad rings are refused with a reason and leave the output alone", "[ring]") {
    std::optional<HashRing> ring = ring_of({{"kept", 1}});
    auto refused = [&](std::vector<RingNode> nodes, HashRingOptions options, const std::string& says) {
        const Status built = HashRing::build(std::move(nodes), std::move(options), ring);
        CHECK(built.code() == StatusCode::kInvalidArgument);
        INFO(built.message());
        CHECK(built.message().find(says) != std::string::npos);
        REQUIRE(ring.has_value());
        CHECK(ring->nodes()[0].name == "kept");
    };
    refused({}, {}, "no nodes");
    refused({{"a", 1}, {"", 1}}, {}, "node 1 has an empty name");
    refused({{"a", 1}, {"b", 0}}, {}, "\"b\" has weight 0");
    refused({{"a", 1}, {"b", 1}, {"a", 2}}, {}, "nodes 0 and 2 are both named \"a\"");
    refused({{"a", 0xffffffffU}, {"b", 1}}, {}, "past 2^32 - 1");
    HashRingOptions bad_tag;
    bad_tag.hash_tag = "{";
    refused({{"a", 1}}, bad_tag, "hash tag \"{\" is not two characters");
}

TEST_CASE("ketama_node_name leaves out port 11211 as nutcracker does", "[ring]") {
    CHECK(ketama_node_name("10.0.0.1", 11211) == "10.0.0.1");
    CHECK(ketama_node_name("10.0.0.1", 6379) == "10.0.0.1:6379");
}
