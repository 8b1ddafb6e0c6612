"""Basic data commands through the sidecar listener (redis-cli and redis-py), checking
the backend directly for the namespace prefix and the hash-tag rule."""

import subprocess

import pytest

from harness import HOST, RespMap

P = b"shop@orders:"


@pytest.fixture(autouse=True)
def _namespace_guard(monitor):
    """Every test here: whatever keyfence sent to the backend stays in a namespace."""
    yield
    monitor.assert_clean()


def cli(kf, *args, listener="orders", stdin=None):
    r = subprocess.run(["redis-cli", "-h", HOST, "-p", str(kf.port(listener)), *args],
                       input=stdin, capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().rstrip("\n")


def backend_keys(backend):
    return set(backend.keys("*"))


def test_redis_cli_roundtrip(kf, backend):
    assert cli(kf, "SET", "greeting", "hello world") == "OK"
    assert cli(kf, "GET", "greeting") == "hello world"
    assert cli(kf, "INCR", "counter") == "1"
    assert cli(kf, "INCR", "counter") == "2"
    assert cli(kf, "EXISTS", "greeting") == "1"
    assert backend.get(P + b"greeting") == b"hello world"
    assert backend.get(P + b"counter") == b"2"
    assert backend_keys(backend) == {P + b"greeting", P + b"counter"}
    assert cli(kf, "DEL", "greeting", "counter", "nope") == "2"
    assert backend_keys(backend) == set()


def test_redis_py_data_commands(kf, backend):
    r = kf.client("orders")
    assert r.set("k1", "v1") is True
    assert r.get("k1") == b"v1"
    assert r.mset({"m1": "a", "m2": "b", "m3": "c"}) is True
    assert r.mget(["m1", "missing", "m3", "k1"]) == [b"a", None, b"c", b"v1"]
    assert r.incr("n") == 1 and r.incrby("n", 41) == 42
    assert r.hset("h", mapping={"f1": "x", "f2": "y"}) == 2
    assert r.hgetall("h") == {b"f1": b"x", b"f2": b"y"}
    assert r.lpush("l", "c", "b", "a") == 3
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"c"]
    assert r.delete("m1", "m2", "missing") == 2

    assert backend_keys(backend) == {P + k for k in (b"k1", b"m3", b"n", b"h", b"l")}
    assert backend.get(P + b"m3") == b"c"
    assert backend.get(P + b"n") == b"42"
    assert backend.hgetall(P + b"h") == {b"f1": b"x", b"f2": b"y"}
    assert backend.lrange(P + b"l", 0, -1) == [b"a", b"b", b"c"]
    # nothing unprefixed, nothing in the other tenant's namespace
    assert backend.exists("k1", "h", "l") == 0
    r.close()


def test_payments_sidecar_uses_its_own_prefix(kf, backend):
    r = kf.client("payments")
    assert r.set("k1", "pay") is True
    assert backend.get(b"shop@payments:k1") == b"pay"
    assert backend.get(P + b"k1") is None
    assert backend_keys(backend) == {b"shop@payments:k1"}
    r.close()


def test_hash_tag_rule(kf, backend):
    r = kf.client("orders")
    cases = {
        b"user:{42}:cart": P + b"user:{shop@orders:42}:cart",
        b"{lock}": P + b"{shop@orders:lock}",
        b"x:{lock}": P + b"x:{shop@orders:lock}",
        b"a{}b": P + b"a{}b",                     # empty tag: no insertion
        b"{a}{b}": P + b"{shop@orders:a}{b}",     # only the first tag
        b"x{y": P + b"x{y",                       # no closing brace
        b"}{z}": P + b"}{shop@orders:z}",         # first '{' then next '}'
        b"plain": P + b"plain",
    }
    for i, k in enumerate(cases):
        assert r.set(k, str(i)) is True
    assert backend_keys(backend) == set(cases.values())
    for i, (k, bk) in enumerate(cases.items()):
        assert backend.get(bk) == str(i).encode(), bk
        assert r.get(k) == str(i).encode(), k
    # names come back stripped
    assert set(r.keys("*")) == set(cases)
    assert r.exists(*cases) == len(cases)
    # multi-key commands with tags
    assert r.rename(b"user:{42}:cart", b"user:{42}:cart2") is True
    assert backend.exists(P + b"user:{shop@orders:42}:cart2") == 1
    r.close()


def test_pipeline_1000_in_order(kf, backend):
    r = kf.client("orders")
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"p:{i}", i)
        pipe.get(f"p:{i}")
    res = pipe.execute()
    assert len(res) == 1000
    for i in range(500):
        assert res[2 * i] is True
        assert res[2 * i + 1] == str(i).encode()
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.incr("ctr")
    assert pipe.execute() == list(range(1, 1001))
    assert backend.get(P + b"ctr") == b"1000"
    assert backend.dbsize() == 501
    r.close()


def test_large_value_roundtrip(kf, backend):
    r = kf.client("orders")
    big = bytes((i * 7 + 3) % 256 for i in range(5 * 1024 * 1024))
    assert r.set("big", big) is True
    assert r.strlen("big") == len(big)
    assert r.get("big") == big
    assert backend.get(P + b"big") == big
    # a large multi-element reply
    r.rpush("biglist", *[b"x" * 1000 for _ in range(2000)])
    assert len(r.lrange("biglist", 0, -1)) == 2000
    r.close()


def test_binary_safe_keys_and_values(kf, backend):
    r = kf.client("orders")
    key = b"bin\x00\xff\r\n key\t\"'"
    val = bytes(range(256)) * 4
    assert r.set(key, val) is True
    assert r.get(key) == val
    assert backend.get(P + key) == val
    assert r.keys("*") == [key]
    r.hset(b"h\x00", b"f\x00\r\n", b"\x00v")
    assert backend.hget(P + b"h\x00", b"f\x00\r\n") == b"\x00v"
    assert r.hgetall(b"h\x00") == {b"f\x00\r\n": b"\x00v"}
    r.close()


def test_empty_key_and_value(kf, backend):
    r = kf.client("orders")
    assert r.set(b"", b"") is True
    assert backend.exists(P) == 1
    assert r.get(b"") == b""
    assert r.keys("*") == [b""]
    r.close()


def test_resp3_hello_on_sidecar(kf):
    with kf.raw("orders") as c:
        hello = c.cmd("HELLO", "3")
        assert isinstance(hello, RespMap), hello
        assert hello.get(b"proto") == 3
        assert hello.get(b"server") == b"redis"
        assert hello.get(b"version", b"").startswith(b"7"), hello
        assert c.cmd("HSET", "h3", "a", "1") == 1
        assert c.cmd("HGETALL", "h3") == {b"a": b"1"}
        assert isinstance(c.cmd("HGETALL", "h3"), RespMap)
        assert c.cmd("GET", "nothing") is None
        hello2 = c.cmd("HELLO", "2")
        assert isinstance(hello2, list) and not isinstance(hello2, RespMap)
        assert isinstance(c.cmd("HGETALL", "h3"), list)
