"""Per-tenant quotas (issue 11): limits.memory_quota_bytes and max_keys. keyfence measures a
quota tenant's namespace (SCAN + MEMORY USAGE on its own connection) and, between
measurements, counts what it forwards of denyoom commands, so that a tenant writing past its
quota is refused (`-OOM tenant '<app>' is over its memory quota`) within a second of
crossing it, not at the next analysis. Reads and DEL keep working so the tenant can clean up,
and after it does, writes are accepted again. Another tenant is never refused, slowed or
counted because of it; MULTI with a refused write aborts; scripts that may write are refused
too. The quota, the measured figures and the refusals are in /metrics and /namespaces."""

import json
import time

import pytest

from harness import MonitorChecker, metric_value, wait_until

QUOTA = 2_000_000
OOM = "OOM tenant 'orders' is over its memory quota"
VALUE = b"v" * 100_000


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {"tenants": {"orders": {"limits": {"memory_quota_bytes": QUOTA,
                                              "allow_scripts": True}},
                        "payments": {"limits": {"max_keys": 300}}}}


def namespace_memory(backend, prefix):
    return sum(backend.memory_usage(k, samples=0) or 0
               for k in backend.scan_iter(match=prefix + "*", count=1000))


def test_writes_past_the_memory_quota_are_refused_within_a_second(kf, backend, redis_server):
    import redis
    mon = MonitorChecker(redis_server)
    orders, payments = kf.client("orders"), kf.client("payments")
    crossed_at = refused_at = None
    written = 0
    for i in range(200):
        try:
            orders.set(f"blob:{i}", VALUE)
            written += 1
        except redis.ResponseError as e:
            assert str(e) == OOM
            refused_at = time.monotonic()
            break
        if crossed_at is None and namespace_memory(backend, "shop@orders:") > QUOTA:
            crossed_at = time.monotonic()
        time.sleep(0.02)
    assert crossed_at is not None and refused_at is not None, (written, crossed_at)
    print(f"crossed after {written} writes; refused {refused_at - crossed_at:.3f} s later")
    assert refused_at - crossed_at < 1.0
    assert namespace_memory(backend, "shop@orders:") < QUOTA + 40 * len(VALUE)
    # every write that grows memory is refused; reads, DEL and other tenants are not
    with pytest.raises(redis.ResponseError, match="over its memory quota"):
        orders.rpush("list", "x")
    with pytest.raises(redis.ResponseError, match="over its memory quota"):
        orders.eval("return redis.call('SET', KEYS[1], 'x')", 1, "by-script")
    assert orders.eval_ro("return 1", 0) == 1
    assert orders.get("blob:0") == VALUE
    assert orders.exists("blob:1") == 1
    pipe = orders.pipeline(transaction=True)
    pipe.set("in-multi", "x")
    with pytest.raises(redis.ResponseError, match="over its memory quota"):
        pipe.execute()  # refused when queued: EXEC is then aborted
    for i in range(50):
        assert payments.set(f"k:{i}", "x")
    assert backend.exists("shop@orders:in-multi", "shop@orders:by-script") == 0
    m = kf.metrics()
    assert metric_value(m, "keyfence_tenant_memory_quota_bytes", tenant="orders") == QUOTA
    assert metric_value(m, "keyfence_tenant_over_quota", tenant="orders") == 1
    assert metric_value(m, "keyfence_tenant_over_quota", tenant="payments") == 0
    assert metric_value(m, "keyfence_tenant_memory_bytes", tenant="orders") > QUOTA
    assert metric_value(m, "keyfence_rejected_total", tenant="orders", reason="quota") >= 4
    assert not metric_value(m, "keyfence_rejected_total", tenant="payments", reason="quota")
    st, body = kf.http("/namespaces")
    q = json.loads(body)["quotas"]["orders"]
    assert st == 200 and q["over"] is True and q["memory_quota_bytes"] == QUOTA
    # cleaning up: writes are accepted again within about a second
    orders.delete(*[f"blob:{i}" for i in range(written)])

    def accepted():
        try:
            return orders.set("after", "x")
        except redis.ResponseError:
            return False
    wait_until(accepted, 3, interval=0.1, what="writes accepted after the cleanup")
    # a write that names a growth past the quota's room is refused before it allocates
    with pytest.raises(redis.ResponseError, match="over its memory quota"):
        orders.setbit("bits", 8 * 10_000_000, 1)
    with pytest.raises(redis.ResponseError, match="over its memory quota"):
        orders.setrange("range", 5_000_000, "x")
    assert backend.exists("shop@orders:bits", "shop@orders:range") == 0
    assert orders.setbit("small-bits", 8 * 1000, 1) == 0  # a small one is fine
    violations, checked, _ = mon.check()
    mon.stop()
    assert not violations, violations[:5]
    assert checked > 0


def test_max_keys(kf, backend):
    import redis
    payments, orders = kf.client("payments"), kf.client("orders")
    refused = None
    for i in range(2000):
        try:
            payments.set(f"k:{i}", "x")
        except redis.ResponseError as e:
            assert str(e) == "OOM tenant 'payments' is over its memory quota"
            refused = i
            break
        if i >= 300:
            time.sleep(0.005)  # past the quota: give the measurement its turn
    assert refused is not None
    keys = len(list(backend.scan_iter(match="shop@payments:*", count=1000)))
    print(f"refused at key {refused}; {keys} keys")
    assert 300 < keys < 300 + 250  # crossing + under a second of writes at ~200/s
    assert payments.get("k:0") == b"x" and payments.dbsize() == keys
    assert orders.set("fine", "x")  # orders is under its own quota
    assert payments.delete(*[f"k:{i}" for i in range(100)]) == 100
    wait_until(lambda: _writes(payments), 3, interval=0.1, what="payments accepted again")


def _writes(c):
    import redis
    try:
        return c.set("again", "x")
    except redis.ResponseError:
        return False
