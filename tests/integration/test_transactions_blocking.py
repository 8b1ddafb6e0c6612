"""Transactions (MULTI/EXEC/DISCARD/WATCH), blocking commands that must not stall other
clients, and redis-py PubSub."""

import threading
import time

import pytest

from harness import RespError

P = b"shop@orders:"


@pytest.fixture(autouse=True)
def _namespace_guard(monitor):
    """Every test here: whatever keyfence sent to the backend stays in a namespace."""
    yield
    monitor.assert_clean()


def test_multi_exec(kf, backend):
    with kf.raw("orders") as c:
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "a", "1") == "QUEUED"
        assert c.cmd("INCR", "a") == "QUEUED"
        assert c.cmd("SET", "user:{7}:x", "y") == "QUEUED"
        assert c.cmd("KEYS", "*") == "QUEUED"
        assert c.cmd("GET", "a") == "QUEUED"
        r = c.cmd("EXEC")
        assert r[:3] == ["OK", 2, "OK"], r
        assert sorted(r[3]) == [b"a", b"user:{7}:x"], r
        assert r[4] == b"2"
    assert backend.get(P + b"a") == b"2"
    assert backend.get(P + b"user:{shop@orders:7}:x") == b"y"


def test_multi_exec_redis_py(kf):
    r = kf.client("orders")
    pipe = r.pipeline(transaction=True)
    pipe.set("t", "1").incrby("t", 9).get("t").keys("t*")
    assert pipe.execute() == [True, 10, b"10", [b"t"]]
    r.close()


def test_exec_error_inside_transaction(kf):
    with kf.raw("orders") as c:
        assert c.cmd("SET", "s", "str") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("INCR", "s") == "QUEUED"
        assert c.cmd("SET", "s2", "v") == "QUEUED"
        r = c.cmd("EXEC")
        assert isinstance(r[0], RespError) and r[1] == "OK", r
        # a queuing error aborts the transaction
        assert c.cmd("MULTI") == "OK"
        assert isinstance(c.cmd("GET"), RespError)
        r = c.cmd("EXEC")
        assert isinstance(r, RespError) and r.code == "EXECABORT", r


def test_discard(kf, backend):
    with kf.raw("orders") as c:
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "x", "1") == "QUEUED"
        assert c.cmd("DISCARD") == "OK"
        assert c.cmd("GET", "x") is None
        assert isinstance(c.cmd("EXEC"), RespError)  # EXEC without MULTI
    assert backend.dbsize() == 0


def test_watch_conflict_aborts_exec(kf, backend):
    a, b = kf.raw("orders"), kf.raw("orders")
    try:
        assert a.cmd("SET", "w", "0") == "OK"
        assert a.cmd("WATCH", "w") == "OK"
        assert b.cmd("SET", "w", "changed") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "w", "mine") == "QUEUED"
        assert a.cmd("EXEC") is None
        assert a.cmd("GET", "w") == b"changed"
        # without a conflict EXEC runs
        assert a.cmd("WATCH", "w") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "w", "mine") == "QUEUED"
        assert a.cmd("EXEC") == ["OK"]
        assert backend.get(P + b"w") == b"mine"
        # another TENANT writing its own "w" is not a conflict
        with kf.raw("payments") as p:
            assert a.cmd("WATCH", "w") == "OK"
            assert p.cmd("SET", "w", "pay") == "OK"
            assert a.cmd("MULTI") == "OK"
            assert a.cmd("SET", "w", "again") == "QUEUED"
            assert a.cmd("EXEC") == ["OK"]
        # UNWATCH
        assert a.cmd("WATCH", "w") == "OK"
        assert a.cmd("UNWATCH") == "OK"
        assert b.cmd("SET", "w", "b") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "w", "a") == "QUEUED"
        assert a.cmd("EXEC") == ["OK"]
    finally:
        a.close()
        b.close()


def test_blocking_pop_does_not_stall_others(kf):
    blocker = kf.raw("orders")
    result = {}

    def run():
        try:
            result["reply"] = blocker.cmd("BLPOP", "jobs", "8")
        except Exception as e:
            result["reply"] = e
        result["t"] = time.monotonic()

    assert blocker.cmd("PING") == "PONG"
    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.3)
    try:
        # other clients (several connections, so both workers are exercised)
        for i in range(6):
            with kf.raw("orders", timeout=3) as o:
                t0 = time.monotonic()
                assert o.cmd("SET", f"other{i}", i) == "OK"
                assert o.cmd("GET", f"other{i}") == str(i).encode()
                assert time.monotonic() - t0 < 1.0
        assert th.is_alive(), f"BLPOP returned early: {result}"
        with kf.raw("orders") as pusher:
            t_push = time.monotonic()
            assert pusher.cmd("LPUSH", "jobs", "job1") == 1
        th.join(5)
        assert not th.is_alive(), "BLPOP was not woken by LPUSH"
        assert result["reply"] == [b"jobs", b"job1"]
        assert result["t"] - t_push < 1.0
        # the blocking connection is usable afterwards
        assert blocker.cmd("GET", "other0") == b"0"
    finally:
        th.join(10)
        blocker.close()


def test_many_concurrent_blockers(kf):
    conns = [kf.raw("orders") for _ in range(8)]
    replies = [None] * 8

    def run(i):
        try:
            replies[i] = conns[i].cmd("BRPOP", f"q{i}", "5")
        except Exception as e:
            replies[i] = e

    ths = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in ths:
        t.start()
    time.sleep(0.3)
    try:
        with kf.raw("orders") as p:
            for i in range(8):
                assert p.cmd("RPUSH", f"q{i}", f"v{i}") == 1
        for t in ths:
            t.join(5)
        assert replies == [[f"q{i}".encode(), f"v{i}".encode()] for i in range(8)]
    finally:
        for t in ths:
            t.join(5)
        for c in conns:
            c.close()


def test_blpop_timeout(kf):
    with kf.raw("orders") as c:
        t0 = time.monotonic()
        assert c.cmd("BLPOP", "nothing", "1") is None
        dt = time.monotonic() - t0
        assert 0.8 <= dt < 3.0, dt
        assert c.cmd("PING") == "PONG"


def test_blocked_client_disconnect_does_not_eat_items(kf, backend):
    c = kf.raw("orders")
    c.send("BLPOP", "gone", "5")
    time.sleep(0.3)
    c.close()
    time.sleep(0.5)
    with kf.raw("orders") as p:
        assert p.cmd("LPUSH", "gone", "item") == 1
        time.sleep(0.3)
        # the item is still there: nobody is waiting any more
        assert p.cmd("LRANGE", "gone", "0", "-1") == [b"item"]


def get_message(ps, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ps.get_message(timeout=0.2)
        if m is not None:
            return m
    return None


def test_pubsub_redis_py(kf, backend):
    r = kf.client("orders")
    ps = r.pubsub()
    ps.subscribe("events")
    m = get_message(ps)
    assert m == {"type": "subscribe", "pattern": None, "channel": b"events", "data": 1}
    assert backend.pubsub_numsub(P + b"events") == [(P + b"events", 1)]
    pub = kf.client("orders")
    assert pub.publish("events", "e1") == 1
    assert get_message(ps) == {"type": "message", "pattern": None, "channel": b"events",
                               "data": b"e1"}
    ps.psubscribe("ev*")
    assert get_message(ps)["type"] == "psubscribe"
    assert pub.publish("events", "e2") == 2
    msgs = [get_message(ps), get_message(ps)]
    assert {(m["type"], m["channel"], m["data"]) for m in msgs} == {
        ("message", b"events", b"e2"), ("pmessage", b"events", b"e2")}
    ps.unsubscribe("events")
    m = get_message(ps)
    assert m["type"] == "unsubscribe" and m["channel"] == b"events"
    ps.punsubscribe()
    m = get_message(ps)
    assert m["type"] == "punsubscribe" and m["channel"] == b"ev*"
    ps.close()
    # normal commands again, on new connections
    assert pub.set("after", "1") is True
    r2 = kf.client("orders")
    assert r2.get("after") == b"1"
    deadline = time.monotonic() + 3
    while backend.pubsub_numsub(P + b"events")[0][1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.pubsub_numsub(P + b"events") == [(P + b"events", 0)]
    for c in (r, pub, r2):
        c.close()


def test_subscribed_connection_rules(kf):
    with kf.raw("orders") as c:
        assert c.cmd("SUBSCRIBE", "ch") == [b"subscribe", b"ch", 1]
        assert c.cmd("PING") == [b"pong", b""]
        r = c.cmd("GET", "x")
        assert isinstance(r, RespError), r
        assert c.cmd("UNSUBSCRIBE") == [b"unsubscribe", b"ch", 0]
        assert c.cmd("PING") == "PONG"
        assert c.cmd("SET", "x", "1") == "OK"


def test_pubsub_resp3_push(kf):
    with kf.raw("orders") as c, kf.raw("orders") as pub:
        assert c.cmd("HELLO", "3")[b"proto"] == 3
        r = c.cmd("SUBSCRIBE", "ch3")
        assert r == [b"subscribe", b"ch3", 1] and type(r).__name__ == "RespPush", r
        assert pub.cmd("PUBLISH", "ch3", "hi") == 1
        m = c.read()
        assert type(m).__name__ == "RespPush" and m == [b"message", b"ch3", b"hi"], m
        # RESP3 allows regular commands while subscribed
        assert c.cmd("SET", "k3", "v") == "OK"
        assert c.cmd("GET", "k3") == b"v"


def test_resp3_transactions_and_blocking(kf, backend):
    """RESP3 sessions (ioredis 6 / node-redis 6 default) use dedicated backend connections
    for MULTI, WATCH and blocking commands too."""
    with kf.raw("orders", timeout=5) as c:
        assert c.cmd("HELLO", "3")[b"proto"] == 3
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "r3", "1") == "QUEUED"
        assert c.cmd("INCR", "r3") == "QUEUED"
        assert c.cmd("EXEC") == ["OK", 2]
        assert c.cmd("WATCH", "r3") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("INCR", "r3") == "QUEUED"
        assert c.cmd("EXEC") == [3]
        assert c.cmd("BLPOP", "q3", "0.2") is None
        assert c.cmd("RPUSH", "q3", "a") == 1
        assert c.cmd("BLPOP", "q3", "1") == [b"q3", b"a"]
        assert c.cmd("HGETALL", "nothing") == {}
    assert backend.get(P + b"r3") == b"3"
