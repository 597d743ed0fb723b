#!/usr/bin/env bash
# redis-benchmark against two builds of kvstore-server, BEFORE and AFTER a
# change, started one after the other in the same run, under the durable
# (group) and the unlogged (none) mode, with and without -P 16, for SET,
# GET, INCR and MSET (10 keys). Rounds alternate which build goes first, so
# that drift in the machine's speed favours neither. Prints a Markdown table
# of requests/s and the ratio AFTER / BEFORE, a row per round and test, and
# (with more than one round) each cell's median. The CPU rows are the
# server's CPU microseconds per request (lower is better; the ratio is
# still after / before).
#
#   benchmarks/server_before_after.sh BEFORE_SERVER AFTER_SERVER [requests] [rounds]
set -euo pipefail

usage="usage: server_before_after.sh BEFORE_SERVER AFTER_SERVER [requests] [rounds]"
before=${1:?$usage}
after=${2:?$usage}
requests=${3:-200000}
rounds=${4:-3}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (Debian: redis-tools)" >&2; exit 2; }

# On a disk, so that the syncs cost what they cost (not under tmpfs).
work=$(mktemp -d "/var/tmp/kvstore-before-after-XXXXXX")
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run SERVER DURABILITY PIPELINE: prints "test rps" lines, and a line "CPU
# us" with the server's own CPU time (user + system) per request over all
# four tests: with the client on the same cores, throughput is partly the
# client's, and this is the server's cost alone.
run() {
    local pipeline=() ticks
    [[ $3 -gt 1 ]] && pipeline=(-P "$3")
    rm -rf "$work/data"
    "$1" --port 7485 --dir "$work/data" --durability "$2" 2>"$work/server.log" &
    pid=$!
    for _ in $(seq 200); do redis-cli -p 7485 ping >/dev/null 2>&1 && break; sleep 0.05; done
    ticks=$(cpu_ticks "$pid")
    redis-benchmark -p 7485 -t set,get,incr,mset -n "$requests" -r 1000000 -d 100 -c 50 "${pipeline[@]}" --csv |
        awk -F, 'NR > 1 {gsub(/"/, ""); split($1, name, " "); print name[1], $2}'
    awk -v ticks=$(($(cpu_ticks "$pid") - ticks)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
        'BEGIN {printf "CPU %.2f\n", ticks / hz * 1e6 / (4 * n)}'
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
}

echo "| round | durability | -P | test | before req/s | after req/s | after / before |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for durability in group none; do
        for pipeline in 1 16; do
            if ((round % 2 == 1)); then
                run "$before" "$durability" "$pipeline" > "$work/before"
                run "$after" "$durability" "$pipeline" > "$work/after"
            else
                run "$after" "$durability" "$pipeline" > "$work/after"
                run "$before" "$durability" "$pipeline" > "$work/before"
            fi
            join <(sort "$work/before") <(sort "$work/after") | while read -r test b a; do
                echo "$round $durability $pipeline $test $b $a"
            done
        done
    done
done > "$work/rows"
awk '{f = $4 == "CPU" ? "%.2f" : "%.0f"
      printf "| %s | %s | %s | %s | " f " | " f " | %.2f |\n", $1, $2, $3, $4, $5, $6, $6 / $5}' "$work/rows"
if ((rounds > 1)); then
    echo
    echo "| durability | -P | test | before req/s | after req/s | after / before (the median round) |"
    echo "|---|---|---|---|---|---|"
    for durability in group none; do
        for pipeline in 1 16; do
            for test in SET GET INCR MSET CPU; do
                awk -v d="$durability" -v p="$pipeline" -v t="$test" '$2 == d && $3 == p && $4 == t {print $5, $6, $6 / $5}' \
                    "$work/rows" | sort -k3 -g | awk -v d="$durability" -v p="$pipeline" -v t="$test" \
                    '{b[NR] = $1; a[NR] = $2; r[NR] = $3} END {m = int((NR + 1) / 2);
                      f = t == "CPU" ? "%.2f" : "%.0f"
                      printf "| %s | %s | %s | " f " | " f " | %.2f |\n", d, p, t, b[m], a[m], r[m]}'
            done
        done
    done
fi
