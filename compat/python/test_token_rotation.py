#!/usr/bin/env python3
"""python-gitlab against gitlab-license-server: personal access token rotation.

`gl.personal_access_tokens.rotate(id, expires_at=...)` (POST /personal_access_tokens/:id/rotate)
and a token object's `.rotate(self_rotate=True)` (POST /personal_access_tokens/self/rotate), on
tokens made with the admin token through `user.personal_access_tokens.create()`
(POST /users/:id/personal_access_tokens): the new token's entity and secret, the old token
revoked and refused, the default expiry, rotating a revoked token refused with 400, someone
else's token 401, a missing id 404, a token without `api`/`self_rotate` refused, and GitLab's
reuse detection: a revoked token used as the credential of a rotation revokes every token
rotated from it.

Until the server has the rotate route, the checks do not run: an anonymous
POST /personal_access_tokens/:id/rotate is asked first, and a 404 prints SKIPPED and exits 0
(GitLab answers 401 there).

Environment:
  GITLAB_URL     base URL of the server (no /api/v4)
  GITLAB_TOKEN   an admin personal access token (never printed; nor is any token made here)

Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import traceback

import gitlab
import gitlab.exceptions as gexc
import requests

URL = os.environ["GITLAB_URL"].rstrip("/")
TOKEN = os.environ["GITLAB_TOKEN"]
TIMEOUT = 30

CREATED_AT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# GitLab's PersonalAccessTokenWithToken entity (17.x-18.x; newer versions add more keys after these).
ENTITY_KEYS = ["id", "name", "revoked", "created_at", "description", "scopes", "user_id",
               "last_used_at", "active", "expires_at"]
REVOKED_BODY = {"error": "invalid_token",
                "error_description": "Token was revoked. You have to re-authorize from the user."}
ALREADY_REVOKED = {"message": "400 Bad request - Token already revoked"}

TODAY = dt.datetime.now(dt.timezone.utc).date()
IN_30_DAYS = (TODAY + dt.timedelta(days=30)).isoformat()
IN_60_DAYS = (TODAY + dt.timedelta(days=60)).isoformat()
IN_A_YEAR = (TODAY + dt.timedelta(days=300)).isoformat()

results: list[tuple[str, str, str]] = []  # (status, name, detail)
state: dict = {}
secrets: list[str] = []  # every token made here, kept out of the output


def redact(text: str) -> str:
    for secret in [TOKEN, *secrets]:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return text


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


def new_client(**kw) -> gitlab.Gitlab:
    return gitlab.Gitlab(URL, timeout=TIMEOUT, retry_transient_errors=False, **kw)


def expect_http_error(fn, exc_type, code: int, message=None, body=None):
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


def keep(value: str) -> str:
    assert isinstance(value, str) and value, "no token in the answer"
    secrets.append(value)
    return value


def check_rotated(new: dict, old: dict, *, expires_at: str, where: str) -> None:
    assert isinstance(new, dict), f"{where}: {type(new).__name__}"
    keys = list(new)
    assert keys[: len(ENTITY_KEYS)] == ENTITY_KEYS and "token" in keys, \
        f"{where}: keys {keys} (GitLab: {ENTITY_KEYS} + token)"
    keep(new["token"])
    assert type(new["id"]) is int and new["id"] != old["id"], f"{where}: id {new['id']!r} (old {old['id']})"
    assert new["name"] == old["name"], f"{where}: name {new['name']!r} != {old['name']!r}"
    assert new["revoked"] is False and new["active"] is True, \
        f"{where}: revoked {new['revoked']!r} active {new['active']!r}"
    assert new["scopes"] == old["scopes"], f"{where}: scopes {new['scopes']!r} != {old['scopes']!r}"
    assert new["user_id"] == old["user_id"], f"{where}: user_id {new['user_id']!r} != {old['user_id']!r}"
    assert new["expires_at"] == expires_at, f"{where}: expires_at {new['expires_at']!r}, expected {expires_at}"
    assert isinstance(new["created_at"], str) and CREATED_AT_RE.match(new["created_at"]), \
        f"{where}: created_at {new['created_at']!r}"
    assert new["last_used_at"] is None, f"{where}: last_used_at {new['last_used_at']!r}"
    prefix = gl.settings.get().personal_access_token_prefix
    assert new["token"].startswith(prefix), f"{where}: the new token does not start with the prefix {prefix!r}"
    assert new["token"] != old.get("token"), f"{where}: the same secret again"


def check_revoked(token_id: int, secret: str, where: str) -> None:
    got = gl.personal_access_tokens.get(token_id)
    assert got.revoked is True and got.active is False, \
        f"{where}: token {token_id} revoked {got.revoked!r} active {got.active!r}"
    expect_http_error(new_client(private_token=secret).auth, gexc.GitlabAuthenticationError, 401,
                      body=REVOKED_BODY)


def make_user(username: str):
    user = gl.users.create({"username": username, "name": username, "password": "a-long-enough-password",
                            "email": f"{username}@example.org", "skip_confirmation": True})
    people.append(user)
    return user


def make_token(user, name: str, scopes=("api",), expires_at: str = IN_A_YEAR) -> dict:
    made = user.personal_access_tokens.create({"name": name, "scopes": list(scopes), "expires_at": expires_at})
    attrs = dict(made.attributes)
    keep(attrs.get("token"))
    assert type(attrs.get("id")) is int, f"created token id {attrs.get('id')!r}"
    return attrs


gl = new_client(private_token=TOKEN)
people: list = []


def rotate_route_probe() -> tuple[int, str]:
    # Anonymous: GitLab authenticates before anything else (401); no route here is a 404.
    r = requests.post(f"{URL}/api/v4/personal_access_tokens/1/rotate", timeout=TIMEOUT)
    return r.status_code, r.text


ROUTE_STATUS, ROUTE_BODY = rotate_route_probe()
if ROUTE_STATUS == 404:
    print("SKIPPED token rotation: the server answers an anonymous "
          "POST /api/v4/personal_access_tokens/:id/rotate with 404 (no such route yet; GitLab: 401)")
    print(f"python-gitlab {gitlab.__version__}")
    print("python-rotate: 0 passed, 0 failed")
    sys.exit(0)
print(f"     POST /personal_access_tokens/:id/rotate without a token -> {ROUTE_STATUS}: the rotation checks run",
      flush=True)


@check("an anonymous rotate is 401 {'message': '401 Unauthorized'}")
def _():
    assert ROUTE_STATUS == 401, f"status {ROUTE_STATUS}, GitLab answers 401"
    assert json.loads(ROUTE_BODY) == {"message": "401 Unauthorized"}, f"body {ROUTE_BODY!r}"


@check("setup: a user with tokens made by the admin (POST /users/:id/personal_access_tokens)")
def _():
    alice = make_user("rotate-compat-alice")
    bob = make_user("rotate-compat-bob")
    state["alice"], state["bob"] = alice, bob
    state["t1"] = make_token(alice, "rotate-me")
    state["t2"] = make_token(alice, "rotate-self")
    state["t_read"] = make_token(alice, "read-only", scopes=("read_api",))
    state["t_bob"] = make_token(bob, "bobs")
    t1 = state["t1"]
    assert t1["name"] == "rotate-me" and t1["scopes"] == ["api"] and t1["expires_at"] == IN_A_YEAR \
        and t1["user_id"] == alice.id and t1["active"] is True, f"created {dict(t1, token='[REDACTED]')!r}"


@check("gl.personal_access_tokens.rotate(id, expires_at=...) -> 200 GitLab's entity with the new token",
       "t1")
def _():
    new = gl.personal_access_tokens.rotate(state["t1"]["id"], expires_at=IN_30_DAYS)
    check_rotated(new, state["t1"], expires_at=IN_30_DAYS, where="rotate(id)")
    state["t1b"] = new


@check("after rotate(id): the old token is revoked and refused (401 invalid_token); the new one works",
       "t1b")
def _():
    check_revoked(state["t1"]["id"], state["t1"]["token"], "old token")
    me = new_client(private_token=state["t1b"]["token"])
    me.auth()
    assert me.user.username == "rotate-compat-alice", f"new token is {me.user.username!r}"
    shown = gl.personal_access_tokens.get(state["t1b"]["id"]).attributes
    assert shown.get("active") is True and shown.get("expires_at") == IN_30_DAYS and "token" not in shown, \
        f"GET /personal_access_tokens/:id of the new token {dict(shown, token='[REDACTED]')!r}"


@check("rotate without expires_at: GitLab's default, one week from today", "t1b")
def _():
    new = gl.personal_access_tokens.rotate(state["t1b"]["id"])
    check_rotated(new, state["t1b"], expires_at=(TODAY + dt.timedelta(days=7)).isoformat(),
                  where="rotate(id) without expires_at")
    state["t1c"] = new


@check("token.rotate(self_rotate=True, expires_at=...) with the token itself "
       "(POST /personal_access_tokens/self/rotate)", "t2")
def _():
    own = new_client(private_token=state["t2"]["token"])
    me = own.personal_access_tokens.get("self")
    assert me.id == state["t2"]["id"], f"GET /personal_access_tokens/self id {me.id!r}"
    new = me.rotate(self_rotate=True, expires_at=IN_60_DAYS)
    check_rotated(new, state["t2"], expires_at=IN_60_DAYS, where="self rotate")
    state["t2b"] = new
    assert me.id == new["id"], "python-gitlab did not take the answer into the object"
    check_revoked(state["t2"]["id"], state["t2"]["token"], "self-rotated token")
    again = new_client(private_token=new["token"])
    again.auth()
    assert again.user.username == "rotate-compat-alice", f"new token is {again.user.username!r}"


@check("a read_api token cannot rotate itself: 403 insufficient_scope", "t_read")
def _():
    ro = new_client(private_token=state["t_read"]["token"])
    e = expect_http_error(lambda: ro.personal_access_tokens.rotate("self"), gexc.GitlabRotateError, 403)
    assert json.loads(e.response_body).get("error") == "insufficient_scope", f"body {e.response_body!r}"
    assert gl.personal_access_tokens.get(state["t_read"]["id"]).active is True, "the token was revoked"


@check("someone else's token, as a non-admin: 401 {'message': '401 Unauthorized'}, nothing revoked",
       "t1c", "t_bob")
def _():
    alice = new_client(private_token=state["t1c"]["token"])
    expect_http_error(lambda: alice.personal_access_tokens.rotate(state["t_bob"]["id"]),
                      gexc.GitlabAuthenticationError, 401, "401 Unauthorized", {"message": "401 Unauthorized"})
    assert gl.personal_access_tokens.get(state["t_bob"]["id"]).active is True, "bob's token was revoked"


@check("expires_at beyond the longest lifetime: 400 'Expires at must be before <today + 365>', "
       "the token stays active", "t_bob")
def _():
    limit = (TODAY + dt.timedelta(days=365)).isoformat()
    too_late = (TODAY + dt.timedelta(days=500)).isoformat()
    message = f"400 Bad request - Expires at must be before {limit}"
    expect_http_error(lambda: gl.personal_access_tokens.rotate(state["t_bob"]["id"], expires_at=too_late),
                      gexc.GitlabRotateError, 400, message, {"message": message})
    got = gl.personal_access_tokens.get(state["t_bob"]["id"])
    assert got.active is True and got.revoked is False, "the refused rotation revoked the token"


@check("a missing id, as an admin: 404 {'message': '404 Not Found'}")
def _():
    expect_http_error(lambda: gl.personal_access_tokens.rotate(987654321), gexc.GitlabRotateError, 404,
                      "404 Not Found", {"message": "404 Not Found"})


@check("rotating an already revoked token (the object's .rotate()): GitlabRotateError 400 "
       "'Token already revoked'", "t1c")
def _():
    old = gl.personal_access_tokens.get(state["t1"]["id"])
    expect_http_error(old.rotate, gexc.GitlabRotateError, 400, "400 Bad request - Token already revoked",
                      ALREADY_REVOKED)
    state["reused"] = True


@check("a revoked token used to rotate (self/rotate): 401 'Token was revoked', and every token rotated "
       "from it is revoked (GitLab's reuse detection, AuthFinders#revoke_token_family)", "reused")
def _():
    thief = new_client(private_token=state["t1"]["token"])
    expect_http_error(lambda: thief.personal_access_tokens.rotate("self"), gexc.GitlabAuthenticationError, 401,
                      body=REVOKED_BODY)
    check_revoked(state["t1c"]["id"], state["t1c"]["token"], "latest token of the family")
    for other in ("t_bob", "t2b"):
        if other in state:
            assert gl.personal_access_tokens.get(state[other]["id"]).active is True, f"unrelated token {other} was revoked"


for person in people:
    try:
        person.delete()
    except Exception as e:  # noqa: BLE001
        print(f"     could not delete user {person.username}: {redact(str(e))}")
failed = [r for r in results if r[0] == "FAIL"]
passed = [r for r in results if r[0] == "PASS"]
skipped = [r for r in results if r[0] == "SKIP"]
print(f"python-gitlab {gitlab.__version__}")
print(f"python-rotate: {len(passed)} passed, {len(failed)} failed"
      + (f", {len(skipped)} skipped" if skipped else ""))
sys.exit(1 if failed or skipped else 0)
