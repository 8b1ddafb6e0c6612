"""Admin HTTP endpoints: health, readiness, metrics counting exactly, connection gauges,
config (redacted), tenants, hotkeys, reload (token-protected POST and SIGHUP)."""

import copy
import json
import time

import pytest

from harness import metric_value, parse_metrics, wait_until

TOKEN = "s3cret-admin-token"


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {"admin": {"token": TOKEN},
            "tenants": {"payments": {"limits": {"ops_per_sec": 123456}}}}


def auth_header():
    return {"Authorization": f"Bearer {TOKEN}"}


def http(kf, path, method="GET", token=False, body=None):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(kf.admin_url + path, data=body, method=method,
                                 headers=auth_header() if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_healthz_readyz(kf):
    st, _, _ = http(kf, "/healthz")
    assert st == 200
    st, _, _ = http(kf, "/readyz")
    assert st == 200
    st, _, _ = http(kf, "/no-such-endpoint")
    assert st == 404


def test_requests_total_counts_exactly(kf):
    m0 = kf.metrics()
    before = metric_value(m0, "keyfence_requests_total", tenant="orders", command="set") or 0
    before_get = metric_value(m0, "keyfence_requests_total", tenant="orders", command="get") or 0
    before_pay = metric_value(m0, "keyfence_requests_total", tenant="payments",
                              command="set") or 0
    r = kf.client("orders")
    n = 37
    for i in range(n):
        r.set(f"m{i}", i)
    pipe = r.pipeline(transaction=False)
    for i in range(13):
        pipe.set(f"p{i}", i)
        pipe.get(f"p{i}")
    pipe.execute()
    r.close()

    def counted():
        m = kf.metrics()
        return metric_value(m, "keyfence_requests_total", tenant="orders", command="set") \
            == before + n + 13 and m
    m1 = wait_until(counted, 3, 0.1, "keyfence_requests_total{set} to go up by 50")
    assert metric_value(m1, "keyfence_requests_total", tenant="orders",
                        command="get") == before_get + 13
    assert (metric_value(m1, "keyfence_requests_total", tenant="payments", command="set")
            or 0) == before_pay
    names = {n for n, _, _ in parse_metrics(m1)}
    for want in ("keyfence_request_duration_seconds_bucket", "keyfence_client_connections",
                 "keyfence_config_version"):
        assert want in names, f"{want} missing from /metrics"
    assert "# TYPE keyfence_requests_total counter" in m1


def test_client_connections_gauge(kf):
    def gauge(t):
        return metric_value(kf.metrics(), "keyfence_client_connections", tenant=t) or 0
    base_o, base_p = gauge("orders"), gauge("payments")
    conns = [kf.raw("orders") for _ in range(3)] + [kf.raw("payments")]
    try:
        for c in conns:
            assert c.cmd("PING") == "PONG"
        wait_until(lambda: gauge("orders") == base_o + 3, 3, 0.1, "orders gauge +3")
        assert gauge("payments") == base_p + 1
        # a gateway connection counts for its tenant after AUTH
        g = kf.raw("gateway")
        assert g.cmd("AUTH", "billing", "billing-secret") == "OK"
        wait_until(lambda: gauge("orders") == base_o + 4, 3, 0.1, "orders gauge +4")
        g.close()
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: gauge("orders") == base_o and gauge("payments") == base_p, 5, 0.1,
               "gauges back to their base values")


def test_rejected_total_denied(kf):
    def denied():
        return metric_value(kf.metrics(), "keyfence_rejected_total", tenant="orders",
                            reason="denied") or 0
    before = denied()
    with kf.raw("orders") as c:
        for _ in range(3):
            assert c.cmd("DEBUG", "SLEEP", "0").code == "NOPERM"
    wait_until(lambda: denied() == before + 3, 3, 0.1, "rejected_total{denied} +3")


def test_config_endpoint_redacts_secrets(kf):
    st, body, hdr = http(kf, "/config")
    assert st == 200
    text = body.decode()
    cfg = json.loads(text)
    assert isinstance(cfg, dict)
    for secret in ("orders-secret", "billing-secret", "payments-secret", TOKEN):
        assert secret not in text, f"/config leaks {secret!r}"
    assert "shop" in text and "orders" in text and "payments" in text
    assert "version" in text


def test_tenants_endpoint(kf):
    with kf.raw("orders") as c:
        assert c.cmd("SET", "t", "1") == "OK"
        st, body, _ = http(kf, "/tenants")
    assert st == 200
    data = json.loads(body)
    text = json.dumps(data)
    assert "orders" in text and "payments" in text
    assert "orders-secret" not in text
    # DESIGN: per tenant "connections, ops, rejections, current limits"
    pay = json.dumps(data.get("payments") if isinstance(data, dict) else data)
    assert "limit" in pay and "123456" in pay, f"/tenants shows no current limits: {pay}"


def test_hotkeys(kf):
    r = kf.client("orders")
    r.set("hot:key", "1")
    for _ in range(200):
        r.get("hot:key")
    r.close()
    st, body, _ = http(kf, "/hotkeys?tenant=orders")
    assert st == 200
    text = body.decode()
    assert "hot:key" in text, text[:500]
    assert "shop@orders" not in text
    st, body, _ = http(kf, "/hotkeys?tenant=payments")
    assert st == 200 and "hot:key" not in body.decode()


def test_reload_requires_token(kf):
    st, _, _ = http(kf, "/reload", method="POST", body=b"")
    assert st in (401, 403), f"POST /reload without the token answered {st}"
    st, body, _ = http(kf, "/reload", method="POST", token=True, body=b"")
    assert st == 200, body


def reloads(kf, result=None):
    labels = {"result": result} if result else {}
    return metric_value(kf.metrics(), "keyfence_config_reloads_total", **labels) or 0


def test_reload_sighup_adds_user(kf):
    orig = copy.deepcopy(kf.config)
    v0 = metric_value(kf.metrics(), "keyfence_config_version")
    n0 = reloads(kf)
    try:
        cfg = copy.deepcopy(orig)
        cfg["tenants"]["payments"]["users"].append({"name": "payments2", "password": "p2-pw"})
        kf.write_config(cfg)
        kf.reload()

        def can_auth():
            with kf.raw("gateway") as g:
                return g.cmd("AUTH", "payments2", "p2-pw") == "OK"
        wait_until(can_auth, 5, 0.2, "the new user to be accepted after SIGHUP")
        wait_until(lambda: reloads(kf) > n0, 3, 0.1, "config_reloads_total to go up")
        v1 = metric_value(kf.metrics(), "keyfence_config_version")
        assert v1 is not None and v0 is not None and v1 > v0
        with kf.raw("gateway") as g:
            assert g.cmd("AUTH", "payments2", "p2-pw") == "OK"
            assert g.cmd("SET", "via-reload", "1") == "OK"
        direct_get = kf.client("payments").get("via-reload")
        assert direct_get == b"1"
    finally:
        kf.write_config(orig)
        kf.reload()
        time.sleep(0.5)
    with kf.raw("gateway") as g:
        wait_until(lambda: g.cmd("AUTH", "payments2", "p2-pw").__class__.__name__ == "RespError",
                   5, 0.2, "the user to disappear after reverting")


def test_reload_with_broken_config_keeps_running_config(kf):
    orig = copy.deepcopy(kf.config)
    try:
        with open(kf.config_path, "w") as f:
            f.write("cluster_name: shop\nno_such_field: 1\nlisteners: [\n")
        st, body, _ = http(kf, "/reload", method="POST", token=True, body=b"")
        assert st == 400, (st, body)
        assert body, "400 without the errors"
        kf.reload()  # SIGHUP with a broken file must not kill it either
        time.sleep(0.5)
        assert kf.alive
        with kf.raw("gateway") as g:
            assert g.cmd("AUTH", "orders", "orders-secret") == "OK"
            assert g.cmd("PING") == "PONG"
        assert http(kf, "/readyz")[0] == 200
    finally:
        kf.write_config(orig)
        st, body, _ = http(kf, "/reload", method="POST", token=True, body=b"")
        assert st == 200, body
