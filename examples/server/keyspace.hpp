// What a command reads and writes through: one database's keys, either
// straight through the Store (each call atomic alone) or inside a
// Store::transact (everything the transaction does atomic together, for
// MULTI/EXEC and for the commands that read and then write).
#pragma once

#include "protocol.hpp"

#include <kvstore/status.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kvstore::server {

using TimePoint = std::chrono::system_clock::time_point;
/// When a key expires; nothing if it never does.
using Deadline = std::optional<TimePoint>;

/// A non-owning callable reference: what a virtual call can take without
/// the allocation a std::function of a capturing lambda may make.
template <class Signature>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
public:
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
    FunctionRef(F&& f) noexcept  // NOLINT: implicit, as a callable parameter
        : object_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* object, Args... args) -> R {
              return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
          }) {}
    R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

private:
    void* object_;
    R (*call_)(void*, Args...);
};

/// change(current, result): the new value of a key from its current one
/// (nullptr when absent), or an error reply's text to change nothing.
using Change = FunctionRef<std::string(const std::string* current, std::string& result)>;

/// One database's keys, as commands see them.
class Keyspace {
public:
    virtual ~Keyspace() = default;

    /// Copies the key's value (and its deadline, if asked); false if absent.
    virtual bool find(std::string_view key, std::string& value, Deadline* deadline = nullptr) = 0;
    virtual bool contains(std::string_view key) = 0;
    /// Sets the key, with `deadline` as its expiry (a past one removes it).
    virtual Status put(std::string_view key, std::string_view value, Deadline deadline = std::nullopt) = 0;
    /// As put, only if the key is absent (`if_absent`) or present; `done`
    /// says whether it wrote.
    virtual Status put_if(std::string_view key, std::string_view value, Deadline deadline, bool if_absent,
                          bool& done) = 0;
    virtual Status erase(std::string_view key, bool& erased) = 0;
    /// Sets the key to what `change` makes of it, keeping its expiry. Returns
    /// the error text of change or the store ("" when it wrote).
    virtual std::string modify(std::string_view key, Change change) = 0;
    /// The time deadlines are read against.
    virtual TimePoint now() = 0;
};

/// The keys of a Store, each call one Store call (or a one-key transaction
/// where the Store has no single call for it).
template <class StoreType>
class DirectKeyspace final : public Keyspace {
public:
    explicit DirectKeyspace(StoreType& store) : store_(store) {}

    bool find(std::string_view key, std::string& value, Deadline* deadline) override {
        if (deadline == nullptr) return store_.find(key, value);
        return in_transaction(key, [&](Keyspace& keys) { return keys.find(key, value, deadline); });
    }
    bool contains(std::string_view key) override { return store_.contains(key); }
    Status put(std::string_view key, std::string_view value, Deadline deadline) override {
        if (!deadline) return store_.put(key, value);
        return in_transaction(key, [&](Keyspace& keys) { return keys.put(key, value, deadline); });
    }
    Status put_if(std::string_view key, std::string_view value, Deadline deadline, bool if_absent,
                  bool& done) override {
        done = false;
        if (deadline)
            return in_transaction(key, [&](Keyspace& keys) { return keys.put_if(key, value, deadline, if_absent, done); });
        return if_absent ? store_.put_if_absent(key, value, done) : store_.put_if_present(key, value, done);
    }
    Status erase(std::string_view key, bool& erased) override { return store_.erase(key, &erased); }

    // A present key is changed by Store::update; an absent one is created by
    // put_if_absent, and the whole is retried if another writer created or
    // removed the key in between.
    std::string modify(std::string_view key, Change change) override {
        while (true) {
            bool found = false;
            std::string refused;
            Status status = store_.update(
                key,
                [&](std::string& value) {
                    std::string result;
                    refused = change(&value, result);
                    if (!refused.empty()) return false;
                    value = std::move(result);
                    return true;
                },
                found);
            if (!status) return "ERR " + status.to_string();
            if (!refused.empty()) return refused;
            if (found) return {};
            std::string created;
            if (std::string error = change(nullptr, created); !error.empty()) return error;
            bool inserted = false;
            if (Status put = store_.put_if_absent(key, created, inserted); !put) return "ERR " + put.to_string();
            if (inserted) return {};
        }
    }
    TimePoint now() override { return std::chrono::system_clock::now(); }

private:
    // Runs `run` on a one-key transaction's keyspace and returns its result
    // (a Status: the store's error wins; a bool as it came).
    template <class Run>
    auto in_transaction(std::string_view key, Run&& run);

    StoreType& store_;
};

/// The keys of a Store inside one Store::transact: reads see the writes
/// staged before them, and all are applied together when it ends.
template <class StoreType>
class TransactionKeyspace final : public Keyspace {
public:
    using Transaction = typename StoreType::Transaction;
    explicit TransactionKeyspace(Transaction& transaction) : transaction_(transaction) {}

    bool find(std::string_view key, std::string& value, Deadline* deadline) override {
        return transaction_.find(key, value, deadline);
    }
    bool contains(std::string_view key) override { return transaction_.contains(key); }
    Status put(std::string_view key, std::string_view value, Deadline deadline) override {
        return transaction_.put(key, value, deadline);
    }
    Status put_if(std::string_view key, std::string_view value, Deadline deadline, bool if_absent,
                  bool& done) override {
        done = transaction_.contains(key) != if_absent;
        return done ? put(key, value, deadline) : Status::ok();
    }
    Status erase(std::string_view key, bool& erased) override {
        erased = transaction_.erase(key);
        return Status::ok();
    }
    std::string modify(std::string_view key, Change change) override {
        std::string current;
        Deadline deadline;
        const bool found = transaction_.find(key, current, &deadline);
        std::string result;
        if (std::string error = change(found ? &current : nullptr, result); !error.empty()) return error;
        if (Status status = transaction_.put(key, result, deadline); !status) return "ERR " + status.to_string();
        return {};
    }
    TimePoint now() override { return transaction_.now(); }

private:
    Transaction& transaction_;
};

template <class StoreType>
template <class Run>
auto DirectKeyspace<StoreType>::in_transaction(std::string_view key, Run&& run) {
    using Result = decltype(run(std::declval<Keyspace&>()));
    Result result{};
    const Status status = store_.transact({std::string(key)}, [&](typename StoreType::Transaction& transaction) {
        TransactionKeyspace<StoreType> keys(transaction);
        result = run(keys);
        return true;
    });
    if constexpr (std::is_same_v<Result, Status>) {
        return status ? result : status;
    } else {
        return result;
    }
}

}  // namespace kvstore::server
