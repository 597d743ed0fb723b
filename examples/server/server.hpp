// kvstore-server's network side: ASIO, one io_context per thread, each
// connection owned by one thread for its whole life.
//
// A connection reads what the client sent, runs every complete request in
// it and answers them with one write: a pipelined batch costs one read and
// one write. While its replies are being written or wait for a sync it
// reads nothing more, so a client that sends faster than it reads is held
// back instead of growing the server's buffers.
//
// Under the group durability mode no thread waits for a sync. A batch's
// writes are applied and logged under Store::DeferredCommits, and the
// connection hands the batch's newest LSN to the committer thread. That
// thread makes everything logged so far durable with one Store::commit
// and then releases every connection waiting on it; while it syncs, the
// next batches pile up behind it and share the next sync. Replies to writes
// therefore leave only once the writes are durable.
#pragma once

#include "commands.hpp"
#include "config.hpp"
#include "databases.hpp"
#include "protocol.hpp"

#include <asio.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kvstore::server {

template <class StoreType>
class Server {
public:
    /// Serves `databases`, whose database 0 is open.
    Server(Databases<StoreType>& databases, const ServerConfig& config)
        : databases_(databases), store_(*databases.opened(0)), config_(config), state_(config),
          parser_(config.limits) {
        const std::size_t threads =
            config.threads > 0 ? config.threads : std::max(1u, std::thread::hardware_concurrency());
        for (std::size_t i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>(databases_, state_));
        acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(workers_[0]->context);
        state_.start_background_save = [this] { return start_background_save(); };
        state_.shut_down = [this] { stop(); };
    }

    ~Server() { stop_background_save(); }

    /// Binds and listens; false with `error` saying what failed.
    bool listen(std::string& error) {
        asio::error_code ec;
        const asio::ip::address address = asio::ip::make_address(config_.bind, ec);
        if (ec) {
            error = "bind '" + config_.bind + "': not an IP address";
            return false;
        }
        const asio::ip::tcp::endpoint endpoint(address, static_cast<unsigned short>(config_.port));
        acceptor_->open(endpoint.protocol(), ec);
        if (!ec) acceptor_->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor_->bind(endpoint, ec);
        if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            error = "listen on " + config_.bind + ":" + std::to_string(config_.port) + ": " + ec.message();
            return false;
        }
        return true;
    }

    /// The port listened on (the one the system chose when port was 0).
    unsigned short port() const { return acceptor_->local_endpoint().port(); }

    /// Serves until SIGINT or SIGTERM. Then it stops accepting, drops the
    /// connections (replies not yet sent were never acknowledged) and
    /// finishes the syncs under way; the caller closes the store, which
    /// makes everything acknowledged durable.
    void run() {
        serve_until_stopped();
        // Destroying the contexts destroys the handlers that own connections.
        acceptor_.reset();
        workers_.clear();
    }

    /// Makes run() return; callable from any thread.
    void stop() {
        asio::post(acceptor_->get_executor(), [this] {
            asio::error_code ignored;
            acceptor_->close(ignored);
            for (auto& worker : workers_) worker->context.stop();
        });
    }

private:
    class Connection;

    // One io thread: its context and its own command executor (which keeps
    // per-thread scratch buffers).
    struct Worker {
        Worker(Databases<StoreType>& databases, ServerState& state) : context(1), executor(databases, state) {}
        asio::io_context context;
        CommandExecutor<StoreType> executor;
        std::thread thread;
    };

    // Makes logged writes durable for the connections waiting on them.
    class Committer {
    public:
        void submit(Lsn lsn, std::shared_ptr<Connection> connection) {
            std::lock_guard<std::mutex> lock(mutex_);
            waiting_.push_back({lsn, std::move(connection)});
            wakeup_.notify_one();
        }

        void run(StoreType& store) {
            std::vector<Waiting> batch;
            std::unique_lock<std::mutex> lock(mutex_);
            while (true) {
                wakeup_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
                if (waiting_.empty()) return;
                batch.swap(waiting_);
                lock.unlock();
                Lsn newest = 0;
                for (const Waiting& w : batch) newest = std::max(newest, w.lsn);
                const Status status = store.commit(newest);
                for (Waiting& w : batch) w.connection->committed(status);
                batch.clear();
                lock.lock();
            }
        }

        void stop() {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
            wakeup_.notify_one();
        }

    private:
        struct Waiting {
            Lsn lsn;
            std::shared_ptr<Connection> connection;
        };
        std::mutex mutex_;
        std::condition_variable wakeup_;
        std::vector<Waiting> waiting_;
        bool stopping_ = false;
    };

    class Connection : public std::enable_shared_from_this<Connection> {
    public:
        Connection(asio::ip::tcp::socket socket, Server& server, Worker& worker)
            : socket_(std::move(socket)), server_(server), worker_(worker), in_(kInitialBuffer) {
            server_.state_.connected.fetch_add(1, std::memory_order_relaxed);
            session_.authenticated = server_.config_.requirepass.empty();
        }
        ~Connection() {
            server_.state_.clients.remove(session_.id);
            server_.state_.connected.fetch_sub(1, std::memory_order_relaxed);
        }

        void start() {
            asio::error_code ignored;
            socket_.non_blocking(true, ignored);
            const auto peer = socket_.remote_endpoint(ignored);
            std::weak_ptr<Connection> weak = this->shared_from_this();
            session_.id = server_.state_.clients.add(
                peer.address().to_string() + ":" + std::to_string(peer.port()),
                [weak, executor = socket_.get_executor()] {
                    asio::post(executor, [weak] {
                        if (auto self = weak.lock()) self->close();
                    });
                });
            process();
        }

        // Called by the committer thread once the batch's writes are durable
        // (or the log has failed, and they never will be).
        void committed(const Status& status) {
            asio::post(socket_.get_executor(), [self = this->shared_from_this(), status] {
                if (!status) {
                    self->out_.clear();
                    Reply(self->out_, self->plain_)
                        .error("ERR the log failed, writes not durable: " + status.to_string());
                    self->closing_ = true;
                }
                self->write();
            });
        }

    private:
        static constexpr std::size_t kInitialBuffer = 16 << 10;
        static constexpr std::size_t kMinRead = 4 << 10;
        // Stop running requests and write once this much is waiting to go
        // out, so that one pipeline cannot make the output grow without end.
        static constexpr std::size_t kOutputBatch = 1 << 20;

        void read() {
            const std::size_t pending = end_ - begin_;
            const std::size_t limit = server_.config_.limits.max_query_buffer;
            if (pending >= limit || needed_ > limit) {
                // Only called with no replies waiting, so this one goes out alone.
                answer_breach("ERR Protocol error: a request needs more than max_query_buffer (" +
                                  std::to_string(limit) + " bytes)",
                              plain_);
                return write();
            }
            make_room(std::min(limit, std::max(needed_, pending + kMinRead)));
            // ASIO reads at once only if the last read may have left bytes
            // behind; after a short read it waits for the socket's readiness
            // with no call to the kernel (an async_wait would cost an
            // epoll_ctl per request).
            const std::size_t room = std::min(in_.size(), limit) - end_;
            socket_.async_read_some(asio::buffer(in_.data() + end_, room),
                                    [self = this->shared_from_this()](const asio::error_code& ec, std::size_t n) {
                                        if (ec) return self->close();
                                        self->end_ += n;
                                        self->process();
                                    });
        }

        // Moves the pending bytes to the front and sizes the buffer to hold
        // `want` bytes, shrinking it again after a large request.
        void make_room(std::size_t want) {
            const std::size_t pending = end_ - begin_;
            if (begin_ > 0) {
                std::memmove(in_.data(), in_.data() + begin_, pending);
                begin_ = 0;
                end_ = pending;
            }
            const std::size_t target = std::max(want, kInitialBuffer);
            if (in_.size() < target) {
                in_.resize(std::max(target, std::min(in_.size() * 2, server_.config_.limits.max_query_buffer)));
            } else if (in_.size() > 4 * target && in_.size() > (std::size_t{1} << 20)) {
                std::vector<char>(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(target)).swap(in_);
            }
        }

        // Runs the complete requests read so far, then writes their replies
        // (after a sync, if they logged writes that must be durable first).
        void process() {
            Lsn wait_for = 0;
            {
                typename StoreType::DeferredCommits deferred(server_.store_);
                run_requests();
                wait_for = deferred.lsn();
            }
            if (out_.empty()) {
                if (closing_) return close();
                return read();
            }
            if (wait_for != 0 && server_.config_.durability == DurabilityMode::kGroup) {
                server_.committer_.submit(wait_for, this->shared_from_this());
            } else {
                write();
            }
        }

        void run_requests() {
            std::size_t consumed = 0;
            std::string error;
            while (!closing_ && out_.size() < kOutputBatch && end_ - begin_ >= needed_) {
                const std::string_view input(in_.data() + begin_, end_ - begin_);
                const ParseResult result = server_.parser_.parse(input, request_, consumed, needed_, error);
                if (result == ParseResult::kIncomplete) return;
                needed_ = 0;
                if (result == ParseResult::kError) return answer_breach("ERR " + error, request_.plain_reply);
                begin_ += consumed;
                if (result == ParseResult::kEmpty) continue;
                plain_ = request_.plain_reply;
                Reply reply(out_, plain_, session_.resp3);
                worker_.executor.execute(request_, session_, reply);
                closing_ = session_.close_after_reply;
            }
        }

        void write() {
            asio::async_write(socket_, asio::buffer(out_),
                              [self = this->shared_from_this()](const asio::error_code& ec, std::size_t) {
                                  if (ec || self->closing_) return self->close();
                                  self->out_.clear();
                                  if (self->out_.capacity() > 4 * kOutputBatch) std::string().swap(self->out_);
                                  self->process();
                              });
        }

        // Appends the error `message` and closes after the replies go out:
        // the client broke the protocol or a limit.
        void answer_breach(const std::string& message, bool plain) {
            server_.state_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
            Reply(out_, plain).error(message);
            closing_ = true;
        }

        void close() {
            asio::error_code ignored;
            socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
            socket_.close(ignored);
        }

        asio::ip::tcp::socket socket_;
        Server& server_;
        Worker& worker_;
        std::vector<char> in_;
        std::size_t begin_ = 0;   // first unparsed byte
        std::size_t end_ = 0;     // one past the last byte read
        std::size_t needed_ = 0;  // bytes from begin_ the pending request needs at least
        std::string out_;
        Request request_;
        Session session_;
        bool plain_ = false;  // the framing of the last request, for errors
        bool closing_ = false;
    };

    void serve_until_stopped() {
        asio::signal_set signals(workers_[0]->context, SIGINT, SIGTERM);
        signals.async_wait([this](const asio::error_code& ec, int) {
            if (!ec) stop();
        });
        accept();
        std::thread committer([this] { committer_.run(store_); });
        for (auto& worker : workers_) {
            worker->thread = std::thread([&context = worker->context] {
                auto guard = asio::make_work_guard(context);
                context.run();
            });
        }
        for (auto& worker : workers_) worker->thread.join();
        committer_.stop();
        committer.join();
        stop_background_save();
    }

    void accept() {
        Worker& worker = *workers_[next_worker_++ % workers_.size()];
        acceptor_->async_accept(worker.context,
                                [this, &worker](const asio::error_code& ec, asio::ip::tcp::socket socket) {
                                    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
                                    if (!ec) admit(std::move(socket), worker);
                                    accept();
                                });
    }

    void admit(asio::ip::tcp::socket socket, Worker& worker) {
        state_.connections_total.fetch_add(1, std::memory_order_relaxed);
        asio::error_code ignored;
        if (state_.connected.load(std::memory_order_relaxed) >= state_.max_connections.load(std::memory_order_relaxed)) {
            state_.rejected_connections.fetch_add(1, std::memory_order_relaxed);
            static const char refusal[] = "-ERR max number of clients reached\r\n";
            socket.non_blocking(true, ignored);
            socket.write_some(asio::buffer(refusal, sizeof refusal - 1), ignored);
            socket.close(ignored);
            return;
        }
        socket.set_option(asio::ip::tcp::no_delay(true), ignored);
        auto connection = std::make_shared<Connection>(std::move(socket), *this, worker);
        asio::post(worker.context, [connection] { connection->start(); });
    }

    bool start_background_save() {
        std::lock_guard<std::mutex> lock(save_mutex_);
        if (saving_) return false;
        if (saver_.joinable()) saver_.join();
        saving_ = true;
        saver_ = std::thread([this] {
            for (std::size_t db = 0; db < databases_.count(); ++db) {
                StoreType* store = databases_.opened(db);
                if (store == nullptr) continue;
                if (const Status status = store->checkpoint(); !status)
                    std::cerr << "kvstore-server: BGSAVE of database " << db << " failed: " << status.to_string()
                              << '\n';
            }
            std::lock_guard<std::mutex> done(save_mutex_);
            saving_ = false;
        });
        return true;
    }

    void stop_background_save() {
        std::thread saver;
        {
            std::lock_guard<std::mutex> lock(save_mutex_);
            saver.swap(saver_);
        }
        if (saver.joinable()) saver.join();
    }

    Databases<StoreType>& databases_;
    StoreType& store_;  // database 0's, whose writes the committer makes durable in groups
    const ServerConfig& config_;
    ServerState state_;
    RequestParser parser_;
    Committer committer_;
    std::mutex save_mutex_;
    std::thread saver_;
    bool saving_ = false;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;  // on the first worker's context
    std::size_t next_worker_ = 0;
};

}  // namespace kvstore::server
