"""keyfence inject: the sidecar injection webhook over real HTTPS.

Starts `$KEYFENCE_BIN inject` on a free loopback port with certificates from certs.py,
POSTs the AdmissionReview fixtures of tests/unit/inject/fixtures (verifying the server
against the generated CA), decodes and applies the JSON Patch, checks the result against
the fixture's expectation and by hand (sidecar, volumes, env), and validates every patched
pod against the upstream Kubernetes schema (tests/deploy/validate_k8s.mjs). Also: the
404/405/400 paths with the server still answering afterwards, certificate rotation,
SIGTERM with a request under way, and the CLI's exit codes.
"""

import base64
import copy
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest
from cryptography import x509

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import certs  # noqa: E402
from harness import (HOST, REPO, free_port, keyfence_bin, port_accepts, tail,  # noqa: E402
                     wait_until)

FIXTURES = os.path.join(REPO, "tests", "unit", "inject", "fixtures")
VALIDATOR = os.path.join(REPO, "tests", "deploy", "validate_k8s.mjs")
VALIDATOR_MODULES = os.path.join(REPO, "tests", "deploy", "node_modules", "kubernetes-models")
IMAGE = "registry.example.com/keyfence:0.1.0"  # what the fixtures' expected pods carry
CASES = ["plain", "existing", "injected_annotation", "keyfence_container", "no_annotation",
         "inject_not_true", "own_redis_url", "unix", "missing_tenant", "bad_tenant", "non_pod",
         "update", "bad_listen", "volume_clash", "malformed", "not_review"]


# ------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------

class Webhook:
    """One `keyfence inject` process (killed by PID at the end)."""

    def __init__(self, directory, cert, key, extra=()):
        self.port = free_port()
        self.log_path = os.path.join(directory, f"inject-{self.port}.log")
        self.args = [keyfence_bin(), "--log-level", "debug", "inject",
                     "--listen", f"{HOST}:{self.port}", "--tls-cert", cert, "--tls-key", key,
                     *extra]
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: self.proc.poll() is not None or port_accepts(self.port), 10,
                       what="keyfence inject to listen")
        except TimeoutError:
            self.stop()
            raise
        assert self.proc.poll() is None, f"keyfence inject exited:\n{tail(self.log_path)}"
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()

    def log_text(self):
        return tail(self.log_path, 400)


def tls_context(ca_path):
    ctx = ssl.create_default_context(cafile=ca_path)  # verifies the chain and 127.0.0.1
    return ctx


def call(webhook, ca_path, method, path, body=None, headers=None, conn=None):
    """(status, headers dict, body bytes); reuses `conn` when given (keep-alive)."""
    own = conn is None
    if own:
        conn = http.client.HTTPSConnection(HOST, webhook.port, timeout=10,
                                           context=tls_context(ca_path))
    try:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if own:
            conn.close()


def unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def apply_add_patch(doc, ops):
    """RFC 6902 for the one operation the webhook emits: add (objects, arrays, '-')."""
    doc = copy.deepcopy(doc)
    for op in ops:
        assert op["op"] == "add", op
        assert op["path"].startswith("/"), op
        tokens = [unescape(t) for t in op["path"][1:].split("/")]
        parent = doc
        for t in tokens[:-1]:
            parent = parent[int(t)] if isinstance(parent, list) else parent[t]
        last = tokens[-1]
        value = copy.deepcopy(op["value"])
        if isinstance(parent, list):
            if last == "-":
                parent.append(value)
            else:
                index = int(last)
                assert 0 <= index <= len(parent), op
                parent.insert(index, value)
        else:
            assert isinstance(parent, dict), op
            parent[last] = value
    return doc


def read_fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def serial_of(port, ca_path):
    """The serial number of the certificate the server presents on a new connection."""
    ctx = tls_context(ca_path)
    with socket.create_connection((HOST, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True)).serial_number


def validate_k8s(paths):
    """Every file through tests/deploy/validate_k8s.mjs (required: never skipped)."""
    assert os.path.isfile(VALIDATOR), f"{VALIDATOR} is missing"
    assert os.path.isdir(VALIDATOR_MODULES), (
        "tests/deploy/node_modules is missing: run `npm ci` in tests/deploy")
    r = subprocess.run(["node", VALIDATOR, "-v", *paths], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"validate_k8s.mjs failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


# ------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("inject-pki"))
    ca = certs.Ca("keyfence inject test CA")
    cert, key = ca.issue("keyfence-injector", dns=["localhost"], ips=[HOST], server=True)
    cert_path, key_path = certs.write_pair(d, "server", cert, key)
    return {"dir": d, "ca": ca, "ca_path": ca.write(d), "cert": cert_path, "key": key_path}


@pytest.fixture(scope="module")
def webhook(pki):
    w = Webhook(pki["dir"], pki["cert"], pki["key"], ["--image", IMAGE]).start()
    yield w
    w.stop()


# ------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------

def check_injected_by_hand(pod_in, pod, listen, image=IMAGE, admin_port=9121):
    """The contract, independently of the expected fixture."""
    spec = pod["spec"]
    sidecar = spec["initContainers"][0]
    assert sidecar["name"] == "keyfence" and sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == image
    assert sidecar["ports"] == [{"name": "keyfence-admin", "containerPort": admin_port,
                                 "protocol": "TCP"}]
    assert [i["name"] for i in spec["initContainers"][1:]] == \
        [i["name"] for i in pod_in["spec"].get("initContainers", [])]
    mounts = {m["name"]: m for m in sidecar["volumeMounts"]}
    assert mounts["keyfence-config"] == {"name": "keyfence-config", "mountPath": "/etc/keyfence",
                                         "readOnly": True}
    assert "subPath" not in mounts["keyfence-config"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "configMap" in volumes["keyfence-config"]
    url = "redis://127.0.0.1:6379" if listen == "tcp" else "unix:///run/keyfence/redis.sock"
    for before, after in zip(pod_in["spec"]["containers"], spec["containers"]):
        own = [e for e in before.get("env", []) if e["name"] == "REDIS_URL"]
        env = [e for e in after["env"] if e["name"] == "REDIS_URL"]
        assert env == (own or [{"name": "REDIS_URL", "value": url}])
        socket_mounts = [m for m in after.get("volumeMounts", []) if m["name"] == "keyfence-socket"]
        assert socket_mounts == ([{"name": "keyfence-socket", "mountPath": "/run/keyfence"}]
                                 if listen == "unix" else [])
    assert ("keyfence-socket" in volumes) == (listen == "unix")
    assert pod["metadata"]["annotations"]["keyfence.io/injected"] == "true"


def test_fixtures_over_https(webhook, pki, tmp_path):
    to_validate = []
    for case in CASES:
        body = read_fixture(case + ".json")
        expected = json.loads(read_fixture(case + ".expected.json"))
        status, headers, data = call(webhook, pki["ca_path"], "POST", "/mutate", body)
        if "http_status" in expected:
            assert status == expected["http_status"], (case, data)
            assert expected["body_contains"] in data.decode(), (case, data)
            assert headers["content-type"].startswith("text/plain")
            continue
        assert status == 200, (case, data)
        assert headers["content-type"] == "application/json"
        review = json.loads(body)
        answer = json.loads(data)
        assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
        response = answer["response"]
        assert response["uid"] == review["request"]["uid"]
        obj = review["request"]["object"]
        src = tmp_path / f"{case}.input.json"
        src.write_text(json.dumps(obj))
        to_validate.append(str(src))
        if "pod" in expected:
            assert response["patchType"] == "JSONPatch"
            ops = json.loads(base64.b64decode(response.pop("patch"), validate=True))
            patched = apply_add_patch(obj, ops)
            assert patched == expected["pod"], case
            listen = obj["metadata"]["annotations"].get("keyfence.io/listen", "tcp")
            check_injected_by_hand(obj, patched, listen)
            out = tmp_path / f"{case}.patched.json"
            out.write_text(json.dumps(patched))
            to_validate.append(str(out))
        else:
            assert "patch" not in response and "patchType" not in response, case
        assert response == expected["response"], case
    assert len([p for p in to_validate if p.endswith(".patched.json")]) == 4
    report = validate_k8s(to_validate)
    assert report.count("Pod/") >= len(to_validate) - 1, report  # -v lists each valid object


def test_http_errors_then_still_serving(webhook, pki):
    ca = pki["ca_path"]
    status, headers, data = call(webhook, ca, "GET", "/mutate")
    assert status == 405 and headers["allow"] == "POST"
    status, headers, data = call(webhook, ca, "POST", "/healthz", b"{}")
    assert status == 405 and headers["allow"] == "GET"
    assert call(webhook, ca, "GET", "/nope")[0] == 404
    assert call(webhook, ca, "POST", "/mutate/extra", b"{}")[0] == 404
    status, _, data = call(webhook, ca, "POST", "/mutate", b"this is not json")
    assert status == 400 and b"not valid JSON" in data
    status, _, data = call(webhook, ca, "POST", "/mutate", b'{"apiVersion": "v1", "kind": "Pod"}')
    assert status == 400 and b"not an admission.k8s.io/v1 AdmissionReview" in data
    status, _, data = call(webhook, ca, "POST", "/mutate", b"[" * 5000 + b"]" * 5000)
    assert status == 400 and b"nested deeper" in data
    # Over 4 MiB: refused with 400 (the client still gets to send its body and read it).
    big = b'{"apiVersion": "admission.k8s.io/v1", "x": "' + b"a" * (4 * 1024 * 1024) + b'"}'
    status, _, data = call(webhook, ca, "POST", "/mutate", big)
    assert status == 400 and b"over the limit of 4194304 bytes" in data
    # Exactly at the limit is read (and then judged on its content).
    at_limit = b'{"apiVersion": "admission.k8s.io/v1", "x": "'
    at_limit += b"a" * (4 * 1024 * 1024 - len(at_limit) - 2) + b'"}'
    status, _, data = call(webhook, ca, "POST", "/mutate", at_limit)
    assert status == 400 and b"kind is missing" in data
    # A client that connects and sends nothing, and one that speaks plain HTTP, do not
    # hold up the others.
    silent = socket.create_connection((HOST, webhook.port))
    plain = socket.create_connection((HOST, webhook.port))
    plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        status, _, data = call(webhook, ca, "GET", "/healthz")
        assert (status, data) == (200, b"ok\n")
        # Keep-alive: several reviews on one connection.
        conn = http.client.HTTPSConnection(HOST, webhook.port, timeout=10, context=tls_context(ca))
        for case in ("plain", "no_annotation", "unix"):
            status, _, data = call(webhook, ca, "POST", "/mutate", read_fixture(case + ".json"),
                                   conn=conn)
            assert status == 200 and json.loads(data)["response"]["allowed"] is True
        conn.close()
    finally:
        silent.close()
        plain.close()
    assert webhook.proc.poll() is None
    assert call(webhook, ca, "GET", "/healthz?probe=1")[:1] == (200,)


def test_default_image_and_admin_port(pki):
    version = subprocess.run([keyfence_bin(), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()[1]
    w = Webhook(pki["dir"], pki["cert"], pki["key"], ["--admin-port", "9300"]).start()
    try:
        status, _, data = call(w, pki["ca_path"], "POST", "/mutate", read_fixture("plain.json"))
        assert status == 200
        response = json.loads(data)["response"]
        obj = json.loads(read_fixture("plain.json"))["request"]["object"]
        pod = apply_add_patch(obj, json.loads(base64.b64decode(response["patch"])))
        check_injected_by_hand(obj, pod, "tcp", image=f"keyfence:{version}", admin_port=9300)
        assert "injected: tenant orders" in w.log_text()
    finally:
        w.stop()


def test_certificate_rotation(pki, tmp_path):
    ca, d = pki["ca"], str(tmp_path)
    first_cert, first_key = ca.issue("injector-1", ips=[HOST], server=True)
    cert_path, key_path = certs.write_pair(d, "tls", first_cert, first_key)
    w = Webhook(d, cert_path, key_path).start()
    try:
        assert serial_of(w.port, pki["ca_path"]) == first_cert.serial_number
        # cert-manager writes a new pair in place: the next connection (after the one-second
        # check interval) gets it.
        second_cert, second_key = ca.issue("injector-2", ips=[HOST], server=True)
        certs.write_pair(d, "tls", second_cert, second_key)
        time.sleep(1.2)
        assert serial_of(w.port, pki["ca_path"]) == second_cert.serial_number
        # A broken certificate is refused: the previous one stays in force.
        with open(cert_path, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        time.sleep(1.2)
        assert serial_of(w.port, pki["ca_path"]) == second_cert.serial_number
        # So is a key that does not match the certificate.
        other_cert, _ = ca.issue("injector-x", ips=[HOST], server=True)
        _, wrong_key = ca.issue("injector-y", ips=[HOST], server=True)
        certs.write_pair(d, "tls", other_cert, wrong_key)
        time.sleep(1.2)
        assert serial_of(w.port, pki["ca_path"]) == second_cert.serial_number
        third_cert, third_key = ca.issue("injector-3", ips=[HOST], server=True)
        certs.write_pair(d, "tls", third_cert, third_key)
        time.sleep(1.2)
        assert serial_of(w.port, pki["ca_path"]) == third_cert.serial_number
        assert call(w, pki["ca_path"], "GET", "/healthz")[2] == b"ok\n"
        log = w.log_text()
        assert log.count("reloaded the TLS certificate") == 2, log
        assert "keeping the previous TLS certificate" in log
        assert "key values mismatch" in log
    finally:
        w.stop()


def test_sigterm_finishes_the_request_under_way(pki):
    w = Webhook(pki["dir"], pki["cert"], pki["key"], ["--image", IMAGE]).start()
    try:
        ctx = tls_context(pki["ca_path"])
        idle = ctx.wrap_socket(socket.create_connection((HOST, w.port), timeout=10),
                               server_hostname=HOST)
        busy = ctx.wrap_socket(socket.create_connection((HOST, w.port), timeout=10),
                               server_hostname=HOST)
        body = read_fixture("plain.json")
        head = (f"POST /mutate HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        busy.sendall(head + body[:100])
        time.sleep(0.3)
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # No new connections once stopping.
        wait_until(lambda: not port_accepts(w.port), 5, what="the listener to close")
        busy.sendall(body[100:])
        data = b""
        while True:
            chunk = busy.recv(65536)
            if not chunk:
                break
            data += chunk
        head_text, _, payload = data.partition(b"\r\n\r\n")
        assert head_text.startswith(b"HTTP/1.1 200"), data[:200]
        assert b"Connection: close" in head_text
        assert json.loads(payload)["response"]["patchType"] == "JSONPatch"
        assert idle.recv(100) == b""  # the idle connection was closed
        assert w.proc.wait(10) == 0
        busy.close()
        idle.close()
    finally:
        w.stop()


def test_sigint_exits_zero(pki):
    w = Webhook(pki["dir"], pki["cert"], pki["key"]).start()
    try:
        w.proc.send_signal(signal.SIGINT)
        assert w.proc.wait(10) == 0
        assert "inject: stopped" in w.log_text()
    finally:
        w.stop()


def run_cli(*args):
    return subprocess.run([keyfence_bin(), "inject", *args], capture_output=True, text=True,
                          timeout=20, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("listen", ["127.0.0.1", "localhost:8443", "127.0.0.1:0",
                                    "::1:8443", "127.0.0.1:99999", ""])
def test_bad_listen_is_usage_error(pki, listen):
    r = run_cli("--listen", listen, "--tls-cert", pki["cert"], "--tls-key", pki["key"])
    assert r.returncode == 2, r
    assert "--listen" in r.stderr and "HOST:PORT" in r.stderr, r.stderr


def test_usage_and_start_errors(pki, tmp_path):
    r = run_cli("--tls-cert", pki["cert"], "--tls-key", pki["key"])
    assert r.returncode == 2 and "--listen" in r.stderr
    r = run_cli("--listen", f"{HOST}:8443", "--tls-cert", pki["cert"])
    assert r.returncode == 2 and "--tls-key" in r.stderr
    r = run_cli("--listen", f"{HOST}:8443", "--tls-cert", pki["cert"], "--tls-key", pki["key"],
                "--admin-port", "70000")
    assert r.returncode == 2 and "--admin-port" in r.stderr
    r = run_cli("--listen", f"{HOST}:8443", "--tls-cert", pki["cert"], "--tls-key", pki["key"],
                "--image", "")
    assert r.returncode == 2 and "--image" in r.stderr
    r = run_cli("--help")
    assert r.returncode == 0 and "--tls-cert" in r.stdout
    # Unreadable or broken files at start: exit 1 naming the file.
    missing = str(tmp_path / "missing.crt")
    r = run_cli("--listen", f"{HOST}:{free_port()}", "--tls-cert", missing, "--tls-key", pki["key"])
    assert r.returncode == 1 and missing in r.stderr, r
    broken = tmp_path / "broken.key"
    broken.write_text("not a key\n")
    r = run_cli("--listen", f"{HOST}:{free_port()}", "--tls-cert", pki["cert"],
                "--tls-key", str(broken))
    assert r.returncode == 1 and str(broken) in r.stderr, r
    # An address in use: exit 1.
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen(1)
        r = run_cli("--listen", f"{HOST}:{s.getsockname()[1]}", "--tls-cert", pki["cert"],
                    "--tls-key", pki["key"])
    assert r.returncode == 1 and "cannot listen" in r.stderr, r
