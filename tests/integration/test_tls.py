"""Client TLS (issue 12): listeners with `tls: {cert, key, ca, client_auth}`. redis-cli --tls,
redis-py ssl=True and ioredis tls talk to keyfence over TLS; with client_auth: required a
listener takes the tenant from the client certificate (tenant_from: cert_cn or cert_san_uri,
through the tenants' cert_names); a certificate that names no tenant is refused with an
error, an untrusted or expired one at the handshake with a log line. Certificates rotate on
file change without dropping connections; a bad new certificate keeps the old one and is
reported like any config error."""

import json
import os
import socket
import ssl
import subprocess
import time

import pytest

from certs import Ca, write_pair
from conftest import start_keyfence, stop_keyfence
from harness import HOST, MonitorChecker, free_ports, metric_value, wait_until


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("kf-pki"))
    ca = Ca()
    out = {"dir": d, "ca_obj": ca, "ca": ca.write(d)}
    out["server"] = write_pair(d, "server", *ca.issue("keyfence", dns=["localhost"],
                                                         ips=["127.0.0.1"], server=True))
    out["orders"] = write_pair(d, "orders", *ca.issue("orders.shop.svc",
                                                         uris=["spiffe://shop/ns/orders"]))
    out["payments"] = write_pair(d, "payments", *ca.issue("payments.shop.svc",
                                                             dns=["payments.shop.svc.cluster.local"]))
    out["nobody"] = write_pair(d, "nobody", *ca.issue("nobody.shop.svc"))
    out["both"] = write_pair(d, "both", *ca.issue("both", dns=["payments.shop.svc.cluster.local",
                                                               "orders.shop.svc.cluster.local"]))
    out["expired"] = write_pair(d, "expired", *ca.issue("orders.shop.svc", expired=True))
    other = Ca("another CA")
    out["untrusted"] = write_pair(d, "untrusted", *other.issue("orders.shop.svc"))
    return out


@pytest.fixture(scope="module")
def tls_ports():
    return dict(zip(("tls", "mtls", "uri", "dns", "optional"), free_ports(5)))


@pytest.fixture(scope="module")
def keyfence(redis_server, pki, tls_ports):
    cert, key = pki["server"]
    mtls = {"cert": cert, "key": key, "ca": pki["ca"], "client_auth": "required"}
    kf = start_keyfence(redis_server.port, {"tenants": {
        "orders": {"cert_names": ["orders.shop.svc", "spiffe://shop/ns/orders",
                                  "orders.shop.svc.cluster.local"]},
        "payments": {"cert_names": ["payments.shop.svc", "payments.shop.svc.cluster.local"]}}},
        extra_listeners=[
            {"bind": f"{HOST}:{tls_ports['tls']}", "tenant": "orders",
             "tls": {"cert": cert, "key": key}},
            {"bind": f"{HOST}:{tls_ports['mtls']}", "tls": mtls, "tenant_from": "cert_cn"},
            {"bind": f"{HOST}:{tls_ports['uri']}", "tls": mtls, "tenant_from": "cert_san_uri"},
            {"bind": f"{HOST}:{tls_ports['dns']}", "tls": mtls, "tenant_from": "cert_san_dns"},
            {"bind": f"{HOST}:{tls_ports['optional']}", "tenant": "payments",
             "tls": dict(mtls, client_auth="optional")},
        ])
    yield kf
    stop_keyfence(kf)


def tls_client(port, pki, cert=None, **kw):
    import redis
    extra = {"ssl_certfile": pki[cert][0], "ssl_keyfile": pki[cert][1]} if cert else {}
    return redis.Redis(host=HOST, port=port, ssl=True, ssl_ca_certs=pki["ca"],
                       socket_timeout=5, **extra, **kw)


def test_clients_over_tls(kf, backend, redis_server, pki, tls_ports):
    mon = MonitorChecker(redis_server)
    c = tls_client(tls_ports["tls"], pki)
    assert c.set("k", "v") and c.get("k") == b"v"
    assert backend.get("shop@orders:k") == b"v"
    r = subprocess.run(["redis-cli", "--tls", "--cacert", pki["ca"], "-h", HOST,
                        "-p", str(tls_ports["tls"]), "GET", "k"],
                       capture_output=True, text=True, timeout=10)
    assert r.stdout.strip() == "v", r.stderr
    node = subprocess.run(["node", "-e", f"""
const Redis = require({json.dumps(os.path.join(os.path.dirname(__file__), '../clients/node_modules/ioredis'))});
const fs = require('fs');
const r = new Redis({{host: '{HOST}', port: {tls_ports['tls']}, tls: {{ca: fs.readFileSync({json.dumps(pki['ca'])})}},
                     maxRetriesPerRequest: 1}});
r.set('from-ioredis', 'yes').then(() => r.get('k')).then(v => {{ console.log(v); r.quit(); }})
  .catch(e => {{ console.error(e); process.exit(1); }});
"""], capture_output=True, text=True, timeout=20)
    assert node.returncode == 0 and node.stdout.strip() == "v", node.stderr
    assert backend.get("shop@orders:from-ioredis") == b"yes"
    # a plain-text client on the TLS port is not served
    with socket.create_connection((HOST, tls_ports["tls"]), timeout=3) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert b"PONG" not in data
    violations, checked, _ = mon.check()
    mon.stop()
    assert not violations and checked > 0, violations[:5]


def test_client_certificates_choose_the_tenant(kf, backend, pki, tls_ports):
    o = tls_client(tls_ports["mtls"], pki, "orders")
    p = tls_client(tls_ports["mtls"], pki, "payments")
    assert o.set("who", "orders") and p.set("who", "payments")
    assert backend.get("shop@orders:who") == b"orders"
    assert backend.get("shop@payments:who") == b"payments"
    assert o.get("who") == b"orders" and p.get("who") == b"payments"
    # the certificate decides: AUTH as another tenant's user is refused
    import redis
    with pytest.raises(redis.ResponseError, match="WRONGPASS"):
        p.execute_command("AUTH", "orders", "orders-secret")
    assert p.get("who") == b"payments"
    u = tls_client(tls_ports["uri"], pki, "orders")  # the SAN URI (a SPIFFE ID)
    assert u.get("who") == b"orders"
    with pytest.raises(redis.ResponseError, match="names no tenant"):
        tls_client(tls_ports["uri"], pki, "payments").ping()  # payments has no URI name
    d = tls_client(tls_ports["dns"], pki, "payments")  # the SAN DNS name
    assert d.get("who") == b"payments"
    with pytest.raises(redis.ResponseError, match="names no tenant"):
        tls_client(tls_ports["dns"], pki, "orders").ping()  # orders' cert has no DNS name
    with pytest.raises(redis.ResponseError, match="names more than one tenant"):
        tls_client(tls_ports["dns"], pki, "both").ping()
    # client_auth: optional: without a certificate, or with a valid one, served; an
    # untrusted one is still refused at the handshake
    assert tls_client(tls_ports["optional"], pki).get("who") == b"payments"
    assert tls_client(tls_ports["optional"], pki, "orders").get("who") == b"payments"
    with pytest.raises((redis.exceptions.ConnectionError, ssl.SSLError)):
        tls_client(tls_ports["optional"], pki, "untrusted").ping()


def test_certificates_refused(kf, keyfence, pki, tls_ports):
    import redis
    import time
    time.sleep(1.1)  # the decision log: one line a second per tenant and reason (the last test's)
    with pytest.raises(redis.ResponseError, match="client certificate names no tenant"):
        tls_client(tls_ports["mtls"], pki, "nobody").ping()
    for bad in ("untrusted", "expired"):
        with pytest.raises((redis.exceptions.ConnectionError, ssl.SSLError)):
            tls_client(tls_ports["mtls"], pki, bad).ping()
    with pytest.raises((redis.exceptions.ConnectionError, ssl.SSLError)):
        tls_client(tls_ports["mtls"], pki).ping()  # no certificate at all
    log = lambda: open(keyfence.log_path).read()  # noqa: E731
    wait_until(lambda: "certificate has expired" in log(), 5, what="the expired log line")
    assert "unable to get local issuer certificate" in log() or "certificate verify failed" in log()
    assert "names no tenant (nobody.shop.svc)" in log()
    assert metric_value(kf.metrics(), "keyfence_rejected_total", reason="auth") >= 1


def _peer_serial(port, pki):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    with socket.create_connection((HOST, port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.getpeercert()["serialNumber"]


def test_rotation_keeps_connections(kf, keyfence, pki, tls_ports):
    import redis
    import threading
    before = _peer_serial(tls_ports["tls"], pki)
    c = tls_client(tls_ports["tls"], pki)
    assert c.set("during", "0")
    # load on 8 more connections through the rotation: none may drop or err
    stop, errors, counts = threading.Event(), [], [0] * 8

    def load(i):
        cl = tls_client(tls_ports["tls"], pki)
        try:
            while not stop.is_set():
                counts[i] = cl.incr(f"load:{i}")
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            errors.append(repr(e))
        if cl.connection_pool._created_connections != 1:
            errors.append(f"client {i} reconnected")
    threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    cert, key = pki["server"]
    new_cert, new_key = pki["ca_obj"].issue("keyfence", dns=["localhost"], ips=["127.0.0.1"],
                                             server=True)
    write_pair(pki["dir"], "server", new_cert, new_key)
    deadline = time.monotonic() + 10
    n = 0
    while time.monotonic() < deadline and _peer_serial(tls_ports["tls"], pki) == before:
        assert c.incr("during") == n + 1  # the open connection keeps working throughout
        n += 1
        time.sleep(0.05)
    after = _peer_serial(tls_ports["tls"], pki)
    stop.set()
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert all(n > 0 for n in counts), counts
    assert after != before, "the new certificate is not served"
    assert c.incr("during") == n + 1 and c.connection_pool._created_connections == 1
    # a broken certificate: the old one stays, the reload is reported as failed
    failed0 = metric_value(kf.metrics(), "keyfence_config_reloads_total", result="error") or 0
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    wait_until(lambda: (metric_value(kf.metrics(), "keyfence_config_reloads_total",
                                     result="error") or 0) > failed0, 10,
               what="the failed reload")
    assert "holds no PEM certificate" in open(keyfence.log_path).read()
    assert _peer_serial(tls_ports["tls"], pki) == after
    assert c.incr("during") == n + 2
    write_pair(pki["dir"], "server", new_cert, new_key)  # back for the other tests


def check(tmp_path, listeners_yaml, tenants="{orders: {}}"):
    cfg = tmp_path / "kf.yaml"
    cfg.write_text("cluster_name: shop\nbackend: {nodes: [127.0.0.1:6379]}\nlisteners:\n" +
                   listeners_yaml + f"tenants: {tenants}\n")
    from harness import keyfence_bin
    r = subprocess.run([keyfence_bin(), "--check", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=10)
    return r.returncode, (r.stdout + r.stderr).replace(str(cfg), "F")


def test_tls_config_errors_have_positions(pki, tmp_path):
    cert, key = pki["server"]
    other_key = pki["orders"][1]
    rc, out = check(tmp_path, f"  - bind: 127.0.0.1:1\n    tls: {{cert: {cert}, key: {other_key}}}\n")
    col = len(f"    tls: {{cert: {cert}, key: ") + 1
    assert rc == 1 and f"F:5:{col}: listeners[0].tls.key: '{other_key}' does not match the " \
                       f"certificate in '{cert}'" in out, out
    rc, out = check(tmp_path, "  - bind: 127.0.0.1:1\n    tls: {cert: /nonexistent.crt, key: x}\n")
    assert rc == 1 and "F:5:17: listeners[0].tls.cert: cannot read '/nonexistent.crt'" in out, out
    rc, out = check(tmp_path, f"  - bind: 127.0.0.1:1\n    tls: {{cert: {cert}, key: {key}, "
                              "client_auth: required}\n")
    assert rc == 1 and "client_auth needs ca" in out, out
    rc, out = check(tmp_path, f"  - bind: 127.0.0.1:1\n    tls: {{cert: {cert}, key: {key}}}\n"
                              "    tenant_from: cert_cn\n")
    assert rc == 1 and "F:6:18: listeners[0].tenant_from: a tenant from the client certificate " \
                       "needs tls with client_auth: required" in out, out
    rc, out = check(tmp_path, "  - bind: 127.0.0.1:1\n", tenants="{orders: {cert_names: [a]}, "
                              "payments: {cert_names: [a]}}")
    assert rc == 1 and "cert_names: 'a' already selects tenant 'orders'" in out, out
    rc, out = check(tmp_path, f"  - unix: /tmp/x.sock\n    tls: {{cert: {cert}, key: {key}}}\n")
    assert rc == 1 and "tls applies to TCP listeners" in out, out
    rc, out = check(tmp_path, f"  - bind: 127.0.0.1:1\n    tls: {{cert: {cert}, key: {key}, "
                              f"ca: {pki['ca']}, client_auth: optional, min_version: '1.3'}}\n")
    assert rc == 0, out


def test_a_certificate_name_taken_away_on_reload_closes_its_connections(kf, keyfence, pki,
                                                                         tls_ports):
    import copy

    import redis
    p = tls_client(tls_ports["mtls"], pki, "payments")
    assert p.ping()
    cfg = copy.deepcopy(keyfence.config)
    old = copy.deepcopy(keyfence.config)
    cfg["tenants"]["payments"]["cert_names"] = ["payments.shop.svc.cluster.local"]
    v0 = metric_value(kf.metrics(), "keyfence_config_reloads_total", result="ok") or 0
    keyfence.write_config(cfg)
    keyfence.reload()
    try:
        wait_until(lambda: (metric_value(kf.metrics(), "keyfence_config_reloads_total",
                                         result="ok") or 0) > v0, 10, what="the reload")

        def closed():
            try:
                p.ping()
                return False
            except (redis.ResponseError, redis.exceptions.ConnectionError):
                return True
        wait_until(closed, 5, what="the connection closed")
        with pytest.raises(redis.ResponseError, match="names no tenant"):
            tls_client(tls_ports["mtls"], pki, "payments").ping()
    finally:
        keyfence.write_config(old)
        keyfence.reload()
    wait_until(lambda: _pings(tls_client(tls_ports["mtls"], pki, "payments")), 10,
               what="payments back after the config is restored")


def _pings(c):
    try:
        return c.ping()
    except Exception:  # noqa: BLE001
        return False
