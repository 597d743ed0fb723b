// Fuzzes kvstore-server's plain-text (inline) parser and its quoting rules:
// the input is a client's byte stream that does not start with '*' (its
// first byte picks where to split it).
#include "parser_harness.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (input[0] == '*') input[0] = ' ';
    kvstore::fuzz::parse_all(input, data[0] % (input.size() + 1));

    std::vector<std::string> words;
    std::string error;
    const bool split = kvstore::server::split_arguments(input.substr(0, input.find('\n')), words, error);
    kvstore::fuzz::require(split || !error.empty());
    return 0;
}
