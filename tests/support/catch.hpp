// The one place that knows which Catch2 is in use: v3 splits its headers,
// v2 ships a single one. CMake defines KVSTORE_CATCH2_V3 for v3.
#pragma once

#if defined(KVSTORE_CATCH2_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
