// xxHash, compiled into the including translation unit so that users of
// kvstore link nothing.
#pragma once

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>
