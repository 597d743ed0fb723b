// Crash tests: run a writer in a child process and kill it with SIGKILL.
#pragma once

#include "catch.hpp"

#include <chrono>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kvstore::test {

/// Forks a child that runs body(report_fd), which must never return (it
/// writes what it acknowledges to report_fd), kills it with SIGKILL `delay`
/// after its first report (so that a slow start, under a sanitizer say,
/// does not leave the run empty), reaps it and returns all it reported.
template <class Body>
std::string kill_after(std::chrono::microseconds delay, Body&& body) {
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(report[0]);
        body(report[1]);
        ::_exit(99);
    }
    ::close(report[1]);
    std::string reported;
    char buffer[4096];
    const ssize_t first = ::read(report[0], buffer, sizeof buffer);
    if (first > 0) reported.append(buffer, static_cast<std::size_t>(first));
    std::this_thread::sleep_for(delay);
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    if (!WIFSIGNALED(status)) FAIL("the child exited by itself with status " << WEXITSTATUS(status));
    for (ssize_t got; (got = ::read(report[0], buffer, sizeof buffer)) > 0;)
        reported.append(buffer, static_cast<std::size_t>(got));
    ::close(report[0]);
    return reported;
}

}  // namespace kvstore::test
