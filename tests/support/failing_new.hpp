// Allocation failure on demand: failing_new.cpp replaces the global
// operator new (in the programs it is linked into) with one that throws
// std::bad_alloc at a chosen allocation of the calling thread. Only the
// armed thread's allocations count, so the threads a log or a store starts
// allocate as usual.
#pragma once

namespace kvstore::test {

/// Lets the calling thread's next `allocations` allocations succeed and
/// makes the one after them throw std::bad_alloc; then allocations succeed again.
void fail_allocation_after(long allocations) noexcept;

/// Disarms fail_allocation_after; returns whether the failure it armed happened.
bool stop_failing_allocations() noexcept;

}  // namespace kvstore::test
