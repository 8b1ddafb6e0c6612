"""Live limits (issue 13, item 3): PUT / DELETE /tenants/<name>/limits and `keyfence ctl`
change a tenant's limits on the running instance at once; the file stays the source of
truth (drift in /config and /tenants, kept across a reload of an unchanged tenant, dropped
when the file changes it or by DELETE); ?scope=fleet reaches every instance through the
backend. Another tenant is never touched."""

import json
import os
import subprocess
import threading
import time

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import MonitorChecker, keyfence_bin, metric_value, wait_until

TOKEN = "live-limits-token"


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {"admin": {"token": TOKEN},
            "limits": {"ops_per_sec": 1000000, "burst": 1000000},
            "tenants": {"orders": {"limits": {"max_connections": 50}}}}


def call(kf, method, path, body=None, token=TOKEN):
    import urllib.error
    import urllib.request
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(kf.admin_url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode()


def ctl(kf, *args, token=TOKEN):
    env = dict(os.environ, KEYFENCE_TOKEN=token)
    return subprocess.run([keyfence_bin(), "ctl", "--admin", kf.admin_url, *args],
                          capture_output=True, text=True, timeout=20, env=env)


def tenant_limit(kf, tenant, field):
    st, body = call(kf, "GET", "/tenants", token=None)
    assert st == 200
    return body[tenant]["limits"][field]


class Flood:
    """One connection sending pipelined GETs as fast as it can; counts OK and -RATELIMIT
    replies with their arrival time."""

    def __init__(self, client):
        self.client, self.stop, self.events = client, False, []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop:
            pipe = self.client.pipeline(transaction=False)
            for _ in range(50):
                pipe.get("flood")
            replies = pipe.execute(raise_on_error=False)
            now = time.monotonic()
            for r in replies:
                self.events.append((now, not isinstance(r, Exception)))

    def accepted(self, start, end):
        return sum(1 for t, ok in self.events if start <= t < end and ok)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        self.thread.join(10)


def test_put_lowers_the_rate_of_a_flooding_connection_within_a_second(kf, redis_server):
    mon = MonitorChecker(redis_server)
    payments = kf.client("payments")
    with Flood(kf.client("orders")) as flood:
        time.sleep(0.5)
        assert flood.accepted(0, time.monotonic()) > 300  # unthrottled before (> 200/s)
        t0 = time.monotonic()
        st, body = call(kf, "PUT", "/tenants/orders/limits", {"ops_per_sec": 200, "burst": 200})
        assert st == 200, body
        assert body["override"] == {"ops_per_sec": 200, "burst": 200}
        assert body["drift"]["ops_per_sec"] == {"file": 1000000, "live": 200}
        # the other tenant keeps its limits and its pace
        for i in range(300):
            assert payments.set(f"p{i}", "x")
        time.sleep(3.2)
        # from 1 s after the PUT on, at most the new rate (plus its burst) gets through
        late = flood.accepted(t0 + 1.0, t0 + 3.0)
        assert late <= 200 * 2 + 200, late
        assert late >= 100, late  # and the tenant is throttled, not cut off
        st, body = call(kf, "DELETE", "/tenants/orders/limits")
        assert st == 200 and body["cleared"] is True
        t1 = time.monotonic()
        time.sleep(1.5)
        assert flood.accepted(t1 + 0.5, t1 + 1.5) > 600  # back: well over the 200/s override
    assert tenant_limit(kf, "payments", "ops_per_sec") == 1000000
    m = kf.metrics()
    assert not metric_value(m, "keyfence_rejected_total", tenant="payments", reason="ratelimit")
    mon.stop()
    mon.assert_clean()


def test_ctl_drives_the_same_and_drift_is_reported(kf):
    r = ctl(kf, "limits", "set", "orders", "ops_per_sec=321", "on_limit=delay")
    assert r.returncode == 0, r.stderr
    assert tenant_limit(kf, "orders", "ops_per_sec") == 321
    st, cfg = call(kf, "GET", "/config", token=None)
    assert cfg["drift"] == {"orders": {"ops_per_sec": {"file": 1000000, "live": 321},
                                       "on_limit": {"file": "reject", "live": "delay"}}}
    assert cfg["overrides"]["instance"] == {"orders": {"ops_per_sec": 321, "on_limit": "delay"}}
    assert cfg["hash"] != cfg["file_hash"]  # the running config is not the file's
    table = ctl(kf, "tenants")
    assert table.returncode == 0, table.stderr
    row = next(l for l in table.stdout.splitlines() if l.startswith("orders"))
    assert "ops_per_sec 1000000->321" in row and "321" in row
    other = next(l for l in table.stdout.splitlines() if l.startswith("payments"))
    assert other.rstrip().endswith("-")  # no drift for payments
    r = ctl(kf, "limits", "clear", "orders")
    assert r.returncode == 0, r.stderr
    st, cfg = call(kf, "GET", "/config", token=None)
    assert cfg["drift"] == {} and cfg["hash"] == cfg["file_hash"]
    # the other verbs answer through the same client
    assert json.loads(ctl(kf, "hotkeys", "orders").stdout) is not None
    assert ctl(kf, "reload").returncode == 0
    assert "cluster_name" in json.loads(ctl(kf, "config").stdout)


def test_override_survives_a_reload_of_an_unchanged_tenant(kf):
    assert call(kf, "PUT", "/tenants/orders/limits", {"ops_per_sec": 777})[0] == 200
    # the file changes, but not orders: the override stays
    cfg = kf.config
    cfg["tenants"]["payments"].setdefault("limits", {})["max_connections"] = 77
    kf.write_config(cfg)
    st, body = call(kf, "POST", "/reload")
    assert st == 200, body
    assert tenant_limit(kf, "orders", "ops_per_sec") == 777
    assert tenant_limit(kf, "payments", "max_connections") == 77
    # the file changes another of orders' limits: still kept
    cfg["tenants"]["orders"]["limits"]["max_connections"] = 60
    kf.write_config(cfg)
    assert call(kf, "POST", "/reload")[0] == 200
    assert tenant_limit(kf, "orders", "ops_per_sec") == 777
    # the file changes the overridden limit: the file wins, the override is dropped (said so)
    cfg["tenants"]["orders"]["limits"]["ops_per_sec"] = 900000
    kf.write_config(cfg)
    st, body = call(kf, "POST", "/reload")
    assert st == 200, body
    assert tenant_limit(kf, "orders", "ops_per_sec") == 900000
    assert call(kf, "GET", "/config", token=None)[1]["drift"] == {}
    assert "the live limits of tenant orders are dropped: the file changed" in kf.log_tail(40)
    cfg["tenants"]["orders"]["limits"].pop("ops_per_sec")
    kf.write_config(cfg)
    assert call(kf, "POST", "/reload")[0] == 200
    assert "changed [orders]" in kf.log_tail(40)


def test_bad_requests_are_refused_and_change_nothing(kf):
    version = call(kf, "GET", "/config", token=None)[1]["version"]
    st, body = call(kf, "PUT", "/tenants/orders/limits", {"ops_per_sec": -5})
    assert st == 400 and body["errors"][0].startswith("request:1:"), body
    st, body = call(kf, "PUT", "/tenants/orders/limits", {"no_such_limit": 1})
    assert st == 400 and "unknown field" in body["errors"][0], body
    st, body = call(kf, "PUT", "/tenants/orders/limits", b"{not json")
    assert st == 400, body
    st, body = call(kf, "PUT", "/tenants/orders/limits", {})
    assert st == 400, body
    st, body = call(kf, "PUT", "/tenants/nobody/limits", {"ops_per_sec": 5})
    assert st == 404, body
    st, body = call(kf, "PUT", "/tenants/orders/limits?scope=flet", {"ops_per_sec": 5})
    assert st == 400 and "scope" in body["errors"][0], body
    st, _ = call(kf, "PUT", "/tenants/orders/limits", {"ops_per_sec": 5}, token="wrong")
    assert st == 401
    st, _ = call(kf, "GET", "/tenants/orders/limits")
    assert st == 405
    assert call(kf, "GET", "/config", token=None)[1]["version"] == version
    r = ctl(kf, "limits", "set", "orders", "ops_per_sec")
    assert r.returncode == 2 and "FIELD=VALUE" in r.stderr
    r = ctl(kf, "limits", "set", "orders", "ops_per_sec=x")
    assert r.returncode == 1 and "HTTP 400" in r.stderr
    r = subprocess.run([keyfence_bin(), "ctl", "--admin", "http://127.0.0.1:1", "tenants"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 3 and "cannot reach" in r.stderr


def test_without_an_admin_token_limits_cannot_be_changed(redis_server):
    kf = start_keyfence(redis_server.port)
    try:
        st, body = call(kf, "PUT", "/tenants/orders/limits", {"ops_per_sec": 5}, token=None)
        assert st == 403 and "admin.token" in body["errors"][0]
    finally:
        stop_keyfence(kf)


def test_fleet_scope_reaches_every_instance(kf, redis_server, backend):
    other = start_keyfence(redis_server.port, {"admin": {"token": TOKEN}})
    try:
        st, body = call(kf, "PUT", "/tenants/orders/limits?scope=fleet", {"ops_per_sec": 4242})
        assert st == 200 and body["scope"] == "fleet", body
        wait_until(lambda: tenant_limit(other, "orders", "ops_per_sec") == 4242, 3,
                   what="the other instance took the fleet override")
        assert tenant_limit(kf, "orders", "ops_per_sec") == 4242
        assert tenant_limit(other, "payments", "ops_per_sec") != 4242
        assert call(other, "GET", "/config", token=None)[1]["overrides"]["fleet"] == {
            "orders": {"ops_per_sec": 4242}}
        # kept in keyfence's reserved namespace, which no tenant can reach
        assert backend.hget("shop@__keyfence:limits", "orders") is not None
        # an instance that starts later finds it in the backend
        late = start_keyfence(redis_server.port, {"admin": {"token": TOKEN}})
        try:
            wait_until(lambda: tenant_limit(late, "orders", "ops_per_sec") == 4242, 3,
                       what="a new instance read the fleet override")
        finally:
            stop_keyfence(late)
        # cleared from any instance, cleared everywhere
        st, body = call(other, "DELETE", "/tenants/orders/limits?scope=fleet")
        assert st == 200 and body["cleared"] is True, body
        wait_until(lambda: tenant_limit(kf, "orders", "ops_per_sec") == 1000000, 3,
                   what="the fleet override cleared on the first instance")
        assert backend.hget("shop@__keyfence:limits", "orders") is None
        assert call(kf, "PUT", "/tenants/orders/limits?scope=fleet", {"ops_per_sec": 4242})[0] == 200
        # the backend down: a fleet PUT is refused (503) and the fleet override in force stays
        redis_server.stop()
        try:
            st, body = call(kf, "PUT", "/tenants/orders/limits?scope=fleet", {"burst": 5})
            assert st == 503, body
            cfg = call(kf, "GET", "/config", token=None)[1]
            assert cfg["overrides"]["fleet"] == {"orders": {"ops_per_sec": 4242}}, cfg
        finally:
            redis_server.start()
        wait_until(lambda: _ping(backend), 10)
    finally:
        stop_keyfence(other)


def _ping(c):
    try:
        return c.ping()
    except Exception:
        return False
