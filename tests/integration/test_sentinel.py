"""Sentinel-managed backends (issue 12): `backend.mode: sentinel` with one master, two
replicas and three sentinels on loopback. keyfence finds the master from the sentinels
(confirmed by ROLE), follows +switch-master, and hides failovers: under a client loop, a
`SENTINEL FAILOVER` and a `kill -9` of the master each give every request exactly one reply,
in order (an error only for a request that was on the wire when its connection died); service
is back within the sentinels' failover time + 1 s; writes then land on the new master, and
nothing lands outside the tenant's namespace (MONITOR). read_from: replica reads from the
replicas Sentinel lists."""

import threading
import time

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import MonitorChecker, RawConn, RespError, SentinelGroup, encode_command

P = b"shop@orders:"


@pytest.fixture
def group():
    g = SentinelGroup()
    try:
        g.start()
    except Exception:
        g.cleanup()
        raise
    yield g
    g.cleanup()


def sentinel_kf(g, **backend):
    cfg = {"backend": dict({"mode": "sentinel", "retry_budget_ms": 10000,
                            "sentinel": {"master": g.name, "nodes": g.sentinel_addrs()}},
                           **backend)}
    return start_keyfence(g.master.port, cfg)


def test_master_found_and_replica_reads(group):
    kf = sentinel_kf(group, read_from="replica")
    mons = {s.port: MonitorChecker(s) for s in group.servers}
    marks = {p: m.mark() for p, m in mons.items()}
    try:
        with kf.raw("orders") as c:
            assert c.cmd("SET", "k", "v") == "OK"
            assert c.cmd("MSET", "a", "1", "b", "2") == "OK"  # no slots: multi-key anywhere
        assert group.master.client().get(P + b"k") == b"v"
        for r in group.replicas:
            with r.raw() as d:
                d.cmd("WAIT", 0, 0)
        time.sleep(0.2)  # replicated
        with kf.raw("orders") as c:
            got = [c.cmd("GET", "k") for _ in range(20)]
        assert got == [b"v"] * 20
        gets = {}
        for port, m in mons.items():
            m.sync()
            gets[port] = sum(1 for _a, args in m.commands(marks[port])
                             if args[0].upper() == b"GET" and args[1] == P + b"k")
        assert gets[group.master.port] == 0, (gets, kf.log_tail(30))
        assert sum(gets[r.port] for r in group.replicas) == 20, gets
        # isolation: the other tenant sees, counts and scans none of it (read from replicas)
        with kf.raw("payments") as p:
            assert p.cmd("SET", "mine", "1") == "OK"
            time.sleep(0.2)
            assert p.cmd("KEYS", "*") == [b"mine"]
            assert p.cmd("DBSIZE") == 1
            assert p.cmd("GET", "k") is None
            assert p.cmd("EXISTS", "a", "b") == 0
        for m in mons.values():
            m.assert_clean()
    finally:
        for m in mons.values():
            m.stop()
        stop_keyfence(kf)


class Loop:
    """One connection, one request at a time, recording each reply with its time. Request
    i is INCRBY k:<i> <i> (a fresh key each): its reply must be exactly i — the reply of that
    request, in order, and run once (a resend that ran twice would answer 2i)."""

    def __init__(self, kf):
        self.kf = kf
        self.replies = []  # (t, reply)
        self.stop = threading.Event()
        self.conn = kf.raw("orders", timeout=15)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            self.conn.send_raw(encode_command("INCRBY", f"k:{i}", i))
            r = self.conn.read()
            self.replies.append((time.monotonic(), r, i))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(20)
        self.conn.close()

    def check(self, t_event, t_switched, what):
        errors = [(round(t - t_event, 3), r) for t, r, _i in self.replies
                  if isinstance(r, RespError)]
        wrong = [(i, r) for _t, r, i in self.replies if not isinstance(r, RespError) and r != i]
        assert not wrong, f"{what}: replies not those of their requests (or run twice): {wrong[:5]}"
        for _t, e in errors:  # never a misroute: only keyfence's own backend errors
            assert e.text.startswith("ERR keyfence: backend"), e
        assert len(errors) <= 2, f"{what}: {errors}"
        # service is back within the sentinels' failover time + 1 s: a reply after the
        # switch came within 1 s of it
        ok_after = [t for t, r, _i in self.replies if t > t_switched and not isinstance(r, RespError)]
        assert ok_after and ok_after[0] - t_switched < 1.0, (what, ok_after[:1], t_switched)
        gaps = [b[0] - a[0] for a, b in zip(self.replies, self.replies[1:])]
        print(f"\n[{what}] {len(self.replies)} replies, {len(errors)} errors {errors}, "
              f"longest gap {max(gaps):.3f}s, sentinels switched after "
              f"{t_switched - t_event:.3f}s")


def _failover_under_loop(group, kf, do_failover, what):
    with Loop(kf) as loop:
        time.sleep(0.5)
        old = group.current_master()
        t_event = time.monotonic()
        new = do_failover(old)
        t_switched = time.monotonic()
        assert new.port != old.port
        time.sleep(1.5)
    loop.check(t_event, t_switched, what)
    # writes land on the new master, inside the namespace
    mon = MonitorChecker(new)
    try:
        mark = mon.mark()
        with kf.raw("orders") as c:
            for i in range(20):
                assert c.cmd("SET", f"after:{i}", i) == "OK", what
        assert new.client().get(P + b"after:19") == b"19"
        mon.sync()
        assert sum(1 for _a, args in mon.commands(mark) if args[0].upper() == b"SET") == 20
        mon.assert_clean()
    finally:
        mon.stop()
    return new


def test_sentinel_failover_under_load(group):
    kf = sentinel_kf(group)
    try:
        def failover(_old):
            return group.failover()
        _failover_under_loop(group, kf, failover, "SENTINEL FAILOVER")
        assert kf.alive
    finally:
        stop_keyfence(kf)


def test_kill_9_of_the_master_under_load(group):
    kf = sentinel_kf(group)
    try:
        def kill(old):
            old.proc.kill()  # SIGKILL, by PID
            return group.wait_new_master(old.port, 30)
        _failover_under_loop(group, kf, kill, "kill -9 master")
        assert kf.alive
        assert "+switch-master" in kf.log_tail(400)
    finally:
        stop_keyfence(kf)
