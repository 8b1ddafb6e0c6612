"""Backend failure: with the redis-server killed, clients get error replies promptly
(no hang) and keep their connections; /readyz says 503; once redis is back on the same
port, the same client connections work again (keyfence reconnects with backoff)."""

import threading
import time

from harness import RespError, wait_until


def timed(c, *args):
    t0 = time.monotonic()
    r = c.cmd(*args)
    return r, time.monotonic() - t0


def test_backend_down_and_back(kf, redis_server):
    c = kf.raw("orders", timeout=10)
    g = kf.raw("gateway", timeout=10)
    try:
        assert c.cmd("SET", "before", "1") == "OK"
        assert g.cmd("AUTH", "orders", "orders-secret") == "OK"
        assert g.cmd("GET", "before") == b"1"
        st, _ = kf.http("/readyz")
        assert st == 200

        redis_server.stop()
        time.sleep(0.2)

        # single requests: prompt error replies, connection kept
        for args in (["GET", "before"], ["SET", "x", "1"], ["INCR", "n"]):
            r, dt = timed(c, *args)
            assert isinstance(r, RespError), f"{args} with the backend down answered {r!r}"
            assert dt < 2.5, f"{args}: error took {dt:.2f}s"
        r, dt = timed(g, "GET", "before")
        assert isinstance(r, RespError) and dt < 2.5, (r, dt)

        # pipelined requests: one error each, in order
        for i in range(10):
            c.send("GET", f"p{i}")
        t0 = time.monotonic()
        replies = [c.read() for _ in range(10)]
        assert all(isinstance(x, RespError) for x in replies), replies
        assert time.monotonic() - t0 < 5

        # locally answered commands still work
        assert c.cmd("PING") == "PONG"
        # new connections are accepted and answered
        with kf.raw("orders", timeout=5) as fresh:
            r, dt = timed(fresh, "GET", "before")
            assert isinstance(r, RespError) and dt < 2.5, (r, dt)

        # readiness reflects the backend
        wait_until(lambda: kf.http("/readyz")[0] == 503, 5, 0.1, "/readyz to say 503")
        assert kf.http("/healthz")[0] == 200

        redis_server.start()  # same port

        def works():
            r = c.cmd("SET", "after", "2")
            return r == "OK"
        wait_until(works, 10, 0.2, "the same client connection to work again")
        assert c.cmd("GET", "after") == b"2"
        wait_until(lambda: g.cmd("GET", "after") == b"2", 10, 0.2, "gateway client")
        wait_until(lambda: kf.http("/readyz")[0] == 200, 10, 0.1, "/readyz back to 200")
        direct = redis_server.client()
        assert direct.get(b"shop@orders:after") == b"2"
        direct.close()
    finally:
        c.close()
        g.close()
        if not redis_server.running:
            redis_server.start()


def test_blocked_client_gets_error_when_backend_dies(kf, redis_server):
    c = kf.raw("orders", timeout=10)
    res = {}

    def run():
        t0 = time.monotonic()
        try:
            res["r"] = c.cmd("BLPOP", "never", "0")
        except Exception as e:
            res["r"] = e
        res["dt"] = time.monotonic() - t0

    try:
        assert c.cmd("PING") == "PONG"
        th = threading.Thread(target=run)
        th.start()
        time.sleep(0.5)
        t_kill = time.monotonic()
        redis_server.stop()
        th.join(8)
        assert not th.is_alive(), "a blocked BLPOP hung after the backend died"
        assert isinstance(res["r"], (RespError, Exception)), res
        assert time.monotonic() - t_kill < 5
    finally:
        c.close()
        if not redis_server.running:
            redis_server.start()
    with kf.raw("orders") as c2:
        wait_until(lambda: c2.cmd("SET", "k", "v") == "OK", 10, 0.2, "recovery")


def test_backend_restart_many_times(kf, redis_server):
    c = kf.raw("orders", timeout=10)
    try:
        for i in range(3):
            redis_server.stop()
            r, dt = timed(c, "GET", "k")
            assert isinstance(r, RespError) and dt < 2.5, (r, dt)
            redis_server.start()
            wait_until(lambda: c.cmd("SET", "k", str(i)) == "OK", 10, 0.2, f"round {i}")
            assert c.cmd("GET", "k") == str(i).encode()
    finally:
        c.close()
        if not redis_server.running:
            redis_server.start()
