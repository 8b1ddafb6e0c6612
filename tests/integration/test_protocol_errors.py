"""Raw-socket protocol handling: malformed RESP gets '-ERR Protocol error: ...' and the
connection closes while other clients keep working; inline commands; unknown commands
keep the connection; byte-by-byte requests; 10k pipelined requests in one write."""

import socket
import threading
import time

import pytest

from harness import ConnectionClosed, RespError, encode_command

MAX_REQ = 65536
MAX_OUT = 1024 * 1024


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {"limits": {"max_request_bytes": MAX_REQ, "client_output_buffer_bytes": MAX_OUT}}


@pytest.fixture
def bystander(kf):
    """A client connected before the bad one; it must keep working."""
    c = kf.raw("orders")
    assert c.cmd("SET", "bystander", "1") == "OK"
    yield c
    assert c.cmd("GET", "bystander") == b"1"
    assert c.cmd("INCR", "bycount") >= 1
    c.close()
    with kf.raw("orders") as fresh:
        assert fresh.cmd("PING") == "PONG"


def read_error_then_close(c):
    try:
        r = c.read()
    except ConnectionClosed:
        raise AssertionError("connection closed without an error reply")
    assert isinstance(r, RespError), f"expected an error reply, got {r!r}"
    assert c.is_closed(3), f"connection stayed open after {r.text!r}"
    return r


@pytest.mark.parametrize("payload", [
    b"*abc\r\n",
    b"*1\r\n$x\r\n",
    b"*1\r\n$-5\r\n",
    b"*2\r\n$3\r\nGET\r\n+foo\r\n",
    b"*2147483648\r\n",                 # too many arguments (over INT_MAX, as Redis)
    b'SET a "b\r\n',                    # inline: unbalanced quotes
])
def test_malformed_request_closes_with_protocol_error(kf, bystander, payload):
    with kf.raw("orders") as c:
        c.send_raw(payload)
        r = read_error_then_close(c)
        assert r.text.startswith("ERR Protocol error"), r.text
    assert bystander.cmd("PING") == "PONG"


def test_oversize_bulk_rejected_and_closed(kf, bystander, backend):
    with kf.raw("orders") as c:
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % (MAX_REQ * 4))
        r = read_error_then_close(c)
        assert r.text.startswith("ERR"), r.text
    assert backend.exists(b"shop@orders:big") == 0


def test_oversize_request_by_total_size(kf, bystander, backend):
    with kf.raw("orders") as c:
        args = ["MSET"] + [x for i in range(40) for x in (f"k{i}", "v" * 4000)]
        try:
            c.send(*args)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            r = c.read()
        except (ConnectionClosed, ConnectionResetError):
            r = None
        assert r is None or isinstance(r, RespError), f"a {40 * 4000} byte request got {r!r}"
    assert backend.dbsize() <= 1  # only bystander


def test_large_request_under_limit_ok(kf, bystander):
    with kf.raw("orders") as c:
        v = b"v" * (MAX_REQ - 1024)
        assert c.cmd("SET", "nearlimit", v) == "OK"
        assert c.cmd("STRLEN", "nearlimit") == len(v)


def test_inline_commands(kf, bystander, backend):
    with kf.raw("orders") as c:
        c.send_raw(b"PING\r\n")
        assert c.read() == "PONG"
        c.send_raw(b'SET a "b c"\r\n')
        assert c.read() == "OK"
        c.send_raw(b"GET a\n")  # bare LF is accepted by Redis too
        assert c.read() == b"b c"
        c.send_raw(b"SET  spaced   'x y'  \r\n")
        assert c.read() == "OK"
        c.send_raw(b'SET esc "t\\x41\\n"\r\n')
        assert c.read() == "OK"
        assert c.cmd("GET", "spaced") == b"x y"
    assert backend.get(b"shop@orders:a") == b"b c"
    assert backend.get(b"shop@orders:esc") == b"tA\n"


def test_unknown_command_keeps_connection(kf, bystander):
    with kf.raw("orders") as c:
        r = c.cmd("NOSUCHCOMMAND", "x", "y")
        assert isinstance(r, RespError)
        c.send_raw(b"ALSOUNKNOWN\r\n")
        assert isinstance(c.read(), RespError)
        assert c.cmd("PING") == "PONG"
        assert c.cmd("SET", "k", "v") == "OK"


def test_one_byte_writes(kf, bystander):
    with kf.raw("orders") as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = encode_command("SET", "slow", "value-123") + encode_command("GET", "slow") \
            + b"PING\r\n"
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
            time.sleep(0.002)
        assert c.read() == "OK"
        assert c.read() == b"value-123"
        assert c.read() == "PONG"


def test_10k_pipelined_in_one_write(kf, bystander):
    n = 5000
    data = b"".join(encode_command("SET", f"pk:{i}", i) + encode_command("GET", f"pk:{i}")
                    for i in range(n))
    with kf.raw("orders") as c:
        err = []

        def writer():
            try:
                c.send_raw(data)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=writer)
        t.start()
        for i in range(n):
            assert c.read() == "OK", i
            assert c.read() == str(i).encode(), i
        t.join(10)
        assert not err, err
        assert c.cmd("DBSIZE") == n + 1


def test_mixed_valid_then_malformed(kf, bystander):
    """Replies to requests before the bad one are delivered, then the error."""
    with kf.raw("orders") as c:
        c.send_raw(encode_command("SET", "m1", "1") + encode_command("GET", "m1") + b"*x\r\n")
        assert c.read() == "OK"
        assert c.read() == b"1"
        r = read_error_then_close(c)
        assert r.text.startswith("ERR Protocol error"), r.text


def test_client_closing_midway_does_not_hurt(kf, bystander):
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", kf.port("orders")), timeout=5)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
        s.close()
    with kf.raw("orders") as c:
        assert c.cmd("GET", "k") is None
        assert c.cmd("PING") == "PONG"


def test_slow_reader_is_disconnected(kf, bystander):
    """A client that lets more than client_output_buffer_bytes of replies pile up is
    disconnected; others are unaffected."""
    with kf.raw("orders") as c:
        item = "i" * 1000
        for _ in range(40):
            assert c.cmd("RPUSH", "biglist", *([item] * 50)) >= 50
    reply_size = 2000 * (1000 + 8)
    n = 40  # ~80 MB of replies if nobody drops the reader
    slow = kf.raw("orders", timeout=10)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    slow.send_raw(encode_command("LRANGE", "biglist", "0", "-1") * n)
    time.sleep(2.0)
    assert bystander.cmd("PING") == "PONG"
    total, closed = 0, False
    slow.sock.settimeout(5)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            chunk = slow.sock.recv(1 << 20)
            if not chunk:
                closed = True
                break
            total += len(chunk)
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass  # stalled but still open: not disconnected
    slow.close()
    assert closed, "the slow reader was never disconnected"
    assert total < reply_size * n, f"all {total} bytes were delivered"
