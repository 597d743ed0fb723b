# Sourced by the scale-out benchmark scripts: redis-benchmark runs, one
# kvstore-server started and stopped around them, rounds that alternate
# which side goes first. Callers set $requests, $work (a scratch directory,
# removed at exit), $server (the kvstore-server binary) and $cluster_script
# (whose cluster lives in $work/cluster).

command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (Debian: redis-tools)" >&2; exit 2; }

# bench PORT PIPELINE: prints "SET_rps SET_p50 SET_p99 GET_rps GET_p50 GET_p99"
# (latencies in ms) for 50 clients, 100-byte values, 1M random keys.
bench() {
    local pipeline=()
    [[ $2 -gt 1 ]] && pipeline=(-P "$2")
    # --csv columns: test, rps, avg, min, p50, p95, p99, max.
    redis-benchmark -p "$1" -t set,get -n "$requests" -r 1000000 -d 100 -c 50 "${pipeline[@]}" --csv |
        awk -F'","' '/^"SET/ {set=$2" "$5" "$7} /^"GET/ {get=$2" "$5" "$7} END {print set, get}' | tr -d '"'
}

single_pid=
stop_single() {
    [[ -n $single_pid ]] || return 0
    kill "$single_pid" 2>/dev/null || true
    wait "$single_pid" 2>/dev/null || true
    single_pid=
}

cleanup() {
    stop_single
    "$cluster_script" stop -d "$work/cluster" 2>/dev/null || true
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# start_single PORT SERVER_ARGS...: a fresh kvstore-server in $work/single.
start_single() {
    local port=$1
    shift
    rm -rf "$work/single"
    "$server" --port "$port" --dir "$work/single" "$@" 2>"$work/single.log" &
    single_pid=$!
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "kvstore-server did not start on port $port; see $work/single.log" >&2
    return 1
}

# alternate_rounds ROUNDS: for each round and for pipelines 1 and 16, runs
# the caller's run_single and run_cluster (PIPELINE as argument), odd rounds
# one first and even rounds the other, then its print_row ROUND PIPELINE.
alternate_rounds() {
    local round pipeline
    for round in $(seq "$1"); do
        for pipeline in 1 16; do
            if ((round % 2 == 1)); then
                run_single "$pipeline"
                run_cluster "$pipeline"
            else
                run_cluster "$pipeline"
                run_single "$pipeline"
            fi
            print_row "$round" "$pipeline"
        done
    done
}
