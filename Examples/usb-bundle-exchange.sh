#!/usr/bin/env bash
# Two documenters with no network exchange their work on a USB stick (a bundle file each way).
#
#   swift build && bash Examples/usb-bundle-exchange.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
FIELDSYNC="${FIELDSYNC:-$here/../.build/debug/fieldsync}"
[ -x "$FIELDSYNC" ] || { echo "usb-bundle-exchange: $FIELDSYNC not found; run 'swift build' first" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fs() { local who="$1"; shift; "$FIELDSYNC" "$@" --store "$WORK/$who.fieldsync"; }
fail() { echo "usb-bundle-exchange: FAILED: $*" >&2; exit 1; }
USB="$WORK/usb"; mkdir -p "$USB"

echo "== Two offline replicas"
fs rima init --name rima > /dev/null
fs omar init --name omar > /dev/null
fs rima add --from "$here/coastal-incidents.json" > /dev/null
fs omar add --title "Families displaced towards the coast road" --occurred 2025-03-08~ --governorate Tartus \
  --set violations+=displacement > /dev/null

echo "== Rima writes a bundle to the stick; Omar imports it"
fs rima bundle export --out "$USB/rima.bundle"
fs omar bundle import "$USB/rima.bundle"

echo "== Omar writes back only what Rima lacks"
fs omar bundle export --out "$USB/omar.bundle" --lacking "$USB/rima.bundle"
fs rima bundle import "$USB/omar.bundle"

echo "== A damaged copy is refused, and nothing changes"
head -c 200 "$USB/omar.bundle" > "$USB/damaged.bundle"
if fs rima bundle import "$USB/damaged.bundle" 2> "$WORK/err"; then fail "a damaged bundle was accepted"; fi
cat "$WORK/err"

[ "$(fs rima list --all --json)" = "$(fs omar list --all --json)" ] || fail "the replicas differ"
echo "usb-bundle-exchange: both replicas hold the same $(fs rima status --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["records"])') incidents"
