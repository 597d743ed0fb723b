// Fuzzes the snapshot reader: the input is a snapshot file. Reading must
// return a Status (never crash or allocate more than the file can hold),
// and a snapshot read whole visits as many entries as its trailer counts.
#include "fault_file_system.hpp"

#include <kvstore/detail/snapshot_file.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace kvstore;
    test::FaultFileSystem fs;
    const std::string path = "/" + detail::snapshot::file_name(1);
    fs.set_contents(path, std::string(reinterpret_cast<const char*>(data), size));
    Lsn replay_from = 0;
    std::uint64_t entries = 0, visited = 0;
    const Status read = detail::snapshot::read(fs, path, replay_from, entries,
                                               [&](const detail::snapshot::Entry&) { ++visited; });
    std::uint64_t counted = 0;
    const Status count = detail::snapshot::read_entry_count(fs, path, counted);
    if (read.is_ok() && (visited != entries || !count.is_ok() || counted != entries)) std::abort();
    return 0;
}
