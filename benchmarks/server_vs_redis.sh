#!/usr/bin/env bash
# redis-benchmark against kvstore-server and redis-server, started one after
# the other in the same run, for each persistence pairing:
#   off      kvstore --durability none      redis: no RDB, no AOF
#   durable  kvstore --durability group     redis: appendfsync always
#   relaxed  kvstore --durability relaxed   redis: appendfsync everysec
# each with and without -P 16. Prints a Markdown table with the ratios.
#
#   benchmarks/server_vs_redis.sh build/bench/examples/kvstore-server [requests] [rounds]
set -euo pipefail

server=${1:?usage: server_vs_redis.sh KVSTORE_SERVER [requests] [rounds]}
requests=${2:-1000000}
rounds=${3:-1}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (Debian: redis-tools)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server not found (Debian: redis-server)" >&2; exit 2; }

work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

wait_for_port() {
    for _ in $(seq 200); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "nothing answers on port $1" >&2
    exit 1
}

stop_server() {
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
}

# bench PORT PIPELINE: prints "SET_rps GET_rps"
bench() {
    local pipeline=()
    [[ $2 -gt 1 ]] && pipeline=(-P "$2")
    redis-benchmark -p "$1" -t set,get -n "$requests" -r 1000000 -d 100 -c 50 "${pipeline[@]}" --csv |
        awk -F'","' '/^"SET/ {set=$2} /^"GET/ {get=$2} END {printf "%.0f %.0f\n", set, get}'
}

start_kvstore() {  # durability
    rm -rf "$work/kvstore"
    "$server" --port 7479 --dir "$work/kvstore" --durability "$1" 2>"$work/kvstore.log" &
    pid=$!
    wait_for_port 7479
}

start_redis() {  # redis persistence arguments...
    rm -rf "$work/redis" && mkdir -p "$work/redis"
    redis-server --port 7480 --dir "$work/redis" --save "" "$@" --logfile "$work/redis.log" &
    pid=$!
    wait_for_port 7480
}

echo "| persistence | -P | kvstore SET/s | redis SET/s | SET ratio | kvstore GET/s | redis GET/s | GET ratio |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for pairing in "off none --appendonly no" "durable group --appendonly yes --appendfsync always" \
        "relaxed relaxed --appendonly yes --appendfsync everysec"; do
        read -r name durability redis_args <<<"$pairing"
        for pipeline in 1 16; do
            start_kvstore "$durability"
            read -r kv_set kv_get < <(bench 7479 "$pipeline")
            stop_server
            # shellcheck disable=SC2086
            start_redis $redis_args
            read -r redis_set redis_get < <(bench 7480 "$pipeline")
            stop_server
            awk -v n="$name" -v p="$pipeline" -v ks="$kv_set" -v rs="$redis_set" -v kg="$kv_get" -v rg="$redis_get" \
                'BEGIN {printf "| %s | %d | %d | %d | %.2f | %d | %d | %.2f |\n", n, p, ks, rs, ks/rs, kg, rg, kg/rg}'
        done
    done
done
