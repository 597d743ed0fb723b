# Finds xxHash's header (xxhash.h) and provides xxHash::xxHash, an INTERFACE
# target that carries the include directory only: kvstore compiles xxHash
# inline (XXH_INLINE_ALL), so nothing is linked.
#
# Debian and Ubuntu ship xxhash.h in libxxhash-dev with a pkg-config file and
# no CMake config, so pkg-config is asked first, then the usual paths.
# Set xxHash_INCLUDE_DIR to point at another copy.

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_xxHash QUIET libxxhash)
endif()

find_path(xxHash_INCLUDE_DIR xxhash.h HINTS ${PC_xxHash_INCLUDE_DIRS})
if(xxHash_INCLUDE_DIR AND NOT EXISTS "${xxHash_INCLUDE_DIR}/xxhash.h")
  message(WARNING "xxHash_INCLUDE_DIR is ${xxHash_INCLUDE_DIR}, which holds no xxhash.h")
  set(xxHash_INCLUDE_DIR "xxHash_INCLUDE_DIR-NOTFOUND" CACHE PATH "Directory holding xxhash.h" FORCE)
endif()

if(xxHash_INCLUDE_DIR AND EXISTS "${xxHash_INCLUDE_DIR}/xxhash.h")
  file(STRINGS "${xxHash_INCLUDE_DIR}/xxhash.h" _xxhash_version_lines
       REGEX "#define XXH_VERSION_(MAJOR|MINOR|RELEASE) +[0-9]+")
  foreach(_part MAJOR MINOR RELEASE)
    string(REGEX REPLACE ".*#define XXH_VERSION_${_part} +([0-9]+).*" "\\1" _xxhash_${_part}
           "${_xxhash_version_lines}")
  endforeach()
  set(xxHash_VERSION "${_xxhash_MAJOR}.${_xxhash_MINOR}.${_xxhash_RELEASE}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(xxHash
  REQUIRED_VARS xxHash_INCLUDE_DIR
  VERSION_VAR xxHash_VERSION
  REASON_FAILURE_MESSAGE
    "kvstore needs xxHash's header xxhash.h (0.8 or newer, for XXH3). Install it with Debian/Ubuntu 'apt-get install libxxhash-dev', Fedora 'dnf install xxhash-devel', macOS 'brew install xxhash'. Or set xxHash_INCLUDE_DIR to the directory holding xxhash.h.")

if(xxHash_FOUND AND NOT TARGET xxHash::xxHash)
  add_library(xxHash::xxHash INTERFACE IMPORTED)
  set_target_properties(xxHash::xxHash PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${xxHash_INCLUDE_DIR}")
endif()
mark_as_advanced(xxHash_INCLUDE_DIR)
