#!/usr/bin/env bash
# A throw-away PostgreSQL server on loopback, private to the user who starts it, for the shared-study
# test and for trying the pattern by hand.
#
#   PG=$(.ci/postgres.sh start [DIR])   # prints its private state dir: $PG/url, $PG/pgpass
#   export PGPASSFILE=$PG/pgpass        # libpq (and so Optuna) reads the password from there
#   URL=$(cat "$PG/url")                # postgresql://postgres@127.0.0.1:PORT/genre (no password in it)
#   .ci/postgres.sh stop "$PG"          # stops it and deletes the state dir
#
# start makes the state dir itself: DIR when given (refused when anything, a symbolic link included,
# is already there: mkdir never follows a planted link), else a fresh `mktemp -d` one. Only its owner
# can read it; as root, the server's data and socket folders inside it belong to `postgres` (initdb
# refuses root) and nobody else can enter them. The server listens on 127.0.0.1 only, at a free port,
# with scram-sha-256 password authentication for every connection (TCP and socket) and a random
# password that is written only to the 0600 file $PG/pgpass. Another local user can neither read the
# password nor reach the socket. PostgreSQL is installed from Debian's packages when missing (as
# root, with apt-get; POSTGRES_INSTALL=no skips that).
set -euo pipefail
umask 077

usage() { echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2; }
[ $# -ge 1 ] || usage
action=$1
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

as_server() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

server_dir() {
    # A folder of the state dir the server owns: created here (never an existing path) and, as root,
    # handed to `postgres` without following links (-h).
    mkdir -m 700 "$1"
    if [ "$(id -u)" = 0 ]; then
        chown -h postgres: "$1"
    fi
}

start() {
    local bin port state password
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
    if [ -n "${1:-}" ]; then
        state=$1
        if [ -e "$state" ] || [ -L "$state" ]; then
            echo "postgres.sh: $state already exists (or is a symbolic link); give a path that does not exist yet" >&2
            exit 1
        fi
        mkdir -m 700 "$state"
    else
        state=$(mktemp -d "${TMPDIR:-/tmp}/genre-pg.XXXXXX")
    fi
    state=$(cd "$state" && pwd -P)
    # As root, `postgres` must pass through the state dir to its own folders (and see nothing else).
    [ "$(id -u)" = 0 ] && chmod 711 "$state"
    server_dir "$state/data"
    server_dir "$state/socket"
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
    # initdb reads the password from a file the server's user can read; it is deleted right after.
    server_dir "$state/init"
    printf '%s\n' "$password" >"$state/init/pw"
    [ "$(id -u)" = 0 ] && chown -h postgres: "$state/init/pw"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_server "$bin/initdb" -D "$state/data" -U postgres --auth=scram-sha-256 --pwfile="$state/init/pw" -E UTF8 \
        >"$state/initdb.log" 2>&1 || { cat "$state/initdb.log" >&2; exit 1; }
    rm -rf "$state/init"
    printf '127.0.0.1:%s:*:postgres:%s\n' "$port" "$password" >"$state/pgpass"
    chmod 600 "$state/pgpass"
    as_server "$bin/pg_ctl" -D "$state/data" -l "$state/data/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $state/socket -c unix_socket_permissions=0700" start >/dev/null \
        || { as_server cat "$state/data/server.log" >&2; exit 1; }
    PGPASSFILE="$state/pgpass" "$bin/createdb" -w -h 127.0.0.1 -p "$port" -U postgres "$database"
    echo "$bin" >"$state/bindir"
    echo "postgresql://postgres@127.0.0.1:$port/$database" >"$state/url"
    chmod 644 "$state/url"
    echo "$state"
}

stop() {
    local state=$1
    [ -L "$state" ] && { echo "postgres.sh: $state is a symbolic link; not touching it" >&2; exit 1; }
    if [ -f "$state/data/postmaster.pid" ]; then
        as_server "$(cat "$state/bindir" 2>/dev/null || bindir)/pg_ctl" -D "$state/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$state"
}

case $action in
    start) [ $# -le 2 ] || usage; start "${2:-}" ;;
    stop) [ $# -eq 2 ] || usage; stop "$2" ;;
    *) usage ;;
esac
