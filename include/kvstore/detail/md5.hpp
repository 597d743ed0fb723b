// MD5 (RFC 1321), only because nutcracker's ketama places its points with it:
// never as a checksum or for anything that needs a secure hash.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace kvstore::detail {

class Md5 {
public:
    using Digest = std::array<std::uint8_t, 16>;

    static Digest of(const void* data, std::size_t size) noexcept {
        Md5 md5;
        md5.update(static_cast<const std::uint8_t*>(data), size);
        return md5.finish();
    }

private:
    void update(const std::uint8_t* data, std::size_t size) noexcept {
        total_bytes_ += size;
        while (size > 0) {
            const std::size_t take = std::min(size, sizeof block_ - buffered_);
            std::memcpy(block_ + buffered_, data, take);
            buffered_ += take;
            data += take;
            size -= take;
            if (buffered_ == sizeof block_) {
                compress(block_);
                buffered_ = 0;
            }
        }
    }

    Digest finish() noexcept {
        const std::uint64_t bits = total_bytes_ * 8;
        static constexpr std::uint8_t kPadding[64] = {0x80};
        // Pad to 56 bytes mod 64, then the message length in bits.
        const std::size_t pad = buffered_ < 56 ? 56 - buffered_ : 120 - buffered_;
        update(kPadding, pad);
        std::uint8_t length[8];
        for (int i = 0; i < 8; ++i) length[i] = static_cast<std::uint8_t>(bits >> (8 * i));
        update(length, sizeof length);
        Digest digest{};
        for (int word = 0; word < 4; ++word)
            for (int i = 0; i < 4; ++i) digest[word * 4 + i] = static_cast<std::uint8_t>(state_[word] >> (8 * i));
        return digest;
    }

    static std::uint32_t rotate_left(std::uint32_t x, int bits) noexcept { return (x << bits) | (x >> (32 - bits)); }

    void compress(const std::uint8_t* block) noexcept {
        // Per-round shift amounts and the constants floor(2^32 * |sin(i + 1)|).
        static constexpr int kShift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
        static constexpr std::uint32_t kSine[64] = {
            0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
            0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
            0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
            0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
            0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
            0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
            0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
            0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
        std::uint32_t words[16];
        for (int i = 0; i < 16; ++i)
            words[i] = std::uint32_t{block[i * 4]} | std::uint32_t{block[i * 4 + 1]} << 8 |
                       std::uint32_t{block[i * 4 + 2]} << 16 | std::uint32_t{block[i * 4 + 3]} << 24;
        std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
        for (int i = 0; i < 64; ++i) {
            const int round = i / 16;
            std::uint32_t mixed;
            int word;
            switch (round) {
                case 0: mixed = (b & c) | (~b & d); word = i; break;
                case 1: mixed = (d & b) | (~d & c); word = (5 * i + 1) % 16; break;
                case 2: mixed = b ^ c ^ d; word = (3 * i + 5) % 16; break;
                default: mixed = c ^ (b | ~d); word = (7 * i) % 16; break;
            }
            const std::uint32_t next = b + rotate_left(a + mixed + kSine[i] + words[word], kShift[round][i % 4]);
            a = d;
            d = c;
            c = b;
            b = next;
        }
        state_[0] += a;
        state_[1] += b;
        state_[2] += c;
        state_[3] += d;
    }

    std::uint32_t state_[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    std::uint8_t block_[64] = {};
    std::size_t buffered_ = 0;
    std::uint64_t total_bytes_ = 0;
};

}  // namespace kvstore::detail
