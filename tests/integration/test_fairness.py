"""Rate-limit fairness between the connections of one tenant (issue 8 item 6).

Four connections of `payments` (ops_per_sec 200, burst 10, on_limit: reject), each
offering ~500 ops/s for 5 s, must each be served a comparable share (within 25 % of
the mean), with the tenant's total near its limit; the connections are spread over
both workers (the worker index is the top bits of CLIENT ID), so the shares hold
across workers. A connection of another tenant (`orders`, its own limit) sending
below its limit at the same time gets every request served."""

import threading
import time

import pytest

from harness import RespError

RATE = 200
BURST = 10
SECONDS = 5.0
OFFERED = 500  # ops/s per connection
# Requests pipelined per send, per connection: the same offered rate in
# different rhythms (first come, first served favours the one that asks most often).
BATCHES = (1, 5, 20, 50)
# PING goes through admission like any command (only QUIT and RESET skip it) and
# keeps the test about the limiter alone (no backend, no key sampling).
PING = b"*1\r\n$4\r\nPING\r\n"
ORDERS_RATE = 300
ORDERS_OFFERED = 100


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {
        "workers": 2,
        "tenants": {
            "payments": {"limits": {"ops_per_sec": RATE, "burst": BURST, "on_limit": "reject"}},
            "orders": {"limits": {"ops_per_sec": ORDERS_RATE, "burst": ORDERS_RATE}},
            # reached through the gateway (AUTH delayed delayed-secret)
            "delayed": {
                "users": [{"name": "delayed", "password": "delayed-secret"}],
                "limits": {"ops_per_sec": RATE, "burst": BURST, "on_limit": "delay",
                           "max_delay_ms": 200},
            },
        },
    }


def worker_of(conn) -> int:
    for _ in range(50):
        cid = conn.cmd("CLIENT", "ID")
        if not (isinstance(cid, RespError) and cid.code == "RATELIMIT"):
            break
        time.sleep(0.05)  # the limit applies to CLIENT ID too
    assert isinstance(cid, int), cid
    return cid >> 40


def connect_payments(kf):
    return kf.raw("payments", timeout=10)


def connect_delayed(kf):
    c = kf.raw("gateway", timeout=10)
    assert c.cmd("AUTH", "delayed", "delayed-secret") == "OK"
    return c


def spread_connections(kf, n=4, tries=40, connect=connect_payments):
    """n connections of one tenant, half on each of the two workers, alternating."""
    by_worker = {0: [], 1: []}
    extra = []
    for _ in range(tries):
        c = connect(kf)
        w = worker_of(c)
        by_worker.setdefault(w, []).append(c)
        if len(by_worker[0]) >= n // 2 and len(by_worker[1]) >= n // 2:
            break
    # alternating workers, so that each has a fast and a slow rhythm (BATCHES)
    picked = [c for pair in zip(by_worker[0][: n // 2], by_worker[1][: n // 2]) for c in pair]
    for w, conns in by_worker.items():
        for c in conns:
            if c not in picked:
                extra.append(c)
    for c in extra:
        c.close()
    if len(picked) < n:
        for c in picked:
            c.close()
        pytest.skip("SO_REUSEPORT did not spread the connections over both workers")
    return picked


def drive(conn, rate, batch, seconds, start, result, key):
    """Sends `rate` PINGs/s (in batches of `batch`) until start+seconds; counts the replies."""
    ok = limited = other = sent = 0
    deadline = start + seconds
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        due = int((now - start) * rate) + batch
        n = min(batch, due - sent)
        if n <= 0:
            time.sleep(min(0.002, deadline - now))
            continue
        conn.send_raw(PING * n)
        sent += n
        for _ in range(n):
            r = conn.read()
            if r == "PONG":
                ok += 1
            elif isinstance(r, RespError) and r.code == "RATELIMIT":
                limited += 1
            else:
                other += 1
    result[key] = (ok, limited, other, sent)


def test_connections_of_one_tenant_get_fair_shares(kf):
    conns = spread_connections(kf)
    orders = kf.raw("orders", timeout=10)
    try:
        workers = [worker_of(c) for c in conns]
        assert workers == [0, 1, 0, 1], workers
        time.sleep(1.2)  # the bucket refills after the CLIENT IDs
        result = {}
        start = time.monotonic() + 0.05
        threads = [threading.Thread(target=drive, args=(c, OFFERED, BATCHES[i], SECONDS, start, result, f"c{i}"))
                   for i, c in enumerate(conns)]
        threads.append(threading.Thread(
            target=drive, args=(orders, ORDERS_OFFERED, 5, SECONDS, start, result, "orders")))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 10)
        assert all(not t.is_alive() for t in threads), "a client thread hung"
        assert len(result) == 5, result

        counts = [result[f"c{i}"][0] for i in range(4)]
        sent = [result[f"c{i}"][3] for i in range(4)]
        print(f"payments accepted per connection: {counts} (sent {sent}); "
              f"orders: {result['orders']}")
        for i in range(4):
            ok, limited, other, s = result[f"c{i}"]
            assert other == 0, result
            assert ok + limited == s
            # the client could offer its load (at least 80 % of 500 ops/s)
            assert s >= 0.8 * OFFERED * SECONDS, (i, s)
        mean = sum(counts) / 4
        for c in counts:
            assert abs(c - mean) <= 0.25 * mean, f"unfair shares {counts} (mean {mean:.0f})"
        total = sum(counts)
        expect = RATE * SECONDS + BURST
        assert abs(total - expect) <= 0.15 * expect, f"total {total}, expected ~{expect}"

        # isolation: the other tenant, under its own limit, was served in full
        ok, limited, other, s = result["orders"]
        assert limited == 0 and other == 0 and ok == s, result["orders"]
        assert s >= 0.8 * ORDERS_OFFERED * SECONDS, s
    finally:
        for c in conns:
            c.close()
        orders.close()


def test_on_limit_delay_serves_connections_in_fair_shares(kf):
    """on_limit: delay: the waiting connections are served by their shares, not by
    whoever retries first; what waits longer than max_delay_ms is refused."""
    seconds = 3.0
    conns = spread_connections(kf, connect=connect_delayed)
    try:
        time.sleep(1.2)
        result = {}
        start = time.monotonic() + 0.05
        threads = [threading.Thread(target=drive, args=(c, OFFERED, BATCHES[i], seconds, start,
                                                        result, f"d{i}"))
                   for i, c in enumerate(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 10)
        assert all(not t.is_alive() for t in threads), "a client thread hung"
        counts = [result[f"d{i}"][0] for i in range(4)]
        print(f"delayed served per connection: {counts}; "
              f"(served, refused, other, sent): {[result[f'd{i}'] for i in range(4)]}")
        assert all(result[f"d{i}"][2] == 0 for i in range(4)), result
        mean = sum(counts) / 4
        for c in counts:
            assert abs(c - mean) <= 0.25 * mean, f"unfair shares {counts} (mean {mean:.0f})"
        expect = RATE * seconds + BURST
        assert abs(sum(counts) - expect) <= 0.15 * expect, f"total {sum(counts)}, ~{expect}"
    finally:
        for c in conns:
            c.close()
