// A fresh directory on the real file system, removed with its contents at
// the end of the test.
#pragma once

#include "catch.hpp"

#include <cstdlib>
#include <string>

namespace kvstore::test {

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/kvstore-test-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path_ = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() { (void)remove(); }

    const std::string& path() const noexcept { return path_; }

    /// Removes the directory now; true iff it is gone.
    bool remove() {
        if (path_.empty()) return true;
        const bool removed = std::system(("rm -rf '" + path_ + "'").c_str()) == 0;
        if (removed) path_.clear();
        return removed;
    }

private:
    std::string path_;
};

}  // namespace kvstore::test
