#!/usr/bin/env bash
# The user directory at scale: seeds USERS users in SQL (default 1,000,000: one in twenty
# blocked or deactivated, one in fifty a bot or service user, half of them members of one
# group), then times each interactive list request — the median of RUNS — through the server.
#
#   scripts/bench-scale.sh [sqlite|postgres] [USERS]
#   BIN=path/to/gitlab-license-server scripts/bench-scale.sh   (default: the release build)
#
# Loopback only; PostgreSQL is the local one at 127.0.0.1:5432 (user postgres). The scratch
# database is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
USERS="${2:-1000000}"
RUNS="${RUNS:-7}"
PORT="${PORT:-18083}"
TOKEN="glpat-scale-benchmark-0000000"
WORK="$(mktemp -d)"
SERVER_PID=""
PG_DB=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet --bin gitlab-license-server
  BIN=target/release/gitlab-license-server
fi

case "$BACKEND" in
  sqlite)
    DATABASE_URL="sqlite://$WORK/scale.db"
    run_sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.stdin.read()); c.commit()' "$WORK/scale.db"; }
    SERIES="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $USERS)"
    FROM_SERIES="FROM n"
    NOW="strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    ;;
  postgres)
    PG_DB="gls_scale_$$"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PG_DB"
    run_sql() { psql -h 127.0.0.1 -U postgres -d "$PG_DB" -qv ON_ERROR_STOP=1 >/dev/null; }
    SERIES=""
    FROM_SERIES="FROM generate_series(1, $USERS) AS n(i)"
    NOW="now()"
    ;;
  *) echo "usage: $0 [sqlite|postgres] [USERS]" >&2; exit 2 ;;
esac

start_server() {
  DATABASE_URL="$DATABASE_URL" DATA_DIR="$WORK" INITIAL_ROOT_TOKEN="$TOKEN" \
    LISTEN_ADDR="127.0.0.1:$PORT" RUST_LOG=warn "$BIN" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/-/readiness" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "the server did not become ready:" >&2; cat "$WORK/server.log" >&2; exit 1
}

# The first start migrates and creates root; the directory is seeded behind its back.
start_server
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
seed_started=$(date +%s)
run_sql <<SQL
$SERIES
INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
SELECT 'u' || i, 'User ' || i, 'u' || i || '@example.com',
       CASE i % 20 WHEN 0 THEN 'blocked' WHEN 1 THEN 'deactivated' ELSE 'active' END,
       CASE i % 50 WHEN 0 THEN 'project_bot' WHEN 1 THEN 'service_user' ELSE 'human' END,
       FALSE, $NOW, $NOW
$FROM_SERIES;
INSERT INTO groups (name, path, description, visibility, created_at)
VALUES ('Big', 'big', '', 'private', $NOW);
INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
SELECT u.id, 'Namespace', g.id, 30, $NOW FROM users u, groups g
WHERE g.path = 'big' AND u.id % 2 = 0;
ANALYZE;
SQL
echo "seeded $USERS users on $BACKEND in $(( $(date +%s) - seed_started )) s"
start_server

median_ms() {
  local url="$1" times=()
  for _ in $(seq 1 "$RUNS"); do
    times+=("$(curl -s -o /dev/null -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN" "$url")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ t[NR] = $1 } END { printf "%.1f", t[int((NR + 1) / 2)] * 1000 }'
}

deep_id=$(( USERS * 3 / 10 ))
cursor=$(printf '{"id":"%s","_kd":"n"}' "$deep_id" | base64 -w0 | tr '+/' '-_')
base="http://127.0.0.1:$PORT/api/v4"
printf '| request (%s users, %s) | median ms |\n|---|---|\n' "$USERS" "$BACKEND"
while IFS='|' read -r name path; do
  printf '| %s | %s |\n' "$name" "$(median_ms "$base$path")"
done <<EOF2
GET /users?search=98765|/users?search=98765
GET /users?search=u765432@example.com|/users?search=u765432@example.com
GET /users?username=u765432|/users?username=u765432
GET /users (page 1)|/users
GET /users?page=1000|/users?page=1000
GET /users?active=true&humans=true|/users?active=true&humans=true
GET /users keyset, cursor 30% deep|/users?pagination=keyset&order_by=id&cursor=$cursor
GET /groups/big/members|/groups/big/members
GET /license|/license
EOF2
