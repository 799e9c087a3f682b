#!/usr/bin/env python3
"""gitlab-configuration-as-code (GCasC, PyPI `gitlab-configuration-as-code`) against
gitlab-license-server: its `settings:` section, applied twice.

GCasC reads a YAML file (GITLAB_CONFIG_FILE / GITLAB_CONFIG_PATH) and a client from
GITLAB_CLIENT_URL / GITLAB_CLIENT_TOKEN, calls GET /version, then for `settings:`
`gl.settings.get()`, compares each key (nested maps are joined with `_`: `throttle:
authenticated_api: enabled` is `throttle_authenticated_api_enabled`), sets the ones that differ
and `.save()`s them with one PUT /application/settings; keys the server does not show are
skipped with a warning and never sent. GITLAB_MODE=TEST only reports.

The package's `gcasc` console script is broken in 0.5.0 (its entry point names a module,
gcasc.bin.gcasc, that the wheel does not contain), so GCasC runs here as its own script and
Docker image run it: `GitlabConfigurationAsCode().configure()`.

Checks: TEST mode finds every difference and changes nothing; the first APPLY run changes every
setting in the file (GET shows them; one audit event each); the second APPLY run finds nothing
to do, sends no PUT and adds no audit event. Sets GitLab's defaults again at the end.

Environment:
  GITLAB_URL     base URL of the server (no /api/v4)
  GITLAB_TOKEN   an admin personal access token (never printed)

Prints one line per check and exits 1 if any failed or was skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import gitlab

URL = os.environ["GITLAB_URL"].rstrip("/")
TOKEN = os.environ["GITLAB_TOKEN"]
TIMEOUT = 30

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

# The `settings:` section, written as GCasC's docs show it: flat keys and nested prefixes mixed,
# and one key this server does not act on (GCasC skips a key the GET does not show).
CONFIG = """\
settings:
  require_admin_approval_after_user_signup: no
  deactivate_dormant_users: yes
  deactivate_dormant_users_period: 180
  personal_access_token_prefix: corp-
  require_personal_access_token_expiry: false
{lifetime}  throttle:
    authenticated_api:
      enabled: true
      requests_per_period: 100000
      period_in_seconds: 60
    unauthenticated_api:
      enabled: true
      requests_per_period: 50000
      period_in_seconds: 120
  signup_enabled: false
"""
LIFETIME = "  max_personal_access_token_lifetime: 200\n"

EXPECTED = {
    "require_admin_approval_after_user_signup": False,
    "deactivate_dormant_users": True,
    "deactivate_dormant_users_period": 180,
    "personal_access_token_prefix": "corp-",
    "require_personal_access_token_expiry": False,
    "max_personal_access_token_lifetime": 200,
    "throttle_authenticated_api_enabled": True,
    "throttle_authenticated_api_requests_per_period": 100000,
    "throttle_authenticated_api_period_in_seconds": 60,
    "throttle_unauthenticated_api_enabled": True,
    "throttle_unauthenticated_api_requests_per_period": 50000,
    "throttle_unauthenticated_api_period_in_seconds": 120,
}

# GCasC's own entry point (gcasc/bin/gcasc, which its Dockerfile runs).
GCASC = "from gcasc import GitlabConfigurationAsCode\nGitlabConfigurationAsCode().configure()\n"

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
            results.append(("FAIL", name, detail))
            print(f"FAIL {name}: {detail}", flush=True)
        else:
            results.append(("PASS", name, ""))
            print(f"PASS {name}", flush=True)
        return fn

    return run


gl = gitlab.Gitlab(URL, private_token=TOKEN, timeout=TIMEOUT, retry_transient_errors=False)
work = Path(tempfile.mkdtemp(prefix="gls-gcasc."))


def ours() -> dict:
    attrs = gl.settings.get().attributes
    return {k: attrs.get(k, "<missing>") for k in DEFAULTS}


def setting_events() -> int:
    events = gl.http_list("/audit_events", get_all=True, per_page=100)
    return sum(1 for e in events if e.get("event_name") == "application_setting_updated")


def gcasc(mode: str) -> str:
    """Runs GCasC once in `mode`; returns its log. HOME is a fresh directory so that no
    ~/.python-gitlab.cfg is read; the client comes from the environment variables only."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "GITLAB_CLIENT_URL": URL,
        "GITLAB_CLIENT_TOKEN": TOKEN,
        "GITLAB_CONFIG_FILE": str(work / "gitlab.yml"),
        "GITLAB_MODE": mode,
        "LOGGING_LEVEL": "INFO",
    }
    done = subprocess.run([sys.executable, "-c", GCASC], cwd=work, env=env, capture_output=True,
                          text=True, timeout=120)
    log = redact(done.stdout + done.stderr)
    print("\n".join(f"     | {line}" for line in log.splitlines()
                    if "does not exist. Provide valid path" not in line), flush=True)
    assert done.returncode == 0, f"GCasC ({mode}) exited with {done.returncode}"
    return log


@check("the instance starts with GitLab's defaults")
def _():
    got = ours()
    assert got == DEFAULTS, f"{got!r} != {DEFAULTS!r}"
    # With an Ultimate license, setting the lifetime revokes every token that never expires,
    # the admin token of this run too (GitLab's lifetime policy); leave it out then.
    lifetime = LIFETIME
    if (gl.get_license() or {}).get("plan") == "ultimate":
        lifetime = ""
        EXPECTED["max_personal_access_token_lifetime"] = None
        print("     an Ultimate license is current: max_personal_access_token_lifetime left out")
    (work / "gitlab.yml").write_text(CONFIG.format(lifetime=lifetime), encoding="utf-8")
    state["defaults"] = True


@check("GITLAB_MODE=TEST: GCasC reports every difference and changes nothing", "defaults")
def _():
    before = setting_events()
    log = gcasc("TEST")
    changed = sum(1 for k in EXPECTED if EXPECTED[k] != DEFAULTS[k])
    assert "Updated throttle_authenticated_api_enabled: False => True" in log, "no diff for a nested key"
    assert "Invalid configuration option: signup_enabled" in log, "the unknown key was not reported"
    assert "No changes will be applied due to test mode enabled" in log, "TEST mode did not hold back"
    assert ours() == DEFAULTS, f"TEST mode changed settings: {ours()!r}"
    assert setting_events() == before, "TEST mode was audited"
    assert changed > 0
    state["tested"] = True


@check("first APPLY run: every setting in the file is applied (GET), one audit event each", "tested")
def _():
    before = setting_events()
    log = gcasc("APPLY")
    assert "Applying changes..." in log, "GCasC applied nothing"
    got = ours()
    assert got == EXPECTED, f"after GCasC: {got!r} != {EXPECTED!r}"
    changed = sum(1 for k in EXPECTED if EXPECTED[k] != DEFAULTS[k])
    added = setting_events() - before
    assert added == changed, f"{added} application_setting_updated events, expected {changed}"
    state["applied"] = True


@check("second APPLY run: nothing to do, no PUT, settings and audit log unchanged", "applied")
def _():
    before = setting_events()
    log = gcasc("APPLY")
    assert "Found 0 changed values" in log and "Nothing to do" in log, "GCasC found differences again"
    assert "Applying changes..." not in log, "GCasC sent a PUT"
    assert ours() == EXPECTED, f"settings moved: {ours()!r}"
    assert setting_events() == before, "the second run was audited"


@check("gl.settings.update(GitLab's defaults) puts every value back")
def _():
    result = gl.settings.update(new_data=DEFAULTS)
    assert {k: result.get(k) for k in DEFAULTS} == DEFAULTS, f"update() answered {result!r}"
    assert ours() == DEFAULTS, "GET after the reset"
    state["restored"] = True


if "restored" not in state:
    try:
        gl.settings.update(new_data=DEFAULTS)
    except Exception as e:  # noqa: BLE001
        results.append(("FAIL", "restore defaults", redact(f"{type(e).__name__}: {e}")))
        print(f"FAIL restore defaults: {redact(str(e))}")
shutil.rmtree(work, ignore_errors=True)
failed = [r for r in results if r[0] == "FAIL"]
passed = [r for r in results if r[0] == "PASS"]
skipped = [r for r in results if r[0] == "SKIP"]
try:
    from importlib.metadata import version
    print(f"gitlab-configuration-as-code {version('gitlab-configuration-as-code')}, python-gitlab {gitlab.__version__}")
except Exception:  # noqa: BLE001
    pass
print(f"python-gcasc: {len(passed)} passed, {len(failed)} failed"
      + (f", {len(skipped)} skipped" if skipped else ""))
sys.exit(1 if failed or skipped else 0)
