// kvstore's version: the one place it is written. CMake reads it from here
// for project(VERSION), the package version file and kvstore.pc.
#pragma once

#define KVSTORE_VERSION_MAJOR 0
#define KVSTORE_VERSION_MINOR 1
#define KVSTORE_VERSION_PATCH 0

/// The version as one number, major * 10000 + minor * 100 + patch, for
/// preprocessor comparisons.
#define KVSTORE_VERSION (KVSTORE_VERSION_MAJOR * 10000 + KVSTORE_VERSION_MINOR * 100 + KVSTORE_VERSION_PATCH)
