"""keyfence in front of a real Redis Cluster (3 masters on loopback, seeded with ONE node):
keys land on the node owning the slot of the REWRITTEN key, hash tags keep keys together,
multi-key commands across slots are split or refused with CROSSSLOT, KEYS/SCAN/DBSIZE
visit every master, cluster emulation (one node owning every slot), a real cluster client,
and MOVED/ASK during a live slot migration."""

import pytest

from conftest import checked_cluster_keyfence, cluster_keyfence, running_cluster
from harness import (HOST, MonitorChecker, RespError, key_slot,
                     metric_value, wait_until)

P = b"shop@orders:"
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"


@pytest.fixture(scope="module")
def cluster():
    yield from running_cluster(3)


@pytest.fixture(scope="module")
def keyfence(cluster):
    yield from cluster_keyfence(cluster)


@pytest.fixture
def kf(keyfence, cluster):
    yield from checked_cluster_keyfence(keyfence, cluster)


@pytest.fixture
def monitors(cluster):
    ms = [MonitorChecker(n) for n in cluster.nodes]
    yield ms
    for m in ms:
        m.stop()


def assert_monitors_clean(ms):
    for m in ms:
        m.assert_clean()


def test_keys_live_on_the_slot_of_the_rewritten_key(kf, cluster, monitors):
    with kf.raw("orders") as c:
        for i in range(200):
            assert c.cmd("SET", f"k:{i}", i) == "OK"
        for i in range(200):
            assert c.cmd("GET", f"k:{i}") == str(i).encode()
    per_node = {}
    for n in cluster.nodes:
        with n.raw() as d:
            keys = d.cmd("KEYS", "*")
            per_node[n.port] = keys
            for k in keys:
                assert k.startswith(P), k
                assert d.cmd("CLUSTER", "KEYSLOT", k) == key_slot(k)
                assert cluster.node_for_slot(key_slot(k)).port == n.port
    assert sum(len(v) for v in per_node.values()) == 200
    assert all(per_node.values()), "keys did not spread over every master"
    assert_monitors_clean(monitors)


def test_hash_tags_keep_keys_together(kf, cluster, monitors):
    with kf.raw("orders") as c:
        assert c.cmd("MSET", "user:{42}:a", "1", "user:{42}:b", "2") == "OK"
        assert c.cmd("MGET", "user:{42}:a", "user:{42}:b") == [b"1", b"2"]
        assert c.cmd("RENAME", "user:{42}:a", "user:{42}:c") == "OK"
        assert c.cmd("SUNIONSTORE", "{42}dst", "{42}s1", "{42}s2") == 0
        slot = key_slot(b"shop@orders:{shop@orders:42}")
        assert slot == key_slot(P + b"user:{shop@orders:42}:b")
        assert c.cmd("CLUSTER", "KEYSLOT", "user:{42}:b") == slot
    node = cluster.node_for_slot(slot)
    with node.raw() as d:
        assert sorted(d.cmd("KEYS", "*")) == [P + b"user:{shop@orders:42}:b",
                                              P + b"user:{shop@orders:42}:c"]
    assert_monitors_clean(monitors)


def find_cross_slot_pair():
    for i in range(1000):
        a, b = f"a{i}".encode(), f"b{i}".encode()
        sa, sb = key_slot(P + a), key_slot(P + b)
        if sa != sb:
            return a, b
    raise AssertionError("no pair")


def test_multi_key_across_slots_split_or_crossslot(kf, cluster, monitors):
    keys = [f"m{i}" for i in range(20)]
    assert len({key_slot(P + k.encode()) for k in keys}) > 1
    with kf.raw("orders") as c:
        args = [x for k in keys for x in (k, k.upper())]
        r = c.cmd("MSET", *args)
        if r == "OK":  # split across slots and merged
            assert c.cmd("MGET", *keys, "missing") == [k.upper().encode() for k in keys] + [None]
            assert c.cmd("EXISTS", *keys) == 20
            assert c.cmd("TOUCH", *keys) == 20
            assert c.cmd("DEL", *keys[:10]) == 10
            assert c.cmd("UNLINK", *keys) == 10
        else:
            assert r == RespError(CROSSSLOT), r
            assert c.cmd("MGET", *keys) == RespError(CROSSSLOT)
        # commands that cannot be split are refused like Redis Cluster refuses them
        a, b = find_cross_slot_pair()
        assert c.cmd("SET", a, "1") == "OK"
        assert c.cmd("RENAME", a, b) == RespError(CROSSSLOT)
        assert c.cmd("SUNIONSTORE", a, b, "x") == RespError(CROSSSLOT)
    assert_monitors_clean(monitors)


def scan_all(c, *opts):
    cursor, out = b"0", []
    for _ in range(5000):
        cursor, page = c.cmd("SCAN", cursor, *opts)
        out.extend(page)
        if cursor == b"0":
            return out
    raise AssertionError("SCAN did not terminate")


def test_keys_scan_dbsize_visit_every_master(kf, cluster, monitors):
    with kf.raw("orders") as c, kf.raw("payments") as p:
        for i in range(300):
            c.send("SET", f"s:{i}", i)
            p.send("SET", f"s:{i}", i)
        for i in range(300):
            assert c.read() == "OK" and p.read() == "OK"
        want = {f"s:{i}".encode() for i in range(300)}
        ks = c.cmd("KEYS", "*")
        assert len(ks) == 300 and set(ks) == want
        got = scan_all(c, "COUNT", "25")
        assert len(got) == 300 and set(got) == want, (len(got), len(set(got)))
        assert sorted(scan_all(c, "MATCH", "s:1?")) == sorted(f"s:1{i}".encode()
                                                             for i in range(10))
        assert c.cmd("DBSIZE") == 300
        assert c.cmd("RANDOMKEY") in want
        assert c.cmd("FLUSHDB") == "OK"
        assert c.cmd("DBSIZE") == 0
        assert p.cmd("DBSIZE") == 300
    assert len(cluster.all_keys()) == 300
    assert_monitors_clean(monitors)


def test_cluster_emulation(kf):
    port = kf.port("orders")
    with kf.raw("orders") as c:
        slots = c.cmd("CLUSTER", "SLOTS")
        assert len(slots) == 1, slots
        start, end, master = slots[0][:3]
        assert (start, end) == (0, 16383)
        assert master[0] in (b"127.0.0.1", HOST.encode()) and master[1] == port, master
        info = c.cmd("CLUSTER", "INFO")
        assert b"cluster_state:ok" in info
        nodes = c.cmd("CLUSTER", "NODES").decode().strip().splitlines()
        assert len(nodes) == 1 and "0-16383" in nodes[0] and f":{port}" in nodes[0], nodes
        myid = c.cmd("CLUSTER", "MYID")
        assert isinstance(myid, bytes) and nodes[0].startswith(myid.decode())
        shards = c.cmd("CLUSTER", "SHARDS")
        assert isinstance(shards, list) and len(shards) == 1, shards


def test_redis_py_cluster_client(kf):
    # redis-py's RedisCluster first checks INFO for cluster_enabled:1, then CLUSTER SLOTS
    # (PLATFORM.md, clients note 4)
    import redis
    rc = redis.RedisCluster(host=HOST, port=kf.port("orders"), socket_timeout=10)
    try:
        for i in range(50):
            assert rc.set(f"rc:{i}", i) is True
        assert [rc.get(f"rc:{i}") for i in range(50)] == [str(i).encode() for i in range(50)]
        assert rc.mset_nonatomic({"x{t}": 1, "y{t}": 2}) in (True, [True])  # redis-py 4.3 returns a list
        assert rc.mget_nonatomic(["x{t}", "y{t}"]) == [b"1", b"2"]
        pipe = rc.pipeline()
        for i in range(20):
            pipe.incr(f"ctr:{i}")
        assert pipe.execute() == [1] * 20
    finally:
        rc.close()


def test_moved_and_ask_during_slot_migration(kf, cluster, monitors):
    key = b"migrating"
    bk = P + key
    slot = key_slot(bk)
    src = cluster.node_for_slot(slot)
    dst = next(n for n in cluster.nodes if n.port != src.port)
    src_id, dst_id = cluster.node_id(src), cluster.node_id(dst)

    def redirects(t):
        return metric_value(kf.metrics(), "keyfence_backend_redirects_total", type=t) or 0

    with kf.raw("orders") as c:
        assert c.cmd("SET", key, "v1") == "OK"
        moved0, ask0 = redirects("moved"), redirects("ask")
        with dst.raw() as d, src.raw() as s:
            assert d.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == "OK"
            assert s.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == "OK"
            assert s.cmd("MIGRATE", HOST, dst.peer_port, "", 0, 5000, "KEYS", bk) == "OK"
            # mid-migration: the source answers -ASK for the moved key
            assert c.cmd("GET", key) == b"v1"
            assert c.cmd("SET", key, "v2") == "OK"
            for n in cluster.nodes:
                with n.raw() as x:
                    assert x.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id) == "OK"
        # after the migration: -MOVED, then keyfence's slot map follows
        assert c.cmd("GET", key) == b"v2"
        assert c.cmd("SET", key, "v3") == "OK"
        assert c.cmd("GET", key) == b"v3"
    with dst.raw() as d:
        assert d.cmd("GET", bk) == b"v3"
    wait_until(lambda: redirects("ask") > ask0, 3, 0.1, "an ASK redirect to be counted")
    wait_until(lambda: redirects("moved") > moved0, 3, 0.1, "a MOVED redirect to be counted")
    assert_monitors_clean(monitors)


def test_client_tracking_covers_every_master_and_info_keyspace_counts_them(kf, cluster,
                                                                           monitors):
    import socket as _socket
    from harness import RespPush
    with kf.raw("orders") as me, kf.raw("orders") as writer, kf.raw("payments") as theirs:
        assert me.cmd("HELLO", 3)[b"proto"] == 3
        assert me.cmd("CLIENT", "TRACKING", "ON") == "OK"
        keys = [f"t:{i}" for i in range(30)]  # spread over the three masters
        for k in keys:
            assert writer.cmd("SET", k, "v") == "OK"
            assert me.cmd("GET", k) == b"v"
        for k in keys:
            assert theirs.cmd("SET", k, "x") == "OK"
            assert writer.cmd("SET", k, "w") == "OK"
        got = set()
        me.settimeout(3)
        while len(got) < len(keys):
            p = me.read()
            assert isinstance(p, RespPush) and p[0] == b"invalidate", p
            got.update(k.decode() for k in p[1])
        assert got == set(keys)
        me.settimeout(0.3)
        try:
            extra = me.read()
        except (_socket.timeout, TimeoutError):
            extra = None
        assert extra is None, extra
        me.settimeout(10)
        nodes = {cluster.node_for_slot(key_slot(P + k.encode())).port for k in keys}
        assert len(nodes) == 3
        # INFO keyspace walks every master (figures at most 5 s old)
        wait_until(lambda: "db0:keys=30," in me.cmd("INFO", "keyspace").decode(), 8,
                   interval=0.5, what="INFO keyspace counts the 30 keys of every master")
    assert_monitors_clean(monitors)
