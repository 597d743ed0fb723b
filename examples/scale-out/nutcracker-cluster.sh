#!/bin/sh
# Starts N kvstore-servers behind one nutcracker (twemproxy) with ketama
# distribution, on 127.0.0.1, or stops them.
#
#   nutcracker-cluster.sh start [-n SERVERS] [-p PROXY_PORT] [-d DIR] [-s KVSTORE_SERVER] [-- SERVER_ARGS...]
#   nutcracker-cluster.sh stop  [-d DIR]
#
# The proxy listens on PROXY_PORT (default 22121), the servers on the ports
# after it; each server keeps its store in DIR/server-<i> (default DIR:
# ./kvstore-cluster), and DIR holds the generated nutcracker.yml, the logs
# and the process ids. Clients talk to the proxy with any Redis client; an
# application that routes keys itself builds a kvstore::HashRing from the
# same servers (names "127.0.0.1:<port>", weight 1, RingKeyHash::kMd5) and
# agrees with it.
set -eu
. "$(dirname "$0")/cluster-common.sh"
shift
count=3
port=22121
dir=./kvstore-cluster
program=${KVSTORE_SERVER:-kvstore-server}
parse_options "$@"
shift $parsed
servers=$count
proxy_port=$port
server=$program

wait_for_port() { wait_until "server on port $1" "answers_ping $1"; }

stop() {
    for pidfile in "$dir"/*.pid; do stop_process "$pidfile"; done
}

case $command in
    stop) stop ;;
    start)
        mkdir -p "$dir"
        if ls "$dir"/*.pid >/dev/null 2>&1; then
            echo "nutcracker-cluster.sh: $dir already has running processes (its .pid files); stop them first" >&2
            exit 1
        fi
        config="$dir/nutcracker.yml"
        {
            echo "kvstore:"
            echo "  listen: 127.0.0.1:$proxy_port"
            # md5 rather than nutcracker's default fnv1a_64, which runs in 32
            # bits with a small multiplier and piles short keys that differ
            # only at the end ("key:1", "key:2"...) onto one or two servers.
            echo "  hash: md5"
            echo "  distribution: ketama"
            echo "  redis: true"
            # A server that is down makes its keys fail rather than move to
            # another server that does not hold them.
            echo "  auto_eject_hosts: false"
            echo "  timeout: 10000"
            echo "  servers:"
        } > "$config"
        i=1
        while [ $i -le "$servers" ]; do
            port=$((proxy_port + i))
            "$server" --port "$port" --dir "$dir/server-$i" "$@" 2> "$dir/server-$i.log" &
            echo $! > "$dir/server-$i.pid"
            echo "   - 127.0.0.1:$port:1" >> "$config"
            i=$((i + 1))
        done
        i=1
        while [ $i -le "$servers" ]; do
            wait_for_port $((proxy_port + i)) || { stop; exit 1; }
            i=$((i + 1))
        done
        nutcracker -c "$config" -o "$dir/nutcracker.log" -a 127.0.0.1 -s $((proxy_port + servers + 1)) -d -p "$dir/nutcracker.pid" ||
            { stop; exit 1; }
        wait_for_port "$proxy_port" || { stop; exit 1; }
        echo "nutcracker on 127.0.0.1:$proxy_port in front of $servers kvstore-servers (ports $((proxy_port + 1))-$((proxy_port + servers)))"
        ;;
    *) usage ;;
esac
