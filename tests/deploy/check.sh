#!/usr/bin/env bash
# deploy.check (CTest, label unit): validates everything under deploy/.
#
#   tests/deploy/check.sh /path/to/keyfence
#
#  1. promtool check rules / test rules  deploy/prometheus/keyfence-alerts{,.test}.yml
#  2. yamllint (relaxed, lines up to 140, warnings fail) on deploy/k8s, deploy/prometheus,
#     deploy/docker YAML
#  3. the Grafana dashboard: valid JSON, unique panel ids, datasource variable, and every
#     PromQL query parses (checked by promtool as recording rules)
#  4. the Kubernetes manifests: cross-references (volumes, ConfigMaps, probe ports, admin
#     port vs admin.bind, selectors, no subPath on the config mount, grace periods), and
#     `keyfence --check` on every keyfence config embedded in a ConfigMap, plus the image's
#     default config and the systemd/Docker config paths
#  5. a live keyfence: /healthz via `keyfence ctl health` (the image's health check),
#     `ctl ready` failing (/readyz 503) without a
#     backend, /metrics passes `promtool check metrics` and has every keyfence_* metric
#     the alerts and the dashboard use, SIGTERM exits 0
#
# Only a missing promtool or yamllint skips (its checks, with a message); everything else
# (python3 with the yaml module, the keyfence binary) must be there.
set -uo pipefail

KF=${1:-}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3
DEPLOY=$ROOT/deploy
passed=0
failed=0
skipped=0
TMP=$(mktemp -d)
KF_PID=""
cleanup() {
  if [ -n "$KF_PID" ] && kill -0 "$KF_PID" 2>/dev/null; then kill -KILL "$KF_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

ok()   { passed=$((passed + 1)); echo "ok      $1"; }
bad()  { failed=$((failed + 1)); echo "FAIL    $1"; }
skip() { skipped=$((skipped + 1)); echo "skip    $1"; }

# run NAME CMD...: runs CMD, shows its output only when it fails.
run() {
  local name=$1; shift
  if "$@" >"$TMP/out" 2>&1; then
    ok "$name"
  else
    bad "$name"
    sed 's/^/        /' "$TMP/out"
  fi
}

if [ -z "$KF" ] || [ ! -x "$KF" ]; then
  echo "usage: $0 KEYFENCE_BINARY   (got '${KF}': not an executable)"
  exit 1
fi
if [ ! -x "$PY" ] || ! "$PY" -c 'import yaml' 2>/dev/null; then
  echo "FAIL    $PY with the yaml module is required (Debian: apt-get install -y python3-yaml)"
  exit 1
fi

# PROMTOOL= / YAMLLINT= (set but empty) in the environment simulate a missing tool.
PROMTOOL=${PROMTOOL-$(command -v promtool || true)}
YAMLLINT=${YAMLLINT-$(command -v yamllint || true)}
K8S_FILES=("$DEPLOY"/k8s/*.yaml)
ALERTS=$DEPLOY/prometheus/keyfence-alerts.yml
ALERT_TESTS=$DEPLOY/prometheus/keyfence-alerts.test.yml
DASHBOARD=$DEPLOY/grafana/keyfence-dashboard.json

echo "== deploy.check: $ROOT/deploy with $KF"

# ---- 1. Prometheus rules ---------------------------------------------------------------
if [ -n "$PROMTOOL" ]; then
  run "promtool check rules $(basename "$ALERTS")" "$PROMTOOL" check rules "$ALERTS"
  run "promtool test rules $(basename "$ALERT_TESTS")" "$PROMTOOL" test rules "$ALERT_TESTS"
else
  skip "promtool rule checks: promtool not installed (Debian package 'prometheus')"
fi

# ---- 2. yamllint -----------------------------------------------------------------------
if [ -n "$YAMLLINT" ]; then
  run "yamllint k8s, prometheus, docker YAML" "$YAMLLINT" --strict \
    -d '{extends: relaxed, rules: {line-length: {max: 140}}}' \
    "${K8S_FILES[@]}" "$ALERTS" "$ALERT_TESTS" "$DEPLOY/docker/keyfence.yaml"
else
  skip "yamllint: not installed (Debian package 'yamllint')"
fi

# ---- 3. Grafana dashboard --------------------------------------------------------------
run "dashboard is valid JSON" "$PY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$DASHBOARD"
run "dashboard structure" "$PY" - "$DASHBOARD" "$TMP/dashboard-rules.yml" <<'PY'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
errors = []
for key in ("title", "uid", "panels", "templating", "schemaVersion"):
    if key not in d:
        errors.append(f"missing top-level {key!r}")
names = [v.get("name") for v in d.get("templating", {}).get("list", [])]
if "datasource" not in names:
    errors.append("no 'datasource' template variable")
ids, exprs = set(), []
def walk(panels):
    for p in panels:
        if p.get("id") in ids:
            errors.append(f"duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        if "gridPos" not in p:
            errors.append(f"panel {p.get('title')!r} has no gridPos")
        if p.get("type") != "row":
            ds = p.get("datasource", {})
            if ds.get("uid") != "${datasource}":
                errors.append(f"panel {p.get('title')!r} does not use ${{datasource}}")
            if not p.get("targets"):
                errors.append(f"panel {p.get('title')!r} has no query")
        for t in p.get("targets", []):
            exprs.append((p.get("title"), t["expr"]))
        walk(p.get("panels", []))
walk(d.get("panels", []))
for a in d.get("annotations", {}).get("list", []):
    if "expr" in a:
        exprs.append(("annotation " + a["name"], a["expr"]))
for v in d.get("templating", {}).get("list", []):
    if v.get("type") == "query":
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        if not q.startswith("label_values("):
            exprs.append(("variable " + v["name"], q))
# Grafana's variables, made concrete so that promtool can parse each query.
def concrete(e):
    for a, b in (("$__rate_interval", "5m"), ("$__range", "1h"), ("$__interval", "1m"),
                 ("$job", ".*"), ("$instance", ".*"), ("$tenant", ".*")):
        e = e.replace(a, b)
    return e
rules = [{"record": f"dashboard:query_{i}", "expr": concrete(e)} for i, (_, e) in enumerate(exprs)]
for title, e in exprs:
    if "$" in concrete(e):
        errors.append(f"{title!r}: unknown variable in {e!r}")
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
for e in errors:
    print(e)
print(f"{len(ids)} panels, {len(exprs)} queries")
sys.exit(1 if errors else 0)
PY
if [ -n "$PROMTOOL" ] && [ -f "$TMP/dashboard-rules.yml" ]; then
  run "dashboard queries parse (promtool)" "$PROMTOOL" check rules "$TMP/dashboard-rules.yml"
else
  skip "dashboard queries parse: promtool not installed"
fi

# ---- 4. Kubernetes manifests and embedded configs ---------------------------------------
mkdir -p "$TMP/configs"
run "k8s manifests cross-references" "$PY" - "$TMP/configs" "${K8S_FILES[@]}" <<'PY'
import os, re, sys, yaml
outdir, files = sys.argv[1], sys.argv[2:]
errors, n_configs = [], 0
def err(f, msg): errors.append(f"{os.path.basename(f)}: {msg}")
def port_of(bind): return int(bind.rsplit(":", 1)[1])
def matches(sel, labels): return all(labels.get(k) == v for k, v in (sel or {}).items())
for f in files:
    docs = [d for d in yaml.safe_load_all(open(f)) if d]
    for d in docs:
        for k in ("apiVersion", "kind", "metadata"):
            if k not in d: err(f, f"a document has no {k}")
    cms = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    deps = [d for d in docs if d.get("kind") == "Deployment"]
    configs = {}  # (configmap, key) -> parsed keyfence config
    for name, cm in cms.items():
        for key, text in (cm.get("data") or {}).items():
            if not key.endswith((".yaml", ".yml")): continue
            n_configs += 1
            path = os.path.join(outdir, f"{os.path.basename(f)}--{name}--{key}")
            open(path, "w").write(text)
            configs[(name, key)] = yaml.safe_load(text)
            print(f"embedded config {os.path.basename(path)}")
    for dep in deps:
        dn = dep["metadata"]["name"]
        tpl = dep["spec"]["template"]
        labels = tpl["metadata"].get("labels", {})
        if not matches(dep["spec"]["selector"].get("matchLabels"), labels):
            err(f, f"{dn}: selector does not match the pod template labels")
        pod = tpl["spec"]
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        for v in vols.values():
            if "configMap" in v and v["configMap"]["name"] not in cms:
                err(f, f"{dn}: volume {v['name']} uses ConfigMap {v['configMap']['name']} not defined here")
        kf_seen = False
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            cname = c["name"]
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols: err(f, f"{dn}/{cname}: mounts unknown volume {m['name']}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                hg = (c.get(probe) or {}).get("httpGet")
                if hg and isinstance(hg["port"], str) and hg["port"] not in ports:
                    err(f, f"{dn}/{cname}: {probe} port {hg['port']} is not a container port")
            args = c.get("args", []) + c.get("command", [])
            if "--config" not in args: continue
            kf_seen = True
            cfg_path = args[args.index("--config") + 1]
            cfg_dir, cfg_file = os.path.split(cfg_path)
            mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"].rstrip("/") == cfg_dir), None)
            if mount is None:
                err(f, f"{dn}/{cname}: no volume mounted on {cfg_dir} (the --config directory)"); continue
            if "subPath" in mount:
                err(f, f"{dn}/{cname}: the config mount uses subPath: kubelet never updates it, hot reload breaks")
            vol = vols.get(mount["name"], {})
            cm_name = (vol.get("configMap") or {}).get("name")
            cfg = configs.get((cm_name, cfg_file))
            if cfg is None:
                err(f, f"{dn}/{cname}: ConfigMap {cm_name} has no key {cfg_file}"); continue
            admin_port = port_of(cfg["admin"]["bind"])
            if not cfg["admin"]["bind"].startswith(("0.0.0.0:", "[::]:")):
                err(f, f"{dn}/{cname}: admin.bind {cfg['admin']['bind']} is not reachable by kubelet probes")
            if ports.get("admin") != admin_port:
                err(f, f"{dn}/{cname}: container port 'admin' {ports.get('admin')} != admin.bind port {admin_port}")
            ann = tpl["metadata"].get("annotations", {})
            if ann.get("prometheus.io/port") not in (None, str(admin_port)):
                err(f, f"{dn}: prometheus.io/port {ann['prometheus.io/port']} != admin port {admin_port}")
            want = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
            for probe, path in want.items():
                hg = (c.get(probe) or {}).get("httpGet")
                if not hg or hg.get("path") != path or hg.get("port") not in ("admin", admin_port):
                    err(f, f"{dn}/{cname}: {probe} must GET {path} on the admin port")
            if "redis" in ports:
                lp = [port_of(l["bind"]) for l in cfg.get("listeners", [])]
                if ports["redis"] not in lp:
                    err(f, f"{dn}/{cname}: container port 'redis' {ports['redis']} is no listener port {lp}")
            grace_ms = cfg.get("shutdown_grace_ms", 5000)
            pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command", [])
            pre_s = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
            tgp = pod.get("terminationGracePeriodSeconds", 30)
            if tgp * 1000 <= grace_ms + pre_s * 1000:
                err(f, f"{dn}: terminationGracePeriodSeconds {tgp}s <= preStop {pre_s}s + shutdown_grace_ms {grace_ms}ms")
        if not kf_seen:
            err(f, f"{dn}: no container runs keyfence --config")
    for d in docs:
        kind, name = d.get("kind"), d["metadata"]["name"]
        if kind == "Service":
            sel = d["spec"].get("selector", {})
            tgt = [dep for dep in deps if matches(sel, dep["spec"]["template"]["metadata"].get("labels", {}))]
            if not tgt: err(f, f"Service {name}: selector matches no Deployment here")
            for p in d["spec"].get("ports", []):
                tp = p.get("targetPort")
                if isinstance(tp, str) and not any(
                        tp == cp.get("name") for dep in tgt
                        for c in dep["spec"]["template"]["spec"].get("containers", [])
                        for cp in c.get("ports", [])):
                    err(f, f"Service {name}: targetPort {tp} is no container port name")
        if kind == "PodDisruptionBudget":
            sel = d["spec"]["selector"].get("matchLabels", {})
            if not any(matches(sel, dep["spec"]["template"]["metadata"].get("labels", {})) for dep in deps):
                err(f, f"PodDisruptionBudget {name}: selector matches no Deployment here")
if n_configs == 0:
    errors.append("no keyfence config found in any ConfigMap")
for e in errors: print(e)
sys.exit(1 if errors else 0)
PY
shopt -s nullglob
configs=("$TMP"/configs/* "$DEPLOY/docker/keyfence.yaml" "$DEPLOY/examples/keyfence.yaml")
shopt -u nullglob
if [ "${#configs[@]}" -le 2 ]; then
  bad "keyfence --check: no config extracted from the k8s ConfigMaps"
fi
for cfg in "${configs[@]}"; do
  case "$cfg" in
    "$TMP"/*) label="k8s/$(basename "$cfg" | sed 's/--/ ConfigMap /; s/--/ key /')" ;;
    *) label=${cfg#"$ROOT"/} ;;
  esac
  run "keyfence --check $label" "$KF" --check --config "$cfg"
done
# The paths the systemd unit and the image use must agree with what they ship.
run "systemd unit: config path, --log-format json, HUP reload" grep -q \
  -e '^ExecStart=/usr/local/bin/keyfence --config /etc/keyfence/keyfence.yaml --log-format json$' \
  "$DEPLOY/systemd/keyfence.service"
run "Dockerfile: default config at /etc/keyfence/keyfence.yaml" grep -q \
  -e 'deploy/docker/rootfs.sh /out/keyfence.stripped deploy/docker/keyfence.yaml /rootfs' \
  "$DEPLOY/docker/Dockerfile"
run "Dockerfile: health check by keyfence ctl health" grep -q \
  -e 'CMD \["/usr/bin/keyfence", "ctl", "health"\]' "$DEPLOY/docker/Dockerfile"

# ---- 5. A live keyfence: probes, metrics, SIGTERM ---------------------------------------
read -r P_LISTEN P_ADMIN P_BACKEND < <("$PY" - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()
PY
)
cat >"$TMP/live.yaml" <<EOF
cluster_name: deploycheck
workers: 1
shutdown_grace_ms: 200
listeners:
  - bind: 127.0.0.1:$P_LISTEN
    tenant: app
admin:
  bind: 127.0.0.1:$P_ADMIN
backend:
  mode: standalone
  nodes: [127.0.0.1:$P_BACKEND]   # nothing listens here: not ready, backend errors counted
  connect_timeout_ms: 200
  request_timeout_ms: 500
limits:
  big_value_bytes: 1
tenants:
  app:
EOF
"$KF" --config "$TMP/live.yaml" --log-format json >"$TMP/live.log" 2>&1 &
KF_PID=$!
up=0
for _ in $(seq 1 50); do
  if KEYFENCE_ADMIN=http://127.0.0.1:$P_ADMIN "$KF" ctl health >/dev/null 2>&1; then
    up=1; break
  fi
  sleep 0.1
done
if [ "$up" = 1 ]; then
  ok "keyfence ctl health on a running keyfence"
  # readyz must NOT be 200 without a backend; ctl ready must say so.
  if KEYFENCE_ADMIN=http://127.0.0.1:$P_ADMIN "$KF" ctl ready >"$TMP/out" 2>&1; then
    bad "keyfence ctl ready fails without a backend"
  else
    ok "keyfence ctl ready fails without a backend ($(head -1 "$TMP/out"))"
  fi
  # Some traffic, so that the per-tenant families exist: PING (local), GET (backend down).
  "$PY" - "$P_LISTEN" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
buf = b""
try:
    while buf.count(b"\r\n") < 2:
        chunk = s.recv(4096)
        if not chunk: break
        buf += chunk
except OSError:
    pass
s.close()
PY
  # Every keyfence_* metric the alerts and the dashboard use must be exported.
  "$PY" - "$ALERTS" "$DASHBOARD" >"$TMP/wanted" <<'PY'
import re, sys
names = set()
for f in sys.argv[1:]:
    for m in re.findall(r"keyfence_[a-z_]+", open(f).read()):
        names.add(re.sub(r"_(bucket|count|sum)$", "", m))
print(" ".join(sorted(names)))
PY
  missing="?"
  for _ in $(seq 1 30); do
    "$PY" - "$P_ADMIN" >"$TMP/metrics.txt" 2>/dev/null <<'PY'
import sys, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=3).read().decode(), end="")
PY
    missing=""
    for m in $(cat "$TMP/wanted"); do
      grep -q "^# TYPE $m " "$TMP/metrics.txt" || missing="$missing $m"
    done
    [ -z "$missing" ] && break
    sleep 0.1
  done
  if [ -z "$missing" ]; then
    ok "/metrics exports every metric the alerts and dashboard use ($(wc -w <"$TMP/wanted"))"
  else
    bad "/metrics lacks metrics the alerts or dashboard use:$missing"
  fi
  if [ -n "$PROMTOOL" ]; then
    run "promtool check metrics on /metrics" sh -c "'$PROMTOOL' check metrics <'$TMP/metrics.txt'"
  else
    skip "promtool check metrics: promtool not installed"
  fi
  kill -TERM "$KF_PID"
  rc=""
  for _ in $(seq 1 100); do
    kill -0 "$KF_PID" 2>/dev/null || { wait "$KF_PID"; rc=$?; break; }
    sleep 0.1
  done
  if [ "$rc" = 0 ]; then
    ok "SIGTERM: exit 0 (systemd TimeoutStopSec, k8s grace)"
  else
    bad "SIGTERM: exit status '${rc:-still running after 10 s}'"
  fi
  KF_PID=""
else
  bad "keyfence did not answer /healthz within 5 s"
  sed 's/^/        /' "$TMP/live.log" | tail -20
fi

echo "deploy.check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
