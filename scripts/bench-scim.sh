#!/usr/bin/env bash
# The instance SCIM API as identity providers drive it, on BACKEND:
#
#   - provisioning USERS users one request at a time, as Okta does (a `userName eq` lookup,
#     then the POST), against the bare work: the same users created one at a time through
#     GitLab's REST `POST /api/v4/users` in the same run (their ratio is what SCIM adds);
#   - a USERS-member group pushed in one PATCH (members add), then removed in one PATCH;
#   - the same PATCH on a group linked to a GitLab Duo purchase of USERS/2 seats: half the
#     members get a seat through the bulk seat service, half are reported short;
#   - Okta's credential test (`GET /Users?startIndex=1&count=2`) and a lookup by `userName`
#     with USERS identities (median of RUNS).
#
#   scripts/bench-scim.sh [sqlite|postgres] [USERS]
#   BIN=path/to/gitlab-license-server scripts/bench-scim.sh   (default: the release build)
#
# Loopback only; PostgreSQL is the local one at 127.0.0.1:5432 (user postgres). Everything is
# removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
USERS="${2:-10000}"
RUNS="${RUNS:-15}"
PORT="${PORT:-18190}"
TOKEN="glpat-scim-benchmark-000000000"
WORK="$(mktemp -d)"
PID=""
PG_DB=""

cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
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
  --add-on-product "duo_pro=$((USERS / 2))" \
  --starts "$(date -u -d '-30 days' +%F)" --expires "$(date -u -d '+1 year' +%F)")

case "$BACKEND" in
  sqlite) URL="sqlite://$WORK/bench.db" ;;
  postgres)
    PG_DB="bench_scim_$$"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
    URL="postgres://postgres@127.0.0.1:5432/$PG_DB" ;;
  *) echo "usage: $0 [sqlite|postgres] [USERS]" >&2; exit 2 ;;
esac

env DATABASE_URL="$URL" DATA_DIR="$WORK" INITIAL_ROOT_TOKEN="$TOKEN" \
  LISTEN_ADDR="127.0.0.1:$PORT" LICENSE_PUBLIC_KEY_FILE="$WORK/keys/license_key.pub" \
  RUST_LOG=warn "$BIN" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/-/readiness" 2>/dev/null && break
  sleep 0.2
done

python3 - "$PORT" "$TOKEN" "$LICENSE" "$USERS" "$RUNS" "$BACKEND" <<'PY'
import http.client, json, statistics, sys, time, urllib.parse

port, root, license, users, runs, backend = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
conn = http.client.HTTPConnection("127.0.0.1", int(port))

def call(method, path, body=None, headers=None, expect=None):
    data = None if body is None else json.dumps(body)
    conn.request(method, path, body=data, headers=headers or {})
    reply = conn.getresponse()
    text = reply.read()
    if expect is not None and reply.status != expect:
        sys.exit(f"{method} {path}: {reply.status} {text[:300]!r}")
    return reply.status, text

admin = {"PRIVATE-TOKEN": root, "Content-Type": "application/json"}
call("POST", "/api/v4/license", {"license": license}, admin, 201)
_, body = call("POST", "/api/v4/-/scim/token", None, {"PRIVATE-TOKEN": root}, 201)
scim = {"Authorization": "Bearer " + json.loads(body)["token"], "Content-Type": "application/scim+json"}
BASE = "/api/scim/v2/application"

# The bare work: GitLab's REST create, one user at a time.
start = time.perf_counter()
for n in range(users):
    call("POST", "/api/v4/users", {"username": f"rest{n:06}", "name": f"Rest {n}", "email": f"rest{n:06}@example.com"}, admin, 201)
rest_seconds = time.perf_counter() - start

# Okta: a lookup by userName, then the create.
start = time.perf_counter()
for n in range(users):
    name = f"idp{n:06}@corp.example"
    query = urllib.parse.quote(f'userName eq "{name}"')
    call("GET", f"{BASE}/Users?filter={query}&startIndex=1&count=100", None, scim, 200)
    call("POST", f"{BASE}/Users", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "externalId": f"00u{n:06}",
        "userName": name, "name": {"givenName": "Idp", "familyName": str(n)},
        "emails": [{"primary": True, "type": "work", "value": name}], "active": True}, scim, 201)
scim_seconds = time.perf_counter() - start

members = [{"value": f"00u{n:06}"} for n in range(users)]
def timed(method, path, body, expect):
    start = time.perf_counter()
    call(method, path, body, scim, expect)
    return time.perf_counter() - start

_, body = call("POST", f"{BASE}/Groups", {"displayName": "Everyone"}, scim, 201)
group = json.loads(body)["id"]
add = timed("PATCH", f"{BASE}/Groups/{group}", {"Operations": [{"op": "add", "path": "members", "value": members}]}, 204)
remove = timed("PATCH", f"{BASE}/Groups/{group}", {"Operations": [{"op": "remove", "path": "members", "value": members}]}, 204)

# A group holding Duo seats: half the members get one.
_, body = call("POST", f"{BASE}/Groups", {"displayName": "Duo"}, scim, 201)
duo_group = json.loads(body)["id"]
conn.request("GET", "/api/graphql?query=" + urllib.parse.quote("{addOnPurchases{id}}"), headers={"Authorization": "Bearer " + root})
purchase_gid = json.loads(conn.getresponse().read())["data"]["addOnPurchases"][0]["id"]
purchase = int(purchase_gid.rsplit("/", 1)[1])
call("PUT", f"/api/v4/-/scim/groups/{duo_group}", {"add_on_purchase_id": purchase}, admin, 200)
linked = timed("PATCH", f"{BASE}/Groups/{duo_group}", {"Operations": [{"op": "add", "path": "members", "value": members}]}, 204)
_, body = call("GET", "/api/v4/-/scim/groups", None, {"PRIVATE-TOKEN": root}, 200)
seats = [g for g in json.loads(body) if g["id"] == duo_group][0]

def median_ms(path):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call("GET", path, None, scim, 200)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)

credential = median_ms(f"{BASE}/Users?startIndex=1&count=2")
lookup = median_ms(f"{BASE}/Users?filter=" + urllib.parse.quote(f'userName eq "idp{users // 2:06}@corp.example"'))

print(f"backend {backend}, {users} users")
print(f"REST POST /users, one at a time (bare): {rest_seconds:.1f} s, {rest_seconds / users * 1000:.2f} ms a user")
print(f"SCIM lookup + POST /Users, one at a time: {scim_seconds:.1f} s, {scim_seconds / users * 1000:.2f} ms a user ({scim_seconds / rest_seconds:.2f}x the bare create)")
print(f"PATCH /Groups add {users} members: {add * 1000:.0f} ms; remove them all: {remove * 1000:.0f} ms")
print(f"PATCH /Groups add {users} members to a Duo-linked group ({users // 2} seats): {linked * 1000:.0f} ms; "
      f"{seats['members'] - seats['without_seat']} seated, {seats['without_seat']} short")
print(f"GET /Users?startIndex=1&count=2 (median of {runs}): {credential:.2f} ms")
print(f"GET /Users?filter=userName eq (median of {runs}): {lookup:.2f} ms")
PY
echo "server memory after the run: $(awk '/VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status")"
