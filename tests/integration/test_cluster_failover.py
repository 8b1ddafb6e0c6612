"""keyfence in cluster mode while the cluster changes under it: a live `redis-cli --cluster
reshard` under read/write load (ASK/MOVED followed, no error, no stale value), a master
killed and failed over to its replica (error replies, never a hang, for its slots while it
is down; the other masters keep answering promptly), pub/sub, sharded pub/sub, blocking
commands and transactions over a cluster, and SCAN visiting every master exactly once.

Every loop here is bounded in count and time; every socket has a timeout."""

import random
import socket
import subprocess
import threading
import time

import pytest

from conftest import checked_cluster_keyfence, cluster_keyfence, start_keyfence, stop_keyfence
from harness import (HOST, ConnectionClosed, MonitorChecker, RedisClusterNodes, RespError, cli_node,
                     key_slot, metric_value, wait_until)

P = b"shop@orders:"
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
CLUSTER_MODE = {"backend": {"mode": "cluster"}}


@pytest.fixture(scope="module")
def cluster():
    c = RedisClusterNodes(3)
    try:
        c.start()
    except Exception:
        c.cleanup()
        raise
    yield c
    c.cleanup()


@pytest.fixture(scope="module")
def keyfence(cluster):
    yield from cluster_keyfence(cluster)  # seeded with ONE node: it discovers the others


@pytest.fixture
def kf(keyfence, cluster):
    yield from checked_cluster_keyfence(keyfence, cluster)


@pytest.fixture
def monitors(cluster):
    ms = [MonitorChecker(n) for n in cluster.nodes]
    yield ms
    for m in ms:
        m.stop()


def redirects(kf, kind):
    return metric_value(kf.metrics(), "keyfence_backend_redirects_total", type=kind) or 0


def pipelined(c, cmds, batch=200):
    """Send commands in bounded batches; returns the replies in order."""
    out = []
    for i in range(0, len(cmds), batch):
        chunk = cmds[i:i + batch]
        for args in chunk:
            c.send(*args)
        out.extend(c.read() for _ in chunk)
    return out


def slot_ranges(cluster, node):
    """Sorted slots owned by `node` (from CLUSTER SLOTS)."""
    slots = []
    for start, end, master, *_ in cluster._slots():
        if master[1] == node.port:
            slots.extend(range(start, end + 1))
    return sorted(slots)


# --------------------------------------------------------------------------------------
# 1. live reshard under load
# --------------------------------------------------------------------------------------

def test_live_reshard_under_load(kf, cluster):
    N = 2000
    keys = [f"rk:{i}".encode() for i in range(N)]
    expect = {k: b"v0:" + k for k in keys}
    with kf.raw("orders", timeout=5) as c:
        assert pipelined(c, [("SET", k, v) for k, v in expect.items()]) == ["OK"] * N
    assert len(cluster.all_keys()) == N

    # move the first 1000 slots of one master to another (redis-cli takes a single
    # source's slots in ascending order); aim most of the load at keys in those slots
    src = cluster.node_for_slot(key_slot(P + keys[0]))
    dst = next(n for n in cluster.nodes if n.port != src.port)
    src_id, dst_id = cluster.node_id(src).decode(), cluster.node_id(dst).decode()
    moving = set(slot_ranges(cluster, src)[:1000])
    hot = [k for k in keys if key_slot(P + k) in moving]
    assert len(hot) > 50, len(hot)

    moved0, ask0 = redirects(kf, "moved"), redirects(kf, "ask")
    stop = threading.Event()
    stats = {"ops": 0, "gets": 0, "sets": 0}
    errors, wrong = [], []
    uncertain = set()  # keys whose last SET failed: value unknown until the next good SET

    def load():
        rnd = random.Random(7)
        deadline = time.monotonic() + 60
        conn = kf.raw("orders", timeout=5)
        seq = 0
        try:
            while not stop.is_set() and time.monotonic() < deadline and stats["ops"] < 500000:
                k = rnd.choice(hot) if rnd.random() < 0.8 else rnd.choice(keys)
                stats["ops"] += 1
                try:
                    if rnd.random() < 0.5:
                        seq += 1
                        v = b"v%d:" % seq + k
                        r = conn.cmd("SET", k, v)
                        stats["sets"] += 1
                        if r == "OK":
                            expect[k] = v
                            uncertain.discard(k)
                        else:
                            errors.append(("SET", k, r))
                            uncertain.add(k)
                    else:
                        r = conn.cmd("GET", k)
                        stats["gets"] += 1
                        if isinstance(r, RespError):
                            errors.append(("GET", k, r))
                        elif r != expect[k] and k not in uncertain:
                            wrong.append((k, expect[k], r))
                except (OSError, ConnectionClosed) as e:  # incl. socket.timeout (5 s)
                    errors.append(("io", k, repr(e)))
                    uncertain.add(k)
                    conn.close()
                    if len(errors) > 50:
                        return
                    conn = kf.raw("orders", timeout=5)
        finally:
            conn.close()

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        first = cli_node(cluster.nodes[0])
        r = subprocess.run(["redis-cli", *first[:-1], "--cluster", "reshard", first[-1],
                            "--cluster-from", src_id, "--cluster-to", dst_id,
                            "--cluster-slots", "1000", "--cluster-yes"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, (r.stdout.decode()[-2000:], r.stderr.decode()[-2000:])
        time.sleep(0.5)  # some load after the migration: stale slot map -> MOVED
    finally:
        stop.set()
        t.join(timeout=15)
    assert not t.is_alive(), "load thread did not stop"

    assert stats["gets"] > 100 and stats["sets"] > 100, stats
    assert not errors, f"{len(errors)} errors during the reshard ({stats}): {errors[:10]}"
    assert not wrong, f"{len(wrong)} stale/wrong values ({stats}): {wrong[:10]}"
    # the slots really moved, with their keys
    for s in list(moving)[:20]:
        assert cluster.node_for_slot(s).port == dst.port, s
    with dst.raw() as d:
        on_dst = set(d.cmd("KEYS", "*"))
    assert {P + k for k in hot} <= on_dst

    wait_until(lambda: redirects(kf, "moved") + redirects(kf, "ask") > moved0 + ask0, 3, 0.1,
               "a MOVED or ASK redirect to be counted")

    with kf.raw("orders", timeout=5) as c:
        got = pipelined(c, [("GET", k) for k in keys])
    bad = [(k, expect[k], g) for k, g in zip(keys, got) if g != expect[k]]
    assert not bad, f"{len(bad)} keys read back wrong after the reshard: {bad[:10]}"
    assert len(cluster.all_keys()) == N


# --------------------------------------------------------------------------------------
# 2. master failover
# --------------------------------------------------------------------------------------

@pytest.fixture
def ha_cluster():
    # 3 masters + 3 replicas; a short node timeout so failover takes seconds; partial
    # coverage so the surviving masters keep serving while one master's slots are down
    c = RedisClusterNodes(6, replicas=1, node_timeout=1000,
                          extra_args=["--cluster-require-full-coverage", "no"])
    try:
        c.start(timeout=40)
    except Exception:
        c.cleanup()
        raise
    yield c
    c.cleanup()


def repl_offset(node, field):
    with node.raw(timeout=2) as c:
        info = c.cmd("INFO", "replication").decode()
    for line in info.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    return -1


@pytest.fixture
def ha_keyfence(ha_cluster):
    # seeded with ONE master, the one the test kills: keyfence must rediscover the
    # cluster from the nodes it learnt (a fixture, so a failure report shows its log)
    seed = ha_cluster.master_nodes()[0]
    kf = start_keyfence(seed.port, {"backend": {"mode": "cluster", "notify_keyspace_events": "KEA"}},
                        backend_nodes=[f"{HOST}:{seed.port}"])
    kf.seed = seed
    yield kf
    stop_keyfence(kf)


def test_master_failover(ha_cluster, ha_keyfence):
    """SIGKILL the master that is keyfence's only seed node; its replica takes over.

    While it is down, requests for its slots get error replies (never a hang), requests
    for the other masters' slots keep answering within 1 s, and keyfence follows the
    promotion: the key reads back, and so does every other key."""
    _failover(ha_cluster, ha_keyfence.seed, ha_keyfence)


# keyfence must answer requests for a failed master's slots at once, and must follow a
# promotion within this long after the replica reports role master
FAIL_FAST_S = 1.0
FOLLOW_PROMOTION_S = 2.0


def _failover(cl, seed, kf):
    N = 300
    keys = [f"fk:{i}".encode() for i in range(N)]
    expect = {k: b"val:" + k for k in keys}
    with kf.raw("orders", timeout=5) as c:
        assert pipelined(c, [("SET", k, v) for k, v in expect.items()]) == ["OK"] * N

    # every replica has every write before the master dies
    def synced():
        for m in cl.master_nodes():
            off = repl_offset(m, "master_repl_offset")
            for r in cl.replicas_of(m):
                if repl_offset(r, "slave_repl_offset") < off:
                    return False
        return True
    wait_until(synced, 10, 0.1, "replicas to catch up")

    owner = {k: cl.node_for_slot(key_slot(P + k)).port for k in keys}
    victim = seed  # keyfence's only seed: it must rediscover the cluster from known nodes
    key = next(k for k in keys if owner[k] == victim.port)
    replica = cl.replica_of(victim)
    healthy = [k for k in keys if owner[k] != victim.port]
    assert len(healthy) > 50
    with kf.raw("orders", timeout=5) as c:
        assert c.cmd("GET", key) == expect[key]
    # A subscriber with a shard channel on the victim, and a classic channel.
    sch = next(ch for ch in (f"fsch{i}".encode() for i in range(5000))
               if cl.node_for_slot(key_slot(P + ch)).port == victim.port)
    sub = kf.raw("orders", timeout=5)
    assert sub.cmd("SUBSCRIBE", "fnews") == [b"subscribe", b"fnews", 1]
    assert sub.cmd("SSUBSCRIBE", sch) == [b"ssubscribe", sch, 1]
    # A keyspace-notification subscriber: on every master, so on the victim too.
    ks = kf.raw("orders", timeout=5)
    assert ks.cmd("PSUBSCRIBE", "__keyspace@0__:fk:*") == \
        [b"psubscribe", b"__keyspace@0__:fk:*", 1]

    stop = threading.Event()
    h = {"n": 0, "max": 0.0, "slow": [], "errors": [], "wrong": []}
    promoted = {}

    def healthy_load():
        deadline = time.monotonic() + 45
        conn = kf.raw("orders", timeout=5)
        try:
            i = 0
            while not stop.is_set() and time.monotonic() < deadline and h["n"] < 200000:
                k = healthy[i % len(healthy)]
                i += 1
                t0 = time.monotonic()
                try:
                    r = conn.cmd("GET", k)
                except (OSError, ConnectionClosed) as e:  # incl. socket.timeout (5 s)
                    h["errors"].append((k, repr(e), round(time.monotonic() - t0, 3)))
                    conn.close()
                    if len(h["errors"]) > 20:
                        return
                    conn = kf.raw("orders", timeout=5)
                    continue
                dt = time.monotonic() - t0
                h["n"] += 1
                h["max"] = max(h["max"], dt)
                if dt > 1.0:
                    h["slow"].append((k, round(dt, 3)))
                if isinstance(r, RespError):
                    h["errors"].append((k, r.text))
                elif r != expect[k]:
                    h["wrong"].append((k, expect[k], r))
                time.sleep(0.002)
        finally:
            conn.close()

    def watch_promotion(t_kill):
        deadline = time.monotonic() + 40
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                if cl.role(replica) == "master":
                    promoted["at"] = time.monotonic() - t_kill
                    return
            except OSError:
                pass
            time.sleep(0.05)

    t = threading.Thread(target=healthy_load, daemon=True)
    t.start()
    # timeline of the failed master's key: (s after kill, s to answer, reply)
    down = {"timeline": [], "hangs": [], "wrong": [], "io": []}
    recovered_after = None
    w = None
    try:
        time.sleep(0.3)
        t_kill = time.monotonic()
        cl.kill(victim)
        w = threading.Thread(target=watch_promotion, args=(t_kill,), daemon=True)
        w.start()
        conn = kf.raw("orders", timeout=5)
        try:
            while time.monotonic() - t_kill < 30:
                t0 = time.monotonic()
                try:
                    r = conn.cmd("GET", key)
                except socket.timeout:
                    down["hangs"].append(round(t0 - t_kill, 2))
                    conn.close()
                    conn = kf.raw("orders", timeout=5)
                    continue
                except (OSError, ConnectionClosed) as e:
                    down["io"].append(repr(e))
                    conn.close()
                    time.sleep(0.1)
                    conn = kf.raw("orders", timeout=5)
                    continue
                dt = time.monotonic() - t0
                if r == expect[key]:
                    recovered_after = time.monotonic() - t_kill
                    break
                if isinstance(r, RespError):
                    down["timeline"].append((round(t0 - t_kill, 2), round(dt, 3), r.text))
                else:
                    down["wrong"].append(r)
                time.sleep(0.1)
        finally:
            conn.close()
        time.sleep(0.5)  # a little more healthy traffic after the failover
    finally:
        stop.set()
        t.join(timeout=15)
        if w is not None:
            w.join(timeout=5)
    assert not t.is_alive(), "healthy-key load thread did not stop"

    summary = (f"replica promoted {promoted.get('at')} s after the kill; key read back after "
               f"{recovered_after} s; {len(down['timeline'])} error replies meanwhile "
               f"[(s after kill, s to answer, reply)]: {down['timeline'][:3]} ... "
               f"{down['timeline'][-3:]}; healthy GETs {h['n']}, max {h['max']:.3f} s")
    print(summary)
    assert not down["hangs"], (f"GET of the failed master's key hung (no reply in 5 s) at "
                               f"{down['hangs']} s after the kill; {summary}")
    assert not down["io"], f"keyfence closed the connection: {down['io'][:5]}; {summary}"
    assert not down["wrong"], f"the failed master's key read {down['wrong'][:5]}; {summary}"
    assert recovered_after is not None, f"GET {key!r} never succeeded within 30 s; {summary}"
    assert cl.role(replica) == "master"
    assert "at" in promoted
    assert h["n"] > 50, h["n"]
    assert not h["errors"], f"healthy masters' keys got errors: {h['errors'][:10]}; {summary}"
    assert not h["wrong"], f"healthy masters' keys read wrong: {h['wrong'][:10]}"
    assert not h["slow"], f"healthy masters' keys answered slowly (> 1 s): {h['slow'][:10]}"

    with kf.raw("orders", timeout=5) as c:
        got = pipelined(c, [("GET", k) for k in keys])
    bad = [(k, expect[k], g) for k, g in zip(keys, got) if g != expect[k]]
    assert not bad, f"{len(bad)} keys read back wrong after the failover: {bad[:10]}"

    # The subscriber kept its connection; keyfence subscribed it again where its channels
    # live now (SPUBLISH counts 0 until then, so exactly one message is delivered).
    with kf.raw("orders", timeout=5) as p:
        wait_until(lambda: p.cmd("SPUBLISH", sch, "after-failover") == 1, 15, 0.1,
                   "the shard subscriber restored on the promoted replica")
        assert sub.read() == [b"smessage", sch, b"after-failover"]
        p.cmd("PUBLISH", "fnews", "n")  # cluster-wide; its count is the node's own
        assert sub.read() == [b"message", b"fnews", b"n"]
    sub.close()

    # The keyspace subscriber is subscribed again on the promoted replica: the failed
    # master's keys' events reach it again (a SET sends one until they do).
    def event_for(k):
        with kf.raw("orders", timeout=5) as wr:
            assert wr.cmd("SET", k, expect[k]) == "OK"
        ks.sock.settimeout(0.5)
        try:
            while True:
                m = ks.read()
                if m == [b"pmessage", b"__keyspace@0__:fk:*", b"__keyspace@0__:" + k, b"set"]:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        finally:
            ks.sock.settimeout(5)
    wait_until(lambda: event_for(key), 15, 0.1, "keyspace events of the promoted replica")
    assert event_for(healthy[0])
    ks.close()

    # fail fast, and follow the promotion promptly
    slow_errors = [e for e in down["timeline"] if e[1] > FAIL_FAST_S]
    assert not slow_errors, (f"error replies for the failed master's slot took more than "
                             f"{FAIL_FAST_S} s: {slow_errors}; {summary}")
    assert recovered_after - promoted["at"] <= FOLLOW_PROMOTION_S, (
        f"keyfence followed the promotion only {recovered_after - promoted['at']:.2f} s after "
        f"it happened; {summary}")


# --------------------------------------------------------------------------------------
# 3. pub/sub, sharded pub/sub, blocking commands, transactions
# --------------------------------------------------------------------------------------

def cross_slot_pair(same_node: bool, cluster):
    for i in range(2000):
        a, b = f"xa{i}".encode(), f"xb{i}".encode()
        sa, sb = key_slot(P + a), key_slot(P + b)
        if sa == sb:
            continue
        na, nb = cluster.node_for_slot(sa).port, cluster.node_for_slot(sb).port
        if (na == nb) == same_node:
            return a, b
    raise AssertionError("no key pair found")


def test_cluster_pubsub_and_blocking(kf, cluster, monitors):
    sub, pub, other = kf.raw("orders", 5), kf.raw("orders", 5), kf.raw("payments", 5)
    try:
        # classic pub/sub: PUBLISH is broadcast over the cluster bus
        assert sub.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
        assert isinstance(other.cmd("PUBLISH", "news", "not-for-orders"), int)
        assert isinstance(pub.cmd("PUBLISH", "news", "hello"), int)
        assert sub.read() == [b"message", b"news", b"hello"]
        assert sub.cmd("UNSUBSCRIBE", "news") == [b"unsubscribe", b"news", 0]

        # sharded pub/sub: routed to the shard owning the channel's slot
        assert sub.cmd("SSUBSCRIBE", "orders-feed") == [b"ssubscribe", b"orders-feed", 1]
        assert other.cmd("SPUBLISH", "orders-feed", "not-for-orders") == 0
        assert pub.cmd("SPUBLISH", "orders-feed", "m1") == 1
        assert sub.read() == [b"smessage", b"orders-feed", b"m1"]
        assert sub.cmd("SUNSUBSCRIBE", "orders-feed") == [b"sunsubscribe", b"orders-feed", 0]
    finally:
        sub.close()
        other.close()

    # BLPOP waits on a dedicated connection and is woken by another client's LPUSH
    blk = kf.raw("orders", 5)
    try:
        blk.send("BLPOP", "queue", 4)
        time.sleep(0.3)
        t0 = time.monotonic()
        assert pub.cmd("SET", "unrelated", "x") == "OK"  # not stuck behind the BLPOP
        assert pub.cmd("GET", "unrelated") == b"x"
        assert time.monotonic() - t0 < 1.0
        assert pub.cmd("LPUSH", "queue", "job1") == 1
        assert blk.read() == [b"queue", b"job1"]
        # and a timeout answers nil
        assert blk.cmd("BLPOP", "empty", "0.2") is None
    finally:
        blk.close()

    a, b = kf.raw("orders", 5), kf.raw("orders", 5)
    try:
        # a transaction on keys of one slot
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "{cart}:n", "1") == "QUEUED"
        assert a.cmd("INCR", "{cart}:n") == "QUEUED"
        assert a.cmd("SET", "{cart}:owner", "ann") == "QUEUED"
        assert a.cmd("GET", "{cart}:owner") == "QUEUED"
        assert a.cmd("EXEC") == ["OK", 2, "OK", b"ann"]
        assert b.cmd("GET", "{cart}:n") == b"2"

        # keys in two slots (on two nodes, then on one node): CROSSSLOT, then EXECABORT
        for same_node in (False, True):
            x, y = cross_slot_pair(same_node, cluster)
            assert a.cmd("MULTI") == "OK"
            assert a.cmd("SET", x, "1") == "QUEUED"
            assert a.cmd("SET", y, "1") == RespError(CROSSSLOT), same_node
            r = a.cmd("EXEC")
            assert isinstance(r, RespError) and r.code == "EXECABORT", (same_node, r)
            assert a.cmd("EXISTS", x) == 0 and a.cmd("EXISTS", y) == 0
            assert a.cmd("PING") == "PONG"

        # WATCH + a conflicting write from another client: EXEC answers nil
        assert a.cmd("SET", "{w}v", "0") == "OK"
        assert a.cmd("WATCH", "{w}v") == "OK"
        assert b.cmd("SET", "{w}v", "theirs") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "{w}v", "mine") == "QUEUED"
        assert a.cmd("EXEC") is None
        assert a.cmd("GET", "{w}v") == b"theirs"
        # without a conflict it runs
        assert a.cmd("WATCH", "{w}v") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "{w}v", "mine") == "QUEUED"
        assert a.cmd("EXEC") == ["OK"]
        assert b.cmd("GET", "{w}v") == b"mine"
    finally:
        a.close()
        b.close()
        pub.close()
    for m in monitors:
        m.assert_clean()


# --------------------------------------------------------------------------------------
# 4. SCAN exactly once; a cluster client
# --------------------------------------------------------------------------------------

def test_cluster_clients_scan_exactly_once(kf, cluster, monitors):
    names = [f"item:{i}" for i in range(500)]
    with kf.raw("orders", 5) as o, kf.raw("payments", 5) as p:
        assert pipelined(o, [("SET", k, "o" + k) for k in names]) == ["OK"] * 500
        assert pipelined(p, [("SET", k, "p" + k) for k in names]) == ["OK"] * 500
        # keys only payments has: orders must never see them
        assert pipelined(p, [("SET", f"pay-only:{i}", 1) for i in range(50)]) == ["OK"] * 50

        seen, cursor, pages = [], b"0", 0
        for _ in range(2000):
            cursor, page = o.cmd("SCAN", cursor, "COUNT", 10)
            pages += 1
            seen.extend(page)
            if cursor == b"0":
                break
        assert cursor == b"0", "SCAN did not finish within 2000 calls"
        assert len(seen) == len(set(seen)), \
            f"SCAN returned duplicates: {[k for k in set(seen) if seen.count(k) > 1][:10]}"
        assert set(seen) == {k.encode() for k in names}, (
            f"missing {sorted({k.encode() for k in names} - set(seen))[:10]}, "
            f"extra {sorted(set(seen) - {k.encode() for k in names})[:10]}")
        assert pages >= 10, pages
        assert o.cmd("DBSIZE") == 500 and p.cmd("DBSIZE") == 550
    assert len(cluster.all_keys()) == 1050

    import redis
    rc = redis.RedisCluster(host=HOST, port=kf.port("orders"), socket_timeout=5,
                            socket_connect_timeout=5)
    try:
        assert rc.get("item:7") == b"oitem:7"
        assert rc.set("rc:new", "v") is True
        assert rc.get("rc:new") == b"v"
        assert rc.mget_nonatomic(names) == [("o" + k).encode() for k in names]
        assert rc.mget_nonatomic(["item:1", "nope", "rc:new"]) == [b"oitem:1", None, b"v"]
    finally:
        rc.close()
    with kf.raw("payments", 5) as p:
        assert p.cmd("GET", "item:7") == b"pitem:7"
        assert p.cmd("EXISTS", "rc:new") == 0
    for m in monitors:
        m.assert_clean()
