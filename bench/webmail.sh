#!/usr/bin/env bash
# The webmail's benchmark (issue 12, "Speed"): list pages, the reading view, login and
# idle memory, with logged-in clients, on the seeded mail of bench/run.sh. Not part of
# `cargo test` or CI. See bench/README.md ("The webmail").
#
# Environment (all optional):
#   DURATION=5            seconds per page
#   CONNECTIONS=4         concurrent clients, each with the same session cookie
#   THREADS=2             wrk threads
#   SEED_EMAILS=1000000   emails seeded (as bench/run.sh seeds them)
#   LOGINS=20             logins timed one after the other
#   DEEP_PAGE=1000        the deep keyset page, reached by following "Older" links
#   BENCH_POSTGRES_URL    a PostgreSQL database to benchmark too; the run drops and
#                         recreates the schema `mailroom_webmail` in it
#   ENGINES               which to run, e.g. "postgres" (default: SQLite, and PostgreSQL
#                         when BENCH_POSTGRES_URL is set)
#   WORK=DIR              a work directory to keep and reuse: a database seeded there by an
#                         earlier run (same SEED_EMAILS and URL) is not seeded again
#   KEEP=1                keep the temporary work directory
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${THREADS:-2}
SEED_EMAILS=${SEED_EMAILS:-1000000}
LOGINS=${LOGINS:-20}
DEEP_PAGE=${DEEP_PAGE:-1000}
PORT=${PORT:-42199}
WEBMAIL_PORT=$((PORT + 1))
W=http://127.0.0.1:$WEBMAIL_PORT
MAILBOX=mbox07@puntoa.ar
MAILBOX_Q=mbox07%40puntoa.ar
ADMIN=jefa
PASSWORD=bench-password-0123456789

source bench/common.sh
ensure_wrk
cargo build --release --quiet --bin mailroom --example bench_tool
BIN=${CARGO_TARGET_DIR:-target}/release
if [[ -n ${WORK:-} ]]; then
    mkdir -p "$WORK"; KEEP=1
else
    WORK=$(mktemp -d /tmp/mailroom-webmail.XXXXXX)
fi
SERVER_PID=
trap cleanup EXIT  # bench/common.sh

export API_KEY=bench-api-key-0123456789abcdef
export RATE_LIMIT_WEBHOOK=off RATE_LIMIT_GLOBAL=off RATE_LIMIT_LIST=off RATE_LIMIT_GET=off RATE_LIMIT_ATTACHMENT=off
[[ -f $WORK/payloads/typical.json ]] || "$BIN/examples/bench_tool" payloads "$WORK/payloads" >/dev/null

# --- helpers -----------------------------------------------------------------------------

# seeded ENGINE → the URL of a database holding SEED_EMAILS seeded emails, seeded now
# unless this WORK directory already has one.
seeded() {
    local marker=$WORK/seeded-$1 wanted url
    wanted=$SEED_EMAILS; [[ $1 == postgres ]] && wanted+=" $BENCH_POSTGRES_URL"
    if [[ -f $marker && $(head -n1 "$marker") == "$wanted" ]]; then
        tail -n1 "$marker"; return
    fi
    case $1 in
        sqlite) rm -rf "$WORK/sqlite"; url="sqlite://$WORK/sqlite/mailroom.db" ;;
        postgres) url=$("$BIN/examples/bench_tool" pg-schema "$BENCH_POSTGRES_URL" mailroom_webmail) ;;
    esac
    seed_database "$1" "$url" "$SEED_EMAILS" >&2
    printf '%s\n%s\n' "$wanted" "$url" >"$marker"
    echo "$url"
}

start_mailroom() {  # DATABASE_URL: the API and the webmail listener, default log level
    DATABASE_URL=$1 DATA_DIR="$WORK/data" HOST=127.0.0.1 PORT=$PORT WEBMAIL_PORT=$WEBMAIL_PORT \
        "$BIN/mailroom" >>"$WORK/mailroom.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$PORT"
    wait_port "$WEBMAIL_PORT"
}

add_user() {  # DATABASE_URL LOGIN [ARGS…]: (re)created with PASSWORD
    local url=$1; shift
    DATABASE_URL=$url "$BIN/mailroom" user remove "$1" >/dev/null 2>&1 || true
    echo "$PASSWORD" | DATABASE_URL=$url "$BIN/mailroom" user add "$@" --password-stdin >/dev/null
}

# login LOGIN → "SESSION MILLISECONDS": the login form's CSRF cookie and token, then the
# POST, timed alone (argon2id and the session's INSERT).
login() {
    local jar=$WORK/cookies csrf out
    rm -f "$jar"
    csrf=$(curl -s -c "$jar" "$W/login" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -n1 | cut -d'"' -f4)
    out=$(curl -s -b "$jar" -c "$jar" -o /dev/null -w '%{http_code} %{time_total}' \
        --data-urlencode "csrf=$csrf" --data-urlencode "email=$1" \
        --data-urlencode "password=$PASSWORD" "$W/login")
    [[ ${out%% *} == 303 ]] || { echo "login of $1 answered ${out%% *}" >&2; exit 1; }
    echo "$(awk '$6 == "mailroom_session" {print $7}' "$jar") $(awk '{printf "%.1f", $2 * 1000}' <<<"$out")"
}

fetch() { curl -s -b "mailroom_session=$1" "$W$2"; }   # SESSION PATH → the page

# deep SESSION PATH PAGES → "PAGE PATH": the page reached by following "Older" from PATH,
# PAGES - 1 times or until the last page.
deep() {
    local path=$2 page=1 next
    while ((page < $3)); do
        next=$(fetch "$1" "$path" | grep -o 'href="[^"]*" rel="next"' | cut -d'"' -f2 | sed 's/&#38;/\&/g; s/&amp;/\&/g' || true)
        [[ -z $next ]] && break
        path=$next; page=$((page + 1))
    done
    echo "$page $path"
}

# measure ENGINE NAME SESSION PATH: asked once alone, then wrk; ROWS[NAME/ENGINE] is set.
measure() {
    local first first_ms rows result
    first=$(curl -s -w '\n%{time_total}' -b "mailroom_session=$3" "$W$4")
    first_ms=$(tail -n1 <<<"$first" | awk '{printf "%.0f", $1 * 1000}')
    rows=$(sed '$d' <<<"$first" | grep -c '<li class="row' || true)
    result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s -s bench/get.lua \
        -H "Cookie: mailroom_session=$3" "$W$4" | grep '^RESULT')
    echo "page $1 $2 ($4, $rows rows, first alone ${first_ms} ms): $result"
    local p99 mark
    p99=$(field p99_ms "$result")
    mark=$(awk -v p="$p99" -v t="${TARGET[$2/$1]}" 'BEGIN {print (p <= t) ? "✔" : "✘"}')
    ROWS[$2/$1]="p50 $(field p50_ms "$result") ms, **p99 $p99 ms $mark**, $(field rps "$result")/s, non-2xx $(field non2xx "$result")"
    # Requests still running when wrk stopped must not slow the next page down.
    sleep "$(awk -v m="$(field max_ms "$result")" 'BEGIN {print 1 + m / 1000}')"
}

percentile() {  # P VALUES… → nearest-rank percentile
    local p=$1; shift
    printf '%s\n' "$@" | sort -n | awk -v p="$p" '{a[NR] = $1} END {i = int((p * NR + 99) / 100); print a[i < 1 ? 1 : i]}'
}

pick_engines
declare -A ROWS LABEL
declare -A TARGET=([list/sqlite]=15 [list/postgres]=25)
NAMES=(list deep unread all all_deep all_unread view body)
for name in "${NAMES[@]}"; do
    [[ -n ${TARGET[$name/sqlite]:-} ]] || TARGET[$name/sqlite]=${TARGET[list/sqlite]}
    [[ -n ${TARGET[$name/postgres]:-} ]] || TARGET[$name/postgres]=${TARGET[list/postgres]}
done
TARGET[view/sqlite]=10 TARGET[view/postgres]=10 TARGET[body/sqlite]=10 TARGET[body/postgres]=10

echo "conditions: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s per page, release build, $SEED_EMAILS seeded emails"

# --- each engine ---------------------------------------------------------------------------

for engine in $ENGINES; do
    url=$(seeded "$engine")
    addresses=()
    for m in $(seq -w 0 49); do addresses+=(--address "mbox$m@puntoa.ar"); done
    add_user "$url" "$MAILBOX" "${addresses[@]}"
    add_user "$url" "$ADMIN" --admin
    start_mailroom "$url"
    sleep 2
    ROWS[idle/$engine]="$(mib "$(kib "$SERVER_PID" VmRSS)") MiB"
    echo "idle $engine: ${ROWS[idle/$engine]} (webmail listener on, no session yet)"

    times=()
    for _ in $(seq "$LOGINS"); do out=$(login "$MAILBOX"); session=${out% *}; times+=("${out#* }"); done
    p50=$(percentile 50 "${times[@]}"); p99=$(percentile 99 "${times[@]}")
    mark=$(awk -v p="$p99" 'BEGIN {print (p < 150) ? "✔" : "✘"}')
    ROWS[login/$engine]="p50 $p50 ms, **p99 $p99 ms $mark** ($LOGINS one after the other)"
    echo "login $engine: ${times[*]} ms"
    out=$(login "$ADMIN"); admin=${out% *}

    id=$(sed "s/@@MSGID@@/webmail-$RANDOM$RANDOM/; s/ventas@puntoa.ar/$MAILBOX/" "$WORK/payloads/typical.json" |
        curl -s -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$PORT/webhook" | jq -r .email_id)
    view="/view/$id?folder=inbox&mailbox=$MAILBOX_Q"
    body=$(fetch "$session" "$view" | grep -o 'src="/ui/body/[^"]*"' | cut -d'"' -f2 | sed 's/&#38;/\&/g; s/&amp;/\&/g')
    [[ -n $body ]] || { echo "no body frame in the reading view of $id" >&2; exit 1; }

    list="/?folder=inbox&mailbox=$MAILBOX_Q"
    out=$(deep "$session" "$list" "$DEEP_PAGE"); deep_page=${out%% *}; deep_path=${out#* }
    out=$(deep "$admin" "/?folder=all" "$DEEP_PAGE"); all_page=${out%% *}; all_path=${out#* }
    LABEL[list]="one mailbox (\`$MAILBOX\`, 1/50 of the mail), inbox, page 1"
    LABEL[deep]="same, keyset page $deep_page (the last, following \"Older\")"
    LABEL[unread]="same mailbox, unread folder, page 1"
    LABEL[all]="admin, All mail, page 1"
    LABEL[all_deep]="admin, All mail, keyset page $all_page"
    LABEL[all_unread]="admin, All mail, unread folder, page 1"
    LABEL[view]="reading view of a typical 107 KB email (\`/view/<id>\`)"
    LABEL[body]="its body frame (\`/ui/body/<id>\`: the sanitised HTML)"

    measure "$engine" list "$session" "$list"
    measure "$engine" deep "$session" "$deep_path"
    measure "$engine" unread "$session" "/?folder=unread&mailbox=$MAILBOX_Q"
    measure "$engine" all "$admin" "/?folder=all"
    measure "$engine" all_deep "$admin" "$all_path"
    measure "$engine" all_unread "$admin" "/?folder=unread"
    measure "$engine" view "$session" "$view"
    measure "$engine" body "$session" "$body"

    sleep 2
    ROWS[after/$engine]="$(mib "$(kib "$SERVER_PID" VmRSS)") MiB (peak $(mib "$(kib "$SERVER_PID" VmHWM)") MiB)"
    echo "after $engine: ${ROWS[after/$engine]}"
    stop_server
done

# --- summary ------------------------------------------------------------------------------

echo
echo "Webmail at $SEED_EMAILS emails in 50 mailboxes, wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s each, 50 rows a page:"
echo "| Work | Target | $(sed 's/ / | /g' <<<"$ENGINES") |"
echo "|---|---|$(sed -E 's/[a-z]+/---|/g; s/ //g' <<<"$ENGINES")"
for name in "${NAMES[@]}"; do
    line="| ${LABEL[$name]} | p99 ≤ ${TARGET[$name/sqlite]} / ${TARGET[$name/postgres]} ms |"
    for e in $ENGINES; do line+=" ${ROWS[$name/$e]:-n/a} |"; done
    echo "$line"
done
line="| login (argon2id), one at a time | < 150 ms |"
for e in $ENGINES; do line+=" ${ROWS[login/$e]} |"; done; echo "$line"
line="| idle RSS, webmail listener on | ≤ 25 MB |"
for e in $ENGINES; do
    mark=$(awk -v m="${ROWS[idle/$e]% MiB}" 'BEGIN {print (m * 1.048576 <= 25) ? "✔" : "✘"}')
    line+=" **${ROWS[idle/$e]} $mark** |"
done; echo "$line"
line="| RSS after the runs above | — |"
for e in $ENGINES; do line+=" ${ROWS[after/$e]} |"; done; echo "$line"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
