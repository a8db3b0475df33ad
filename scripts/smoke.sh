#!/usr/bin/env bash
# Smoke test: start `python server.py` on a temp DB and a free port, walk the API with curl,
# check the answers, stop the server. Exits non-zero on the first wrong answer.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d)
PORT=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export REYNARD_DB="$WORK/smoke.db" REYNARD_PORT=$PORT REYNARD_SCRYPT_N=${REYNARD_SCRYPT_N:-1024}
export REYNARD_LOG_LEVEL=warning
python server.py >"$WORK/server.log" 2>&1 &
PID=$!
cleanup() {
  kill -TERM "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "smoke: FAIL: $*" >&2; echo "--- server log" >&2; tail -n 40 "$WORK/server.log" >&2; exit 1; }

# req METHOD PATH [JSON] [TOKEN] -> sets STATUS and BODY
req() {
  local args=(-s -o "$WORK/body" -w '%{http_code}' -X "$1" "$BASE$2")
  if [ -n "${3:-}" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$3"); fi
  if [ -n "${4:-}" ]; then args+=(-H "Authorization: Bearer $4"); fi
  STATUS=$(curl "${args[@]}")
  BODY=$(cat "$WORK/body")
}
# expect STATUS_CODE DESCRIPTION
expect() { [ "$STATUS" = "$1" ] || fail "$2: expected $1, got $STATUS: $BODY"; echo "ok  $STATUS $2"; }
# field NAME -> prints a top-level (or dotted) field of BODY
field() { python -c 'import json,sys; v=json.loads(sys.argv[1])
for p in sys.argv[2].split("."): v=v[int(p)] if isinstance(v,list) else v[p]
print(v if not isinstance(v,(dict,list,bool)) and v is not None else json.dumps(v))' "$BODY" "$1"; }
# admin_token NAME PASSWORD -> creates (or resets) an admin with the CLI, signs in, prints the token
admin_token() {
  REYNARD_ADMIN_PASSWORD=$2 python server.py create-admin "$1" --email "$1@example.com" >/dev/null \
    || fail "create-admin $1"
  req POST /api/auth/login "{\"username\":\"$1\",\"password\":\"$2\"}"
  [ "$STATUS" = 200 ] || fail "admin login $1: $STATUS $BODY"
  field access_token
}
# is NAME VALUE
is() { local got; got=$(field "$1"); [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2' in $BODY"; }

for _ in $(seq 1 100); do
  curl -s -o /dev/null "$BASE/api/health/live" && break
  kill -0 "$PID" 2>/dev/null || fail "server exited during startup"
  sleep 0.1
done

req GET /api/health/live;   expect 200 "live";  is status pass
req GET /api/health/ready;  [ "$STATUS" = 200 ] || fail "ready: $STATUS $BODY"
is checks.sqlite:write.0.status pass; is checks.migrations.0.status pass; echo "ok  200 ready"
req GET /api/health/simple; expect 200 "simple"; is status ok
req GET /api/health;        expect 200 "health"
req GET /api/system;        expect 200 "system"; is migrations_applied 1
req GET /nope;              expect 404 "unknown route"; is code not_found

for part in scripts/smoke.d/*.sh; do
  [ -e "$part" ] || continue
  # shellcheck source=/dev/null
  . "$part"
done

kill -TERM "$PID"
wait "$PID" || fail "server did not exit 0 on SIGTERM"
echo "smoke: all good"
