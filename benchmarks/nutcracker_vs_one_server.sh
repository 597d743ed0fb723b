#!/usr/bin/env bash
# redis-benchmark against one kvstore-server and against N kvstore-servers
# behind nutcracker (examples/scale-out/nutcracker-cluster.sh), one after the
# other in the same run, with and without -P 16; the rounds alternate which
# goes first. Prints a Markdown table with the ratio proxy / one server. On
# one machine the proxy adds a hop and the servers share its cores: the
# ratio is the proxy's cost here, not the gain of spreading the servers
# over machines.
#
#   benchmarks/nutcracker_vs_one_server.sh KVSTORE_SERVER [requests] [rounds] [servers] [durability]
set -euo pipefail

server=${1:?usage: nutcracker_vs_one_server.sh KVSTORE_SERVER [requests] [rounds] [servers] [durability]}
requests=${2:-200000}
rounds=${3:-1}
servers=${4:-3}
durability=${5:-group}
cluster_script="$(dirname "$0")/../examples/scale-out/nutcracker-cluster.sh"
work=$(mktemp -d)
source "$(dirname "$0")/redis_benchmark.sh"
command -v nutcracker >/dev/null || { echo "nutcracker not found (Debian: nutcracker)" >&2; exit 2; }

run_single() {  # pipeline
    start_single 7581 --durability "$durability"
    read -r one_set _ _ one_get _ _ < <(bench 7581 "$1")
    stop_single
}

run_cluster() {  # pipeline
    rm -rf "$work/cluster"
    "$cluster_script" start -n "$servers" -p 7590 -d "$work/cluster" -s "$server" -- --durability "$durability" >/dev/null
    read -r proxy_set _ _ proxy_get _ _ < <(bench 7590 "$1")
    "$cluster_script" stop -d "$work/cluster"
}

echo "| round | -P | one server SET/s | $servers behind nutcracker SET/s | ratio | one server GET/s | behind nutcracker GET/s | ratio |"
echo "|---|---|---|---|---|---|---|---|"
print_row() {  # round pipeline
    awk -v r="$1" -v p="$2" -v os="$one_set" -v ps="$proxy_set" -v og="$one_get" -v pg="$proxy_get" \
        'BEGIN {printf "| %d | %d | %d | %d | %.2f | %d | %d | %.2f |\n", r, p, os, ps, ps/os, og, pg, pg/og}'
}
alternate_rounds "$rounds"
