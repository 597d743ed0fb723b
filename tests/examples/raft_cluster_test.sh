#!/bin/sh
# examples/scale-out/raft-cluster.sh starts a 3-node raft cluster that
# replicates to every node, adds a fourth node that catches up, removes a
# node, keeps serving, and stops every process it started.
#   raft_cluster_test.sh SCRIPT KVSTORE_RAFT_SERVER
set -eu
. "$(dirname "$0")/cluster_test_support.sh"
# Nodes 1-4 use the eight ports from here, below Linux's ephemeral range
# (32768 on), where outgoing connections could take them.
port=$((20000 + $$ % 10000))
node_port() { echo $((port + 2 * ($1 - 1))); }
# Stale reads (READONLY) show what node $1 has applied.
local_get() { printf 'READONLY\nGET %s\n' "$2" | redis-cli -p "$(node_port "$1")" | tail -n 1; }
# Waits up to 20 s for node $1 to hold value $3 under key $2.
wait_for_value() {
    tries=0
    until [ "$(local_get "$1" "$2")" = "$3" ]; do
        tries=$((tries + 1))
        [ $tries -lt 200 ] || fail "node $1 holds '$(local_get "$1" "$2")' under $2, not '$3'"
        sleep 0.1
    done
}
voters() { redis-cli -p "$("$script" leader -d "$dir")" RAFT.INFO | tr -d '\r' | sed -n 's/^voters://p'; }

"$script" start -n 3 -p "$port" -d "$dir" -s "$server" || fail "start"
leader=$("$script" leader -d "$dir") || fail "no leader after start"
set_keys "$leader" 100 "on the leader"
[ "$(redis-cli -p "$leader" GET key:42)" = "value 42" ] || fail "GET key:42 on the leader"
for node in 1 2 3; do wait_for_value $node key:99 "value 99"; done
follower=1
[ "$(node_port 1)" = "$leader" ] && follower=2
case $(redis-cli -p "$(node_port $follower)" SET other x) in
    "REDIRECT 127.0.0.1:$leader") ;;
    *) fail "a write to follower $follower was not redirected to port $leader" ;;
esac
redis-benchmark -p "$leader" -t set,get -n 2000 -c 4 -q > "$dir/benchmark.out" 2>&1 || fail "redis-benchmark on the leader"

"$script" add 4 -d "$dir" -s "$server" || fail "add node 4"
[ "$(voters)" = 4 ] || fail "the leader counts $(voters) voters after adding node 4, not 4"
wait_for_value 4 key:0 "value 0"
wait_for_value 4 key:99 "value 99"
leader=$("$script" leader -d "$dir")
[ "$(redis-cli -p "$leader" SET after-add yes)" = OK ] || fail "SET after adding node 4"
wait_for_value 4 after-add yes

"$script" remove $follower -d "$dir" || fail "remove node $follower"
[ "$(voters)" = 3 ] || fail "the leader counts $(voters) voters after removing node $follower, not 3"
leader=$("$script" leader -d "$dir")
[ "$(redis-cli -p "$leader" SET after-remove yes)" = OK ] || fail "SET after removing node $follower"
wait_for_value 4 after-remove yes

pids=$(echo $(started_pids))
[ "$(echo $pids | wc -w)" -eq 3 ] || fail "expected 3 running nodes, got: $pids"
stop_and_check_nothing_left $pids
echo "ok: 3 raft nodes replicated 100 keys and redis-benchmark; node 4 joined and caught up; node $follower left; all stopped"
