#!/bin/sh
# readme_snippets_test.sh CXX SOURCE_DIR: every ```cpp snippet of README.md,
# as a reader would paste it into main() (its #include lines above), must
# compile with -Wall -Wextra -Wpedantic -Werror in C++17 and run in an empty
# directory without an error.
set -eu
cxx=$1
source_dir=$2
work=$(mktemp -d "/tmp/kvstore-readme-XXXXXX")
trap 'rm -rf "$work"' EXIT
awk -v dir="$work" '
    /^```cpp$/ { n++; inside = 1; includes = dir "/" n ".includes"; body = dir "/" n ".body";
                 printf "" > includes; printf "" > body; next }
    inside && /^```$/ { inside = 0; next }
    inside && /^#include/ { print > includes; next }
    inside { print > body }' "$source_dir/README.md"
count=0
for includes in "$work"/*.includes; do
    n=$(basename "$includes" .includes)
    { cat "$includes"; echo "int main() {"; cat "$work/$n.body"; echo "return 0;"; echo "}"; } > "$work/snippet$n.cpp"
    mkdir -p "$work/run$n"
    if ! "$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror -I "$source_dir/include" "$work/snippet$n.cpp" \
        -o "$work/snippet$n" -pthread; then
        echo "FAILED: README.md's C++ snippet $n does not compile alone:" >&2
        cat -n "$work/snippet$n.cpp" >&2
        exit 1
    fi
    if ! (cd "$work/run$n" && "$work/snippet$n"); then
        echo "FAILED: README.md's C++ snippet $n fails when run" >&2
        exit 1
    fi
    count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "FAILED: no C++ snippet found in README.md" >&2; exit 1; }
echo "$count README snippets compile with warnings as errors and run"
