"""Keyspace notifications, namespaced (issue 10, item 5, first part): keyfence sets
backend.notify_keyspace_events on the node; a tenant's SUBSCRIBE/PSUBSCRIBE to
__keyspace@0__:<key or pattern> reaches only its own keys' events, with client-side names
(hash tags included), never another tenant's; __keyevent@0__:<event> messages (whose
payloads name keys of every tenant) reach a tenant only for its own keys, stripped;
PUBLISH to either (a forged event) is refused;
on a cluster backend they are subscribed on every master (a node emits its own keys' events).
MONITOR check: every channel keyfence subscribed to is inside a namespace."""

import socket

import pytest

from conftest import cluster_keyfence, monitored, running_cluster, start_keyfence, stop_keyfence
from harness import RedisServer, RespError


@pytest.fixture(scope="module")
def setup():
    srv = RedisServer().start()
    kf = start_keyfence(srv.port, {"backend": {"notify_keyspace_events": "KEA"}})
    yield srv, kf
    stop_keyfence(kf)
    srv.cleanup()


def nothing_more(c, timeout=0.5):
    c.sock.settimeout(timeout)
    try:
        c.read()
        return False
    except (socket.timeout, TimeoutError):
        return True


def test_keyfence_sets_notify_keyspace_events_on_the_node(setup):
    srv, _ = setup
    flags = srv.client().config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert set(flags) >= set("AKE")


@pytest.mark.parametrize("proto", [2, 3])
def test_each_tenant_sees_only_its_own_keys_events(setup, proto):
    srv, kf = setup
    with monitored([srv]), kf.raw("orders") as o, kf.raw("payments") as p, \
            kf.raw("orders") as ow, kf.raw("payments") as pw:
        if proto == 3:
            o.cmd("HELLO", "3")
            p.cmd("HELLO", "3")
        assert o.cmd("PSUBSCRIBE", "__keyspace@0__:*")[2] == 1
        assert o.cmd("SUBSCRIBE", "__keyspace@0__:user:{7}:cart")[2] == 2
        assert p.cmd("PSUBSCRIBE", "__keyspace@0__:*")[2] == 1
        assert ow.cmd("SET", "user:{7}:cart", "x") == "OK"
        assert o.read() == [b"message", b"__keyspace@0__:user:{7}:cart", b"set"]
        assert o.read() == [b"pmessage", b"__keyspace@0__:*", b"__keyspace@0__:user:{7}:cart",
                            b"set"]
        assert nothing_more(p), "payments saw an event of orders' key"
        assert pw.cmd("DEL", "nope") == 0 and pw.cmd("SET", "user:{7}:cart", "theirs") == "OK"
        assert p.read() == [b"pmessage", b"__keyspace@0__:*", b"__keyspace@0__:user:{7}:cart",
                            b"set"]
        assert nothing_more(o), "orders saw an event of payments' key"
        # a direct write of a key outside every namespace reaches no tenant
        srv.client().set("unowned", "1")
        assert nothing_more(o) and nothing_more(p)


@pytest.mark.parametrize("proto", [2, 3])
def test_keyevent_messages_carry_only_the_tenants_own_keys(setup, proto):
    srv, kf = setup
    with monitored([srv]), kf.raw("orders") as o, kf.raw("payments") as p, \
            kf.raw("orders") as ow, kf.raw("payments") as pw:
        if proto == 3:
            o.cmd("HELLO", "3")
            p.cmd("HELLO", "3")
        assert o.cmd("SUBSCRIBE", "__keyevent@0__:set") == [b"subscribe", b"__keyevent@0__:set", 1]
        assert o.cmd("PSUBSCRIBE", "__keyevent@0__:*")[2] == 2
        assert p.cmd("SUBSCRIBE", "__keyevent@0__:set")[2] == 1
        assert pw.cmd("SET", "theirs", "1") == "OK"
        srv.client().set("unowned", "1")
        assert p.read() == [b"message", b"__keyevent@0__:set", b"theirs"]
        assert nothing_more(o), "orders saw payments' or an unowned key's event"
        assert ow.cmd("SET", "user:{7}:cart", "x") == "OK"
        assert o.read() == [b"message", b"__keyevent@0__:set", b"user:{7}:cart"]
        assert o.read() == [b"pmessage", b"__keyevent@0__:*", b"__keyevent@0__:set",
                            b"user:{7}:cart"]
        assert nothing_more(p), "payments saw an event of orders' key"


def test_forged_and_foreign_event_channels_are_refused(setup):
    _, kf = setup
    with kf.raw("orders") as c:
        for cmd in (("PUBLISH", "__keyspace@0__:user:{7}:cart", "del"),
                    ("PUBLISH", "__keyevent@0__:del", "shop@payments:x"),
                    ("SUBSCRIBE", "__keyevent@1__:set"),
                    ("SUBSCRIBE", "__keyspace@1__:k")):
            r = c.cmd(*cmd)
            assert isinstance(r, RespError) and r.text.startswith("NOPERM"), (cmd, r)
        assert c.cmd("PING") == "PONG"


def test_bad_notify_flags_are_a_config_error(tmp_path):
    import subprocess
    from harness import keyfence_bin
    cfg = tmp_path / "k.yaml"
    cfg.write_text("cluster_name: shop\nlisteners: [{bind: 127.0.0.1:1, tenant: a}]\n"
                   "backend: {nodes: [127.0.0.1:2], notify_keyspace_events: KQ}\n"
                   "tenants: {a: {}}\n")
    r = subprocess.run([keyfence_bin(), "--check", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0
    assert "k.yaml:3:" in r.stdout + r.stderr and "'Q'" in r.stdout + r.stderr


def read_all(c, n, timeout=5.0):
    c.sock.settimeout(timeout)
    out = [c.read() for _ in range(n)]
    c.sock.settimeout(10)
    return out


def test_cluster_delivers_every_masters_events_once_and_only_the_tenants():
    from harness import key_slot
    for cluster in running_cluster(3):
        for kf in cluster_keyfence(cluster, notify_keyspace_events="KEA"):
            with monitored(cluster.nodes), kf.raw("orders") as o, kf.raw("orders") as w, \
                    kf.raw("payments") as pw:
                assert o.cmd("PSUBSCRIBE", "__keyspace@0__:*") == \
                    [b"psubscribe", b"__keyspace@0__:*", 1]
                assert o.cmd("SUBSCRIBE", "__keyevent@0__:set", "news") == \
                    [b"subscribe", b"__keyevent@0__:set", 2]
                assert o.read() == [b"subscribe", b"news", 3]
                keys = [f"ev:{i}" for i in range(24)]
                nodes = {cluster.node_for_slot(key_slot(b"shop@orders:" + k.encode())).port
                         for k in keys}
                assert len(nodes) == 3, "the keys should live on every master"
                for k in keys:
                    assert pw.cmd("SET", k, "theirs") == "OK"  # never reaches orders
                    assert w.cmd("SET", k, "v") == "OK"
                got = read_all(o, 2 * len(keys))
                spaces = sorted(m[2].decode() for m in got if m[0] == b"pmessage")
                events = sorted(m[2].decode() for m in got if m[0] == b"message")
                assert spaces == sorted(f"__keyspace@0__:{k}" for k in keys)
                assert all(m[3] == b"set" for m in got if m[0] == b"pmessage")
                assert events == sorted(keys)  # stripped key names, once each
                assert nothing_more(o)
                # a classic channel still arrives once, not once per master
                assert w.cmd("PUBLISH", "news", "hi") >= 1
                assert read_all(o, 1) == [[b"message", b"news", b"hi"]]
                assert nothing_more(o)
                # unsubscribing leaves no master sending
                assert o.cmd("PUNSUBSCRIBE") == [b"punsubscribe", b"__keyspace@0__:*", 2]
                assert w.cmd("SET", keys[0], "again") == "OK"
                assert read_all(o, 1) == [[b"message", b"__keyevent@0__:set", keys[0].encode()]]
                assert nothing_more(o)
                o.send("UNSUBSCRIBE")
                acks = read_all(o, 2)
                assert sorted(a[1] for a in acks) == [b"__keyevent@0__:set", b"news"]
                assert acks[-1][2] == 0
                assert w.cmd("SET", keys[1], "again") == "OK"
                assert nothing_more(o)
                assert o.cmd("PING") == "PONG"


def test_a_tenants_own_notify_keyspace_events_filters_its_events_only(setup):
    srv, kf = setup
    with monitored([srv]), kf.raw("orders") as o, kf.raw("payments") as p, \
            kf.raw("orders") as ow, kf.raw("payments") as pw, kf.raw("orders") as cfg:
        # the tenant starts with the backend's flags
        assert cfg.cmd("CONFIG", "GET", "notify-keyspace-events") == \
            [b"notify-keyspace-events", b"AKE"]
        # its own: list events on the keyspace channels only, nothing of strings
        assert cfg.cmd("CONFIG", "SET", "notify-keyspace-events", "Kl") == "OK"
        assert cfg.cmd("CONFIG", "GET", "notify-keyspace-events") == \
            [b"notify-keyspace-events", b"lK"]
        assert p.cmd("CONFIG", "GET", "notify-keyspace-events") == \
            [b"notify-keyspace-events", b"AKE"]  # another tenant's are unchanged
        assert o.cmd("PSUBSCRIBE", "__keyspace@0__:*")[2] == 1
        assert o.cmd("SUBSCRIBE", "__keyevent@0__:lpush")[2] == 2
        assert p.cmd("PSUBSCRIBE", "__keyspace@0__:*")[2] == 1
        assert ow.cmd("SET", "s", "x") == "OK"        # $: not asked for
        assert ow.cmd("LPUSH", "l", "x") == 1          # l on K: delivered; E: not asked for
        assert o.read() == [b"pmessage", b"__keyspace@0__:*", b"__keyspace@0__:l", b"lpush"]
        assert nothing_more(o)
        assert pw.cmd("SET", "s", "y") == "OK"         # payments still gets everything
        assert p.read() == [b"pmessage", b"__keyspace@0__:*", b"__keyspace@0__:s", b"set"]
        # errors as Redis words them; flags the backend does not send are refused
        bad = cfg.cmd("CONFIG", "SET", "notify-keyspace-events", "Q")
        assert bad.text.startswith("ERR CONFIG SET failed (possibly related to argument "
                                   "'notify-keyspace-events') - Invalid event class character")
        miss = cfg.cmd("CONFIG", "SET", "notify-keyspace-events", "Km")
        assert miss.text.startswith("ERR keyfence: notify-keyspace-events 'Km' asks for events "
                                    "the backend does not send"), miss.text
        assert cfg.cmd("CONFIG", "SET", "maxmemory", "1").code == "NOPERM"
        assert cfg.cmd("CONFIG", "SET", "notify-keyspace-events", "AKE") == "OK"
    flags = srv.client().config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert set(flags) >= set("AKE")  # the server's flags never change
