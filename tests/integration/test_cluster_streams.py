"""A client connection over a Redis Cluster is one ordered stream (issue 8):
commands pipelined behind a blocking command wait for it and then run on their
own slots; TRYAGAIN during a slot migration is retried within
backend.retry_budget_ms instead of failing after a few tries; SCAN fills pages
for a tenant with few keys among many."""

import threading
import time

import pytest

from conftest import checked_cluster_keyfence, cluster_keyfence, monitored, running_cluster
from harness import HOST, RespError, key_slot

P = b"shop@orders:"


@pytest.fixture(scope="module")
def cluster():
    yield from running_cluster(3)


@pytest.fixture(scope="module")
def keyfence(cluster):
    yield from cluster_keyfence(cluster, retry_budget_ms=8000)


@pytest.fixture
def kf(keyfence, cluster):
    yield from checked_cluster_keyfence(keyfence, cluster)


def keys_on_other_slots(base: bytes, n: int):
    """n client keys whose backend slots differ from base's and from each other."""
    used = {key_slot(P + base)}
    out = []
    for i in range(10000):
        k = f"k{i}".encode()
        s = key_slot(P + k)
        if s not in used:
            used.add(s)
            out.append(k)
            if len(out) == n:
                return out
    raise AssertionError("no keys")


def test_commands_pipelined_behind_blpop_run_after_it(kf, cluster):
    k1, k2 = keys_on_other_slots(b"jobs", 2)
    with monitored(cluster.nodes):
        with kf.raw("orders") as c, kf.raw("orders") as pusher:
            assert c.cmd("SET", k1, "one") == "OK"
            # One write: BLPOP (blocks), then GET and SET of other slots (ioredis/node-redis style).
            c.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$4\r\njobs\r\n$1\r\n2\r\n"
                       + b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k1), k1)
                       + b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\ntwo\r\n" % (len(k2), k2))
            time.sleep(0.3)
            assert pusher.cmd("RPUSH", "jobs", "job-1") == 1
            assert c.read() == [b"jobs", b"job-1"]
            assert c.read() == b"one"
            assert c.read() == "OK"
            # And when the BLPOP times out, the commands behind it still run in order.
            c.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$4\r\njobs\r\n$3\r\n0.5\r\n"
                       + b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k2), k2))
            assert c.read() is None
            assert c.read() == b"two"
            # A same-slot command still pipelines on the blocking command's connection.
            c.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$4\r\njobs\r\n$3\r\n0.3\r\n"
                       b"*2\r\n$4\r\nLLEN\r\n$4\r\njobs\r\n")
            assert c.read() is None
            assert c.read() == 0


def test_blpop_waiting_while_its_slot_moves_is_sent_again(kf, cluster):
    """The node answers a waiting BLPOP with MOVED when the slot leaves it; keyfence
    sends it again to the new owner: the client gets the element pushed after the move,
    and the same-slot command pipelined behind it, and no redirect."""
    q = b"moving-queue"
    slot = key_slot(P + q)
    src = cluster.node_for_slot(slot)
    dst = next(n for n in cluster.master_nodes() if n.port != src.port)
    with kf.raw("orders") as c, kf.raw("orders") as pusher:
        c.send("BLPOP", q, 5)
        c.send("LLEN", q)
        time.sleep(0.2)
        cluster.move_slot(slot, dst)
        time.sleep(0.2)
        assert pusher.cmd("RPUSH", q, "after-move") == 1
        assert c.read() == [q, b"after-move"]
        assert c.read() == 0
        with dst.raw() as d:
            assert d.cmd("CLUSTER", "COUNTKEYSINSLOT", slot) == 0  # popped on the new owner
        # the connection goes on normally, on any slot
        assert c.cmd("SET", "after", "1") == "OK" and c.cmd("GET", "after") == b"1"


def test_same_slot_mget_during_a_long_migration_is_retried(kf, cluster):
    a, b = b"{mig}a", b"{mig}b"
    ba, bb = P + b"{shop@orders:mig}a", P + b"{shop@orders:mig}b"
    slot = key_slot(ba)
    assert slot == key_slot(bb)
    src = cluster.node_for_slot(slot)
    dst = next(n for n in cluster.nodes if n.port != src.port)
    src_id, dst_id = cluster.node_id(src), cluster.node_id(dst)
    with kf.raw("orders") as c:
        assert c.cmd("MSET", a, "1", b, "2") == "OK"
        with dst.raw() as d, src.raw() as s:
            assert d.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == "OK"
            assert s.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == "OK"
            # Half the slot's keys moved: the source answers TRYAGAIN for a request on both.
            assert s.cmd("MIGRATE", HOST, dst.peer_port, "", 0, 5000, "KEYS", ba) == "OK"
            assert s.cmd("MGET", ba, bb) == RespError(
                "TRYAGAIN Multiple keys request during rehashing of slot")

            def finish():
                time.sleep(1.5)  # longer than the old 5-retry limit (0.6 s)
                with src.raw() as s2:
                    s2.cmd("MIGRATE", HOST, dst.peer_port, "", 0, 5000, "KEYS", bb)
                for n in cluster.nodes:
                    with n.raw() as x:
                        x.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

            t = threading.Thread(target=finish)
            t.start()
            start = time.monotonic()
            try:
                assert c.cmd("MGET", a, b) == [b"1", b"2"]
            finally:
                t.join()
            assert time.monotonic() - start >= 1.0  # it really waited for the migration


def test_scan_fills_pages_for_a_small_tenant_among_many_keys(kf, cluster):
    with kf.raw("payments") as other:
        for start in range(0, 20000, 1000):
            args = []
            for i in range(start, start + 1000):
                args += [f"bulk:{i}", "x"]
            assert other.cmd("MSET", *args) == "OK"
    with kf.raw("orders") as c:
        mine = {f"mine:{i}".encode() for i in range(8)}
        for k in mine:
            assert c.cmd("SET", k, "v") == "OK"
        cursor, seen, pages, empty = b"0", [], 0, 0
        while True:
            cursor, page = c.cmd("SCAN", cursor, "COUNT", "10")
            pages += 1
            empty += not page
            seen.extend(page)
            if cursor == b"0" or pages > 50:
                break
        assert sorted(seen) == sorted(mine)  # each key exactly once
        assert pages <= 3, f"{pages} pages ({empty} empty) for 8 keys"
        assert empty <= 1


def channels_on_every_master(cluster):
    """One shard channel per master (client-side names)."""
    found = {}
    for i in range(5000):
        ch = f"sch{i}".encode()
        port = cluster.node_for_slot(key_slot(P + ch)).port
        found.setdefault(port, ch)
        if len(found) == len(cluster.master_nodes()):
            return list(found.values())
    raise AssertionError("no channels")


@pytest.mark.parametrize("proto", [2, 3])
def test_subscriber_over_every_master(kf, cluster, proto):
    chans = channels_on_every_master(cluster)
    assert len(chans) == 3
    with monitored(cluster.nodes):
        with kf.raw("orders") as c, kf.raw("orders") as pub:
            if proto == 3:
                assert c.cmd("HELLO", "3")[b"proto"] == 3
            # One write: SUBSCRIBE, then SSUBSCRIBE to channels of all three masters.
            c.send("SUBSCRIBE", "news")
            c.send("SSUBSCRIBE", *chans)
            assert c.read() == [b"subscribe", b"news", 1]
            acks = [c.read() for _ in chans]
            assert sorted(a[1] for a in acks) == sorted(chans)
            assert sorted(a[2] for a in acks) == [1, 2, 3]  # the client's total
            assert all(a[0] == b"ssubscribe" for a in acks)
            for ch in chans:
                assert pub.cmd("SPUBLISH", ch, b"m-" + ch) == 1
                assert c.read() == [b"smessage", ch, b"m-" + ch]
            assert pub.cmd("PUBLISH", "news", "hello") == 1
            assert c.read() == [b"message", b"news", b"hello"]
            if proto == 3:
                # Regular commands while subscribed, on any slot: no redirect leaks.
                for i in range(20):
                    assert c.cmd("SET", f"sk{i}", i) == "OK"
                    assert c.cmd("GET", f"sk{i}") == str(i).encode()
            else:
                assert c.cmd("PING") == [b"pong", b""]
            c.send("SUNSUBSCRIBE")
            left = sorted(c.read()[2] for _ in chans)
            assert left == [0, 1, 2]
            assert c.cmd("UNSUBSCRIBE", "news") == [b"unsubscribe", b"news", 0]
            assert c.cmd("PING") in ("PONG", b"PONG")


def test_subscriptions_stay_in_the_tenant(kf, cluster):
    chans = channels_on_every_master(cluster)
    with kf.raw("orders") as mine, kf.raw("payments") as theirs, kf.raw("orders") as pub:
        mine.send("SSUBSCRIBE", *chans)
        theirs.send("SSUBSCRIBE", *chans)
        for _ in chans:
            mine.read()
            theirs.read()
        for ch in chans:
            assert pub.cmd("SPUBLISH", ch, "for-orders") == 1  # orders' subscriber only
        # one message per channel; from different nodes, in no guaranteed order
        got = sorted(tuple(mine.read()) for _ in chans)
        assert got == sorted((b"smessage", ch, b"for-orders") for ch in chans)
        theirs.settimeout(0.5)
        with pytest.raises(Exception):
            theirs.read()  # nothing reaches the other tenant


def test_big_key_migration_under_a_same_slot_mget_loop(kf, cluster):
    """A 50 MB list migrates while a client loops MGET over it and a neighbour key
    of the same slot: the client sees no error, no redirect, no backend address."""
    big, small = b"{bigmig}list", b"{bigmig}k"
    bbig, bsmall = P + b"{shop@orders:bigmig}list", P + b"{shop@orders:bigmig}k"
    slot = key_slot(bbig)
    src = cluster.node_for_slot(slot)
    dst = next(n for n in cluster.nodes if n.port != src.port)
    src_id, dst_id = cluster.node_id(src), cluster.node_id(dst)
    chunk = b"x" * 100_000
    with kf.raw("orders") as c:
        for _ in range(10):
            assert c.cmd("RPUSH", big, *([chunk] * 50)) > 0  # 500 x 100 KB = 50 MB
        assert c.cmd("SET", small, "v") == "OK"
    errors, rounds, stop = [], [0], threading.Event()

    def loop():
        with kf.raw("orders", timeout=30) as m:
            while not stop.is_set():
                r = m.cmd("MGET", small, "{bigmig}missing")
                if r != [b"v", None]:
                    errors.append(r)
                rounds[0] += 1

    t = threading.Thread(target=loop)
    t.start()
    try:
        time.sleep(0.2)
        with dst.raw(timeout=60) as d, src.raw(timeout=60) as s:
            assert d.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == "OK"
            assert s.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == "OK"
            assert s.cmd("MIGRATE", HOST, dst.peer_port, "", 0, 30000, "KEYS", bbig) == "OK"
            time.sleep(1.5)  # the slot is split: the MGET is retried (TRYAGAIN/ASK)
            assert s.cmd("MIGRATE", HOST, dst.peer_port, "", 0, 30000, "KEYS", bsmall) == "OK"
            for n in cluster.nodes:
                with n.raw() as x:
                    assert x.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id) == "OK"
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(timeout=30)
    assert not errors, errors[:3]
    assert rounds[0] > 10
    with kf.raw("orders") as c:
        assert c.cmd("LLEN", big) == 500
