"""Two tenants with the same key and channel names must never see or touch each
other's data. Every test also checks, through the backend MONITOR, that each key and
channel keyfence sent to the backend is inside a tenant namespace."""

import threading
import time

import pytest

from harness import RespError

PO = b"shop@orders:"
PP = b"shop@payments:"
N = 200


def workload(r, tag: str, errors: list):
    try:
        for i in range(N):
            r.set(f"key:{i}", f"{tag}-{i}")
            r.incr("counter")
            r.lpush("list", f"{tag}-{i}")
            r.hset("hash", f"f{i}", tag)
            r.sadd("set", f"{tag}-{i % 10}")
            r.zadd("zset", {f"m{i}": i})
        r.set("only:" + tag, "1")
    except Exception as e:  # surfaced by the main thread
        errors.append(e)


@pytest.fixture
def loaded(kf, backend, monitor):
    """Both tenants ran the same workload concurrently."""
    ro, rp = kf.client("orders"), kf.client("payments")
    errors: list = []
    ts = [threading.Thread(target=workload, args=(ro, "orders", errors)),
          threading.Thread(target=workload, args=(rp, "payments", errors))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "workload did not finish in 60 s"
    assert not errors, errors
    yield ro, rp
    ro.close()
    rp.close()


def own_count():
    return N + 5 + 1  # key:0..N-1, counter, list, hash, set, zset, only:<tag>


def test_concurrent_same_workload(loaded, backend, monitor):
    ro, rp = loaded
    keys = backend.keys("*")
    assert all(k.startswith(PO) or k.startswith(PP) for k in keys), \
        [k for k in keys if not (k.startswith(PO) or k.startswith(PP))][:10]
    assert sum(k.startswith(PO) for k in keys) == own_count()
    assert sum(k.startswith(PP) for k in keys) == own_count()
    for r, tag in ((ro, "orders"), (rp, "payments")):
        assert r.get("key:7") == f"{tag}-7".encode()
        assert r.get("counter") == str(N).encode()
        assert r.llen("list") == N
        assert set(r.hvals("hash")) == {tag.encode()}
        assert r.scard("set") == 10
        assert r.zcard("zset") == N
    assert backend.get(PO + b"key:7") == b"orders-7"
    assert backend.get(PP + b"key:7") == b"payments-7"
    monitor.assert_clean(min_checked=2 * N * 6)


def test_keyspace_views_show_only_own_keys(loaded, backend, monitor):
    ro, rp = loaded
    for r, tag, other in ((ro, "orders", "payments"), (rp, "payments", "orders")):
        ks = r.keys("*")
        assert len(ks) == own_count() and len(set(ks)) == len(ks)
        assert f"only:{tag}".encode() in ks and f"only:{other}".encode() not in ks
        assert not any(k.startswith(b"shop@") for k in ks)
        scanned = list(r.scan_iter(count=50))
        assert sorted(scanned) == sorted(ks)
        assert r.dbsize() == own_count()
        assert r.exists(f"only:{other}") == 0
        assert r.get(f"only:{other}") is None
        for _ in range(20):
            k = r.randomkey()
            assert k in ks, k
    monitor.assert_clean()


def test_flushdb_and_flushall_touch_only_own_keys(loaded, backend, monitor):
    ro, rp = loaded
    assert ro.flushdb() is True
    assert ro.dbsize() == 0 and ro.keys("*") == []
    assert rp.dbsize() == own_count()
    assert backend.dbsize() == own_count()
    assert all(k.startswith(PP) for k in backend.keys("*"))
    # refill orders, then FLUSHALL (sync and async) by orders
    ro.set("again", "1")
    assert ro.flushall() is True
    assert ro.dbsize() == 0
    ro.set("again", "1")
    assert ro.execute_command("FLUSHALL", "ASYNC") in (True, b"OK", "OK")
    deadline = time.monotonic() + 5
    while ro.dbsize() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ro.dbsize() == 0
    assert ro.execute_command("FLUSHDB", "SYNC") in (True, b"OK", "OK")
    assert rp.get("key:7") == b"payments-7"
    assert backend.dbsize() == own_count()
    assert rp.dbsize() == own_count()
    monitor.assert_clean()


def test_randomkey_with_no_own_keys(kf, backend, monitor):
    rp = kf.client("payments")
    rp.set("x", "1")
    ro = kf.client("orders")
    for _ in range(10):
        assert ro.randomkey() is None
    assert ro.dbsize() == 0 and ro.keys("*") == [] and ro.exists("x") == 0
    ro.close()
    rp.close()
    monitor.assert_clean()


def wait_message(ps, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ps.get_message(timeout=0.2)
        if m is not None:
            return m
    return None


def drain(ps, timeout=0.5):
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ps.get_message(timeout=0.1)
        if m is not None:
            out.append(m)
    return out


def test_pubsub_channels_are_isolated(kf, backend, monitor):
    ro, rp = kf.client("orders"), kf.client("payments")
    sub_o, sub_p = ro.pubsub(), rp.pubsub()
    psub_o, psub_p = ro.pubsub(), rp.pubsub()
    try:
        sub_o.subscribe("news")
        sub_p.subscribe("news", "paychan")
        psub_o.psubscribe("n*")
        psub_p.psubscribe("n*")
        for ps, n in ((sub_o, 1), (sub_p, 2), (psub_o, 1), (psub_p, 1)):
            confirms = [wait_message(ps) for _ in range(n)]
            assert all(c and c["type"] in ("subscribe", "psubscribe") for c in confirms), confirms

        # orders publishes: only orders' subscribers (1 channel + 1 pattern) receive it
        assert ro.publish("news", "hello") == 2
        m = wait_message(sub_o)
        assert m == {"type": "message", "pattern": None, "channel": b"news", "data": b"hello"}
        pm = wait_message(psub_o)
        assert pm == {"type": "pmessage", "pattern": b"n*", "channel": b"news",
                      "data": b"hello"}
        assert drain(sub_p) == [] and drain(psub_p) == []

        # and the other way round
        assert rp.publish("news", "pay") == 2
        assert wait_message(sub_p)["data"] == b"pay"
        assert wait_message(psub_p)["channel"] == b"news"
        assert drain(sub_o) == [] and drain(psub_o) == []

        # introspection shows only own channels, unprefixed
        assert sorted(ro.pubsub_channels()) == [b"news"]
        assert sorted(rp.pubsub_channels()) == [b"news", b"paychan"]
        assert ro.pubsub_channels("pay*") == []
        assert ro.pubsub_numsub("news", "paychan") == [(b"news", 1), (b"paychan", 0)]
        assert rp.pubsub_numsub("paychan") == [(b"paychan", 1)]
        # the backend really holds prefixed channels
        # (keyfence's own channel, <cluster>@__keyfence:limits, is in its reserved namespace)
        chans = {c for c in backend.pubsub_channels() if b"@__keyfence:" not in c}
        assert chans == {PO + b"news", PP + b"news", PP + b"paychan"}, chans
    finally:
        for ps in (sub_o, sub_p, psub_o, psub_p):
            ps.close()
        ro.close()
        rp.close()
    monitor.assert_clean()


def test_keyspace_subscriptions_are_confined_to_the_namespace(kf, backend, monitor):
    """__keyspace@0__: channels name keys: the backend pattern is the tenant's own
    (test_keyspace_notifications.py has the events); the MONITOR check proves it."""
    with kf.raw("orders") as c:
        assert c.cmd("PSUBSCRIBE", "__keyspace@0__:*") == [b"psubscribe", b"__keyspace@0__:*", 1]
        assert backend.execute_command("PUBSUB", "NUMPAT") == 1
    monitor.assert_clean()


@pytest.mark.parametrize("cmd,arg", [
    ("SUBSCRIBE", "__keyevent@1__:set"),
    ("PSUBSCRIBE", "__key*"),
    ("PSUBSCRIBE", "__keyspace@*__:*"),
])
def test_keyspace_notification_subscriptions_denied(kf, backend, cmd, arg):
    with kf.raw("orders") as c:
        r = c.cmd(cmd, arg)
        assert isinstance(r, RespError), f"{cmd} {arg} was accepted: {r!r}"
    chans = [c for c in backend.pubsub_channels() if b"@__keyfence:" not in c]
    assert not any(b"__key" in ch for ch in chans), chans
    assert backend.execute_command("PUBSUB", "NUMPAT") == 0


def test_wildcard_pattern_subscription_stays_in_namespace(kf, backend, monitor):
    with kf.raw("orders") as so, kf.raw("payments") as pub_p, kf.raw("orders") as pub_o:
        assert so.cmd("PSUBSCRIBE", "*") == [b"psubscribe", b"*", 1]
        assert pub_p.cmd("PUBLISH", "anything", "secret") == 0
        assert pub_p.cmd("PUBLISH", "shop@orders:anything", "forged") == 0
        so.settimeout(0.5)
        try:
            leaked = so.read()
        except OSError:
            leaked = None
        assert leaked is None, f"orders' PSUBSCRIBE * received {leaked!r}"
        so.settimeout(5)
        assert pub_o.cmd("PUBLISH", "mine", "m") == 1
        assert so.read() == [b"pmessage", b"*", b"mine", b"m"]
    monitor.assert_clean()


def test_sharded_pubsub_with_hash_tags(kf, backend, monitor):
    with kf.raw("orders") as sub, kf.raw("payments") as psub, kf.raw("orders") as pub:
        assert sub.cmd("SSUBSCRIBE", "ch{x}") == [b"ssubscribe", b"ch{x}", 1]
        assert psub.cmd("SSUBSCRIBE", "ch{x}") == [b"ssubscribe", b"ch{x}", 1]
        chans = set(backend.execute_command("PUBSUB", "SHARDCHANNELS"))
        assert chans == {b"shop@orders:ch{shop@orders:x}", b"shop@payments:ch{shop@payments:x}"}
        assert pub.cmd("SPUBLISH", "ch{x}", "hi") == 1
        assert sub.read() == [b"smessage", b"ch{x}", b"hi"]
        psub.settimeout(0.5)
        try:
            leaked = psub.read()
        except OSError:
            leaked = None
        assert leaked is None, leaked
        assert pub.cmd("PUBSUB", "SHARDCHANNELS") == [b"ch{x}"]
        assert pub.cmd("PUBSUB", "SHARDNUMSUB", "ch{x}") == [b"ch{x}", 1]
    monitor.assert_clean()


def test_scan_skips_other_tenants_pages(keyfence, backend):
    """DESIGN: SCAN keeps scanning until COUNT is met, so a tenant with few keys in
    a shared keyspace does not get pages of nothing."""
    kf = keyfence
    pipe = backend.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"shop@payments:bulk:{i}", i)
    pipe.execute()
    with kf.raw("orders") as c:
        for i in range(5):
            assert c.cmd("SET", f"few:{i}", i) == "OK"
        cursor, seen, calls = b"0", [], 0
        while True:
            cursor, page = c.cmd("SCAN", cursor)
            calls += 1
            seen.extend(page)
            if cursor == b"0" or calls > 100:
                break
        assert sorted(seen) == sorted(f"few:{i}".encode() for i in range(5)), seen
        # 3005 backend keys: a plain SCAN (COUNT 10) would take about 300 calls
        assert calls <= 3, calls
    pipe = backend.pipeline(transaction=False)
    for i in range(3000):
        pipe.delete(f"shop@payments:bulk:{i}")
    pipe.execute()
