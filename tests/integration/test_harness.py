"""Self-tests of the harness (no keyfence needed): the MONITOR checker must flag
unprefixed keys and channels, parse Redis' escaping, and ignore the harness's own
direct connections; the YAML emitter must produce what a YAML parser reads back."""

import pytest

from harness import (MonitorChecker, RawConn, RespError, RespMap, metric_value,
                     parse_monitor_args, parse_monitor_line, to_yaml)


def test_parse_monitor_escapes():
    line = (b'1700000000.123456 [0 127.0.0.1:5555] "SET" "shop@orders:a\\x00\\xff" '
            b'"q\\"uo\\\\te\\r\\n\\t" ""')
    db, addr, args = parse_monitor_line(line)
    assert db == 0 and addr == "127.0.0.1:5555"
    assert args == [b"SET", b"shop@orders:a\x00\xff", b'q"uo\\te\r\n\t', b""]
    assert parse_monitor_args(b'"a b" "c"') == [b"a b", b"c"]
    assert parse_monitor_line(b"OK") is None


def test_monitor_roundtrips_binary(redis_server):
    m = MonitorChecker(redis_server)
    try:
        start = m.mark()
        val = bytes(range(256)) + b'"\\ \r\n'
        with RawConn(redis_server.port) as c:  # untracked = counted as "keyfence"
            assert c.cmd("SET", b"shop@orders:bin\x00\x01", val) == "OK"
        m.sync()
        cmds = m.commands(start)
        assert [b"SET", b"shop@orders:bin\x00\x01", val] in [a for _, a in cmds]
    finally:
        m.stop()


def test_monitor_checker_flags_unprefixed_key(redis_server):
    m = MonitorChecker(redis_server)
    try:
        start = m.mark()
        with RawConn(redis_server.port) as c:
            c.cmd("SET", "shop@orders:ok", "1")
            c.cmd("MSET", "shop@payments:x", "1", "leaked", "2")
            c.cmd("XREAD", "STREAMS", "shop@orders:s", "naked-stream", "0", "0")
            c.cmd("PUBLISH", "news", "hi")
            c.cmd("PING")
        violations, checked, keyless = m.check(start)
        text = "\n".join(violations)
        assert "b'leaked'" in text, text
        assert "b'naked-stream'" in text, text
        assert "b'news'" in text, text
        assert "shop@orders:ok" not in text
        assert checked >= 3 and keyless >= 1
        with pytest.raises(AssertionError):
            m.assert_clean(start)
    finally:
        m.stop()


def test_monitor_checker_passes_prefixed_and_ignores_own(redis_server):
    m = MonitorChecker(redis_server)
    try:
        start = m.mark()
        direct = redis_server.client()
        direct.set("unprefixed-by-harness", "1")  # harness's own: ignored
        direct.close()
        with RawConn(redis_server.port) as c:
            c.cmd("SET", "shop@orders:user:{shop@orders:42}:cart", "1")
            c.cmd("SCAN", "0", "MATCH", "shop@orders:*", "COUNT", "10")
            c.cmd("SORT", "shop@orders:l", "BY", "shop@orders:w_*", "GET", "#")
            c.cmd("SUBSCRIBE", "shop@payments:news")
        assert m.assert_clean(start, min_checked=2) >= 2
    finally:
        m.stop()


def test_monitor_checker_flags_scan_keys_sort_forbidden(redis_server):
    m = MonitorChecker(redis_server)
    try:
        start = m.mark()
        with RawConn(redis_server.port) as c:
            c.cmd("SCAN", "0")
            c.cmd("KEYS", "*")
            c.cmd("SORT", "shop@orders:l", "BY", "w_*")
            c.cmd("FLUSHDB")
        violations, _, _ = m.check(start)
        text = "\n".join(violations)
        assert "SCAN without" in text and "KEYS without" in text
        assert "SORT BY pattern" in text and "forbidden command FLUSHDB" in text
    finally:
        m.stop()


def test_rawconn_resp3(redis_server):
    with RawConn(redis_server.port) as c:
        hello = c.cmd("HELLO", "3")
        assert isinstance(hello, RespMap) and hello[b"proto"] == 3
        c.cmd("HSET", "h", "f", "v")
        assert c.cmd("HGETALL", "h") == {b"f": b"v"}
        assert isinstance(c.cmd("NOSUCHCOMMAND"), RespError)
        assert c.cmd("GET", "missing") is None
        c.cmd("DEL", "h")


def test_yaml_emitter():
    yaml = pytest.importorskip("yaml")
    cfg = {"cluster_name": "shop", "workers": 2, "listeners": [{"bind": "127.0.0.1:1"},
           {"bind": "127.0.0.1:2", "tenant": "orders"}], "policy": {"deny_commands": []},
           "tenants": {"orders": {"users": [{"name": "o", "password": "p: \"x\""}],
                                  "deny_commands": ["KEYS", "CLIENT|KILL"],
                                  "limits": {"allow_scripts": True}}}}
    assert yaml.safe_load(to_yaml(cfg)) == cfg


def test_metric_parsing():
    text = ('# HELP x\nkeyfence_requests_total{tenant="orders",command="set"} 5\n'
            'keyfence_requests_total{command="get",tenant="orders"} 2\n'
            'keyfence_client_connections{tenant="payments"} 1.0\n')
    assert metric_value(text, "keyfence_requests_total", tenant="orders", command="set") == 5
    assert metric_value(text, "keyfence_requests_total", tenant="orders") == 7
    assert metric_value(text, "keyfence_client_connections", tenant="orders") is None


def test_monitor_checker_port_reuse_is_not_own(redis_server):
    """A source port the harness used earlier, reused later by another connection (the
    kernel does reuse them), must be checked: ownership is by address AND time."""
    import time

    from harness import _own_close, _own_open

    class FakeSock:
        def getsockname(self):
            return ("127.0.0.1", 1)

    addr = _own_open(FakeSock())
    t_in = time.time()
    time.sleep(0.01)
    _own_close(addr)
    t_after = time.time() + 1.0
    m = MonitorChecker(redis_server)
    try:
        start = m.mark()
        with m._lock:
            m.lines.append(b'%.6f [0 127.0.0.1:1] "SET" "own-unprefixed" "1"' % t_in)
            m.lines.append(b'%.6f [0 127.0.0.1:1] "SET" "reused-port-unprefixed" "1"' % t_after)
        violations, _, _ = m.check(start)
        text = "\n".join(violations)
        assert "reused-port-unprefixed" in text, text
        assert "own-unprefixed" not in text.replace("reused-port-unprefixed", ""), text
    finally:
        m.stop()
