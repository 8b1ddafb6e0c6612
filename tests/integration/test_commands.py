"""Command coverage: reply stripping for commands that name keys, keyword key positions,
denials and their exact errors, emulated introspection (SELECT, CONFIG GET, INFO, CLIENT,
COMMAND), CLIENT REPLY, ECHO/PING/QUIT. Replies are read as RESP2 over raw sockets unless
noted, so they are checked exactly as keyfence sends them."""

import re
import threading

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import RespError

P = b"shop@orders:"
PP = b"shop@payments:"


@pytest.fixture(autouse=True)
def _namespace_guard(monitor):
    """Every test here: whatever keyfence sent to the backend stays in a namespace."""
    yield
    monitor.assert_clean()


@pytest.fixture
def c(kf):
    conn = kf.raw("orders")
    yield conn
    conn.close()


@pytest.fixture
def pay(kf):
    conn = kf.raw("payments")
    yield conn
    conn.close()


def ok(r):
    assert r == "OK", r
    return r


def is_err(r, prefix=""):
    return isinstance(r, RespError) and r.text.startswith(prefix)


# ---------------------------------------------------------------- KEYS / SCAN / RANDOMKEY

KEYSET = [b"user:1", b"user:2", b"user:{42}:cart", b"a", b"b", b"ab", b"c{42}x", b"star*key",
          b"starXkey"]


def load_keys(c, pay):
    for k in KEYSET:
        ok(c.cmd("SET", k, "v"))
    for k in (b"user:9", b"z", b"x{42}y"):
        ok(pay.cmd("SET", k, "v"))


@pytest.mark.parametrize("pattern,expected", [
    ("*", KEYSET),
    ("user:*", [b"user:1", b"user:2", b"user:{42}:cart"]),
    ("*{42}*", [b"user:{42}:cart", b"c{42}x"]),
    ("?", [b"a", b"b"]),
    ("[ab]", [b"a", b"b"]),
    ("star\\*key", [b"star*key"]),
    ("shop@*", []),
    ("*orders*", []),
])
def test_keys_patterns(kf, c, pay, pattern, expected):
    load_keys(c, pay)
    assert sorted(c.cmd("KEYS", pattern)) == sorted(expected)


def scan_all(c, *opts, max_calls=2000):
    cursor, out, calls = b"0", [], 0
    while True:
        r = c.cmd("SCAN", cursor, *opts)
        assert isinstance(r, list) and len(r) == 2, r
        cursor, page = r
        out.extend(page)
        calls += 1
        if cursor == b"0":
            return out
        assert calls < max_calls, "SCAN did not terminate"


def test_scan_full_iteration_exactly_once(kf, c, pay, backend):
    pipe = backend.pipeline(transaction=False)
    for i in range(300):
        pipe.set(P + b"s:%d" % i, i)
        pipe.set(PP + b"s:%d" % i, i)
    pipe.execute()
    got = scan_all(c, "COUNT", "10")
    assert len(got) == 300, f"{len(got)} keys, {len(set(got))} distinct"
    assert set(got) == {b"s:%d" % i for i in range(300)}
    got = scan_all(c, "MATCH", "s:1?", "COUNT", "7")
    assert sorted(got) == sorted(b"s:1%d" % i for i in range(10))


def test_scan_match_and_type(kf, c, pay):
    load_keys(c, pay)
    ok(c.cmd("SELECT", "0"))
    assert c.cmd("HSET", "user:h", "f", "v") == 1
    assert c.cmd("RPUSH", "user:l", "x") == 1
    assert sorted(scan_all(c, "MATCH", "user:*", "COUNT", "1000")) == sorted(
        [b"user:1", b"user:2", b"user:{42}:cart", b"user:h", b"user:l"])
    assert scan_all(c, "TYPE", "hash") == [b"user:h"]
    assert scan_all(c, "MATCH", "*{42}*", "TYPE", "string") in (
        [b"user:{42}:cart", b"c{42}x"], [b"c{42}x", b"user:{42}:cart"])
    assert scan_all(c, "MATCH", "user:9") == []


def test_randomkey_strips(kf, c, pay):
    ok(pay.cmd("SET", "other", "1"))
    assert c.cmd("RANDOMKEY") is None
    ok(c.cmd("SET", "user:{42}:cart", "1"))
    for _ in range(10):
        assert c.cmd("RANDOMKEY") == b"user:{42}:cart"


# ---------------------------------------------------------------- blocking / pop families

def test_blpop_brpop_return_client_keys(kf, c, backend):
    assert c.cmd("RPUSH", "q1", "a", "b") == 2
    assert c.cmd("BLPOP", "q0", "q1", "1") == [b"q1", b"a"]
    assert c.cmd("BRPOP", "q0", "q1", "1") == [b"q1", b"b"]
    assert c.cmd("RPUSH", "{t}q", "x") == 1
    assert c.cmd("BLPOP", "{t}q", "1") == [b"{t}q", b"x"]
    assert c.cmd("RPUSH", "q2", "m") == 1
    assert c.cmd("BRPOPLPUSH", "q2", "q3", "1") == b"m"
    assert backend.lrange(P + b"q3", 0, -1) == [b"m"]
    assert c.cmd("BLMOVE", "q3", "q4", "LEFT", "RIGHT", "1") == b"m"
    assert backend.lrange(P + b"q4", 0, -1) == [b"m"]


def test_mpop_families_strip(kf, c):
    assert c.cmd("RPUSH", "l2", "a", "b", "c") == 3
    assert c.cmd("LMPOP", "2", "l1", "l2", "LEFT", "COUNT", "2") == [b"l2", [b"a", b"b"]]
    assert c.cmd("BLMPOP", "1", "2", "l1", "l2", "RIGHT") == [b"l2", [b"c"]]
    assert c.cmd("LMPOP", "2", "l1", "l2", "LEFT") is None
    assert c.cmd("ZADD", "z2", "1", "m1", "2", "m2", "3", "m3") == 3
    assert c.cmd("ZMPOP", "2", "z1", "z2", "MIN") == [b"z2", [[b"m1", b"1"]]]
    assert c.cmd("BZMPOP", "1", "2", "z1", "z2", "MAX", "COUNT", "1") == [b"z2", [[b"m3", b"3"]]]
    assert c.cmd("BZPOPMIN", "z1", "z2", "1") == [b"z2", b"m2", b"2"]
    assert c.cmd("ZADD", "z3", "5", "x") == 1
    assert c.cmd("BZPOPMAX", "z3", "1") == [b"z3", b"x", b"5"]


def test_blpop_timeout_is_nil(kf, c):
    assert c.cmd("BLPOP", "empty", "0.2") is None


# ---------------------------------------------------------------- streams

def test_xread_xreadgroup_stream_names(kf, c, backend):
    id1 = c.cmd("XADD", "s1", "*", "f", "v")
    id2 = c.cmd("XADD", "s2", "*", "g", "w")
    assert isinstance(id1, bytes) and b"-" in id1
    r = c.cmd("XREAD", "COUNT", "10", "STREAMS", "s1", "s2", "0", "0")
    assert r == [[b"s1", [[id1, [b"f", b"v"]]]], [b"s2", [[id2, [b"g", b"w"]]]]]
    ok(c.cmd("XGROUP", "CREATE", "s1", "grp", "0"))
    ok(c.cmd("XGROUP", "CREATE", "s9", "grp", "$", "MKSTREAM"))
    assert backend.exists(P + b"s9") == 1
    assert backend.xinfo_groups(P + b"s1")[0]["name"] == b"grp"
    r = c.cmd("XREADGROUP", "GROUP", "grp", "consumer", "COUNT", "5", "STREAMS", "s1", ">")
    assert r == [[b"s1", [[id1, [b"f", b"v"]]]]]
    assert c.cmd("XACK", "s1", "grp", id1) == 1
    r = c.cmd("XREAD", "BLOCK", "200", "STREAMS", "s1", "$")
    assert r is None


# ---------------------------------------------------------------- keyword key positions

def test_sort_by_get_store(kf, c, backend):
    assert c.cmd("RPUSH", "ids", "1", "2", "3") == 3
    for i, w in ((1, 3), (2, 1), (3, 2)):
        ok(c.cmd("SET", f"w_{i}", w))
        ok(c.cmd("SET", f"o_{i}", f"obj{i}"))
        assert c.cmd("HSET", f"h_{i}", "name", f"n{i}") == 1
    assert c.cmd("SORT", "ids", "BY", "w_*", "GET", "o_*", "GET", "#") == \
        [b"obj2", b"2", b"obj3", b"3", b"obj1", b"1"]
    assert c.cmd("SORT", "ids", "BY", "nosort", "GET", "h_*->name") == [b"n1", b"n2", b"n3"]
    assert c.cmd("SORT_RO", "ids", "BY", "w_*", "DESC") == [b"1", b"3", b"2"]
    assert c.cmd("SORT", "ids", "BY", "w_*", "GET", "o_*", "STORE", "dst") == 3
    assert backend.lrange(P + b"dst", 0, -1) == [b"obj2", b"obj3", b"obj1"]
    # the payments tenant's identically named weights must not be consulted
    pay = kf.raw("payments")
    assert pay.cmd("RPUSH", "ids", "1", "2") == 2
    assert pay.cmd("SORT", "ids", "BY", "w_*", "GET", "o_*") == [None, None]
    pay.close()


def test_georadius_store(kf, c, backend):
    assert c.cmd("GEOADD", "sicily", "13.361389", "38.115556", "Palermo",
                 "15.087269", "37.502669", "Catania") == 2
    assert c.cmd("GEORADIUS", "sicily", "15", "37", "200", "km", "STORE", "near") == 2
    assert backend.zcard(P + b"near") == 2
    assert c.cmd("GEORADIUS", "sicily", "15", "37", "200", "km", "STOREDIST", "dist") == 2
    assert backend.zcard(P + b"dist") == 2
    assert c.cmd("GEOSEARCHSTORE", "near2", "sicily", "FROMLONLAT", "15", "37",
                 "BYRADIUS", "100", "km") == 1
    assert backend.zrange(P + b"near2", 0, -1) == [b"Catania"]


def test_object_memory_zunionstore(kf, c, backend):
    ok(c.cmd("SET", "num", "12345"))
    assert c.cmd("OBJECT", "ENCODING", "num") == b"int"
    ok(c.cmd("SET", "str", "hello"))
    assert c.cmd("OBJECT", "ENCODING", "str") == b"embstr"
    assert c.cmd("OBJECT", "ENCODING", "missing") is None
    mem = c.cmd("MEMORY", "USAGE", "str")
    assert isinstance(mem, int) and mem > 0
    assert c.cmd("ZADD", "za", "1", "x", "2", "y") == 2
    assert c.cmd("ZADD", "zb", "10", "y") == 1
    assert c.cmd("ZUNIONSTORE", "zu", "2", "za", "zb", "WEIGHTS", "1", "2") == 2
    assert backend.zrange(P + b"zu", 0, -1, withscores=True) == [(b"x", 1.0), (b"y", 22.0)]
    assert c.cmd("ZINTERSTORE", "zi", "2", "za", "zb") == 1
    assert c.cmd("ZUNION", "2", "za", "zb") == [b"x", b"y"]
    assert set(backend.keys("*")) == {P + k for k in (b"num", b"str", b"za", b"zb", b"zu",
                                                      b"zi")}


def test_copy_rename_with_tags(kf, c, backend):
    ok(c.cmd("SET", "src", "1"))
    assert c.cmd("COPY", "src", "dst{x}") == 1
    assert backend.get(P + b"dst{shop@orders:x}") == b"1"
    ok(c.cmd("RENAME", "src", "{src}moved"))
    assert backend.get(P + b"{shop@orders:src}moved") == b"1"
    assert sorted(c.cmd("KEYS", "*")) == [b"dst{x}", b"{src}moved"]


# ---------------------------------------------------------------- denials

NOPERM_RE = re.compile(r"^NOPERM this user has no permissions to run the '([^']+)' command$")


@pytest.mark.parametrize("args,names", [
    (["DEBUG", "SLEEP", "0"], ["debug"]),
    (["DEBUG", "OBJECT", "k"], ["debug"]),
    (["CONFIG", "SET", "maxmemory", "1"], ["config|set", "config"]),
    (["CONFIG", "REWRITE"], ["config|rewrite", "config"]),
    (["CONFIG", "RESETSTAT"], ["config|resetstat", "config"]),
    (["SHUTDOWN", "NOSAVE"], ["shutdown"]),
    (["MONITOR"], ["monitor"]),
    (["SWAPDB", "0", "1"], ["swapdb"]),
    (["MOVE", "k", "1"], ["move"]),
    (["MIGRATE", "127.0.0.1", "1", "k", "0", "100"], ["migrate"]),
    (["ACL", "LIST"], ["acl|list", "acl"]),
    (["ACL", "WHOAMI"], ["acl|whoami", "acl"]),
    (["CLIENT", "PAUSE", "100"], ["client|pause", "client"]),
    (["REPLICAOF", "127.0.0.1", "1"], ["replicaof"]),
    (["SLAVEOF", "NO", "ONE"], ["slaveof"]),
    (["SAVE"], ["save"]),
    (["BGSAVE"], ["bgsave"]),
    (["SLOWLOG", "GET"], ["slowlog|get", "slowlog"]),
    (["MODULE", "LIST"], ["module|list", "module"]),
    (["RESTORE", "k", "0", "x"], ["restore"]),
    (["SCRIPT", "FLUSH"], ["script|flush", "script"]),
    (["FCALL", "f", "0"], ["fcall"]),
    (["SYNC"], ["sync"]),
])
def test_denied_commands(kf, c, redis_server, backend, args, names):
    ok(c.cmd("SET", "k", "v"))
    r = c.cmd(*args)
    assert isinstance(r, RespError), f"{args} was not denied: {r!r}"
    m = NOPERM_RE.match(r.text)
    assert m, f"{args}: unexpected denial text {r.text!r}"
    assert m.group(1).lower() in names, f"{args}: names {m.group(1)!r}, expected one of {names}"
    # nothing happened on the backend, and the connection still works
    assert redis_server.running
    assert backend.get(P + b"k") == b"v"
    assert backend.config_get("maxmemory")["maxmemory"] == "0"
    assert backend.execute_command("ROLE")[0] == b"master"
    assert c.cmd("GET", "k") == b"v"


@pytest.mark.parametrize("args", [
    ["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"],
    ["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
    ["EVAL_RO", "return 1", "0"],
])
def test_scripts_denied_by_default(kf, c, args):
    r = c.cmd(*args)
    assert is_err(r, "NOPERM"), r


def read_reply_bytes(conn) -> bytes:
    """One RESP2 reply's exact bytes, read iteratively (RawConn.read recurses once per
    level: no use for a reply nested thousands deep)."""
    out, pending = bytearray(), 1
    while pending:
        line = conn._line()
        out += line + b"\r\n"
        pending -= 1
        t, n = line[:1], line[1:]
        if t in (b"$", b"!", b"=") and int(n) >= 0:
            out += conn._exact(int(n)) + b"\r\n"
        elif t in (b"*", b"~", b">", b"%") and int(n) > 0:
            pending += int(n) * (2 if t == b"%" else 1)
    return bytes(out)


DEEP_TABLE = "local t={} local c=t for i=1,10000 do c[1]={} c=c[1] end return t"


def test_eval_deeply_nested_reply_keeps_shared_connection(kf, redis_server):
    """EVAL returning a table nested 10,000 deep (Redis stops near 8,000 with an error
    element) comes back exactly as Redis sends it, and another client's GETs pipelined
    on the same shared backend connection (one worker, one connection) go on working."""
    with redis_server.raw() as d:
        d.send("EVAL", DEEP_TABLE, "0")
        direct = read_reply_bytes(d)
    assert direct.count(b"*1\r\n") > 5000, direct[-200:]
    skf = start_keyfence(redis_server.port, {
        "workers": 1, "tenants": {"orders": {"limits": {"allow_scripts": True}}}})
    try:
        other, script = skf.raw("orders"), skf.raw("orders")
        ok(other.cmd("SET", "k", "v"))
        stop, got = threading.Event(), []

        def getter():
            try:
                while not stop.is_set():
                    got.append(other.cmd("GET", "k"))
            except Exception as e:  # noqa: BLE001 - a reset connection shows up here
                got.append(e)

        t = threading.Thread(target=getter)
        t.start()
        try:
            for _ in range(3):
                script.send("EVAL", DEEP_TABLE, "0")
                assert read_reply_bytes(script) == direct
        finally:
            stop.set()
            t.join(10)
        assert got and all(r == b"v" for r in got), [r for r in got if r != b"v"][:3]
        assert other.cmd("GET", "k") == b"v" and script.cmd("GET", "k") == b"v"
        assert "protocol error" not in skf.log_tail(200)
        other.close()
        script.close()
    finally:
        stop_keyfence(skf)


def test_copy_to_other_db_denied(kf, c, redis_server):
    ok(c.cmd("SET", "k", "v"))
    r = c.cmd("COPY", "k", "k2", "DB", "1")
    assert isinstance(r, RespError), r
    with redis_server.raw() as d:
        assert d.cmd("SELECT", "1") == "OK"
        assert d.cmd("DBSIZE") == 0


@pytest.mark.parametrize("args", [["FOOBAR"], ["FOOBAR", "x"], ["JSON.GET", "k"],
                                  ["CLIENT", "NOSUCHSUB"]])
def test_unknown_commands_denied(kf, c, args):
    r = c.cmd(*args)
    assert isinstance(r, RespError), r
    assert r.code == "NOPERM" or r.text.startswith(("ERR unknown command",
                                                     "ERR unknown subcommand")), r
    assert c.cmd("PING") == "PONG"


@pytest.mark.parametrize("args,name", [
    (["GET"], "get"), (["SET", "k"], "set"), (["HSET", "h", "f"], "hset"),
    (["LPUSH", "l"], "lpush"), (["MGET"], "mget"), (["OBJECT", "ENCODING"], "object|encoding"),
])
def test_wrong_arity(kf, c, args, name):
    r = c.cmd(*args)
    assert r == RespError(f"ERR wrong number of arguments for '{name}' command"), r
    assert c.cmd("PING") == "PONG"


def test_function_flush_ok_function_list_denied(kf, c):
    assert c.cmd("FUNCTION", "FLUSH") == "OK"
    r = c.cmd("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() return 1 end)")
    assert isinstance(r, RespError), r


# ---------------------------------------------------------------- emulated introspection

def test_select(kf, c):
    ok(c.cmd("SELECT", "0"))
    r = c.cmd("SELECT", "1")
    assert is_err(r, "ERR"), r
    ok(c.cmd("SET", "still", "db0"))
    assert c.cmd("GET", "still") == b"db0"


def config_dict(r):
    assert isinstance(r, list) and len(r) % 2 == 0, r
    return dict(zip(r[0::2], r[1::2]))


def test_config_get_allow_list(kf, c, redis_server):
    assert config_dict(c.cmd("CONFIG", "GET", "maxmemory-policy")) == \
        {b"maxmemory-policy": b"noeviction"}
    assert c.cmd("CONFIG", "GET", "requirepass") == []
    assert c.cmd("CONFIG", "GET", "dir") == []
    assert c.cmd("CONFIG", "GET", "masterauth") == []
    every = config_dict(c.cmd("CONFIG", "GET", "*"))
    for secret in (b"dir", b"requirepass", b"masterauth", b"dbfilename", b"logfile",
                   b"bind", b"port", b"unixsocket"):
        assert secret not in every, f"CONFIG GET * exposes {secret!r}"
    assert str(redis_server.port).encode() not in every.values()
    assert b"maxmemory-policy" in every


def info_text(r) -> str:
    assert isinstance(r, bytes), r
    return r.decode()


def test_info(kf, c, pay, redis_server):
    for i in range(3):
        ok(c.cmd("SET", f"k{i}", "v"))
    for i in range(50):
        ok(pay.cmd("SET", f"p{i}", "v"))
    text = info_text(c.cmd("INFO"))
    assert "loading:0" in text
    assert "redis_version:7" in text
    port = str(redis_server.port)
    assert not re.search(rf"(^|[^0-9]){port}([^0-9]|$)", text), \
        f"INFO mentions the backend port {port}"
    assert "shop@" not in text
    for line in text.splitlines():
        if line.startswith("db"):
            assert line.startswith("db0:keys=3,"), line
        assert not line.startswith("cmdstat_"), line
    assert "keys=53" not in text
    ks = info_text(c.cmd("INFO", "keyspace"))
    assert "keys=53" not in ks and ("db0:keys=3," in ks or "db0" not in ks)
    assert "loading:0" in info_text(c.cmd("INFO", "persistence"))


def test_command_introspection(kf, c):
    n = c.cmd("COMMAND", "COUNT")
    assert isinstance(n, int) and n > 100, n
    info = c.cmd("COMMAND", "INFO", "get", "set")
    assert info[0][0] == b"get" and info[0][1] == 2
    assert info[1][0] == b"set" and info[1][1] == -3
    docs = c.cmd("COMMAND", "DOCS", "get")
    assert isinstance(docs, list) and docs and docs[0] == b"get"
    allc = c.cmd("COMMAND")
    assert isinstance(allc, list) and len(allc) > 100
    gk = c.cmd("COMMAND", "GETKEYS", "SET", "k", "v")
    assert gk == [b"k"] or isinstance(gk, RespError), gk
    assert b"shop@" not in repr(gk).encode()


def test_cluster_keyslot_uses_rewritten_key(kf, c):
    r = c.cmd("CLUSTER", "KEYSLOT", "user:{42}:cart")
    assert r == crc16(b"shop@orders:42") % 16384, r
    assert c.cmd("CLUSTER", "KEYSLOT", "plain") == crc16(b"shop@orders:plain") % 16384


def test_cluster_emulation_in_standalone_mode(kf):
    """DESIGN: in both backend modes keyfence describes itself as the single node owning
    every slot, so cluster-mode clients work."""
    port = kf.port("orders")
    with kf.raw("orders") as c:
        slots = c.cmd("CLUSTER", "SLOTS")
        assert isinstance(slots, list) and len(slots) == 1, slots
        assert slots[0][:2] == [0, 16383], slots
        assert slots[0][2][1] == port, slots
        assert b"cluster_state:ok" in c.cmd("CLUSTER", "INFO")
        nodes = c.cmd("CLUSTER", "NODES")
        assert isinstance(nodes, bytes), nodes
        lines = nodes.decode().strip().splitlines()
        assert len(lines) == 1 and "0-16383" in lines[0] and f":{port}" in lines[0], lines
        myid = c.cmd("CLUSTER", "MYID")
        assert isinstance(myid, bytes) and lines[0].startswith(myid.decode())
        shards = c.cmd("CLUSTER", "SHARDS")
        assert isinstance(shards, list) and len(shards) == 1, shards


def test_redis_py_cluster_client_in_standalone_mode(kf, backend):
    # redis-py's RedisCluster first checks INFO for cluster_enabled:1, then CLUSTER SLOTS
    # (PLATFORM.md, clients note 4)
    import redis
    rc = redis.RedisCluster(host="127.0.0.1", port=kf.port("orders"), socket_timeout=10)
    try:
        for i in range(20):
            assert rc.set(f"rc:{i}", i) is True
        assert rc.get("rc:7") == b"7"
        assert rc.mget_nonatomic(["rc:1", "rc:2"]) == [b"1", b"2"]
    finally:
        rc.close()
    assert backend.get(P + b"rc:7") == b"7"


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def test_client_commands(kf):
    a, b = kf.raw("orders"), kf.raw("orders")
    p = kf.raw("payments")
    try:
        ok(a.cmd("CLIENT", "SETNAME", "conn-a"))
        ok(b.cmd("CLIENT", "SETNAME", "conn-b"))
        ok(p.cmd("CLIENT", "SETNAME", "conn-pay"))
        assert a.cmd("CLIENT", "GETNAME") == b"conn-a"
        ida, idb = a.cmd("CLIENT", "ID"), b.cmd("CLIENT", "ID")
        assert isinstance(ida, int) and isinstance(idb, int) and ida != idb
        info = a.cmd("CLIENT", "INFO").decode()
        assert f"id={ida} " in info and "name=conn-a" in info, info
        lst = a.cmd("CLIENT", "LIST").decode()
        # "own connections only": this connection, maybe the tenant's others, never
        # another tenant's, never the backend's
        assert "name=conn-a" in lst and f"id={ida} " in lst, lst
        assert "conn-pay" not in lst, lst
        assert "user=payments" not in lst and "shop@" not in lst, lst
        if "name=conn-b" in lst:
            assert f"id={idb} " in lst
        plst = p.cmd("CLIENT", "LIST").decode()
        assert "conn-a" not in plst and "conn-pay" in plst
    finally:
        a.close()
        b.close()
        p.close()


def test_client_setinfo(kf, c):
    """DESIGN: CLIENT SETINFO is answered by keyfence (clients send it on connect)."""
    ok(c.cmd("CLIENT", "SETINFO", "LIB-NAME", "mylib"))
    ok(c.cmd("CLIENT", "SETINFO", "LIB-VER", "1.2.3"))
    info = c.cmd("CLIENT", "INFO").decode()
    assert "lib-name=mylib" in info and "lib-ver=1.2.3" in info, info


def test_client_reply_off_on_skip(kf, c, backend):
    # OFF: no replies until ON (whose +OK is the next thing we read)
    c.send("CLIENT", "REPLY", "OFF")
    c.send("SET", "r1", "1")
    c.send("GET", "r1")
    c.send("CLIENT", "REPLY", "ON")
    assert c.read() == "OK"
    assert backend.get(P + b"r1") == b"1"
    # SKIP: exactly the next command's reply is dropped
    c.send("CLIENT", "REPLY", "SKIP")
    c.send("SET", "r2", "2")
    c.send("GET", "r2")
    assert c.read() == b"2"
    assert c.cmd("PING") == "PONG"
    # other clients were not affected
    with kf.raw("orders") as other:
        assert other.cmd("GET", "r1") == b"1"


def test_echo_ping_quit(kf, c):
    assert c.cmd("ECHO", "hello\r\nworld") == b"hello\r\nworld"
    assert c.cmd("PING") == "PONG"
    assert c.cmd("PING", "msg") == b"msg"
    assert c.cmd("QUIT") == "OK"
    assert c.is_closed(3)


def test_reset(kf, c):
    ok(c.cmd("CLIENT", "SETNAME", "n"))
    assert c.cmd("RESET") == "RESET"
    assert c.cmd("CLIENT", "GETNAME") is None
    assert c.cmd("PING") == "PONG"
