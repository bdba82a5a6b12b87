#!/usr/bin/env bash
# This clone's throwaway PostgreSQL server on 127.0.0.1, for the tests.
#
#   scripts/postgres.sh run CMD...  start the server on a free port, run CMD with
#                                   TEST_PG_PORT set to it, stop the server, exit
#                                   with CMD's status (what `make test` does)
#   scripts/postgres.sh start       install Debian's postgresql if missing (as root),
#                                   create the cluster once, start it on
#                                   $TEST_PG_PORT (55432); print the port
#   scripts/postgres.sh stop        stop it (its data stays for the next start)
#   scripts/postgres.sh clean       stop it and delete its data
#   scripts/postgres.sh status      say whether it runs, and on which port
#
# User, password and database are `oktopost` (a throwaway, like the data). The data
# lives in this clone, in .postgres/data (or $TEST_PG_DIR), owned by the `postgres`
# user when run as root (PostgreSQL refuses to run as root). Every command acts on
# that folder's server only: another clone's server, on whatever port, is never
# stopped or used, and a port another program holds is never taken.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEFAULT_PORT=55432
ROLE=oktopost
PASSWORD=oktopost
DATABASE=oktopost

say() { echo "postgres.sh: $*" >&2; }

# The folder holding initdb and pg_ctl: on PATH, else Debian's newest version.
pg_bin() {
    local found
    if found="$(command -v pg_ctl)" && command -v initdb >/dev/null; then
        dirname "$(readlink -f "$found")"
        return
    fi
    for found in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$found/pg_ctl" && -x "$found/initdb" ]]; then
            echo "$found"
            return
        fi
    done
    return 1
}

install_postgres() {
    if [[ "$(id -u)" != 0 ]]; then
        say "PostgreSQL is not installed: install it (apt-get install postgresql) or run as root"
        exit 1
    fi
    say "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# Run a server program as the cluster's owner: `postgres` when we are root.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        (cd / && PATH="$PATH:/usr/sbin:/sbin" runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# The clone's data folder; as root, one the `postgres` user can reach: a clone
# under a private home falls back to a folder in /tmp named after the clone's path.
data_folder() {
    if [[ -n "${TEST_PG_DIR:-}" ]]; then
        echo "$TEST_PG_DIR"
    elif [[ "$(id -u)" != 0 ]] || runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
        echo "$ROOT/.postgres/data"
    else
        echo "${TMPDIR:-/tmp}/tap-oktopost-postgres-$(echo "$ROOT" | sha1sum | cut -c1-12)"
    fi
}

# The port this folder's server listens on, if it runs (line 4 of postmaster.pid).
running_port() {
    [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1 &&
        sed -n 4p "$DATA/postmaster.pid"
}

port_free() {
    python3 -c 'import socket, sys
with socket.socket() as s:
    s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

free_port() {
    python3 -c 'import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
}

create_cluster() {
    say "creating a cluster in $DATA"
    mkdir -p "$DATA"
    local password_file
    password_file="$(mktemp)"
    echo "$PASSWORD" >"$password_file"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$DATA" "$password_file"
    fi
    chmod 700 "$DATA"
    # Passwords over TCP, no Unix socket (a deep clone's path is too long for one).
    as_owner "$BIN/initdb" -D "$DATA" -U "$ROLE" --pwfile="$password_file" \
        --auth=scram-sha-256 -E UTF8 --locale=C --no-sync >/dev/null
    rm -f "$password_file"
    # Test data only: durability is not worth the time.
    as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
# Whatever the machine's zone: the loaders' timestamp conversions depend on it.
timezone = 'UTC'
EOF
}

start() {
    local port="${1:-${TEST_PG_PORT:-}}" current
    if current="$(running_port)"; then
        if [[ -z "$port" || "$port" == "$current" ]]; then
            say "already running on 127.0.0.1:$current ($DATA)"
            echo "$current"
            return
        fi
        stop
    fi
    port="${port:-$DEFAULT_PORT}"
    if ! port_free "$port"; then
        say "another program listens on 127.0.0.1:$port; set TEST_PG_PORT to a free port"
        exit 1
    fi
    [[ -f "$DATA/PG_VERSION" ]] || create_cluster
    as_owner "$BIN/pg_ctl" -D "$DATA" -o "-p $port" -l "$DATA/server.log" -w -t 60 \
        start >/dev/null
    local psql=("$BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$ROLE" -v ON_ERROR_STOP=1)
    if [[ -z "$(PGPASSWORD="$PASSWORD" "${psql[@]}" -d postgres -tAc \
        "select 1 from pg_database where datname = '$DATABASE'")" ]]; then
        PGPASSWORD="$PASSWORD" "${psql[@]}" -d postgres -c "create database $DATABASE"
    fi
    say "running on 127.0.0.1:$port: user $ROLE, password $PASSWORD, database $DATABASE ($DATA)"
    echo "$port"
}

stop() {
    if running_port >/dev/null; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        say "stopped ($DATA)"
    else
        say "not running ($DATA)"
    fi
}

# Start on a free port, run the command with TEST_PG_PORT, always stop after.
run() {
    local port status=0
    port="$(start "${TEST_PG_PORT:-$(free_port)}")"
    trap stop EXIT
    TEST_PG_PORT="$port" "$@" || status=$?
    return "$status"
}

if ! BIN="$(pg_bin)"; then
    [[ "${1:-start}" == start || "${1:-}" == run ]] || { say "not installed"; exit 3; }
    install_postgres
    BIN="$(pg_bin)"
fi
DATA="$(data_folder)"

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    run)
        shift
        run "$@"
        ;;
    clean)
        stop
        rm -rf "$DATA"
        ;;
    status)
        if port="$(running_port)"; then
            say "running on 127.0.0.1:$port ($DATA)"
        else
            say "not running ($DATA)"
            exit 3
        fi
        ;;
    *)
        say "usage: $0 [run CMD...|start|stop|clean|status]"
        exit 2
        ;;
esac
