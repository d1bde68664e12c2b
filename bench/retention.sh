#!/usr/bin/env bash
# Ingest while the retention sweep deletes RETENTION_EMAILS old emails (issue 11: p99 within
# 2× of the same ingest without the sweep). Not part of `cargo test` or CI; see
# bench/README.md ("Retention under load").
#
# Each round seeds RETENTION_EMAILS emails received in November 2023 into a fresh
# database, starts mailroom with RETENTION_DAYS=365 ("sweep": every seeded email is
# expired and the sweep starts at once) or without it ("quiet"), and posts small mail at
# CONNECTIONS connections for DURATION seconds. The two alternate, ROUNDS rounds each.
#
# Environment (all optional): RETENTION_EMAILS=100000, DURATION=10, ROUNDS=2,
# CONNECTIONS=16, THREADS=2, BENCH_POSTGRES_URL (as in run.sh), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

RETENTION_EMAILS=${RETENTION_EMAILS:-100000}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
PORT=${PORT:-42299}

# shellcheck source=bench/common.sh
source bench/common.sh
# shellcheck disable=SC2119 # no examples beyond bench_tool
start_work

# filed_left: the mail filed in mailboxes now (the seeded emails not yet swept, plus what
# was posted), from the kept counts: above the posted count, the sweep outlasted the run.
filed_left() {
    curl -s -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$PORT/mailboxes" | jq '[.mailboxes[].total] | add'
}

echo "conditions: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$THREADS -c$CONNECTIONS," \
     "${DURATION}s runs, $RETENTION_EMAILS expired emails, release build, synchronous=FULL"
declare -A P99 RPS
for engine in $ENGINES; do
    for round in $(seq "$ROUNDS"); do
        for mode in quiet sweep; do
            url=$(fresh_database "$engine" "retention-$mode")
            "$BIN/examples/bench_tool" seed "$url" "$RETENTION_EMAILS" >/dev/null
            sync
            days=off; [[ $mode == sweep ]] && days=365
            RETENTION_DAYS=$days start_mailroom "$url"
            result=$(post small "$PORT" "$DURATION")
            left=$(filed_left)
            stop_server
            rm -rf "$WORK/retention-$mode"
            echo "$engine $mode round $round: $result filed_after=$left"
            P99[$engine/$mode]+="$(field p99_ms "$result") "
            RPS[$engine/$mode]+="$(field rps "$result") "
        done
    done
done

echo
echo "| Engine | p99 quiet (ms) | p99 during the sweep (ms) | ratio of medians | requests/s quiet → sweep |"
echo "|---|---|---|---|---|"
for engine in $ENGINES; do
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    quiet=$(median ${P99[$engine/quiet]}) sweep=$(median ${P99[$engine/sweep]})
    ratio=$(awk -v s="$sweep" -v q="$quiet" 'BEGIN {printf "%.2f", s / q}')
    mark=$(awk -v r="$ratio" 'BEGIN {print (r <= 2) ? "✔" : "✘"}')
    echo "| $engine | ${P99[$engine/quiet]}| ${P99[$engine/sweep]}| **${ratio}× $mark** | ${RPS[$engine/quiet]}→ ${RPS[$engine/sweep]}|"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
