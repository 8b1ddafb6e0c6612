"""The backend ACL backstop (issue 9, backend.acl: per_tenant): each tenant's traffic runs on
backend connections authenticated as the tenant's own ACL user, confined by Redis itself to
its prefix and to the commands keyfence forwards. With scripts allowed, every escape a Lua
script can try (a foreign key by ARGV, KEYS *, FLUSHALL, OBJECT, SORT BY/GET, PUBLISH to a
foreign channel, SCAN, RANDOMKEY, DBSIZE, COPY ... DB) gets a Redis error and the backend,
read directly, is unchanged. Standalone and cluster (users on every node).

Every loop here is bounded in count and time; every socket has a timeout."""

import time

import pytest

from conftest import running_cluster, start_keyfence, stop_keyfence
from harness import HOST, MonitorChecker, RedisServer, RespError, metric_value

ACL = {"backend": {"acl": "per_tenant"},
       "tenants": {"orders": {"limits": {"allow_scripts": True}}}}

# (name, script, numkeys and args): each must be refused by Redis when run as orders' user.
ESCAPES = [
    ("write a foreign key by ARGV", "return redis.call('set', ARGV[1], 'pwned')", 0,
     ["shop@payments:a"]),
    ("read a foreign key", "return redis.call('get', ARGV[1])", 0, ["shop@payments:a"]),
    ("KEYS *", "return redis.call('keys', '*')", 0, []),
    ("FLUSHALL", "return redis.call('flushall')", 0, []),
    ("OBJECT of a foreign key", "return redis.call('object', 'encoding', ARGV[1])", 0,
     ["shop@payments:a"]),
    ("SORT BY a foreign pattern", "return redis.call('sort', KEYS[1], 'by', ARGV[1])", 1,
     ["l", "shop@payments:*"]),
    ("SORT GET a foreign pattern", "return redis.call('sort', KEYS[1], 'get', ARGV[1])", 1,
     ["l", "shop@payments:*"]),
    ("PUBLISH to a foreign channel", "return redis.call('publish', ARGV[1], 'x')", 0,
     ["shop@payments:news"]),
    ("SCAN", "return redis.call('scan', '0')", 0, []),
    ("RANDOMKEY", "return redis.call('randomkey')", 0, []),
    ("DBSIZE", "return redis.call('dbsize')", 0, []),
    ("COPY to another DB", "return redis.call('copy', KEYS[1], KEYS[1], 'db', '3')", 1, ["l"]),
    ("CONFIG SET", "return redis.call('config', 'set', 'maxmemory', '1')", 0, []),
    ("ACL SETUSER", "return redis.call('acl', 'setuser', 'evil', 'on', '>x', '+@all', '~*')", 0,
     []),
    ("MIGRATE", "return redis.call('migrate', '127.0.0.1', '1', ARGV[1], 0, 10)", 0,
     ["shop@payments:a"]),
]


def backend_state(node):
    with node.raw() as c:
        keys = sorted(c.cmd("KEYS", "*"))
        return keys, [c.cmd("GET", k) for k in keys if c.cmd("TYPE", k) == "string"]


def client_users(node) -> set:
    with node.raw() as c:
        lines = c.cmd("CLIENT", "LIST").decode().splitlines()
    return {f.split("=", 1)[1] for line in lines for f in line.split() if f.startswith("user=")}


def run_escapes(kf, nodes):
    with kf.raw("orders") as o, kf.raw("payments") as p:
        assert p.cmd("SET", "a", "theirs") == "OK"
        assert o.cmd("RPUSH", "l", "1", "2") == 2
        before = [backend_state(n) for n in nodes]
        refused = []
        for name, script, numkeys, args in ESCAPES:
            r = o.cmd("EVAL", script, numkeys, *args)
            assert isinstance(r, RespError), f"{name}: the script ran: {r!r}"
            refused.append((name, r.text[:60]))
        assert [backend_state(n) for n in nodes] == before, "a script changed the backend"
        assert p.cmd("GET", "a") == b"theirs"
        # what a script may do: its own declared keys
        assert o.cmd("EVAL", "return redis.call('set', KEYS[1], ARGV[1])", 1, "mine", "v") == "OK"
        assert o.cmd("GET", "mine") == b"v"
        assert o.cmd("EVAL", "return redis.call('incr', KEYS[1])", 1, "{t}n") == 1
        return refused


@pytest.fixture(scope="module")
def backend():
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


def test_scripts_confined_on_a_standalone_backend(backend):
    kf = start_keyfence(backend.port, ACL)
    m = MonitorChecker(backend)
    try:
        refused = run_escapes(kf, [backend])
        print("\n".join(f"{n}: {t}" for n, t in refused))
        users = client_users(backend)
        assert "kf:shop@orders" in users and "kf:shop@payments" in users, users
        # ordinary traffic, pub/sub, blocking and transactions work under the backstop
        with kf.raw("orders") as o, kf.raw("orders") as sub:
            assert sub.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
            assert sub.cmd("PSUBSCRIBE", "ev.*") == [b"psubscribe", b"ev.*", 2]
            assert o.cmd("PUBLISH", "news", "hi") == 1
            assert sub.read() == [b"message", b"news", b"hi"]
            assert o.cmd("MULTI") == "OK" and o.cmd("INCR", "c") == "QUEUED"
            assert o.cmd("EXEC") == [1]
            assert o.cmd("RPUSH", "q", "job") == 1 and o.cmd("BLPOP", "q", 1) == [b"q", b"job"]
            n = o.cmd("DBSIZE")
            assert isinstance(n, int) and n >= 3, n  # keyfence's own emulations run as keyfence
            assert set(o.cmd("KEYS", "*")) >= {b"mine", b"l", b"q", b"c"} - {b"q"}
        with backend.raw() as c:
            acl = c.cmd("ACL", "GETUSER", "kf:shop@orders")
        assert acl is not None
    finally:
        m.stop()
        stop_keyfence(kf)
    m.assert_clean()


@pytest.fixture(scope="module")
def cluster():
    yield from running_cluster(3)


def test_scripts_confined_on_every_cluster_node(cluster):
    kf = start_keyfence(cluster.ports[0], {**ACL, "backend": {"mode": "cluster",
                                                               "acl": "per_tenant"}},
                        backend_nodes=[f"{HOST}:{cluster.ports[0]}"])
    try:
        run_escapes(kf, cluster.nodes)
        for n in cluster.nodes:  # keyfence set the users on the nodes it discovered too
            with n.raw() as c:
                assert c.cmd("ACL", "GETUSER", "kf:shop@orders") is not None, n.port
        with kf.raw("orders") as o:
            for i in range(50):  # keys on every master
                assert o.cmd("SET", f"k{i}", i) == "OK"
            assert o.cmd("MGET", "k1", "k2", "k3") == [b"1", b"2", b"3"]
        owners = {cluster.node_for_slot(0).port}
        assert any("kf:shop@orders" in client_users(n) for n in cluster.nodes if n.port in owners)
    finally:
        stop_keyfence(kf)


SCRIPTS = {"backend": {"acl": "per_tenant"},
           "tenants": {"orders": {"limits": {"allow_scripts": True, "max_script_ms": 300}},
                       "payments": {"limits": {"allow_scripts": True}}}}


def test_each_tenant_has_its_own_script_namespace(backend):
    kf = start_keyfence(backend.port, SCRIPTS)
    try:
        with kf.raw("orders") as o, kf.raw("payments") as p:
            sha = o.cmd("SCRIPT", "LOAD", "return 'orders-script'")
            assert isinstance(sha, bytes) and len(sha) == 40
            assert p.cmd("EVALSHA", sha, 0) == RespError(
                "NOSCRIPT No matching script. Please use EVAL.")
            assert p.cmd("SCRIPT", "EXISTS", sha, "0" * 40) == [0, 0]
            assert o.cmd("SCRIPT", "EXISTS", sha, "0" * 40) == [1, 0]
            assert o.cmd("EVALSHA", sha.upper(), 0) == b"orders-script"
            # a tenant that runs the same body with EVAL owns it too
            assert p.cmd("EVAL", "return 'orders-script'", 0) == b"orders-script"
            assert p.cmd("EVALSHA", sha, 0) == b"orders-script"
            # SCRIPT FLUSH forgets only the caller's
            assert o.cmd("SCRIPT", "FLUSH") == "OK"
            assert o.cmd("EVALSHA", sha, 0) == RespError(
                "NOSCRIPT No matching script. Please use EVAL.")
            assert p.cmd("EVALSHA", sha, 0) == b"orders-script"
        # redis-py register_script falls back from NOSCRIPT to EVAL and keeps working
        r = kf.client("orders")
        incr = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
        assert incr(keys=["n"], args=[2]) == 2
        assert incr(keys=["n"], args=[3]) == 5
        r.close()
    finally:
        stop_keyfence(kf)


def test_a_script_past_max_script_ms_is_killed():
    # Redis serves other connections (SCRIPT KILL among them) during a script only after
    # busy-reply-threshold (5 s by default): it must be at most limits.max_script_ms.
    backend = RedisServer(extra_args=["--busy-reply-threshold", "100"]).start()
    kf = start_keyfence(backend.port, SCRIPTS)
    try:
        with kf.raw("orders", timeout=10) as o, kf.raw("payments") as p:
            t0 = time.monotonic()
            r = o.cmd("EVAL", "local i = 0 while true do i = i + 1 end", 0)
            took = time.monotonic() - t0
            print(f"looping script answered after {took:.2f} s: {r!r}")
            assert isinstance(r, RespError) and "killed" in r.text.lower(), r
            assert 0.25 < took < 3
            assert p.cmd("SET", "k", "v") == "OK"  # the server is not BUSY
            assert o.cmd("EVAL", "return 1", 0) == 1  # quick scripts run on
        assert metric_value(kf.metrics(), "keyfence_rejected_total", tenant="orders",
                            reason="script_timeout") == 1
        assert "SCRIPT KILL" in open(kf.log_path).read()
    finally:
        stop_keyfence(kf)
        backend.cleanup()


def test_idle_tenant_connections_are_closed(backend):
    kf = start_keyfence(backend.port, {"backend": {"acl": "per_tenant",
                                                   "tenant_connection_idle_ms": 300}})
    try:
        with kf.raw("orders") as o:
            assert o.cmd("SET", "k", "v") == "OK"
            assert "kf:shop@orders" in client_users(backend)
            deadline = time.monotonic() + 5
            while "kf:shop@orders" in client_users(backend) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "kf:shop@orders" not in client_users(backend), "idle connection kept"
            assert o.cmd("GET", "k") == b"v"  # opened again on demand
            assert "kf:shop@orders" in client_users(backend)
    finally:
        stop_keyfence(kf)
