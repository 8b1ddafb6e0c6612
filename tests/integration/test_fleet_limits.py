"""Fleet-wide tenant limits (issue 14): with limits.scope: fleet every keyfence instance of a
cluster_name shares one ops_per_sec budget, kept in the backend (a token bucket under
keyfence's reserved namespace). Four instances flooding get the limit together, not four
times it; a stopped instance's share goes to the others; with the backend gone each instance
falls back to limit / instances without any request waiting; another tenant is untouched."""

import threading
import time

import pytest
import redis

from conftest import running_cluster, start_keyfence, stop_keyfence
from harness import HOST, MonitorChecker, metric_value, wait_until

RATE = 2000


def fleet_overrides(extra=None):
    o = {"tenants": {"orders": {"limits": {"ops_per_sec": RATE, "scope": "fleet"}},
                     "payments": {"limits": {"ops_per_sec": 100000}}}}
    if extra:
        o.update(extra)
    return o


class Flood:
    """Pipelined GETs on one connection; (time, ok) per reply; never waits on a reply longer
    than the socket timeout."""

    def __init__(self, port, tenant_key="k"):
        self.r = redis.Redis(host=HOST, port=port, socket_timeout=5)
        self.key, self.stop, self.events, self.slowest = tenant_key, False, [], 0.0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop:
            pipe = self.r.pipeline(transaction=False)
            for _ in range(100):
                pipe.get(self.key)
            t0 = time.monotonic()
            try:
                replies = pipe.execute(raise_on_error=False)
            except redis.ConnectionError:
                return
            now = time.monotonic()
            self.slowest = max(self.slowest, now - t0)
            for r in replies:
                limited = isinstance(r, Exception) and "RATELIMIT" in str(r)
                self.events.append((now, not limited))

    def accepted(self, start, end):
        return sum(1 for t, ok in self.events if start <= t < end and ok)

    def start(self):
        self.thread.start()
        return self

    def join(self):
        self.stop = True
        self.thread.join(15)


@pytest.fixture
def fleet(redis_server):
    kfs = [start_keyfence(redis_server.port, fleet_overrides()) for _ in range(4)]
    yield kfs
    for kf in kfs:
        if kf.alive:
            stop_keyfence(kf)
        else:
            kf.cleanup()


def test_four_instances_share_one_budget(fleet, redis_server):
    mon = MonitorChecker(redis_server)
    floods = [Flood(kf.ports["orders"]).start() for kf in fleet]
    other = Flood(fleet[0].ports["payments"]).start()
    try:
        time.sleep(13.5)  # the window below ends 12 s after the first reply
    finally:
        for f in floods + [other]:
            f.join()
    t0 = floods[0].events[0][0] if floods[0].events else time.monotonic()
    start = t0 + 2.0  # past the bucket's initial burst
    total = sum(f.accepted(start, start + 10.0) for f in floods)
    assert abs(total - RATE * 10) <= RATE * 10 * 0.05, [f.accepted(start, start + 10) for f in floods]
    # every instance got a share (no starvation), and the other tenant is not limited
    for f in floods:
        assert f.accepted(start, start + 10.0) > RATE * 10 / 4 * 0.3
    assert other.accepted(start, start + 10.0) > RATE * 10  # far above orders' fleet limit
    m = fleet[0].metrics()
    assert metric_value(m, "keyfence_tenant_fleet_instances", tenant="orders") == 4
    assert metric_value(m, "keyfence_tenant_fleet_fallback", tenant="orders") == 0
    calls = sum(metric_value(kf.metrics(), "keyfence_fleet_bucket_calls_total", tenant="orders")
                for kf in fleet)
    elapsed = time.monotonic() - t0
    print(f"fleet: {total} accepted in 10 s; {calls / elapsed / 4:.1f} bucket calls/s per instance")
    assert calls / elapsed / 4 < 60  # a few calls a second, not one per request
    assert not metric_value(m, "keyfence_tenant_fleet_instances", tenant="payments")
    mon.stop()
    mon.assert_clean()


def test_a_stopped_instance_leaves_its_share_to_the_others(fleet):
    floods = [Flood(kf.ports["orders"]).start() for kf in fleet]
    time.sleep(3)
    t_stop = time.monotonic()
    floods[3].join()
    stop_keyfence(fleet[3])
    time.sleep(6)
    for f in floods[:3]:
        f.join()
    # from 1 s after the stop, the three take the whole budget
    total = sum(f.accepted(t_stop + 1.0, t_stop + 6.0) for f in floods[:3])
    assert abs(total - RATE * 5) <= RATE * 5 * 0.05, total
    st, body = fleet[0].http("/tenants")
    import json
    f = json.loads(body)["orders"]["fleet"]
    assert f["mode"] == "shared" and f["instances"] == 3, f
    assert abs(f["fleet_rate"] - RATE) < RATE * 0.2, f


def test_backend_gone_each_falls_back_to_its_share_without_waiting(redis_server):
    kfs = [start_keyfence(redis_server.port, fleet_overrides()) for _ in range(2)]
    try:
        floods = [Flood(kf.ports["orders"]).start() for kf in kfs]
        time.sleep(2.5)  # both seen as live instances
        for kf in kfs:
            wait_until(lambda: metric_value(kf.metrics(), "keyfence_tenant_fleet_instances",
                                            tenant="orders") == 2, 5)
        redis_server.stop()
        t_down = time.monotonic()
        time.sleep(4)
        # not rate-limited beyond the fallback share, rate-limited at it: each gets RATE / 2
        for f in floods:
            got = f.accepted(t_down + 1.5, t_down + 3.5)
            assert abs(got - RATE) <= RATE * 0.15, got
        for kf in kfs:
            m = kf.metrics()
            assert metric_value(m, "keyfence_tenant_fleet_fallback", tenant="orders") == 1
        assert "fleet bucket unreachable: local share" in kfs[0].log_tail(80)
        redis_server.start()
        for kf in kfs:
            wait_until(lambda: metric_value(kf.metrics(), "keyfence_tenant_fleet_fallback",
                                            tenant="orders") == 0, 10, what="shared again")
        t_up = time.monotonic()
        time.sleep(4)
        for f in floods:
            f.join()
        total = sum(f.accepted(t_up + 1.0, t_up + 4.0) for f in floods)
        assert abs(total - RATE * 3) <= RATE * 3 * 0.08, total
        # no request ever waited on the bucket: every pipeline of 100 came back quickly
        assert max(f.slowest for f in floods) < 1.0, [f.slowest for f in floods]
    finally:
        if not redis_server.running:
            redis_server.start()
        for kf in kfs:
            stop_keyfence(kf)


def test_cluster_backend(request):
    gen = running_cluster(3)
    cluster = next(gen)
    request.addfinalizer(lambda: next(gen, None))
    seed = f"{HOST}:{cluster.ports[0]}"
    kfs = [start_keyfence(cluster.ports[0], fleet_overrides({"backend": {"mode": "cluster"}}),
                          backend_nodes=[seed]) for _ in range(2)]
    try:
        floods = [Flood(kf.ports["orders"], "x").start() for kf in kfs]
        time.sleep(9.5)
        for f in floods:
            f.join()
        t0 = floods[0].events[0][0]
        total = sum(f.accepted(t0 + 2, t0 + 8) for f in floods)
        assert abs(total - RATE * 6) <= RATE * 6 * 0.05, total
        # the bucket lives on the master owning its slot, under the reserved namespace
        owner = cluster.node_for_slot(cluster_slot(b"shop@__keyfence:{fleet:orders}:ops"))
        assert owner.client().exists("shop@__keyfence:{fleet:orders}:ops") == 1
    finally:
        for kf in kfs:
            stop_keyfence(kf)


def cluster_slot(key):
    from harness import key_slot
    return key_slot(key)
