// The whole public API of kvstore.
#pragma once

#include <kvstore/concurrent_map.hpp>
#include <kvstore/hash.hpp>
