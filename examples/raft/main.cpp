// kvstore-raft-server: a kvstore Store replicated by canonical raft
// (libraft, over libuv), served in RESP2 and the plain text protocol.
//
//   kvstore-raft-server --id N --port P --dir D --cluster 1=HOST:P1,2=HOST:P2,3=HOST:P3 [--join]
//
// A node serves clients on port P and speaks raft on P + 1. Every client
// command is a raft entry: the commands that arrive in one turn of the event
// loop, from every connection, go into one entry, so one raft round (the
// leader's and a majority's syncs) answers them all. A reply is sent once its
// entry is committed on a majority and applied here, reads included, so a
// GET sees every write acknowledged before it was sent (linearizable). A
// connection that sent READONLY has its GETs answered at once from this
// node's Store, on followers too: those may be stale.
//
// The raft log (libraft's segments, synced before an entry counts towards a
// majority) is the durable log, so the Store runs under None: a second log
// would sync every write twice. A node's Store is rebuilt at start from the
// raft snapshot (Store::export_snapshot / import_snapshot) and the entries
// after it. Followers answer writes with "-REDIRECT HOST:PORT" (the leader's
// client address), or "-TRYAGAIN" while no leader is known.
#include "../server/protocol.hpp"
#include "no_delay_transport.hpp"

#include <kvstore/store.hpp>

#include <uv.h>
// libraft's headers declare C functions without extern "C" of their own.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Store = kvstore::Store<std::string, std::string, kvstore::None>;
using kvstore::server::Reply;

enum class Op : std::uint8_t { kSet = 1, kGet, kDel, kIncr };

struct Outcome {
    enum Kind : std::uint8_t { kOk, kInteger, kBulk, kNull, kError } kind = kOk;
    long long integer = 0;
    std::string text;
};

void write_outcome(Reply& reply, const Outcome& outcome) {
    switch (outcome.kind) {
    case Outcome::kOk:
        return reply.status("OK");
    case Outcome::kInteger:
        return reply.integer(outcome.integer);
    case Outcome::kBulk:
        return reply.bulk(outcome.text);
    case Outcome::kNull:
        return reply.null();
    case Outcome::kError:
        return reply.error(outcome.text);
    }
}

// An entry is its length (4 bytes) and a run of commands: op (1 byte),
// argument count (4), then each argument's length (4) and bytes; integers
// little-endian, then zeros up to a multiple of 8 bytes (submit_batch says
// why); the length says where the padding starts.
void append_u32(std::string& out, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

bool read_u32(std::string_view& in, std::uint32_t& value) {
    if (in.size() < 4) return false;
    value = 0;
    for (int i = 0; i < 4; ++i) value |= std::uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(4);
    return true;
}

struct Address {
    std::string host;
    unsigned port = 0;
    std::string text() const { return host + ":" + std::to_string(port); }
};

bool parse_address(std::string_view text, Address& address) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    long long port = 0;
    if (!kvstore::server::parse_integer(text.substr(colon + 1), port) || port <= 0 || port >= 65535) return false;
    address.host = std::string(text.substr(0, colon));
    address.port = static_cast<unsigned>(port);
    return true;
}

std::string raft_address(const Address& client) { return client.host + ":" + std::to_string(client.port + 1); }

class Node;

// One client connection. Replies leave in request order: each request takes
// a slot, filled when its outcome is known, and the filled slots at the
// front are written.
struct Connection {
    uv_tcp_t handle{};
    Node* node = nullptr;
    std::string input;
    struct Slot {
        bool ready = false;
        bool plain = false;
        std::string bytes;
    };
    std::deque<Slot> slots;
    std::uint64_t first_slot = 0;  // number of the slot at slots.front()
    bool read_only = false;
    bool closing = false;
    bool quit_after_flush = false;
    std::shared_ptr<Connection> self;  // keeps it alive until libuv closes the handle

    std::uint64_t take_slot(bool plain) {
        slots.push_back(Slot{false, plain, {}});
        return first_slot + slots.size() - 1;
    }
    Slot* slot(std::uint64_t number) {
        if (number < first_slot || number - first_slot >= slots.size()) return nullptr;
        return &slots[static_cast<std::size_t>(number - first_slot)];
    }
};

struct PendingReply {
    std::shared_ptr<Connection> connection;
    std::uint64_t slot;
};

// The commands of one loop turn, sent as one raft entry.
struct Batch {
    struct raft_apply request {};
    Node* node = nullptr;
    std::string entry;
    std::vector<PendingReply> replies;
};

struct Change {
    raft_change request{};
    Node* node = nullptr;
    PendingReply reply;
    raft_id id = 0;
    bool promote_after = false;
};

class Node {
public:
    struct Options {
        raft_id id = 0;
        Address client;
        std::string dir;
        std::vector<std::pair<raft_id, Address>> cluster;
        bool join = false;
    };

    explicit Node(Options options) : options_(std::move(options)) {}

    int run() {
        namespace fs = std::filesystem;
        std::error_code error;
        fs::create_directories(options_.dir + "/raft", error);
        // The Store is rebuilt from raft's snapshot and log: what an earlier
        // run left in its directory is not state, only an old export.
        fs::remove_all(options_.dir + "/store", error);
        kvstore::StoreOptions store_options;
        store_options.checkpoint_bytes = 0;
        // Only the event loop's thread touches this Store, so shards would
        // only make import_snapshot, which locks them all, longer.
        store_options.map.shards = 8;
        if (kvstore::Status status = Store::open(options_.dir + "/store", store_options, store_); !status)
            return fail("cannot open the Store: " + status.to_string());

        loop_ = uv_default_loop();
        if (int rv = transport_.init(loop_); rv != 0) return fail("raft transport: ", rv);
        if (int rv = raft_uv_init(&io_, loop_, (options_.dir + "/raft").c_str(), transport_.transport()); rv != 0)
            return fail(std::string("raft I/O in ") + options_.dir + "/raft: " + io_.errmsg);
        // Peers that restart are reached again within a heartbeat or two.
        raft_uv_set_connect_retry_delay(&io_, 50);
        fsm_.version = 1;
        fsm_.data = this;
        fsm_.apply = &Node::apply_entry;
        fsm_.snapshot = &Node::take_snapshot;
        fsm_.restore = &Node::restore_snapshot;
        const std::string own_raft_address = raft_address(options_.client);
        if (int rv = raft_init(&raft_, &io_, &fsm_, options_.id, own_raft_address.c_str()); rv != 0)
            return fail("raft_init: ", rv);
        raft_.data = this;
        raft_set_election_timeout(&raft_, 300);
        raft_set_heartbeat_timeout(&raft_, 50);
        raft_set_snapshot_threshold(&raft_, 8192);
        raft_set_snapshot_trailing(&raft_, 1024);
        raft_set_pre_vote(&raft_, true);
        if (!options_.join) {
            raft_configuration configuration;
            raft_configuration_init(&configuration);
            for (const auto& [id, address] : options_.cluster)
                raft_configuration_add(&configuration, id, raft_address(address).c_str(), RAFT_VOTER);
            const int rv = raft_bootstrap(&raft_, &configuration);
            raft_configuration_close(&configuration);
            if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) return fail("raft_bootstrap: ", rv);
        }
        if (int rv = raft_start(&raft_); rv != 0) return fail(std::string("raft_start: ") + raft_errmsg(&raft_));

        uv_tcp_init(loop_, &listener_);
        listener_.data = this;
        sockaddr_in bind_address{};
        uv_ip4_addr(options_.client.host.c_str(), static_cast<int>(options_.client.port), &bind_address);
        if (int rv = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&bind_address), 0); rv != 0)
            return fail("cannot bind " + options_.client.text() + ": " + uv_strerror(rv));
        if (int rv = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 511, &Node::accepted); rv != 0)
            return fail("cannot listen on " + options_.client.text() + ": " + uv_strerror(rv));
        uv_prepare_init(loop_, &submitter_);
        submitter_.data = this;
        uv_prepare_start(&submitter_, &Node::submit_batch);
        for (uv_signal_t* signal : {&sigint_, &sigterm_}) {
            uv_signal_init(loop_, signal);
            signal->data = this;
        }
        uv_signal_start(&sigint_, &Node::stop, SIGINT);
        uv_signal_start(&sigterm_, &Node::stop, SIGTERM);
        std::cerr << "kvstore-raft-server: node " << options_.id << " serving " << options_.client.text()
                  << ", raft on " << own_raft_address << ", data in " << options_.dir << "\n";
        uv_run(loop_, UV_RUN_DEFAULT);
        return exit_code_;
    }

private:
    int fail(const std::string& what, int rv = 0) {
        std::cerr << "kvstore-raft-server: node " << options_.id << ": " << what << (rv ? raft_strerror(rv) : "")
                  << "\n";
        return 1;
    }

    // ---- the state machine ----

    static int apply_entry(raft_fsm* fsm, const raft_buffer* buffer, void** result) {
        Node& node = *static_cast<Node*>(fsm->data);
        node.outcomes_.clear();
        *result = &node.outcomes_;
        // libraft stops applying for good if apply fails: a command it cannot
        // carry out is an outcome, and an undecodable entry (which only a bug
        // could write) is logged and left.
        std::string_view in(static_cast<const char*>(buffer->base), buffer->len);
        std::uint32_t length = 0;
        if (!read_u32(in, length) || length > in.size()) {
            std::cerr << "kvstore-raft-server: node " << node.options_.id << ": entry shorter than its header ("
                      << buffer->len << " bytes, says " << length << ")\n";
            return 0;
        }
        in = in.substr(0, length);  // drops the padding (submit_batch)
        std::vector<std::string_view> args;
        while (!in.empty()) {
            const auto op = static_cast<Op>(in[0]);
            in.remove_prefix(1);
            std::uint32_t count = 0;
            bool whole = read_u32(in, count);
            args.clear();
            for (std::uint32_t i = 0; whole && i < count; ++i) {
                std::uint32_t size = 0;
                whole = read_u32(in, size) && in.size() >= size;
                if (whole) {
                    args.push_back(in.substr(0, size));
                    in.remove_prefix(size);
                }
            }
            if (!whole) {
                std::cerr << "kvstore-raft-server: node " << node.options_.id << ": entry cut short\n";
                break;
            }
            node.outcomes_.push_back(node.execute(op, args));
        }
        return 0;
    }

    Outcome execute(Op op, const std::vector<std::string_view>& args) {
        const bool arity = (op == Op::kSet && args.size() == 2) || (op == Op::kDel && !args.empty()) ||
                           ((op == Op::kGet || op == Op::kIncr) && args.size() == 1);
        if (!arity) return Outcome{Outcome::kError, 0, "ERR entry holds a malformed command"};
        Outcome outcome;
        kvstore::Status status;
        switch (op) {
        case Op::kSet:
            status = store_->put(std::string(args.at(0)), std::string(args.at(1)));
            break;
        case Op::kGet:
            return read(args.at(0));
        case Op::kDel: {
            outcome.kind = Outcome::kInteger;
            for (std::string_view key : args) {
                bool erased = false;
                status = store_->erase(std::string(key), &erased);
                if (!status) break;
                outcome.integer += erased ? 1 : 0;
            }
            break;
        }
        case Op::kIncr: {
            const std::string key(args.at(0));
            long long value = 0;
            if (std::optional<std::string> old = store_->get(key); old && !kvstore::server::parse_integer(*old, value))
                return Outcome{Outcome::kError, 0, "ERR value is not an integer or out of range"};
            if (value == LLONG_MAX) return Outcome{Outcome::kError, 0, "ERR increment or decrement would overflow"};
            status = store_->put(key, std::to_string(value + 1));
            outcome = Outcome{Outcome::kInteger, value + 1, {}};
            break;
        }
        }
        if (!status) return Outcome{Outcome::kError, 0, "ERR " + status.to_string()};
        return outcome;
    }

    Outcome read(std::string_view key) const {
        std::optional<std::string> value = store_->get(std::string(key));
        if (!value) return Outcome{Outcome::kNull, 0, {}};
        return Outcome{Outcome::kBulk, 0, std::move(*value)};
    }

    static int take_snapshot(raft_fsm* fsm, raft_buffer* buffers[], unsigned* count) {
        Node& node = *static_cast<Node*>(fsm->data);
        std::string bytes;
        kvstore::Lsn continue_from = 0;
        const kvstore::Status status = node.store_->export_snapshot(
            [&](std::string_view chunk) {
                bytes.append(chunk);
                return kvstore::Status::ok();
            },
            continue_from);
        if (!status) {
            std::cerr << "kvstore-raft-server: node " << node.options_.id << ": snapshot: " << status.to_string()
                      << "\n";
            return RAFT_IOERR;
        }
        auto* buffer = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
        void* base = raft_malloc(bytes.size());
        if (buffer == nullptr || base == nullptr) {
            raft_free(buffer);
            raft_free(base);
            return RAFT_NOMEM;
        }
        std::memcpy(base, bytes.data(), bytes.size());
        buffer->base = base;
        buffer->len = bytes.size();
        *buffers = buffer;
        *count = 1;
        return 0;
    }

    static int restore_snapshot(raft_fsm* fsm, raft_buffer* buffer) {
        Node& node = *static_cast<Node*>(fsm->data);
        bool given = false;
        const kvstore::Status status = node.store_->import_snapshot([&](std::string& chunk) {
            chunk.clear();
            if (!given) chunk.assign(static_cast<const char*>(buffer->base), buffer->len);
            given = true;
            return kvstore::Status::ok();
        });
        if (!status) {
            std::cerr << "kvstore-raft-server: node " << node.options_.id << ": restore: " << status.to_string()
                      << "\n";
            return RAFT_CORRUPT;
        }
        raft_free(buffer->base);
        return 0;
    }

    // ---- clients ----

    static void accepted(uv_stream_t* listener, int status) {
        Node& node = *static_cast<Node*>(listener->data);
        if (status < 0) return;
        auto connection = std::make_shared<Connection>();
        connection->node = &node;
        connection->self = connection;
        uv_tcp_init(node.loop_, &connection->handle);
        connection->handle.data = connection.get();
        if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&connection->handle)) != 0) {
            close(*connection);
            return;
        }
        uv_tcp_nodelay(&connection->handle, 1);
        uv_read_start(reinterpret_cast<uv_stream_t*>(&connection->handle), &Node::allocate, &Node::received);
    }

    static void allocate(uv_handle_t* handle, std::size_t, uv_buf_t* buffer) {
        Node& node = *static_cast<Connection*>(handle->data)->node;
        node.read_buffer_.resize(64 * 1024);
        *buffer = uv_buf_init(node.read_buffer_.data(), static_cast<unsigned>(node.read_buffer_.size()));
    }

    static void received(uv_stream_t* stream, ssize_t length, const uv_buf_t* buffer) {
        Connection& connection = *static_cast<Connection*>(stream->data);
        if (length < 0) return close(connection);
        connection.input.append(buffer->base, static_cast<std::size_t>(length));
        connection.node->parse(connection);
    }

    static void close(Connection& connection) {
        if (connection.closing) return;
        connection.closing = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&connection.handle),
                 [](uv_handle_t* handle) { static_cast<Connection*>(handle->data)->self.reset(); });
    }

    void parse(Connection& connection) {
        const kvstore::server::RequestParser parser{kvstore::server::RequestLimits{}};
        kvstore::server::Request request;
        std::size_t offset = 0;
        while (!connection.closing && !connection.quit_after_flush) {
            std::size_t consumed = 0;
            std::size_t needed = 0;
            std::string error;
            const std::string_view rest = std::string_view(connection.input).substr(offset);
            const auto result = parser.parse(rest, request, consumed, needed, error);
            if (result == kvstore::server::ParseResult::kIncomplete) break;
            if (result == kvstore::server::ParseResult::kError) {
                finish(connection, connection.take_slot(false), Outcome{Outcome::kError, 0, error});
                connection.quit_after_flush = true;
                break;
            }
            offset += consumed;
            if (result == kvstore::server::ParseResult::kComplete) dispatch(connection, request);
        }
        connection.input.erase(0, offset);
        flush(connection);
    }

    void dispatch(Connection& connection, const kvstore::server::Request& request) {
        const std::uint64_t slot = connection.take_slot(request.plain_reply);
        std::string name(request.args[0]);
        for (char& c : name) c = kvstore::server::ascii_upper(c);
        const std::size_t argc = request.args.size();
        const auto wrong_arity = [&] {
            finish(connection, slot,
                   Outcome{Outcome::kError, 0, "ERR wrong number of arguments for '" + name + "' command"});
        };
        if (name == "PING") return finish(connection, slot, Outcome{Outcome::kBulk, 0, "PONG"});
        if (name == "QUIT") {
            connection.quit_after_flush = true;
            return finish(connection, slot, Outcome{});
        }
        if (name == "READONLY" || name == "READWRITE") {
            connection.read_only = name == "READONLY";
            return finish(connection, slot, Outcome{});
        }
        if (name == "RAFT.INFO") return finish(connection, slot, Outcome{Outcome::kBulk, 0, info()});
        if (name == "DBSIZE")
            return finish(connection, slot, Outcome{Outcome::kInteger, static_cast<long long>(store_->size()), {}});
        if (name == "CONFIG" || name == "COMMAND") return finish(connection, slot, Outcome{Outcome::kNull, 0, {}});
        if (name == "GET" && connection.read_only) {
            if (argc != 2) return wrong_arity();
            return finish(connection, slot, read(request.args[1]));
        }
        std::optional<Op> op;
        if (name == "SET" && argc == 3) op = Op::kSet;
        if (name == "GET" && argc == 2) op = Op::kGet;
        if (name == "DEL" && argc >= 2) op = Op::kDel;
        if (name == "INCR" && argc == 2) op = Op::kIncr;
        const bool membership = name == "RAFT.ADD" || name == "RAFT.REMOVE";
        if (!op && !membership) {
            if (name == "SET" || name == "GET" || name == "DEL" || name == "INCR") return wrong_arity();
            return finish(connection, slot, Outcome{Outcome::kError, 0, "ERR unknown command '" + name + "'"});
        }
        if (raft_state(&raft_) != RAFT_LEADER) return finish(connection, slot, not_leader());
        if (membership) return change_membership(connection, slot, name, request.args);
        std::string& entry = open_batch_.entry;
        entry.push_back(static_cast<char>(*op));
        append_u32(entry, static_cast<std::uint32_t>(argc - 1));
        for (std::size_t i = 1; i < argc; ++i) {
            append_u32(entry, static_cast<std::uint32_t>(request.args[i].size()));
            entry.append(request.args[i]);
        }
        open_batch_.replies.push_back(PendingReply{connection.self, slot});
    }

    Outcome not_leader() {
        raft_id id = 0;
        const char* address = nullptr;
        raft_leader(&raft_, &id, &address);
        Address leader;
        if (id == 0 || address == nullptr || !parse_address(address, leader))
            return Outcome{Outcome::kError, 0, "TRYAGAIN no raft leader is known yet"};
        leader.port -= 1;
        return Outcome{Outcome::kError, 0, "REDIRECT " + leader.text()};
    }

    std::string info() {
        raft_id leader_id = 0;
        const char* leader_address = nullptr;
        raft_leader(&raft_, &leader_id, &leader_address);
        static const char* const kStates[] = {"unavailable", "follower", "candidate", "leader"};
        const int state = raft_state(&raft_);
        std::string text =
            "id:" + std::to_string(options_.id) + "\r\nstate:" + kStates[state >= 0 && state < 4 ? state : 0] +
            "\r\nleader_id:" + std::to_string(leader_id) + "\r\nterm:" + std::to_string(raft_.current_term) +
            "\r\ncommit_index:" + std::to_string(raft_.commit_index) +
            "\r\nlast_applied:" + std::to_string(raft_last_applied(&raft_)) +
            "\r\nlast_index:" + std::to_string(raft_last_index(&raft_)) + "\r\nvoters:" + std::to_string(voters()) +
            "\r\nkeys:" + std::to_string(store_->size()) + "\r\n";
        return text;
    }

    unsigned voters() const {
        unsigned count = 0;
        for (unsigned i = 0; i < raft_.configuration.n; ++i) count += raft_.configuration.servers[i].role == RAFT_VOTER;
        return count;
    }

    // RAFT.ADD ID HOST:PORT (the new node's client address; it must run
    // with --join) adds it as a voter; RAFT.REMOVE ID removes one.
    void change_membership(Connection& connection, std::uint64_t slot, const std::string& name,
                           const std::vector<std::string_view>& args) {
        long long id = 0;
        Address address;
        const bool add = name == "RAFT.ADD";
        if (args.size() != (add ? 3u : 2u) || !kvstore::server::parse_integer(args[1], id) || id <= 0 ||
            (add && !parse_address(args[2], address)))
            return finish(connection, slot,
                          Outcome{Outcome::kError, 0,
                                  add ? "ERR usage: RAFT.ADD ID HOST:PORT (a positive id, the node's client address)"
                                      : "ERR usage: RAFT.REMOVE ID (a positive id)"});
        auto* change = new Change;
        change->node = this;
        change->reply = PendingReply{connection.self, slot};
        change->id = static_cast<raft_id>(id);
        change->promote_after = add;
        change->request.data = change;
        const int rv =
            add ? raft_add(&raft_, &change->request, change->id, raft_address(address).c_str(), &Node::changed)
                : raft_remove(&raft_, &change->request, change->id, &Node::changed);
        if (rv != 0) {
            delete change;
            finish(connection, slot,
                   Outcome{Outcome::kError, 0, std::string("ERR ") + name + ": " + raft_errmsg(&raft_)});
        }
    }

    static void changed(raft_change* request, int status) {
        auto* change = static_cast<Change*>(request->data);
        Node& node = *change->node;
        if (status == 0 && change->promote_after) {
            change->promote_after = false;
            const int rv = raft_assign(&node.raft_, &change->request, change->id, RAFT_VOTER, &Node::changed);
            if (rv == 0) return;
            status = rv;
        }
        node.finish_pending(
            change->reply,
            status == 0 ? Outcome{}
                        : Outcome{Outcome::kError, 0, std::string("ERR membership change: ") + raft_strerror(status)});
        delete change;
    }

    // Runs once a loop turn, after the turn's reads were parsed.
    static void submit_batch(uv_prepare_t* handle) {
        Node& node = *static_cast<Node*>(handle->data);
        if (node.open_batch_.replies.empty()) return;
        auto* batch = new Batch(std::move(node.open_batch_));
        node.open_batch_ = Batch{};
        batch->node = &node;
        std::string header;
        append_u32(header, static_cast<std::uint32_t>(batch->entry.size()));
        // libraft 0.15 reads a segment back wrongly after an entry whose size
        // is not a multiple of 8 (every later entry starts a few bytes off),
        // so entries are padded to 8 bytes here and carry their length.
        raft_buffer buffer;
        buffer.len = (header.size() + batch->entry.size() + 7) / 8 * 8;
        buffer.base = raft_calloc(1, buffer.len);
        batch->request.data = batch;
        int rv = RAFT_NOMEM;
        if (buffer.base != nullptr) {
            std::memcpy(buffer.base, header.data(), header.size());
            std::memcpy(static_cast<char*>(buffer.base) + header.size(), batch->entry.data(), batch->entry.size());
            rv = raft_apply(&node.raft_, &batch->request, &buffer, 1, &Node::applied);
            if (rv != 0) raft_free(buffer.base);
        }
        if (rv != 0) node.fail_batch(batch, rv, false);
    }

    static void applied(struct raft_apply* request, int status, void* result) {
        auto* batch = static_cast<Batch*>(request->data);
        Node& node = *batch->node;
        // Lost leadership or shut down: the entry may still be committed by
        // the next leader, so the client cannot be told it failed.
        if (status != 0) return node.fail_batch(batch, status, true);
        const auto& outcomes = *static_cast<const std::vector<Outcome>*>(result);
        for (std::size_t i = 0; i < batch->replies.size(); ++i) {
            PendingReply& reply = batch->replies[i];
            node.finish(*reply.connection, reply.slot,
                        i < outcomes.size() ? outcomes[i] : Outcome{Outcome::kError, 0, "ERR entry cut short"});
        }
        for (PendingReply& reply : batch->replies) node.flush(*reply.connection);
        delete batch;
    }

    void fail_batch(Batch* batch, int rv, bool maybe_applied) {
        const std::string text = std::string("TRYAGAIN raft: ") + raft_strerror(rv) +
                                 (maybe_applied ? "; the command may or may not have been applied" : "");
        for (PendingReply& reply : batch->replies) finish_pending(reply, Outcome{Outcome::kError, 0, text});
        delete batch;
    }

    void finish_pending(PendingReply& reply, const Outcome& outcome) {
        finish(*reply.connection, reply.slot, outcome);
        flush(*reply.connection);
    }

    void finish(Connection& connection, std::uint64_t number, const Outcome& outcome) {
        Connection::Slot* slot = connection.slot(number);
        if (slot == nullptr) return;
        Reply reply(slot->bytes, slot->plain);
        write_outcome(reply, outcome);
        slot->ready = true;
    }

    void flush(Connection& connection) {
        if (connection.closing) return;
        std::string out;
        while (!connection.slots.empty() && connection.slots.front().ready) {
            out += connection.slots.front().bytes;
            connection.slots.pop_front();
            ++connection.first_slot;
        }
        if (!out.empty()) {
            struct Write {
                uv_write_t request;
                std::string bytes;
                std::shared_ptr<Connection> connection;
            };
            auto* write = new Write{{}, std::move(out), connection.self};
            uv_buf_t buffer = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
            write->request.data = write;
            const int rv = uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&connection.handle), &buffer, 1,
                                    [](uv_write_t* request, int status) {
                                        auto* done = static_cast<Write*>(request->data);
                                        if (status < 0) close(*done->connection);
                                        delete done;
                                    });
            if (rv != 0) {
                delete write;
                return close(connection);
            }
        }
        if (connection.quit_after_flush && connection.slots.empty()) close(connection);
    }

    static void stop(uv_signal_t* signal, int) {
        Node& node = *static_cast<Node*>(signal->data);
        uv_signal_stop(&node.sigint_);
        uv_signal_stop(&node.sigterm_);
        raft_close(&node.raft_, [](raft* r) {
            Node& closed = *static_cast<Node*>(r->data);
            raft_uv_close(&closed.io_);
            closed.transport_.release();
            uv_stop(closed.loop_);
        });
    }

    Options options_;
    std::unique_ptr<Store> store_;
    uv_loop_t* loop_ = nullptr;
    kvstore::raft_example::NoDelayTransport transport_;
    raft_io io_{};
    raft_fsm fsm_{};
    raft raft_{};
    uv_tcp_t listener_{};
    uv_prepare_t submitter_{};
    uv_signal_t sigint_{};
    uv_signal_t sigterm_{};
    std::vector<char> read_buffer_;
    std::vector<Outcome> outcomes_;  // the entry being applied; read by applied()
    Batch open_batch_;
    int exit_code_ = 0;
};

const char* const kUsage =
    "usage: kvstore-raft-server --id N --port P --dir DIR --cluster ID=HOST:PORT,... [--join] [--bind HOST]\n"
    "Serves a Store replicated by raft: clients on PORT, raft on PORT + 1.\n"
    "  --cluster  every node's id and client address, the same on every node\n"
    "             (the first start of a node records it; later starts read raft's own)\n"
    "  --join     start empty, to be added by RAFT.ADD ID HOST:PORT on the leader\n"
    "Commands: SET GET DEL INCR (through the raft log), READONLY (GETs from this\n"
    "node, possibly stale) / READWRITE, RAFT.INFO, RAFT.ADD, RAFT.REMOVE, DBSIZE, PING, QUIT.\n";

bool parse_cluster(std::string_view text, std::vector<std::pair<raft_id, Address>>& cluster, std::string& error) {
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        const std::size_t equals = item.find('=');
        long long id = 0;
        Address address;
        if (equals == std::string_view::npos || !kvstore::server::parse_integer(item.substr(0, equals), id) ||
            id <= 0 || !parse_address(item.substr(equals + 1), address)) {
            error = "--cluster: \"" + std::string(item) + "\" is not ID=HOST:PORT with a positive id";
            return false;
        }
        for (const auto& known : cluster)
            if (known.first == static_cast<raft_id>(id)) {
                error = "--cluster: id " + std::to_string(id) + " is listed twice";
                return false;
            }
        cluster.emplace_back(static_cast<raft_id>(id), address);
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    // A peer that dies mid-write must cost an error on that connection, not
    // this process.
    std::signal(SIGPIPE, SIG_IGN);
    Node::Options options;
    options.client.host = "127.0.0.1";
    long long port = 0;
    long long id = 0;
    std::string error;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        const bool has_value = i + 1 < argc;
        if (flag == "--join") {
            options.join = true;
        } else if (flag == "--help") {
            std::cout << kUsage;
            return 0;
        } else if (has_value && flag == "--id") {
            if (!kvstore::server::parse_integer(argv[++i], id) || id <= 0) error = "--id: not a positive integer";
        } else if (has_value && flag == "--port") {
            if (!kvstore::server::parse_integer(argv[++i], port) || port <= 0 || port >= 65535)
                error = "--port: not a port below 65535 (raft takes the next one)";
        } else if (has_value && flag == "--bind") {
            options.client.host = argv[++i];
        } else if (has_value && flag == "--dir") {
            options.dir = argv[++i];
        } else if (has_value && flag == "--cluster") {
            parse_cluster(argv[++i], options.cluster, error);
        } else {
            error = "unknown or incomplete argument \"" + std::string(flag) + "\"";
        }
        if (!error.empty()) break;
    }
    if (error.empty() && (id == 0 || port == 0 || options.dir.empty())) error = "--id, --port and --dir are required";
    if (error.empty() && !options.join && options.cluster.empty()) error = "--cluster is required without --join";
    if (!error.empty()) {
        std::cerr << "kvstore-raft-server: " << error << "\n" << kUsage;
        return 2;
    }
    options.id = static_cast<raft_id>(id);
    options.client.port = static_cast<unsigned>(port);
    Node node(std::move(options));
    return node.run();
}
