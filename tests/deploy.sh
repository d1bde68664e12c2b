#!/usr/bin/env bash
# Checks the deployment kit as far as a container without systemd allows:
# the shell scripts lint clean, `systemd-analyze verify`, `caddy adapt`, `nginx -t` (when installed),
# install.sh (refusal, --dry-run, a DESTDIR install run twice, the staged binary serving
# /healthz) and uninstall.sh.
#
#   tests/deploy.sh [BINARY]     BINARY defaults to target/debug/mailroom
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:-target/debug/mailroom}")
[[ -x $binary ]] || { echo "deploy.sh: build mailroom first ($binary)" >&2; exit 1; }

work=$(mktemp -d)
server=""
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "deploy.sh: FAILED: $*" >&2; exit 1; }
expect_in() { grep -qF -- "$1" <<<"$2" || fail "expected '$1' in: $2"; }

step "shellcheck"
shellcheck deploy/install.sh deploy/uninstall.sh tests/deploy.sh .ci/run scripts/test-postgres.sh scripts/schemathesis.sh

step "systemd-analyze verify deploy/mailroom.service"
# verify insists that ExecStart exists: point it at the binary under test.
sed "s#/usr/local/bin/mailroom#$binary#" deploy/mailroom.service >"$work/mailroom.service"
systemd-analyze verify "$work/mailroom.service"

step "caddy adapt deploy/Caddyfile"
caddy adapt --config deploy/Caddyfile --adapter caddyfile --validate >"$work/caddy.json" 2>"$work/caddy.log" \
  || { cat "$work/caddy.log"; fail "caddy adapt"; }
expect_in '"max_size":73400320' "$(tr -d ' \n' <"$work/caddy.json")"
expect_in '"dial":"127.0.0.1:42010"' "$(tr -d ' \n' <"$work/caddy.json")"
expect_in '"dial":"127.0.0.1:26000"' "$(tr -d ' \n' <"$work/caddy.json")"
if grep -q trusted_proxies "$work/caddy.json"; then fail "the Caddyfile must not trust client forwarding headers"; fi

if command -v nginx >/dev/null; then
  step "nginx -t deploy/nginx.conf"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mail.example.com \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  sed -e "s#/etc/letsencrypt/live/[a-z.]*/fullchain.pem#$work/cert.pem#" \
    -e "s#/etc/letsencrypt/live/[a-z.]*/privkey.pem#$work/key.pem#" \
    deploy/nginx.conf >"$work/site.conf"
  printf 'pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n  include %s/site.conf;\n}\n' \
    "$work" "$work" >"$work/nginx.conf"
  nginx -t -c "$work/nginx.conf" -p "$work"
fi

step "install.sh refuses to run unprivileged"
if ((EUID == 0)); then
  as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
else
  as_nobody=()
fi
if output=$("${as_nobody[@]}" bash deploy/install.sh --binary "$binary" 2>&1); then
  fail "install.sh ran without root: $output"
fi
expect_in "must run as root" "$output"

step "install.sh --dry-run changes nothing"
output=$("${as_nobody[@]}" bash deploy/install.sh --dry-run --binary "$binary")
expect_in "+ install -m 0755 $binary /usr/local/bin/mailroom" "$output"
expect_in "+ systemctl enable mailroom.service" "$output"
expect_in "+ systemctl restart mailroom.service" "$output"
expect_in "/healthz" "$output"
expect_in "/health (expect 200)" "$output"

step "install.sh with DESTDIR, twice"
stage=$work/stage
DESTDIR=$stage bash deploy/install.sh --binary "$binary"
for file in usr/local/bin/mailroom etc/systemd/system/mailroom.service etc/mailroom/mailroom.env; do
  [[ -f $stage/$file ]] || fail "$file not installed"
done
[[ -d $stage/var/lib/mailroom ]] || fail "no data directory"
[[ $(stat -c %a "$stage/etc/mailroom/mailroom.env") == 640 ]] || fail "the env file is not 0640"
env_file=$stage/etc/mailroom/mailroom.env
expect_in "DATA_DIR=/var/lib/mailroom" "$(cat "$env_file")"
expect_in "DATABASE_URL=sqlite:///var/lib/mailroom/mailroom.db" "$(cat "$env_file")"
echo "DOMINIO=example.org" >>"$env_file"
output=$(DESTDIR=$stage bash deploy/install.sh --binary "$binary")
expect_in "keeping /etc/mailroom/mailroom.env" "$output"
expect_in "DOMINIO=example.org" "$(cat "$env_file")"
cmp -s "$binary" "$stage/usr/local/bin/mailroom" || fail "binary not installed"

step "the staged binary serves /healthz and /readyz with the staged settings"
# Port 0: the kernel picks a free port, which the server logs (JSON, so it parses simply).
DATA_DIR=$work/data DATABASE_URL="sqlite://$work/data/mailroom.db" PORT=0 WEBMAIL_PORT=0 LOG_FORMAT=json \
  "$stage/usr/local/bin/mailroom" --env-file "$env_file" serve >"$work/server.log" 2>&1 &
server=$!
port=
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*"address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/server.log" | head -n 1)
  [[ -n $port ]] && break
  kill -0 "$server" 2>/dev/null || fail "mailroom exited at startup: $(cat "$work/server.log")"
  sleep 0.1
done
[[ -n $port ]] || fail "mailroom did not log its address: $(cat "$work/server.log")"
expect_in '{"status":"ok"}' "$(curl -fsS "http://127.0.0.1:$port/healthz")"
expect_in '{"status":"ready"}' "$(curl -fsS "http://127.0.0.1:$port/readyz")"
webmail_port=$(sed -n 's#.*webmail at http://127\.0\.0\.1:\([0-9]*\)/.*#\1#p' "$work/server.log" | head -n 1)
[[ -n $webmail_port ]] || fail "mailroom did not log the webmail's URL: $(cat "$work/server.log")"
expect_in 'ok' "$(curl -fsS "http://127.0.0.1:$webmail_port/health")"
[[ -f $work/data/setup-link && $(stat -c %a "$work/data/setup-link") == 600 ]] \
  || fail "no setup link (mode 0600) on a first start"
if grep -q 'token=' "$work/server.log"; then fail "the log shows the setup token"; fi
kill -TERM "$server"
wait "$server" || fail "mailroom did not stop cleanly on SIGTERM: $(cat "$work/server.log")"
server=""

step "uninstall.sh keeps the data unless --purge"
touch "$stage/var/lib/mailroom/mailroom.db"
DESTDIR=$stage bash deploy/uninstall.sh
[[ ! -e $stage/usr/local/bin/mailroom && ! -e $stage/etc/systemd/system/mailroom.service ]] \
  || fail "uninstall left the binary or the unit"
[[ -f $stage/var/lib/mailroom/mailroom.db && -f $env_file ]] || fail "uninstall removed data"
DESTDIR=$stage bash deploy/uninstall.sh --purge
[[ ! -e $stage/var/lib/mailroom && ! -e $stage/etc/mailroom ]] || fail "--purge kept data"
output=$("${as_nobody[@]}" bash deploy/uninstall.sh --dry-run --purge)
expect_in "+ systemctl disable --now mailroom.service" "$output"

printf '\ndeploy.sh: all deployment checks passed\n'
