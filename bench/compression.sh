#!/usr/bin/env bash
# PostgreSQL ingest with documents compressed by LZ4 against pglz (migration 27), on one
# server and one database: the columns' compression is switched with ALTER TABLE between
# runs (it applies to rows written afterwards), and the two alternate, ROUNDS rounds each,
# so that both see the same machine. Not part of `cargo test` or CI; see bench/README.md.
#
# Needs BENCH_POSTGRES_URL. Environment (all optional): SIZES="small typical",
# DURATION=5, ROUNDS=3, CONNECTIONS=16, THREADS=2, KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${BENCH_POSTGRES_URL:?set BENCH_POSTGRES_URL to a PostgreSQL database}"
SIZES=${SIZES:-small typical}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
PORT=${PORT:-42399}

# shellcheck source=bench/common.sh
source bench/common.sh
# shellcheck disable=SC2119 # no examples beyond bench_tool
start_work

url=$(fresh_database postgres compression)
start_mailroom "$url"
compress_with() {  # METHOD: the compression of rows written from now on
    psql -q "$url" -c "ALTER TABLE emails ALTER COLUMN document SET COMPRESSION $1;
                       ALTER TABLE emails ALTER COLUMN words SET COMPRESSION $1;"
}

echo "conditions: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s runs"
declare -A RPS P99
for size in $SIZES; do
    for round in $(seq "$ROUNDS"); do
        for method in pglz lz4; do
            compress_with "$method"
            result=$(post "$size" "$PORT" "$DURATION")
            echo "$size $method round $round: $result"
            RPS[$size/$method]+="$(field rps "$result") "
            P99[$size/$method]+="$(field p99_ms "$result") "
        done
    done
done
stop_server

echo
echo "| Size | pglz (median emails/s, p99 ms) | lz4 | lz4 ÷ pglz |"
echo "|---|---|---|---|"
for size in $SIZES; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    pglz=$(median ${RPS[$size/pglz]}) lz4=$(median ${RPS[$size/lz4]})
    # shellcheck disable=SC2086
    echo "| $size | $pglz/s, $(median ${P99[$size/pglz]}) | $lz4/s, $(median ${P99[$size/lz4]}) |" \
         "$(awk -v a="$lz4" -v b="$pglz" 'BEGIN {printf "%.2f×", a / b}') |"
done
