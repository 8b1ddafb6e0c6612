"""Backend TLS (issue 12): keyfence reaches a redis-server started with --tls-port through
`backend.tls: {ca, cert, key, server_name, verify}`. Requests, big values, pipelines, pub/sub,
MULTI and keyfence's own control links (the accounting store, `keyfence analyze` over the
replication stream) all go over TLS. The server certificate is verified against the node's
address or `server_name`: a wrong name or an unknown CA is refused with a log line naming the
reason, `verify: false` accepts it; a server that requires client certificates
(--tls-auth-clients yes) takes keyfence's configured one and refuses a keyfence without one.
A bad backend.tls is a config error with its position. (The cluster suites run again over
TLS with KF_TEST_BACKEND_TLS=1: ctest integration.tls_backend_*.)"""

import json
import subprocess

import pytest

from certs import Ca, write_pair
from conftest import start_keyfence, stop_keyfence
from harness import (HOST, MonitorChecker, RedisServer, backend_pki, free_port, keyfence_bin,
                     redis_tls_args, wait_until)

P = b"shop@orders:"


@pytest.fixture(scope="module")
def tls_redis():
    """A redis-server with a plain port (for the test's own inspection) and a TLS port that
    requires client certificates."""
    tls_port = free_port()
    r = RedisServer(extra_args=redis_tls_args(tls_port, auth_clients="yes"))
    r.tls_port = tls_port
    r.start()
    yield r
    r.cleanup()


def tls_backend(r, **tls):
    pki = backend_pki()
    cfg = {"ca": pki["ca"], "cert": pki["client"][0], "key": pki["client"][1]}
    cfg.update(tls)
    return {"backend": {"nodes": [f"{HOST}:{r.tls_port}"], "tls": {k: v for k, v in cfg.items()
                                                                   if v is not None}}}


@pytest.fixture(scope="module")
def kf(tls_redis):
    k = start_keyfence(tls_redis.port, tls_backend(tls_redis))
    yield k
    stop_keyfence(k)


def test_requests_go_over_tls(kf, tls_redis):
    backend = tls_redis.client()
    mon = MonitorChecker(tls_redis)
    try:
        c = kf.client("orders")
        assert c.set("k", "v")
        assert c.get("k") == b"v"
        assert backend.get(P + b"k") == b"v"
        big = b"x" * (3 << 20)  # many TLS records each way
        assert c.set("big", big)
        assert c.get("big") == big
        pipe = c.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"p:{i}", i)
        assert all(pipe.execute())
        assert c.mget([f"p:{i}" for i in range(0, 3000, 100)]) == \
            [str(i).encode() for i in range(0, 3000, 100)]
        tx = c.pipeline(transaction=True)
        tx.incr("n").incr("n")
        assert tx.execute() == [1, 2]
        p = c.pubsub()
        p.subscribe("news")
        assert p.get_message(timeout=2)["type"] == "subscribe"
        assert kf.client("orders").publish("news", "hi") == 1
        msg = p.get_message(timeout=2)
        assert msg and msg["channel"] == b"news" and msg["data"] == b"hi"
        p.close()
        mon.assert_clean()
    finally:
        mon.stop()


def test_control_links_and_analyze_over_tls(kf, tls_redis):
    c = kf.client("orders")
    for i in range(50):
        c.set(f"a:{i}", i)
    r = subprocess.run([keyfence_bin(), "analyze", "--config", kf.config_path, "--json"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    report = json.loads(r.stdout)
    direct = len(tls_redis.client().keys(P + b"*"))
    assert report["tenants"]["orders"]["keys"] == direct >= 50
    # the accounting store (a control link) wrote the report to the backend over TLS
    assert kf.http("/analyze", method="POST")[0] == 202

    def stored():
        return tls_redis.client().get(b"shop@__keyfence:accounting:last") is not None
    wait_until(stored, 15, what="the accounting report stored in the backend")


def _refused(kf_, what):
    try:
        c = kf_.raw("orders", timeout=5)
        reply = c.cmd("GET", "k")
        c.close()
    except OSError as e:
        reply = e
    assert "backend unavailable" in str(reply), reply
    whats = what if isinstance(what, tuple) else (what,)
    try:
        wait_until(lambda: any(w in kf_.log_tail(200) for w in whats), 5,
                   what=f"a log line with one of {whats!r}")
    except TimeoutError:
        raise AssertionError(kf_.log_tail(30))
    assert str(kf_.backend_port) not in str(reply)  # no backend address in the reply


def test_wrong_name_unknown_ca_and_no_client_cert_are_refused(tls_redis, tmp_path):
    other = Ca("not the backend's CA")
    other_ca = other.write(str(tmp_path), "other")
    cases = [({"server_name": "redis.other.example"}, "certificate verify failed"),
             ({"ca": other_ca}, "certificate verify failed"),
             # TLS 1.3: the server checks the client certificate after the client's
             # handshake is done; its alert, or only its reset, comes at the first read
             # or write
             ({"cert": None, "key": None}, ("certificate required", "reset by peer"))]
    for tls, what in cases:
        k = start_keyfence(tls_redis.port, tls_backend(tls_redis, **tls))
        try:
            _refused(k, what)
            assert k.alive
        finally:
            stop_keyfence(k)


def test_verify_false_accepts_any_certificate(tls_redis, tmp_path):
    other_ca = Ca("unrelated").write(str(tmp_path), "unrelated")
    k = start_keyfence(tls_redis.port, tls_backend(tls_redis, ca=other_ca,
                                                   server_name="whatever.example", verify=False))
    try:
        with k.raw("orders") as c:
            assert c.cmd("SET", "nv", "1") == "OK"
        assert tls_redis.client().get(P + b"nv") == b"1"
    finally:
        stop_keyfence(k)


def test_backend_tls_config_errors_have_positions(tmp_path):
    pki = backend_pki()
    cases = [  # (backend.tls, what the error says); the tls mapping is on line 5
        ("{ca: /nonexistent/ca.crt}", "cannot read"),
        ("{cert: " + pki["client"][0] + "}", "needs both cert and key"),
        ("{ca: " + pki["client"][1] + "}", "holds no PEM certificate"),
        ("{verify: maybe}", ""),
        ("{colour: blue}", "unknown field"),
    ]
    line = 5
    for tls, what in cases:
        path = tmp_path / "bad.yaml"
        path.write_text("cluster_name: shop\nlisteners: [{bind: 127.0.0.1:7777}]\n"
                        f"backend:\n  nodes: [127.0.0.1:6379]\n  tls: {tls}\n")
        r = subprocess.run([keyfence_bin(), "--check", "--config", str(path)],
                           capture_output=True, timeout=10)
        out = (r.stdout + r.stderr).decode()
        assert r.returncode == 1, out
        assert f"{path}:{line}:" in out and what in out, (tls, out)
