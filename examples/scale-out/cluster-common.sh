# Sourced by the cluster scripts beside it (POSIX sh): their command and
# options, waiting for a process, stopping one.

script_name=${0##*/}

usage() {
    grep "^#   $script_name" "$0" | sed 's/^# *//' >&2
    exit 2
}

# The first argument: what to do.
command=${1:-}
[ -n "$command" ] || usage

# parse_options ARGS...: reads -n COUNT, -p PORT, -d DIR and -s PROGRAM into
# $count, $port, $dir and $program (set defaults first), up to the end or a
# "--", and sets $parsed to the number of arguments read (the "--" too).
parse_options() {
    parsed=0
    while [ $# -gt 0 ]; do
        case $1 in
            -n | -p | -d | -s)
                [ $# -ge 2 ] || { echo "$script_name: $1 needs a value" >&2; usage; }
                case $1 in -n) count=$2 ;; -p) port=$2 ;; -d) dir=$2 ;; -s) program=$2 ;; esac
                shift 2
                parsed=$((parsed + 2)) ;;
            --) parsed=$((parsed + 1)); return 0 ;;
            *) echo "$script_name: unknown argument '$1'" >&2; usage ;;
        esac
    done
    case $count in ''|*[!0-9]*|0) echo "$script_name: -n needs a positive count, not '$count'" >&2; exit 2 ;; esac
    case $port in *[!0-9]*) echo "$script_name: -p needs a port number, not '$port'" >&2; exit 2 ;; esac
}

# wait_until WHAT COMMAND: runs COMMAND (a shell string) every 0.1 s until
# it succeeds, for at most 30 s; then says there was no WHAT.
wait_until() {
    tries=0
    until eval "$2"; do
        tries=$((tries + 1))
        if [ $tries -ge 300 ]; then
            echo "$script_name: no $1 after 30 s; see the logs in $dir" >&2
            return 1
        fi
        sleep 0.1
    done
}

answers_ping() { [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; }

# stop_process PIDFILE: SIGTERM, so that a server closes its files cleanly;
# SIGKILL if it still runs 10 s later.
stop_process() {
    [ -e "$1" ] || return 0
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}
