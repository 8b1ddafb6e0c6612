"""Big values (counted in keyfence_big_values_total, logged with tenant and key, at most
once a second), AUTH throttling per client address, and hot keys naming client keys."""

import time

import pytest

from conftest import start_keyfence
from harness import RespError, metric_value


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {"limits": {"big_value_bytes": 1000}}


def big(kf, tenant, direction):
    return metric_value(kf.metrics(), "keyfence_big_values_total", tenant=tenant,
                        direction=direction) or 0


def test_big_requests_and_replies_counted_and_logged(keyfence, backend):
    kf = keyfence
    req0, rep0 = big(kf, "orders", "request"), big(kf, "orders", "reply")
    with kf.raw("orders") as c:
        for i in range(3):
            assert c.cmd("SET", f"bigkey:{i}", "x" * 5000) == "OK"
        assert c.cmd("SET", "small", "x") == "OK"
        assert c.cmd("GET", "bigkey:0") == b"x" * 5000
        assert c.cmd("GET", "small") == b"x"
    assert big(kf, "orders", "request") == req0 + 3
    assert big(kf, "orders", "reply") == rep0 + 1
    assert big(kf, "payments", "request") == 0
    log = kf.log_tail(200)
    assert "big request" in log and "tenant=orders" in log and "key=bigkey:0" in log, log
    # rate-limited: three big requests within a second give one log line
    assert log.count("big request") == 1, log
    assert "shop@orders" not in log


def test_failed_auth_is_throttled_per_address(redis_server):
    kf = start_keyfence(redis_server.port, {"workers": 1})
    try:
        took = []
        for _ in range(10):
            with kf.raw("gateway") as c:
                t0 = time.monotonic()
                assert c.cmd("AUTH", "orders", "nope") == RespError(
                    "WRONGPASS invalid username-password pair or user is disabled.")
                took.append(time.monotonic() - t0)
        # the first failures go free, then each attempt waits longer (50 ms doubling to 1 s)
        assert took[4] > 0.08 and took[9] > 0.9, took
        # another user from the same address is not locked out
        with kf.raw("gateway") as c:
            assert c.cmd("AUTH", "billing", "billing-secret") == "OK"
        with kf.raw("gateway") as c:
            r = c.cmd("AUTH", "orders", "orders-secret")
            assert isinstance(r, RespError) and "too many failed AUTH" in r.text, r
            r = c.cmd("HELLO", "3", "AUTH", "orders", "orders-secret")
            assert isinstance(r, RespError) and "too many failed AUTH" in r.text, r
            assert c.cmd("GET", "x") == RespError("NOAUTH Authentication required.")
        # sidecar listeners need no AUTH and keep working
        with kf.raw("orders") as c:
            assert c.cmd("PING") == "PONG"
        assert (metric_value(kf.metrics(), "keyfence_rejected_total", tenant="orders",
                             reason="auth") or 0) == 0  # no tenant before AUTH succeeds
        assert "request rejected tenant=unauthenticated reason=auth command=auth" in kf.log_tail(100)
        # password guessing before any tenant is chosen is still counted
        assert (metric_value(kf.metrics(), "keyfence_rejected_total", tenant="unauthenticated",
                             reason="auth") or 0) >= 12
    finally:
        kf.stop()
        kf.cleanup()


def test_hotkeys_names_client_keys(keyfence):
    kf = keyfence
    with kf.raw("payments") as c:
        for _ in range(400):
            c.send("GET", "hot:{tag}:item")
        for _ in range(400):
            c.read()
    st, body = kf.http("/hotkeys?tenant=payments")[:2]
    assert st == 200
    text = body.decode()
    assert "hot:{tag}:item" in text and "shop@" not in text, text
    st, _ = kf.http("/hotkeys?tenant=nobody")[:2]
    assert st == 404


def test_hot_keys_metric(keyfence):
    kf = keyfence
    with kf.raw("orders") as c:
        for _ in range(400):
            c.send("INCR", "metric:hot")
        for _ in range(400):
            c.read()
    text = kf.metrics()
    v = metric_value(text, "keyfence_hot_key_requests", tenant="orders", key="metric:hot")
    assert v is not None and v > 0, [l for l in text.splitlines() if "hot_key" in l]
    assert "shop@orders" not in text
