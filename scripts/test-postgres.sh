#!/usr/bin/env bash
# Runs a command (default: `cargo test`) with a throwaway PostgreSQL cluster, so the whole
# test suite, PostgreSQL half included, needs only the PostgreSQL server binaries
# (Debian: `apt-get install postgresql`; no cluster has to be configured or running).
#
#   scripts/test-postgres.sh                                   # cargo test
#   scripts/test-postgres.sh cargo test --locked --test integration store_suite::
#
# The cluster lives in a temporary folder, listens on 127.0.0.1 only (trust auth, a unix
# socket in that folder), runs with fsync=off (its data is thrown away; the tests run
# faster), and is stopped and removed on exit. The command gets
# MAILROOM_TEST_POSTGRES_URL; build.rs reads it too, to compile the PostgreSQL tests in.
#
# Environment (optional):
#   TEST_POSTGRES_PORT         port to try first (default: one in 20000-29999 derived from
#                              this checkout's path); kept stable because a changed URL
#                              makes cargo rerun build.rs and rebuild the crate and every
#                              test, and one per checkout so that two checkouts testing at
#                              once do not take each other's
#   PG_BINDIR                  folder with initdb and pg_ctl (default: the newest
#                              /usr/lib/postgresql/*/bin, else the PATH)
set -euo pipefail

if (($# == 0)); then
  set -- cargo test
fi

find_bindir() {
  if [[ -n ${PG_BINDIR:-} ]]; then
    echo "$PG_BINDIR"
    return
  fi
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -n $dir && -x $dir/initdb ]]; then
    echo "$dir"
  elif command -v initdb >/dev/null; then
    dirname "$(command -v initdb)"
  else
    echo "test-postgres: no initdb found: install the PostgreSQL server (apt-get install postgresql) or set PG_BINDIR" >&2
    exit 1
  fi
}
bindir=$(find_bindir)

# initdb refuses to run as root: then the cluster belongs to the `postgres` user.
as_owner=()
if ((EUID == 0)); then
  if ! id postgres >/dev/null 2>&1; then
    echo "test-postgres: running as root needs a 'postgres' user to own the cluster" >&2
    exit 1
  fi
  as_owner=(runuser -u postgres --)
  # Under /tmp, which the postgres user can reach whatever root's TMPDIR is.
  work=$(mktemp -d /tmp/mailroom-pg.XXXXXX)
  chown postgres: "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/mailroom-pg.XXXXXX")
fi

started=
cleanup() {
  if [[ -n $started ]]; then
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# Make Ctrl-C and `kill` go through the EXIT trap too.
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_owner[@]}" "$bindir/initdb" -D "$work/data" -U postgres --auth=trust \
  --encoding=UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 1; }

# Something listening on 127.0.0.1:$1?
in_use() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The stable port first, then random ones below the ephemeral range; pg_ctl fails if the
# port was taken between the check and the bind.
checkout=$(cd "$(dirname "$0")/.." && pwd)
stable_port=${TEST_POSTGRES_PORT:-$((20000 + $(cksum <<<"$checkout" | cut -d' ' -f1) % 10000))}
port=$stable_port
for attempt in $(seq 1 10); do
  if ! in_use "$port" \
    && "${as_owner[@]}" "$bindir/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w -s \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$work -c fsync=off" \
      start; then
    started=1
    break
  fi
  if ((attempt == 10)); then
    echo "test-postgres: PostgreSQL did not start; its log:" >&2
    cat "$work/postgres.log" >&2 || true
    exit 1
  fi
  port=$((10000 + RANDOM % 10000))
done
if [[ $port != "$stable_port" ]]; then
  echo "test-postgres: port $stable_port was taken, using $port (cargo rebuilds for a new URL)" >&2
fi

"$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres mailroom_test

# Exported before the command runs, so cargo's build of the tests sees it as well.
export MAILROOM_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/mailroom_test"
echo "test-postgres: $MAILROOM_TEST_POSTGRES_URL" >&2
"$@"
