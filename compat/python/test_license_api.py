#!/usr/bin/env python3
"""python-gitlab against gitlab-license-server: the License API as GitLab serves it.

Environment:
  GITLAB_URL                 base URL of the server (no /api/v4), e.g. http://127.0.0.1:8080
  GITLAB_TOKEN               an admin personal access token (never printed)
  GLS_LICENSE_FILE           a valid key: ultimate, 100 seats, 2025-01-01..2035-01-01,
                             licensee Ada Admin / ada@example.org / Example Org (see run.sh)
  GLS_EXPIRED_LICENSE_FILE   a key that expired on 2020-01-01
  GLS_VECTORS_FILE           optional: tests/fixtures/license-vectors/vectors.json, keys made by
                             the gitlab-license gem, each uploaded and checked against `expect`
  GITLAB_NONADMIN_TOKEN      optional: a non-admin token, for the 403 checks

Every check runs (a failed one does not hide the next); the script prints one line per check and
exits 1 if any failed. Checks that need an earlier result are skipped when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
import warnings

import gitlab
import gitlab.exceptions as gexc

URL = os.environ["GITLAB_URL"].rstrip("/")
TOKEN = os.environ["GITLAB_TOKEN"]
TIMEOUT = 30

# What run.sh issues for GLS_LICENSE_FILE.
EXPECT_VALID = {
    "plan": "ultimate",
    "starts_at": "2025-01-01",
    "expires_at": "2035-01-01",
    "user_limit": 100,
    "licensee": {"Name": "Ada Admin", "Email": "ada@example.org", "Company": "Example Org"},
    "expired": False,
}

FIELDS = [
    "id", "plan", "created_at", "starts_at", "expires_at", "historical_max",
    "maximum_user_count", "licensee", "add_ons", "expired", "overage", "user_limit",
    "active_users",
]
LIST_FIELDS = [f for f in FIELDS if f != "active_users"]

MSG_INVALID = ("The license key is invalid. Make sure it is exactly as you received it from "
               "the license issuer.")
MSG_EXPIRED = "This license has already expired."

CREATED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

results: list[tuple[str, str, str]] = []  # (status, name, detail)
state: dict = {}
created_ids: list[int] = []


def redact(text: str) -> str:
    return text.replace(TOKEN, "[REDACTED]") if TOKEN else text


def check(name, *needs):
    """Decorator: run the check now, record PASS/FAIL/SKIP."""

    def run(fn):
        missing = [n for n in needs if n not in state]
        if missing:
            results.append(("SKIP", name, f"needs {', '.join(missing)}"))
            print(f"SKIP {name} (needs {', '.join(missing)})", flush=True)
            return fn
        try:
            fn()
        except AssertionError as e:
            detail = redact(str(e) or traceback.format_exc(limit=2))
            results.append(("FAIL", name, detail))
            print(f"FAIL {name}: {detail}", flush=True)
        except Exception as e:  # noqa: BLE001 - any client error is a failed check
            detail = redact(f"{type(e).__name__}: {e}")
            body = getattr(e, "response_body", None)
            if body:
                detail += f" | body={redact(body.decode(errors='replace') if isinstance(body, bytes) else str(body))}"
            code = getattr(e, "response_code", None)
            if code:
                detail += f" | code={code}"
            results.append(("FAIL", name, detail))
            print(f"FAIL {name}: {detail}", flush=True)
        else:
            results.append(("PASS", name, ""))
            print(f"PASS {name}", flush=True)
        return fn

    return run


def read(path_var: str) -> str:
    with open(os.environ[path_var], encoding="utf-8") as f:
        return f.read()


def new_client(**kw) -> gitlab.Gitlab:
    return gitlab.Gitlab(URL, timeout=TIMEOUT, retry_transient_errors=False, **kw)


def check_license_object(lic, *, with_active_users: bool, expect: dict | None = None,
                         where: str = "") -> None:
    assert isinstance(lic, dict), f"{where}: expected a JSON object, got {type(lic).__name__}: {lic!r}"
    fields = FIELDS if with_active_users else LIST_FIELDS
    assert list(lic.keys()) == fields, f"{where}: keys {list(lic.keys())} != GitLab's {fields}"
    assert type(lic["id"]) is int and lic["id"] > 0, f"{where}: id {lic['id']!r}"
    assert isinstance(lic["plan"], str), f"{where}: plan {lic['plan']!r}"
    assert isinstance(lic["created_at"], str) and CREATED_AT_RE.match(lic["created_at"]), \
        f"{where}: created_at {lic['created_at']!r} is not like 2025-03-01T09:15:02.481Z"
    for k in ("starts_at", "expires_at"):
        assert isinstance(lic[k], str) and DATE_RE.match(lic[k]), f"{where}: {k} {lic[k]!r} is not YYYY-MM-DD"
    for k in ("historical_max", "maximum_user_count", "overage", "user_limit"):
        assert type(lic[k]) is int and lic[k] >= 0, f"{where}: {k} {lic[k]!r} is not a non-negative int"
    if with_active_users:
        # GitLab's GitlabLicenseWithActiveUsers exposes license.daily_billable_users_count, which
        # may be 0 here: on Ultimate a root user without group/project memberships is not billable.
        assert type(lic["active_users"]) is int and lic["active_users"] >= 0, \
            f"{where}: active_users {lic['active_users']!r}"
    assert isinstance(lic["licensee"], dict), f"{where}: licensee {lic['licensee']!r}"
    assert isinstance(lic["add_ons"], dict), f"{where}: add_ons {lic['add_ons']!r}"
    assert type(lic["expired"]) is bool, f"{where}: expired {lic['expired']!r}"
    for k, v in (expect or {}).items():
        got = lic[k]
        assert got == v, f"{where}: {k} = {got!r}, expected {v!r}"
        if isinstance(v, dict):
            assert list(got.keys()) == list(v.keys()), f"{where}: {k} key order {list(got)} != {list(v)}"


def expect_http_error(fn, exc_type, code: int, message: str | None = None, body: dict | None = None):
    try:
        fn()
    except exc_type as e:
        assert e.response_code == code, f"response_code {e.response_code} != {code} (message {e.error_message!r})"
        if message is not None:
            assert e.error_message == message, f"error_message {e.error_message!r} != {message!r}"
        if body is not None:
            got = json.loads(e.response_body)
            assert got == body, f"body {got!r} != {body!r}"
        return e
    raise AssertionError(f"expected {exc_type.__name__} {code}, but the call succeeded")


gl = new_client(private_token=TOKEN)
valid_key = read("GLS_LICENSE_FILE")
expired_key = read("GLS_EXPIRED_LICENSE_FILE")


@check("gl.auth() returns the admin user, no base-URL warning")
def _():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gl.auth()
    u = gl.user
    assert type(u.id) is int, f"user.id {u.id!r}"
    assert isinstance(u.username, str) and u.username, f"user.username {u.username!r}"
    assert u.attributes.get("is_admin") is True, f"is_admin {u.attributes.get('is_admin')!r}"
    msgs = [str(w.message) for w in caught if "base URL" in str(w.message)]
    assert not msgs, f"python-gitlab warned: {msgs[0]!r} (web_url={u.attributes.get('web_url')!r})"
    state["user"] = u


@check("gl.version() and GET /metadata")
def _():
    version, revision = gl.version()
    assert version != "unknown" and isinstance(version, str), f"version {version!r}"
    assert isinstance(revision, str) and revision != "unknown", f"revision {revision!r}"
    md = gl.http_get("/metadata")
    assert isinstance(md, dict), f"/metadata gave {md!r}"
    assert md.get("version") == version, f"/metadata version {md.get('version')!r} != {version!r}"
    assert isinstance(md.get("revision"), str), f"/metadata revision {md.get('revision')!r}"
    assert isinstance(md.get("kas"), dict) and type(md["kas"].get("enabled")) is bool, f"/metadata kas {md.get('kas')!r}"
    assert type(md.get("enterprise")) is bool, f"/metadata enterprise {md.get('enterprise')!r}"


@check("reset: delete every existing license (GET /licenses, DELETE /license/:id)")
def _():
    existing = gl.http_list("/licenses", get_all=True)
    assert isinstance(existing, list), f"/licenses gave {existing!r}"
    for lic in existing:
        r = gl.http_delete(f"/license/{lic['id']}")
        assert r.status_code == 204, f"DELETE /license/{lic['id']} -> {r.status_code}"
    state["reset"] = True


@check("gl.get_license() on an instance without a license", "reset")
def _():
    assert gl.get_license() == {}, "python-gitlab should map GitLab's JSON null to {}"
    r = gl.http_request("get", "/license")
    assert r.status_code == 200, f"status {r.status_code}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), f"Content-Type {r.headers.get('Content-Type')!r}"
    assert r.text.strip() == "null", f"body {r.text!r}, GitLab sends null"
    assert gl.http_list("/licenses", get_all=True) == []


@check("gl.set_license(valid key) returns the license object")
def _():
    lic = gl.set_license(valid_key)
    if isinstance(lic, dict) and type(lic.get("id")) is int:
        created_ids.append(lic["id"])
        state["lic"] = lic  # later checks can run even if a field below is off
    check_license_object(lic, with_active_users=True, expect=EXPECT_VALID, where="set_license")
    assert lic["overage"] == 0, f"overage {lic['overage']!r}"


@check("gl.get_license() now returns the same object", "lic")
def _():
    got = gl.get_license()
    assert got == state["lic"], f"get_license {got!r} != set_license {state['lic']!r}"


@check("GET /license/:id returns the same object", "lic")
def _():
    got = gl.http_get(f"/license/{state['lic']['id']}")
    check_license_object(got, with_active_users=True, where="GET /license/:id")
    assert got == state["lic"], f"{got!r} != {state['lic']!r}"


@check("GET /licenses lists it without active_users", "lic")
def _():
    lst = gl.http_list("/licenses", get_all=True)
    assert isinstance(lst, list) and len(lst) == 1, f"/licenses {lst!r}"
    check_license_object(lst[0], with_active_users=False, where="GET /licenses[0]")
    want = {k: v for k, v in state["lic"].items() if k != "active_users"}
    assert lst[0] == want, f"{lst[0]!r} != {want!r}"


@check("gl.set_license(expired key) raises 400 'This license has already expired.'", "lic")
def _():
    expect_http_error(lambda: gl.set_license(expired_key), gexc.GitlabLicenseError, 400,
                      MSG_EXPIRED, {"message": MSG_EXPIRED})
    assert gl.get_license()["id"] == state["lic"]["id"], "the current license changed"


@check("gl.set_license(garbage) raises 400 invalid-key message")
def _():
    expect_http_error(lambda: gl.set_license("this is not a license key"), gexc.GitlabLicenseError, 400,
                      MSG_INVALID, {"message": MSG_INVALID})


@check("POST /license without `license` -> 400 {'error': 'license is missing'}")
def _():
    expect_http_error(lambda: gl.http_post("/license", post_data={}), gexc.GitlabHttpError, 400,
                      "license is missing", {"error": "license is missing"})


@check("POST /license form-encoded and as a query parameter -> 201, newest becomes current", "lic")
def _():
    for how in ("data", "params"):
        r = gl.session.post(f"{gl.api_url}/license", **{how: {"license": valid_key}},
                            headers={"PRIVATE-TOKEN": TOKEN}, timeout=TIMEOUT)
        assert r.status_code == 201, f"{how}: status {r.status_code} body {r.text[:300]!r}"
        lic = r.json()
        created_ids.append(lic["id"])
        state["lic_latest"] = lic
        check_license_object(lic, with_active_users=True, expect=EXPECT_VALID, where=f"POST ({how})")
        assert lic["id"] > state["lic"]["id"], f"{how}: id {lic['id']} not newer than {state['lic']['id']}"
        assert gl.get_license()["id"] == lic["id"], f"{how}: GET /license is not the newest upload"


@check("GET /license/:id for a missing id -> 404 {'message': '404 Not Found'}")
def _():
    expect_http_error(lambda: gl.http_get("/license/987654321"), gexc.GitlabHttpError, 404,
                      "404 Not Found", {"message": "404 Not Found"})


@check("DELETE /license/:id for a missing id -> 404 {'message': '404 Not found'}")
def _():
    expect_http_error(lambda: gl.http_delete("/license/987654321"), gexc.GitlabHttpError, 404,
                      "404 Not found", {"message": "404 Not found"})


@check("PUT /license/:id/refresh_billable_users -> 202 {'success': true}", "lic")
def _():
    r = gl.http_request("put", f"/license/{state['lic']['id']}/refresh_billable_users")
    assert r.status_code == 202, f"status {r.status_code}"
    assert r.json() == {"success": True}, f"body {r.text!r}"
    assert gl.http_put(f"/license/{state['lic']['id']}/refresh_billable_users") == {"success": True}


@check("GET /license/usage_export.csv -> 200 text/csv", "lic")
def _():
    r = gl.http_get("/license/usage_export.csv", raw=True)
    assert r.status_code == 200, f"status {r.status_code}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/csv"), f"Content-Type {ctype!r}"
    assert r.text.strip(), "empty CSV"
    print(f"     usage_export.csv first line: {r.text.splitlines()[0][:120]!r}")


@check("invalid token: auth()/get_license()/set_license() raise 401 '401 Unauthorized'")
def _():
    bad = new_client(private_token="glpat-" + "x" * 20)
    for what, fn in (("auth", bad.auth), ("get_license", bad.get_license),
                     ("set_license", lambda: bad.set_license(valid_key))):
        try:
            expect_http_error(fn, gexc.GitlabAuthenticationError, 401, "401 Unauthorized",
                              {"message": "401 Unauthorized"})
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from None
    anon = new_client()
    try:
        expect_http_error(anon.get_license, gexc.GitlabAuthenticationError, 401, "401 Unauthorized")
    except AssertionError as e:
        raise AssertionError(f"no token: {e}") from None


@check("Authorization: Bearer (oauth_token=) works like PRIVATE-TOKEN", "lic_latest")
def _():
    bearer = new_client(oauth_token=TOKEN)
    assert bearer.get_license()["id"] == state["lic_latest"]["id"]


INSUFFICIENT = {"error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token."}

if os.environ.get("GITLAB_READ_API_TOKEN"):
    @check("read_api token: GET /license works; POST /license -> 403 insufficient_scope (scope api)")
    def _():
        ro = new_client(private_token=os.environ["GITLAB_READ_API_TOKEN"])
        ro.get_license()
        ro.http_list("/licenses", get_all=True)
        expect_http_error(lambda: ro.set_license(valid_key), gexc.GitlabLicenseError, 403,
                          "insufficient_scope", {**INSUFFICIENT, "scope": "api"})
        expect_http_error(lambda: ro.http_delete("/license/987654321"), gexc.GitlabHttpError, 403,
                          "insufficient_scope", {**INSUFFICIENT, "scope": "api"})

if os.environ.get("GITLAB_READ_USER_TOKEN"):
    @check("read_user token: gl.auth() (GET /user) works, /version works; GET /license -> 403 insufficient_scope")
    def _():
        # GitLab's users.rb, version.rb and metadata.rb allow_access_with_scope :read_user for GET/HEAD.
        ru = new_client(private_token=os.environ["GITLAB_READ_USER_TOKEN"])
        problems = []
        for what, fn in (("GET /user (gl.auth())", ru.auth), ("GET /version", lambda: ru.http_get("/version")),
                         ("GET /metadata", lambda: ru.http_get("/metadata"))):
            try:
                fn()
            except gexc.GitlabError as e:
                problems.append(f"{what} -> {e.response_code} {e.response_body.decode(errors='replace') if e.response_body else ''}")
        expect_http_error(ru.get_license, gexc.GitlabLicenseError, 403, "insufficient_scope")
        assert not problems, "; ".join(problems)

if os.environ.get("GITLAB_NONADMIN_TOKEN"):
    @check("non-admin token: license endpoints -> 403 {'message': '403 Forbidden'}")
    def _():
        na = new_client(private_token=os.environ["GITLAB_NONADMIN_TOKEN"])
        na.auth()
        expect_http_error(na.get_license, gexc.GitlabLicenseError, 403, "403 Forbidden",
                          {"message": "403 Forbidden"})
        expect_http_error(lambda: na.set_license(valid_key), gexc.GitlabLicenseError, 403,
                          "403 Forbidden", {"message": "403 Forbidden"})


@check("DELETE /license/:id -> 204 empty; then GET /license/:id -> 404", "lic")
def _():
    for lid in list(created_ids):
        r = gl.http_delete(f"/license/{lid}")
        assert r.status_code == 204, f"DELETE {lid}: status {r.status_code}"
        assert r.content == b"", f"DELETE {lid}: body {r.content[:200]!r}"
        created_ids.remove(lid)
        expect_http_error(lambda: gl.http_get(f"/license/{lid}"), gexc.GitlabHttpError, 404, "404 Not Found")
    assert gl.get_license() == {}, "GET /license after deleting every license"


vectors_file = os.environ.get("GLS_VECTORS_FILE")
if vectors_file:
    with open(vectors_file, encoding="utf-8") as f:
        vectors = json.load(f)
    for vec in vectors:
        name, key, exp = vec["name"], vec["license"], vec["expect"]

        @check(f"vector {name}: gl.set_license() of a gem-made key")
        def _():
            if not exp["valid"]:
                expect_http_error(lambda: gl.set_license(key), gexc.GitlabLicenseError, 400,
                                  MSG_INVALID, {"message": MSG_INVALID})
                return
            if exp.get("upload_error"):
                expect_http_error(lambda: gl.set_license(key), gexc.GitlabLicenseError, 400,
                                  exp["upload_error"], {"message": exp["upload_error"]})
                return
            lic = gl.set_license(key)
            created_ids.append(lic["id"])
            want = {k: exp[k] for k in ("plan", "starts_at", "expires_at", "user_limit",
                                        "licensee", "add_ons", "expired")}
            check_license_object(lic, with_active_users=True, expect=want, where=name)
            current = gl.get_license()
            if exp.get("current", True):
                assert current.get("id") == lic["id"], f"GET /license id {current.get('id')!r}, expected {lic['id']}"
            else:
                assert current.get("id") != lic["id"], "a future-dated license became the current one"
            listed = [x["id"] for x in gl.http_list("/licenses", get_all=True)]
            assert lic["id"] in listed, f"{lic['id']} not in /licenses {listed}"

    @check("vectors: cleanup")
    def _():
        for lid in list(created_ids):
            gl.http_delete(f"/license/{lid}")
            created_ids.remove(lid)


failed = [r for r in results if r[0] == "FAIL"]
passed = [r for r in results if r[0] == "PASS"]
skipped = [r for r in results if r[0] == "SKIP"]
print(f"python-gitlab {gitlab.__version__}")
print(f"python: {len(passed)} passed, {len(failed)} failed"
      + (f", {len(skipped)} skipped" if skipped else ""))
sys.exit(1 if failed or skipped else 0)
