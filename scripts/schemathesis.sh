#!/usr/bin/env bash
# Fuzzes the REST API from its own OpenAPI document with schemathesis (PyPI): every operation,
# coverage, fuzzing and stateful phases, as the root administrator. Fails on any 5xx, any
# response that breaks its documented schema (or carries a field the schema does not list:
# scripts/strict-openapi.py closes the response schemas) or content type.
#
#   scripts/schemathesis.sh [sqlite|postgres|both]     (default both)
#
# BIN: the server binary (default target/debug/gitlab-license-server). Operations that would
# lock the fuzzer out (revoking its own token, deleting or blocking root) are left out.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/debug/gitlab-license-server}"
VENV="${TMPDIR:-/tmp}/gls-schemathesis-venv"
TOKEN="glpat-$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

SERVER_PID=""
RUN_DIR=""
PG_DB=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
  [ -n "$PG_DB" ] && psql -h 127.0.0.1 -U postgres -d postgres -qtAc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
  PG_DB=""
  [ -n "$RUN_DIR" ] && rm -rf "$RUN_DIR"
  RUN_DIR=""
}
trap cleanup EXIT

run_backend() {
  local backend="$1" url port
  RUN_DIR="$(mktemp -d)"
  case "$backend" in
    sqlite) url="sqlite://$RUN_DIR/db.sqlite" ;;
    postgres)
      PG_DB="gls_schemathesis_$$_$RANDOM"
      psql -h 127.0.0.1 -U postgres -d postgres -qtAc "CREATE DATABASE $PG_DB" >/dev/null
      url="postgres://postgres@127.0.0.1:5432/$PG_DB"
      ;;
  esac
  port="$(free_port)"
  # The fuzzer makes up fleet instances and hooks with any URL: outgoing calls stay on
  # loopback (a made-up name or address is refused before anything is sent).
  DATABASE_URL="$url" DATA_DIR="$RUN_DIR" INITIAL_ROOT_TOKEN="$TOKEN" LISTEN_ADDR="127.0.0.1:$port" \
    OUTBOUND_ALLOW_LIST="127.0.0.0/8,::1" "$BIN" >"$RUN_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/-/readiness" 2>/dev/null && break
    sleep 0.5
  done
  echo "=== schemathesis: $backend ==="
  # Its example cache goes into the run directory, not the repository.
  # The document as served, made strict: a response field the document does not list fails.
  # Left out: what would revoke or rotate the run's own token, delete or block its user.
  curl -fsS "http://127.0.0.1:$port/api/v4/openapi.json" | python3 "$ROOT/scripts/strict-openapi.py" \
    >"$RUN_DIR/openapi.json"
  (cd "$RUN_DIR" && "$VENV/bin/schemathesis" run openapi.json --url "http://127.0.0.1:$port" \
    -H "PRIVATE-TOKEN: $TOKEN" \
    --checks not_a_server_error,response_schema_conformance,content_type_conformance \
    --max-examples 30 --request-timeout 15 --generation-deterministic \
    --exclude-operation-id tokens_revoke_self --exclude-operation-id tokens_revoke \
    --exclude-operation-id tokens_rotate_self --exclude-operation-id tokens_rotate \
    --exclude-operation-id users_destroy --exclude-operation-id users_moderate) \
    | sed -E "s/$TOKEN/[REDACTED]/g"
  local status="${PIPESTATUS[0]}"
  if grep -q '"status":5[0-9][0-9]\|status=5[0-9][0-9]' "$RUN_DIR/server.log"; then
    echo "the server answered 5xx (see its log)"; status=1
  fi
  cleanup
  return "$status"
}

case "${1:-both}" in
  sqlite | postgres) backends="$1" ;;
  both) backends="sqlite postgres" ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
for backend in $backends; do
  run_backend "$backend"
done
