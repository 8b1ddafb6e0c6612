"""Transactions exactly like Redis (issue 10, item 1): the same MULTI/EXEC/DISCARD/WATCH
sequences sent to a direct redis-server and through keyfence (to its own redis-server, so
both keyspaces hold only this client's keys) give the same replies, RESP2 and RESP3:
commands keyfence answers itself (PING, ECHO, CLIENT SETNAME/GETNAME, SELECT, DBSIZE,
CONFIG GET) are QUEUED and their replies sit at their positions of EXEC's array; a command
refused while queueing (unknown, wrong arity) makes EXEC abort; WATCH state after EXEC,
DISCARD and RESET is Redis's. Plus redis-py's transaction pipeline with local commands, and
tenant isolation of a transaction's DBSIZE."""

import pytest

from conftest import cluster_keyfence, monitored, running_cluster, start_keyfence, stop_keyfence
from harness import RawConn, RedisServer, RespError


def norm(reply):
    """Error replies compared by text, everything else as is."""
    if isinstance(reply, RespError):
        return ("error", reply.text)
    if isinstance(reply, list):
        return [norm(x) for x in reply]
    return reply


SEQUENCES = {
    "locals interleaved": [
        ("MULTI",), ("SET", "a", "b"), ("PING",), ("ECHO", "hi"), ("GET", "a"), ("PING", "x"),
        ("EXEC",)],
    "locals only": [("MULTI",), ("PING",), ("ECHO", "e"), ("EXEC",)],
    "empty": [("MULTI",), ("EXEC",)],
    "client name at exec": [
        ("MULTI",), ("CLIENT", "SETNAME", "worker-1"), ("CLIENT", "GETNAME"), ("EXEC",),
        ("CLIENT", "GETNAME")],
    "select and config": [
        ("MULTI",), ("SELECT", "0"), ("CONFIG", "GET", "maxmemory-policy"), ("SET", "c", "1"),
        ("EXEC",)],
    "dbsize": [("SET", "k1", "1"), ("SET", "k2", "2"), ("MULTI",), ("DBSIZE",), ("INCR", "k1"),
               ("EXEC",)],
    "unknown command aborts": [("MULTI",), ("SET", "a", "1"), ("NOSUCHCMD", "x"), ("EXEC",),
                               ("GET", "a")],
    "wrong arity aborts": [("MULTI",), ("SET", "a", "2"), ("GET",), ("PING",), ("EXEC",),
                           ("GET", "a")],
    "syntax errors are elements": [
        ("MULTI",), ("SET", "a", "1"), ("SINTERCARD", "-1", "a"), ("ZUNION", "x", "a"),
        ("COPY", "a", "b", "DB", "x"), ("PING",), ("EXEC",)],
    "runtime error stays an element": [
        ("SET", "s", "x"), ("MULTI",), ("INCR", "s"), ("PING",), ("EXEC",)],
    "nested multi and watch inside": [
        ("MULTI",), ("MULTI",), ("WATCH", "a"), ("PING",), ("EXEC",)],
    "exec and discard without multi": [("EXEC",), ("DISCARD",)],
    "discard then exec": [("MULTI",), ("PING",), ("DISCARD",), ("EXEC",), ("PING",)],
    "watch then discard unwatches": [
        ("WATCH", "w"), ("MULTI",), ("DISCARD",), ("SET", "w", "changed"), ("MULTI",),
        ("GET", "w"), ("PING",), ("EXEC",)],
    "watch own change aborts": [
        ("WATCH", "w2"), ("SET", "w2", "mine"), ("MULTI",), ("PING",), ("GET", "w2"),
        ("EXEC",), ("MULTI",), ("PING",), ("EXEC",)],
    "unwatch keeps exec": [
        ("WATCH", "w3"), ("SET", "w3", "x"), ("UNWATCH",), ("MULTI",), ("ECHO", "ok"),
        ("EXEC",)],
    "reset ends the transaction": [("MULTI",), ("PING",), ("RESET",), ("EXEC",)],
}


def run(conn, seq, proto):
    if proto == 3:
        conn.cmd("HELLO", "3")
    return [norm(conn.cmd(*c)) for c in seq]


@pytest.fixture(scope="module")
def pair():
    direct, behind = RedisServer().start(), RedisServer().start()
    kf = start_keyfence(behind.port)
    yield direct, behind, kf
    stop_keyfence(kf)
    direct.cleanup()
    behind.cleanup()


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_same_replies_as_redis(pair, name, proto):
    direct, behind, kf = pair
    direct.client().flushall()
    behind.client().flushall()
    seq = SEQUENCES[name]
    with RawConn(direct.port) as d, kf.raw("orders") as k:
        want = run(d, seq, proto)
        got = run(k, seq, proto)
    assert got == want, f"{name} (RESP{proto}):\n  redis    {want}\n  keyfence {got}"


def test_watch_sees_another_clients_change_with_locals_queued(pair):
    _, behind, kf = pair
    with kf.raw("orders") as a, kf.raw("orders") as b:
        assert a.cmd("WATCH", "balance") == "OK"
        assert b.cmd("SET", "balance", "100") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("PING") == "QUEUED"
        assert a.cmd("SET", "balance", "0") == "QUEUED"
        assert a.cmd("EXEC") is None  # WATCH failed: no PONG either
        assert a.cmd("GET", "balance") == b"100"


def test_redis_py_transaction_pipeline_with_local_commands(pair):
    _, _, kf = pair
    r = kf.client("orders")
    pipe = r.pipeline(transaction=True)
    pipe.set("p", "1").ping().echo("e").incr("p").client_getname().get("p")
    assert pipe.execute() == [True, True, b"e", 2, None, b"2"]


def test_flushdb_inside_multi_aborts_the_transaction(pair):
    _, _, kf = pair
    with kf.raw("orders") as c:
        assert c.cmd("SET", "keep", "1") == "OK"
        assert c.cmd("MULTI") == "OK"
        r = c.cmd("FLUSHDB")
        assert isinstance(r, RespError) and "MULTI" in r.text, r
        r = c.cmd("EXEC")
        assert isinstance(r, RespError) and r.text.startswith("EXECABORT"), r
        assert c.cmd("GET", "keep") == b"1"


def test_queued_dbsize_counts_only_the_tenants_keys(pair):
    _, behind, kf = pair
    behind.client().flushall()
    with kf.raw("orders") as o, kf.raw("payments") as p:
        for i in range(5):
            assert p.cmd("SET", f"theirs{i}", i) == "OK"
        assert o.cmd("SET", "mine", "1") == "OK"
        assert o.cmd("MULTI") == "OK"
        assert o.cmd("DBSIZE") == "QUEUED"
        assert o.cmd("PING") == "QUEUED"
        assert o.cmd("EXEC") == [1, "PONG"]
        assert p.cmd("MULTI") == "OK" and p.cmd("DBSIZE") == "QUEUED"
        assert p.cmd("EXEC") == [5]


def test_cluster_transaction_with_locals_keeps_the_one_slot_rule():
    for cluster in running_cluster(3):
        for kf in cluster_keyfence(cluster):
            with monitored(cluster.nodes), kf.raw("orders") as c:
                for i in range(4):
                    assert c.cmd("SET", f"n{i}", i) == "OK"  # on several masters
                assert c.cmd("MULTI") == "OK"
                for cmd in (("SET", "{u}a", "1"), ("PING",), ("DBSIZE",), ("INCR", "{u}a"),
                            ("ECHO", "e")):
                    assert c.cmd(*cmd) == "QUEUED"
                # DBSIZE walks when queued: the queued SET is not counted (README)
                assert c.cmd("EXEC") == ["OK", "PONG", 4, 2, b"e"]
                assert c.cmd("MULTI") == "OK" and c.cmd("SET", "{u}a", "1") == "QUEUED"
                assert c.cmd("PING") == "QUEUED"
                r = c.cmd("SET", "{v}b", "1")  # another slot
                assert isinstance(r, RespError) and "CROSSSLOT" in r.text, r
                r = c.cmd("EXEC")
                assert isinstance(r, RespError) and r.text.startswith("EXECABORT"), r
