// DamagePolicy: what replay does, under a RecoveryMode, about a damaged
// record or a stretch of LSNs missing between segments. It decides and
// reports what is dropped; it reads and changes no file.
#pragma once

#include <kvstore/log_options.hpp>
#include <kvstore/status.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace kvstore::detail::log {

// What replay does next.
enum class DamageVerdict {
    kFail,        // stop, with the Status given
    kSkip,        // go on after the damage
    kEndSegment,  // go on with the next segment
    kStop,        // keep what was read before the damage and read no more (the rest is cut or set aside)
};

// A damaged record, as the reader found it; it views the caller's strings.
struct Damage {
    std::string_view path;     // of the segment
    std::uint64_t offset;      // where the damage starts
    std::uint64_t next_valid;  // the offset of the next valid record in the segment, or its size
    std::uint64_t segment_size;
    std::string_view why;
    bool newest;  // in the newest segment, where a crash during a write leaves a torn tail
};

class DamagePolicy {
public:
    // What is dropped is listed in `report`, which must outlive the policy.
    DamagePolicy(RecoveryMode mode, RecoveryReport& report) noexcept : mode_(mode), report_(report) {}

    // A kStop verdict under kPointInTime sets the rest of the log aside; under
    // kTolerateTornTail it cuts a torn tail off.
    bool sets_aside() const noexcept { return mode_ == RecoveryMode::kPointInTime; }

    // The verdict on `damage`; `failure` gets kFail's Status.
    DamageVerdict damaged_record(const Damage& damage, Status& failure) {
        const bool followed = damage.next_valid < damage.segment_size;
        const std::uint64_t to_end = damage.segment_size - damage.offset;
        switch (mode_) {
            case RecoveryMode::kTolerateTornTail:
                if (followed || !damage.newest) {
                    failure = Status::corruption(std::string(damage.path), damage.offset,
                                                 std::string(damage.why) +
                                                     (followed ? " (valid records follow it, so it is not a torn tail)"
                                                               : " (in a segment that is not the newest)"));
                    return DamageVerdict::kFail;
                }
                return drop_rest(damage.path, damage.offset, to_end, "torn tail: " + std::string(damage.why));
            case RecoveryMode::kAbsoluteConsistency:
                failure = Status::corruption(std::string(damage.path), damage.offset, std::string(damage.why));
                return DamageVerdict::kFail;
            case RecoveryMode::kPointInTime:
                return drop_rest(damage.path, damage.offset, to_end, std::string(damage.why));
            case RecoveryMode::kSkipBadRecords:
                report_.dropped.push_back({std::string(damage.path), damage.offset, damage.next_valid - damage.offset,
                                           std::string(damage.why)});
                return followed ? DamageVerdict::kSkip : DamageVerdict::kEndSegment;
        }
        return DamageVerdict::kFail;
    }

    // The verdict on LSNs missing before the segment at `path` (`why` says
    // which); `failure` gets kFail's Status.
    DamageVerdict missing_lsns(const std::string& path, std::uint64_t segment_size, const std::string& why,
                               Status& failure) {
        switch (mode_) {
            case RecoveryMode::kTolerateTornTail:
            case RecoveryMode::kAbsoluteConsistency: break;
            case RecoveryMode::kPointInTime: return drop_rest(path, 0, segment_size, why);
            case RecoveryMode::kSkipBadRecords:
                report_.dropped.push_back({path, 0, 0, why});
                return DamageVerdict::kSkip;
        }
        failure = Status::corruption(path, 0, why);
        return DamageVerdict::kFail;
    }

    // The verdict on a record whose LSN is not the one expected (`why` says
    // which): kSkip or kFail. An LSN that goes back is corruption in every
    // mode; past one that jumps ahead only kSkipBadRecords goes on, listing
    // the jump unless it follows damage skipped, which left those LSNs
    // missing and was listed.
    DamageVerdict unexpected_lsn(const std::string& path, std::uint64_t offset, const std::string& why, bool goes_back,
                                 bool after_skipped_damage, Status& failure) {
        if (goes_back || mode_ != RecoveryMode::kSkipBadRecords) {
            failure = Status::corruption(path, offset, why);
            return DamageVerdict::kFail;
        }
        if (!after_skipped_damage) report_.dropped.push_back({path, offset, 0, why});
        return DamageVerdict::kSkip;
    }

private:
    DamageVerdict drop_rest(std::string_view path, std::uint64_t offset, std::uint64_t bytes, std::string why) {
        report_.dropped.push_back({std::string(path), offset, bytes, std::move(why)});
        report_.truncated = true;
        return DamageVerdict::kStop;
    }

    RecoveryMode mode_;
    RecoveryReport& report_;
};

}  // namespace kvstore::detail::log
