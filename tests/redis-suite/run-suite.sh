#!/bin/sh
# Runs Redis 7.0.15's own test units (tests/, vendored unmodified) against
# a kvstore-server in external mode:
#
#   run-suite.sh SERVER DURABILITY
#
# Tests listed in skipped.txt (and skipped-DURABILITY.txt) are skipped,
# each for a reason given there; the run fails if any other test fails or
# errs, if a test of known-failures.txt passes, or if fewer than
# KVSTORE_SUITE_MIN_PASSED (200) pass.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
server=$1
durability=$2
units="type/string keyspace expire protocol info-command quit"
min_passed=${KVSTORE_SUITE_MIN_PASSED:-200}

work=$(mktemp -d "/tmp/kvstore-redis-suite-XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAILED: $1" >&2
    tail -n 20 "$work/server.log" >&2 || true
    exit 1
}

cp -r "$here/tests" "$work/tests"
mkdir -p "$work/tests/tmp"
names() { cat "$@" 2>/dev/null | grep -v '^#' | sed 's/ | .*//' | grep . || true; }
names "$here/skipped.txt" "$here/skipped-$durability.txt" > "$work/skip"

# Port 0: the server takes a free port and says which when it is ready.
# Sixteen shards: FLUSHALL locks every shard and the log together, and
# ThreadSanitizer cannot follow more than 64 locks held by one thread.
"$server" --port 0 --dir "$work/data" --durability "$durability" --num_shards 16 > "$work/server.log" 2>&1 &
pid=$!
tries=0
until port=$(sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log") && [ -n "$port" ]; do
    tries=$((tries + 1))
    [ $tries -lt 300 ] || fail "kvstore-server did not get ready"
    kill -0 "$pid" 2>/dev/null || fail "kvstore-server exited at start"
    sleep 0.1
done

singles=
for unit in $units; do singles="$singles --single unit/$unit"; done
# --ignore-encoding: the store keeps no Redis encodings (OBJECT ENCODING
# names the one Redis would pick for the bytes, not the one a history of
# writes left). --tags -needs:repl: Redis replication is out of scope.
# The framework listens on a port of its own too, below --baseport: one
# away from the other tests' ranges (below 30000) and the ephemeral ones.
(cd "$work" && tclsh tests/test_helper.tcl --host 127.0.0.1 --port "$port" --baseport $((30100 + $$ % 2500)) \
    --clients 1 --ignore-encoding --ignore-digest --tags -needs:repl --skipfile "$work/skip" $singles) 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g' > "$work/suite.log" || true

kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || fail "kvstore-server did not exit cleanly on SIGTERM"
pid=

passed=$(grep -c '^\[ok\]' "$work/suite.log" || true)
skipped=$(grep -c '^\[skip\]' "$work/suite.log" || true)
grep '^\[err\]' "$work/suite.log" | sed 's/^\[err\]: //; s/ in tests\/.*//' | sort > "$work/failed" || true
names "$here/known-failures.txt" | sort > "$work/known"
echo "Redis 7.0.15 units against kvstore-server (--durability $durability): $passed passed, $skipped skipped," \
    "$(wc -l < "$work/failed") known failures"
status=0
if grep -q '^\[exception\]' "$work/suite.log"; then
    echo "FAILED: the suite stopped on an exception:" >&2
    grep -A 12 '^\[exception\]' "$work/suite.log" >&2
    status=1
fi
unexpected=$(comm -23 "$work/failed" "$work/known")
if [ -n "$unexpected" ]; then
    echo "FAILED: tests that fail and are not in known-failures.txt:" >&2
    echo "$unexpected" >&2
    grep -A 3 '^\[err\]' "$work/suite.log" >&2
    status=1
fi
now_passing=$(comm -13 "$work/failed" "$work/known")
if [ -n "$now_passing" ]; then
    echo "FAILED: tests of known-failures.txt that no longer fail (take them off the list):" >&2
    echo "$now_passing" >&2
    status=1
fi
if [ "$passed" -lt "$min_passed" ]; then
    echo "FAILED: $passed tests passed, fewer than $min_passed" >&2
    tail -n 30 "$work/suite.log" >&2
    status=1
fi
exit $status
