#!/usr/bin/env bash
# What the shared rate limits cost per request: `GET /` (limited, authenticated) driven by
# wrk against three servers, alternately, in one run:
#   memory     SQLite: the limit and the lockout counted in the process's memory
#   shared     PostgreSQL: both in the database every instance shares (two statements)
#   none       PostgreSQL with the limit off and the lockout disabled: what `GET /` costs
#              without either, so that shared − none is the limiter's own cost
# each with one client (one hot row) and with CLIENTS distinct clients. The route itself
# reads no mail, so the engine matters only through the limiter. See bench/README.md.
#
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1/scratch bench/limits.sh
#
# Environment (optional): DURATION=5 seconds per run, ROUNDS=3 alternations,
# CONNECTIONS=16, THREADS=2, CLIENTS=10000, PORT=42099, MAILROOM_BIN (a release binary
# already built: skips the build).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${BENCH_POSTGRES_URL:?set BENCH_POSTGRES_URL to a PostgreSQL database to use}"
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
CLIENTS=${CLIENTS:-10000}
PORT=${PORT:-42099}

command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
if [[ -z ${MAILROOM_BIN:-} ]]; then
    cargo build --release --quiet --bin mailroom
fi
MAILROOM_BIN=${MAILROOM_BIN:-${CARGO_TARGET_DIR:-target}/release/mailroom}
WORK=$(mktemp -d /tmp/mailroom-limits.XXXXXX)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
export API_KEY=bench-api-key-0123456789abcdef

# A fresh schema `mailroom_limits` (dropped first), and a URL whose connections use it.
fresh_schema() {
    psql -q "$BENCH_POSTGRES_URL" -c 'SET client_min_messages = warning' \
        -c 'DROP SCHEMA IF EXISTS mailroom_limits CASCADE' -c 'CREATE SCHEMA mailroom_limits'
    local separator='?'
    [[ $BENCH_POSTGRES_URL == *\?* ]] && separator='&'
    echo "$BENCH_POSTGRES_URL${separator}options=-c%20search_path%3Dmailroom_limits%2Cpublic"
}

# start CONFIG: a fresh server and database for one configuration.
start() {
    local url limit=4000000000/minute failures=5
    case $1 in
        memory) url="sqlite://$WORK/$RANDOM/mailroom.db" ;;
        shared) url=$(fresh_schema) ;;
        none) url=$(fresh_schema); limit=off failures=0 ;;
    esac
    DATABASE_URL=$url DATA_DIR="$WORK/data" HOST=127.0.0.1 PORT=$PORT WEBMAIL_PORT=off \
        RATE_LIMIT_HEALTH=$limit LOCKOUT_MAX_FAILURES=$failures \
        "$MAILROOM_BIN" >>"$WORK/mailroom.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
        sleep 0.05
    done
    echo "server did not start; its log:" >&2; cat "$WORK/mailroom.log" >&2; exit 1
}

stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$2"; }

echo "conditions: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s runs, $ROUNDS rounds, release build"
declare -A RPS P50 P99
for round in $(seq "$ROUNDS"); do
    for clients in 1 "$CLIENTS"; do
        for config in memory shared none; do
            start "$config"
            result=$(CLIENTS=$clients wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
                -s bench/limited.lua "http://127.0.0.1:$PORT/" | grep '^RESULT')
            stop
            echo "round $round clients=$clients $config: $result"
            key="$clients/$config"
            RPS[$key]+="$(field rps "$result") "
            P50[$key]+="$(field p50_ms "$result") "
            P99[$key]+="$(field p99_ms "$result") "
            if [[ $(field non2xx "$result") != 0 ]]; then echo "non-2xx answers: see above" >&2; fi
        done
    done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo
echo "| clients | limiter | req/s (median) | vs memory | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|"
for clients in 1 "$CLIENTS"; do
    memory=$(median "${RPS[$clients/memory]}")
    for config in memory shared none; do
        key="$clients/$config"
        rps=$(median "${RPS[$key]}")
        ratio=$(awk -v a="$rps" -v b="$memory" 'BEGIN {printf "%.2f×", a / b}')
        echo "| $clients | $config | $rps | $ratio | $(median "${P50[$key]}") | $(median "${P99[$key]}") |"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
