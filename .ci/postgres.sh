#!/usr/bin/env bash
# A throw-away PostgreSQL server on loopback, for the shared-study test and for trying the pattern by hand.
#
#   .ci/postgres.sh start DIR   # prints its URL (also written to DIR/url)
#   .ci/postgres.sh stop DIR    # stops it and deletes DIR
#
# start installs PostgreSQL from Debian's packages when it is missing (as root, with apt-get;
# POSTGRES_INSTALL=no skips that), creates a cluster in DIR/data (as the `postgres` user when run as
# root: initdb refuses root), and serves it on 127.0.0.1 at a free port with trust authentication,
# which is fine for a loopback-only, throw-away server and nothing else. DIR must be reachable by the
# `postgres` user when run as root (e.g. mktemp -d under /tmp).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$2
database=genre

bindir() {
    # Debian installs the server programs outside PATH, one folder per major version.
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$found" ] && command -v pg_ctl >/dev/null; then
        found=$(dirname "$(command -v pg_ctl)")
    fi
    echo "$found"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin port
    bin=$(bindir)
    if [ -z "$bin" ] && [ "${POSTGRES_INSTALL:-yes}" != no ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "postgres.sh: installing PostgreSQL (apt-get install postgresql)" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
        bin=$(bindir)
    fi
    if [ -z "$bin" ]; then
        echo "postgres.sh: no PostgreSQL server programs (initdb, pg_ctl) found; install the postgresql package" >&2
        exit 1
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir"
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$database"
    echo "$bin" >"$dir/bindir"
    echo "postgresql://postgres@127.0.0.1:$port/$database" | tee "$dir/url"
}

stop() {
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$(cat "$dir/bindir" 2>/dev/null || bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
}

case $action in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
