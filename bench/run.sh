#!/usr/bin/env bash
# Mailroom's benchmark: ingest, search, download and memory, each against the parse-only
# ceiling measured in the same run. Not part of `cargo test` or CI. See bench/README.md.
#
# Environment (all optional):
#   DURATION=5            seconds per ingest run (HUGE_DURATION for the 25 MB payloads: 15)
#   CONNECTIONS=16        concurrent connections for ingest (SEARCH_CONNECTIONS: 4)
#   THREADS=2             wrk threads
#   SIZES="small typical large huge"
#   SEED_EMAILS=1000000   emails seeded for the search runs (0 skips search)
#   BENCH_POSTGRES_URL    a PostgreSQL database to benchmark too; the run drops and
#                         recreates the schema `mailroom_bench` in it
#   KEEP=1                keep the work directory (payloads, databases, logs)
#   BASELINE_BIN          an earlier mailroom binary: ingest of BASELINE_SIZES (small
#                         typical) is measured alternately with it, BASELINE_ROUNDS (3)
#                         rounds each, and the ratio of the medians reported
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
HUGE_DURATION=${HUGE_DURATION:-15}
CONNECTIONS=${CONNECTIONS:-16}
SEARCH_CONNECTIONS=${SEARCH_CONNECTIONS:-4}
THREADS=${THREADS:-2}
SIZES=${SIZES:-small typical large huge}
SEED_EMAILS=${SEED_EMAILS:-1000000}
PORT=${PORT:-42099}
CEILING_PORT=$((PORT + 1))

# shellcheck source=bench/common.sh
source bench/common.sh
start_work ceiling

start_ceiling() {
    "$BIN/examples/ceiling" "$CEILING_PORT" >"$WORK/ceiling.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$CEILING_PORT"
}

declare -A ROWS

# Mail state at SEED_EMAILS (issue 11), in the order they run: name, path, p99 targets in ms
# (SQLite, PostgreSQL), label. The seed puts the rare word in 5 emails, the common one in
# 1/16 of them, 1,000 emails from each sender, 1 in 5 unread.
STATE_NAMES=(mailbox rare common unread_from counts)
declare -A STATE_PATH=(
    [counts]="/mailboxes"
    [mailbox]="/emails?mailbox=mbox07%40puntoa.ar&limit=10"
    [unread_from]="/emails?limit=10&q=is%3Aunread%20from%3Asender7%40example.org"
    [common]="/emails?limit=10&q=presupuesto"
    [rare]="/emails?limit=10&q=zanahoria"
)
declare -A STATE_TARGET=(
    [counts/sqlite]=5 [counts/postgres]=5 [mailbox/sqlite]=15 [mailbox/postgres]=25
    [unread_from/sqlite]=50 [unread_from/postgres]=50 [common/sqlite]=50 [common/postgres]=50
    [rare/sqlite]=50 [rare/postgres]=50
)
declare -A STATE_LABEL=(
    [counts]="unread counts of all mailboxes (\`GET /mailboxes\`: the 50 and the download test's)"
    [mailbox]="list one mailbox, first page (\`mailbox=mbox07@puntoa.ar&limit=10\`)"
    [unread_from]="\`q=is:unread from:sender7@example.org\` (1 in 5 of the 1/1000 from that sender), first page"
    [common]="body search, common word (\`q=presupuesto\`, 1/16 of emails), first page"
    [rare]="body search, rare word (\`q=zanahoria\`, 5 matches)"
)

echo "conditions: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s runs (huge ${HUGE_DURATION}s), release build, synchronous=FULL"

# --- ingest: ceiling then each engine, size by size ---------------------------------------

for size in $SIZES; do
    seconds=$DURATION; [[ $size == huge ]] && seconds=$HUGE_DURATION
    start_ceiling
    ceiling=$(post "$size" "$CEILING_PORT" "$seconds")
    ceiling_hwm=$(kib "$SERVER_PID" VmHWM)
    stop_server
    echo "ingest $size ceiling: $ceiling peak_rss_mib=$(mib "$ceiling_hwm")"
    for engine in $ENGINES; do
        start_mailroom "$(fresh_database "$engine" "ingest-$size")"
        result=$(post "$size" "$PORT" "$seconds")
        hwm=$(kib "$SERVER_PID" VmHWM)
        stop_server
        ratio=$(awk -v a="$(field rps "$result")" -v b="$(field rps "$ceiling")" 'BEGIN {printf "%.2f", a / b}')
        echo "ingest $size $engine: $result peak_rss_mib=$(mib "$hwm") ratio_to_ceiling=$ratio"
        ROWS[$size/$engine]="$(field rps "$result")/s (${ratio}× ceiling $(field rps "$ceiling")/s), p50 $(field p50_ms "$result") ms, p99 $(field p99_ms "$result") ms, non-2xx $(field non2xx "$result"), socket errors $(field socket_errors "$result"), peak RSS $(mib "$hwm") MiB"
    done
done

# --- ingest against an earlier binary, alternating -----------------------------------------

BASELINE_SIZES=${BASELINE_SIZES:-small typical}
if [[ -n ${BASELINE_BIN:-} ]]; then
    for size in $BASELINE_SIZES; do
        for engine in $ENGINES; do
            base=() new=()
            # Alternating, each on a fresh database, so that drifts in the machine's load
            # fall on both binaries alike.
            for round in $(seq "${BASELINE_ROUNDS:-3}"); do
                for which in base new; do
                    bin=$BIN/mailroom; [[ $which == base ]] && bin=$BASELINE_BIN
                    MAILROOM_BIN=$bin start_mailroom "$(fresh_database "$engine" "vs-$which")"
                    result=$(post "$size" "$PORT" "$DURATION")
                    stop_server
                    rm -rf "$WORK/vs-$which"
                    echo "ingest $size $engine $which round $round: $result"
                    if [[ $which == base ]]; then base+=("$(field rps "$result")"); else new+=("$(field rps "$result")"); fi
                done
            done
            b=$(median "${base[@]}"); n=$(median "${new[@]}")
            ratio=$(awk -v n="$n" -v b="$b" 'BEGIN {printf "%.2f", n / b}')
            mark=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.85) ? "✔" : "✘"}')
            ROWS["vs/$engine/$size"]="**${ratio}× $mark** (median $n/s against $b/s; rounds ${new[*]} against ${base[*]})"
        done
    done
fi

# --- idle RSS, download throughput, list/search at SEED_EMAILS -----------------------------

get() {  # PATH SECONDS [HEADER…] → RESULT line
    local path=$1 seconds=$2 headers=()
    shift 2
    for header in "$@"; do headers+=(-H "$header"); done
    wrk -t"$THREADS" -c"$SEARCH_CONNECTIONS" -d"${seconds}s" --timeout 30s "${headers[@]}" \
        -s bench/get.lua "http://127.0.0.1:$PORT$path" | grep '^RESULT'
}

for engine in $ENGINES; do
    url=$(fresh_database "$engine" "read")
    start_mailroom "$url"
    sleep 2
    ROWS[idle/$engine]="$(mib "$(kib "$SERVER_PID" VmRSS)") MiB"
    echo "idle $engine: ${ROWS[idle/$engine]}"

    id=$(sed "s/@@MSGID@@/download-$RANDOM/" "$WORK/payloads/large.json" |
        curl -s -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$PORT/webhook" | jq -r .email_id)
    result=$(get "/emails/$id/attachments/0" "$DURATION")
    mbps=$(awk -v b="$(field bytes "$result")" -v s="$(field seconds "$result")" 'BEGIN {printf "%.0f", b / s / 1048576}')
    ROWS[download/$engine]="$mbps MiB/s ($(field rps "$result") downloads/s of 5 MiB, p99 $(field p99_ms "$result") ms, -c$SEARCH_CONNECTIONS)"
    echo "download $engine: $result mib_per_s=$mbps"
    # The middle MiB of the same attachment (`206 Partial Content`): a resumed download
    # reads only the chunks it asks for.
    result=$(get "/emails/$id/attachments/0" "$DURATION" "Range: bytes=2097152-3145727")
    mbps=$(awk -v b="$(field bytes "$result")" -v s="$(field seconds "$result")" 'BEGIN {printf "%.0f", b / s / 1048576}')
    ROWS[range/$engine]="$mbps MiB/s ($(field rps "$result") ranges/s of 1 MiB, p50 $(field p50_ms "$result") ms, p99 $(field p99_ms "$result") ms, -c$SEARCH_CONNECTIONS)"
    echo "range $engine: $result mib_per_s=$mbps"
    stop_server

    if [[ $SEED_EMAILS -gt 0 ]]; then
        seed_database "$engine" "$url" "$SEED_EMAILS"
        start_mailroom "$url"
        # Each is asked once first (how many rows it gives is printed, so an empty seed
        # shows). Requests still running when wrk stops go on in the server, so each run
        # is followed by a pause as long as its slowest request (the whole run when none
        # completed), so that they do not slow the next query down.
        for name in "${STATE_NAMES[@]}"; do
            path=${STATE_PATH[$name]}
            first=$(curl -s -w '\n%{time_total}' -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$PORT$path")
            first_ms=$(tail -n1 <<<"$first" | awk '{printf "%.0f", $1 * 1000}')
            rows=$(sed '$d' <<<"$first" | jq '(.emails // .mailboxes) | length')
            result=$(get "$path" "$DURATION")
            echo "state $engine $name ($path, $rows rows, first alone ${first_ms} ms): $result"
            p99=$(field p99_ms "$result")
            if [[ $(field requests "$result") == 0 ]]; then
                ROWS["state/$engine/$name"]="**none completed in ${DURATION} s ✘** (the first, alone: $first_ms ms), $rows rows"
                sleep "$DURATION"
            else
                mark=$(awk -v p="$p99" -v t="${STATE_TARGET[$name/$engine]}" 'BEGIN {print (p <= t) ? "✔" : "✘"}')
                ROWS["state/$engine/$name"]="p50 $(field p50_ms "$result") ms, **p99 $p99 ms $mark**, $(field rps "$result")/s, $rows rows, non-2xx $(field non2xx "$result")"
                sleep "$(awk -v m="$(field max_ms "$result")" 'BEGIN {print 1 + m / 1000}')"
            fi
        done
        # "zz" (too short for trigrams, no match: a scan) goes last, so that its slow requests
        # still running when wrk stops do not delay the next query's first ones.
        for query in "" "subject=pedido%200424242" "subject=0424242" "subject=proveedor" "from_email=sender7@example.org" "subject=zz"; do
            result=$(get "/emails?limit=10&$query" "$DURATION")
            echo "list $engine ${query:-(no filter)}: $result"
            ROWS["list/$engine/${query:-all}"]="p50 $(field p50_ms "$result") ms, p99 $(field p99_ms "$result") ms, $(field rps "$result")/s, non-2xx $(field non2xx "$result")"
        done
        stop_server
    fi
done

# --- summary ------------------------------------------------------------------------------

echo
echo "| Work | $(sed 's/ / | /g' <<<"$ENGINES") |"
echo "|---|$(sed -E 's/[a-z]+/---|/g; s/ //g' <<<"$ENGINES")"
row() { local label=$1 key=$2 line="| $1 |"; for e in $ENGINES; do line+=" ${ROWS[$key/$e]:-n/a} |"; done; echo "$line"; }
for size in $SIZES; do row "ingest $size" "$size"; done
row "idle RSS" idle
row "attachment download" download
row "attachment range (1 MiB of 5)" range
if [[ $SEED_EMAILS -gt 0 ]]; then
    for query in all "subject=pedido%200424242" "subject=0424242" "subject=proveedor" "subject=zz" "from_email=sender7@example.org"; do
        line="| list $query at $SEED_EMAILS |"
        for e in $ENGINES; do line+=" ${ROWS[list/$e/$query]:-n/a} |"; done
        echo "$line"
    done
    echo
    echo "Mail state at $SEED_EMAILS emails, 50 mailboxes, wrk -t$THREADS -c$SEARCH_CONNECTIONS, ${DURATION}s each:"
    echo "| Work | Target p99 (SQLite / PostgreSQL) | $(sed 's/ / | /g' <<<"$ENGINES") |"
    echo "|---|---|$(sed -E 's/[a-z]+/---|/g; s/ //g' <<<"$ENGINES")"
    for name in "${STATE_NAMES[@]}"; do
        line="| ${STATE_LABEL[$name]} | ${STATE_TARGET[$name/sqlite]} / ${STATE_TARGET[$name/postgres]} ms |"
        for e in $ENGINES; do line+=" ${ROWS[state/$e/$name]:-n/a} |"; done
        echo "$line"
    done
fi
if [[ -n ${BASELINE_BIN:-} ]]; then
    echo
    echo "Ingest against $BASELINE_BIN, alternating, ${DURATION}s runs, wrk -t$THREADS -c$CONNECTIONS (target ≥ 0.85×):"
    echo "| Work | $(sed 's/ / | /g' <<<"$ENGINES") |"
    echo "|---|$(sed -E 's/[a-z]+/---|/g; s/ //g' <<<"$ENGINES")"
    for size in $BASELINE_SIZES; do
        line="| ingest $size, this binary ÷ the earlier one |"
        for e in $ENGINES; do line+=" ${ROWS[vs/$e/$size]:-n/a} |"; done
        echo "$line"
    done
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
