#!/usr/bin/env bash
# `backup restore` against the backend's own tools, on the same data: seeds USERS users in SQL
# (default 1,000,000, plus one group and USERS/2 memberships: ≈1.5M rows, as
# scripts/bench-scale.sh does), writes a backup with `backup create`, then times
#   - `backup restore` of that file into an empty database (the whole command: migrations,
#     the rows, ANALYZE), and
#   - the native restore of the same data into an empty database: `sqlite3 new.db < dump.sql`
#     from `sqlite3 old.db .dump`, or `pg_restore` of a `pg_dump -Fc` archive.
# Only the restores are timed, not the dumps. Prints a markdown table with both and the ratio.
#
#   scripts/bench-restore.sh [sqlite|postgres] [USERS]
#   BIN=path/to/gitlab-license-server scripts/bench-restore.sh   (default: the release build)
#
# PostgreSQL is the local one at 127.0.0.1:5432 (user postgres); the scratch databases are
# dropped at the end. Needs sqlite3 (apt-get install sqlite3) or pg_dump/pg_restore.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
USERS="${2:-1000000}"
WORK="$(mktemp -d)"
PG_DBS=()

cleanup() {
  for db in "${PG_DBS[@]}"; do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet --bin gitlab-license-server
  BIN="${CARGO_TARGET_DIR:-target}/release/gitlab-license-server"
fi

pg_url() { echo "postgres://postgres@127.0.0.1:5432/$1"; }
pg_create() {
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $1" >/dev/null
  PG_DBS+=("$1")
}

case "$BACKEND" in
  sqlite)
    command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 2; }
    SOURCE_URL="sqlite://$WORK/source.db"
    TARGET_URL="sqlite://$WORK/restored.db"
    run_sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.stdin.read()); c.commit()' "$WORK/source.db"; }
    count() { sqlite3 "$1" "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM groups) + (SELECT COUNT(*) FROM members)"; }
    SERIES="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $USERS)"
    FROM_SERIES="FROM n"
    NOW="strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    NATIVE="sqlite3 .dump → sqlite3"
    ;;
  postgres)
    for tool in pg_dump pg_restore psql; do
      command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
    done
    SOURCE_DB="gls_restore_source_$$"; TARGET_DB="gls_restore_target_$$"; NATIVE_DB="gls_restore_native_$$"
    pg_create "$SOURCE_DB"; pg_create "$TARGET_DB"; pg_create "$NATIVE_DB"
    SOURCE_URL="$(pg_url "$SOURCE_DB")"
    TARGET_URL="$(pg_url "$TARGET_DB")"
    run_sql() { psql -h 127.0.0.1 -U postgres -d "$SOURCE_DB" -qv ON_ERROR_STOP=1 >/dev/null; }
    count() { psql -h 127.0.0.1 -U postgres -d "$1" -Atc "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM groups) + (SELECT COUNT(*) FROM members)"; }
    SERIES=""
    FROM_SERIES="FROM generate_series(1, $USERS) AS n(i)"
    NOW="now()"
    NATIVE="pg_dump -Fc → pg_restore"
    ;;
  *) echo "usage: $0 [sqlite|postgres] [USERS]" >&2; exit 2 ;;
esac

cli() { env -i PATH="$PATH" DATABASE_URL="$1" RUST_LOG=warn "$BIN" "${@:2}"; }
now_s() { date +%s.%N; }
since() { awk -v start="$1" -v end="$(now_s)" 'BEGIN { printf "%.1f", end - start }'; }

cli "$SOURCE_URL" migrate >/dev/null
seed_started=$(now_s)
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
echo "seeded $USERS users on $BACKEND in $(since "$seed_started") s" >&2

cli "$SOURCE_URL" backup create "$WORK/data.backup" >&2
started=$(now_s)
cli "$TARGET_URL" backup restore "$WORK/data.backup" >&2
ours=$(since "$started")

case "$BACKEND" in
  sqlite)
    sqlite3 "$WORK/source.db" .dump >"$WORK/dump.sql"
    started=$(now_s)
    sqlite3 "$WORK/native.db" <"$WORK/dump.sql"
    native=$(since "$started")
    restored_rows=$(count "$WORK/restored.db"); native_rows=$(count "$WORK/native.db")
    ;;
  postgres)
    pg_dump -h 127.0.0.1 -U postgres -Fc -f "$WORK/dump.pgc" "$SOURCE_DB"
    started=$(now_s)
    pg_restore -h 127.0.0.1 -U postgres -d "$NATIVE_DB" "$WORK/dump.pgc"
    native=$(since "$started")
    restored_rows=$(count "$TARGET_DB"); native_rows=$(count "$NATIVE_DB")
    ;;
esac
if [ "$restored_rows" != "$native_rows" ]; then
  echo "row counts differ: backup restore $restored_rows, native $native_rows" >&2
  exit 1
fi

ratio=$(awk -v ours="$ours" -v native="$native" 'BEGIN { printf "%.2f", ours / native }')
printf '| backend | rows | `backup restore` s | %s s | ratio |\n|---|---|---|---|---|\n' "native ($NATIVE)"
printf '| %s | %s | %s | %s | %s× |\n' "$BACKEND" "$restored_rows" "$ours" "$native" "$ratio"
