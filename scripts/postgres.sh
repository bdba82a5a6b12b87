#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the tests (`make test` starts it).
#
#   scripts/postgres.sh [start]   install Debian's postgresql if missing (as root),
#                                 create the cluster once, start it; a no-op if running
#   scripts/postgres.sh stop      stop it (its data stays for the next start)
#   scripts/postgres.sh clean     stop it and delete its data
#   scripts/postgres.sh status    say whether it runs
#
# The cluster listens on 127.0.0.1 only, port $TEST_PG_PORT (55432): user, password
# and database `oktopost` (a throwaway, like the data). Its data lives in
# $TEST_PG_DIR (default ${TMPDIR:-/tmp}/tap-oktopost-postgres-<port>), owned by the
# `postgres` user when run as root (PostgreSQL refuses to run as root).
set -euo pipefail

PORT="${TEST_PG_PORT:-55432}"
DATA="${TEST_PG_DIR:-${TMPDIR:-/tmp}/tap-oktopost-postgres-$PORT}"
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

running() {
    [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

create_cluster() {
    say "creating a cluster in $DATA"
    mkdir -p "$DATA"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$DATA"
    fi
    chmod 700 "$DATA"
    # Trust on the cluster's own socket (for this script), passwords over TCP.
    as_owner "$BIN/initdb" -D "$DATA" -U "$ROLE" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync >/dev/null
    # Test data only: durability is not worth the time.
    as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA'
fsync = off
synchronous_commit = off
full_page_writes = off
# Whatever the machine's zone: the loaders' timestamp conversions depend on it.
timezone = 'UTC'
EOF
}

start() {
    if ! BIN="$(pg_bin)"; then
        install_postgres
        BIN="$(pg_bin)"
    fi
    if running; then
        say "already running on 127.0.0.1:$PORT ($DATA)"
        return
    fi
    if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        say "another server already listens on 127.0.0.1:$PORT; set TEST_PG_PORT"
        exit 1
    fi
    [[ -f "$DATA/PG_VERSION" ]] || create_cluster
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null
    local psql=("$BIN/psql" -X -q -h "$DATA" -p "$PORT" -U "$ROLE" -v ON_ERROR_STOP=1)
    "${psql[@]}" -d postgres -c "alter role $ROLE password '$PASSWORD'"
    if [[ -z "$("${psql[@]}" -d postgres -tAc \
        "select 1 from pg_database where datname = '$DATABASE'")" ]]; then
        "${psql[@]}" -d postgres -c "create database $DATABASE"
    fi
    say "running on 127.0.0.1:$PORT: user $ROLE, password $PASSWORD, database $DATABASE ($DATA)"
}

stop() {
    if BIN="$(pg_bin)" && running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        say "stopped"
    else
        say "not running"
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    clean)
        stop
        rm -rf "$DATA"
        ;;
    status)
        if BIN="$(pg_bin)" && running; then
            say "running on 127.0.0.1:$PORT ($DATA)"
        else
            say "not running"
            exit 3
        fi
        ;;
    *)
        say "usage: $0 [start|stop|clean|status]"
        exit 2
        ;;
esac
