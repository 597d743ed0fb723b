// Fuzzes kvstore-server's config-file reader: the input is a config file.
// It must be read or refused with an error that names the file and line.
#include "../../examples/server/config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    kvstore::server::ServerConfig config;
    kvstore::server::ConfigReader reader(config);
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    std::string error;
    if (!reader.read_lines(in, "fuzz.conf", error) && error.rfind("fuzz.conf:", 0) != 0) std::abort();
    return 0;
}
