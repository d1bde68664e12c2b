# shellcheck shell=bash
# Helpers shared by bench/run.sh and bench/webmail.sh; sourced, not run.
#
# The sourcing script sets WORK (its work directory), BIN (the release directory) and
# SERVER_PID (the process being measured, empty when none), and BENCH_POSTGRES_URL when
# PostgreSQL is measured too.

ensure_wrk() {
    command -v wrk >/dev/null && return 0
    echo "installing wrk…" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
}

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }   # VmHWM / VmRSS in KiB
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

# A field of a RESULT line (bench/get.lua, bench/webhook.lua).
field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$2"; }

wait_port() {
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        # shellcheck disable=SC2034 # KEEP is read by the sourcing script's cleanup
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died; see $WORK/*.log" >&2; KEEP=1; exit 1; }
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2; exit 1
}

stop_server() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

fresh_database() {  # ENGINE NAME → URL of an empty database (a fresh PostgreSQL schema)
    case $1 in
        sqlite) echo "sqlite://$WORK/$2/mailroom.db" ;;
        postgres) "$BIN/examples/bench_tool" pg-schema "$BENCH_POSTGRES_URL" mailroom_bench ;;
    esac
}

# seed_database ENGINE URL COUNT: the seeded mail of bench/README.md ("Mail state").
seed_database() {
    "$BIN/examples/bench_tool" seed "$2" "$3" | sed "s/^/seed $1: /"
    # Let the kernel write the seeded pages back first: its writeback would otherwise
    # compete with the queries for the first half minute (it doubled their latency).
    sync
}
