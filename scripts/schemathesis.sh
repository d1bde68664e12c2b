#!/usr/bin/env bash
# Fuzzes the running API against its own OpenAPI document with schemathesis: every
# operation, with generated requests (examples, coverage, fuzzing and stateful phases).
# It fails on any server error and on any response whose status, content type, headers
# or body the spec does not describe. (Checks that a request the spec allows is
# accepted, or one it forbids refused, are left out: the send API's rules and the
# lenient webhook go beyond what a schema can say.)
#
#   scripts/schemathesis.sh [BINARY]     default target/debug/mailroom
#
# Installs schemathesis from PyPI into a virtualenv ($SCHEMATHESIS_VENV, default under
# /tmp) on first use. The server runs on SQLite in a temporary folder and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/mailroom}
venv=${SCHEMATHESIS_VENV:-/tmp/mailroom-schemathesis}
if [[ ! -x $venv/bin/schemathesis ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis>=4.3,<5'
fi

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=schemathesis-key-0123456789
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

limits=(RATE_LIMIT_WEBHOOK RATE_LIMIT_HEALTH RATE_LIMIT_DOCS RATE_LIMIT_LIST RATE_LIMIT_GET
  RATE_LIMIT_ATTACHMENT RATE_LIMIT_MODIFY RATE_LIMIT_GLOBAL SEND_RATE_LIMIT)
env_vars=(API_KEY="$key" PORT="$port" WEBMAIL_PORT=off DATA_DIR="$work" DOMINIO=example.org
  SMTP_SERVER=127.0.0.1 SMTP_PORT=9 SMTP_SEC_TYPE=NONE LOCKOUT_MAX_FAILURES=1000000)
for limit in "${limits[@]}"; do env_vars+=("$limit=off"); done
env "${env_vars[@]}" "$binary" >"$work/server.log" 2>&1 &
server=$!

base=http://127.0.0.1:$port
for _ in $(seq 100); do
  curl -fs "$base/healthz" >/dev/null && break
  sleep 0.1
done
# Some stored mail, so that the reads and downloads find something.
for fixture in tests/fixtures/improvmx/*.json; do
  [[ $fixture == *.expected.json ]] && continue
  curl -fs -X POST "$base/webhook" -H 'Content-Type: application/json' --data @"$fixture" >/dev/null
done

# /events never ends by design: it is covered by tests/events_api.rs.
"$venv/bin/schemathesis" run "$base/openapi.json" \
  -H "Authorization: Bearer $key" \
  --exclude-path /events \
  --exclude-checks negative_data_rejection,positive_data_acceptance \
  --max-examples 50 --workers 2 --seed 42
