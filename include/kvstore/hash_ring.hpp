// kvstore::HashRing: consistent hashing with virtual nodes and weights that
// places every key on the node nutcracker (twemproxy) with
// `distribution: ketama` places it on, so that an application can route keys
// itself, or talk to the backends behind a proxy directly, and agree with
// the proxy.
#pragma once

#include <kvstore/detail/md5.hpp>
#include <kvstore/status.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvstore {

/// How a key is hashed onto the ring: nutcracker's `hash:` setting of the
/// same name (fnv1a_64 is its default).
enum class RingKeyHash { kFnv1a64, kFnv1_64, kFnv1a32, kFnv1_32, kMd5 };

/// One server on the ring.
struct RingNode {
    /// What the node's points are hashed from: nutcracker's server name, the
    /// optional last word of a `servers:` line, else "host:port" (just
    /// "host" when the port is 11211); ketama_node_name() builds the latter.
    std::string name;
    /// The node's share of the ring, relative to the others'; at least 1.
    std::uint32_t weight = 1;
};

/// The name nutcracker gives a server listed as "host:port:weight" without
/// a name of its own.
inline std::string ketama_node_name(const std::string& host, unsigned port) {
    // libmemcached left 11211 out of the hashed name; nutcracker keeps that.
    return port == 11211 ? host : host + ":" + std::to_string(port);
}

/// How a HashRing hashes keys; the defaults are nutcracker's.
struct HashRingOptions {
    /// The hash of a key's bytes (nutcracker's `hash:`).
    RingKeyHash key_hash = RingKeyHash::kFnv1a64;
    /// Empty, or two characters such as "{}": a key with text between them
    /// is placed by that text alone, so that "{user:7}:name" and
    /// "{user:7}:mail" share a node (nutcracker's `hash_tag:`).
    std::string hash_tag;
};

/// A ketama ring: each node gets points on a 32-bit circle in proportion to
/// its weight, and a key belongs to the first point at or after its hash,
/// so adding or removing a node moves only the keys of its arcs.
class HashRing {
public:
    /// Builds the ring of `nodes` into `ring`. Fails with kInvalidArgument
    /// (and leaves `ring` as it was) for no nodes, an empty or repeated
    /// name, a zero weight, weights summing past 2^32 - 1, or a hash tag
    /// that is not two characters.
    static Status build(std::vector<RingNode> nodes, HashRingOptions options, std::optional<HashRing>& ring) {
        if (nodes.empty()) return Status::invalid_argument("hash ring: no nodes given");
        if (!options.hash_tag.empty() && options.hash_tag.size() != 2)
            return Status::invalid_argument("hash ring: hash tag \"" + options.hash_tag +
                                            "\" is not two characters (an opening and a closing one)");
        std::uint64_t total_weight = 0;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const RingNode& node = nodes[i];
            if (node.name.empty())
                return Status::invalid_argument("hash ring: node " + std::to_string(i) + " has an empty name");
            if (node.weight == 0)
                return Status::invalid_argument("hash ring: node \"" + node.name + "\" has weight 0");
            total_weight += node.weight;
            for (std::size_t j = 0; j < i; ++j)
                if (nodes[j].name == node.name)
                    return Status::invalid_argument("hash ring: nodes " + std::to_string(j) + " and " +
                                                    std::to_string(i) + " are both named \"" + node.name + "\"");
        }
        if (total_weight > UINT32_MAX)
            return Status::invalid_argument("hash ring: the weights sum to " + std::to_string(total_weight) +
                                            ", past 2^32 - 1");
        ring.emplace(HashRing(std::move(nodes), std::move(options), static_cast<std::uint32_t>(total_weight)));
        return Status::ok();
    }

    /// The position in nodes() of the node that holds `key`.
    std::size_t node_index(std::string_view key) const noexcept {
        if (nodes_.size() == 1) return 0;
        const std::uint32_t hash = key_hash(tagged_part(key));
        auto point = std::lower_bound(points_.begin(), points_.end(), hash,
                                      [](const Point& p, std::uint32_t value) { return p.value < value; });
        if (point == points_.end()) point = points_.begin();
        return point->node;
    }

    /// The node that holds `key`.
    const RingNode& node_for(std::string_view key) const noexcept { return nodes_[node_index(key)]; }

    /// The nodes, in the order build() was given them.
    const std::vector<RingNode>& nodes() const noexcept { return nodes_; }

    /// How many points (virtual nodes) the ring holds: 160 per node at equal
    /// weights, in proportion to weight otherwise.
    std::size_t points() const noexcept { return points_.size(); }

    /// The ring position of `key` (after the hash tag is applied).
    std::uint32_t key_hash(std::string_view key) const noexcept {
        if (key.empty()) return 0;
        switch (options_.key_hash) {
            case RingKeyHash::kFnv1a64: return fnv1a<std::uint32_t>(key, 0xcbf29ce484222325ULL, 0x100000001b3ULL);
            case RingKeyHash::kFnv1_64: return fnv1<std::uint64_t>(key, 0xcbf29ce484222325ULL, 0x100000001b3ULL);
            case RingKeyHash::kFnv1a32: return fnv1a<std::uint32_t>(key, 2166136261U, 16777619U);
            case RingKeyHash::kFnv1_32: return fnv1<std::uint32_t>(key, 2166136261U, 16777619U);
            case RingKeyHash::kMd5: return md5_word(key, 0);
        }
        return 0;
    }

private:
    // nutcracker's ketama: 160 points per node at equal weights, made 4 at a
    // time from the MD5 of "<name>-<i>".
    static constexpr std::uint32_t kPointsPerNode = 160;
    static constexpr std::uint32_t kPointsPerHash = 4;

    struct Point {
        std::uint32_t value;
        std::uint32_t node;
    };

    HashRing(std::vector<RingNode> nodes, HashRingOptions options, std::uint32_t total_weight)
        : nodes_(std::move(nodes)), options_(std::move(options)) {
        // nutcracker sorts its servers by name before placing points; with a
        // stable sort of the points (glibc's qsort is a merge sort), that
        // order decides which node wins a point two nodes hash to.
        std::vector<std::uint32_t> by_name(nodes_.size());
        for (std::uint32_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
        std::sort(by_name.begin(), by_name.end(),
                  [&](std::uint32_t a, std::uint32_t b) { return nodes_[a].name < nodes_[b].name; });
        const float node_count = static_cast<float>(nodes_.size());
        for (const std::uint32_t node : by_name) {
            // The same float arithmetic as nutcracker's, so that uneven
            // weights round to the same number of points.
            const float share = static_cast<float>(nodes_[node].weight) / static_cast<float>(total_weight);
            const std::uint32_t node_points = static_cast<std::uint32_t>(
                std::floor(static_cast<float>(share * kPointsPerNode / kPointsPerHash * node_count + 0.0000000001)) *
                kPointsPerHash);
            for (std::uint32_t hash = 0; hash < node_points / kPointsPerHash; ++hash) {
                const std::string point_name = nodes_[node].name + "-" + std::to_string(hash);
                const detail::Md5::Digest digest = detail::Md5::of(point_name.data(), point_name.size());
                for (std::uint32_t word = 0; word < kPointsPerHash; ++word)
                    points_.push_back(Point{little_endian_word(digest, word), node});
            }
        }
        std::stable_sort(points_.begin(), points_.end(),
                         [](const Point& a, const Point& b) { return a.value < b.value; });
    }

    std::string_view tagged_part(std::string_view key) const noexcept {
        if (options_.hash_tag.empty()) return key;
        const std::size_t open = key.find(options_.hash_tag[0]);
        if (open == std::string_view::npos) return key;
        const std::size_t close = key.find(options_.hash_tag[1], open + 1);
        if (close == std::string_view::npos || close == open + 1) return key;
        return key.substr(open + 1, close - open - 1);
    }

    static std::uint32_t little_endian_word(const detail::Md5::Digest& digest, std::uint32_t word) noexcept {
        const std::size_t at = word * 4;
        return std::uint32_t{digest[at]} | std::uint32_t{digest[at + 1]} << 8 | std::uint32_t{digest[at + 2]} << 16 |
               std::uint32_t{digest[at + 3]} << 24;
    }

    static std::uint32_t md5_word(std::string_view key, std::uint32_t word) noexcept {
        return little_endian_word(detail::Md5::of(key.data(), key.size()), word);
    }

    // nutcracker converts each byte as a plain char, sign-extended where
    // char is signed (x86), and so does this. Its "fnv1a_64" works in
    // 32 bits with the 64-bit constants truncated; its "fnv1_64" in 64.
    template <class Word>
    static std::uint32_t fnv1a(std::string_view key, std::uint64_t basis, std::uint64_t prime) noexcept {
        Word hash = static_cast<Word>(basis);
        for (const char c : key) {
            hash ^= static_cast<Word>(c);
            hash *= static_cast<Word>(prime);
        }
        return static_cast<std::uint32_t>(hash);
    }
    template <class Word>
    static std::uint32_t fnv1(std::string_view key, std::uint64_t basis, std::uint64_t prime) noexcept {
        Word hash = static_cast<Word>(basis);
        for (const char c : key) {
            hash *= static_cast<Word>(prime);
            hash ^= static_cast<Word>(c);
        }
        return static_cast<std::uint32_t>(hash);
    }

    std::vector<RingNode> nodes_;
    HashRingOptions options_;
    std::vector<Point> points_;
};

}  // namespace kvstore
