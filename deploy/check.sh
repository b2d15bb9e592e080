#!/usr/bin/env bash
# CI check of deploy/: everything that can be checked without a container engine or a cluster.
#   bash deploy/check.sh        (from anywhere; quiet on success, exit 1 with reasons on failure)
# - promtool: Prometheus configs, alert rules, alert unit tests, the dashboard's PromQL
# - every YAML / JSON / TOML under deploy/ parses; Kubernetes and compose sanity (check.py)
# - the Dockerfile builds with the same command CI runs natively: cargo build --release --locked
# - if a portcullis binary is at hand ($PORTCULLIS_BIN, $CARGO_TARGET_DIR/release or
#   target/release): `portcullis check` on the compose config and the ConfigMap's config
# Installs promtool (Debian package prometheus) and PyYAML when they are missing.
set -euo pipefail

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

fail() { printf 'deploy/check.sh: FAILED: %s\n' "$*" >&2; exit 1; }
# quiet CMD...: run, show the output only if it fails
quiet() {
    if ! "$@" >"$TMP/out" 2>&1; then
        cat "$TMP/out" >&2
        fail "$*"
    fi
}

apt_install() {
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 1
    if [[ ! -f "$TMP/apt-updated" ]]; then
        apt-get update -qq >/dev/null 2>&1 || return 1
        touch "$TMP/apt-updated"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

# ---- tools ----------------------------------------------------------------------------------
if ! command -v promtool >/dev/null; then
    apt_install prometheus || fail "promtool is missing and 'apt-get install prometheus' failed"
    command -v promtool >/dev/null || fail "promtool still missing after installing prometheus"
fi

PY=""
for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import yaml, sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        PY="$cand"; break
    fi
done
if [[ -z "$PY" ]]; then
    if command -v python3 >/dev/null && python3 -m pip install -q pyyaml >/dev/null 2>&1 &&
        python3 -c 'import yaml, sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        PY=python3
    elif apt_install python3 python3-yaml && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
        PY=/usr/bin/python3
    else
        fail "need Python >= 3.11 with PyYAML (pip install pyyaml)"
    fi
fi

# ---- Dockerfile -----------------------------------------------------------------------------
grep -Eq '^[[:space:]]*(RUN .*)?cargo build --release --locked -p portcullis' "$DEPLOY/Dockerfile" ||
    fail "deploy/Dockerfile must build with 'cargo build --release --locked -p portcullis' (what CI runs)"
grep -q '^USER ' "$DEPLOY/Dockerfile" || fail "deploy/Dockerfile: no USER (must run as non-root)"
grep -q '^STOPSIGNAL SIGTERM' "$DEPLOY/Dockerfile" || fail "deploy/Dockerfile: no STOPSIGNAL SIGTERM"

# ---- files parse, Kubernetes and compose sanity, dashboard PromQL as rules -----------------
"$PY" "$DEPLOY/check.py" "$DEPLOY" "$TMP/dashboard-rules.yml" || fail "static checks above (deploy/check.py)"

# ---- Prometheus -----------------------------------------------------------------------------
quiet promtool check config "$DEPLOY/prometheus/prometheus.yml"
quiet promtool check rules "$DEPLOY/prometheus/alerts.yml"
quiet promtool test rules "$DEPLOY/prometheus/alerts.test.yml"
quiet promtool check rules "$TMP/dashboard-rules.yml"

# The Kubernetes scrape config: Debian's promtool is built without Kubernetes service
# discovery, so if it refuses kubernetes_sd_configs, check the rest (relabelling, rules)
# with the discovery swapped for an equivalent static target.
if ! promtool check config "$DEPLOY/prometheus/prometheus-kubernetes.yml" >"$TMP/out" 2>&1; then
    if grep -q 'field kubernetes_sd_configs not found' "$TMP/out"; then
        mkdir -p "$TMP/k8s"
        cp "$DEPLOY/prometheus/alerts.yml" "$TMP/k8s/alerts.yml"
        "$PY" - "$DEPLOY/prometheus/prometheus-kubernetes.yml" "$TMP/k8s/prometheus.yml" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for job in cfg["scrape_configs"]:
    if job.pop("kubernetes_sd_configs", None) is not None:
        job["static_configs"] = [{"targets": ["10.0.0.1:9900"]}]
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
EOF
        quiet promtool check config "$TMP/k8s/prometheus.yml"
    else
        cat "$TMP/out" >&2
        fail "promtool check config deploy/prometheus/prometheus-kubernetes.yml"
    fi
fi

# ---- the gateway's own validation, when a binary is at hand ---------------------------------
REPO="$(cd "$DEPLOY/.." && pwd)"
BIN=""
for cand in "${PORTCULLIS_BIN:-}" "${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/release/portcullis}" \
    "$REPO/target/release/portcullis"; do
    if [[ -n "$cand" && -x "$cand" ]]; then BIN="$cand"; break; fi
done
if [[ -n "$BIN" ]]; then
    "$PY" - "$DEPLOY/kubernetes/configmap.yaml" "$TMP/k8s-portcullis.toml" <<'EOF'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "ConfigMap" and "portcullis.toml" in doc.get("data", {}):
        open(sys.argv[2], "w").write(doc["data"]["portcullis.toml"])
EOF
    for cfg in "$DEPLOY/compose/portcullis.toml" "$TMP/k8s-portcullis.toml"; do
        PORTCULLIS_ADMIN_TOKEN=check-only quiet "$BIN" check --config "$cfg"
    done
fi
