// What the two request-parser fuzzers share: parse every request of an
// input, checking what RequestParser promises about consumed and needed
// bytes and that a request parsed from a prefix is parsed the same from the
// whole input.
#pragma once

#include "../../examples/server/protocol.hpp"

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore::fuzz {

using namespace kvstore::server;

inline RequestLimits small_limits() {
    RequestLimits limits;
    limits.max_query_buffer = 1 << 16;
    limits.max_bulk_length = 1 << 12;
    limits.max_arguments = 64;
    return limits;
}

inline void require(bool holds) {
    if (!holds) std::abort();
}

inline std::vector<std::string> copy_args(const Request& request) {
    return std::vector<std::string>(request.args.begin(), request.args.end());
}

inline void parse_all(std::string_view input, std::size_t split) {
    const RequestParser parser(small_limits());
    Request request;
    std::size_t consumed = 0, needed = 0;
    std::string error;
    while (!input.empty()) {
        const ParseResult result = parser.parse(input, request, consumed, needed, error);
        if (result == ParseResult::kError) {
            require(!error.empty());
            return;
        }
        if (result == ParseResult::kIncomplete) {
            require(needed > input.size());
            return;
        }
        require(consumed > 0 && consumed <= input.size());
        if (result == ParseResult::kComplete) {
            // The same request, parsed from a prefix that holds it whole.
            const std::vector<std::string> args = copy_args(request);
            const std::size_t whole = consumed;
            if (split >= whole && split < input.size()) {
                Request again;
                std::size_t consumed_again = 0;
                require(parser.parse(input.substr(0, split), again, consumed_again, needed, error) ==
                        ParseResult::kComplete);
                require(consumed_again == whole && copy_args(again) == args);
            }
        }
        input.remove_prefix(consumed);
    }
}

}  // namespace kvstore::fuzz
