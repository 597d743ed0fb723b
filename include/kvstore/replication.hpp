// The replication calls of kvstore::Store, declared (and documented) in
// kvstore/store.hpp and defined here: a follower copies a leader through them,
// with no cluster logic of its own (docs/scale-out.md).
//
//   leader.read_log(from, f)         every durable record from LSN `from` on
//   follower.apply_replicated(r)     applies one, logged under its own LSNs
//   leader.export_snapshot(sink, l)  a fresh snapshot's bytes, and the LSN to go on from
//   follower.import_snapshot(src)    replaces the follower's state with one, checked whole
//
// A follower that finds read_log refused with kCompacted starts over from a
// snapshot. Included by kvstore/store.hpp, after the Store.
#pragma once

#include <kvstore/log_files.hpp>
#include <kvstore/store.hpp>

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvstore {

template <class K, class V, class Durability, class Hasher, class KeyEqual>
template <class F>
Status Store<K, V, Durability, Hasher, KeyEqual>::read_log(Lsn from, F&& f) {
    if constexpr (!Durability::kKeepsRecords) {
        (void)from;
        (void)f;
        return Status::invalid_argument("read_log: the store at " + files_.path() +
                                        " keeps no log (durability None)");
    } else {
        std::lock_guard<std::mutex> no_compaction(checkpointer_.mutex());
        const Lsn durable = log_->stats().durable_lsn;
        std::vector<LogSegment> segments;
        if (Status status = list_log_segments(fs_, files_.path(), segments); !status) return status;
        const Lsn oldest = segments.empty() ? durable + 1 : segments.front().first_lsn;
        if (from < oldest)
            return Status::compacted("read_log: records from LSN " + std::to_string(from) + " on in " +
                                     files_.path() +
                                     " were replaced by a snapshot; the oldest still on disk is LSN " +
                                     std::to_string(oldest) + " (start from export_snapshot instead)");
        if (from > durable) return Status::ok();
        // Records past the durable LSN may be half written: the reading
        // stops at the first of them, through a Status that only says so.
        bool reached_end = false;
        RecoveryReport report;
        Status status = read_log_files(
            fs_, files_.path(), from, RecoveryMode::kTolerateTornTail,
            [&](const LogRecord& record) -> Status {
                if (record.lsn <= durable) return f(record);
                reached_end = true;
                return Status::invalid_argument("end of the durable records");
            },
            report);
        return reached_end ? Status::ok() : status;
    }
}

template <class K, class V, class Durability, class Hasher, class KeyEqual>
Status Store<K, V, Durability, Hasher, KeyEqual>::export_snapshot(const std::function<Status(std::string_view)>& sink, Lsn& continue_from) {
    std::lock_guard<std::mutex> one_at_a_time(checkpointer_.mutex());
    return checkpointer_.export_snapshot(*log_, sink, continue_from);
}

template <class K, class V, class Durability, class Hasher, class KeyEqual>
Status Store<K, V, Durability, Hasher, KeyEqual>::import_snapshot(const std::function<Status(std::string&)>& source) {
    std::lock_guard<std::mutex> one_at_a_time(checkpointer_.mutex());
    return detail::no_room_as_status([&] { return "import_snapshot into " + files_.path(); }, "the store is as it was",
                                     [&] { return checkpointer_.import_snapshot(*log_, source); });
}

template <class K, class V, class Durability, class Hasher, class KeyEqual>
Status Store<K, V, Durability, Hasher, KeyEqual>::apply_replicated(const LogRecord& record) {
    return refused_for_room([&] {
        if (record.type == LogRecordType::kClear) return clear();
        std::vector<K> keys;
        std::vector<std::optional<V>> values;
        std::vector<Expiry> expiries;
        const Expiry now = clock_.now();
        bool decoded = true;
        bool holds_clear = false;
        Status parsed = for_each_operation(record, [&](const LogOperation& op) {
            if (op.type == LogRecordType::kClear) holds_clear = true;
            K key{};
            if (!Codec<K>::decode(op.key, key)) decoded = false;
            const bool live_put = (op.type == LogRecordType::kPut || op.type == LogRecordType::kPutExpiring) &&
                                  (op.expiry == kNoExpiry || op.expiry > now);
            std::optional<V> value;
            if (live_put && !Codec<V>::decode(op.value, value.emplace())) decoded = false;
            keys.push_back(std::move(key));
            values.push_back(std::move(value));
            expiries.push_back(live_put ? op.expiry : kNoExpiry);
        });
        if (!parsed) return parsed;
        if (holds_clear)
            return Status::invalid_argument("apply_replicated: record " + std::to_string(record.lsn) +
                                            " is a batch holding a clear, which no Store writes");
        if (!decoded) return detail::undecodable(files_.path(), "entry", record.lsn);
        return write_entries(keys, values, expiries);
    });
}

}  // namespace kvstore
