#!/usr/bin/env bash
# redis-benchmark against one durable kvstore-server (GroupCommitWAL: a write
# is acknowledged once fdatasync'd) and against the leader of a 3-node
# kvstore-raft-server cluster (a write is acknowledged once a majority has
# synced its raft entry and the leader applied it), one after the other in
# the same run, with and without -P 16; the rounds alternate which goes
# first. Prints a Markdown table with throughput, p50/p99 latency and the
# ratio cluster / one server. All nodes share this machine's cores and disk:
# on separate machines each node syncs its own disk.
#
#   benchmarks/raft_vs_one_server.sh KVSTORE_SERVER KVSTORE_RAFT_SERVER [requests] [rounds] [dir]
set -euo pipefail

usage="usage: raft_vs_one_server.sh KVSTORE_SERVER KVSTORE_RAFT_SERVER [requests] [rounds] [dir]"
server=${1:?$usage}
raft_server=${2:?$usage}
requests=${3:-100000}
rounds=${4:-1}
# On a disk, so that the syncs cost what they cost (not under tmpfs).
work=$(mktemp -d "${5:-/var/tmp}/kvstore-raft-bench-XXXXXX")
cluster_script="$(dirname "$0")/../examples/scale-out/raft-cluster.sh"
source "$(dirname "$0")/redis_benchmark.sh"

run_single() {  # pipeline
    start_single 7581 --durability group
    read -r one_set one_set_p50 one_set_p99 one_get one_get_p50 one_get_p99 < <(bench 7581 "$1")
    stop_single
}

run_cluster() {  # pipeline
    rm -rf "$work/cluster"
    "$cluster_script" start -n 3 -p 7591 -d "$work/cluster" -s "$raft_server" >/dev/null
    local leader
    leader=$("$cluster_script" leader -d "$work/cluster")
    read -r raft_set raft_set_p50 raft_set_p99 raft_get raft_get_p50 raft_get_p99 < <(bench "$leader" "$1")
    "$cluster_script" stop -d "$work/cluster"
}

echo "| round | -P | op | one server ops/s | p50 ms | p99 ms | 3-node raft ops/s | p50 ms | p99 ms | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|"
print_row() {  # round pipeline
    local row='BEGIN {printf "| %d | %d | %s | %d | %s | %s | %d | %s | %s | %.2f |\n", r, p, op, o, o50, o99, c, c50, c99, c/o}'
    awk -v r="$1" -v p="$2" -v op=SET -v o="$one_set" -v o50="$one_set_p50" -v o99="$one_set_p99" \
        -v c="$raft_set" -v c50="$raft_set_p50" -v c99="$raft_set_p99" "$row"
    awk -v r="$1" -v p="$2" -v op=GET -v o="$one_get" -v o50="$one_get_p50" -v o99="$one_get_p99" \
        -v c="$raft_get" -v c50="$raft_get_p50" -v c99="$raft_get_p99" "$row"
}
alternate_rounds "$rounds"
