// libraft's TCP transport with Nagle's algorithm turned off on every raft
// connection. libraft 0.15 leaves it on, so a small message sent while an
// earlier one is unacknowledged waits for the peer's delayed ACK (40 ms on
// Linux): a 3-node cluster's p99 write latency was 44 ms with it, against a
// p50 of 1.3 ms. This transport hands every call to raft_uv_tcp and sets
// TCP_NODELAY on each stream before libraft sees it.
#pragma once

#include <uv.h>
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <cstring>

namespace kvstore::raft_example {

class NoDelayTransport {
public:
    NoDelayTransport() = default;
    NoDelayTransport(const NoDelayTransport&) = delete;
    NoDelayTransport& operator=(const NoDelayTransport&) = delete;

    /// Sets up the TCP transport on `loop`; 0 or a RAFT_* error code.
    int init(uv_loop_t* loop) {
        if (int rv = raft_uv_tcp_init(&tcp_.transport, loop); rv != 0) return rv;
        outer_.transport.init = &NoDelayTransport::init_identity;
        outer_.transport.listen = &NoDelayTransport::listen;
        outer_.transport.connect = &NoDelayTransport::connect;
        outer_.transport.close = &NoDelayTransport::close;
        return 0;
    }

    /// What raft_uv_init takes.
    raft_uv_transport* transport() { return &outer_.transport; }

    /// Frees the TCP transport, once raft_uv_close has closed it.
    void release() { raft_uv_tcp_close(&tcp_.transport); }

private:
    // A connect request of libraft's, and the one this transport passes on.
    struct Connect {
        raft_uv_connect inner{};
        raft_uv_connect* outer = nullptr;
    };

    // A transport's data belongs to its user (libraft's I/O keeps itself
    // there), so each transport finds this object beside it instead.
    struct Owned {
        raft_uv_transport transport{};
        NoDelayTransport* owner = nullptr;
    };

    static NoDelayTransport& self(raft_uv_transport* t) { return *reinterpret_cast<Owned*>(t)->owner; }

    static void no_delay(uv_stream_t* stream) {
        if (stream != nullptr && stream->type == UV_TCP) uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(stream), 1);
    }

    // libraft reads the error text of the transport it was given.
    int pass_error(int rv) {
        if (rv != 0) std::memcpy(outer_.transport.errmsg, tcp_.transport.errmsg, sizeof outer_.transport.errmsg);
        return rv;
    }

    static int init_identity(raft_uv_transport* t, raft_id id, const char* address) {
        NoDelayTransport& transport = self(t);
        return transport.pass_error(transport.tcp_.transport.init(&transport.tcp_.transport, id, address));
    }

    static int listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
        NoDelayTransport& transport = self(t);
        transport.accept_cb_ = cb;
        return transport.pass_error(
            transport.tcp_.transport.listen(&transport.tcp_.transport, &NoDelayTransport::accepted));
    }

    static void accepted(raft_uv_transport* tcp, raft_id id, const char* address, uv_stream_t* stream) {
        NoDelayTransport& transport = self(tcp);
        no_delay(stream);
        transport.accept_cb_(&transport.outer_.transport, id, address, stream);
    }

    static int connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address,
                       raft_uv_connect_cb cb) {
        NoDelayTransport& transport = self(t);
        req->cb = cb;
        auto* request = new Connect;
        request->inner.data = request;
        request->outer = req;
        const int rv = transport.tcp_.transport.connect(&transport.tcp_.transport, &request->inner, id, address,
                                                        &NoDelayTransport::connected);
        if (rv != 0) delete request;
        return transport.pass_error(rv);
    }

    static void connected(raft_uv_connect* inner, uv_stream_t* stream, int status) {
        auto* request = static_cast<Connect*>(inner->data);
        raft_uv_connect* outer = request->outer;
        delete request;
        if (status == 0) no_delay(stream);
        outer->cb(outer, stream, status);
    }

    static void close(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
        NoDelayTransport& transport = self(t);
        transport.close_cb_ = cb;
        transport.tcp_.transport.close(&transport.tcp_.transport, [](raft_uv_transport* tcp) {
            NoDelayTransport& closed = self(tcp);
            closed.close_cb_(&closed.outer_.transport);
        });
    }

    Owned tcp_{{}, this};
    Owned outer_{{}, this};
    raft_uv_accept_cb accept_cb_ = nullptr;
    raft_uv_transport_close_cb close_cb_ = nullptr;
};

}  // namespace kvstore::raft_example
