#!/bin/sh
# with_server.sh SERVER DURABILITY COMMAND...: starts a kvstore-server on a
# free port in a scratch directory, runs COMMAND with KVSTORE_PORT set to
# that port, then stops the server with SIGTERM. Fails if COMMAND fails or
# the server does not exit cleanly.
set -eu
server=$1
durability=$2
shift 2
dir=$(mktemp -d "/tmp/kvstore-with-server-XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    rm -rf "$dir"
}
trap cleanup EXIT
# Sixteen shards: FLUSHALL locks every shard and the log together, and
# ThreadSanitizer cannot follow more than 64 locks held by one thread.
"$server" --port 0 --dir "$dir/data" --durability "$durability" --num_shards 16 > "$dir/server.log" 2>&1 &
pid=$!
tries=0
until port=$(sed -n 's/.*ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log") && [ -n "$port" ]; do
    tries=$((tries + 1))
    if [ $tries -ge 300 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "FAILED: kvstore-server did not get ready" >&2
        cat "$dir/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
status=0
KVSTORE_PORT=$port "$@" || status=$?
kill -TERM "$pid" 2>/dev/null || true
if ! wait "$pid"; then
    echo "FAILED: kvstore-server did not exit cleanly on SIGTERM" >&2
    status=1
fi
pid=
[ $status -eq 0 ] || tail -n 20 "$dir/server.log" >&2
exit $status
