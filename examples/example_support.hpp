// What every example needs besides the library: a directory for its store,
// and a way to stop on an error.
#pragma once

#include <kvstore/status.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace example {

/// The directory named on the command line, left in place so that it can be
/// looked at afterwards (kvstore-inspect DIR), or else a fresh one under
/// /tmp, removed when the example ends.
class StoreDir {
public:
    StoreDir(int argc, char** argv, const std::string& name) {
        if (argc > 1) {
            path_ = argv[1];
            return;
        }
        std::string pattern = "/tmp/kvstore-" + name + "-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::perror("mkdtemp");
            std::exit(1);
        }
        path_ = pattern;
        remove_ = true;
    }
    StoreDir(const StoreDir&) = delete;
    StoreDir& operator=(const StoreDir&) = delete;
    ~StoreDir() {
        std::error_code ignored;
        if (remove_) std::filesystem::remove_all(path_, ignored);
    }

    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    bool remove_ = false;
};

/// Errors from the disk come back as values; an example can only report one
/// and stop. Returns status.is_ok().
inline bool ok(const kvstore::Status& status, const char* what) {
    if (!status) std::fprintf(stderr, "%s: %s\n", what, status.to_string().c_str());
    return status.is_ok();
}

/// Prints a check of what the example demonstrates; returns `holds`.
inline bool expect(bool holds, const char* what) {
    std::printf("  [%s] %s\n", holds ? "ok" : "FAILED", what);
    return holds;
}

}  // namespace example
