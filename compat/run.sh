#!/usr/bin/env bash
# Client-compatibility run: real GitLab client libraries (python-gitlab, @gitbeaker/rest,
# go-gitlab, and python-gitlab's GraphQL client for GitLab Duo seats) against the
# gitlab-license-server binary.
#
#   compat/run.sh [sqlite|postgres|both]      (default: both)
#
# For each backend: installs what is missing, makes a fresh database and data dir, starts the
# server on a free loopback port with a random admin token, waits for /-/readiness, issues the
# test license keys with the same binary, runs the three clients one after another (each with a
# timeout), stops the server and drops the database. Exits non-zero if anything failed.
#
# Environment:
#   BIN             server binary (default: <repo>/target/release/gitlab-license-server)
#   CLIENTS         which clients to run, in order (default: "python node go python-graphql
#                   python-billable python-settings python-rotate python-gcasc node-settings")
#   CLIENT_TIMEOUT  seconds per client run (default: 300)
#   PGHOST_COMPAT   PostgreSQL host (default 127.0.0.1), PGPORT_COMPAT (5432), PGUSER_COMPAT (postgres)
#   TMPDIR          where the venv, the Go build and the per-run temp dirs go (default /tmp)
#
# The admin token is never printed: everything shown from the server and the clients goes
# through a filter that replaces it.
set -uo pipefail

COMPAT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$COMPAT/.." && pwd)"
BIN="${BIN:-$ROOT/target/release/gitlab-license-server}"
CLIENTS="${CLIENTS:-python node go python-graphql python-billable python-settings python-rotate python-gcasc node-settings}"
CLIENT_TIMEOUT="${CLIENT_TIMEOUT:-300}"
TMPBASE="${TMPDIR:-/tmp}"
VENV="$TMPBASE/gls-compat-venv"
GOOUT="$TMPBASE/gls-compat-go"
FIXTURES="$ROOT/tests/fixtures/license-vectors"
PG_HOST="${PGHOST_COMPAT:-127.0.0.1}"
PG_PORT="${PGPORT_COMPAT:-5432}"
PG_USER="${PGUSER_COMPAT:-postgres}"

# Per-backend state, cleaned up by cleanup() (also from the trap).
SERVER_PID=""
RUN_DIR=""
PG_DB=""
TOKEN=""

section() { printf '\n=== %s ===\n' "$*"; }
log() { printf '[compat] %s\n' "$*"; }

# Replace the token in anything we show.
# Replace the tokens in anything we show (the root token, and any glpat- token made for a run).
redact() {
  if [ -n "$TOKEN" ]; then
    sed -u -E "s/$TOKEN/[REDACTED]/g; s/glpat-[A-Za-z0-9_-]{20,}/glpat-[REDACTED]/g"
  else
    sed -u -E "s/glpat-[A-Za-z0-9_-]{20,}/glpat-[REDACTED]/g"
  fi
}

psql_admin() {
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server (pid $SERVER_PID) did not stop in 10 s; sending SIGKILL"
      kill -9 "$SERVER_PID" 2>/dev/null
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

cleanup() {
  if [ -n "$CLIENT_PGID" ]; then
    kill -- "-$CLIENT_PGID" 2>/dev/null
    wait "$CLIENT_PGID" 2>/dev/null
    CLIENT_PGID=""
  fi
  stop_server
  if [ -n "$PG_DB" ]; then
    psql_admin "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 \
      || log "warning: could not drop database $PG_DB"
    PG_DB=""
  fi
  if [ -n "$RUN_DIR" ] && [ -d "$RUN_DIR" ]; then
    rm -rf "$RUN_DIR"
  fi
  RUN_DIR=""
  TOKEN=""
}
trap 'cleanup' EXIT
trap 'log "interrupted"; cleanup; exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Installing what is missing

install_python() {
  local stamp="$VENV/.gls-compat-requirements.sha256"
  local want
  want="$(sha256sum "$COMPAT/python/requirements.txt" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "python: creating/updating venv $VENV"
  python3 -m venv "$VENV" || return 1
  timeout 600 "$VENV/bin/pip" install -q --disable-pip-version-check \
    -r "$COMPAT/python/requirements.txt" || return 1
  echo "$want" >"$stamp"
}

install_node() {
  command -v node >/dev/null && command -v npm >/dev/null || {
    log "node/npm not found (Node >= 18.20 is needed)"
    return 1
  }
  local stamp="$COMPAT/node/node_modules/.gls-compat-lock.sha256"
  local want
  want="$(sha256sum "$COMPAT/node/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "node: npm ci"
  (cd "$COMPAT/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$want" >"$stamp"
}

GO_GITLAB_SRC=/usr/share/gocode/src/github.com/xanzy/go-gitlab
install_go() {
  if ! command -v go >/dev/null || [ ! -f "$GO_GITLAB_SRC/license.go" ]; then
    if [ "$(id -u)" != 0 ]; then
      log "go or go-gitlab missing and not root: apt-get install golang-go golang-github-xanzy-go-gitlab-dev"
      return 1
    fi
    log "go: apt-get install golang-go golang-github-xanzy-go-gitlab-dev"
    timeout 300 apt-get update -qq >/dev/null || return 1
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
      golang-go golang-github-xanzy-go-gitlab-dev >/dev/null || return 1
  fi
  mkdir -p "$GOOUT"
  # GOPATH mode against Debian's source tree (there is no module proxy here).
  (cd "$COMPAT/go" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$GOOUT/cache" GOFLAGS= \
    timeout 300 go build -o "$GOOUT/gls-compat-go" .) || return 1
}

declare -A INSTALLED=()
install_client() {
  local c="$1"
  [ -n "${INSTALLED[$c]:-}" ] && return "${INSTALLED[$c]}"
  local rc=0
  case "$c" in
    python | python-graphql | python-billable | python-settings | python-rotate | python-gcasc)
      install_python || rc=1 ;;
    node | node-settings) install_node || rc=1 ;;
    go) install_go || rc=1 ;;
    *) log "unknown client $c"; rc=1 ;;
  esac
  INSTALLED[$c]=$rc
  return $rc
}

# ---------------------------------------------------------------------------------------------
# One backend

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

issue_key() { # out-file plan seats starts expires [more license issue options]
  local out="$1"
  "$BIN" license issue --private-key "$FIXTURES/private_key.pem" \
    --name "Ada Admin" --email ada@example.org --company "Example Org" \
    --plan "$2" --seats "$3" --starts "$4" --expires "$5" "${@:6}" >"$out"
}

CLIENT_PGID=""
run_client() { # name; the client runs in its own session so that an interrupt can end it (and
  # only it) by process group; its output goes through the token filter.
  local c="$1" dir rc
  local -a cmd
  case "$c" in
    python) dir="$COMPAT/python"; cmd=("$VENV/bin/python" -u test_license_api.py) ;;
    python-graphql) dir="$COMPAT/python"; cmd=("$VENV/bin/python" -u test_duo_seats.py) ;;
    python-billable) dir="$COMPAT/python"; cmd=("$VENV/bin/python" -u test_billable_members.py) ;;
    python-settings) dir="$COMPAT/python"; cmd=("$VENV/bin/python" -u test_settings.py) ;;
    python-rotate) dir="$COMPAT/python"; cmd=("$VENV/bin/python" -u test_token_rotation.py) ;;
    python-gcasc) dir="$COMPAT/python"; cmd=("$VENV/bin/python" -u test_gcasc.py) ;;
    node) dir="$COMPAT/node"; cmd=(node license.mjs) ;;
    node-settings) dir="$COMPAT/node"; cmd=(node settings.mjs) ;;
    go) dir="$COMPAT/go"; cmd=("$GOOUT/gls-compat-go") ;;
  esac
  setsid -w bash -c 'set -o pipefail; cd "$1" && shift && timeout --foreground "$0" "$@" 2>&1 | sed -u -E "s/$GITLAB_TOKEN/[REDACTED]/g; s/glpat-[A-Za-z0-9_-]{20,}/glpat-[REDACTED]/g"' \
    "$CLIENT_TIMEOUT" "$dir" "${cmd[@]}" </dev/null &
  CLIENT_PGID=$!
  wait "$CLIENT_PGID"
  rc=$?
  CLIENT_PGID=""
  [ "$rc" = 124 ] && log "$c: timed out after ${CLIENT_TIMEOUT}s"
  return "$rc"
}

server_log_tail() {
  [ -f "$RUN_DIR/server.log" ] || return 0
  log "last lines of the server log:"
  tail -n 25 "$RUN_DIR/server.log" | sed 's/\x1b\[[0-9;]*m//g' | redact | sed 's/^/    | /'
}

declare -a SUMMARY=()
run_backend() { # sqlite|postgres
  local backend="$1" db_url port rc=0 c
  section "backend: $backend"
  RUN_DIR="$(mktemp -d "$TMPBASE/gls-compat-run.XXXXXX")"
  mkdir -p "$RUN_DIR/data" "$RUN_DIR/keys"
  TOKEN="glpat-$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 26)"

  case "$backend" in
    sqlite) db_url="sqlite://$RUN_DIR/db.sqlite" ;;
    postgres)
      if ! command -v psql >/dev/null; then
        log "psql not found"; SUMMARY+=("$backend: SETUP FAILED (psql missing)"); cleanup; return 1
      fi
      PG_DB="gls_compat_$(date +%s)_$$_$RANDOM"
      if ! psql_admin "CREATE DATABASE $PG_DB" >/dev/null; then
        log "could not create database $PG_DB on $PG_HOST:$PG_PORT"
        PG_DB=""; SUMMARY+=("$backend: SETUP FAILED (create database)"); cleanup; return 1
      fi
      db_url="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
      ;;
  esac

  if ! issue_key "$RUN_DIR/keys/ultimate.license" ultimate 100 2025-01-01 2035-01-01 \
    || ! issue_key "$RUN_DIR/keys/premium.license" premium 50 2025-02-01 2034-02-01 \
    || ! issue_key "$RUN_DIR/keys/expired.license" premium 10 2019-01-01 2020-01-01 \
    || ! issue_key "$RUN_DIR/keys/duo.license" premium 50 2025-03-01 2034-03-01 --add-on-product duo_pro=2; then
    log "could not issue license keys with $BIN license issue"
    SUMMARY+=("$backend: SETUP FAILED (license issue)"); cleanup; return 1
  fi

  port="$(free_port)"
  log "starting $BIN serve on 127.0.0.1:$port ($backend)"
  # EXTERNAL_URL plays GitLab's external_url: /user's web_url must start with the URL the clients
  # use, or python-gitlab's auth() warns about a misconfigured base URL.
  EXTERNAL_URL="http://127.0.0.1:$port" \
  DATABASE_URL="$db_url" DATA_DIR="$RUN_DIR/data" LISTEN_ADDR="127.0.0.1:$port" \
    LICENSE_PUBLIC_KEY_FILE="$FIXTURES/public_key.pem" INITIAL_ROOT_TOKEN="$TOKEN" \
    "$BIN" serve >"$RUN_DIR/server.log" 2>&1 &
  SERVER_PID=$!

  local url="http://127.0.0.1:$port" ready=0
  for _ in $(seq 1 60); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID"
      log "server exited (status $?) before it was ready"; SERVER_PID=""; break
    fi
    if curl -fsS -o /dev/null --max-time 2 "$url/-/readiness" 2>/dev/null; then ready=1; break; fi
    sleep 0.5
  done
  if [ "$ready" != 1 ]; then
    [ -n "$SERVER_PID" ] && log "server not ready within 30 s"
    server_log_tail
    SUMMARY+=("$backend: SETUP FAILED (server not ready)"); cleanup; return 1
  fi
  log "server ready"

  # Tokens with narrower scopes, when the binary can make them (`token create`), for the scope
  # checks; the checks are skipped otherwise.
  local read_api_token="" read_user_token=""
  read_api_token="$(DATABASE_URL="$db_url" DATA_DIR="$RUN_DIR/data" LICENSE_PUBLIC_KEY_FILE="$FIXTURES/public_key.pem" \
    timeout 30 "$BIN" token create --username root --name compat-read-api --scopes read_api 2>/dev/null)" || read_api_token=""
  read_user_token="$(DATABASE_URL="$db_url" DATA_DIR="$RUN_DIR/data" LICENSE_PUBLIC_KEY_FILE="$FIXTURES/public_key.pem" \
    timeout 30 "$BIN" token create --username root --name compat-read-user --scopes read_user 2>/dev/null)" || read_user_token=""
  case "$read_api_token$read_user_token" in
    glpat-*glpat-*) log "made read_api and read_user tokens for the scope checks" ;;
    *) log "token create did not work: scope checks skipped"; read_api_token=""; read_user_token="" ;;
  esac

  local results=""
  for c in $CLIENTS; do
    section "$backend / $c"
    if [ "${INSTALLED[$c]:-1}" != 0 ]; then
      log "$c: not run (its install/build failed)"
      results+=" $c=INSTALL-FAILED"; rc=1; continue
    fi
    if GITLAB_URL="$url" GITLAB_TOKEN="$TOKEN" \
      GLS_LICENSE_FILE="$RUN_DIR/keys/ultimate.license" \
      GLS_LICENSE2_FILE="$RUN_DIR/keys/premium.license" \
      GLS_EXPIRED_LICENSE_FILE="$RUN_DIR/keys/expired.license" \
      GLS_DUO_LICENSE_FILE="$RUN_DIR/keys/duo.license" \
      GLS_VECTORS_FILE="$FIXTURES/vectors.json" \
      GITLAB_READ_API_TOKEN="$read_api_token" GITLAB_READ_USER_TOKEN="$read_user_token" \
      run_client "$c"; then
      results+=" $c=PASS"
    else
      log "$c FAILED against $backend"
      results+=" $c=FAIL"; rc=1
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "the server died during the $c run"; server_log_tail; rc=1
      results+=" (server died)"; break
    fi
  done
  [ "$rc" = 0 ] || server_log_tail
  SUMMARY+=("$backend:$results")
  cleanup
  return $rc
}

# ---------------------------------------------------------------------------------------------

case "${1:-both}" in
  sqlite | postgres) BACKENDS="$1" ;;
  both | all) BACKENDS="sqlite postgres" ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac

if [ ! -x "$BIN" ]; then
  echo "server binary not found: $BIN (build it with cargo build --release, or set BIN)" >&2
  exit 2
fi

overall=0
section "installing the clients: $CLIENTS"
for c in $CLIENTS; do
  if install_client "$c"; then log "$c: ready"; else log "$c: install/build FAILED"; overall=1; fi
done

for b in $BACKENDS; do
  run_backend "$b" || overall=1
done

section "summary"
for line in "${SUMMARY[@]}"; do echo "$line"; done
if [ "$overall" = 0 ]; then echo "compat: all clients passed"; else echo "compat: FAILED"; fi
exit $overall
