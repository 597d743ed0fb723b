#!/usr/bin/env bash
# redis-benchmark against kvstore-server and redis-server, started one after
# the other in the same run, for each persistence pairing:
#   off      kvstore --durability none      redis: no RDB, no AOF
#   durable  kvstore --durability group     redis: appendfsync always
#   relaxed  kvstore --durability relaxed   redis: appendfsync everysec
# each with and without -P 16. Prints a Markdown table with the ratios, a
# row per round, then (with more than one round) each cell's median. Rounds
# alternate which server goes first, so that drift in the machine's speed
# does not favour one. Each row also gives the CPU time each server used per
# request (its user + system time over the requests): with the client on the
# same two cores, unpipelined throughput is mostly the client's, and this is
# the server's own cost.
#
#   benchmarks/server_vs_redis.sh build/bench/examples/kvstore-server [requests] [rounds] [rows-file]
#
# With a rows file, every measurement is also written there, one line each:
#   round persistence pipeline server SET/s GET/s cpu-us SET-p50 SET-p99 GET-p50 GET-p99
# (latencies in ms, as redis-benchmark reports them), for benchmarks/run.
set -euo pipefail

server=${1:?usage: server_vs_redis.sh KVSTORE_SERVER [requests] [rounds]}
requests=${2:-1000000}
rounds=${3:-1}
rows_out=${4:-}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (Debian: redis-tools)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server not found (Debian: redis-server)" >&2; exit 2; }

work=$(mktemp -d)
pid=
rows="$work/rows"
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

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench PORT PIPELINE: prints "SET_rps GET_rps server_cpu_us_per_request
# SET_p50 SET_p99 GET_p50 GET_p99"
bench() {
    local pipeline=() before after figures set_rps get_rps latencies cpu_us
    [[ $2 -gt 1 ]] && pipeline=(-P "$2")
    before=$(cpu_ticks "$pid")
    # --csv columns: test, rps, avg, min, p50, p95, p99, max.
    figures=$(redis-benchmark -p "$1" -t set,get -n "$requests" -r 1000000 -d 100 -c 50 "${pipeline[@]}" --csv |
        tr -d '"' | awk -F, '$1 == "SET" {set=$2; sl=$5" "$7} $1 == "GET" {get=$2; gl=$5" "$7} END {printf "%.0f %.0f %s %s", set, get, sl, gl}')
    after=$(cpu_ticks "$pid")
    read -r set_rps get_rps latencies <<<"$figures"
    cpu_us=$(awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
        'BEGIN {printf "%.1f", ticks / hz * 1e6 / (2 * n)}')
    echo "$set_rps $get_rps $cpu_us $latencies"
}

# record ROUND PERSISTENCE PIPELINE SERVER FIGURES...: a line of the rows file.
record() {
    [[ -z $rows_out ]] || echo "$*" >>"$rows_out"
}

run_kvstore() {  # durability pipeline
    start_kvstore "$1"
    read -r kv_set kv_get kv_cpu kv_latency < <(bench 7479 "$2")
    stop_server
}

run_redis() {  # pipeline redis-arguments...
    local pipeline=$1
    shift
    start_redis "$@"
    read -r redis_set redis_get redis_cpu redis_latency < <(bench 7480 "$pipeline")
    stop_server
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

[[ -z $rows_out ]] || : >"$rows_out"
echo "| round | persistence | -P | kvstore SET/s | redis SET/s | SET ratio | kvstore GET/s | redis GET/s | GET ratio | CPU µs/request kvstore / redis |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for pairing in "off none --appendonly no" "durable group --appendonly yes --appendfsync always" \
        "relaxed relaxed --appendonly yes --appendfsync everysec"; do
        read -r name durability redis_args <<<"$pairing"
        for pipeline in 1 16; do
            # shellcheck disable=SC2086
            if ((round % 2 == 1)); then
                run_kvstore "$durability" "$pipeline"
                run_redis "$pipeline" $redis_args
            else
                run_redis "$pipeline" $redis_args
                run_kvstore "$durability" "$pipeline"
            fi
            echo "$name $pipeline $kv_set $redis_set $kv_get $redis_get $kv_cpu $redis_cpu" >>"$rows"
            record "$round" "$name" "$pipeline" kvstore "$kv_set" "$kv_get" "$kv_cpu" "$kv_latency"
            record "$round" "$name" "$pipeline" redis "$redis_set" "$redis_get" "$redis_cpu" "$redis_latency"
            awk -v r="$round" -v n="$name" -v p="$pipeline" -v ks="$kv_set" -v rs="$redis_set" -v kg="$kv_get" \
                -v rg="$redis_get" -v kc="$kv_cpu" -v rc="$redis_cpu" \
                'BEGIN {printf "| %d | %s | %d | %d | %d | %.2f | %d | %d | %.2f | %.1f / %.1f |\n", r, n, p, ks, rs, ks/rs, kg, rg, kg/rg, kc, rc}'
        done
    done
done

((rounds > 1)) || exit 0
echo
echo "Median of $rounds rounds per cell (each ratio is the median of the rounds' ratios):"
echo
echo "| persistence | -P | kvstore SET/s | redis SET/s | SET ratio | kvstore GET/s | redis GET/s | GET ratio | CPU µs/request kvstore / redis |"
echo "|---|---|---|---|---|---|---|---|---|"
for cell in "off 1" "off 16" "durable 1" "durable 16" "relaxed 1" "relaxed 16"; do
    awk -v cell="$cell" '
        function median(list, count,    sorted, i, j, t) {
            for (i = 1; i <= count; ++i) sorted[i] = list[i]
            for (i = 2; i <= count; ++i)
                for (j = i; j > 1 && sorted[j - 1] > sorted[j]; --j) { t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t }
            return count % 2 ? sorted[(count + 1) / 2] : (sorted[count / 2] + sorted[count / 2 + 1]) / 2
        }
        $1 " " $2 == cell {
            ++n; ks[n] = $3; rs[n] = $4; sr[n] = $3 / $4; kg[n] = $5; rg[n] = $6; gr[n] = $5 / $6; kc[n] = $7; rc[n] = $8
        }
        END {
            split(cell, c, " ")
            printf "| %s | %d | %d | %d | %.2f | %d | %d | %.2f | %.1f / %.1f |\n", c[1], c[2], median(ks, n), median(rs, n),
                median(sr, n), median(kg, n), median(rg, n), median(gr, n), median(kc, n), median(rc, n)
        }' "$rows"
done
