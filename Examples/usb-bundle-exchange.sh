#!/usr/bin/env bash
# Two documenters with no network exchange their work on a USB stick (a bundle file each way).
# Both replicas are encrypted, and so are the bundles on the stick (a bundle passphrase they share
# by another channel). A script gives passphrases in files, never on the command line.
#
#   swift build && bash Examples/usb-bundle-exchange.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
FIELDSYNC="${FIELDSYNC:-$here/../.build/debug/fieldsync}"
[ -x "$FIELDSYNC" ] || { echo "usb-bundle-exchange: $FIELDSYNC not found; run 'swift build' first" >&2; exit 1; }
WORK="$(mktemp -d)"
fs() { local who="$1"; shift; "$FIELDSYNC" "$@" --store "$WORK/$who.fieldsync"; }
export XDG_RUNTIME_DIR="$WORK/run"; mkdir -m 700 "$XDG_RUNTIME_DIR"
trap 'fs rima lock > /dev/null 2>&1; fs omar lock > /dev/null 2>&1; rm -rf "$WORK"' EXIT
printf 'rima passphrase\n' > "$WORK/rima.pass"; printf 'omar passphrase\n' > "$WORK/omar.pass"
printf 'shared bundle passphrase\n' > "$WORK/bundle.pass"
fail() { echo "usb-bundle-exchange: FAILED: $*" >&2; exit 1; }
USB="$WORK/usb"; mkdir -p "$USB"

echo "== Two offline replicas, encrypted, unlocked for the session"
for who in rima omar; do
  fs "$who" init --name "$who" --passphrase-file "$WORK/$who.pass" > /dev/null
  fs "$who" unlock --for 10m --passphrase-file "$WORK/$who.pass" > /dev/null
done
fs rima add --from "$here/coastal-incidents.json" > /dev/null
fs omar add --title "Families displaced towards the coast road" --occurred 2025-03-08~ --governorate Tartus \
  --set violations+=displacement > /dev/null

echo "== Rima writes a bundle to the stick; Omar imports it"
fs rima bundle export --out "$USB/rima.bundle" --bundle-passphrase-file "$WORK/bundle.pass"
if grep -q "Families\|coast" "$USB/rima.bundle"; then fail "the bundle on the stick is readable"; fi
fs omar bundle import "$USB/rima.bundle" --bundle-passphrase-file "$WORK/bundle.pass"

echo "== Omar writes back only what Rima lacks"
fs omar bundle export --out "$USB/omar.bundle" --lacking "$USB/rima.bundle" --bundle-passphrase-file "$WORK/bundle.pass"
fs rima bundle import "$USB/omar.bundle" --bundle-passphrase-file "$WORK/bundle.pass"

echo "== A damaged copy is refused, and nothing changes"
head -c 200 "$USB/omar.bundle" > "$USB/damaged.bundle"
if fs rima bundle import "$USB/damaged.bundle" --bundle-passphrase-file "$WORK/bundle.pass" 2> "$WORK/err"; then
  fail "a damaged bundle was accepted"
fi
cat "$WORK/err"

[ "$(fs rima list --all --json)" = "$(fs omar list --all --json)" ] || fail "the replicas differ"
echo "usb-bundle-exchange: both replicas hold the same $(fs rima status --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["records"])') incidents"
