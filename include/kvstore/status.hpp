// kvstore::Status: the result of an operation that touches the disk or
// parses a file. Errors from I/O and from damaged files are values, not
// exceptions; exceptions are kept for programming errors and allocation
// failure.
#pragma once

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace kvstore {

enum class StatusCode {
    kOk = 0,
    kIoError,          ///< a system call failed; the message names it, the file and errno
    kCorruption,       ///< a file holds bytes that cannot have been written by kvstore
    kInvalidArgument,  ///< the caller asked for something that cannot be done
    kBusy,             ///< another owner holds the resource (a locked directory)
    kFailed,           ///< the log failed earlier; the message is that first error
    kCompacted,        ///< the log records asked for were replaced by a snapshot and deleted
    kNoRoom,           ///< memory ran out, or a limit was reached; the message names the option that raises it
};

/// Returns a short name for `code` ("ok", "I/O error", ...).
inline const char* to_string(StatusCode code) noexcept {
    switch (code) {
    case StatusCode::kOk:
        return "ok";
    case StatusCode::kIoError:
        return "I/O error";
    case StatusCode::kCorruption:
        return "corruption";
    case StatusCode::kInvalidArgument:
        return "invalid argument";
    case StatusCode::kBusy:
        return "busy";
    case StatusCode::kCompacted:
        return "compacted";
    case StatusCode::kFailed:
        return "log failed";
    case StatusCode::kNoRoom:
        return "no room";
    }
    return "unknown";
}

/// An operation's outcome: ok, or a StatusCode with a message naming what failed and where.
class [[nodiscard]] Status {
public:
    Status() noexcept = default;

    /// Success; the same as a default-constructed Status.
    static Status ok() noexcept { return Status(); }
    /// An error from system call `call` on `path`, with the errno it set.
    static Status io_error(const std::string& call, const std::string& path, int error_number) {
        return Status(
            StatusCode::kIoError,
            call + " " + path + ": " + std::strerror(error_number) + " (errno " + std::to_string(error_number) + ")",
            error_number);
    }
    /// Damage in `path` at byte `offset`.
    static Status corruption(const std::string& path, unsigned long long offset, const std::string& reason) {
        return Status(StatusCode::kCorruption, path + " at offset " + std::to_string(offset) + ": " + reason, 0);
    }
    /// kInvalidArgument: `message` says what the caller asked for and why it cannot be done.
    static Status invalid_argument(std::string message) {
        return Status(StatusCode::kInvalidArgument, std::move(message), 0);
    }
    /// kBusy: `message` names the resource another owner holds.
    static Status busy(std::string message) { return Status(StatusCode::kBusy, std::move(message), 0); }
    /// kCompacted: `message` names the records a snapshot replaced.
    static Status compacted(std::string message) { return Status(StatusCode::kCompacted, std::move(message), 0); }
    /// Memory or a limit ran out; `message` says which, and what raises it.
    static Status no_room(std::string message) { return Status(StatusCode::kNoRoom, std::move(message), 0); }

    /// A later operation on a log that failed with `cause`.
    static Status failed(const Status& cause) {
        return Status(StatusCode::kFailed, "the log stopped accepting writes after: " + cause.message(),
                      cause.error_number());
    }

    /// True for success (code() == StatusCode::kOk).
    bool is_ok() const noexcept { return state_ == nullptr; }
    /// As is_ok(), so that `if (!status)` catches errors.
    explicit operator bool() const noexcept { return is_ok(); }
    /// kOk, or the kind of error.
    StatusCode code() const noexcept { return state_ ? state_->code : StatusCode::kOk; }
    /// The errno behind an I/O error, 0 otherwise.
    int error_number() const noexcept { return state_ ? state_->error_number : 0; }
    /// What failed and where, without the code's name; empty for success.
    const std::string& message() const noexcept {
        static const std::string kNone;
        return state_ ? state_->message : kNone;
    }
    /// "corruption: wal-...log at offset 96: bad checksum", or "ok".
    std::string to_string() const {
        return is_ok() ? std::string("ok") : std::string(kvstore::to_string(code())) + ": " + message();
    }

    /// A copy of `other`'s code, errno and message.
    Status(const Status& other) : state_(other.state_ ? std::make_unique<State>(*other.state_) : nullptr) {}
    /// Becomes a copy of `other`.
    Status& operator=(const Status& other) {
        if (this != &other) state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
        return *this;
    }
    /// Takes `other`'s outcome; `other` is left ok.
    Status(Status&& other) noexcept = default;
    /// Takes `other`'s outcome; `other` is left ok.
    Status& operator=(Status&& other) noexcept = default;
    ~Status() = default;

private:
    // Success is a null pointer, so that returning, moving and dropping the
    // ok Status of every write costs no more than a pointer would.
    struct State {
        StatusCode code;
        int error_number;
        std::string message;
    };

    Status(StatusCode code, std::string message, int error_number)
        : state_(std::make_unique<State>(State{code, error_number, std::move(message)})) {}

    std::unique_ptr<State> state_;
};

}  // namespace kvstore
