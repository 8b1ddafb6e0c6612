"""Subscriptions keyfence keeps whole by itself (issue 8): a shard channel whose slot moves
to another node is subscribed again there (Redis 7 drops it with an unasked `sunsubscribe`);
a subscriber connection killed on the backend is replaced and its channels, patterns and
shard channels restored; the client sees none of it, and another tenant's subscriber on the
same names sees nothing of the first. When the backend stays away longer than
backend.subscriber_recovery_ms the client is closed with an error. UNSUBSCRIBE without
names keeps its place in the reply order.

Every loop here is bounded in count and time; every socket has a timeout."""

import time

import pytest

from conftest import (checked_cluster_keyfence, cluster_keyfence, monitored, running_cluster,
                      start_keyfence, stop_keyfence)
from harness import RedisServer, RespError, key_slot, wait_until

P = b"shop@orders:"
SUBSCRIBER_LOST = "ERR keyfence: subscriber connection to the backend was lost"


@pytest.fixture(scope="module")
def cluster():
    yield from running_cluster(3)


@pytest.fixture(scope="module")
def keyfence(cluster):
    yield from cluster_keyfence(cluster)


@pytest.fixture
def kf(keyfence, cluster):
    yield from checked_cluster_keyfence(keyfence, cluster)


def channels_on_every_master(cluster, tag: str):
    """One shard channel per master (client-side names)."""
    found = {}
    for i in range(5000):
        ch = f"{tag}{i}".encode()
        found.setdefault(cluster.node_for_slot(key_slot(P + ch)).port, ch)
        if len(found) == len(cluster.master_nodes()):
            return list(found.values())
    raise AssertionError("no channels")


def shard_numsub(node, backend_channel: bytes) -> int:
    with node.raw() as c:
        return c.cmd("PUBSUB", "SHARDNUMSUB", backend_channel)[1]


def assert_quiet(c, seconds: float = 0.4):
    """Nothing arrives on `c` for a while (no ack, error or message leaked)."""
    c.settimeout(seconds)
    with pytest.raises(OSError):
        r = c.read()
        pytest.fail(f"unexpected frame: {r!r}")
    c.settimeout(10)


@pytest.mark.parametrize("proto", [2, 3])
def test_shard_subscriber_follows_its_slot_to_another_node(kf, cluster, proto):
    ch = b"moving-" + str(proto).encode()
    slot = key_slot(P + ch)
    src = cluster.node_for_slot(slot)
    dst = next(n for n in cluster.master_nodes() if n.port != src.port)
    with monitored(cluster.nodes):
        with kf.raw("orders") as c, kf.raw("orders") as pub:
            if proto == 3:
                assert c.cmd("HELLO", "3")[b"proto"] == 3
            assert c.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
            assert c.cmd("SSUBSCRIBE", ch) == [b"ssubscribe", ch, 1]
            assert shard_numsub(src, P + ch) == 1
            cluster.move_slot(slot, dst)
            # The old owner dropped the channel; keyfence subscribed it on the new one.
            wait_until(lambda: shard_numsub(dst, P + ch) == 1, 5, what="resubscribed on dst")
            assert shard_numsub(src, P + ch) == 0
            assert_quiet(c)  # the server-side sunsubscribe was not forwarded
            assert pub.cmd("SPUBLISH", ch, "after-move") == 1
            assert c.read() == [b"smessage", ch, b"after-move"]
            pub.cmd("PUBLISH", "news", "still")  # a cluster counts the node's subscribers only
            assert c.read() == [b"message", b"news", b"still"]
            # The client's counts never dipped: its next acks are Redis's.
            assert c.cmd("SUNSUBSCRIBE", ch) == [b"sunsubscribe", ch, 0]
            assert shard_numsub(dst, P + ch) == 0
            assert c.cmd("UNSUBSCRIBE", "news") == [b"unsubscribe", b"news", 0]


def kill_subscribers(nodes):
    killed = 0
    for n in nodes:
        with n.raw() as c:
            killed += c.cmd("CLIENT", "KILL", "TYPE", "pubsub")
    return killed


def test_killed_subscriber_connections_are_restored(kf, cluster):
    """Both tenants subscribe to the same client names; every subscriber connection on
    every node is killed; each tenant's subscriptions come back, each gets only its own
    messages, neither sees an error or an extra ack."""
    chans = channels_on_every_master(cluster, "rs")
    with monitored(cluster.nodes):
        with kf.raw("orders") as mine, kf.raw("payments") as theirs, \
                kf.raw("orders") as pub, kf.raw("payments") as ppub:
            for c in (mine, theirs):
                assert c.cmd("SUBSCRIBE", "news", "alerts") == [b"subscribe", b"news", 1]
                assert c.read() == [b"subscribe", b"alerts", 2]
                assert c.cmd("PSUBSCRIBE", "ev.*") == [b"psubscribe", b"ev.*", 3]
                c.send("SSUBSCRIBE", chans[0])
                for ch in chans[1:]:
                    c.send("SSUBSCRIBE", ch)
                assert [c.read()[2] for _ in chans] == [1, 2, 3]
            # one connection per node serving a tenant's channels (the classic one shares)
            links = sum(len({cluster.node_for_slot(key_slot(pfx + ch)).port for ch in chans})
                        for pfx in (P, b"shop@payments:"))
            assert kill_subscribers(cluster.nodes) >= links

            def restored():
                # every client channel has its two subscribers (one per tenant) again
                numpat = 0
                for n in cluster.nodes:  # counted per node
                    with n.raw() as x:
                        numpat += x.cmd("PUBSUB", "NUMPAT")
                if numpat != 2:
                    return False
                for ch in chans:
                    for pfx in (P, b"shop@payments:"):
                        if shard_numsub(cluster.node_for_slot(key_slot(pfx + ch)), pfx + ch) != 1:
                            return False
                return True
            wait_until(restored, 5, what="subscriptions restored on new connections")
            # Classic channels may be restored on any node: PUBLISH reaches them everywhere
            # (its count is of the receiving node's subscribers only, so it is not checked).
            for c, p in ((mine, pub), (theirs, ppub)):
                p.cmd("PUBLISH", "news", "n")
                assert c.read() == [b"message", b"news", b"n"]
                p.cmd("PUBLISH", "ev.x", "e")
                assert c.read() == [b"pmessage", b"ev.*", b"ev.x", b"e"]
                for ch in chans:
                    assert p.cmd("SPUBLISH", ch, b"s-" + ch) == 1
                    assert c.read() == [b"smessage", ch, b"s-" + ch]
            assert_quiet(mine)
            assert_quiet(theirs)
            # Counts are whole again; UNSUBSCRIBE without names acks each channel in order.
            mine.send("UNSUBSCRIBE")
            mine.send("PING")
            acks = [mine.read() for _ in range(2)]
            assert sorted(a[1] for a in acks) == [b"alerts", b"news"]
            assert [a[2] for a in acks] == [2, 1]  # one pattern is left
            assert mine.read() == [b"pong", b""]
            mine.send("SUNSUBSCRIBE")
            assert sorted(mine.read()[2] for _ in chans) == [0, 1, 2]
            assert mine.cmd("PUNSUBSCRIBE") == [b"punsubscribe", b"ev.*", 0]
            assert mine.cmd("PING") == "PONG"  # not subscribed any more
            # the other tenant kept everything
            ppub.cmd("PUBLISH", "alerts", "a")
            assert theirs.read() == [b"message", b"alerts", b"a"]


# --- standalone: the backend restarts, or stays away --------------------------------------

@pytest.fixture
def own_backend():
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


def test_subscriber_survives_a_backend_restart(own_backend):
    kf = start_keyfence(own_backend.port)
    try:
        with kf.raw("orders") as c, kf.raw("orders") as pub:
            assert c.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
            assert c.cmd("SSUBSCRIBE", "orders-sh") == [b"ssubscribe", b"orders-sh", 1]
            own_backend.restart()
            # The same port again: keyfence reconnects and subscribes again by itself.

            def numsub():
                with own_backend.raw() as x:
                    return (x.cmd("PUBSUB", "NUMSUB", P + b"news")[1],
                            x.cmd("PUBSUB", "SHARDNUMSUB", P + b"orders-sh")[1])
            wait_until(lambda: numsub() == (1, 1), 8, what="resubscribed after the restart")
            assert pub.cmd("PUBLISH", "news", "back") == 1
            assert c.read() == [b"message", b"news", b"back"]
            assert pub.cmd("SPUBLISH", "orders-sh", "sh") == 1
            assert c.read() == [b"smessage", b"orders-sh", b"sh"]
            assert c.cmd("PING") == [b"pong", b""]
    finally:
        stop_keyfence(kf)


def test_subscriber_closed_with_an_error_when_the_backend_stays_away(own_backend):
    kf = start_keyfence(own_backend.port, {"backend": {"subscriber_recovery_ms": 600}})
    try:
        with kf.raw("orders") as c, kf.raw("payments") as other:
            assert c.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
            own_backend.stop()
            t0 = time.monotonic()
            c.send("SUBSCRIBE", "more")  # waits for a connection, then is answered too
            c.settimeout(10)
            assert c.read() == RespError(SUBSCRIBER_LOST)
            r = c.read()
            assert r == RespError(SUBSCRIBER_LOST), r
            assert str(own_backend.port) not in str(r)
            assert c.is_closed()
            assert 0.5 < time.monotonic() - t0 < 8
            own_backend.start()
            # keyfence and the other tenant's connection carry on
            assert other.cmd("SET", "k", "v") == "OK"
    finally:
        stop_keyfence(kf)
