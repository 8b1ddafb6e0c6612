"""Gateway authentication: AUTH forms, HELLO AUTH, wrong passwords, shared namespaces,
pre-AUTH limits; sidecars need no AUTH."""

import redis

import pytest

from harness import ConnectionClosed, RespError, RespMap

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


@pytest.fixture(autouse=True)
def _namespace_guard(monitor):
    """Every test here: whatever keyfence sent to the backend stays in a namespace."""
    yield
    monitor.assert_clean()


def test_commands_before_auth_are_refused(kf, backend):
    with kf.raw("gateway") as c:
        assert c.cmd("SET", "k", "v") == RespError(NOAUTH)
        assert c.cmd("GET", "k") == RespError(NOAUTH)
        assert c.cmd("KEYS", "*") == RespError(NOAUTH)
    assert backend.dbsize() == 0


def test_auth_user_password(kf, backend):
    with kf.raw("gateway") as c:
        assert c.cmd("AUTH", "orders", "orders-secret") == "OK"
        assert c.cmd("SET", "k", "v") == "OK"
        assert c.cmd("GET", "k") == b"v"
    assert backend.get(b"shop@orders:k") == b"v"


def test_auth_password_only(kf, backend):
    with kf.raw("gateway") as c:
        assert c.cmd("AUTH", "orders-secret") == "OK"
        assert c.cmd("SET", "pwonly", "1") == "OK"
    assert backend.get(b"shop@orders:pwonly") == b"1"
    with kf.raw("gateway") as c:
        assert c.cmd("AUTH", "payments-secret") == "OK"
        assert c.cmd("SET", "pwonly", "2") == "OK"
    assert backend.get(b"shop@payments:pwonly") == b"2"


def test_wrong_password(kf, backend):
    with kf.raw("gateway") as c:
        assert c.cmd("AUTH", "orders", "nope") == RespError(WRONGPASS)
        # still unauthenticated, connection still usable
        assert c.cmd("GET", "k") == RespError(NOAUTH)
        # right password of another user is still wrong for this user
        assert c.cmd("AUTH", "orders", "payments-secret") == RespError(WRONGPASS)
        assert c.cmd("AUTH", "nosuchuser", "orders-secret") == RespError(WRONGPASS)
        assert c.cmd("AUTH", "orders", "orders-secret") == "OK"
        assert c.cmd("PING") == "PONG"
    assert backend.dbsize() == 0


def test_hello3_auth(kf, backend):
    with kf.raw("gateway") as c:
        c.send_raw(b"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n"
                   b"$6\r\norders\r\n$13\r\norders-secret\r\n")
        # the reply must be a RESP3 map: check the type byte on the wire
        first = c.sock.recv(1, 0)
        assert first == b"%", f"HELLO 3 reply starts with {first!r}, not a RESP3 map"
        c.buf += first
        hello = c.read()
        assert isinstance(hello, RespMap) and hello[b"proto"] == 3
        assert c.cmd("HSET", "h", "a", "1") == 1
        assert c.cmd("HGETALL", "h") == {b"a": b"1"}
    assert backend.hgetall(b"shop@orders:h") == {b"a": b"1"}


def test_hello_auth_with_setname_and_wrong_password(kf):
    with kf.raw("gateway") as c:
        r = c.cmd("HELLO", "3", "AUTH", "orders", "wrong")
        assert isinstance(r, RespError) and r.code == "WRONGPASS", r
        assert c.cmd("GET", "x") == RespError(NOAUTH)
        r = c.cmd("HELLO", "2", "AUTH", "billing", "billing-secret", "SETNAME", "app1")
        assert isinstance(r, list) and b"proto" in r, r
        assert r[r.index(b"proto") + 1] == 2
        assert c.cmd("CLIENT", "GETNAME") == b"app1"


def test_two_users_share_one_namespace(kf, backend):
    orders = kf.user_client("orders")
    billing = kf.user_client("billing")
    payments = kf.user_client("payments")
    assert orders.set("invoice:1", "100") is True
    assert billing.get("invoice:1") == b"100"
    assert billing.incrby("invoice:1", 5) == 105
    assert orders.get("invoice:1") == b"105"
    assert payments.get("invoice:1") is None
    assert payments.keys("*") == []
    assert set(billing.keys("*")) == {b"invoice:1"}
    assert backend.keys("*") == [b"shop@orders:invoice:1"]
    # the sidecar of tenant orders sees the same namespace
    side = kf.client("orders")
    assert side.get("invoice:1") == b"105"
    for c in (orders, billing, payments, side):
        c.close()


def test_redis_py_wrong_password_raises(kf):
    c = kf.client("gateway", username="orders", password="bad")
    try:
        c.ping()
        raise AssertionError("AUTH with a wrong password succeeded")
    except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as e:
        # redis-py 4.3 raises a plain ResponseError for WRONGPASS
        assert "WRONGPASS" in str(e) or "invalid username-password" in str(e), e
    finally:
        c.close()


def test_sidecar_needs_no_auth(kf, backend):
    with kf.raw("orders") as c:
        assert c.cmd("SET", "side", "1") == "OK"
        assert c.cmd("GET", "side") == b"1"
    with kf.raw("payments") as c:
        assert c.cmd("SET", "side", "2") == "OK"
    assert backend.get(b"shop@orders:side") == b"1"
    assert backend.get(b"shop@payments:side") == b"2"


def test_pre_auth_limits(kf):
    """Before AUTH a gateway accepts at most 10 arguments and 16 KiB bulks."""
    with kf.raw("gateway") as c:
        try:
            r = c.cmd("ECHO", "x" * (32 * 1024))
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            r = None  # closing the connection is an acceptable answer
        assert r is None or isinstance(r, RespError), f"32 KiB bulk before AUTH: {r!r}"
    with kf.raw("gateway") as c:
        try:
            r = c.cmd("AUTH", *(["a"] * 15))
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            r = None
        assert r is None or isinstance(r, RespError), f"16 args before AUTH: {r!r}"


def test_reauth_switches_tenant_without_leaking(kf, backend):
    with kf.raw("gateway") as c:
        assert c.cmd("AUTH", "orders", "orders-secret") == "OK"
        assert c.cmd("SET", "mine", "orders-value") == "OK"
        r = c.cmd("AUTH", "payments", "payments-secret")
        if r == "OK":  # Redis semantics: the connection is now payments
            assert c.cmd("GET", "mine") is None
            assert c.cmd("SET", "mine", "payments-value") == "OK"
            assert c.cmd("KEYS", "*") == [b"mine"]
        else:
            assert isinstance(r, RespError), r
            assert c.cmd("GET", "mine") == b"orders-value"
        # a failed re-AUTH does not log the connection out of its tenant (as in Redis)
        assert c.cmd("AUTH", "orders", "wrong") == RespError(WRONGPASS)
        assert c.cmd("PING") == "PONG"
    assert backend.get(b"shop@orders:mine") == b"orders-value"
    assert backend.get(b"shop@payments:mine") in (None, b"payments-value")
    assert set(backend.keys("*")) <= {b"shop@orders:mine", b"shop@payments:mine"}


def test_reauth_drops_subscriptions_and_watch(kf, backend):
    """State bound to the old tenant must not survive a switch to another tenant."""
    with kf.raw("gateway") as c, kf.raw("payments") as pay:
        assert c.cmd("AUTH", "orders", "orders-secret") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "tx", "1") == "QUEUED"
        r = c.cmd("AUTH", "payments", "payments-secret")
        if r != "OK":
            return  # re-AUTH refused: nothing can carry over
        r = c.cmd("EXEC")
        # whatever EXEC answers, the queued SET must not land in the wrong namespace
        assert backend.get(b"shop@payments:tx") is None or r == ["OK"], r
        assert pay.cmd("GET", "tx") in (None, b"1")


def test_no_tenant_switch_while_subscribed(keyfence):
    """A subscribed connection cannot AUTH as another tenant (its subscription
    would keep serving the first namespace)."""
    kf = keyfence
    with kf.raw("gateway") as c:
        assert c.cmd("AUTH", "orders", "orders-secret") == "OK"
        c.send("SUBSCRIBE", "news")
        ack = c.read()
        assert ack[0] == b"subscribe" and ack[1] == b"news", ack
        r = c.cmd("AUTH", "payments", "payments-secret")
        assert r == RespError("ERR Can't execute 'auth': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE "
                              "/ PING / QUIT / RESET are allowed in this context") or \
            (isinstance(r, RespError) and "cannot AUTH as another tenant" in r.text), r
    with kf.raw("gateway") as c:
        assert c.cmd("HELLO", "3", "AUTH", "orders", "orders-secret")[b"proto"] == 3
        c.send("SUBSCRIBE", "news")
        c.read()
        r = c.cmd("AUTH", "payments", "payments-secret")
        assert isinstance(r, RespError) and "cannot AUTH as another tenant" in r.text, r
        # the same tenant may re-AUTH
        assert c.cmd("AUTH", "billing", "billing-secret") == "OK"
