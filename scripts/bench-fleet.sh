#!/usr/bin/env bash
# The fleet at scale: three upstream "GitLab instances" (this server, SQLite, each seeded with
# USERS users in SQL and a Premium license; the instances overlap — B starts a fifth of the way
# into A's users, C two fifths), synced into a fleet server on BACKEND. Reports:
#
#   - the upstream's pages alone: one client walking A's keyset pages as the sync does (the
#     bare work a sync cannot be faster than), against the sync of A into the fleet server —
#     their ratio is what the fleet server adds;
#   - the fleet server's memory after each sync (pages are streamed, so it should not grow with
#     the instance);
#   - GET /api/v4/-/fleet/summary and a people page over the three instances (median of RUNS).
#
#   scripts/bench-fleet.sh [sqlite|postgres] [USERS]
#   BIN=path/to/gitlab-license-server scripts/bench-fleet.sh   (default: the release build)
#
# Loopback only; PostgreSQL is the local one at 127.0.0.1:5432 (user postgres). Everything
# is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
USERS="${2:-100000}"
RUNS="${RUNS:-15}"
BASE_PORT="${BASE_PORT:-18090}"
TOKEN="glpat-fleet-benchmark-00000000"
WORK="$(mktemp -d)"
PIDS=()
PG_DB=""

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
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

"$BIN" keys generate --out "$WORK/keys" >/dev/null
LICENSE=$("$BIN" license issue --private-key "$WORK/keys/license_key" --name "Bench" \
  --email bench@example.org --company "Bench" --plan premium --seats 1000000 \
  --starts "$(date -u -d '-30 days' +%F)" --expires "$(date -u -d '+1 year' +%F)")

# serve NAME PORT DATABASE_URL [ENV…]: starts a server, waits for readiness, records its pid.
serve() {
  local name="$1" port="$2" url="$3"; shift 3
  mkdir -p "$WORK/$name"
  env DATABASE_URL="$url" DATA_DIR="$WORK/$name" INITIAL_ROOT_TOKEN="$TOKEN" \
    LISTEN_ADDR="127.0.0.1:$port" LICENSE_PUBLIC_KEY_FILE="$WORK/keys/license_key.pub" \
    RUST_LOG=warn "$@" "$BIN" >"$WORK/$name/server.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/-/readiness" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$name did not become ready:" >&2; cat "$WORK/$name/server.log" >&2; exit 1
}

rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# Upstreams: migrate, seed behind the server's back, restart, upload the license.
names=(a b c)
for index in 0 1 2; do
  name=${names[$index]}
  port=$((BASE_PORT + index))
  serve "$name" "$port" "sqlite://$WORK/$name.db"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
  offset=$(( USERS * index / 5 ))
  python3 - "$WORK/$name.db" "$USERS" "$offset" <<'PY'
import sqlite3, sys
db, users, offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
c.executescript(f"""
WITH RECURSIVE n(i) AS (SELECT {offset + 1} UNION ALL SELECT i + 1 FROM n WHERE i < {offset + users})
INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
SELECT 'u' || i, 'User ' || i, 'u' || i || '@example.com',
       CASE i % 20 WHEN 0 THEN 'blocked' ELSE 'active' END, 'human', FALSE,
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM n;
ANALYZE;
""")
c.commit()
PY
  serve "$name" "$port" "sqlite://$WORK/$name.db"
  curl -fsS -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" --data-urlencode "license=$LICENSE" \
    "http://127.0.0.1:$port/api/v4/license"
done

case "$BACKEND" in
  sqlite) FLEET_URL="sqlite://$WORK/fleet.db" ;;
  postgres)
    PG_DB="gls_fleet_$$"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
    FLEET_URL="postgres://postgres@127.0.0.1:5432/$PG_DB"
    ;;
  *) echo "usage: $0 [sqlite|postgres] [USERS]" >&2; exit 2 ;;
esac
FLEET_PORT=$((BASE_PORT + 9))
serve fleet "$FLEET_PORT" "$FLEET_URL" RUST_LOG=warn,gitlab_license_server::services::fleet=info
FLEET_PID=${PIDS[-1]}
FLEET="http://127.0.0.1:$FLEET_PORT/api/v4/-/fleet"
idle_rss=$(rss_mib "$FLEET_PID")

# The bare work: A's pages walked one after the other by one keep-alive client.
walk_ms=$(python3 - "http://127.0.0.1:$BASE_PORT" "$TOKEN" <<'PY'
import http.client, re, sys, time, urllib.parse
base, token = sys.argv[1], sys.argv[2]
host = urllib.parse.urlparse(base).netloc
conn = http.client.HTTPConnection(host)
path = "/api/v4/users?pagination=keyset&order_by=id&sort=asc&per_page=100"
started = time.monotonic()
users = 0
while path:
    conn.request("GET", path, headers={"PRIVATE-TOKEN": token})
    response = conn.getresponse()
    body = response.read()
    users += body.count(b'"username"')
    link = response.getheader("Link") or ""
    match = re.search(r'<([^>]*)>; rel="next"', link)
    path = None
    if match:
        parsed = urllib.parse.urlparse(match.group(1))
        path = parsed.path + "?" + parsed.query
print(f"{(time.monotonic() - started) * 1000:.0f} {users}", end="")
PY
)
walked_users=${walk_ms#* }
walk_ms=${walk_ms% *}

# sync NAME: registers and syncs an instance, prints the milliseconds until it succeeded.
sync_instance() {
  local name="$1" port="$2" started status
  curl -fsS -o /dev/null -H "PRIVATE-TOKEN: $TOKEN" -H 'Content-Type: application/json' \
    --data "{\"name\": \"$name\", \"url\": \"http://127.0.0.1:$port\", \"token\": \"$TOKEN\"}" "$FLEET/instances"
  started=$(date +%s%N)
  curl -fsS -o /dev/null -X POST -H "PRIVATE-TOKEN: $TOKEN" "$FLEET/instances/$name/sync"
  # A light poll (one curl, a grep) every 100 ms, so that the watching costs the sync little.
  while :; do
    status=$(curl -fsS -H "PRIVATE-TOKEN: $TOKEN" "$FLEET/instances/$name" \
      | grep -o '"last_sync":{"status":"[a-z]*"' | cut -d'"' -f6)
    case "$status" in
      success) break ;;
      failed) echo "sync of $name failed" >&2; curl -fsS -H "PRIVATE-TOKEN: $TOKEN" "$FLEET/instances/$name" >&2; exit 1 ;;
    esac
    sleep 0.1
  done
  echo $(( ($(date +%s%N) - started) / 1000000 ))
}

sync_a=$(sync_instance a "$BASE_PORT"); rss_a=$(rss_mib "$FLEET_PID")
sync_b=$(sync_instance b "$((BASE_PORT + 1))"); rss_b=$(rss_mib "$FLEET_PID")
sync_c=$(sync_instance c "$((BASE_PORT + 2))"); rss_c=$(rss_mib "$FLEET_PID")

median_ms() {
  local url="$1"
  for _ in $(seq 1 "$RUNS"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "PRIVATE-TOKEN: $TOKEN" "$url"
  done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] * 1000 }'
}
summary_ms=$(median_ms "$FLEET/summary")
people_ms=$(median_ms "$FLEET/people?outside_largest=true")
deep_ms=$(median_ms "$FLEET/people?instance=c&billable=true&cursor=$(printf '{"person":"u90000@example.com"}' | base64 -w0 | tr '+/' '-_')")
figures=$(curl -fsS -H "PRIVATE-TOKEN: $TOKEN" "$FLEET/summary" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["unique_billable_users"], s["largest_instance"], s["subset_holds"], s["people_outside_largest"])')

# The fleet server's own account of each sync: the pages read and staged, then the whole.
logged() { grep -o "instance=$1 users=[0-9]* read_ms=[0-9]* elapsed_ms=[0-9]*" "$WORK/fleet/server.log" | tail -1; }
field() { echo "$1" | grep -o "$2=[0-9]*" | cut -d= -f2; }

echo "fleet on $BACKEND, three upstreams of $USERS users each (+ root), overlapping"
echo "figures: unique_billable_users largest subset_holds outside = $figures"
echo
echo "| what | time | × the bare walk |"
echo "|---|---|---|"
echo "| upstream A's $walked_users users, its pages walked by one client (the bare work) | ${walk_ms} ms | 1.00× |"
for name in a b c; do
  line=$(logged "$name")
  read_ms=$(field "$line" read_ms); all_ms=$(field "$line" elapsed_ms)
  awk -v n="$name" -v r="$read_ms" -v a="$all_ms" -v w="$walk_ms" 'BEGIN {
    printf "| sync of %s: its pages read and staged | %d ms | %.2f× |\n", toupper(n), r, r / w
    printf "| sync of %s: in all (with the swap and the matching against the others) | %d ms | %.2f× |\n", toupper(n), a, a / w }'
done
echo "| sync of A, from the request to success as a client sees it | ${sync_a} ms | |"
echo "| GET /-/fleet/summary (median of $RUNS) | ${summary_ms} ms | |"
echo "| GET /-/fleet/people?outside_largest=true (first page) | ${people_ms} ms | |"
echo "| GET /-/fleet/people?instance=c&billable=true, cursor 90 % deep | ${deep_ms} ms | |"
echo
echo "fleet server memory (RSS): idle ${idle_rss} MiB; after A ${rss_a} MiB, after B ${rss_b} MiB, after C ${rss_c} MiB"
