#!/usr/bin/env bash
# A throwaway PostgreSQL server whose data, socket and log live under DIR,
# run with pg_ctl directly (no systemd, no pg_ctlcluster). Role and database
# are both `repro`; local connections are trusted.
#
#   scripts/cluster/postgres.sh start DIR   # prints postgres://repro@127.0.0.1:PORT/repro
#   scripts/cluster/postgres.sh stop DIR
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$(realpath -m "$2")
data=$dir/data
logfile=$dir/postgres.log
# The server user may not be able to enter the caller's working directory.
cd /

log() { echo "postgres.sh: $*" >&2; }

fail() {
  log "$*"
  if [[ -f $logfile ]]; then echo "--- tail $logfile" >&2; tail -n 20 "$logfile" >&2; fi
  exit 1
}

# Debian keeps the server binaries off PATH, one directory per major version.
pg_bin() {
  local dirs=(/usr/lib/postgresql/*/bin/initdb)
  [[ -x ${dirs[0]} ]] || return 1
  printf '%s\n' "${dirs[@]%/initdb}" | sort -V | tail -n 1
}

# PostgreSQL refuses to run as root.
as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

running() { [[ -d $data ]] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null; }

start() {
  if ! bin=$(pg_bin); then
    log "installing postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
    bin=$(pg_bin)
  fi
  mkdir -p "$dir/socket"
  if ((EUID == 0)); then
    chown -R postgres:postgres "$dir"
    as_pg test -x "$dir" || fail "user postgres cannot enter $dir; choose a DIR whose parents are world-searchable (e.g. under /tmp)"
  fi

  if [[ ! -f $data/PG_VERSION ]]; then
    # The bootstrap superuser is named repro, so no separate CREATE ROLE.
    as_pg "$bin/initdb" -D "$data" -U repro --auth=trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
    # Durability is pointless for a test database and costs I/O.
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi

  local port
  if running; then
    # Line 4 of postmaster.pid is the port the server listens on.
    port=$(sed -n 4p "$data/postmaster.pid")
  else
    # Keep the previous port (and so the URL) across restarts when possible.
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [[ -z $port ]] || ! port_free "$port"; then
      port=$((20000 + RANDOM % 20000))
      while ! port_free "$port"; do port=$((20000 + RANDOM % 20000)); done
    fi
    echo "$port" >"$dir/port"
    as_pg "$bin/pg_ctl" -D "$data" -l "$logfile" -o "-p $port" -w -t 60 start >/dev/null ||
      fail "pg_ctl start failed"
  fi

  local psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U repro -X -q -v ON_ERROR_STOP=1)
  if [[ -z $("${psql[@]}" -d postgres -tAc "select 1 from pg_database where datname = 'repro'") ]]; then
    "${psql[@]}" -d postgres -c 'create database repro' || fail "create database failed"
  fi
  log "running on port $port (socket dir $dir/socket)"
  echo "postgres://repro@127.0.0.1:$port/repro"
}

stop() {
  bin=$(pg_bin) || { log "postgresql is not installed"; return 0; }
  if running; then
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || fail "pg_ctl stop failed"
  fi
  log "stopped"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
