#!/usr/bin/env python3
"""Static checks of deploy/ that need no container engine or cluster (called by check.sh).

Checks: every YAML (multi-document), JSON and TOML file parses; Kubernetes manifests have the
basic fields, the kustomization lists files that exist, the Deployment's probes, grace period
and security settings hold; compose bind mounts inside deploy/ exist; the ConfigMap's embedded
TOML and JSON parse; metric names used by alerts and the dashboard are ones the gateway
exports; the Dockerfile copies every file the Rust sources embed; the dashboard's PromQL is
written out as recording rules for promtool to check.

Usage: check.py DEPLOY_DIR OUT_RULES_FILE
Prints nothing on success; prints every problem and exits 1 otherwise.
"""
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

import yaml

# The metric contract with the gateway (product brief section 7 and the lead's list).
COUNTERS = {
    "portcullis_requests_total", "portcullis_upstream_errors_total",
    "portcullis_tls_handshake_failures_total", "portcullis_snapshot_build_failures_total",
    "portcullis_token_cache_requests_total", "portcullis_policy_results_total",
    "portcullis_config_reloads_total",
}
GAUGES = {
    "portcullis_open_connections", "portcullis_snapshot_version",
    "portcullis_snapshot_age_seconds", "portcullis_devices", "portcullis_ready",
}
HISTOGRAMS = {
    "portcullis_request_duration_seconds", "portcullis_upstream_duration_seconds",
    "portcullis_snapshot_build_duration_seconds", "portcullis_signal_to_enforcement_seconds",
}
KNOWN = COUNTERS | GAUGES | HISTOGRAMS | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
DEFAULT_DRAIN_DEADLINE_S = 30  # the gateway's default limits.shutdown_grace

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


def load_all(deploy: Path):
    docs = {}
    for path in sorted(deploy.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(deploy.parent)
        try:
            if path.suffix in (".yml", ".yaml"):
                docs[path] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            elif path.suffix == ".json":
                docs[path] = [json.loads(path.read_text())]
            elif path.suffix == ".toml":
                docs[path] = [tomllib.loads(path.read_text())]
        except Exception as e:  # noqa: BLE001 - report any parse error with its file
            problem(f"{rel}: does not parse: {e}")
    return docs


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bportcullis_[a-z0-9_]+\b", text))


def check_metric_names(where: str, text: str) -> None:
    for name in sorted(metric_names(text) - KNOWN):
        problem(f"{where}: unknown metric {name} (not exported by the gateway; see KNOWN in deploy/check.py)")


def duration_s(text: str) -> float:
    """The gateway's duration syntax: `<digits><ms|s|m|h|d>`."""
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h|d)\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a duration such as \"30s\"")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def drain_deadline(docs_in_dir) -> float:
    """limits.shutdown_grace from the ConfigMap's portcullis.toml, else the default."""
    for doc in docs_in_dir:
        if doc.get("kind") == "ConfigMap" and "portcullis.toml" in (doc.get("data") or {}):
            try:
                grace = tomllib.loads(doc["data"]["portcullis.toml"]).get("limits", {}).get("shutdown_grace")
                return duration_s(grace) if grace else DEFAULT_DRAIN_DEADLINE_S
            except Exception as e:  # noqa: BLE001 - reported by check_configmap too
                problem(f"ConfigMap portcullis.toml limits.shutdown_grace: {e}")
    return DEFAULT_DRAIN_DEADLINE_S


def check_kubernetes(deploy: Path, docs) -> None:
    kdir = deploy / "kubernetes"
    kust = docs.get(kdir / "kustomization.yaml")
    if not kust:
        problem("deploy/kubernetes/kustomization.yaml: missing")
        return
    listed = kust[0].get("resources", [])
    drain = drain_deadline(d for p in sorted(kdir.glob("*.yaml")) for d in docs.get(p, []))
    for res in listed:
        if not (kdir / res).is_file():
            problem(f"deploy/kubernetes/kustomization.yaml: resource {res} does not exist")
    for path in sorted(kdir.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        if path.name not in listed:
            problem(f"deploy/kubernetes/{path.name}: not listed in kustomization.yaml resources")
        for i, doc in enumerate(docs.get(path, [])):
            for field in ("apiVersion", "kind"):
                if field not in doc:
                    problem(f"deploy/kubernetes/{path.name} document {i}: no {field}")
            if not (doc.get("metadata") or {}).get("name"):
                problem(f"deploy/kubernetes/{path.name} document {i}: no metadata.name")
            kind = doc.get("kind")
            if kind == "Deployment":
                check_deployment(path.name, doc, drain)
            elif kind == "ConfigMap":
                check_configmap(path.name, doc)


def check_deployment(name: str, doc, drain: float) -> None:
    spec = doc["spec"]["template"]["spec"]
    where = f"deploy/kubernetes/{name}"
    grace = spec.get("terminationGracePeriodSeconds", 30)
    pod_sc = spec.get("securityContext", {})
    if not pod_sc.get("runAsNonRoot"):
        problem(f"{where}: pod securityContext.runAsNonRoot is not true")
    for c in spec["containers"]:
        cw = f"{where} container {c['name']}"
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem"):
            problem(f"{cw}: securityContext.readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation", True):
            problem(f"{cw}: securityContext.allowPrivilegeEscalation is not false")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (c.get(probe) or {}).get("httpGet") or {}
            port = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != path or port != 9900:
                problem(f"{cw}: {probe} must GET {path} on the admin port 9900 (has {get})")
        if "resources" not in c or "requests" not in c["resources"]:
            problem(f"{cw}: no resources.requests (the HPA needs a CPU request)")
        pre = ((c.get("lifecycle") or {}).get("preStop") or {})
        pre_s = (pre.get("sleep") or {}).get("seconds", 0)
        if not pre:
            problem(f"{cw}: no preStop hook")
        if grace <= drain + pre_s:
            problem(f"{where}: terminationGracePeriodSeconds {grace} must exceed the drain "
                    f"deadline (limits.shutdown_grace, {drain:g} s) + preStop {pre_s} s")


def check_configmap(name: str, doc) -> None:
    for key, value in (doc.get("data") or {}).items():
        where = f"deploy/kubernetes/{name} data.{key}"
        try:
            if key.endswith(".toml"):
                tomllib.loads(value)
            elif key.endswith(".json"):
                json.loads(value)
        except Exception as e:  # noqa: BLE001
            problem(f"{where}: does not parse: {e}")


def check_compose(deploy: Path, docs) -> None:
    compose = docs.get(deploy / "docker-compose.yml")
    if not compose:
        problem("deploy/docker-compose.yml: missing")
        return
    services = compose[0].get("services", {})
    for svc in ("gateway", "sharepoint", "exchange", "prometheus", "grafana"):
        if svc not in services:
            problem(f"deploy/docker-compose.yml: no service {svc}")
    for svc, body in services.items():
        for vol in body.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("./") and not (deploy / src).exists():
                problem(f"deploy/docker-compose.yml service {svc}: mount source {src} does not exist")


def dashboard_rules(deploy: Path, docs, out: Path) -> None:
    """Write every dashboard expression as a recording rule so promtool parses the PromQL."""
    rules = []
    for path in sorted((deploy / "grafana" / "dashboards").glob("*.json")):
        for doc in docs.get(path, []):
            check_metric_names(str(path.relative_to(deploy.parent)), json.dumps(doc))
            for panel in doc.get("panels", []):
                for t in panel.get("targets", []):
                    expr = t.get("expr", "")
                    for var, val in (("$__rate_interval", "5m"), ("$instance", ".*"), ("$app", ".*")):
                        expr = expr.replace(var, val)
                    rules.append({"record": f"dashboard:panel{panel.get('id')}:{t.get('refId')}",
                                  "expr": expr})
            if not doc.get("panels"):
                problem(f"{path.relative_to(deploy.parent)}: no panels")
    out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))


def check_docker_context(deploy: Path) -> None:
    """Every file the Rust sources embed (include_str!/include_bytes!) must be COPY'd."""
    repo = deploy.parent
    copied = set()
    for line in (deploy / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            copied.update(p.rstrip("/") for p in parts[1:-1])
    for crate in ("gateway", "bench"):
        for src in sorted((repo / crate).rglob("*.rs")):
            for rel in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', src.read_text()):
                target = (src.parent / rel).resolve()
                try:
                    top = target.relative_to(repo.resolve()).parts[0]
                except ValueError:
                    problem(f"{src.relative_to(repo)}: embeds {rel}, outside the repository")
                    continue
                if top not in copied:
                    problem(f"deploy/Dockerfile: {src.relative_to(repo)} embeds {rel} but the "
                            f"build stage does not COPY {top}/")


def main(deploy: Path, out: Path) -> int:
    docs = load_all(deploy)
    check_kubernetes(deploy, docs)
    check_compose(deploy, docs)
    check_docker_context(deploy)
    alerts = deploy / "prometheus" / "alerts.yml"
    check_metric_names("deploy/prometheus/alerts.yml", alerts.read_text())
    dashboard_rules(deploy, docs, out)
    for p in problems:
        print(f"deploy/check: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]).resolve(), Path(sys.argv[2])))
