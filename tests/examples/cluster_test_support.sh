# Sourced by the cluster script tests, whose arguments are SCRIPT (the
# cluster script) and SERVER: a scratch directory, failing with the logs, and
# stopping with a check that no process is left.

script=$1
server=$2
dir=$(mktemp -d "/tmp/${0##*/}-XXXXXX")
fail() {
    echo "FAILED: $1" >&2
    "$script" stop -d "$dir" || true
    tail -n 20 "$dir"/*.log >&2 || true
    exit 1
}

# The ids of the processes the script started, from its .pid files (one
# line each: nutcracker's has no newline at its end).
started_pids() {
    for pidfile in "$dir"/*.pid; do [ -e "$pidfile" ] && echo "$(cat "$pidfile")"; done
}

# stop_and_check_nothing_left PIDS: runs the script's stop, and fails if
# one of PIDS still runs or a .pid file is left.
stop_and_check_nothing_left() {
    "$script" stop -d "$dir" || fail "stop"
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then fail "process $pid still runs after stop"; fi
    done
    [ -z "$(ls "$dir"/*.pid 2>/dev/null)" ] || fail "stop left .pid files"
    rm -rf "$dir"
}

# set_keys PORT COUNT WHERE: SET key:<i> to "value <i>" for i below COUNT
# through PORT (WHERE says what that port is, for the failure).
set_keys() {
    i=0
    while [ $i -lt "$2" ]; do
        [ "$(redis-cli -p "$1" SET "key:$i" "value $i")" = OK ] || fail "SET key:$i $3"
        i=$((i + 1))
    done
}
