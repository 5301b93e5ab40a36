#!/usr/bin/env bash
# A newcomer's walkthrough: a central node, one admin and three documenters recording incidents of
# early March 2025 on the Syrian coast while offline, a real conflict, and its resolution.
#
#   swift build && bash Examples/coastal-walkthrough.sh
#
# It prints what happens at each step and exits non-zero if any expectation fails.
# FIELDSYNC may name the binary (default: .build/debug/fieldsync); WORKDIR a folder to keep.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
FIELDSYNC="${FIELDSYNC:-$here/../.build/debug/fieldsync}"
[ -x "$FIELDSYNC" ] || { echo "walkthrough: $FIELDSYNC not found; run 'swift build' first" >&2; exit 1; }
WORK="${WORKDIR:-$(mktemp -d)}"
mkdir -p "$WORK"
SERVER_PID=""
# Each replica is encrypted and unlocked for the walkthrough (its agent socket under $WORK/run); a
# script gives the passphrase in a file, never on the command line.
export XDG_RUNTIME_DIR="$WORK/run"; mkdir -p -m 700 "$XDG_RUNTIME_DIR"
cleanup() {
  for who in amira rima omar lina; do [ -f "$WORK/$who.fieldsync.keys" ] && fs "$who" lock > /dev/null 2>&1; done
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; [ -z "${WORKDIR:-}" ] && rm -rf "$WORK"; return 0
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "walkthrough: FAILED: $*" >&2; exit 1; }
fs() { local who="$1"; shift; "$FIELDSYNC" "$@" --store "$WORK/$who.fieldsync"; }
newreplica() {
  printf '%s passphrase\n' "$1" > "$WORK/$1.pass"
  fs "$1" init --name "$1" --passphrase-file "$WORK/$1.pass" > /dev/null
  fs "$1" unlock --for 10m --passphrase-file "$WORK/$1.pass" > /dev/null
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }

step "Start the central node on 127.0.0.1 (a free port)"
"$FIELDSYNC" serve --store "$WORK/central.sqlite" --host 127.0.0.1 --port 0 > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/serve.log" | sed 's/listening on //')
[ -n "$URL" ] || fail "the central node did not start: $(cat "$WORK/serve.log")"
echo "central node at $URL"

step "Enrol one admin (on the server's store) and three documenters (by the admin)"
code=$("$FIELDSYNC" server add-user amira --role admin --store "$WORK/central.sqlite" --json | json 'd["code"]')
newreplica amira
fs amira enroll --server "$URL" --code "$code"
for who in rima omar lina; do
  code=$(fs amira users add "$who" --role documenter --json | json 'd["code"]')
  newreplica "$who"
  fs "$who" enroll --server "$URL" --code "$code"
done

step "Rima records the Jableh ambush and the Baniyas executions, offline"
jableh=$(fs rima add --title "Ambush of a security convoy on the Jableh road" --occurred 2025-03-06~ \
  --place "Jableh, southern approach" --governorate Latakia --set location.country=SY \
  --set casualties.killed=13 --set violations+=killing --set tags+=jableh)
python3 -c "import json; print(json.dumps(json.load(open('$here/coastal-incidents.json'))[1]))" | fs rima add --from - > /dev/null
echo "rima: $(fs rima status --json | json 'd["records"]') incidents"

step "Omar and Lina record incidents of their own, offline"
fs omar add --title "Looting and burning of shops in the old market" --occurred 2025-03 --governorate Latakia \
  --set violations+=looting --set violations+=destruction-of-property > /dev/null
fs lina add --title "Detention of young men at a checkpoint outside Qardaha" --occurred 2025-03-08 \
  --governorate Latakia --set casualties.missing=6 --set violations+=arbitrary-detention > /dev/null

step "Rima attaches a photo of the road to the ambush (a small PNG made here; the bytes are never altered)"
python3 - "$WORK/jableh-road.png" <<'PY'
import struct, sys, zlib
width, height = 64, 40
rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 4 % 256, y * 6 % 256, 96)) for y in range(height))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
fs rima attach "$jableh" "$WORK/jableh-road.png" --caption "The southern approach, morning after" --captured 2025-03-07
photo=$(sha256sum "$WORK/jableh-road.png" | cut -d' ' -f1)
[ "$(fs rima attachment list "$jableh" --json | json 'd[0]["media_type"]')" = "image/png" ] || fail "the photo is not listed as a PNG"

step "Everyone syncs once (Rima's photo goes up after her revisions)"
for who in rima omar lina amira; do echo "$who: $(fs "$who" sync)"; done
[ "$(fs rima attachment list "$jableh" --json | json 'd[0]["receipt"]')" = verified ] || fail "no verified receipt for the photo"

step "Omar fetches the photo; Rima deletes her copy, which the central node has signed for"
fs omar attachment get "$jableh" "${photo:0:12}" --out "$WORK/omar-jableh-road.png"
cmp -s "$WORK/jableh-road.png" "$WORK/omar-jableh-road.png" || fail "Omar's copy of the photo differs"
fs rima attachment prune
[ "$(fs rima attachment list "$jableh" --json | json 'd[0]["local"]')" = absent ] || fail "prune kept Rima's copy"

step "Offline again: Rima and Omar both revise the Jableh toll; Omar and Lina add different details"
fs rima edit "$jableh" --set casualties.killed=16 --set 'sources+={"kind":"medical","reliability":"high","description":"Hospital morgue register"}' > /dev/null
fs omar edit "$jableh" --set casualties.killed=21 --set narrative="Residents describe an hour-long exchange of fire." > /dev/null
fs lina edit "$jableh" --set tags+=trigger-event --set location.district=Jableh > /dev/null

step "Everyone syncs: different fields merge, the same field becomes a conflict"
for who in rima omar lina amira; do echo "$who: $(fs "$who" sync)"; done
for who in rima omar lina; do fs "$who" sync > /dev/null; done
conflicts=$(fs amira show "$jableh" --json | json 'len(d["conflicts"])')
[ "$conflicts" = 1 ] || fail "expected one conflict on the Jableh record, found $conflicts"
paths=$(fs amira show "$jableh" --json | json '",".join(c["path"] for c in d["conflicts"])')
[ "$paths" = "casualties.killed" ] || fail "expected the conflict on casualties.killed, found $paths"
narrative=$(fs amira show "$jableh" --json | json 'd["fields"]["narrative"]')
[ "$narrative" = "Residents describe an hour-long exchange of fire." ] || fail "Omar's narrative was not merged"
tags=$(fs amira show "$jableh" --json | json '",".join(d["fields"]["tags"])')
[ "$tags" = "jableh,trigger-event" ] || fail "Lina's tag was not merged: $tags"

step "The admin reviews the conflict"
fs amira conflicts

step "The admin resolves it with a note"
omar_number=$(fs amira conflicts --json | json '[c["number"] for c in d[0]["conflicts"][0]["candidates"] if c["author"]=="omar"][0]')
fs amira resolve "$jableh" --pick "casualties.killed=$omar_number" --note "Morgue register and families' list agree on 21"

step "Everyone syncs again"
for who in amira rima omar lina; do echo "$who: $(fs "$who" sync)"; done

step "Every replica is identical, and the history keeps both original claims"
reference=$(fs amira list --all --json)
for who in rima omar lina; do
  [ "$(fs "$who" list --all --json)" = "$reference" ] || fail "$who differs from the admin's replica"
done
[ "$(fs rima show "$jableh" --json | json 'len(d["conflicts"])')" = 0 ] || fail "the conflict is still open on rima's replica"
claims=$(fs rima show "$jableh" --history --json | json 'sorted({o["value"] for h in d["history"] for o in h["operations"] if o["path"]=="casualties.killed"})')
[ "$claims" = "[13, 16, 21]" ] || fail "history lost a claim: $claims"
fs rima show "$jableh" --history | sed -n '/history/,$p'
echo
echo "walkthrough: all expectations held (replicas identical, both claims in history)"
