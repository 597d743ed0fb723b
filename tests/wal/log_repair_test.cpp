// Recovery's three parts on their own: the DamagePolicy's verdicts in each
// mode, replay_log reading without changing a file and returning its
// RepairPlan, and repair_log carrying a plan out.
#include "catch.hpp"
#include "wal_test_support.hpp"

#include <kvstore/detail/log_damage.hpp>
#include <kvstore/detail/log_repair.hpp>
#include <kvstore/detail/log_replay.hpp>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
namespace wal = kvstore::detail::log;
using Verdict = wal::DamageVerdict;

namespace {

const std::string kPath = "/db/segment";
const std::string kWhy = "bad payload checksum";

// The verdict of `mode` on damage at offset 100 of a 1,000-byte segment,
// followed by a valid record at 300 (or by nothing), in the newest segment or not.
Verdict verdict_on(RecoveryMode mode, bool followed, bool newest, RecoveryReport& report, Status& failure) {
    wal::DamagePolicy policy(mode, report);
    return policy.damaged_record(wal::Damage{kPath, 100, followed ? 300u : 1000u, 1000, kWhy, newest}, failure);
}

// Every file of `fs` with its bytes.
std::map<std::string, std::string> files_of(const FaultFileSystem& fs) {
    std::map<std::string, std::string> files;
    for (const std::string& path : fs.paths()) files[path] = fs.contents(path);
    return files;
}

// A log in kLogDir of segments 1 (LSNs 1-3), 4 (4-5) and 6 (empty, as a clean close leaves it), whose
// record 2 is damaged; `damaged_at` gets its offset.
void plant_damaged_log(FaultFileSystem& fs, std::uint64_t& damaged_at) {
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<SyncWAL> log;
    REQUIRE(open_collecting(fs, replayed, log));
    for (int i = 1; i <= 3; ++i) REQUIRE(log->write(put("key-" + std::to_string(i), "value")));
    Lsn next = 0;
    REQUIRE(log->rotate(next));
    for (int i = 4; i <= 5; ++i) REQUIRE(log->write(put("key-" + std::to_string(i), "value")));
    REQUIRE(log->close());
    std::vector<std::uint64_t> offsets;
    RecoveryReport report;
    REQUIRE(wal::replay_log(fs, kLogDir, 0, RecoveryMode::kAbsoluteConsistency,
                            [&](const LogRecord& record) {
                                if (record.lsn <= 2) offsets.push_back(record.offset);
                                return Status::ok();
                            },
                            report));
    REQUIRE(offsets.size() == 2);
    damaged_at = offsets[1];
    std::string first = fs.contents(segment_path(1));
    first[damaged_at + wal::kRecordHeaderSize + 1] ^= 0x01;
    fs.set_contents(segment_path(1), first);
}

Status replay_planning(FaultFileSystem& fs, RecoveryMode mode, std::vector<Lsn>& lsns, RecoveryReport& report,
                       wal::RepairPlan& plan) {
    return wal::replay_log(
        fs, kLogDir, 0, mode,
        [&](const LogRecord& record) {
            lsns.push_back(record.lsn);
            return Status::ok();
        },
        report, {}, &plan);
}

}  // namespace

TEST_CASE("DamagePolicy: only a torn tail of the newest segment passes kTolerateTornTail", "[wal][repair][damage]") {
    RecoveryReport report;
    Status failure;
    CHECK(verdict_on(RecoveryMode::kTolerateTornTail, false, true, report, failure) == Verdict::kStop);
    REQUIRE(report.dropped.size() == 1);
    CHECK(report.dropped[0].offset == 100);
    CHECK(report.dropped[0].bytes == 900);
    CHECK(report.dropped[0].reason == "torn tail: " + kWhy);
    CHECK(report.truncated);

    for (const bool followed : {true, false}) {
        RecoveryReport refused;
        failure = Status::ok();
        CHECK(verdict_on(RecoveryMode::kTolerateTornTail, followed, followed, refused, failure) == Verdict::kFail);
        CHECK(failure.code() == StatusCode::kCorruption);
        CHECK(failure.message().find(followed ? "valid records follow it" : "not the newest") != std::string::npos);
        CHECK(failure.message().find(kPath) != std::string::npos);
        CHECK(refused.dropped.empty());
    }
}

TEST_CASE("DamagePolicy: the other modes fail, stop or skip, listing what they drop", "[wal][repair][damage]") {
    RecoveryReport report;
    Status failure;
    CHECK(verdict_on(RecoveryMode::kAbsoluteConsistency, false, true, report, failure) == Verdict::kFail);
    CHECK(failure.code() == StatusCode::kCorruption);
    CHECK(report.dropped.empty());

    wal::DamagePolicy point_in_time(RecoveryMode::kPointInTime, report);
    CHECK(point_in_time.sets_aside());
    CHECK(verdict_on(RecoveryMode::kPointInTime, true, false, report, failure) == Verdict::kStop);
    REQUIRE(report.dropped.size() == 1);
    CHECK(report.dropped[0].bytes == 900);

    RecoveryReport skipped;
    failure = Status::ok();
    CHECK(verdict_on(RecoveryMode::kSkipBadRecords, true, false, skipped, failure) == Verdict::kSkip);
    CHECK(verdict_on(RecoveryMode::kSkipBadRecords, false, true, skipped, failure) == Verdict::kEndSegment);
    CHECK(failure);
    REQUIRE(skipped.dropped.size() == 2);
    CHECK(skipped.dropped[0].bytes == 200);
    CHECK(skipped.dropped[1].bytes == 900);
    CHECK_FALSE(skipped.truncated);
}

TEST_CASE("DamagePolicy on missing LSNs and on a record with an unexpected LSN", "[wal][repair][damage]") {
    const std::string why = "LSN 4 is missing";
    for (const RecoveryMode mode : {RecoveryMode::kTolerateTornTail, RecoveryMode::kAbsoluteConsistency}) {
        RecoveryReport report;
        Status failure;
        wal::DamagePolicy policy(mode, report);
        CHECK(policy.missing_lsns(kPath, 1000, why, failure) == Verdict::kFail);
        CHECK(failure.message().find(why) != std::string::npos);
        failure = Status::ok();
        CHECK(policy.unexpected_lsn(kPath, 40, why, false, false, failure) == Verdict::kFail);
        CHECK(failure.code() == StatusCode::kCorruption);
    }
    RecoveryReport report;
    Status failure;
    wal::DamagePolicy point_in_time(RecoveryMode::kPointInTime, report);
    CHECK(point_in_time.missing_lsns(kPath, 1000, why, failure) == Verdict::kStop);
    REQUIRE(report.dropped.size() == 1);
    CHECK(report.dropped[0].bytes == 1000);
    CHECK(report.truncated);
    CHECK(point_in_time.unexpected_lsn(kPath, 40, why, false, false, failure) == Verdict::kFail);
    CHECK(failure.code() == StatusCode::kCorruption);

    RecoveryReport skipped;
    failure = Status::ok();
    wal::DamagePolicy skip(RecoveryMode::kSkipBadRecords, skipped);
    CHECK(skip.missing_lsns(kPath, 1000, why, failure) == Verdict::kSkip);
    CHECK(skip.unexpected_lsn(kPath, 40, why, false, false, failure) == Verdict::kSkip);
    CHECK(skip.unexpected_lsn(kPath, 80, why, false, true, failure) == Verdict::kSkip);
    CHECK(skipped.dropped.size() == 2);  // the jump after skipped damage was listed with the damage
    CHECK(failure);
    CHECK(skip.unexpected_lsn(kPath, 90, why, true, false, failure) == Verdict::kFail);
    CHECK(failure.code() == StatusCode::kCorruption);
}

TEST_CASE("replay_log changes no file and plans the repair, which repair_log carries out (point in time)",
          "[wal][repair]") {
    FaultFileSystem fs;
    std::uint64_t damaged_at = 0;
    plant_damaged_log(fs, damaged_at);
    const auto before = files_of(fs);

    std::vector<Lsn> lsns;
    RecoveryReport report;
    wal::RepairPlan plan;
    REQUIRE(replay_planning(fs, RecoveryMode::kPointInTime, lsns, report, plan));
    CHECK(lsns == std::vector<Lsn>{1});
    CHECK(files_of(fs) == before);
    CHECK(plan.kind == wal::RepairPlan::Kind::kSetAsideRest);
    REQUIRE(plan.segments.size() == 3);
    CHECK(plan.segments[0].first_lsn == 1);
    CHECK(plan.segments[1].first_lsn == 4);
    CHECK(plan.segments[2].first_lsn == 6);
    CHECK(plan.offset == damaged_at);
    CHECK(plan.last_kept == 1);
    CHECK(plan.highest_set_aside == 5);
    CHECK(report.highest_set_aside_lsn == 5);
    REQUIRE(plan.dropped.size() == 3);
    REQUIRE(report.dropped.size() == 3);

    REQUIRE(wal::repair_log(fs, kLogDir, plan, report, 0600));
    CHECK(fs.contents(segment_path(1)) == before.at(segment_path(1)).substr(0, damaged_at));
    CHECK(fs.contents(segment_path(1) + ".damaged") == before.at(segment_path(1)).substr(damaged_at));
    CHECK(fs.contents(segment_path(4) + ".damaged") == before.at(segment_path(4)));
    CHECK(fs.contents(segment_path(6) + ".damaged") == before.at(segment_path(6)));
    CHECK(fs.size_of(segment_path(6)) == wal::kFileHeaderSize);
    CHECK(report.dropped[plan.dropped[0]].reason.find("kept in " + segment_path(1) + ".damaged") != std::string::npos);
    CHECK(report.dropped[plan.dropped[1]].reason.find("kept in " + segment_path(4) + ".damaged") != std::string::npos);
    CHECK(report.dropped[plan.dropped[2]].reason.find("kept in " + segment_path(6) + ".damaged") != std::string::npos);

    // The repaired log replays strictly, and the next segment says it follows LSNs set aside.
    lsns.clear();
    wal::RepairPlan none;
    REQUIRE(replay_planning(fs, RecoveryMode::kAbsoluteConsistency, lsns, report, none));
    CHECK(lsns == std::vector<Lsn>{1});
    CHECK(none.kind == wal::RepairPlan::Kind::kNone);
    const auto repaired = files_of(fs);
    REQUIRE(wal::repair_log(fs, kLogDir, none, report, 0600));
    CHECK(files_of(fs) == repaired);
}

TEST_CASE("repair_log syncs what it set aside before it starts the next segment or cuts the damaged one",
          "[wal][repair]") {
    FaultFileSystem fs;
    std::uint64_t damaged_at = 0;
    plant_damaged_log(fs, damaged_at);
    const std::string first = fs.contents(segment_path(1));
    std::vector<Lsn> lsns;
    RecoveryReport report;
    wal::RepairPlan plan;
    REQUIRE(replay_planning(fs, RecoveryMode::kPointInTime, lsns, report, plan));
    fs.inject("fsync-dir", EIO);
    CHECK_FALSE(wal::repair_log(fs, kLogDir, plan, report, 0600));
    // Set aside (copied and renamed), but neither cut nor followed by a new segment.
    CHECK(fs.contents(segment_path(1)) == first);
    CHECK(fs.contents(segment_path(1) + ".damaged") == first.substr(damaged_at));
    const std::vector<std::string> paths = fs.paths();
    CHECK(std::find(paths.begin(), paths.end(), segment_path(6)) == paths.end());
}

TEST_CASE("repair_log cuts a torn tail, or sets aside a segment torn inside its header", "[wal][repair]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    {
        std::unique_ptr<SyncWAL> log;
        REQUIRE(open_collecting(fs, replayed, log));
        REQUIRE(log->write(put("a", "1")));
        REQUIRE(log->write(put("b", "2")));
    }
    // The empty segment the close started goes, so that segment 1 is the newest.
    REQUIRE(fs.remove(segment_path(3)));
    const std::string whole = fs.contents(segment_path(1));
    std::uint64_t second = 0;
    std::vector<Lsn> lsns;
    RecoveryReport report;
    wal::RepairPlan plan;
    REQUIRE(replay_planning(fs, RecoveryMode::kTolerateTornTail, lsns, report, plan));
    CHECK(plan.kind == wal::RepairPlan::Kind::kNone);
    REQUIRE(wal::replay_log(fs, kLogDir, 0, RecoveryMode::kTolerateTornTail,
                            [&](const LogRecord& record) {
                                second = record.offset;
                                return Status::ok();
                            },
                            report));

    SECTION("a tail torn inside a record is cut off at the record") {
        fs.set_contents(segment_path(1), whole.substr(0, whole.size() - 1));
        lsns.clear();
        REQUIRE(replay_planning(fs, RecoveryMode::kTolerateTornTail, lsns, report, plan));
        CHECK(lsns == std::vector<Lsn>{1});
        CHECK(plan.kind == wal::RepairPlan::Kind::kCutTornTail);
        CHECK(plan.offset == second);
        CHECK(fs.size_of(segment_path(1)) == whole.size() - 1);
        REQUIRE(wal::repair_log(fs, kLogDir, plan, report, 0600));
        CHECK(fs.contents(segment_path(1)) == whole.substr(0, second));
    }
    SECTION("a segment torn inside its header is set aside whole") {
        const std::string torn = whole.substr(0, wal::kFileHeaderSize - 3);
        fs.set_contents(segment_path(1), torn);
        REQUIRE(replay_planning(fs, RecoveryMode::kTolerateTornTail, lsns, report, plan));
        CHECK(plan.kind == wal::RepairPlan::Kind::kCutTornTail);
        CHECK(plan.offset < wal::kFileHeaderSize);
        REQUIRE(wal::repair_log(fs, kLogDir, plan, report, 0600));
        CHECK(fs.contents(segment_path(1) + ".damaged") == torn);
        CHECK(fs.paths() == std::vector<std::string>{segment_path(1) + ".damaged"});
    }
}
