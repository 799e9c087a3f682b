#!/usr/bin/env bash
# The user directory at scale: seeds USERS users in SQL (default 1,000,000: one in twenty
# blocked or deactivated, one in fifty a bot or service user, half of them members of one
# group, a Duo seat for one in a thousand), then times each interactive request — the median
# of RUNS — through the server, beside the time its SQL statements took inside the server
# (sqlx's own per-statement timings, summed per request): the ratio of the two is what the
# server adds over its SQL, the figure that holds on a busy or a fast machine alike.
#
#   scripts/bench-scale.sh [sqlite|postgres] [USERS]
#   BIN=path/to/gitlab-license-server scripts/bench-scale.sh   (default: the release build)
#   JIT=off scripts/bench-scale.sh postgres                    (the server's sessions without JIT)
#   SERVER_LOG=/tmp/scale.log scripts/bench-scale.sh           (keep the server's log: each
#                                                               statement and its time)
#   ONLY=dormant scripts/bench-scale.sh                        (only the rows whose name
#                                                               contains this text; several
#                                                               texts: ONLY='search=987|big/billable')
#
# Loopback only; PostgreSQL is the local one at 127.0.0.1:5432 (user postgres). The scratch
# database is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/web-session.sh
. scripts/web-session.sh

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
  if [ -n "${SERVER_LOG:-}" ] && [ -f "$WORK/server.log" ]; then cp "$WORK/server.log" "$SERVER_LOG"; fi
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
    LONG_AGO="'2025-01-01T00:00:00.000Z'"
    ;;
  postgres)
    PG_DB="gls_scale_$$"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PG_DB"
    if [ "${JIT:-}" = off ]; then DATABASE_URL="$DATABASE_URL?options=-c%20jit%3Doff"; fi
    run_sql() { psql -h 127.0.0.1 -U postgres -d "$PG_DB" -qv ON_ERROR_STOP=1 >/dev/null; }
    SERIES=""
    FROM_SERIES="FROM generate_series(1, $USERS) AS n(i)"
    NOW="now()"
    LONG_AGO="'2025-01-01T00:00:00Z'"
    ;;
  *) echo "usage: $0 [sqlite|postgres] [USERS]" >&2; exit 2 ;;
esac

start_server() {
  DATABASE_URL="$DATABASE_URL" DATA_DIR="$WORK" INITIAL_ROOT_TOKEN="$TOKEN" \
    LISTEN_ADDR="127.0.0.1:$PORT" RUST_LOG=warn,sqlx::query=debug "$BIN" >"$WORK/server.log" 2>&1 &
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
INSERT INTO groups (name, path, description, visibility, created_at)
VALUES ('Team', 'team', '', 'private', $NOW);
INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
SELECT u.id, 'Namespace', g.id, 30, $NOW FROM users u, groups g
WHERE g.path = 'team' AND u.id % 100 = 3 AND u.id <= 1000000;
INSERT INTO add_on_purchases (add_on_name, namespace_id, quantity, started_on, expires_on,
                              trial, created_at, updated_at)
VALUES ('code_suggestions', NULL, 5000, '2026-01-01', '2099-01-01', FALSE, $NOW, $NOW);
INSERT INTO user_add_on_assignments (add_on_purchase_id, user_id, created_at)
SELECT p.id, u.id, $NOW FROM add_on_purchases p, users u
WHERE u.id % 1000 = 7 AND u.state = 'active' AND u.user_type = 'human';
-- The seat ledger as a recount would have left it (its baseline written here, not timed:
-- docs/true-up.md), and a term of daily counts for the peak and the forecast.
INSERT INTO seat_ledger (recorded_at, user_id, username, direction, reason, plan)
SELECT $NOW, id, username, 'baseline', 'Active human user (every active human user occupies a seat)', 'premium'
FROM users WHERE state = 'active' AND user_type IN ('human', 'service_user') ORDER BY id;
DELETE FROM seat_ledger_pending;
INSERT INTO application_settings (name, value, updated_at) VALUES ('seat_ledger_plan', 'premium', $NOW);
INSERT INTO historical_data (recorded_at, active_user_count)
SELECT recorded_at, count FROM (
  SELECT $NOW AS recorded_at, (SELECT COUNT(*) FROM seat_ledger) AS count) AS today;
ANALYZE;
SQL
echo "seeded $USERS users on $BACKEND in $(( $(date +%s) - seed_started )) s"
start_server

# One request: "<ms through the server> <ms of its SQL statements>". The statements are those
# the server logged while the request ran (requests run one at a time).
timed() {
  local before after total sql
  before=$(wc -c <"$WORK/server.log")
  total=$(curl -s -o /dev/null -w '%{time_total}' -H "PRIVATE-TOKEN: $TOKEN" "$@")
  sleep 0.05
  sql=$(tail -c +"$((before + 1))" "$WORK/server.log" \
    | grep -o 'elapsed_secs=[0-9.eE+-]*' | cut -d= -f2 | awk '{ s += $1 } END { printf "%.6f", s }')
  awk -v t="$total" -v s="$sql" 'BEGIN { printf "%.3f %.3f\n", t * 1000, s * 1000 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }'; }

# Whether the row called $1 is wanted (ONLY: texts separated by |, one of them in the name).
wanted() {
  [ -z "${ONLY:-}" ] && return 0
  local text
  IFS='|' read -r -a texts <<<"$ONLY"
  for text in "${texts[@]}"; do
    if [[ "$1" == *"$text"* ]]; then return 0; fi
  done
  return 1
}

# A row of the table: the medians of RUNS requests and their ratio.
row() {
  local name="$1"; shift
  wanted "$name" || return 0
  local samples
  samples=$(for _ in $(seq 1 "$RUNS"); do timed "$@"; done)
  local request sql
  request=$(echo "$samples" | awk '{ print $1 }' | median)
  sql=$(echo "$samples" | awk '{ print $2 }' | median)
  awk -v n="$name" -v r="$request" -v s="$sql" \
    'BEGIN { printf "| %s | %s ms | %s ms | %s |\n", n, r, s, (s > 0 ? sprintf("%.1f×", r / s) : "–") }'
}

# GitLab's keyset cursor over the sort values of the row a page starts after.
cursor() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_'; }

graphql() {
  local name="$1" query="$2"
  python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$query" >"$WORK/query.json"
  row "$name" -X POST -H 'Content-Type: application/json' --data @"$WORK/query.json" \
    "http://127.0.0.1:$PORT/api/graphql"
}

deep_id=$(( USERS * 3 / 10 ))
base="http://127.0.0.1:$PORT/api/v4"
printf '| request (%s users, %s) | median | its SQL | ratio |\n|---|---|---|---|\n' "$USERS" "$BACKEND"
row "GET /users?search=98765" "$base/users?search=98765"
row "GET /users?search=987 (three characters)" "$base/users?search=987"
row "GET /users?search=u765432@example.com" "$base/users?search=u765432@example.com"
row "GET /users?username=u765432" "$base/users?username=u765432"
row "GET /users (page 1)" "$base/users"
row "GET /users?page=1000" "$base/users?page=1000"
row "GET /users?active=true&humans=true" "$base/users?active=true&humans=true"
row "GET /users keyset, cursor 30 % deep" \
  "$base/users?pagination=keyset&order_by=id&cursor=$(cursor "{\"id\":\"$deep_id\",\"_kd\":\"n\"}")"
row "GET /groups/big/members" "$base/groups/big/members"

PURCHASE='gid://gitlab/GitlabSubscriptions::AddOnPurchase/1'
list() { echo "{ selfManagedAddOnEligibleUsers(addOnType: CODE_SUGGESTIONS, addOnPurchaseIds: [\"$PURCHASE\"], $1) { nodes { id username } pageInfo { hasNextPage endCursor } } }"; }
graphql "GraphQL eligible users, first page" "$(list 'first: 20')"
graphql "GraphQL eligible users, search" "$(list 'search: "98765", first: 20')"
graphql "GraphQL eligible users, cursor 70 % deep" \
  "$(list "first: 20, after: \"$(cursor "{\"id\":\"$deep_id\"}")\"")"
graphql "GraphQL eligible users by name, cursor 70 % deep" \
  "$(list "sort: NAME_ASC, first: 20, after: \"$(cursor "{\"name\":\"User 700000\",\"id\":\"700000\"}")\"")"
graphql "GraphQL eligible users, filterByAssignedSeat true" "$(list 'filterByAssignedSeat: "true", first: 20')"

# Seat intelligence (this server's extensions): the dry run of a Duo assignment to a group of
# 10,000 members (one in a hundred users, at a million), who holds a seat, the alerts.
post_json() {
  local name="$1" url="$2" body="$3"
  printf '%s' "$body" >"$WORK/body.json"
  row "$name" -X POST -H 'Content-Type: application/json' --data @"$WORK/body.json" "$url"
}
team_size=$(( USERS < 1000000 ? USERS / 100 : 10000 ))
post_json "POST /-/duo_seats/assign dry run, $team_size-member group" "$base/-/duo_seats/assign" \
  '{"add_on_purchase_id": 1, "group": "team", "min_access_level": 30}'
row "GET /groups/big/billable_members" "$base/groups/big/billable_members"
row "GET /groups/big/billable_members?search=98765" "$base/groups/big/billable_members?search=98765"
row "GET /-/seats/billable_users (first page)" "$base/-/seats/billable_users"
row "GET /-/seats/billable_users?group=team&inactive_for_days=90" \
  "$base/-/seats/billable_users?group=team&inactive_for_days=90"
row "GET /-/seats/alerts" "$base/-/seats/alerts"
# The dormant-user preview (the job's next run): nobody is dormant in this directory (every
# seeded user was created today and never active), the costliest case for its counts.
row "GET /-/dormant_users (nobody dormant)" "$base/-/dormant_users"
# Then half the directory created long ago and never active: dormant, the job's full run.
if wanted "GET /-/dormant_users (half dormant)"; then
  echo "UPDATE users SET created_at = $LONG_AGO WHERE id % 2 = 0 AND username <> 'root';" | run_sql
  row "GET /-/dormant_users (half dormant)" "$base/-/dormant_users"
  echo "UPDATE users SET created_at = $NOW WHERE id % 2 = 0 AND username <> 'root';" | run_sql
fi

# The seat ledger and the true-up (docs/true-up.md): a license first.
"$BIN" license issue --private-key "$WORK/keys/license_key" --name Bench --email bench@example.org \
  --company Bench --plan premium --seats 2000000 --starts "$(date -u -d '-30 days' +%F)" \
  --expires "$(date -u -d '+1 year' +%F)" >"$WORK/license.txt"
python3 -c 'import json,sys; print(json.dumps({"license": open(sys.argv[1]).read().strip()}))' \
  "$WORK/license.txt" >"$WORK/license.json"
curl -fsS -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" -H 'Content-Type: application/json' \
  --data @"$WORK/license.json" "$base/license"
sleep 2
row "GET /-/seats/billable_on?date=today (first page)" "$base/-/seats/billable_on?date=$(date -u +%F)"
row "GET /-/seats/ledger?user=u765432" "$base/-/seats/ledger?user=u765432"
row "GET /-/seats/peak (first page)" "$base/-/seats/peak"
row "GET /-/seats/forecast?price_per_seat=290" "$base/-/seats/forecast?price_per_seat=290"

# The subscription page, signed in.
SESSION=$(web_session "http://127.0.0.1:$PORT" "$TOKEN" "$WORK/cookies")
row "GET /admin/subscription" -H "Cookie: _gitlab_license_server_session=$SESSION" \
  "http://127.0.0.1:$PORT/admin/subscription"
row "GET /license" "$base/license"
