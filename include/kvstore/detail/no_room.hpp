// Where a Store's call meets std::bad_alloc or a limit the map throws for
// (std::length_error naming the option that raises it), the caller gets a
// Status instead of the exception: an application that runs out of room
// keeps its store, and learns what to change.
#pragma once

#include <kvstore/status.hpp>

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace kvstore::detail {

/// Returns f() (a Status); if it throws std::bad_alloc or std::length_error,
/// a kNoRoom Status "<where()>: <why>; <outcome>" instead. where() is called
/// only then, so that the call costs no string when nothing fails.
template <class Where, class F>
Status no_room_as_status(Where&& where, const char* outcome, F&& f) {
    try {
        return std::forward<F>(f)();
    } catch (const std::length_error& error) {
        return Status::no_room(where() + ": " + error.what() + "; " + outcome);
    } catch (const std::bad_alloc&) {
        return Status::no_room(where() + ": out of memory (std::bad_alloc); " + outcome);
    }
}

}  // namespace kvstore::detail
