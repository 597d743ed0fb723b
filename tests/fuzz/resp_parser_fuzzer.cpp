// Fuzzes kvstore-server's RESP parser: the input, after a '*', is a
// client's byte stream (its first byte picks where to split it).
#include "parser_harness.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string input = "*";
    input.append(reinterpret_cast<const char*>(data) + 1, size - 1);
    kvstore::fuzz::parse_all(input, data[0] % (input.size() + 1));
    return 0;
}
