"""CLIENT for the tenant's own connections (issue 10, item 3): LIST shows every connection
of the tenant on every worker (ids, addresses as keyfence sees them, names, flags, the
current command) and none of another tenant's; KILL by ID, ADDR, USER, TYPE, SKIPME and the
old `CLIENT KILL addr` form closes the tenant's connections only; UNBLOCK ends a waiting
BLPOP with nil or -UNBLOCKED and cannot reach another tenant's client."""

import socket
import time

import pytest

from harness import RespError, wait_until


@pytest.fixture(autouse=True)
def _namespace_guard(monitor):
    yield
    monitor.assert_clean()


def listing(conn, *extra):
    raw = conn.cmd("CLIENT", "LIST", *extra)
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out = []
    for line in text.strip().splitlines():
        out.append(dict(f.split("=", 1) for f in line.split(" ") if "=" in f))
    return out


def closed(c, timeout=3.0):
    c.sock.settimeout(timeout)
    try:
        return c.sock.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


def test_list_shows_every_connection_of_the_tenant_and_only_its_own(kf):
    with kf.raw("orders") as me, kf.raw("payments") as theirs:
        others = [kf.raw("orders") for _ in range(4)]  # both workers
        try:
            for i, c in enumerate(others):
                assert c.cmd("CLIENT", "SETNAME", f"w{i}") == "OK"
            ids = {int(c.cmd("CLIENT", "ID")) for c in others} | {int(me.cmd("CLIENT", "ID"))}
            rows = listing(me)
            assert {int(r["id"]) for r in rows} == ids
            assert sorted(r["name"] for r in rows if r["name"]) == ["w0", "w1", "w2", "w3"]
            mine = [r for r in rows if int(r["id"]) == int(me.cmd("CLIENT", "ID"))][0]
            assert mine["cmd"] == "client|list" and mine["user"] == "orders"
            assert all(r["addr"].startswith("127.0.0.1:") for r in rows)
            assert [r["user"] for r in listing(theirs)] == ["payments"]
            one = int(others[0].cmd("CLIENT", "ID"))
            assert [int(r["id"]) for r in listing(me, "ID", one)] == [one]
        finally:
            for c in others:
                c.close()


def test_kill_filters_act_on_the_tenants_connections_only(kf):
    with kf.raw("orders") as me, kf.raw("payments") as theirs:
        a, b, c = (kf.raw("orders") for _ in range(3))
        theirs_id = int(theirs.cmd("CLIENT", "ID"))
        assert me.cmd("CLIENT", "KILL", "ID", theirs_id) == 0  # another tenant's: untouchable
        assert theirs.cmd("PING") == "PONG"
        assert me.cmd("CLIENT", "KILL", "ID", int(a.cmd("CLIENT", "ID"))) == 1
        assert closed(a)
        addr = [r["addr"] for r in listing(me) if int(r["id"]) == int(b.cmd("CLIENT", "ID"))][0]
        assert me.cmd("CLIENT", "KILL", addr) == "OK"  # the old form
        assert closed(b)
        r = me.cmd("CLIENT", "KILL", "127.0.0.1:1")
        assert isinstance(r, RespError) and r.text == "ERR No such client"
        # USER and SKIPME: every orders connection but me
        assert me.cmd("CLIENT", "KILL", "USER", "orders") == 1
        assert closed(c)
        assert me.cmd("PING") == "PONG" and theirs.cmd("PING") == "PONG"
        r = me.cmd("CLIENT", "KILL", "TYPE", "bogus")
        assert isinstance(r, RespError) and "Unknown client type" in r.text
        r = me.cmd("CLIENT", "KILL", "ID", "0")
        assert isinstance(r, RespError) and "greater than 0" in r.text
        # SKIPME no: the reply first, then the connection closes
        assert me.cmd("CLIENT", "KILL", "USER", "orders", "SKIPME", "no") == 1
        assert closed(me)
        assert theirs.cmd("PING") == "PONG"


def test_unblock_ends_a_waiting_blpop_of_the_tenant_only(kf):
    with kf.raw("orders") as me, kf.raw("orders") as w, kf.raw("payments") as theirs, \
            kf.raw("payments") as tw:
        wid, twid = int(w.cmd("CLIENT", "ID")), int(tw.cmd("CLIENT", "ID"))
        w.send("BLPOP", "q", 10)
        tw.send("BLPOP", "q", 10)
        wait_until(lambda: any(r.get("flags") == "b" for r in listing(me)), 5,
                   what="the BLPOP waits (flags=b)")
        assert me.cmd("CLIENT", "UNBLOCK", twid) == 0  # payments' worker: not ours
        t0 = time.monotonic()
        assert me.cmd("CLIENT", "UNBLOCK", wid) == 1
        assert w.read() is None and time.monotonic() - t0 < 5
        assert w.cmd("PING") == "PONG"
        w.send("BLPOP", "q", 10)
        wait_until(lambda: any(r.get("flags") == "b" for r in listing(me)), 5, what="BLPOP again")
        assert me.cmd("CLIENT", "UNBLOCK", wid, "ERROR") == 1
        r = w.read()
        assert isinstance(r, RespError) and r.text.startswith("UNBLOCKED"), r
        assert me.cmd("CLIENT", "UNBLOCK", wid) == 0  # not blocked any more
        assert theirs.cmd("RPUSH", "q", "x") == 1  # payments' waiter is still there
        assert tw.read() == [b"q", b"x"]


def test_unblock_never_loses_what_is_pipelined_behind_the_blocking_command(kf):
    with kf.raw("orders") as me, kf.raw("orders") as w:
        wid = int(w.cmd("CLIENT", "ID"))
        w.send("BLPOP", "q2", 2)
        w.send("SET", "after", "1")
        w.send("GET", "after")
        wait_until(lambda: any(r.get("flags") == "b" for r in listing(me)), 5, what="BLPOP waits")
        n = me.cmd("CLIENT", "UNBLOCK", wid)
        assert n in (0, 1)  # 0: something was already sent behind it, which must not be lost
        assert w.read() is None  # unblocked, or timed out after 2 s
        assert w.read() == "OK" and w.read() == b"1"
        wait_until(lambda: all(r.get("flags") != "b" for r in listing(me)), 5,
                   what="no longer blocked once served")
