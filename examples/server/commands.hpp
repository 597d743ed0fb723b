// The commands kvstore-server runs against its Stores: Redis's string,
// keyspace, expiry, transaction, connection and server commands that a
// store of strings can honour, and the plain protocol's commands.
//
// A command reads and writes through a Keyspace. Alone, a command that is
// one store call (GET, SET, INCR, ...) goes straight to the Store, and one
// that reads and then writes (GETSET, RENAME, EXPIRE NX, ...) runs in a
// Store::transact over its keys; in MULTI/EXEC, the queued commands run in
// one transaction over all their keys, logged as one record. The log holds
// results, never operations: INCR logs the number it made.
#pragma once

#include "config.hpp"
#include "databases.hpp"
#include "glob.hpp"
#include "keyspace.hpp"
#include "protocol.hpp"

#include <kvstore/store.hpp>
#include <kvstore/version.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace kvstore::server {

/// A connection as CLIENT LIST shows it and CLIENT KILL reaches it.
struct ClientInfo {
    std::uint64_t id = 0;
    std::string address;  ///< the peer, "ip:port"
    std::string name;     ///< set by CLIENT SETNAME
    std::size_t db = 0;
    std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
    std::function<void()> kill;  ///< closes the connection, from any thread
};

/// Every open connection, for CLIENT LIST and CLIENT KILL.
class ClientRegistry {
public:
    /// Registers a connection and returns its id.
    std::uint64_t add(std::string address, std::function<void()> kill) {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::uint64_t id = next_id_++;
        ClientInfo& info = clients_[id];
        info.id = id;
        info.address = std::move(address);
        info.kill = std::move(kill);
        return id;
    }
    void remove(std::uint64_t id) {
        std::lock_guard<std::mutex> lock(mutex_);
        clients_.erase(id);
    }
    /// Changes what CLIENT LIST shows of connection `id`.
    template <class Change>
    void update(std::uint64_t id, Change&& change) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (const auto found = clients_.find(id); found != clients_.end()) change(found->second);
    }
    /// Copies of every connection's record, by id.
    std::vector<ClientInfo> list() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<ClientInfo> all;
        for (const auto& [id, info] : clients_) all.push_back(info);
        return all;
    }
    /// Closes every connection `which` selects; returns how many.
    template <class Which>
    std::size_t kill(Which&& which) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::size_t killed = 0;
        for (const auto& [id, info] : clients_) {
            if (!which(info)) continue;
            info.kill();
            ++killed;
        }
        return killed;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::uint64_t, ClientInfo> clients_;
    std::uint64_t next_id_ = 1;
};

/// What one connection has said so far.
struct Session {
    bool authenticated = false;
    bool close_after_reply = false;
    std::uint64_t id = 0;  ///< in the ClientRegistry; 0 if not registered
    std::string name;
    std::size_t db = 0;
    bool resp3 = false;  ///< HELLO 3 was said: replies in RESP3
    bool in_multi = false;
    bool multi_failed = false;  ///< a command was refused while queued: EXEC aborts
    std::vector<std::vector<std::string>> queued;
    /// A WATCHed key as it was when watched.
    struct Watched {
        std::size_t db;
        std::string key;
        bool present;
        std::string value;
        Deadline deadline;
    };
    std::vector<Watched> watched;
};

/// Calls, refusals and failures of one command, on one io thread.
struct CommandCounts {
    std::atomic<std::uint64_t> calls{0};
    std::atomic<std::uint64_t> rejected{0};  ///< refused before running (arity, AUTH, queued in error)
    std::atomic<std::uint64_t> failed{0};    ///< ran and answered an error
};

/// The server's figures and hooks that commands report or use.
struct ServerState {
    explicit ServerState(const ServerConfig& server_config)
        : config(server_config), max_reply_size(server_config.max_reply_size),
          max_connections(server_config.max_connections) {}
    const ServerConfig& config;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::atomic<std::size_t> connected{0};
    std::atomic<std::uint64_t> connections_total{0};
    std::atomic<std::uint64_t> rejected_connections{0};
    std::atomic<std::uint64_t> commands{0};
    std::atomic<std::uint64_t> protocol_errors{0};
    /// The settings CONFIG SET changes while the server runs.
    std::atomic<std::size_t> max_reply_size;
    std::atomic<std::size_t> max_connections;
    ClientRegistry clients;
    /// Each io thread's command counts, by command name, for INFO commandstats.
    std::vector<std::unordered_map<std::string, CommandCounts>*> command_counts;
    /// Starts a checkpoint of every open database on another thread; false if one is running.
    std::function<bool()> start_background_save;
    /// Stops the server as SIGTERM does.
    std::function<void()> shut_down;

    void reset_counts() {
        commands = 0;
        protocol_errors = 0;
        connections_total = 0;
        rejected_connections = 0;
        for (auto* counts : command_counts) {
            for (auto& [name, count] : *counts) {
                count.calls = 0;
                count.rejected = 0;
                count.failed = 0;
            }
        }
    }
};

template <class StoreType>
class CommandExecutor {
public:
    CommandExecutor(Databases<StoreType>& databases, ServerState& state) : databases_(databases), state_(state) {
        for (const auto& [name, command] : table()) entries_.emplace(name, Entry{&command, &counts_[name]});
        state_.command_counts.push_back(&counts_);
    }

    /// Runs one request and appends its reply.
    void execute(const Request& request, Session& session, Reply& reply) {
        state_.commands.fetch_add(1, std::memory_order_relaxed);
        name_.assign(request.args[0].data(), request.args[0].size());
        std::transform(name_.begin(), name_.end(), name_.begin(), ascii_upper);
        const auto found = entries_.find(name_);
        if (found == entries_.end()) {
            if (session.in_multi) session.multi_failed = true;
            return unknown(request.args, reply);
        }
        const Command& command = *found->second.command;
        CommandCounts& counts = *found->second.counts;
        if (std::string why; refused(command, request.args, session, why)) {
            counts.rejected.fetch_add(1, std::memory_order_relaxed);
            if (session.in_multi) session.multi_failed = true;
            return reply.error(why);
        }
        if (session.in_multi && !(command.flags & kTransactionControl)) {
            session.queued.emplace_back(request.args.begin(), request.args.end());
            return reply.status("QUEUED");
        }
        counts.calls.fetch_add(1, std::memory_order_relaxed);
        const std::size_t mark = reply.size();
        run(command, request.args, session, reply);
        if (reply.is_error_from(mark)) counts.failed.fetch_add(1, std::memory_order_relaxed);
    }

private:
    using Args = std::vector<std::string_view>;
    enum Flags : unsigned {
        kNone = 0,
        // Reaches beyond its own keys (a whole database, another one, the
        // server or the connection): in EXEC it runs between transactions.
        kOutside = 1,
        // MULTI, EXEC, DISCARD, WATCH, UNWATCH: run at once, never queued.
        kTransactionControl = 2,
        // Allowed before AUTH.
        kNoAuth = 4,
    };
    struct Command {
        long min_args;
        long max_args;  // -1: any number
        // The key arguments: first (0: none), last (-1: the last argument), step.
        long first_key;
        long last_key;
        long key_step;
        unsigned flags;
        void (CommandExecutor::*run)(const Args&, Session&, Reply&);
    };

    static const std::unordered_map<std::string, Command>& table() {
        using E = CommandExecutor;
        static const std::unordered_map<std::string, Command> commands = {
            {"GET", {2, 2, 1, 1, 1, kNone, &E::get}},
            {"SET", {3, -1, 1, 1, 1, kNone, &E::set}},
            {"SETNX", {3, 3, 1, 1, 1, kNone, &E::setnx}},
            {"SETEX", {4, 4, 1, 1, 1, kNone, &E::setex}},
            {"PSETEX", {4, 4, 1, 1, 1, kNone, &E::setex}},
            {"GETSET", {3, 3, 1, 1, 1, kNone, &E::getset}},
            {"GETDEL", {2, 2, 1, 1, 1, kNone, &E::getdel}},
            {"GETEX", {2, -1, 1, 1, 1, kNone, &E::getex}},
            {"MSET", {3, -1, 1, -1, 2, kNone, &E::mset}},
            {"MSETNX", {3, -1, 1, -1, 2, kNone, &E::mset}},
            {"MGET", {2, -1, 1, -1, 1, kNone, &E::mget}},
            {"STRLEN", {2, 2, 1, 1, 1, kNone, &E::strlen}},
            {"APPEND", {3, 3, 1, 1, 1, kNone, &E::append}},
            {"GETRANGE", {4, 4, 1, 1, 1, kNone, &E::getrange}},
            {"SUBSTR", {4, 4, 1, 1, 1, kNone, &E::getrange}},
            {"SETRANGE", {4, 4, 1, 1, 1, kNone, &E::setrange}},
            {"GETBIT", {3, 3, 1, 1, 1, kNone, &E::getbit}},
            {"SETBIT", {4, 4, 1, 1, 1, kNone, &E::setbit}},
            {"LCS", {3, -1, 1, 2, 1, kNone, &E::lcs}},
            {"INCR", {2, 2, 1, 1, 1, kNone, &E::incr}},
            {"DECR", {2, 2, 1, 1, 1, kNone, &E::incr}},
            {"INCRBY", {3, 3, 1, 1, 1, kNone, &E::incr}},
            {"DECRBY", {3, 3, 1, 1, 1, kNone, &E::incr}},
            {"INCRBYFLOAT", {3, 3, 1, 1, 1, kNone, &E::incrbyfloat}},
            {"DEL", {2, -1, 1, -1, 1, kNone, &E::del}},
            {"UNLINK", {2, -1, 1, -1, 1, kNone, &E::del}},
            {"EXISTS", {2, -1, 1, -1, 1, kNone, &E::exists}},
            {"TOUCH", {2, -1, 1, -1, 1, kNone, &E::exists}},
            {"TYPE", {2, 2, 1, 1, 1, kNone, &E::type}},
            {"RENAME", {3, 3, 1, 2, 1, kNone, &E::rename}},
            {"RENAMENX", {3, 3, 1, 2, 1, kNone, &E::rename}},
            {"COPY", {3, 6, 1, 2, 1, kOutside, &E::copy}},
            {"MOVE", {3, 3, 1, 1, 1, kOutside, &E::move}},
            {"OBJECT", {2, 3, 2, 2, 1, kNone, &E::object}},
            {"EXPIRE", {3, -1, 1, 1, 1, kNone, &E::expire}},
            {"PEXPIRE", {3, -1, 1, 1, 1, kNone, &E::expire}},
            {"EXPIREAT", {3, -1, 1, 1, 1, kNone, &E::expire}},
            {"PEXPIREAT", {3, -1, 1, 1, 1, kNone, &E::expire}},
            {"TTL", {2, 2, 1, 1, 1, kNone, &E::ttl}},
            {"PTTL", {2, 2, 1, 1, 1, kNone, &E::ttl}},
            {"EXPIRETIME", {2, 2, 1, 1, 1, kNone, &E::ttl}},
            {"PEXPIRETIME", {2, 2, 1, 1, 1, kNone, &E::ttl}},
            {"PERSIST", {2, 2, 1, 1, 1, kNone, &E::persist}},
            {"KEYS", {2, 2, 0, 0, 0, kOutside, &E::keys}},
            {"SCAN", {2, -1, 0, 0, 0, kOutside, &E::scan}},
            {"RANDOMKEY", {1, 1, 0, 0, 0, kOutside, &E::randomkey}},
            {"DBSIZE", {1, 1, 0, 0, 0, kOutside, &E::size}},
            {"FLUSHDB", {1, 2, 0, 0, 0, kOutside, &E::flush}},
            {"FLUSHALL", {1, 2, 0, 0, 0, kOutside, &E::flush}},
            {"SELECT", {2, 2, 0, 0, 0, kOutside, &E::select}},
            {"SWAPDB", {3, 3, 0, 0, 0, kOutside, &E::swapdb}},
            {"MULTI", {1, 1, 0, 0, 0, kTransactionControl, &E::multi}},
            {"EXEC", {1, 1, 0, 0, 0, kTransactionControl, &E::exec}},
            {"DISCARD", {1, 1, 0, 0, 0, kTransactionControl, &E::discard}},
            {"WATCH", {2, -1, 1, -1, 1, kTransactionControl, &E::watch}},
            {"UNWATCH", {1, 1, 0, 0, 0, kTransactionControl, &E::unwatch}},
            {"PING", {1, 2, 0, 0, 0, kNone, &E::ping}},
            {"ECHO", {2, 2, 0, 0, 0, kNone, &E::echo}},
            {"TIME", {1, 1, 0, 0, 0, kNone, &E::time}},
            {"HELLO", {1, -1, 0, 0, 0, kOutside | kNoAuth, &E::hello}},
            {"CLIENT", {2, -1, 0, 0, 0, kOutside, &E::client}},
            {"INFO", {1, -1, 0, 0, 0, kOutside, &E::info}},
            {"COMMAND", {1, -1, 0, 0, 0, kOutside, &E::command}},
            {"CONFIG", {2, -1, 0, 0, 0, kOutside, &E::config}},
            {"DEBUG", {2, -1, 0, 0, 0, kOutside, &E::debug}},
            {"FUNCTION", {2, 3, 0, 0, 0, kOutside, &E::function}},
            {"SAVE", {1, 1, 0, 0, 0, kOutside, &E::save}},
            {"BGSAVE", {1, 2, 0, 0, 0, kOutside, &E::bgsave}},
            {"QUIT", {1, 1, 0, 0, 0, kOutside | kNoAuth, &E::quit}},
            {"AUTH", {2, 3, 0, 0, 0, kOutside | kNoAuth, &E::auth}},
            {"SHUTDOWN", {1, 2, 0, 0, 0, kOutside, &E::shutdown}},
            // The plain protocol's names.
            {"PUT", {3, 3, 1, 1, 1, kNone, &E::set}},
            {"DELETE", {2, 2, 1, 1, 1, kNone, &E::del}},
            {"SIZE", {1, 1, 0, 0, 0, kOutside, &E::size}},
            {"FLUSH", {1, 1, 0, 0, 0, kOutside, &E::flush}},
            {"STATS", {1, 1, 0, 0, 0, kOutside, &E::info}},
            {"COMPACT", {1, 1, 0, 0, 0, kOutside, &E::save}},
        };
        return commands;
    }

    static std::string lower(std::string text) {
        for (char& c : text) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        return text;
    }
    static bool is(std::string_view arg, const char* upper) {
        return std::equal(arg.begin(), arg.end(), upper, upper + std::char_traits<char>::length(upper),
                          [](char a, char b) { return ascii_upper(a) == b; });
    }
    static std::string upper(std::string_view text) {
        std::string out(text);
        std::transform(out.begin(), out.end(), out.begin(), ascii_upper);
        return out;
    }

    void unknown(const Args& args, Reply& reply) {
        std::string message =
            "ERR unknown command '" + std::string(args[0].substr(0, 128)) + "', with args beginning with: ";
        for (std::size_t i = 1; i < args.size() && message.size() < 512; ++i)
            message += "'" + std::string(args[i].substr(0, 128)) + "' ";
        reply.error(message);
    }

    // Whether the command may not run as asked; `why` says why.
    bool refused(const Command& command, const Args& args, const Session& session, std::string& why) const {
        const auto argc = static_cast<long>(args.size());
        if (argc < command.min_args || (command.max_args >= 0 && argc > command.max_args)) {
            why = "ERR wrong number of arguments for '" + lower(name_) + "' command";
            return true;
        }
        if (!session.authenticated && !state_.config.requirepass.empty() && !(command.flags & kNoAuth)) {
            why = "NOAUTH Authentication required.";
            return true;
        }
        return false;
    }

    // The key arguments of a command, as its table entry places them.
    static void add_keys(const Command& command, const Args& args, std::vector<std::string>& keys) {
        if (command.first_key == 0) return;
        const long last = command.last_key < 0 ? static_cast<long>(args.size()) + command.last_key : command.last_key;
        for (long i = command.first_key; i <= last && i < static_cast<long>(args.size()); i += command.key_step)
            keys.emplace_back(args[static_cast<std::size_t>(i)]);
    }

    // Runs a command outside any transaction of this executor's: its own
    // keys straight through the database's store.
    void run(const Command& command, const Args& args, Session& session, Reply& reply) {
        Status opened;
        store_ = databases_.get(session.db, opened);
        if (store_ == nullptr) return failed(opened, reply);
        DirectKeyspace<StoreType> direct(*store_);
        keys_ = &direct;
        (this->*command.run)(args, session, reply);
        keys_ = nullptr;
    }

    // Runs body() with keys_ inside one transaction over `keys`: at once if a
    // transaction is already running (EXEC), else in a Store::transact of its
    // own. A store failure replaces what body replied.
    template <class Body>
    void atomically(const std::vector<std::string>& keys, Reply& reply, Body&& body) {
        if (in_transaction_) return body();
        const std::size_t mark = reply.size();
        Keyspace* outside = keys_;
        const Status status = store_->transact(keys, [&](typename StoreType::Transaction& transaction) {
            TransactionKeyspace<StoreType> inside(transaction);
            Scope scope(*this, inside);
            body();
            return true;
        });
        keys_ = outside;
        if (!status) {
            reply.discard_from(mark);
            failed(status, reply);
        }
    }

    // keys_ and in_transaction_ for the length of a transaction, however it ends.
    struct Scope {
        Scope(CommandExecutor& executor, Keyspace& keys) : executor_(executor), outer_(executor.keys_) {
            executor_.keys_ = &keys;
            executor_.in_transaction_ = true;
        }
        ~Scope() {
            executor_.keys_ = outer_;
            executor_.in_transaction_ = false;
        }
        CommandExecutor& executor_;
        Keyspace* outer_;
    };

    // A store error: what the store said, Redis-style; a write refused for
    // room is OOM, which Redis's clients know as an out-of-memory refusal.
    static void failed(const Status& status, Reply& reply) {
        reply.error((status.code() == StatusCode::kNoRoom ? "OOM " : "ERR ") + status.to_string());
    }
    static void not_integer(Reply& reply) { reply.error("ERR value is not an integer or out of range"); }

    // ---- Strings ----

    void get(const Args& args, Session&, Reply& reply) { reply_value(args[1], reply); }

    void reply_value(std::string_view key, Reply& reply) {
        if (keys_->find(key, value_)) {
            reply.bulk(value_);
        } else {
            reply.null();
        }
    }

    // An expiry option's deadline: EX/PX seconds or milliseconds from now,
    // EXAT/PXAT a Unix time. False, with the reply, when it is invalid.
    bool parse_deadline(std::string_view option, std::string_view amount_text, Deadline& deadline, Reply& reply) {
        long long amount = 0;
        if (!parse_integer(amount_text, amount)) {
            not_integer(reply);
            return false;
        }
        const bool seconds = is(option, "EX") || is(option, "EXAT");
        if (amount <= 0 || (seconds && amount > INT64_MAX / 1000)) {
            reply.error("ERR invalid expire time in '" + lower(name_) + "' command");
            return false;
        }
        const long long ms = seconds ? amount * 1000 : amount;
        const bool absolute = is(option, "EXAT") || is(option, "PXAT");
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(keys_->now().time_since_epoch());
        if (!absolute && ms > INT64_MAX - now.count()) {
            reply.error("ERR invalid expire time in '" + lower(name_) + "' command");
            return false;
        }
        deadline = at_unix_ms(absolute ? ms : now.count() + ms);
        return true;
    }

    // The time `ms` after the Unix epoch. Redis takes deadlines to the year
    // 292 million; the clock's time points end in 2262, and a later deadline
    // is held as that end, one before 1970 as 1970 (already past).
    static TimePoint at_unix_ms(long long ms) {
        constexpr long long kLast = std::chrono::duration_cast<std::chrono::milliseconds>(TimePoint::max().time_since_epoch()).count();
        return TimePoint(std::chrono::milliseconds(std::clamp(ms, 0LL, kLast)));
    }

    // SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]
    void set(const Args& args, Session&, Reply& reply) {
        enum { kAlways, kIfAbsent, kIfPresent } condition = kAlways;
        bool get_old = false, keep_ttl = false, has_expiry = false;
        Deadline deadline;
        for (std::size_t i = 3; i < args.size(); ++i) {
            const bool has_next = i + 1 < args.size();
            if (is(args[i], "NX") && condition == kAlways) {
                condition = kIfAbsent;
            } else if (is(args[i], "XX") && condition == kAlways) {
                condition = kIfPresent;
            } else if (is(args[i], "GET") && !get_old) {
                get_old = true;
            } else if (is(args[i], "KEEPTTL") && !keep_ttl && !has_expiry) {
                keep_ttl = true;
            } else if ((is(args[i], "EX") || is(args[i], "PX") || is(args[i], "EXAT") || is(args[i], "PXAT")) &&
                       has_next && !has_expiry && !keep_ttl) {
                if (!parse_deadline(args[i], args[i + 1], deadline, reply)) return;
                has_expiry = true;
                ++i;
            } else {
                return reply.error("ERR syntax error");
            }
        }
        const std::string_view key = args[1], value = args[2];
        if (!get_old && !keep_ttl) {
            bool done = true;
            const Status status = condition == kAlways ? keys_->put(key, value, deadline)
                                                       : keys_->put_if(key, value, deadline, condition == kIfAbsent, done);
            if (!status) return failed(status, reply);
            return done ? reply.status("OK") : reply.null();
        }
        atomically({std::string(key)}, reply, [&] {
            std::string old;
            Deadline old_deadline;
            const bool present = keys_->find(key, old, &old_deadline);
            const bool write = condition == kAlways || (condition == kIfAbsent) != present;
            if (write) {
                if (Status status = keys_->put(key, value, keep_ttl ? old_deadline : deadline); !status)
                    return failed(status, reply);
            }
            if (get_old) return present ? reply.bulk(old) : reply.null();
            return write ? reply.status("OK") : reply.null();
        });
    }

    void setnx(const Args& args, Session&, Reply& reply) {
        bool inserted = false;
        if (Status status = keys_->put_if(args[1], args[2], std::nullopt, true, inserted); !status)
            return failed(status, reply);
        reply.integer(inserted ? 1 : 0);
    }

    // SETEX key seconds value, PSETEX key milliseconds value.
    void setex(const Args& args, Session&, Reply& reply) {
        Deadline deadline;
        if (!parse_deadline(name_ == "SETEX" ? "EX" : "PX", args[2], deadline, reply)) return;
        if (Status status = keys_->put(args[1], args[3], deadline); !status) return failed(status, reply);
        reply.status("OK");
    }

    void getset(const Args& args, Session&, Reply& reply) {
        atomically({std::string(args[1])}, reply, [&] {
            const bool present = keys_->find(args[1], value_);
            if (Status status = keys_->put(args[1], args[2]); !status) return failed(status, reply);
            return present ? reply.bulk(value_) : reply.null();
        });
    }

    void getdel(const Args& args, Session&, Reply& reply) {
        atomically({std::string(args[1])}, reply, [&] {
            if (!keys_->find(args[1], value_)) return reply.null();
            bool erased = false;
            if (Status status = keys_->erase(args[1], erased); !status) return failed(status, reply);
            reply.bulk(value_);
        });
    }

    // GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]
    void getex(const Args& args, Session&, Reply& reply) {
        bool persist = false, change = false;
        Deadline deadline;
        for (std::size_t i = 2; i < args.size(); ++i) {
            const bool has_next = i + 1 < args.size();
            if (is(args[i], "PERSIST") && !change) {
                persist = change = true;
            } else if ((is(args[i], "EX") || is(args[i], "PX") || is(args[i], "EXAT") || is(args[i], "PXAT")) &&
                       has_next && !change) {
                if (!parse_deadline(args[i], args[i + 1], deadline, reply)) return;
                change = true;
                ++i;
            } else {
                return reply.error("ERR syntax error");
            }
        }
        if (!change) return reply_value(args[1], reply);
        atomically({std::string(args[1])}, reply, [&] {
            Deadline current;
            if (!keys_->find(args[1], value_, &current)) return reply.null();
            if (!persist || current) {
                if (Status status = keys_->put(args[1], value_, persist ? std::nullopt : deadline); !status)
                    return failed(status, reply);
            }
            reply.bulk(value_);
        });
    }

    // MSET and MSETNX: all the pairs as one write; MSETNX writes none if
    // any key is there.
    void mset(const Args& args, Session&, Reply& reply) {
        if (args.size() % 2 != 1) return reply.error("ERR wrong number of arguments for '" + lower(name_) + "' command");
        std::vector<std::string> keys;
        for (std::size_t i = 1; i < args.size(); i += 2) keys.emplace_back(args[i]);
        const bool only_new = name_ == "MSETNX";
        atomically(keys, reply, [&] {
            if (only_new) {
                for (const std::string& key : keys) {
                    if (keys_->contains(key)) return reply.integer(0);
                }
            }
            for (std::size_t i = 1; i < args.size(); i += 2) {
                if (Status status = keys_->put(args[i], args[i + 1]); !status) return failed(status, reply);
            }
            return only_new ? reply.integer(1) : reply.status("OK");
        });
    }

    // Each key is read alone, as fast as GET (MULTI/EXEC reads several as
    // one). One MGET may name a large value many times over: its reply is
    // given up past max_reply_size, as a request is past max_query_buffer.
    void mget(const Args& args, Session&, Reply& reply) {
        const std::size_t start = reply.size();
        const std::size_t limit = state_.max_reply_size.load(std::memory_order_relaxed);
        reply.array(args.size() - 1);
        for (std::size_t i = 1; i < args.size(); ++i) {
            reply_value(args[i], reply);
            if (reply.size() - start > limit) {
                reply.discard_from(start);
                return reply.error("ERR the reply to MGET would exceed max_reply_size (" + std::to_string(limit) +
                                   " bytes)");
            }
        }
    }

    // INCR, DECR, INCRBY, DECRBY: the number is parsed and stored as text,
    // and the log holds the result, never the increment.
    void incr(const Args& args, Session&, Reply& reply) {
        long long delta = 1;
        if (args.size() == 3 && !parse_integer(args[2], delta)) return not_integer(reply);
        if (name_[0] == 'D') {
            if (delta == INT64_MIN) return reply.error("ERR decrement would overflow");
            delta = -delta;
        }
        long long result = 0;
        const std::string error = keys_->modify(args[1], [&](const std::string* current, std::string& out) {
            long long value = 0;
            if (current != nullptr && !parse_integer(*current, value))
                return std::string("ERR value is not an integer or out of range");
            if ((delta > 0 && value > INT64_MAX - delta) || (delta < 0 && value < INT64_MIN - delta))
                return std::string("ERR increment or decrement would overflow");
            result = value + delta;
            out = std::to_string(result);
            return std::string();
        });
        if (!error.empty()) return reply.error(error);
        reply.integer(result);
    }

    // Redis's float syntax for INCRBYFLOAT: what strtold reads whole, with
    // no space around it, no NaN and no overflow.
    static bool parse_float(std::string_view text, long double& value) {
        if (text.empty() || text.size() > 5000 || std::isspace(static_cast<unsigned char>(text.front())) ||
            std::isspace(static_cast<unsigned char>(text.back())))
            return false;
        const std::string copy(text);
        char* end = nullptr;
        errno = 0;
        value = std::strtold(copy.c_str(), &end);
        return end == copy.c_str() + copy.size() && errno != ERANGE && !std::isnan(value);
    }

    // As Redis prints INCRBYFLOAT's result: 17 decimals, trailing zeros cut.
    static std::string format_float(long double value) {
        char buffer[5200];
        const int length = std::snprintf(buffer, sizeof buffer, "%.17Lf", value);
        std::string text(buffer, static_cast<std::size_t>(std::clamp(length, 0, static_cast<int>(sizeof buffer) - 1)));
        if (text.find('.') != std::string::npos) {
            while (text.back() == '0') text.pop_back();
            if (text.back() == '.') text.pop_back();
        }
        if (text == "-0") text = "0";
        return text;
    }

    void incrbyfloat(const Args& args, Session&, Reply& reply) {
        long double delta = 0;
        if (!parse_float(args[2], delta)) return reply.error("ERR value is not a valid float");
        std::string result;
        const std::string error = keys_->modify(args[1], [&](const std::string* current, std::string& out) {
            long double value = 0;
            if (current != nullptr && !parse_float(*current, value)) return std::string("ERR value is not a valid float");
            value += delta;
            if (std::isnan(value) || std::isinf(value))
                return std::string("ERR increment would produce NaN or Infinity");
            out = result = format_float(value);
            return std::string();
        });
        if (!error.empty()) return reply.error(error);
        reply.bulk(result);
    }

    // Checked before anything is allocated: an offset can ask for 2^63 bytes.
    bool fits_value(unsigned long long size, Reply& reply) {
        if (size <= state_.config.max_value_size) return true;
        reply.error("ERR string exceeds maximum allowed size (max_value_size " +
                    std::to_string(state_.config.max_value_size) + ")");
        return false;
    }

    void append(const Args& args, Session&, Reply& reply) {
        std::size_t length = 0;
        const std::string error = keys_->modify(args[1], [&](const std::string* current, std::string& out) {
            if (current != nullptr) out = *current;
            out += args[2];
            length = out.size();
            return std::string();
        });
        if (!error.empty()) return reply.error(error);
        reply.integer(static_cast<long long>(length));
    }

    long long length_of(std::string_view key) {
        return keys_->find(key, value_) ? static_cast<long long>(value_.size()) : 0;
    }

    void strlen(const Args& args, Session&, Reply& reply) { reply.integer(length_of(args[1])); }

    // GETRANGE key start end, with Redis's index rules: negative counts from
    // the end, both ends clamped, an empty reply when start passes end.
    void getrange(const Args& args, Session&, Reply& reply) {
        long long start = 0, end = 0;
        if (!parse_integer(args[2], start) || !parse_integer(args[3], end)) return not_integer(reply);
        if (!keys_->find(args[1], value_)) value_.clear();
        const auto length = static_cast<long long>(value_.size());
        if (start < 0 && end < 0 && start > end) return reply.bulk("");
        if (start < 0) start = std::max(0LL, length + start);
        if (end < 0) end = std::max(0LL, length + end);
        end = std::min(end, length - 1);
        if (length == 0 || start > end) return reply.bulk("");
        reply.bulk(std::string_view(value_).substr(static_cast<std::size_t>(start),
                                                   static_cast<std::size_t>(end - start + 1)));
    }

    // SETRANGE key offset value: writes value at offset, zero-padding a
    // shorter string; an empty value creates nothing and changes nothing.
    void setrange(const Args& args, Session&, Reply& reply) {
        long long offset = 0;
        if (!parse_integer(args[2], offset)) return not_integer(reply);
        if (offset < 0) return reply.error("ERR offset is out of range");
        const std::string_view piece = args[3];
        if (piece.empty()) return reply.integer(length_of(args[1]));
        if (!fits_value(static_cast<unsigned long long>(offset) + piece.size(), reply)) return;
        const auto at = static_cast<std::size_t>(offset);
        std::size_t length = 0;
        const std::string error = keys_->modify(args[1], [&](const std::string* current, std::string& out) {
            if (current != nullptr) out = *current;
            if (out.size() < at + piece.size()) out.resize(at + piece.size(), '\0');
            out.replace(at, piece.size(), piece);
            length = out.size();
            return std::string();
        });
        if (!error.empty()) return reply.error(error);
        reply.integer(static_cast<long long>(length));
    }

    // A bit offset as Redis takes it: 0 to 2^32 - 1.
    static bool parse_bit_offset(std::string_view text, std::uint64_t& offset) {
        long long value = 0;
        if (!parse_integer(text, value) || value < 0 || value >= (1LL << 32)) return false;
        offset = static_cast<std::uint64_t>(value);
        return true;
    }

    static int bit_at(const std::string& value, std::uint64_t offset) {
        const std::uint64_t byte = offset >> 3;
        if (byte >= value.size()) return 0;
        return (static_cast<unsigned char>(value[byte]) >> (7 - (offset & 7))) & 1;
    }

    void getbit(const Args& args, Session&, Reply& reply) {
        std::uint64_t offset = 0;
        if (!parse_bit_offset(args[2], offset)) return reply.error("ERR bit offset is not an integer or out of range");
        if (!keys_->find(args[1], value_)) return reply.integer(0);
        reply.integer(bit_at(value_, offset));
    }

    // SETBIT key offset 0|1: bit 0 is the most significant of byte 0, as
    // in Redis; the string grows with zero bytes. Replies the old bit.
    void setbit(const Args& args, Session&, Reply& reply) {
        std::uint64_t offset = 0;
        if (!parse_bit_offset(args[2], offset)) return reply.error("ERR bit offset is not an integer or out of range");
        if (args[3] != "0" && args[3] != "1") return reply.error("ERR bit is not an integer or out of range");
        if (!fits_value((offset >> 3) + 1, reply)) return;
        int old = 0;
        const std::string error = keys_->modify(args[1], [&](const std::string* current, std::string& out) {
            if (current != nullptr) out = *current;
            const std::size_t byte = static_cast<std::size_t>(offset >> 3);
            if (out.size() <= byte) out.resize(byte + 1, '\0');
            old = bit_at(out, offset);
            const auto mask = static_cast<unsigned char>(1u << (7 - (offset & 7)));
            auto& target = reinterpret_cast<unsigned char&>(out[byte]);
            target = static_cast<unsigned char>(args[3] == "1" ? (target | mask) : (target & ~mask));
            return std::string();
        });
        if (!error.empty()) return reply.error(error);
        reply.integer(old);
    }

    // LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest
    // common subsequence by dynamic programming, O(|a| x |b|) cells,
    // refused past max_reply_size of table.
    void lcs(const Args& args, Session&, Reply& reply) {
        bool length_only = false, indexes = false, with_match_length = false;
        long long min_match = 0;
        for (std::size_t i = 3; i < args.size(); ++i) {
            if (is(args[i], "LEN")) {
                length_only = true;
            } else if (is(args[i], "IDX")) {
                indexes = true;
            } else if (is(args[i], "WITHMATCHLEN")) {
                with_match_length = true;
            } else if (is(args[i], "MINMATCHLEN") && i + 1 < args.size()) {
                if (!parse_integer(args[++i], min_match)) return not_integer(reply);
                min_match = std::max(0LL, min_match);
            } else {
                return reply.error("ERR syntax error");
            }
        }
        if (length_only && indexes)
            return reply.error("ERR If you want both the length and indexes, please just use IDX.");
        std::string a, b;
        atomically({std::string(args[1]), std::string(args[2])}, reply, [&] {
            keys_->find(args[1], a);
            keys_->find(args[2], b);
        });
        const std::size_t rows = a.size() + 1, columns = b.size() + 1;
        if (rows > 0 && columns > state_.max_reply_size.load() / sizeof(std::uint32_t) / rows)
            return reply.error("ERR LCS of strings this long would need more than max_reply_size of memory");
        std::vector<std::uint32_t> table(rows * columns, 0);
        const auto cell = [&](std::size_t i, std::size_t j) -> std::uint32_t& { return table[i * columns + j]; };
        for (std::size_t i = 1; i < rows; ++i) {
            for (std::size_t j = 1; j < columns; ++j) {
                cell(i, j) = a[i - 1] == b[j - 1] ? cell(i - 1, j - 1) + 1 : std::max(cell(i - 1, j), cell(i, j - 1));
            }
        }
        const std::uint32_t length = cell(rows - 1, columns - 1);
        if (length_only) return reply.integer(length);
        // Walking back from the end gives the subsequence last byte first,
        // and the runs of consecutive matches as ranges in a and in b.
        std::string common(length, '\0');
        struct Match {
            std::size_t a_start, a_end, b_start, b_end;
        };
        std::vector<Match> matches;
        std::optional<Match> run;
        const auto close_run = [&] {
            if (run && static_cast<long long>(run->a_end - run->a_start + 1) >= min_match) matches.push_back(*run);
            run.reset();
        };
        std::size_t i = rows - 1, j = columns - 1, k = length;
        while (i > 0 && j > 0) {
            if (a[i - 1] == b[j - 1]) {
                common[--k] = a[i - 1];
                if (run && run->a_start == i && run->b_start == j) {
                    run->a_start = i - 1;
                    run->b_start = j - 1;
                } else {
                    close_run();
                    run = Match{i - 1, i - 1, j - 1, j - 1};
                }
                --i;
                --j;
            } else if (cell(i - 1, j) > cell(i, j - 1)) {
                --i;
            } else {
                --j;
            }
        }
        close_run();
        if (!indexes) return reply.bulk(common);
        reply.map_or_array(2);
        reply.bulk("matches");
        reply.array(matches.size());
        for (const Match& m : matches) {
            reply.array(with_match_length ? 3 : 2);
            reply.array(2);
            reply.integer(static_cast<long long>(m.a_start));
            reply.integer(static_cast<long long>(m.a_end));
            reply.array(2);
            reply.integer(static_cast<long long>(m.b_start));
            reply.integer(static_cast<long long>(m.b_end));
            if (with_match_length) reply.integer(static_cast<long long>(m.a_end - m.a_start + 1));
        }
        reply.bulk("len");
        reply.integer(length);
    }

    // ---- Keys ----

    // DEL and UNLINK; several keys are removed as one write.
    void del(const Args& args, Session&, Reply& reply) {
        const auto remove = [&] {
            long long removed = 0;
            for (std::size_t i = 1; i < args.size(); ++i) {
                bool erased = false;
                if (Status status = keys_->erase(args[i], erased); !status) return failed(status, reply);
                removed += erased ? 1 : 0;
            }
            if (!reply.plain()) return reply.integer(removed);
            if (removed > 0) return reply.status("DELETED");
            reply.null();
        };
        if (args.size() == 2) return remove();
        atomically(std::vector<std::string>(args.begin() + 1, args.end()), reply, remove);
    }

    void exists(const Args& args, Session&, Reply& reply) {
        long long present = 0;
        for (std::size_t i = 1; i < args.size(); ++i) present += keys_->contains(args[i]) ? 1 : 0;
        reply.integer(present);
    }

    void type(const Args& args, Session&, Reply& reply) { reply.status(keys_->contains(args[1]) ? "string" : "none"); }

    // RENAME and RENAMENX key newkey: the value and its deadline move as one write.
    void rename(const Args& args, Session&, Reply& reply) {
        const bool only_new = name_ == "RENAMENX";
        atomically({std::string(args[1]), std::string(args[2])}, reply, [&] {
            Deadline deadline;
            if (!keys_->find(args[1], value_, &deadline)) return reply.error("ERR no such key");
            if (args[1] == args[2]) return only_new ? reply.integer(0) : reply.status("OK");
            if (only_new && keys_->contains(args[2])) return reply.integer(0);
            bool erased = false;
            Status status = keys_->put(args[2], value_, deadline);
            if (status) status = keys_->erase(args[1], erased);
            if (!status) return failed(status, reply);
            return only_new ? reply.integer(1) : reply.status("OK");
        });
    }

    // A database index argument; false with the reply if it is not one.
    bool parse_db(std::string_view text, std::size_t& db, Reply& reply) {
        long long index = 0;
        if (!parse_integer(text, index)) {
            not_integer(reply);
            return false;
        }
        if (index < 0 || static_cast<unsigned long long>(index) >= databases_.count()) {
            reply.error("ERR DB index is out of range");
            return false;
        }
        db = static_cast<std::size_t>(index);
        return true;
    }

    // The value and deadline of `key` in `store`, read as one.
    static bool read_with_deadline(StoreType& store, std::string_view key, std::string& value, Deadline& deadline,
                                   Status& status) {
        bool found = false;
        status = store.transact({std::string(key)}, [&](typename StoreType::Transaction& transaction) {
            found = transaction.find(key, value, &deadline);
            return false;
        });
        return found && status;
    }

    // Writes key -> value (with `deadline`) into `store` unless the key is
    // there and `replace` is false; `done` says whether it wrote.
    static Status write_into(StoreType& store, std::string_view key, const std::string& value, Deadline deadline,
                             bool replace, bool& done) {
        done = false;
        Status put;
        const Status status = store.transact({std::string(key)}, [&](typename StoreType::Transaction& transaction) {
            if (!replace && transaction.contains(key)) return false;
            put = transaction.put(key, value, deadline);
            done = put.is_ok();
            return done;
        });
        return status ? put : status;
    }

    // COPY source destination [DB index] [REPLACE]. Within one database it
    // is one write; into another it reads, then writes there.
    void copy(const Args& args, Session& session, Reply& reply) {
        std::size_t target_db = session.db;
        bool replace = false;
        for (std::size_t i = 3; i < args.size(); ++i) {
            if (is(args[i], "REPLACE")) {
                replace = true;
            } else if (is(args[i], "DB") && i + 1 < args.size()) {
                if (!parse_db(args[++i], target_db, reply)) return;
            } else {
                return reply.error("ERR syntax error");
            }
        }
        if (target_db == session.db && args[1] == args[2])
            return reply.error("ERR source and destination objects are the same");
        if (target_db == session.db) {
            return atomically({std::string(args[1]), std::string(args[2])}, reply, [&] {
                Deadline deadline;
                if (!keys_->find(args[1], value_, &deadline)) return reply.integer(0);
                if (!replace && keys_->contains(args[2])) return reply.integer(0);
                if (Status status = keys_->put(args[2], value_, deadline); !status) return failed(status, reply);
                reply.integer(1);
            });
        }
        Status status;
        StoreType* target = databases_.get(target_db, status);
        if (target == nullptr) return failed(status, reply);
        Deadline deadline;
        if (!read_with_deadline(*store_, args[1], value_, deadline, status)) {
            return status ? reply.integer(0) : failed(status, reply);
        }
        bool done = false;
        if (status = write_into(*target, args[2], value_, deadline, replace, done); !status) return failed(status, reply);
        reply.integer(done ? 1 : 0);
    }

    // MOVE key db: writes the key into the other database if it is absent
    // there, then removes it here if it still holds what was moved. Two
    // stores, two writes: a crash between them leaves the key in both.
    void move(const Args& args, Session& session, Reply& reply) {
        std::size_t target_db = 0;
        if (!parse_db(args[2], target_db, reply)) return;
        if (target_db == session.db) return reply.error("ERR source and destination objects are the same");
        Status status;
        StoreType* target = databases_.get(target_db, status);
        if (target == nullptr) return failed(status, reply);
        Deadline deadline;
        if (!read_with_deadline(*store_, args[1], value_, deadline, status)) {
            return status ? reply.integer(0) : failed(status, reply);
        }
        bool moved = false;
        if (status = write_into(*target, args[1], value_, deadline, false, moved); !status)
            return failed(status, reply);
        if (!moved) return reply.integer(0);
        status = store_->transact({std::string(args[1])}, [&](typename StoreType::Transaction& transaction) {
            std::string now_held;
            if (!transaction.find(args[1], now_held) || now_held != value_) return false;
            transaction.erase(args[1]);
            return true;
        });
        if (!status) return failed(status, reply);
        reply.integer(1);
    }

    // OBJECT ENCODING|REFCOUNT|FREQ|IDLETIME|HELP key. A store keeps no
    // encodings; ENCODING names the one Redis would give the bytes.
    void object(const Args& args, Session&, Reply& reply) {
        if (is(args[1], "HELP")) {
            reply.array(2);
            reply.status("OBJECT ENCODING <key>: the Redis encoding of the value's bytes (int, embstr or raw).");
            return reply.status("OBJECT REFCOUNT <key>: always 1.");
        }
        if (args.size() != 3) return reply.error("ERR wrong number of arguments for 'object|" + lower(std::string(args[1])) + "' command");
        if (!is(args[1], "ENCODING") && !is(args[1], "REFCOUNT") && !is(args[1], "FREQ") && !is(args[1], "IDLETIME"))
            return reply.error("ERR unknown subcommand '" + std::string(args[1]) + "'. Try OBJECT HELP.");
        if (!keys_->find(args[2], value_)) return reply.null();
        if (is(args[1], "REFCOUNT")) return reply.integer(1);
        if (is(args[1], "FREQ"))
            return reply.error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. kvstore-server has no "
                "maxmemory policy.");
        if (is(args[1], "IDLETIME"))
            return reply.error("ERR kvstore-server does not track when a key was last read");
        long long number = 0;
        const bool integer = parse_integer(value_, number) && std::to_string(number) == value_;
        reply.bulk(integer ? "int" : value_.size() <= 44 ? "embstr" : "raw");
    }

    // ---- Expiry ----

    // EXPIRE/PEXPIRE key ttl and EXPIREAT/PEXPIREAT key time, with
    // NX|XX|GT|LT. A deadline already past deletes the key, as in Redis.
    void expire(const Args& args, Session&, Reply& reply) {
        long long amount = 0;
        if (!parse_integer(args[2], amount)) return not_integer(reply);
        bool nx = false, xx = false, gt = false, lt = false;
        for (std::size_t i = 3; i < args.size(); ++i) {
            bool& option = is(args[i], "NX") ? nx : is(args[i], "XX") ? xx : is(args[i], "GT") ? gt : lt;
            if (!is(args[i], "NX") && !is(args[i], "XX") && !is(args[i], "GT") && !is(args[i], "LT"))
                return reply.error("ERR Unsupported option " + std::string(args[i]));
            option = true;
        }
        if (nx && (xx || gt || lt))
            return reply.error("ERR NX and XX, GT or LT options at the same time are not compatible");
        if (gt && lt) return reply.error("ERR GT and LT options at the same time are not compatible");
        const bool seconds = name_ == "EXPIRE" || name_ == "EXPIREAT";
        const bool absolute = name_.back() == 'T';
        if (seconds && (amount > INT64_MAX / 1000 || amount < INT64_MIN / 1000))
            return reply.error("ERR invalid expire time in '" + lower(name_) + "' command");
        if (seconds) amount *= 1000;
        const long long now = std::chrono::duration_cast<std::chrono::milliseconds>(keys_->now().time_since_epoch()).count();
        if (!absolute) {
            if ((amount > 0 && amount > INT64_MAX - now) || (amount < 0 && amount < INT64_MIN + now))
                return reply.error("ERR invalid expire time in '" + lower(name_) + "' command");
            amount += now;
        }
        const TimePoint deadline = at_unix_ms(amount);
        atomically({std::string(args[1])}, reply, [&] {
            Deadline current;
            if (!keys_->find(args[1], value_, &current)) return reply.integer(0);
            // No deadline counts as later than any, as in Redis.
            if ((nx && current) || (xx && !current) || (gt && (!current || deadline <= *current)) ||
                (lt && current && deadline >= *current))
                return reply.integer(0);
            if (Status status = keys_->put(args[1], value_, deadline); !status) return failed(status, reply);
            reply.integer(1);
        });
    }

    // TTL, PTTL (time left) and EXPIRETIME, PEXPIRETIME (the deadline as a
    // Unix time): -2 for no key, -1 for no deadline.
    void ttl(const Args& args, Session&, Reply& reply) {
        Deadline deadline;
        if (!keys_->find(args[1], value_, &deadline)) return reply.integer(-2);
        if (!deadline) return reply.integer(-1);
        const bool milliseconds = name_[0] == 'P';
        if (name_.find("TIME") != std::string::npos) {
            const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline->time_since_epoch()).count();
            return reply.integer(milliseconds ? ms : ms / 1000);
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - keys_->now());
        const long long ms = std::max<long long>(0, left.count());
        reply.integer(milliseconds ? ms : (ms + 500) / 1000);
    }

    void persist(const Args& args, Session&, Reply& reply) {
        atomically({std::string(args[1])}, reply, [&] {
            Deadline deadline;
            if (!keys_->find(args[1], value_, &deadline) || !deadline) return reply.integer(0);
            if (Status status = keys_->put(args[1], value_); !status) return failed(status, reply);
            reply.integer(1);
        });
    }

    // ---- Whole databases ----

    // Whether the keys gathered for KEYS or SCAN fit in max_reply_size; if
    // not, says so.
    bool fits_reply(const std::vector<std::string>& keys, Reply& reply) {
        std::size_t bytes = 0;
        for (const std::string& key : keys) bytes += key.size() + 16;
        const std::size_t limit = state_.max_reply_size.load(std::memory_order_relaxed);
        if (bytes <= limit) return true;
        reply.error("ERR the reply to " + name_ + " would exceed max_reply_size (" + std::to_string(limit) + " bytes)" +
                    (name_ == "KEYS" ? "; SCAN returns the keys in steps" : "; a smaller COUNT makes smaller steps"));
        return false;
    }

    void reply_keys(const std::vector<std::string>& keys, Reply& reply) {
        reply.array(keys.size());
        for (const std::string& key : keys) reply.bulk(key);
    }

    void keys(const Args& args, Session&, Reply& reply) {
        std::vector<std::string> found;
        store_->for_each([&](std::string_view key, std::string_view) {
            if (glob_match(args[1], key)) found.emplace_back(key);
        });
        if (fits_reply(found, reply)) reply_keys(found, reply);
    }

    // SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor is
    // the next shard to visit: a call visits whole shards until it has seen
    // COUNT keys, so a key present for the whole scan is returned exactly
    // once, and no lock is held between calls.
    void scan(const Args& args, Session&, Reply& reply) {
        unsigned long long cursor = 0;
        const std::string_view text = args[1];
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), cursor);
        if (text.empty() || error != std::errc() || end != text.data() + text.size())
            return reply.error("ERR invalid cursor");
        std::optional<std::string_view> pattern;
        long long count = 10;
        bool strings = true;
        for (std::size_t i = 2; i < args.size(); i += 2) {
            if (i + 1 >= args.size()) return reply.error("ERR syntax error");
            if (is(args[i], "MATCH")) {
                pattern = args[i + 1];
            } else if (is(args[i], "COUNT")) {
                if (!parse_integer(args[i + 1], count)) return not_integer(reply);
                if (count < 1) return reply.error("ERR syntax error");
            } else if (is(args[i], "TYPE")) {
                strings = is(args[i + 1], "STRING");
            } else {
                return reply.error("ERR syntax error");
            }
        }
        std::vector<std::string> found;
        long long seen = 0;
        std::size_t shard = static_cast<std::size_t>(std::min<unsigned long long>(cursor, store_->shard_count()));
        while (shard < store_->shard_count() && seen < count) {
            store_->for_each_in_shard(shard++, [&](std::string_view key, std::string_view) {
                ++seen;
                if (strings && (!pattern || glob_match(*pattern, key))) found.emplace_back(key);
            });
        }
        if (!fits_reply(found, reply)) return;
        reply.array(2);
        reply.bulk(std::to_string(shard < store_->shard_count() ? shard : 0));
        reply_keys(found, reply);
    }

    // RANDOMKEY: a key of a random shard that has one, uniform within it.
    void randomkey(const Args&, Session&, Reply& reply) {
        const std::size_t shards = store_->shard_count();
        const std::size_t first = static_cast<std::size_t>(random_()) % shards;
        for (std::size_t n = 0; n < shards; ++n) {
            std::string chosen;
            std::uint64_t seen = 0;
            store_->for_each_in_shard((first + n) % shards, [&](std::string_view key, std::string_view) {
                if (random_() % ++seen == 0) chosen.assign(key);
            });
            if (seen > 0) return reply.bulk(chosen);
        }
        reply.null();
    }

    void size(const Args&, Session&, Reply& reply) { reply.integer(static_cast<long long>(store_->size())); }

    // FLUSHDB and FLUSHALL [ASYNC|SYNC]: both remove at once, as one record
    // per database.
    void flush(const Args& args, Session&, Reply& reply) {
        if (args.size() == 2 && !is(args[1], "SYNC") && !is(args[1], "ASYNC")) return reply.error("ERR syntax error");
        if (name_ != "FLUSHALL") {
            if (Status status = store_->clear(); !status) return failed(status, reply);
            return reply.status("OK");
        }
        for (std::size_t db = 0; db < databases_.count(); ++db) {
            if (StoreType* store = databases_.opened(db)) {
                if (Status status = store->clear(); !status) return failed(status, reply);
            }
        }
        reply.status("OK");
    }

    void select(const Args& args, Session& session, Reply& reply) {
        std::size_t db = 0;
        if (!parse_db(args[1], db, reply)) return;
        Status status;
        if (databases_.get(db, status) == nullptr) return failed(status, reply);
        session.db = db;
        store_ = databases_.opened(db);
        state_.clients.update(session.id, [db](ClientInfo& info) { info.db = db; });
        reply.status("OK");
    }

    void swapdb(const Args&, Session&, Reply& reply) {
        reply.error(
            "ERR SWAPDB is not supported: each database is a store in its own directory, and a swap that a restart "
            "undid would lose writes");
    }

    // ---- Transactions ----

    void multi(const Args&, Session& session, Reply& reply) {
        if (session.in_multi) return reply.error("ERR MULTI calls can not be nested");
        session.in_multi = true;
        session.multi_failed = false;
        session.queued.clear();
        reply.status("OK");
    }

    void discard(const Args&, Session& session, Reply& reply) {
        if (!session.in_multi) return reply.error("ERR DISCARD without MULTI");
        end_multi(session);
        reply.status("OK");
    }

    void end_multi(Session& session) {
        session.in_multi = false;
        session.multi_failed = false;
        session.queued.clear();
        session.watched.clear();
    }

    // WATCH key...: EXEC then runs only if each key still holds what it held
    // here (value and deadline; a rewrite to the same value is not seen).
    void watch(const Args& args, Session& session, Reply& reply) {
        if (session.in_multi) return reply.error("ERR WATCH inside MULTI is not allowed");
        for (std::size_t i = 1; i < args.size(); ++i) {
            Session::Watched watched{session.db, std::string(args[i]), false, {}, {}};
            Status status;
            watched.present = read_with_deadline(*store_, args[i], watched.value, watched.deadline, status);
            if (!status) return failed(status, reply);
            session.watched.push_back(std::move(watched));
        }
        reply.status("OK");
    }

    void unwatch(const Args&, Session& session, Reply& reply) {
        session.watched.clear();
        reply.status("OK");
    }

    // Whether the keys watched in database `db` still hold what they held.
    bool watched_unchanged(const Session& session, std::size_t db, Keyspace& keys) {
        for (const Session::Watched& watched : session.watched) {
            if (watched.db != db) continue;
            std::string value;
            Deadline deadline;
            const bool present = keys.find(watched.key, value, &deadline);
            if (present != watched.present || (present && (value != watched.value || deadline != watched.deadline)))
                return false;
        }
        return true;
    }

    // EXEC: the queued commands in order, each run of commands that touch
    // only their own keys in one Store::transact (atomic, one log record);
    // a command that reaches further (FLUSHDB, SELECT, KEYS, ...) runs alone
    // between them. Keys watched in the database EXEC starts in are checked
    // inside its first transaction; others just before it.
    void exec(const Args&, Session& session, Reply& reply) {
        if (!session.in_multi) return reply.error("ERR EXEC without MULTI");
        if (session.multi_failed) {
            end_multi(session);
            return reply.error("EXECABORT Transaction discarded because of previous errors.");
        }
        std::vector<std::vector<std::string>> queued = std::move(session.queued);
        const std::size_t start_db = session.db;
        for (std::size_t db = 0; db < databases_.count(); ++db) {
            if (db == start_db || databases_.opened(db) == nullptr) continue;
            DirectKeyspace<StoreType> other(*databases_.opened(db));
            if (!watched_unchanged(session, db, other)) {
                end_multi(session);
                return reply.null_array();
            }
        }
        const std::size_t header = reply.size();
        reply.array(queued.size());
        bool first_run = true;
        for (std::size_t i = 0; i < queued.size();) {
            std::vector<Args> args;
            std::vector<const Command*> commands;
            std::vector<std::string> lock_keys;
            for (std::size_t j = i; j < queued.size(); ++j) {
                args.emplace_back(queued[j].begin(), queued[j].end());
                commands.push_back(&table().find(upper(queued[j][0]))->second);
                if ((commands.back()->flags & kOutside) && j > i) {
                    args.pop_back();
                    commands.pop_back();
                    break;
                }
                add_keys(*commands.back(), args.back(), lock_keys);
                if (commands.back()->flags & kOutside) break;
            }
            const bool watch_here = first_run && session.db == start_db;
            if (watch_here) {
                for (const Session::Watched& watched : session.watched) {
                    if (watched.db == start_db) lock_keys.push_back(watched.key);
                }
            }
            first_run = false;
            if (commands.size() == 1 && (commands[0]->flags & kOutside)) {
                if (watch_here && !session.watched.empty()) {
                    Status status;
                    StoreType* store = databases_.get(session.db, status);
                    if (store == nullptr) return failed(status, reply);
                    DirectKeyspace<StoreType> direct(*store);
                    if (!watched_unchanged(session, start_db, direct)) {
                        reply.discard_from(header);
                        end_multi(session);
                        return reply.null_array();
                    }
                }
                run_queued(*commands[0], args[0], session, reply);
                ++i;
                continue;
            }
            bool aborted = false;
            const std::size_t mark = reply.size();
            Status opened;
            store_ = databases_.get(session.db, opened);
            Status status = opened;
            if (store_ != nullptr) {
                try {
                    status = store_->transact(lock_keys, [&](typename StoreType::Transaction& transaction) {
                        TransactionKeyspace<StoreType> inside(transaction);
                        if (watch_here && !watched_unchanged(session, start_db, inside)) {
                            aborted = true;
                            return false;
                        }
                        Scope scope(*this, inside);
                        for (std::size_t k = 0; k < commands.size(); ++k) run_queued(*commands[k], args[k], session, reply);
                        return true;
                    });
                } catch (const std::logic_error& error) {
                    status = Status::invalid_argument(std::string("a queued command reached a key it did not name: ") +
                                                      error.what());
                }
            }
            if (aborted) {
                reply.discard_from(header);
                end_multi(session);
                return reply.null_array();
            }
            if (!status) {
                reply.discard_from(mark);
                for (std::size_t k = 0; k < commands.size(); ++k) failed(status, reply);
            }
            i += commands.size();
        }
        end_multi(session);
    }

    // One queued command: counted, named and run with the keyspace EXEC set.
    void run_queued(const Command& command, const Args& args, Session& session, Reply& reply) {
        name_ = upper(args[0]);
        CommandCounts& counts = *entries_.find(name_)->second.counts;
        counts.calls.fetch_add(1, std::memory_order_relaxed);
        const std::size_t mark = reply.size();
        if (in_transaction_) {
            (this->*command.run)(args, session, reply);
        } else {
            run(command, args, session, reply);
        }
        if (reply.is_error_from(mark)) counts.failed.fetch_add(1, std::memory_order_relaxed);
    }

    // ---- Connection ----

    void ping(const Args& args, Session&, Reply& reply) {
        if (args.size() == 2) return reply.bulk(args[1]);
        reply.status("PONG");
    }

    void echo(const Args& args, Session&, Reply& reply) { reply.bulk(args[1]); }

    void time(const Args&, Session&, Reply& reply) {
        const auto micros =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        reply.array(2);
        reply.bulk(std::to_string(micros / 1000000));
        reply.bulk(std::to_string(micros % 1000000));
    }

    // HELLO [2|3 [AUTH user password] [SETNAME name]]: the replies that
    // follow (this one too) in RESP2 or RESP3.
    void hello(const Args& args, Session& session, Reply& reply) {
        bool resp3 = session.resp3;
        if (args.size() >= 2) {
            long long version = 0;
            if (!parse_integer(args[1], version))
                return reply.error("ERR Protocol version is not an integer or out of range");
            if (version != 2 && version != 3) return reply.error("NOPROTO unsupported protocol version");
            resp3 = version == 3;
        }
        std::optional<std::string_view> name;
        for (std::size_t i = 2; i < args.size(); ++i) {
            if (is(args[i], "AUTH") && i + 2 < args.size()) {
                const Args auth_args{"AUTH", args[i + 1], args[i + 2]};
                const std::size_t mark = reply.size();
                auth(auth_args, session, reply);
                if (reply.is_error_from(mark)) return;
                reply.discard_from(mark);
                i += 2;
            } else if (is(args[i], "SETNAME") && i + 1 < args.size()) {
                name = args[++i];
            } else {
                return reply.error("ERR Syntax error in HELLO option '" + std::string(args[i]) + "'");
            }
        }
        if (!session.authenticated && !state_.config.requirepass.empty())
            return reply.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                               "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                               "select the RESP protocol version at the same time");
        if (name && !set_name(*name, session, reply)) return;
        session.resp3 = resp3;
        Reply answer(reply, resp3);
        answer.map_or_array(7);
        answer.bulk("server");
        answer.bulk("redis");
        answer.bulk("version");
        answer.bulk(kRedisVersion);
        answer.bulk("proto");
        answer.integer(resp3 ? 3 : 2);
        answer.bulk("id");
        answer.integer(static_cast<long long>(session.id));
        answer.bulk("mode");
        answer.bulk("standalone");
        answer.bulk("role");
        answer.bulk("master");
        answer.bulk("modules");
        answer.array(0);
    }

    bool set_name(std::string_view name, Session& session, Reply& reply) {
        for (char c : name) {
            if (c < '!' || c > '~') {
                reply.error("ERR Client names cannot contain spaces, newlines or special characters.");
                return false;
            }
        }
        session.name.assign(name);
        state_.clients.update(session.id, [&](ClientInfo& info) { info.name = session.name; });
        return true;
    }

    static std::string client_line(const ClientInfo& info) {
        const auto age = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - info.since);
        return "id=" + std::to_string(info.id) + " addr=" + info.address + " name=" + info.name +
               " age=" + std::to_string(age.count()) + " db=" + std::to_string(info.db) + " cmd=NULL\n";
    }

    // CLIENT ID|GETNAME|SETNAME|LIST|INFO|KILL.
    void client(const Args& args, Session& session, Reply& reply) {
        const std::string sub = upper(args[1]);
        if (sub == "ID" && args.size() == 2) return reply.integer(static_cast<long long>(session.id));
        if (sub == "GETNAME" && args.size() == 2) return session.name.empty() ? reply.null() : reply.bulk(session.name);
        if (sub == "SETNAME" && args.size() == 3) {
            if (set_name(args[2], session, reply)) reply.status("OK");
            return;
        }
        if ((sub == "LIST" || sub == "INFO") && args.size() == 2) {
            std::string text;
            for (const ClientInfo& info : state_.clients.list()) {
                if (sub == "LIST" || info.id == session.id) text += client_line(info);
            }
            return reply.bulk(text);
        }
        if (sub == "KILL" && args.size() >= 3) return client_kill(args, session, reply);
        reply.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(args[1]) +
                    "'. kvstore-server's CLIENT knows ID, GETNAME, SETNAME, LIST, INFO and KILL.");
    }

    // CLIENT KILL addr, or KILL [ID id] [ADDR addr] [SKIPME yes|no].
    void client_kill(const Args& args, Session& session, Reply& reply) {
        if (args.size() == 3) {
            const std::string address(args[2]);
            const std::size_t killed =
                state_.clients.kill([&](const ClientInfo& info) { return info.address == address; });
            if (killed == 0) return reply.error("ERR No such client");
            if (session.id != 0 && address == self_address(session)) session.close_after_reply = true;
            return reply.status("OK");
        }
        std::optional<std::uint64_t> id;
        std::optional<std::string> address;
        bool skip_me = true;
        for (std::size_t i = 2; i + 1 < args.size(); i += 2) {
            long long number = 0;
            if (is(args[i], "ID") && parse_integer(args[i + 1], number) && number > 0) {
                id = static_cast<std::uint64_t>(number);
            } else if (is(args[i], "ADDR")) {
                address = std::string(args[i + 1]);
            } else if (is(args[i], "SKIPME") && (is(args[i + 1], "YES") || is(args[i + 1], "NO"))) {
                skip_me = is(args[i + 1], "YES");
            } else {
                return reply.error("ERR syntax error");
            }
        }
        if (args.size() % 2 != 0) return reply.error("ERR syntax error");
        const std::size_t killed = state_.clients.kill([&](const ClientInfo& info) {
            if (skip_me && info.id == session.id) return false;
            return (!id || info.id == *id) && (!address || info.address == *address);
        });
        reply.integer(static_cast<long long>(killed));
    }

    std::string self_address(const Session& session) const {
        for (const ClientInfo& info : state_.clients.list()) {
            if (info.id == session.id) return info.address;
        }
        return {};
    }

    void quit(const Args&, Session& session, Reply& reply) {
        session.close_after_reply = true;
        reply.status("OK");
    }

    void auth(const Args& args, Session& session, Reply& reply) {
        if (state_.config.requirepass.empty())
            return reply.error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure "
                "your configuration is correct?");
        const std::string_view user = args.size() == 3 ? args[1] : "default";
        const std::string_view password = args.back();
        session.authenticated = user == "default" && password == state_.config.requirepass;
        if (!session.authenticated) return reply.error("WRONGPASS invalid username-password pair or user is disabled.");
        reply.status("OK");
    }

    // ---- Server ----

    static constexpr const char* kRedisVersion = "7.0.0";

    // INFO [section...]: Redis's sections that mean something here, and the
    // store's own. "default" is all but commandstats; "all" and
    // "everything" add it.
    void info(const Args& args, Session&, Reply& reply) {
        static const char* const kDefault[] = {"server",      "clients", "memory",   "persistence", "stats",
                                               "replication", "cpu",     "keyspace", "store"};
        std::vector<std::string> wanted;
        for (std::size_t i = 1; i < args.size(); ++i) {
            const std::string section = lower(std::string(args[i]));
            if (section == "default" || section == "all" || section == "everything") {
                wanted.insert(wanted.end(), std::begin(kDefault), std::end(kDefault));
                if (section != "default") wanted.emplace_back("commandstats");
            } else {
                wanted.push_back(section);
            }
        }
        if (wanted.empty()) wanted.assign(std::begin(kDefault), std::end(kDefault));
        std::string text;
        std::vector<std::string> done;
        for (const std::string& section : wanted) {
            if (std::find(done.begin(), done.end(), section) != done.end()) continue;
            done.push_back(section);
            const std::size_t before = text.size();
            if (!text.empty()) text += "\r\n";
            if (!info_section(section, text)) text.resize(before);
        }
        if (reply.plain()) {
            // Text lines end in "\n" alone.
            text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
        }
        reply.text(text);
    }

    static void line(std::string& out, const char* name, const std::string& value) {
        out += name;
        out += ':';
        out += value;
        out += "\r\n";
    }
    template <class Number, class = std::enable_if_t<std::is_arithmetic_v<Number>>>
    static void line(std::string& out, const char* name, Number value) {
        line(out, name, std::to_string(value));
    }

    // Appends one INFO section; false if there is no such section.
    bool info_section(const std::string& section, std::string& text) {
        std::uint64_t memory = 0;
        for (std::size_t db = 0; db < databases_.count(); ++db) {
            if (const StoreType* store = databases_.opened(db)) memory += store->stats().memory_bytes;
        }
        if (section == "server") {
            const auto uptime =
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - state_.started);
            text += "# Server\r\n";
            line(text, "redis_version", std::string(kRedisVersion));
            line(text, "kvstore_version",
                 std::to_string(KVSTORE_VERSION_MAJOR) + "." + std::to_string(KVSTORE_VERSION_MINOR) + "." +
                     std::to_string(KVSTORE_VERSION_PATCH));
            line(text, "redis_mode", std::string("standalone"));
            line(text, "tcp_port", state_.config.port);
            line(text, "uptime_in_seconds", static_cast<long long>(uptime.count()));
            line(text, "durability", std::string(durability_name(state_.config.durability)));
        } else if (section == "clients") {
            text += "# Clients\r\n";
            line(text, "connected_clients", state_.connected.load());
            line(text, "maxclients", state_.max_connections.load());
        } else if (section == "memory") {
            text += "# Memory\r\n";
            line(text, "used_memory", memory);
        } else if (section == "persistence") {
            text += "# Persistence\r\n";
            line(text, "loading", 0);
            line(text, "aof_enabled", state_.config.durability == DurabilityMode::kNone ? 0 : 1);
        } else if (section == "stats") {
            std::uint64_t expired = 0;
            for (std::size_t db = 0; db < databases_.count(); ++db) {
                if (const StoreType* store = databases_.opened(db)) expired += store->stats().expired_keys;
            }
            text += "# Stats\r\n";
            line(text, "total_connections_received", state_.connections_total.load());
            line(text, "total_commands_processed", state_.commands.load());
            line(text, "rejected_connections", state_.rejected_connections.load());
            line(text, "protocol_errors", state_.protocol_errors.load());
            line(text, "expired_keys", expired);
        } else if (section == "replication") {
            // kvstore-server has no replicas of its own (docs/scale-out.md).
            text += "# Replication\r\n";
            line(text, "role", std::string("master"));
            line(text, "connected_slaves", 0);
            line(text, "master_repl_offset", 0);
        } else if (section == "cpu") {
            text += "# CPU\r\n";
            const auto seconds = [](const timeval& t) {
                char buffer[32];
                std::snprintf(buffer, sizeof buffer, "%ld.%06ld", static_cast<long>(t.tv_sec), static_cast<long>(t.tv_usec));
                return std::string(buffer);
            };
            rusage self{}, children{};
            getrusage(RUSAGE_SELF, &self);
            getrusage(RUSAGE_CHILDREN, &children);
            line(text, "used_cpu_sys", seconds(self.ru_stime));
            line(text, "used_cpu_user", seconds(self.ru_utime));
            line(text, "used_cpu_sys_children", seconds(children.ru_stime));
            line(text, "used_cpu_user_children", seconds(children.ru_utime));
        } else if (section == "commandstats") {
            text += "# Commandstats\r\n";
            for (const auto& [name, command] : table()) {
                std::uint64_t calls = 0, rejected = 0, failures = 0;
                for (const auto* counts : state_.command_counts) {
                    const CommandCounts& count = counts->find(name)->second;
                    calls += count.calls.load(std::memory_order_relaxed);
                    rejected += count.rejected.load(std::memory_order_relaxed);
                    failures += count.failed.load(std::memory_order_relaxed);
                }
                if (calls + rejected + failures == 0) continue;
                text += "cmdstat_" + lower(name) + ":calls=" + std::to_string(calls) +
                        ",rejected_calls=" + std::to_string(rejected) + ",failed_calls=" + std::to_string(failures) +
                        "\r\n";
            }
        } else if (section == "keyspace") {
            text += "# Keyspace\r\n";
            // Redis adds expires= and avg_ttl=; the store keeps no count of
            // keys with a deadline, and a made-up 0 would mislead a monitor.
            for (std::size_t db = 0; db < databases_.count(); ++db) {
                const StoreType* store = databases_.opened(db);
                if (store != nullptr && (db == 0 || store->size() > 0))
                    text += "db" + std::to_string(db) + ":keys=" + std::to_string(store->size()) + "\r\n";
            }
        } else if (section == "store") {
            store_section(text, memory);
        } else {
            return false;
        }
        return true;
    }

    // The store of the connection's database: its map, log and checkpoints.
    void store_section(std::string& text, std::uint64_t memory) {
        const StoreStats stats = store_->stats();
        text += "# Store\r\n";
        line(text, "items", stats.items);
        line(text, "shards", stats.shards);
        line(text, "load_factor", std::to_string(stats.load_factor));
        line(text, "memory_bytes", stats.memory_bytes);
        line(text, "all_databases_memory_bytes", memory);
        line(text, "checkpoint_bytes", state_.config.checkpoint_bytes);
        line(text, "checkpoint_growth", state_.config.checkpoint_growth);
        line(text, "snapshot_bytes", stats.snapshot_bytes);
        line(text, "checkpoints", stats.checkpoints);
        line(text, "checkpoint_error", stats.checkpoint_error);
        line(text, "wal_records", stats.log.records);
        line(text, "wal_bytes", stats.log.bytes);
        line(text, "wal_segments", stats.log.segments);
        line(text, "wal_syncs", stats.log.syncs);
        line(text, "wal_average_group", std::to_string(stats.log.average_group));
        line(text, "wal_largest_group", stats.log.largest_group);
        line(text, "wal_average_sync_micros", std::to_string(stats.log.average_sync_micros));
        line(text, "wal_max_sync_micros", std::to_string(stats.log.max_sync_micros));
        line(text, "lsn", stats.log.last_lsn);
        line(text, "durable_lsn", stats.log.durable_lsn);
        line(text, "recovered_records", stats.recovery.log.records);
        line(text, "recovered_snapshot_entries", stats.recovery.snapshot_entries);
        line(text, "recovery_seconds", std::to_string(stats.recovery.log.seconds));
    }

    // COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS: each
    // command's arity, flags and key positions, as clients read them.
    void command(const Args& args, Session&, Reply& reply) {
        if (args.size() >= 2 && is(args[1], "COUNT")) return reply.integer(static_cast<long long>(table().size()));
        if (args.size() >= 2 && is(args[1], "DOCS")) return reply.array(0);
        const auto describe = [&](const std::string& name, const Command& command) {
            reply.array(6);
            reply.bulk(lower(name));
            reply.integer(command.max_args == command.min_args ? command.min_args : -command.min_args);
            reply.array(0);
            reply.integer(command.first_key);
            reply.integer(command.last_key);
            reply.integer(command.key_step);
        };
        if (args.size() >= 2 && is(args[1], "INFO")) {
            reply.array(args.size() - 2);
            for (std::size_t i = 2; i < args.size(); ++i) {
                const auto found = table().find(upper(args[i]));
                if (found == table().end()) {
                    reply.null_array();
                } else {
                    describe(found->first, found->second);
                }
            }
            return;
        }
        if (args.size() >= 2) return reply.error("ERR unknown subcommand '" + std::string(args[1]) + "'. Try COMMAND HELP.");
        reply.array(table().size());
        for (const auto& [name, command] : table()) describe(name, command);
    }

    // CONFIG GET pattern..., CONFIG SET name value... (for the settings that
    // can change while the server runs), CONFIG RESETSTAT.
    void config(const Args& args, Session&, Reply& reply) {
        if (is(args[1], "RESETSTAT") && args.size() == 2) {
            state_.reset_counts();
            return reply.status("OK");
        }
        if (is(args[1], "SET") && args.size() >= 4 && args.size() % 2 == 0) return config_set(args, reply);
        if (!is(args[1], "GET") || args.size() < 3)
            return reply.error("ERR unknown subcommand or wrong number of arguments for CONFIG '" +
                               std::string(args[1]) + "'. kvstore-server's CONFIG knows GET, SET and RESETSTAT.");
        const ServerConfig& c = state_.config;
        const std::pair<const char*, std::string> settings[] = {
            {"save", ""},
            {"appendonly", c.durability == DurabilityMode::kNone ? "no" : "yes"},
            {"appendfsync", c.durability == DurabilityMode::kGroup ? "always" : "everysec"},
            {"port", std::to_string(c.port)},
            {"bind", c.bind},
            {"dir", c.dir},
            {"durability", durability_name(c.durability)},
            {"maxclients", std::to_string(state_.max_connections.load())},
            {"max_key_size", std::to_string(c.max_key_size)},
            {"max_value_size", std::to_string(c.max_value_size)},
            {"proto-max-bulk-len", std::to_string(c.limits.max_bulk_length)},
            {"client-query-buffer-limit", std::to_string(c.limits.max_query_buffer)},
            {"max_reply_size", std::to_string(state_.max_reply_size.load())},
            {"databases", std::to_string(databases_.count())},
        };
        std::vector<const std::pair<const char*, std::string>*> matches;
        for (const auto& setting : settings) {
            for (std::size_t i = 2; i < args.size(); ++i) {
                if (glob_match(lower(std::string(args[i])), setting.first)) {
                    matches.push_back(&setting);
                    break;
                }
            }
        }
        reply.map_or_array(matches.size());
        for (const auto* setting : matches) {
            reply.bulk(setting->first);
            reply.bulk(setting->second);
        }
    }

    // All the pairs or none: each is checked before any is set.
    void config_set(const Args& args, Reply& reply) {
        std::vector<std::pair<std::atomic<std::size_t>*, std::size_t>> changes;
        for (std::size_t i = 2; i < args.size(); i += 2) {
            const std::string name = lower(std::string(args[i]));
            // The log is on or off for the server's life: asking for what
            // already is, is answered OK.
            if (name == "appendonly") {
                const bool logging = state_.config.durability != DurabilityMode::kNone;
                if (lower(std::string(args[i + 1])) == (logging ? "yes" : "no")) continue;
                return reply.error("ERR CONFIG SET 'appendonly': the log is " + std::string(logging ? "on" : "off") +
                                   " for the server's life (--durability " + durability_name(state_.config.durability) +
                                   ")");
            }
            std::atomic<std::size_t>* target = name == "maxclients"       ? &state_.max_connections
                                               : name == "max_reply_size" ? &state_.max_reply_size
                                                                          : nullptr;
            if (target == nullptr)
                return reply.error("ERR CONFIG SET '" + std::string(args[i]) +
                                   "': kvstore-server changes only maxclients and max_reply_size while it runs; the "
                                   "others are set when it starts (kvstore-server --help)");
            std::uint64_t value = 0;
            std::string why;
            if (!ConfigReader::parse_size(std::string(args[i + 1]), value, why) || value == 0)
                return reply.error("ERR CONFIG SET '" + name + "' '" + std::string(args[i + 1]) +
                                   "': expected a positive number");
            changes.emplace_back(target, static_cast<std::size_t>(value));
        }
        for (const auto& [target, value] : changes) target->store(value);
        reply.status("OK");
    }

    // DEBUG SLEEP|SET-ACTIVE-EXPIRE|RELOAD|LOADAOF|OBJECT|PROTOCOL|DIGEST-VALUE:
    // what Redis's own tests ask of a server.
    void debug(const Args& args, Session&, Reply& reply) {
        const std::string sub = upper(args[1]);
        if (sub == "SLEEP" && args.size() == 3) {
            long double seconds = 0;
            if (!parse_float(args[2], seconds) || seconds < 0) return reply.error("ERR value is not a valid float");
            std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(seconds * 1e6L)));
            return reply.status("OK");
        }
        if (sub == "SET-ACTIVE-EXPIRE" && args.size() == 3) {
            for (std::size_t db = 0; db < databases_.count(); ++db) {
                if (StoreType* store = databases_.opened(db)) store->pause_sweeps(args[2] == "0");
            }
            return reply.status("OK");
        }
        // A checkpoint of every open database (RELOAD) or a sync (LOADAOF):
        // the state is then what a restart would load.
        if ((sub == "RELOAD" || sub == "LOADAOF") && args.size() == 2) {
            for (std::size_t db = 0; db < databases_.count(); ++db) {
                StoreType* store = databases_.opened(db);
                if (store == nullptr) continue;
                const Status status = sub == "RELOAD" ? store->checkpoint() : store->commit(store->log_stats().last_lsn);
                if (!status) return failed(status, reply);
            }
            return reply.status("OK");
        }
        if (sub == "OBJECT" && args.size() == 3) {
            if (!keys_->find(args[2], value_)) return reply.error("ERR no such key");
            return reply.status("Value at:0 refcount:1 encoding:raw serializedlength:" + std::to_string(value_.size()) +
                                " lru:0 lru_seconds_idle:0");
        }
        if (sub == "PROTOCOL" && args.size() == 3) return debug_protocol(args[2], reply);
        reply.error("ERR DEBUG " + std::string(args[1]) +
                    " is not supported by kvstore-server (it has SLEEP, SET-ACTIVE-EXPIRE, RELOAD, LOADAOF, OBJECT and "
                    "PROTOCOL)");
    }

    // DEBUG PROTOCOL type: a reply of each kind, in the connection's RESP.
    void debug_protocol(std::string_view type, Reply& reply) {
        if (is(type, "STRING")) return reply.bulk("Hello World");
        if (is(type, "INTEGER")) return reply.integer(12345);
        if (is(type, "NULL")) return reply.null();
        if (is(type, "TRUE")) return reply.boolean(true);
        if (is(type, "FALSE")) return reply.boolean(false);
        if (is(type, "BIGNUM")) return reply.big_number("1234567999999999999999999999999999999");
        if (is(type, "VERBATIM")) return reply.verbatim("This is a verbatim\nstring");
        if (is(type, "ATTRIB")) {
            if (reply.resp3()) {
                reply.attributes(1);
                reply.bulk("key-popularity");
                reply.array(2);
                reply.bulk("key:123");
                reply.integer(90);
            }
            return reply.bulk("Some real reply following the attribute");
        }
        reply.error("ERR Wrong protocol type name. Please use one of the following: string|integer|null|true|false|"
                    "bignum|verbatim|attrib");
    }

    // FUNCTION FLUSH [ASYNC|SYNC]: there are no functions, so none to remove.
    void function(const Args& args, Session&, Reply& reply) {
        if (is(args[1], "FLUSH")) return reply.status("OK");
        if (is(args[1], "LIST")) return reply.array(0);
        reply.error("ERR kvstore-server has no functions or scripting; FUNCTION knows only FLUSH and LIST");
    }

    void save(const Args&, Session&, Reply& reply) {
        for (std::size_t db = 0; db < databases_.count(); ++db) {
            if (StoreType* store = databases_.opened(db)) {
                if (Status status = store->checkpoint(); !status) return failed(status, reply);
            }
        }
        reply.status("OK");
    }

    void bgsave(const Args& args, Session&, Reply& reply) {
        if (args.size() == 2 && !is(args[1], "SCHEDULE")) return reply.error("ERR syntax error");
        if (!state_.start_background_save()) return reply.error("ERR Background save already in progress");
        reply.status("Background saving started");
    }

    // SHUTDOWN [NOSAVE|SAVE]: stops the server gracefully (SAVE checkpoints
    // first); as in Redis, the connection closes without a reply.
    void shutdown(const Args& args, Session& session, Reply& reply) {
        if (args.size() == 2 && !is(args[1], "NOSAVE") && !is(args[1], "SAVE")) return reply.error("ERR syntax error");
        if (args.size() == 2 && is(args[1], "SAVE")) {
            const std::size_t mark = reply.size();
            save(args, session, reply);
            if (reply.is_error_from(mark)) return;
            reply.discard_from(mark);
        }
        session.close_after_reply = true;
        state_.shut_down();
    }

    Databases<StoreType>& databases_;
    ServerState& state_;
    std::unordered_map<std::string, CommandCounts> counts_;  // this io thread's
    // A command's table entry and counts, found by one lookup of its name.
    struct Entry {
        const Command* command;
        CommandCounts* counts;
    };
    std::unordered_map<std::string, Entry> entries_;
    StoreType* store_ = nullptr;  // the running command's database
    Keyspace* keys_ = nullptr;    // and its keys, straight or in a transaction
    bool in_transaction_ = false;
    std::string name_;   // the running command's name, upper case
    std::string value_;  // a copy of a value, reused
    std::minstd_rand random_{std::random_device{}()};
};

}  // namespace kvstore::server
