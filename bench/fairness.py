#!/usr/bin/python3
"""Noisy-neighbour fairness (issue 9), measured, not asserted: tenant orders is limited to
RATE ops/s and floods at 20x that from 8 pipelining connections for FLOOD_S seconds; tenant
payments (unlimited) sends one GET at a time. Prints orders' served rate against its limit
and payments' p50/p99 alone and under the flood. Real redis-server and keyfence on loopback
ports (through the test harness); every loop is bounded in time.

  /usr/bin/python3 bench/fairness.py [FLOOD_S]     (KEYFENCE_BIN=... to pick a binary)
"""
import os
import sys
import multiprocessing as mp
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from harness import Keyfence, RedisServer  # noqa: E402

RATE = 1000
FLOOD_S = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0


def latencies(kf, seconds):
    out = []
    with kf.raw("payments") as p:
        p.cmd("SET", "k", "v")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            p.cmd("GET", "k")
            out.append(time.monotonic() - t0)
            time.sleep(0.001)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99)]


def flood(port, seconds, served, stop):
    """One flooding connection, in its own process (the GIL would time the latency probe)."""
    from harness import RawConn
    with RawConn(port, timeout=10) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not stop.is_set():
            for _ in range(50):
                c.send("INCR", "n")
            for _ in range(50):
                r = c.read()
                if isinstance(r, int):
                    with served.get_lock():
                        served.value += 1


def main():
    srv = RedisServer().start()
    kf = Keyfence(srv.port, {"tenants": {"orders": {"limits": {"ops_per_sec": RATE}}}})
    kf.start()
    try:
        p50a, p99a = latencies(kf, 5)
        served, stop = mp.Value("q", 0), mp.Event()
        threads = [mp.Process(target=flood, args=(kf.ports["orders"], FLOOD_S, served, stop))
                   for _ in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(1)
        base = served.value
        p50b, p99b = latencies(kf, FLOOD_S - 2)
        rate = (served.value - base) / (time.monotonic() - t0 - 1)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        print(f"orders: limit {RATE}/s, served {rate:.0f}/s ({100 * (rate / RATE - 1):+.1f} %) "
              f"while flooding from 8 connections for {FLOOD_S:.0f} s")
        print(f"payments GET latency alone: p50 {p50a * 1e3:.3f} ms, p99 {p99a * 1e3:.3f} ms")
        print(f"payments GET latency under the flood: p50 {p50b * 1e3:.3f} ms, "
              f"p99 {p99b * 1e3:.3f} ms ({100 * (p99b / p99a - 1):+.0f} % p99)")
    finally:
        kf.stop()
        kf.cleanup()
        srv.cleanup()


if __name__ == "__main__":
    main()
