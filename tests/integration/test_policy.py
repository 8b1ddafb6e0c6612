"""Policy from the config: global and per-tenant deny_commands, key_rules (per-key bans
and read_only), per-tenant rate limits (-RATELIMIT) and max_connections."""

import hashlib
import time

import pytest

from harness import ConnectionClosed, RespError, metric_value, wait_until

MAX_CLIENTS = 12
NOPERM_KEYS = "NOPERM this user has no permissions to access one of the keys used as arguments"


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {
        "max_clients": MAX_CLIENTS,
        "policy": {"deny_commands": ["GETDEL"]},
        "tenants": {
            "orders": {
                "deny_commands": ["KEYS"],
                "key_rules": [
                    {"match": "report:*", "deny_commands": ["HGETALL", "LRANGE"]},
                    {"match": "config:*", "read_only": True},
                ],
                "limits": {"max_connections": 4},
            },
            "payments": {"limits": {"ops_per_sec": 50, "burst": 50, "allow_scripts": True}},
        },
    }


def test_global_and_tenant_deny_lists(kf):
    with kf.raw("orders") as o, kf.raw("payments") as p:
        r = o.cmd("KEYS", "*")
        assert r == RespError("NOPERM this user has no permissions to run the 'keys' command"), r
        assert p.cmd("KEYS", "*") == []
        for c in (o, p):
            r = c.cmd("GETDEL", "k")
            assert r == RespError(
                "NOPERM this user has no permissions to run the 'getdel' command"), r
        assert o.cmd("SCAN", "0")[0] == b"0"


def test_key_rules_deny_commands(kf, backend):
    with kf.raw("orders") as c:
        assert c.cmd("HSET", "report:1", "f", "v") == 1
        assert c.cmd("HGETALL", "report:1") == RespError(NOPERM_KEYS)
        assert c.cmd("HGET", "report:1", "f") == b"v"
        assert c.cmd("HSET", "other", "f", "v") == 1
        assert c.cmd("HGETALL", "other") == [b"f", b"v"]
        assert c.cmd("RPUSH", "report:l", "a") == 1
        assert c.cmd("LRANGE", "report:l", "0", "-1") == RespError(NOPERM_KEYS)
        assert c.cmd("LLEN", "report:l") == 1
    # the same key names of another tenant are not covered by orders' rules
    with kf.raw("payments") as p:
        assert p.cmd("HSET", "report:1", "f", "v") == 1
        assert p.cmd("HGETALL", "report:1") == [b"f", b"v"]


def test_key_rules_read_only(kf, backend):
    backend.set(b"shop@orders:config:a", b"v")
    with kf.raw("orders") as c:
        assert c.cmd("GET", "config:a") == b"v"
        assert c.cmd("SET", "config:a", "x") == RespError(NOPERM_KEYS)
        assert c.cmd("DEL", "config:a") == RespError(NOPERM_KEYS)
        assert c.cmd("MSET", "free", "1", "config:b", "2") == RespError(NOPERM_KEYS)
        assert c.cmd("EXISTS", "config:a", "config:b") == 1
        assert c.cmd("RENAME", "config:a", "moved") == RespError(NOPERM_KEYS)
    assert backend.get(b"shop@orders:config:a") == b"v"
    assert backend.exists(b"shop@orders:free", b"shop@orders:config:b") == 0


def test_rate_limit(kf):
    def rejected():
        return metric_value(kf.metrics(), "keyfence_rejected_total", tenant="payments",
                            reason="ratelimit") or 0
    before = rejected()
    time.sleep(1.1)  # let the bucket fill
    with kf.raw("payments") as c:
        t0 = time.monotonic()
        for i in range(200):
            c.send("SET", f"rl{i}", i)
        replies = [c.read() for _ in range(200)]
        dt = time.monotonic() - t0
        ok = sum(1 for r in replies if r == "OK")
        limited = [r for r in replies if isinstance(r, RespError)]
        assert limited, "200 requests at once were not limited at 50 ops/s"
        assert all(r.text == "RATELIMIT tenant 'payments' is over its limit of 50 ops/s"
                   for r in limited), limited[:3]
        assert ok <= 50 + 50 * dt + 5, (ok, dt)
        assert ok + len(limited) == 200
        time.sleep(1.2)
        assert c.cmd("GET", "rl0") in (b"0", None)
    wait_until(lambda: rejected() >= before + len(limited), 3, 0.1, "ratelimit metric")
    # the other tenant is not limited
    with kf.raw("orders") as o:
        for i in range(200):
            o.send("SET", f"nl{i}", i)
        assert all(o.read() == "OK" for _ in range(200))


def test_max_connections_per_tenant(kf):
    conns = []
    try:
        for _ in range(4):
            c = kf.raw("orders", timeout=5)
            assert c.cmd("PING") == "PONG"
            conns.append(c)
        extra = kf.raw("orders", timeout=5)
        try:
            r = extra.cmd("PING")
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            r = None
        assert r is None or isinstance(r, RespError), f"5th connection answered {r!r}"
        extra.close()
        # other tenants are not affected
        with kf.raw("payments") as p:
            assert p.cmd("PING") == "PONG"
        conns.pop().close()

        def fresh_ok():
            with kf.raw("orders", timeout=5) as c:
                try:
                    return c.cmd("PING") == "PONG"
                except (ConnectionClosed, ConnectionResetError):
                    return False
        wait_until(fresh_ok, 3, 0.1, "a slot to free up after a close")
    finally:
        for c in conns:
            c.close()


def test_scripts_only_where_allowed(kf, backend, monitor):
    # payments has allow_scripts (see the overrides); orders does not
    with kf.raw("payments") as p, kf.raw("orders") as o:
        assert p.cmd("SET", "k", "pv") == "OK"
        assert p.cmd("EVAL", "return redis.call('GET', KEYS[1])", "1", "k") == b"pv"
        script = "return KEYS[1]"
        sha = hashlib.sha1(script.encode()).hexdigest()
        assert p.cmd("EVAL", script, "1", "user:{7}") == b"shop@payments:user:{shop@payments:7}"
        r = p.cmd("EVALSHA", sha, "1", "user:{7}")
        # KEYS[1] as the script sees it is the rewritten key
        assert r == b"shop@payments:user:{shop@payments:7}", r
        r = o.cmd("EVAL", "return 1", "0")
        assert isinstance(r, RespError) and r.code == "NOPERM", r
        # SCRIPT LOAD / EXISTS come with allow_scripts (EVALSHA-first clients)
        loaded = p.cmd("SCRIPT", "LOAD", "return ARGV[1]")
        assert isinstance(loaded, bytes) and len(loaded) == 40, loaded
        assert p.cmd("EVALSHA", loaded, "0", "hi") == b"hi"
        assert p.cmd("SCRIPT", "EXISTS", loaded.decode()) == [1]
        r = o.cmd("SCRIPT", "LOAD", "return 1")
        assert isinstance(r, RespError) and r.code == "NOPERM", r
        # SCRIPT FLUSH forgets the tenant's own scripts only: the server keeps its cache
        assert p.cmd("SCRIPT", "FLUSH") == "OK"
        r = p.cmd("EVALSHA", loaded, "0", "hi")
        assert isinstance(r, RespError) and r.code == "NOSCRIPT", r
        assert backend.script_exists(loaded.decode()) == [True]
        r = o.cmd("SCRIPT", "FLUSH")
        assert isinstance(r, RespError) and r.code == "NOPERM", r
    monitor.assert_clean()


def test_max_clients_global(kf):
    conns, refused = [], None
    try:
        for _ in range(MAX_CLIENTS + 3):
            c = kf.raw("payments", timeout=5)
            try:
                r = c.cmd("PING")
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                r = None
            if r != "PONG":
                refused = r
                c.close()
                break
            conns.append(c)
        assert len(conns) <= MAX_CLIENTS, f"{len(conns)} clients accepted, max_clients is 12"
        assert len(conns) >= MAX_CLIENTS - 2, f"refused already at {len(conns) + 1}"
        assert refused == RespError("ERR max number of clients reached"), refused
        conns.pop().close()

        def fresh_ok():
            with kf.raw("payments", timeout=5) as c:
                try:
                    return c.cmd("PING") == "PONG"
                except (ConnectionClosed, ConnectionResetError):
                    return False
        wait_until(fresh_ok, 3, 0.1, "a slot to free up after a close")
    finally:
        for c in conns:
            c.close()
