#!/usr/bin/env bash
# Renders the Kubernetes manifests under deploy/kubernetes with kustomize (kubectl's) and
# validates every object against the Kubernetes API schemas, strictly (an unknown or
# misplaced field fails), with kubernetes-validate from PyPI — its schemas ship in the
# package, so no network beyond PyPI is needed. Also checks the hardening the docs promise.
#
#   scripts/validate-kubernetes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.30.0}"
VENV="${TMPDIR:-/tmp}/gls-k8s-venv"
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==1.37.0"
fi
command -v kubectl >/dev/null || { echo "kubectl is needed (for kubectl kustomize)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Each deployment as written, and each with the optional ServiceMonitor component (kustomize
# takes relative paths only, hence the copy).
cp -r deploy/kubernetes "$WORK/tree"
for overlay in sqlite postgres; do
  kubectl kustomize "$WORK/tree/$overlay" >"$WORK/$overlay.yaml"
  mkdir -p "$WORK/tree/$overlay-monitored"
  cat >"$WORK/tree/$overlay-monitored/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../$overlay
components:
  - ../components/servicemonitor
YAML
  kubectl kustomize "$WORK/tree/$overlay-monitored" >"$WORK/$overlay-monitored.yaml"
done

# kubernetes-validate's interpreter has PyYAML.
"$VENV/bin/python" - "$WORK" "$VENV/bin/kubernetes-validate" "$KUBERNETES_VERSION" <<'PY'
import json, pathlib, subprocess, sys

import yaml

work, validator, version = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
# The ServiceMonitor is a Prometheus Operator custom resource, outside the Kubernetes
# schemas: it is checked by hand below.
CUSTOM = {"ServiceMonitor"}
failures = []

for rendered in sorted(work.glob("*.yaml")):
    name = rendered.stem
    objects = [document for document in yaml.safe_load_all(rendered.read_text()) if document]
    kinds = sorted(obj["kind"] for obj in objects)
    print(f"{name}: {', '.join(kinds)}")
    for index, obj in enumerate(objects):
        if obj["kind"] in CUSTOM:
            spec = obj.get("spec", {})
            ports = [endpoint.get("port") for endpoint in spec.get("endpoints", [])]
            if obj.get("apiVersion") != "monitoring.coreos.com/v1" or ports != ["metrics"]:
                failures.append(f"{name}: unexpected ServiceMonitor {obj}")
            continue
        single = work / f"{name}-{index}.json"
        single.write_text(json.dumps(obj))
        result = subprocess.run(
            [validator, "--strict", "--quiet", "-k", version, str(single)],
            capture_output=True, text=True)
        if result.returncode != 0:
            failures.append(f"{name}: {obj['kind']} {obj['metadata']['name']}:\n{result.stdout}{result.stderr}")
        single.unlink()

    deployment = next(obj for obj in objects if obj["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    checks = {
        "no service-account token": pod.get("automountServiceAccountToken") is False,
        "non-root": pod["securityContext"].get("runAsNonRoot") is True
            and pod["securityContext"].get("runAsUser") == 10001,
        "seccomp RuntimeDefault": pod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault",
        "read-only root filesystem": container["securityContext"].get("readOnlyRootFilesystem") is True,
        "no privilege escalation": container["securityContext"].get("allowPrivilegeEscalation") is False,
        "all capabilities dropped": container["securityContext"].get("capabilities", {}).get("drop") == ["ALL"],
        "startup, liveness and readiness probes": all(
            probe in container for probe in ("startupProbe", "livenessProbe", "readinessProbe")),
        "a PodDisruptionBudget selecting the pods": any(
            obj["kind"] == "PodDisruptionBudget"
            and obj["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
            for obj in objects),
    }
    if name.startswith("sqlite"):
        checks["SQLite: one replica, Recreate, data on the claim"] = (
            deployment["spec"]["replicas"] == 1
            and deployment["spec"]["strategy"]["type"] == "Recreate"
            and any(volume.get("persistentVolumeClaim") for volume in pod["volumes"]))
    else:
        env = {entry["name"]: entry for entry in container["env"]}
        secret_volume = next((volume for volume in pod["volumes"] if "secret" in volume), None)
        checks["PostgreSQL: replicas, key and token from the Secret"] = (
            deployment["spec"]["replicas"] >= 2
            and "secretKeyRef" in env["DATABASE_URL"].get("valueFrom", {})
            and env["LICENSE_PUBLIC_KEY_FILE"]["value"].startswith("/run/secrets/")
            and env["INITIAL_ROOT_TOKEN_FILE"]["value"].startswith("/run/secrets/")
            and secret_volume is not None
            and secret_volume["secret"]["defaultMode"] == 0o440)
    for check, held in checks.items():
        if not held:
            failures.append(f"{name}: {check}")

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"every object valid against Kubernetes {version} (strict), hardening as documented")
PY
