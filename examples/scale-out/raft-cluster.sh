#!/bin/sh
# Starts a cluster of kvstore-raft-servers on 127.0.0.1, changes its
# membership, finds its leader, or stops it.
#
#   raft-cluster.sh start  [-n NODES] [-p BASE_PORT] [-d DIR] [-s KVSTORE_RAFT_SERVER]
#   raft-cluster.sh add    ID [-d DIR] [-s KVSTORE_RAFT_SERVER]
#   raft-cluster.sh remove ID [-d DIR]
#   raft-cluster.sh leader [-d DIR]
#   raft-cluster.sh stop   [-d DIR]
#
# Node i serves clients on BASE_PORT + 2(i - 1) (default BASE_PORT: 7001) and
# speaks raft on the port after it; it keeps its raft log, raft snapshots and
# Store in DIR/node-<i> (default DIR: ./kvstore-raft), next to its log and
# process id. "start" returns once a leader serves; "leader" prints the
# leader's client port; "add" starts node ID empty and has the leader add it
# as a voter, "remove" has the leader remove it and then stops it.
set -eu
. "$(dirname "$0")/cluster-common.sh"
shift
node_id=
case $command in
    add | remove)
        node_id=${1:-}
        case $node_id in ''|*[!0-9]*|0) echo "raft-cluster.sh: $command needs a positive node id, not '$node_id'" >&2; exit 2 ;; esac
        shift ;;
esac
count=3
port=
dir=./kvstore-raft
program=${KVSTORE_RAFT_SERVER:-kvstore-raft-server}
parse_options "$@"
[ $# -eq "$parsed" ] || usage
nodes=$count
server=$program
# The base port is chosen once, at start, and kept in DIR.
base_port=$port
if [ -z "$base_port" ]; then
    if [ "$command" != start ] && [ -e "$dir/base-port" ]; then base_port=$(cat "$dir/base-port"); else base_port=7001; fi
fi

port_of() { echo $((base_port + 2 * ($1 - 1))); }

# Prints the client port of the node that says it leads.
find_leader() {
    for pidfile in "$dir"/node-*.pid; do
        [ -e "$pidfile" ] || continue
        id=${pidfile##*/node-}
        id=${id%.pid}
        port=$(port_of "$id")
        if redis-cli -p "$port" RAFT.INFO 2>/dev/null | tr -d '\r' | grep -qx 'state:leader'; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# Starts node $1 with the rest of the arguments.
launch() {
    id=$1
    shift
    "$server" --id "$id" --port "$(port_of "$id")" --dir "$dir/node-$id" "$@" 2> "$dir/node-$id.log" &
    pid=$!
    echo $pid > "$dir/node-$id.pid"
    wait_until "node $id answering on port $(port_of "$id")" "answers_ping $(port_of "$id") || ! kill -0 $pid 2>/dev/null"
    kill -0 $pid 2>/dev/null || { echo "raft-cluster.sh: node $id exited: $(tail -n 1 "$dir/node-$id.log")" >&2; return 1; }
}

stop_node() { stop_process "$dir/node-$1.pid"; }

stop_all() {
    for pidfile in "$dir"/node-*.pid; do stop_process "$pidfile"; done
}

# Sends a membership command to the leader; a leader that changes in
# between answers TRYAGAIN or REDIRECT, and the command is sent again.
leader_says_ok() {
    leader=$(find_leader) || { last_reply="no leader"; return 1; }
    last_reply=$(redis-cli -p "$leader" "$@" 2>&1) || true
    [ "$last_reply" = OK ]
}
tell_leader() {
    wait_until "leader answering OK to $*" "leader_says_ok $*" || { echo "raft-cluster.sh: $*: $last_reply" >&2; return 1; }
}

case $command in
    start)
        mkdir -p "$dir"
        if ls "$dir"/node-*.pid >/dev/null 2>&1; then
            echo "raft-cluster.sh: $dir already has running nodes (its .pid files); stop them first" >&2
            exit 1
        fi
        echo "$base_port" > "$dir/base-port"
        cluster=
        i=1
        while [ $i -le "$nodes" ]; do
            cluster="$cluster${cluster:+,}$i=127.0.0.1:$(port_of $i)"
            i=$((i + 1))
        done
        i=1
        while [ $i -le "$nodes" ]; do
            launch $i --cluster "$cluster" || { stop_all; exit 1; }
            i=$((i + 1))
        done
        wait_until "leader" "find_leader >/dev/null" || { stop_all; exit 1; }
        echo "$nodes kvstore-raft-servers on 127.0.0.1 (client ports $(port_of 1)-$(port_of "$nodes"), every other port); leader on $(find_leader)"
        ;;
    add)
        if [ -e "$dir/node-$node_id.pid" ]; then
            echo "raft-cluster.sh: node $node_id already runs (see $dir/node-$node_id.pid)" >&2
            exit 1
        fi
        launch "$node_id" --join || { stop_node "$node_id"; exit 1; }
        tell_leader RAFT.ADD "$node_id" "127.0.0.1:$(port_of "$node_id")" || { stop_node "$node_id"; exit 1; }
        echo "node $node_id on port $(port_of "$node_id") is a voter"
        ;;
    remove)
        tell_leader RAFT.REMOVE "$node_id"
        stop_node "$node_id"
        echo "node $node_id removed and stopped"
        ;;
    leader) find_leader || { echo "raft-cluster.sh: no node in $dir says it leads" >&2; exit 1; } ;;
    stop) stop_all ;;
    *) usage ;;
esac
