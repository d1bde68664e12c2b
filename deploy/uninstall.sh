#!/usr/bin/env bash
# Stop and remove the mailroom service. The data (/var/lib/mailroom), the settings
# (/etc/mailroom) and the mailroom user are kept unless --purge is given.
#
#   sudo deploy/uninstall.sh            remove the service and the binary, keep the mail
#   sudo deploy/uninstall.sh --purge    also delete the mail, the settings and the user
#   deploy/uninstall.sh --dry-run [...] print what would be done, change nothing
#   DESTDIR=/tmp/stage deploy/uninstall.sh [--purge]   act on a staged tree only
set -euo pipefail

destdir=${DESTDIR:-}
dry_run=0
purge=0
while (($#)); do
  case $1 in
    --purge) purge=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 64 ;;
  esac
done

run() {
  echo "+ $*"
  if ((!dry_run)); then
    "$@"
  fi
}
say() { echo "uninstall.sh: $*"; }

if ((EUID != 0 && !dry_run)) && [[ -z $destdir ]]; then
  echo "uninstall.sh: must run as root: sudo $0 [--purge]  (to see what it would do: $0 --dry-run)" >&2
  exit 1
fi

if [[ -z $destdir ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system || $dry_run == 1 ]]; then
  run systemctl disable --now mailroom.service || true
fi
run rm -f "$destdir/etc/systemd/system/mailroom.service" "$destdir/usr/local/bin/mailroom"
if [[ -z $destdir ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system || $dry_run == 1 ]]; then
  run systemctl daemon-reload
fi

if ((!purge)); then
  say "kept the mail in $destdir/var/lib/mailroom and the settings in $destdir/etc/mailroom (--purge deletes them)"
  exit 0
fi
run rm -rf "$destdir/var/lib/mailroom" "$destdir/etc/mailroom"
if [[ -z $destdir ]] && getent passwd mailroom >/dev/null; then
  run userdel mailroom
fi
say "purged: mail, settings and the mailroom user are gone"
