// kvstore::Store::DeferredCommits: a scope in which a thread's writes to a
// store return before the policy's promise holds, for a server to commit many
// clients' writes with one sync. Included by kvstore/store.hpp, after the
// Store it belongs to.
#pragma once

#include <kvstore/store.hpp>

namespace kvstore {

/// While one of these lives, the writes its thread makes to one store
/// return once they are applied and logged, without waiting for what the
/// policy promises; lsn() is the newest record they logged. Whoever
/// acknowledges those writes calls Store::commit(lsn()) first. A server
/// that answers many clients from a few threads defers this way so that
/// one sync covers the writes of every client instead of each thread
/// waiting for its own. Scopes nest; the inner one collects the LSNs
/// until it ends.
template <class K, class V, class Durability, class Hasher, class KeyEqual>
class Store<K, V, Durability, Hasher, KeyEqual>::DeferredCommits {
public:
    /// Starts deferring the calling thread's commits of writes to `store`.
    explicit DeferredCommits(const Store& store) noexcept : store_(&store), outer_(deferred_) { deferred_ = this; }
    /// Stops deferring; the writes made meanwhile still wait for commit(lsn()).
    ~DeferredCommits() { deferred_ = outer_; }
    DeferredCommits(const DeferredCommits&) = delete;
    DeferredCommits& operator=(const DeferredCommits&) = delete;

    /// The newest record logged by this thread's writes since the scope
    /// began (0 if none was logged).
    Lsn lsn() const noexcept { return lsn_; }

private:
    friend class Store;
    const Store* store_;
    DeferredCommits* outer_;
    Lsn lsn_ = 0;
};

}  // namespace kvstore
