#!/usr/bin/env bash
# SCIM conformance: python-scim's scim2-tester (PyPI, pinned below) against the instance SCIM
# API (/api/scim/v2/application) of a fresh server, less the checks that contradict GitLab's
# behaviour — scripts/scim-conformance.py lists them with their reasons, runs the rest, and
# adds checks of the filters, errors and GitLab behaviours the tester does not cover.
#
#   scripts/scim-conformance.sh [sqlite|postgres|both]     (default both)
#   scripts/scim-conformance.py --list-exclusions           (the exclusions only, no server)
#
# BIN: the server binary (default: the release build, built here). Each backend gets a new
# server on a free loopback port, a new data directory (and, for PostgreSQL, a new database
# on 127.0.0.1:5432 as user postgres, dropped afterwards), a Premium license signed by a key
# pair made for the run, and the instance SCIM token generated through the admin API.
# Fails when a selected check fails or the server answers 5xx.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${SCIM_CONFORMANCE_VENV:-$TARGET/scim-conformance-venv}"
# The whole resolved set, so that a new scim2-client or scim2-models release cannot change
# what is checked. scim2-tester 0.5.2 has no "httpx" extra: its network engine is httpx2.
REQUIREMENTS="scim2-tester[httpx2]==0.5.2
scim2-client==0.13.2
scim2-models==0.12.3
httpx2==2.17.0
httpcore2==2.17.0
pydantic==2.14.4
pydantic-core==2.50.5
annotated-types==0.8.0
anyio==4.16.0
dnspython==2.9.2
email-validator==2.4.0
h11==0.16.0
idna==3.21
lark==1.3.1
truststore==0.10.5
typing-inspection==0.4.5
typing-extensions==4.16.0"

BACKEND="${1:-both}"
case "$BACKEND" in
  sqlite | postgres | both) ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac

if [ "$(cat "$VENV/requirements.txt" 2>/dev/null)" != "$REQUIREMENTS" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  printf '%s\n' "$REQUIREMENTS" >"$VENV/requirements.in"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$VENV/requirements.in"
  printf '%s' "$REQUIREMENTS" >"$VENV/requirements.txt"
fi

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet --bin gitlab-license-server
  BIN="$TARGET/release/gitlab-license-server"
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

SERVER_PID=""
RUN_DIR=""
PG_DB=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  if [ -n "$PG_DB" ]; then
    psql -h 127.0.0.1 -U postgres -d postgres -qtAc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  PG_DB=""
  [ -n "$RUN_DIR" ] && rm -rf "$RUN_DIR"
  RUN_DIR=""
}
trap cleanup EXIT

run_backend() {
  local backend="$1" url port root_token base token status=0
  RUN_DIR="$(mktemp -d)"
  case "$backend" in
    sqlite) url="sqlite://$RUN_DIR/db.sqlite" ;;
    postgres)
      PG_DB="gls_scim_conformance_$$_$RANDOM"
      psql -h 127.0.0.1 -U postgres -d postgres -qtAc "CREATE DATABASE $PG_DB" >/dev/null
      url="postgres://postgres@127.0.0.1:5432/$PG_DB"
      ;;
  esac
  echo "=== SCIM conformance (scim2-tester): $backend ==="

  # A Premium license (the SCIM API needs Premium or Ultimate) signed by a key pair of the run.
  "$BIN" keys generate --out "$RUN_DIR/keys" >/dev/null
  "$BIN" license issue --private-key "$RUN_DIR/keys/license_key" --name "SCIM Conformance" \
    --email scim@example.org --company "SCIM Conformance" --plan premium --seats 1000 \
    --starts "$(date -u -d '-1 day' +%F)" --expires "$(date -u -d '+1 year' +%F)" >"$RUN_DIR/license.txt"

  root_token="glpat-$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
  port="$(free_port)"
  DATABASE_URL="$url" DATA_DIR="$RUN_DIR" INITIAL_ROOT_TOKEN="$root_token" LISTEN_ADDR="127.0.0.1:$port" \
    LICENSE_PUBLIC_KEY_FILE="$RUN_DIR/keys/license_key.pub" RUST_LOG=info \
    "$BIN" >"$RUN_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/-/readiness" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  if ! curl -fsS -o /dev/null "http://127.0.0.1:$port/-/readiness" 2>/dev/null; then
    echo "the server did not become ready:" >&2; tail -n 50 "$RUN_DIR/server.log" >&2; return 1
  fi

  curl -fsS -o /dev/null -H "PRIVATE-TOKEN: $root_token" --data-urlencode "license=$(cat "$RUN_DIR/license.txt")" \
    "http://127.0.0.1:$port/api/v4/license"
  token="$(curl -fsS -X POST -H "PRIVATE-TOKEN: $root_token" "http://127.0.0.1:$port/api/v4/-/scim/token" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
  base="http://127.0.0.1:$port/api/scim/v2/application"

  SCIM_TOKEN="$token" "$VENV/bin/python" "$ROOT/scripts/scim-conformance.py" "$base" || status=$?
  if grep -q 'status=5[0-9][0-9]' "$RUN_DIR/server.log"; then
    echo "the server answered 5xx:"; grep -B2 'status=5[0-9][0-9]' "$RUN_DIR/server.log" | tail -n 40
    status=1
  fi
  if [ "$status" != 0 ]; then
    echo "--- server log (last 40 lines) ---"; tail -n 40 "$RUN_DIR/server.log"
  fi
  cleanup
  return "$status"
}

if [ "$BACKEND" = both ]; then
  # Each backend in its own process: both run even when the first fails, and each stops at
  # its first failing step (set -e does not apply inside a function called from `||`).
  overall=0
  for backend in sqlite postgres; do
    BIN="$BIN" SCIM_CONFORMANCE_VENV="$VENV" bash "$0" "$backend" || { overall=1; echo "SCIM conformance FAILED on $backend"; }
  done
  exit "$overall"
fi
run_backend "$BACKEND"
