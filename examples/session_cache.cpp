// A session cache on a Store: sessions end on their own (a put with a
// time-to-live), a session in use is kept alive (expire), "remember me"
// drops the deadline (persist), and deadlines survive a restart because the
// log and snapshots hold them as absolute times.
//
// The store reads "now" through StoreOptions::clock. This example gives it a
// clock that only moves when told to, so that half an hour passes without
// waiting and every step below is exact.
//
//   kvstore-example-session-cache [DIR]   (default: a new directory under /tmp, removed at the end)
#include "example_support.hpp"

#include <kvstore/kvstore.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;
using Sessions = kvstore::Store<std::string, std::string>;

// Starts at the real time, because expiry times are wall-clock times that
// a later run of the program, with the real clock, must also make sense of.
class ManualClock {
public:
    Clock::time_point now() const { return start_ + std::chrono::microseconds(elapsed_us_.load()); }
    void advance(std::chrono::minutes by) {
        elapsed_us_ += std::chrono::duration_cast<std::chrono::microseconds>(by).count();
        std::printf("-- %lld minutes later\n", static_cast<long long>(by.count()));
    }
    // Minutes from the start to `when`, to print deadlines readably.
    long long minutes_at(Clock::time_point when) const {
        return static_cast<long long>(std::chrono::round<std::chrono::minutes>(when - start_).count());
    }

private:
    const Clock::time_point start_ = Clock::now();
    std::atomic<long long> elapsed_us_{0};  // read by the store's threads too
};

std::optional<long long> deadline(const Sessions& sessions, const ManualClock& clock, const std::string& token) {
    std::optional<Clock::time_point> when;
    if (!sessions.expires_at(token, when) || !when) return std::nullopt;
    return clock.minutes_at(*when);
}

void show(const Sessions& sessions, const ManualClock& clock) {
    for (const char* token : {"session:alice", "session:bob", "session:carol"}) {
        const std::optional<std::string> user = sessions.get(token);
        const std::optional<long long> ends = deadline(sessions, clock, token);
        if (!user) {
            std::printf("  %-14s gone\n", token);
        } else if (ends) {
            std::printf("  %-14s %s, ends at minute %lld\n", token, user->c_str(), *ends);
        } else {
            std::printf("  %-14s %s, no deadline\n", token, user->c_str());
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    const example::StoreDir dir(argc, argv, "sessions");
    using example::expect;
    using example::ok;

    ManualClock clock;
    kvstore::StoreOptions options;
    options.clock = [&clock] { return clock.now(); };
    // No background sweeper: it would run on real time, at moments this
    // example does not choose. Expired sessions are never returned anyway;
    // remove_expired() frees their memory when called below.
    options.sweep_interval = 0ms;

    std::unique_ptr<Sessions> sessions;
    if (!ok(Sessions::open(dir.path(), options, sessions), "open")) return 1;
    for (const char* user : {"alice", "bob", "carol"}) {
        if (!ok(sessions->put(std::string("session:") + user, user, 30min), "put")) return 1;
    }
    std::printf("three sessions of 30 minutes:\n");
    show(*sessions, clock);

    clock.advance(20min);
    bool found = false;
    bool had_deadline = false;
    // Alice is active: her session is pushed back to 30 minutes from now.
    // Carol ticked "remember me": her session no longer ends.
    if (!ok(sessions->expire("session:alice", 30min, found), "expire") ||
        !ok(sessions->persist("session:carol", had_deadline), "persist"))
        return 1;
    std::printf("alice's session extended, carol's made permanent:\n");
    show(*sessions, clock);

    clock.advance(15min);
    show(*sessions, clock);
    bool holds = expect(!sessions->contains("session:bob"), "bob's session ended at minute 30, untouched");
    holds &= expect(deadline(*sessions, clock, "session:alice") == 50, "alice's was extended to minute 50");

    if (!ok(sessions->close(), "close")) return 1;
    if (!ok(Sessions::open(dir.path(), options, sessions), "reopen")) return 1;
    std::printf("after a restart:\n");
    show(*sessions, clock);
    holds &= expect(deadline(*sessions, clock, "session:alice") == 50, "alice's deadline survived the restart");
    holds &= expect(sessions->contains("session:carol") && !deadline(*sessions, clock, "session:carol"),
                    "carol's session is still permanent");
    holds &= expect(!sessions->contains("session:bob"), "bob's is still gone");

    clock.advance(20min);
    // Before show(): a read that finds an expired key removes it on the spot.
    const std::size_t removed = sessions->remove_expired();
    std::printf("remove_expired() removed %zu session(s)\n", removed);
    show(*sessions, clock);
    holds &= expect(removed == 1 && !sessions->contains("session:alice"), "alice's session ended at minute 50");
    holds &= expect(sessions->contains("session:carol"), "carol's never ends");
    return holds ? 0 : 1;
}
