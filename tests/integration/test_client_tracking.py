"""Client-side caching, namespaced (issue 10, item 4): CLIENT TRACKING in default mode,
BCAST (with PREFIX in the namespace, and without PREFIX confined to it), OPTIN/OPTOUT with
CLIENT CACHING, NOLOOP, REDIRECT to another connection of the same tenant (RESP2
`__redis__:invalidate` messages), GETREDIR and TRACKINGINFO. Invalidations carry client-side
names, come after the reply of the read they invalidate, and never name another tenant's
key; another tenant's writes, even to the same client-side names, send nothing."""

import socket

import pytest

from harness import RespError, RespPush, wait_until


@pytest.fixture(autouse=True)
def _namespace_guard(monitor):
    yield
    monitor.assert_clean()


def resp3(kf, tenant="orders"):
    c = kf.raw(tenant)
    hello = c.cmd("HELLO", 3)
    assert not isinstance(hello, RespError), hello
    return c


def pushes(c, timeout=0.3):
    """Every push that arrives within `timeout` (no request outstanding)."""
    got = []
    c.settimeout(timeout)
    try:
        while True:
            got.append(c.read())
    except (socket.timeout, TimeoutError):
        pass
    finally:
        c.settimeout(10)
    return got


def invalidated(c, timeout=0.3):
    out = []
    for p in pushes(c, timeout):
        assert isinstance(p, RespPush) and p[0] == b"invalidate", p
        out.append(None if p[1] is None else [k.decode() for k in p[1]])
    return out


def test_default_mode_invalidates_keys_read_with_client_names_only_for_its_tenant(kf, backend):
    with resp3(kf) as me, kf.raw("orders") as writer, kf.raw("payments") as theirs:
        assert me.cmd("CLIENT", "TRACKING", "ON") == "OK"
        assert writer.cmd("SET", "k", "v1") == "OK"
        assert me.cmd("GET", "k") == b"v1"
        assert me.cmd("GET", "unread-later") is None
        # another tenant's writes to the same client-side names: nothing
        assert theirs.cmd("SET", "k", "x") == "OK"
        assert theirs.cmd("DEL", "unread-later") == 0
        assert invalidated(me) == []
        assert writer.cmd("SET", "k", "v2") == "OK"
        assert invalidated(me) == [["k"]]
        # once invalidated, no longer tracked until read again
        assert writer.cmd("SET", "k", "v3") == "OK"
        assert invalidated(me) == []
        assert me.cmd("GET", "k") == b"v3"
        backend.set("shop@orders:k", "direct")  # any writer, the backend's own too
        assert invalidated(me) == [["k"]]
        # a key never read: nothing
        assert writer.cmd("SET", "other", "v") == "OK"
        assert invalidated(me) == []
        assert me.cmd("CLIENT", "TRACKING", "OFF") == "OK"
        assert me.cmd("GET", "k") == b"direct"
        assert writer.cmd("SET", "k", "after-off") == "OK"
        assert invalidated(me) == []


def test_invalidation_follows_the_reply_of_a_read_in_flight(kf):
    with resp3(kf) as me, kf.raw("orders") as writer:
        assert me.cmd("CLIENT", "TRACKING", "ON") == "OK"
        # pipelined: the reads' replies come first, then the invalidations
        for i in range(50):
            writer.send("SET", f"p{i}", "old")
        for i in range(50):
            assert writer.read() == "OK"
        me.send_raw(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\np%d\r\n" % (len(str(i)) + 1, i)
                             for i in range(50)))
        for i in range(50):
            writer.send("SET", f"p{i}", "new")
        stream = []  # replies and pushes in the order they arrive
        while sum(1 for g in stream if not isinstance(g, RespPush)) < 50:
            stream.append(me.read())
        for i in range(50):
            assert writer.read() == "OK"
        stream += pushes(me, 0.5)
        replies = [g for g in stream if not isinstance(g, RespPush)]
        assert all(r in (b"old", b"new") for r in replies)
        # a read that returned the old value is followed by its key's invalidation
        seen = 0
        for n, g in enumerate(stream):
            if isinstance(g, RespPush):
                continue
            if g == b"old":
                later = [k.decode() for p in stream[n + 1:] if isinstance(p, RespPush)
                         for k in p[1]]
                assert f"p{seen}" in later, (seen, stream)
            seen += 1
        keys = sorted({k.decode() for p in stream if isinstance(p, RespPush) for k in p[1]})
        assert keys == sorted(f"p{i}" for i in range(50))


def test_bcast_prefix_is_inside_the_namespace_and_bare_bcast_is_confined(kf):
    with resp3(kf) as me, resp3(kf) as all_mine, kf.raw("orders") as writer, \
            kf.raw("payments") as theirs:
        assert me.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:") == "OK"
        assert all_mine.cmd("CLIENT", "TRACKING", "ON", "BCAST") == "OK"
        assert writer.cmd("SET", "user:1", "a") == "OK"
        assert writer.cmd("SET", "order:1", "b") == "OK"
        assert theirs.cmd("SET", "user:2", "c") == "OK"  # another tenant: never
        assert theirs.cmd("SET", "anything", "d") == "OK"
        assert invalidated(me) == [["user:1"]]
        assert invalidated(all_mine) == [["user:1"], ["order:1"]]
        info = me.cmd("CLIENT", "TRACKINGINFO")
        assert set(info[b"flags"]) == {b"on", b"bcast"}
        assert info[b"prefixes"] == [b"user:"] and info[b"redirect"] == 0


def test_optin_optout_and_caching(kf):
    with resp3(kf) as optin, resp3(kf) as optout, kf.raw("orders") as writer:
        assert optin.cmd("CLIENT", "TRACKING", "ON", "OPTIN") == "OK"
        assert optout.cmd("CLIENT", "TRACKING", "ON", "OPTOUT") == "OK"
        assert optin.cmd("GET", "a") is None          # not asked for: not tracked
        assert optin.cmd("CLIENT", "CACHING", "YES") == "OK"
        assert optin.cmd("GET", "b") is None          # tracked
        assert optin.cmd("GET", "c") is None          # CACHING was for one command
        assert optout.cmd("GET", "a") is None         # tracked
        assert optout.cmd("CLIENT", "CACHING", "NO") == "OK"
        assert optout.cmd("GET", "b") is None         # not tracked
        for k in ("a", "b", "c"):
            assert writer.cmd("SET", k, "v") == "OK"
        assert invalidated(optin) == [["b"]]
        assert invalidated(optout) == [["a"]]
        assert optin.cmd("CLIENT", "CACHING", "NO").text == \
            "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."


def test_noloop_skips_own_writes_only(kf):
    with resp3(kf) as me, kf.raw("orders") as writer:
        assert me.cmd("CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP") == "OK"
        assert me.cmd("SET", "mine", "1") == "OK"
        assert invalidated(me) == []
        assert writer.cmd("SET", "mine", "2") == "OK"
        assert invalidated(me) == [["mine"]]


def test_redirect_to_a_resp2_subscriber_of_the_same_tenant(kf):
    with kf.raw("orders") as sub, kf.raw("orders") as tracked, kf.raw("orders") as writer, \
            kf.raw("payments") as theirs:
        sub_id = sub.cmd("CLIENT", "ID")
        assert sub.cmd("SUBSCRIBE", "__redis__:invalidate") == \
            [b"subscribe", b"__redis__:invalidate", 1]
        # another tenant cannot redirect to it
        their = theirs.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", sub_id)
        assert isinstance(their, RespError)
        assert their.text == "ERR The client ID you want redirect to does not exist"
        assert tracked.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", sub_id) == "OK"
        assert tracked.cmd("CLIENT", "GETREDIR") == sub_id
        assert tracked.cmd("GET", "r") is None
        assert theirs.cmd("SET", "r", "x") == "OK"
        assert writer.cmd("SET", "r", "v") == "OK"
        msg = sub.read()
        assert msg == [b"message", b"__redis__:invalidate", [b"r"]]
        sub.settimeout(0.3)
        with pytest.raises((socket.timeout, TimeoutError)):
            sub.read()


def test_redirect_reaches_a_connection_on_the_other_worker(kf):
    subs = []
    try:
        with kf.raw("orders") as tracked, kf.raw("orders") as writer:
            my_worker = tracked.cmd("CLIENT", "ID") >> 40  # the worker index is in the id
            target = None
            for _ in range(32):  # connections spread over the workers by the kernel
                s = kf.raw("orders")
                subs.append(s)
                sid = s.cmd("CLIENT", "ID")
                if sid >> 40 != my_worker:
                    target = (s, sid)
                    break
            assert target is not None, "no connection landed on the other worker"
            sub, sid = target
            assert sub.cmd("SUBSCRIBE", "__redis__:invalidate")[0] == b"subscribe"
            assert tracked.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", sid) == "OK"
            assert tracked.cmd("GET", "far") is None
            assert writer.cmd("SET", "far", "v") == "OK"
            assert sub.read() == [b"message", b"__redis__:invalidate", [b"far"]]
    finally:
        for s in subs:
            s.close()


def test_backend_flush_sends_a_null_invalidation(kf, backend):
    with resp3(kf) as me, resp3(kf, "payments") as theirs:
        assert me.cmd("CLIENT", "TRACKING", "ON") == "OK"
        assert theirs.cmd("CLIENT", "TRACKING", "ON") == "OK"
        assert me.cmd("GET", "k") is None
        backend.flushall()  # the operator's: everyone's data is gone
        assert invalidated(me) == [None]
        assert invalidated(theirs) == [None]


def test_tenant_flushdb_invalidates_only_its_keys(kf):
    with resp3(kf) as me, resp3(kf, "payments") as theirs, kf.raw("orders") as writer:
        assert theirs.cmd("CLIENT", "TRACKING", "ON") == "OK"
        assert theirs.cmd("SET", "t1", "x") == "OK"
        assert theirs.cmd("GET", "t1") == b"x"
        assert me.cmd("CLIENT", "TRACKING", "ON") == "OK"
        assert writer.cmd("SET", "t1", "v") == "OK"
        assert me.cmd("GET", "t1") == b"v"
        assert writer.cmd("FLUSHDB") == "OK"
        assert invalidated(me) == [["t1"]]
        assert invalidated(theirs) == []


def test_info_and_errors_match_redis(kf, redis_server):
    direct = redis_server.raw()
    try:
        with resp3(kf) as me:
            bad = [
                ("CLIENT", "TRACKING", "maybe"),
                ("CLIENT", "TRACKING", "ON", "REDIRECT", "x"),
                ("CLIENT", "TRACKING", "ON", "PREFIX", "a"),
                ("CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"),
                ("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"),
                ("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"),
                ("CLIENT", "TRACKING", "ON", "FOO"),
                ("CLIENT", "CACHING", "YES"),
                ("CLIENT", "CACHING", "MAYBE"),
                ("CLIENT", "TRACKING"),
            ]
            assert direct.cmd("HELLO", 3)
            for c in bad:
                assert me.cmd(*c) == direct.cmd(*c), c
            for c in (("CLIENT", "GETREDIR"), ("CLIENT", "TRACKINGINFO")):
                assert me.cmd(*c) == direct.cmd(*c), c
            for c in (("CLIENT", "TRACKING", "ON", "OPTIN"), ("CLIENT", "CACHING", "YES"),
                      ("CLIENT", "TRACKINGINFO"), ("CLIENT", "TRACKING", "ON", "OPTOUT"),
                      ("CLIENT", "TRACKING", "ON", "BCAST"), ("CLIENT", "GETREDIR"),
                      ("CLIENT", "TRACKING", "OFF"), ("CLIENT", "TRACKINGINFO")):
                assert me.cmd(*c) == direct.cmd(*c), c
    finally:
        direct.close()
