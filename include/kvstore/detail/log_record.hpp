// The payloads of log records: one operation, or a batch of them.
//
//   kPut          varint key length | key | value (the rest)
//   kPutExpiring  expiry u64 | varint key length | key | value (the rest)
//   kErase        key (the whole payload)
//   kClear        empty
//   kBatch        varint count | count x (type u8 | varint length | payload)
//                 where each inner payload is one of the four above
#pragma once

#include <kvstore/detail/log_format.hpp>
#include <kvstore/detail/varint.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string_view>

namespace kvstore::detail::log {

/// One change, as bytes. `expiry` is meaningful for kPutExpiring only: an
/// absolute time in microseconds since the Unix epoch.
struct Operation {
    RecordType type = RecordType::kPut;
    std::string_view key;
    std::string_view value;
    std::uint64_t expiry = 0;
};

inline std::size_t payload_size(const Operation& op) noexcept {
    switch (op.type) {
        case RecordType::kPut: return varint_size(op.key.size()) + op.key.size() + op.value.size();
        case RecordType::kPutExpiring: return 8 + varint_size(op.key.size()) + op.key.size() + op.value.size();
        case RecordType::kErase: return op.key.size();
        case RecordType::kClear:
        case RecordType::kBatch: break;
    }
    return 0;
}

/// Writes payload_size(op) bytes. REQUIRES: op.type is not kBatch.
inline char* encode_payload(const Operation& op, char* out) noexcept {
    auto copy = [](char* to, std::string_view bytes) {
        if (!bytes.empty()) std::memcpy(to, bytes.data(), bytes.size());
        return to + bytes.size();
    };
    switch (op.type) {
        case RecordType::kPutExpiring:
            put_u64(out, op.expiry);
            out += 8;
            [[fallthrough]];
        case RecordType::kPut:
            out = put_varint(out, op.key.size());
            out = copy(out, op.key);
            return copy(out, op.value);
        case RecordType::kErase: return copy(out, op.key);
        case RecordType::kClear:
        case RecordType::kBatch: break;
    }
    return out;
}

/// Returns nullptr and fills `op` iff `payload` is a valid payload of a
/// record of `type` (not kBatch); otherwise returns why not. `op` views
/// `payload`'s bytes.
inline const char* decode_payload(RecordType type, std::string_view payload, Operation& op) noexcept {
    op = Operation{};
    op.type = type;
    switch (type) {
        case RecordType::kPutExpiring:
            if (payload.size() < 8) return "expiring put shorter than its expiry";
            op.expiry = get_u64(payload.data());
            payload.remove_prefix(8);
            [[fallthrough]];
        case RecordType::kPut: {
            std::uint64_t key_size = 0;
            if (!get_varint(payload, key_size)) return "put with a bad key length";
            if (key_size > payload.size()) return "put whose key runs past the payload";
            op.key = payload.substr(0, static_cast<std::size_t>(key_size));
            op.value = payload.substr(static_cast<std::size_t>(key_size));
            return nullptr;
        }
        case RecordType::kErase: op.key = payload; return nullptr;
        case RecordType::kClear: return payload.empty() ? nullptr : "clear with a payload";
        case RecordType::kBatch: break;
    }
    return "a batch inside a batch";
}

/// The payload size of a batch record holding `ops`.
template <class Range>
std::size_t batch_payload_size(const Range& ops) noexcept {
    std::size_t size = varint_size(static_cast<std::uint64_t>(std::size(ops)));
    for (const Operation& op : ops) {
        const std::size_t inner = payload_size(op);
        size += 1 + varint_size(inner) + inner;
    }
    return size;
}

/// REQUIRES: no op in `ops` is a kBatch.
template <class Range>
char* encode_batch_payload(const Range& ops, char* out) noexcept {
    out = put_varint(out, static_cast<std::uint64_t>(std::size(ops)));
    for (const Operation& op : ops) {
        *out++ = static_cast<char>(op.type);
        out = put_varint(out, payload_size(op));
        out = encode_payload(op, out);
    }
    return out;
}

/// Calls visit(const Operation&) for each operation of a batch payload,
/// after checking the whole batch, so that a damaged batch applies nothing.
/// Returns nullptr, or why the payload is not a valid batch.
template <class Visit>
const char* decode_batch_payload(std::string_view payload, Visit&& visit) {
    for (int pass = 0; pass < 2; ++pass) {
        std::string_view in = payload;
        std::uint64_t count = 0;
        if (!get_varint(in, count)) return "batch with a bad count";
        for (std::uint64_t i = 0; i < count; ++i) {
            if (in.empty()) return "batch shorter than its count";
            const auto type = static_cast<std::uint8_t>(in.front());
            in.remove_prefix(1);
            if (!is_record_type(type)) return "batch holds an unknown operation type";
            std::uint64_t size = 0;
            if (!get_varint(in, size) || size > in.size()) return "batch operation runs past the payload";
            Operation op;
            if (const char* why = decode_payload(static_cast<RecordType>(type), in.substr(0, size), op)) return why;
            in.remove_prefix(static_cast<std::size_t>(size));
            if (pass == 1) visit(static_cast<const Operation&>(op));
        }
        if (!in.empty()) return "batch longer than its operations";
    }
    return nullptr;
}

}  // namespace kvstore::detail::log
