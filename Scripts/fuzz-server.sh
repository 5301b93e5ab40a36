#!/usr/bin/env bash
# Fuzzes every endpoint of a real central node from Protocol/openapi.yaml with schemathesis (from
# PyPI, installed in a virtual environment here), then checks that the server never answered 5xx,
# still serves, and that its data (revisions, records, knowledge) is byte-for-byte unchanged.
#
#   swift build && bash Scripts/fuzz-server.sh [MAX_EXAMPLES]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
FIELDSYNC="${FIELDSYNC:-$root/.build/debug/fieldsync}"
[ -x "$FIELDSYNC" ] || { echo "fuzz-server: $FIELDSYNC not found; run 'swift build' first" >&2; exit 1; }
EXAMPLES="${1:-40}"
VENV="${FIELDSYNC_FUZZ_VENV:-${TMPDIR:-/tmp}/fieldsync-fuzz-venv}"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "installing schemathesis into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q schemathesis
fi

"$FIELDSYNC" serve --store "$WORK/central.sqlite" --host 127.0.0.1 --port 0 > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/serve.log" | sed 's/listening on //')
[ -n "$URL" ] || { echo "fuzz-server: the server did not start" >&2; cat "$WORK/serve.log" >&2; exit 1; }

# An admin with an unguessable name, and some real data to protect.
admin="fuzz-admin-$RANDOM$RANDOM"
code=$("$FIELDSYNC" server add-user "$admin" --role admin --store "$WORK/central.sqlite" --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["code"])')
"$FIELDSYNC" init --name "$admin" --store "$WORK/admin.fieldsync" > /dev/null
"$FIELDSYNC" enroll --server "$URL" --code "$code" --store "$WORK/admin.fieldsync" > /dev/null
"$FIELDSYNC" add --from "$root/Examples/coastal-incidents.json" --store "$WORK/admin.fieldsync" > /dev/null
"$FIELDSYNC" sync --store "$WORK/admin.fieldsync" > /dev/null
TOKEN=$(python3 -c 'import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute("SELECT token FROM enrolment").fetchone()[0])' "$WORK/admin.fieldsync")

data_hash() {
  python3 - "$WORK/central.sqlite" <<'PY'
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
h = hashlib.sha256()
for table, order in [("revision", "seq"), ("record", "id"), ("knowledge", "node")]:
    for row in db.execute(f"SELECT * FROM {table} ORDER BY {order}"):
        h.update(repr(row).encode())
print(h.hexdigest())
PY
}
before=$(data_hash)

echo "fuzzing $URL with up to $EXAMPLES examples per operation"
set +e
"$VENV/bin/schemathesis" run "$root/Protocol/openapi.yaml" --url "$URL" \
  -H "Authorization: Bearer $TOKEN" --checks not_a_server_error --max-examples "$EXAMPLES" --seed 1 \
  --report junit --report-junit-path "$WORK/junit.xml" > "$WORK/schemathesis.log" 2>&1
status=$?
set -e
tail -25 "$WORK/schemathesis.log"
requests=$(grep -o 'tests="[0-9]*"' "$WORK/junit.xml" 2>/dev/null | head -1 || true)

kill -0 "$SERVER_PID" 2>/dev/null || { echo "fuzz-server: FAILED: the server died" >&2; exit 1; }
curl -fsS "$URL/v1/health" > /dev/null || { echo "fuzz-server: FAILED: the server no longer answers" >&2; exit 1; }
after=$(data_hash)
[ "$before" = "$after" ] || { echo "fuzz-server: FAILED: the stored data changed" >&2; exit 1; }
"$FIELDSYNC" verify --store "$WORK/central.sqlite" > /dev/null || { echo "fuzz-server: FAILED: verify" >&2; exit 1; }
[ "$status" = 0 ] || { echo "fuzz-server: FAILED: schemathesis found problems (exit $status)" >&2; exit 1; }
echo "fuzz-server: no 5xx, the server still serves, stored data unchanged ($requests), verify sound"
