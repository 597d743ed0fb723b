#!/bin/sh
# examples/scale-out/nutcracker-cluster.sh starts its servers and proxy,
# serves through the proxy, and stops every process it started.
#   nutcracker_cluster_test.sh SCRIPT KVSTORE_SERVER
set -eu
. "$(dirname "$0")/cluster_test_support.sh"
# A proxy port unlikely to be taken, below the failover checker's (17400)
# and Linux's ephemeral range (32768 on); the servers use the next four.
port=$((10000 + $$ % 7000))
"$script" start -n 4 -p "$port" -d "$dir" -s "$server" -- --threads 1 || fail "start"
pids=$(echo $(started_pids))
[ "$(echo $pids | wc -w)" -eq 5 ] || fail "expected 5 processes (4 servers and nutcracker), got: $pids"
set_keys "$port" 200 "through the proxy"
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
stop_and_check_nothing_left $pids
echo "ok: 4 servers behind nutcracker served 200 keys and redis-benchmark, and stopped"
