#!/bin/sh
# examples/scale-out/nutcracker-cluster.sh starts its servers and proxy,
# serves through the proxy, and stops every process it started.
#   nutcracker_cluster_test.sh SCRIPT KVSTORE_SERVER
set -eu
script=$1
server=$2
dir=$(mktemp -d /tmp/kvstore-cluster-test-XXXXXX)
# A proxy port unlikely to be taken; the servers use the next four.
port=$((30000 + $$ % 20000))
fail() {
    echo "FAILED: $1" >&2
    "$script" stop -d "$dir" || true
    cat "$dir"/*.log >&2 || true
    exit 1
}
"$script" start -n 4 -p "$port" -d "$dir" -s "$server" -- --threads 1 || fail "start"
pids=
for pidfile in "$dir"/*.pid; do pids="$pids $(cat "$pidfile")"; done
[ "$(echo $pids | wc -w)" -eq 5 ] || fail "expected 5 processes (4 servers and nutcracker), got:$pids"
i=0
while [ $i -lt 200 ]; do
    [ "$(redis-cli -p "$port" SET "key:$i" "value $i")" = OK ] || fail "SET key:$i through the proxy"
    i=$((i + 1))
done
[ "$(redis-cli -p "$port" GET key:117)" = "value 117" ] || fail "GET key:117 through the proxy"
total=0
s=1
while [ $s -le 4 ]; do
    held=$(redis-cli -p $((port + s)) DBSIZE)
    [ "$held" -gt 0 ] || fail "server $s holds no keys"
    total=$((total + held))
    s=$((s + 1))
done
[ "$total" -eq 200 ] || fail "the servers hold $total keys, not 200"
redis-benchmark -p "$port" -t set,get -n 2000 -c 4 -q > "$dir/benchmark.out" 2>&1 || fail "redis-benchmark through the proxy"
"$script" stop -d "$dir" || fail "stop"
for pid in $pids; do
    if kill -0 "$pid" 2>/dev/null; then fail "process $pid still runs after stop"; fi
done
[ -z "$(ls "$dir"/*.pid 2>/dev/null)" ] || fail "stop left .pid files"
rm -rf "$dir"
echo "ok: 4 servers behind nutcracker served 200 keys and redis-benchmark, and stopped"
