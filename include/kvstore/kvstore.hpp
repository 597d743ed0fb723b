// The whole public API of kvstore.
#pragma once

#include <kvstore/codec.hpp>
#include <kvstore/concurrent_map.hpp>
#include <kvstore/durability.hpp>
#include <kvstore/hash.hpp>
#include <kvstore/store.hpp>
#include <kvstore/version.hpp>
