// What the torture programs share: failing with a message, reading their
// command line, and a scratch directory on a RAM disk where there is one.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace kvstore::torture {

/// Ends the program on a fault of the harness itself (not of the store).
[[noreturn]] inline void die(const std::string& what) {
    std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, what.c_str());
    std::exit(2);
}

/// Walks argv: `next()` gives each argument, `value()` and `number()` the
/// one that follows it, dying with a message naming it if that is missing
/// or not a number.
class CommandLine {
public:
    CommandLine(int argc, char** argv) : argc_(argc), argv_(argv) {}

    bool next(std::string& arg) {
        if (++index_ >= argc_) return false;
        arg = current_ = argv_[index_];
        return true;
    }
    std::string value() {
        if (index_ + 1 >= argc_) die(current_ + " needs a value");
        return argv_[++index_];
    }
    unsigned long long number() {
        const std::string text = value();
        char* end = nullptr;
        const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0') die(current_ + " needs a number, not '" + text + "'");
        return n;
    }
    [[noreturn]] void unknown(const char* source_file) const {
        die("unknown argument '" + current_ + "' (see the comment at the top of " + source_file + ")");
    }

private:
    int argc_;
    char** argv_;
    int index_ = 0;
    std::string current_;
};

/// Where scratch directories go by default: /dev/shm (files there cost no
/// disk I/O, and a kill or a simulated cut does not need a real disk).
inline std::string default_scratch_base() {
    return std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
}

/// Creates a fresh directory "<base>/<prefix>-XXXXXX" and returns its path.
inline std::string make_scratch_dir(const std::string& base, const std::string& prefix) {
    std::string pattern = base + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) die("cannot create a directory in " + base);
    return pattern;
}

}  // namespace kvstore::torture
