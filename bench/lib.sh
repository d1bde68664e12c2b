# shellcheck shell=bash disable=SC2034
# Shared by the benchmark scripts (sourced, not run): builds the release binaries, makes
# the work directory and the payloads, and starts and measures servers. Expects PORT,
# THREADS and CONNECTIONS to be set.

if ! command -v wrk >/dev/null; then
    echo "installing wrk…" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

cargo build --release --quiet --bin mailroom --example ceiling --example bench_tool
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d /tmp/mailroom-bench.XXXXXX)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

export API_KEY=bench-api-key-0123456789abcdef
export RATE_LIMIT_WEBHOOK=off RATE_LIMIT_GLOBAL=off RATE_LIMIT_LIST=off RATE_LIMIT_GET=off RATE_LIMIT_ATTACHMENT=off

"$BIN/examples/bench_tool" payloads "$WORK/payloads" | sed 's/^/payload /'

# --- helpers -----------------------------------------------------------------------------

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }   # VmHWM / VmRSS in KiB
mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

wait_port() {
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died; see $WORK/*.log" >&2; KEEP=1; exit 1; }
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2; exit 1
}

# start_mailroom DATABASE_URL: a fresh process with the default log level, logs to a file.
start_mailroom() {
    DATABASE_URL=$1 DATA_DIR="$WORK/data" HOST=127.0.0.1 PORT=$PORT WEBMAIL_PORT=off \
        "${MAILROOM_BIN:-$BIN/mailroom}" >>"$WORK/mailroom.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$PORT"
}

stop_server() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

# post SIZE PORT SECONDS → a RESULT line from bench/webhook.lua
post() {
    PAYLOAD="$WORK/payloads/$1.json" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${3}s" --timeout 120s \
        -s bench/webhook.lua "http://127.0.0.1:$2/webhook" | grep '^RESULT'
}

field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$2"; }

fresh_database() {  # ENGINE NAME → URL
    case $1 in
        sqlite) echo "sqlite://$WORK/$2/mailroom.db" ;;
        postgres) "$BIN/examples/bench_tool" pg-schema "$BENCH_POSTGRES_URL" mailroom_bench ;;
    esac
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

ENGINES=sqlite
[[ -n ${BENCH_POSTGRES_URL:-} ]] && ENGINES="sqlite postgres"
