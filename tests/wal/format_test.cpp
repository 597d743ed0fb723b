#include "catch.hpp"
#include "wal_test_support.hpp"

#include <kvstore/codec.hpp>
#include <kvstore/detail/log_record.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace kvstore;
using namespace kvstore::test;
namespace wal = kvstore::detail::log;

TEST_CASE("Every record type survives a write and a replay", "[wal][format]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, replayed, wal));

    const std::string binary_value("\0\xff\x01\x80", 4);
    const std::string long_key(300, 'k');  // a two-byte varint length
    REQUIRE(wal->write({LogRecordType::kPut, "alpha", "one", 0}));
    REQUIRE(wal->write({LogRecordType::kPut, long_key, binary_value, 0}));
    REQUIRE(wal->write({LogRecordType::kPut, "", "", 0}));
    REQUIRE(wal->write({LogRecordType::kPutExpiring, "session", "token", 1'900'000'000'000'000ull}));
    REQUIRE(wal->write({LogRecordType::kErase, "alpha", "", 0}));
    REQUIRE(wal->write({LogRecordType::kClear, "", "", 0}));
    const std::vector<LogOperation> batch{{LogRecordType::kPut, "b1", "v1", 0},
                                          {LogRecordType::kPutExpiring, "b2", "v2", 42},
                                          {LogRecordType::kErase, "b3", "", 0},
                                          {LogRecordType::kClear, "", "", 0}};
    Lsn batch_lsn = 0;
    REQUIRE(wal->append_batch(batch, batch_lsn));
    REQUIRE(wal->commit(batch_lsn));
    REQUIRE(wal->append_batch(std::vector<LogOperation>{}, batch_lsn));
    REQUIRE(wal->commit(batch_lsn));
    REQUIRE(wal->close());

    RecoveryReport report;
    REQUIRE(open_collecting(fs, replayed, wal, {}, &report));
    const std::vector<ReplayedOp> expected{
        {1, LogRecordType::kPut, LogRecordType::kPut, "alpha", "one", 0},
        {2, LogRecordType::kPut, LogRecordType::kPut, long_key, binary_value, 0},
        {3, LogRecordType::kPut, LogRecordType::kPut, "", "", 0},
        {4, LogRecordType::kPutExpiring, LogRecordType::kPutExpiring, "session", "token", 1'900'000'000'000'000ull},
        {5, LogRecordType::kErase, LogRecordType::kErase, "alpha", "", 0},
        {6, LogRecordType::kClear, LogRecordType::kClear, "", "", 0},
        {7, LogRecordType::kBatch, LogRecordType::kPut, "b1", "v1", 0},
        {7, LogRecordType::kBatch, LogRecordType::kPutExpiring, "b2", "v2", 42},
        {7, LogRecordType::kBatch, LogRecordType::kErase, "b3", "", 0},
        {7, LogRecordType::kBatch, LogRecordType::kClear, "", "", 0},
    };
    CHECK(replayed == expected);
    CHECK(report.records == 8);
    CHECK(report.last_lsn == 8);
    CHECK(report.dropped.empty());
    // The log goes on after the replayed records.
    Lsn next = 0;
    REQUIRE(wal->append(put("after", "reopen"), next));
    CHECK(next == 9);
}

TEST_CASE("Records carry the time they were appended", "[wal][format]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> ignored;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, ignored, wal));
    const auto before = std::chrono::system_clock::now();
    REQUIRE(wal->write(put("k", "v")));
    const auto after = std::chrono::system_clock::now();
    REQUIRE(wal->close());

    std::vector<std::uint64_t> stamps;
    RecoveryReport report;
    LogOptions options;
    options.file_system = &fs;
    REQUIRE(SyncWAL::open(
        kLogDir, options, 0,
        [&](const LogRecord& record) {
            stamps.push_back(record.timestamp);
            return Status::ok();
        },
        report, wal));
    auto micros = [](auto time) {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count());
    };
    REQUIRE(stamps.size() == 1);
    CHECK(stamps[0] >= micros(before));
    CHECK(stamps[0] <= micros(after));
}

TEST_CASE("Replay starts at the requested LSN", "[wal][format]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    std::unique_ptr<GroupCommitWAL> wal;
    REQUIRE(open_collecting(fs, replayed, wal));
    for (int i = 1; i <= 10; ++i) REQUIRE(wal->write(put("k" + std::to_string(i), "v")));
    REQUIRE(wal->close());

    LogOptions options;
    options.file_system = &fs;
    RecoveryReport report;
    REQUIRE(GroupCommitWAL::open(kLogDir, options, 7, collect_into(replayed), report, wal));
    REQUIRE(replayed.size() == 4);
    CHECK(replayed.front().key == "k7");
    CHECK(replayed.back().key == "k10");
    CHECK(report.last_lsn == 10);
}

TEST_CASE("Segments are named by their first LSN, and only such names are segments", "[wal][format]") {
    CHECK(wal::segment_name(1) == "wal-00000000000000000001.log");
    Lsn lsn = 0;
    CHECK(wal::parse_segment_name(wal::segment_name(std::numeric_limits<Lsn>::max()), lsn));
    CHECK(lsn == std::numeric_limits<Lsn>::max());
    CHECK(wal::parse_segment_name("wal-00000000000000001234.log", lsn));
    CHECK(lsn == 1234);
    CHECK_FALSE(wal::parse_segment_name("wal-99999999999999999999.log", lsn));  // beyond 64 bits
    CHECK_FALSE(wal::parse_segment_name("wal-0000000000000000123x.log", lsn));
    CHECK_FALSE(wal::parse_segment_name("wal-00000000000000001234.log.damaged", lsn));
    CHECK_FALSE(wal::parse_segment_name("LOCK", lsn));
}

TEST_CASE("Varints round-trip and refuse cut-off or oversized input", "[wal][format]") {
    for (const std::uint64_t value : {std::uint64_t{0}, std::uint64_t{127}, std::uint64_t{128},
                                      std::uint64_t{300}, std::uint64_t{1} << 35,
                                      std::numeric_limits<std::uint64_t>::max()}) {
        std::array<char, 10> buffer{};
        char* end = kvstore::detail::put_varint(buffer.data(), value);
        CHECK(static_cast<std::size_t>(end - buffer.data()) == kvstore::detail::varint_size(value));
        std::string_view in(buffer.data(), static_cast<std::size_t>(end - buffer.data()));
        std::uint64_t decoded = 0;
        REQUIRE(kvstore::detail::get_varint(in, decoded));
        CHECK(decoded == value);
        CHECK(in.empty());
        std::string_view cut(buffer.data(), static_cast<std::size_t>(end - buffer.data()) - 1);
        CHECK_FALSE(kvstore::detail::get_varint(cut, decoded));
    }
    const std::string eleven_bytes(11, '\x80');
    std::string_view too_long = eleven_bytes;
    std::uint64_t decoded = 0;
    CHECK_FALSE(kvstore::detail::get_varint(too_long, decoded));
    const std::string overflow = std::string(9, '\xff') + '\x02';  // 2^64 and more
    std::string_view overflowing = overflow;
    CHECK_FALSE(kvstore::detail::get_varint(overflowing, decoded));
}

TEST_CASE("Damaged payloads are refused with a reason", "[wal][format]") {
    wal::Operation op;
    CHECK(wal::decode_payload(LogRecordType::kPut, std::string_view("\x05" "ab", 3), op) != nullptr);
    CHECK(wal::decode_payload(LogRecordType::kPutExpiring, "short", op) != nullptr);
    CHECK(wal::decode_payload(LogRecordType::kClear, "x", op) != nullptr);
    CHECK(wal::decode_payload(LogRecordType::kBatch, "", op) != nullptr);

    const std::vector<wal::Operation> ops{{LogRecordType::kPut, "a", "1", 0}, {LogRecordType::kErase, "b", "", 0}};
    std::string payload(wal::batch_payload_size(ops), '\0');
    wal::encode_batch_payload(ops, payload.data());
    int visited = 0;
    auto visit = [&](const wal::Operation&) { ++visited; };
    REQUIRE(wal::decode_batch_payload(payload, visit) == nullptr);
    CHECK(visited == 2);
    // A cut batch applies nothing, not even its intact first operation.
    for (std::size_t size = 0; size < payload.size(); ++size) {
        visited = 0;
        CHECK(wal::decode_batch_payload(std::string_view(payload).substr(0, size), visit) != nullptr);
        CHECK(visited == 0);
    }
    visited = 0;
    CHECK(wal::decode_batch_payload(payload + "x", visit) != nullptr);
    CHECK(visited == 0);
}

namespace {
struct Point {
    std::int32_t x;
    std::int32_t y;
};
struct Label {
    std::string text;
};
}  // namespace

template <>
struct kvstore::Codec<Label> {
    static std::size_t size(const Label& label) { return label.text.size() + 1; }
    static char* encode(const Label& label, char* out) {
        *out++ = '#';
        return Codec<std::string>::encode(label.text, out);
    }
    static bool decode(std::string_view bytes, Label& out) {
        if (bytes.empty() || bytes.front() != '#') return false;
        out.text.assign(bytes.substr(1));
        return true;
    }
};

template <class T>
T codec_round_trip(const T& value) {
    const std::string bytes = encode_to_string(value);
    REQUIRE(bytes.size() == Codec<T>::size(value));
    T decoded{};
    REQUIRE(Codec<T>::decode(bytes, decoded));
    return decoded;
}

TEST_CASE("Codecs round-trip strings, byte buffers, arithmetic, trivially copyable and user types", "[wal][codec]") {
    CHECK(codec_round_trip(std::string("hello\0world", 11)) == std::string("hello\0world", 11));
    CHECK(codec_round_trip(std::string()).empty());
    const std::vector<std::byte> bytes{std::byte{0}, std::byte{0xff}};
    CHECK(codec_round_trip(bytes) == bytes);
    const std::vector<unsigned char> uchars{1, 2, 3};
    CHECK(codec_round_trip(uchars) == uchars);
    CHECK(codec_round_trip(std::uint64_t{0x0123456789abcdef}) == 0x0123456789abcdef);
    CHECK(codec_round_trip(-2.5) == -2.5);
    const Point point = codec_round_trip(Point{-7, 9});
    CHECK(point.x == -7);
    CHECK(point.y == 9);
    CHECK(codec_round_trip(Label{"tag"}).text == "tag");

    std::uint32_t number = 0;
    CHECK_FALSE(Codec<std::uint32_t>::decode("abc", number));  // wrong size
    Label label;
    CHECK_FALSE(Codec<Label>::decode("tag", label));
}

TEST_CASE("Replay reports its progress segment by segment", "[wal][format]") {
    FaultFileSystem fs;
    std::vector<ReplayedOp> replayed;
    LogOptions options;
    options.segment_bytes = 512;
    {
        std::unique_ptr<SyncWAL> wal;
        REQUIRE(open_collecting(fs, replayed, wal, options));
        for (int i = 0; i < 40; ++i) REQUIRE(wal->write(put("key-" + std::to_string(i), std::string(50, 'v'))));
    }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
    options.on_replay_progress = [&](std::uint64_t read, std::uint64_t total) { calls.emplace_back(read, total); };
    RecoveryReport report;
    std::unique_ptr<SyncWAL> wal;
    REQUIRE(open_collecting(fs, replayed, wal, options, &report));
    CHECK(replayed.size() == 40);
    REQUIRE(report.segments > 3);
    REQUIRE(calls.size() == report.segments + 1);
    CHECK(calls.front().first == 0);
    for (std::size_t i = 1; i < calls.size(); ++i) {
        CHECK(calls[i].first > calls[i - 1].first);
        CHECK(calls[i].second == calls.front().second);
    }
    CHECK(calls.back().first == calls.back().second);
    CHECK(calls.back().second == report.bytes);
}
