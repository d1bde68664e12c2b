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

# A field of a RESULT line (bench/result.lua, which every wrk script loads).
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

# start_work [EXAMPLE…]: builds the release binary with bench_tool (and the examples
# named), makes WORK (removed on exit unless KEEP=1), exports the API key and turns the
# rate limits off, and writes the payloads. For run.sh and retention.sh.
start_work() {
    ensure_wrk
    local examples=(--example bench_tool)
    for example in "$@"; do examples+=(--example "$example"); done
    cargo build --release --quiet --bin mailroom "${examples[@]}"
    BIN=${CARGO_TARGET_DIR:-target}/release
    WORK=$(mktemp -d /tmp/mailroom-bench.XXXXXX)
    SERVER_PID=
    trap cleanup EXIT
    export API_KEY=bench-api-key-0123456789abcdef
    export RATE_LIMIT_WEBHOOK=off RATE_LIMIT_GLOBAL=off RATE_LIMIT_LIST=off RATE_LIMIT_GET=off RATE_LIMIT_ATTACHMENT=off
    "$BIN/examples/bench_tool" payloads "$WORK/payloads" | sed 's/^/payload /'
    pick_engines
}

# pick_engines: ENGINES as given, else SQLite, and PostgreSQL when BENCH_POSTGRES_URL is
# set. (An `if`, not `[[ … ]] && …`: as a function's last command, a false test would
# end the script under `set -e`.)
pick_engines() {
    if [[ -z ${ENGINES:-} ]]; then
        ENGINES=sqlite
        if [[ -n ${BENCH_POSTGRES_URL:-} ]]; then ENGINES="sqlite postgres"; fi
    fi
}

cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}

# start_mailroom DATABASE_URL: a fresh process on PORT, the webmail off, the default log
# level, logs to a file.
start_mailroom() {
    DATABASE_URL=$1 DATA_DIR="$WORK/data" HOST=127.0.0.1 PORT=$PORT WEBMAIL_PORT=off \
        "${MAILROOM_BIN:-$BIN/mailroom}" >>"$WORK/mailroom.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$PORT"
}

# post SIZE PORT SECONDS → a RESULT line from bench/webhook.lua
post() {
    PAYLOAD="$WORK/payloads/$1.json" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${3}s" --timeout 120s \
        -s bench/webhook.lua "http://127.0.0.1:$2/webhook" | grep '^RESULT'
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
