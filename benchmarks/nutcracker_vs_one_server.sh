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
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (Debian: redis-tools)" >&2; exit 2; }
command -v nutcracker >/dev/null || { echo "nutcracker not found (Debian: nutcracker)" >&2; exit 2; }

work=$(mktemp -d)
single_pid=
cleanup() {
    [[ -n $single_pid ]] && kill "$single_pid" 2>/dev/null
    "$cluster_script" stop -d "$work/cluster" 2>/dev/null || true
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# bench PORT PIPELINE: prints "SET_rps GET_rps"
bench() {
    local pipeline=()
    [[ $2 -gt 1 ]] && pipeline=(-P "$2")
    redis-benchmark -p "$1" -t set,get -n "$requests" -r 1000000 -d 100 -c 50 "${pipeline[@]}" --csv |
        awk -F'","' '/^"SET/ {set=$2} /^"GET/ {get=$2} END {printf "%.0f %.0f\n", set, get}'
}

run_single() {  # pipeline
    rm -rf "$work/single"
    "$server" --port 7581 --dir "$work/single" --durability "$durability" 2>"$work/single.log" &
    single_pid=$!
    for _ in $(seq 200); do redis-cli -p 7581 ping >/dev/null 2>&1 && break; sleep 0.05; done
    read -r one_set one_get < <(bench 7581 "$1")
    kill "$single_pid"
    wait "$single_pid" 2>/dev/null || true
    single_pid=
}

run_cluster() {  # pipeline
    rm -rf "$work/cluster"
    "$cluster_script" start -n "$servers" -p 7590 -d "$work/cluster" -s "$server" -- --durability "$durability" >/dev/null
    read -r proxy_set proxy_get < <(bench 7590 "$1")
    "$cluster_script" stop -d "$work/cluster"
}

echo "| round | -P | one server SET/s | $servers behind nutcracker SET/s | ratio | one server GET/s | behind nutcracker GET/s | ratio |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for pipeline in 1 16; do
        if ((round % 2 == 1)); then
            run_single "$pipeline"
            run_cluster "$pipeline"
        else
            run_cluster "$pipeline"
            run_single "$pipeline"
        fi
        awk -v r="$round" -v p="$pipeline" -v os="$one_set" -v ps="$proxy_set" -v og="$one_get" -v pg="$proxy_get" \
            'BEGIN {printf "| %d | %d | %d | %d | %.2f | %d | %d | %.2f |\n", r, p, os, ps, ps/os, og, pg, pg/og}'
    done
done
