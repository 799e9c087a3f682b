#!/usr/bin/env python3
"""python-gitlab against gitlab-license-server: the application settings API.

`gl.settings.get()`, attributes changed on the object and `.save()`, read back through a new
`get()`; `gl.settings.update()` for what `.save()` cannot send (an unchanged value, an unknown
key, nothing at all, a value of the wrong type); GitLab's 400 model error raised as
`GitlabUpdateError`; one `application_setting_updated` audit event per changed setting and none
for a PUT that changes nothing; 403/401 for a non-admin and for no token. Sets GitLab's
defaults again at the end (also when a check failed).

Environment:
  GITLAB_URL     base URL of the server (no /api/v4)
  GITLAB_TOKEN   an admin personal access token (never printed)

The instance must have GitLab's defaults for these settings when it starts (run.sh starts a
fresh server; every client that changes them puts the defaults back). Prints one line per check
and exits 1 if any failed or was skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import traceback

import gitlab
import gitlab.exceptions as gexc

URL = os.environ["GITLAB_URL"].rstrip("/")
TOKEN = os.environ["GITLAB_TOKEN"]
TIMEOUT = 30
IN_30_DAYS = (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=30)).isoformat()

# GitLab's defaults for the keys this server acts on (application_setting_implementation.rb,
# ee/app/models/ee/application_setting.rb), in the order this server's entity shows them.
DEFAULTS = {
    "require_admin_approval_after_user_signup": True,
    "deactivate_dormant_users": False,
    "deactivate_dormant_users_period": 90,
    "personal_access_token_prefix": "glpat-",
    "require_personal_access_token_expiry": True,
    "max_personal_access_token_lifetime": None,
    "throttle_authenticated_api_enabled": False,
    "throttle_authenticated_api_requests_per_period": 7200,
    "throttle_authenticated_api_period_in_seconds": 3600,
    "throttle_unauthenticated_api_enabled": False,
    "throttle_unauthenticated_api_requests_per_period": 3600,
    "throttle_unauthenticated_api_period_in_seconds": 3600,
}

# What the checks set through the object and .save(). Large throttle numbers: a server that
# enforces the throttles must not slow the rest of the run down.
CHANGES = {
    "require_admin_approval_after_user_signup": False,
    "deactivate_dormant_users": True,
    "deactivate_dormant_users_period": 120,
    "personal_access_token_prefix": "compat-",
    "require_personal_access_token_expiry": False,
    "max_personal_access_token_lifetime": 200,
    "throttle_authenticated_api_enabled": True,
    "throttle_authenticated_api_requests_per_period": 100000,
    "throttle_authenticated_api_period_in_seconds": 60,
    "throttle_unauthenticated_api_enabled": True,
    "throttle_unauthenticated_api_requests_per_period": 50000,
    "throttle_unauthenticated_api_period_in_seconds": 120,
}

DORMANT_30 = ("{\"message\":{\"deactivate_dormant_users_period\":"
              "[\"'30' days of inactivity must be greater than or equal to 90\"]}}")

results: list[tuple[str, str, str]] = []  # (status, name, detail)
state: dict = {}


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


def new_client(**kw) -> gitlab.Gitlab:
    return gitlab.Gitlab(URL, timeout=TIMEOUT, retry_transient_errors=False, **kw)


def expect_http_error(fn, exc_type, code: int, message=None, body=None, raw: str | None = None):
    try:
        fn()
    except exc_type as e:
        assert e.response_code == code, f"response_code {e.response_code} != {code} (message {e.error_message!r})"
        if message is not None:
            assert e.error_message == message, f"error_message {e.error_message!r} != {message!r}"
        if body is not None:
            got = json.loads(e.response_body)
            assert got == body, f"body {got!r} != {body!r}"
        if raw is not None:
            text = e.response_body.decode() if isinstance(e.response_body, bytes) else str(e.response_body)
            assert text == raw, f"body {text!r}, GitLab sends {raw!r}"
        return e
    raise AssertionError(f"expected {exc_type.__name__} {code}, but the call succeeded")


def ours(attrs: dict) -> dict:
    """The keys this server acts on, from a settings object's attributes."""
    return {k: attrs.get(k, "<missing>") for k in DEFAULTS}


def setting_events() -> list[dict]:
    events = gl.http_list("/audit_events", get_all=True, per_page=100)
    assert isinstance(events, list), f"/audit_events gave {events!r}"
    return [e for e in events if e.get("event_name") == "application_setting_updated"]


def messages(events: list[dict]) -> list[str]:
    return sorted(str((e.get("details") or {}).get("custom_message")) for e in events)


gl = new_client(private_token=TOKEN)
people: list = []


@check("gl.settings.get(): GitLab's entity with GitLab's defaults")
def _():
    settings = gl.settings.get()
    attrs = settings.attributes
    assert type(attrs.get("id")) is int, f"id {attrs.get('id')!r}"
    got = ours(attrs)
    assert got == DEFAULTS, f"{got!r} != GitLab's defaults {DEFAULTS!r}"
    for key, value in got.items():
        want = type(DEFAULTS[key]) if DEFAULTS[key] is not None else type(None)
        assert type(value) is want, f"{key}: {type(value).__name__}, expected {want.__name__}"
    state["defaults"] = True


# With an Ultimate license, setting the lifetime revokes every token that never expires, the
# admin token of this run too (GitLab's lifetime policy): leave it out then.
if (gl.get_license() or {}).get("plan") == "ultimate":
    CHANGES.pop("max_personal_access_token_lifetime")
    print("     an Ultimate license is current: max_personal_access_token_lifetime left unchanged")


@check("change attributes on the object and .save(): PUT /application/settings, 200, shown",
       "defaults")
def _():
    before = setting_events()
    settings = gl.settings.get()
    for key, value in CHANGES.items():
        setattr(settings, key, value)
    settings.save()
    # python-gitlab takes the server's answer into the object.
    got = {k: settings.attributes.get(k) for k in CHANGES}
    assert got == CHANGES, f"after save() the object has {got!r}, expected {CHANGES!r}"
    state["saved"] = True
    after = setting_events()
    count = len(after) - len(before)
    new = after[:count] if count > 0 else []  # newest first
    assert count == len(CHANGES), \
        f"{count} new application_setting_updated events, expected {len(CHANGES)}: {messages(new)}"
    changes = {}
    for event in new:
        details = event.get("details") or {}
        assert event.get("entity_type") == "Gitlab::Audit::InstanceScope", f"entity_type {event.get('entity_type')!r}"
        key = details.get("change")
        changes[key] = (details.get("from"), details.get("to"))
        assert str(details.get("custom_message", "")).startswith(f"Changed {key} from "), \
            f"custom_message {details.get('custom_message')!r}"
    want = {k: (DEFAULTS[k], v) for k, v in CHANGES.items()}
    assert changes == want, f"audited changes {changes!r} != {want!r}"


@check("gl.settings.get() reads the saved values back", "saved")
def _():
    attrs = gl.settings.get().attributes
    expected = {**DEFAULTS, **CHANGES}
    assert ours(attrs) == expected, f"{ours(attrs)!r} != {expected!r}"


@check(".save() with nothing changed sends nothing; gl.settings.update() with the same value: "
       "200, no audit event", "saved")
def _():
    before = len(setting_events())
    settings = gl.settings.get()
    settings.save()
    result = gl.settings.update(new_data={
        "deactivate_dormant_users_period": CHANGES["deactivate_dormant_users_period"]})
    assert isinstance(result, dict), f"update() gave {result!r}"
    assert ours(result) == {**DEFAULTS, **CHANGES}, f"{ours(result)!r}"
    after = len(setting_events())
    assert after == before, f"{after - before} application_setting_updated events for a PUT that changed nothing"


@check("unknown keys are accepted and dropped: 200, nothing changes", "saved")
def _():
    before_events = len(setting_events())
    before = gl.settings.get().attributes
    result = gl.settings.update(new_data={"signup_enabled": False, "gravatar_enabled": True})
    assert result == before, f"update() answered {result!r}, expected the unchanged settings {before!r}"
    assert "signup_enabled" not in result, "an unknown key is shown"
    assert gl.settings.get().attributes == before, "settings changed"
    assert len(setting_events()) == before_events, "an unknown key was audited"


@check("deactivate_dormant_users_period 30 with .save(): GitlabUpdateError 400, GitLab's model "
       "message byte for byte, nothing changes", "saved")
def _():
    settings = gl.settings.get()
    settings.deactivate_dormant_users = True
    settings.deactivate_dormant_users_period = 30
    err = expect_http_error(
        settings.save, gexc.GitlabUpdateError, 400,
        message={"deactivate_dormant_users_period":
                 ["'30' days of inactivity must be greater than or equal to 90"]},
        raw=DORMANT_30)
    assert "'30' days of inactivity" in str(err), f"str(error) {str(err)!r}"
    period = gl.settings.get().deactivate_dormant_users_period
    assert period == CHANGES["deactivate_dormant_users_period"], f"period is now {period!r}"


@check("several invalid values: one 400 listing each key with GitLab's message", "saved")
def _():
    before = gl.settings.get().attributes
    expect_http_error(
        lambda: gl.settings.update(new_data={
            "personal_access_token_prefix": "no spaces!",
            "throttle_authenticated_api_period_in_seconds": 0,
            "max_personal_access_token_lifetime": 0,
        }),
        gexc.GitlabUpdateError, 400,
        body={"message": {
            "personal_access_token_prefix": [
                "can contain only letters of the Base64 alphabet (RFC4648) with the addition of '@', ':' and '.'"],
            "max_personal_access_token_lifetime": ["must be greater than 0"],
            "throttle_authenticated_api_period_in_seconds": ["must be greater than 0"],
        }})
    assert gl.settings.get().attributes == before, "settings changed"


@check("a value of the wrong type: 400 {'error': '<key> is invalid'} (Grape)")
def _():
    expect_http_error(
        lambda: gl.settings.update(new_data={"throttle_authenticated_api_enabled": "maybe"}),
        gexc.GitlabUpdateError, 400, message="throttle_authenticated_api_enabled is invalid",
        body={"error": "throttle_authenticated_api_enabled is invalid"})


@check("no key at all: 400 {'error': '... are missing, at least one parameter must be provided'}")
def _():
    e = expect_http_error(lambda: gl.settings.update(new_data={}), gexc.GitlabUpdateError, 400)
    body = json.loads(e.response_body)
    assert list(body) == ["error"], f"body {body!r}"
    text = body["error"]
    assert text.endswith(" are missing, at least one parameter must be provided"), f"error {text!r}"
    named = text[: -len(" are missing, at least one parameter must be provided")].split(", ")
    assert set(DEFAULTS) <= set(named), f"the message does not name {sorted(set(DEFAULTS) - set(named))}"


@check("non-admin token: gl.settings.get()/update() -> 403 {'message': '403 Forbidden'}; "
       "no token -> 401")
def _():
    user = gl.users.create({
        "username": "settings-compat-user", "name": "Settings Compat", "password": "a-long-enough-password",
        "email": "settings-compat-user@example.org", "skip_confirmation": True})
    people.append(user)
    made = user.personal_access_tokens.create({"name": "settings-compat", "scopes": ["api"],
                                               "expires_at": IN_30_DAYS})
    na = new_client(private_token=made.token)
    expect_http_error(na.settings.get, gexc.GitlabGetError, 403, "403 Forbidden",
                      {"message": "403 Forbidden"})
    expect_http_error(lambda: na.settings.update(new_data={"deactivate_dormant_users": True}),
                      gexc.GitlabUpdateError, 403, "403 Forbidden", {"message": "403 Forbidden"})
    anon = new_client()
    expect_http_error(anon.settings.get, gexc.GitlabAuthenticationError, 401, "401 Unauthorized",
                      {"message": "401 Unauthorized"})


@check("gl.settings.update(GitLab's defaults) puts every value back")
def _():
    result = gl.settings.update(new_data=DEFAULTS)
    assert ours(result) == DEFAULTS, f"update() answered {ours(result)!r}"
    assert ours(gl.settings.get().attributes) == DEFAULTS, "GET after the reset"
    state["restored"] = True


if __name__ == "__main__":
    try:
        if "restored" not in state:
            gl.settings.update(new_data=DEFAULTS)
    except Exception as e:  # noqa: BLE001
        results.append(("FAIL", "restore defaults", redact(f"{type(e).__name__}: {e}")))
        print(f"FAIL restore defaults: {redact(str(e))}")
    for person in people:
        try:
            person.delete()
        except Exception as e:  # noqa: BLE001
            print(f"     could not delete user {person.username}: {redact(str(e))}")
    failed = [r for r in results if r[0] == "FAIL"]
    passed = [r for r in results if r[0] == "PASS"]
    skipped = [r for r in results if r[0] == "SKIP"]
    print(f"python-gitlab {gitlab.__version__}")
    print(f"python-settings: {len(passed)} passed, {len(failed)} failed"
          + (f", {len(skipped)} skipped" if skipped else ""))
    sys.exit(1 if failed or skipped else 0)
