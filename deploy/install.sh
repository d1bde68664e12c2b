#!/usr/bin/env bash
# Install or upgrade mailroom as a systemd service. Safe to run again: the binary and the
# unit are replaced, the environment file and the data are kept.
#
#   sudo deploy/install.sh                      build the release binary with cargo, install, start
#   sudo deploy/install.sh --binary PATH        install this binary instead of building
#   deploy/install.sh --dry-run [--binary PATH] print what would be done, change nothing
#   DESTDIR=/tmp/stage deploy/install.sh --binary PATH
#                                               stage the files under DESTDIR only: no user,
#                                               no systemctl, no health check (packaging, tests)
set -euo pipefail

usage() {
  sed -n '2,11s/^# \{0,1\}//p' "$0"
}

repo=$(cd "$(dirname "$0")/.." && pwd)
destdir=${DESTDIR:-}
dry_run=0
binary=""
start=1
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    --no-start) start=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
  esac
done

service_user=mailroom
bin_path=/usr/local/bin/mailroom
config_dir=/etc/mailroom
env_file=$config_dir/mailroom.env
data_dir=/var/lib/mailroom
unit_path=/etc/systemd/system/mailroom.service

# Runs a command, or only shows it with --dry-run.
run() {
  echo "+ $*"
  if ((!dry_run)); then
    "$@"
  fi
}

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

if ((EUID != 0 && !dry_run)) && [[ -z $destdir ]]; then
  die "must run as root: sudo $0 [--binary PATH]  (to see what it would do: $0 --dry-run)"
fi

# 1. The binary: the one given, or a fresh release build.
if [[ -z $binary ]]; then
  if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    # Build as the invoking user (with their rustup PATH), so target/ is not owned by root.
    sudo -u "$SUDO_USER" -H bash -lc 'command -v cargo' >/dev/null \
      || die "cargo not found for $SUDO_USER: install Rust (https://rustup.rs) or pass --binary PATH"
    run sudo -u "$SUDO_USER" -H bash -lc "cargo build --release --locked --manifest-path '$repo/Cargo.toml'"
  else
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) or pass --binary PATH"
    run cargo build --release --locked --manifest-path "$repo/Cargo.toml"
  fi
  binary=$repo/target/release/mailroom
fi
if ((!dry_run)) && [[ ! -x $binary ]]; then
  die "$binary is not an executable file"
fi

# 2. The service user, without a login or a home of its own.
if [[ -z $destdir ]]; then
  if getent passwd "$service_user" >/dev/null; then
    say "user $service_user exists"
  else
    run useradd --system --user-group --home-dir "$data_dir" --no-create-home \
      --shell /usr/sbin/nologin --comment "mailroom mail hub" "$service_user"
  fi
fi

# 3. Files. Ownership is only set on a real install (DESTDIR may be unprivileged).
owner() {
  if [[ -z $destdir ]]; then
    echo "-o" "$1" "-g" "$2"
  fi
}
# shellcheck disable=SC2046 # owner prints separate words on purpose
{
  run install -d -m 0755 "$destdir/usr/local/bin" "$destdir/etc/systemd/system"
  run install -d -m 0750 $(owner root "$service_user") "$destdir$config_dir"
  run install -d -m 0750 $(owner "$service_user" "$service_user") "$destdir$data_dir"
  run install -m 0755 "$binary" "$destdir$bin_path"
  run install -m 0644 "$repo/deploy/mailroom.service" "$destdir$unit_path"
}

# 4. The environment file, from .env.example, never overwritten.
if [[ -e $destdir$env_file ]]; then
  say "keeping $env_file"
else
  say "writing $env_file from .env.example (edit it, then: systemctl restart mailroom)"
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  sed -e "s|^# DATA_DIR=.*|DATA_DIR=$data_dir|" \
    -e "s|^# DATABASE_URL=sqlite:.*|DATABASE_URL=sqlite://$data_dir/mailroom.db|" \
    "$repo/.env.example" >"$tmp"
  # shellcheck disable=SC2046
  run install -m 0640 $(owner root "$service_user") "$tmp" "$destdir$env_file"
fi

if [[ -n $destdir ]]; then
  say "staged under $destdir; on the target: systemctl daemon-reload && systemctl enable --now mailroom"
  exit 0
fi

# 5. The service: enabled at boot, (re)started so an upgrade takes effect.
if ((!dry_run)) && { ! command -v systemctl >/dev/null || [[ ! -d /run/systemd/system ]]; }; then
  say "systemd is not running here: files installed; start mailroom with systemd on the real host"
  exit 0
fi
run systemctl daemon-reload
run systemctl enable mailroom.service
((start)) || { say "installed, not started (--no-start)"; exit 0; }
run systemctl restart mailroom.service

# 6. Verify: /healthz answers 200 on the configured port.
port=""
if [[ -r $env_file ]]; then
  port=$(sed -n 's/^PORT=\([0-9]\{1,5\}\).*/\1/p' "$env_file" | tail -n 1)
fi
port=${port:-42010}
# The webmail: WEBMAIL_PORT (default 26000), unless `off`.
webmail_port=""
if [[ -r $env_file ]]; then
  webmail_port=$(sed -n 's/^WEBMAIL_PORT=\([0-9a-z]\{1,5\}\).*/\1/p' "$env_file" | tail -n 1)
fi
webmail_port=${webmail_port:-26000}
# healthy PORT PATH: answers 200.
healthy() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
  read -r _ status _ <&3 || true
  exec 3<&-
  [[ $status == 200 ]]
}
if ((dry_run)); then
  echo "+ GET http://127.0.0.1:$port/healthz (expect 200)"
  [[ $webmail_port == off ]] || echo "+ GET http://127.0.0.1:$webmail_port/health (expect 200)"
  exit 0
fi
for _ in $(seq 1 40); do
  if healthy "$port" /healthz 2>/dev/null; then
    say "mailroom is up: http://127.0.0.1:$port/healthz answers 200"
    if [[ -f $data_dir/api_key ]]; then
      say "the generated API key is in $data_dir/api_key (readable by root and $service_user)"
    fi
    if [[ $webmail_port != off ]] && healthy "$webmail_port" /health 2>/dev/null; then
      say "the webmail is up on 127.0.0.1:$webmail_port (give it a host name in Caddy or nginx)"
      if [[ -f $data_dir/setup-link ]]; then
        say "create the first webmail admin with the one-time link in $data_dir/setup-link (valid 1 h)"
      fi
    fi
    exit 0
  fi
  sleep 0.5
done
systemctl --no-pager status mailroom.service || true
die "mailroom did not answer on 127.0.0.1:$port/healthz; see: journalctl -u mailroom -n 50"
