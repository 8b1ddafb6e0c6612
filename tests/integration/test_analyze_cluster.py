"""Per-namespace accounting on a 3-master Redis Cluster (issue 11): tenants fill the cluster
through keyfence; `keyfence analyze` (no --rdb) finds the masters from the topology, reads
every one of them as an RDB-only replica at once, and gives exact per-tenant key and TTL
counts, memory within 15 % of MEMORY USAGE summed over every master, and the heaviest slots
with their master and owning tenants. A quota counts the tenant's keys on every master."""

import json
import subprocess
import time

import pytest

from conftest import (checked_cluster_keyfence, cluster_keyfence, running_cluster,
                      start_keyfence, stop_keyfence)
from harness import HOST, key_slot, keyfence_bin
from test_analyze import fill


@pytest.fixture(scope="module")
def cluster():
    yield from running_cluster(3)


@pytest.fixture(scope="module")
def keyfence(cluster):
    yield from cluster_keyfence(cluster)


@pytest.fixture
def kf(keyfence, cluster):
    yield from checked_cluster_keyfence(keyfence, cluster)


def test_analyze_reads_every_master(kf, cluster):
    orders = kf.client("orders")
    fill(orders, "orders", 100)
    orders.set("{hot}:blob", "b" * 200_000)  # one heavy slot
    payments = kf.client("payments")
    fill(payments, "payments", 10)
    masters = cluster.master_nodes()
    masters[0].client().set("nobody", "x")
    r = subprocess.run([keyfence_bin(), "analyze", "--config", kf.config_path, "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["complete"] is True
    assert sorted(n["node"] for n in report["nodes"]) == sorted(
        f"127.0.0.1:{m.port}" for m in masters)
    assert all(n["keys"] > 0 for n in report["nodes"])
    for tenant in ("orders", "payments"):
        keys = ttl = mem = 0
        for m in masters:
            c = m.client()
            names = list(c.scan_iter(match=f"shop@{tenant}:*", count=1000))
            keys += len(names)
            ttl += sum(1 for k in names if c.pttl(k) >= 0)
            mem += sum(c.memory_usage(k, samples=0) for k in names)
        t = report["tenants"][tenant]
        assert (t["keys"], t["keys_with_ttl"]) == (keys, ttl), tenant
        assert abs(t["memory_bytes"] - mem) <= 0.15 * mem, (tenant, t["memory_bytes"], mem)
    assert report["unowned"]["keys"] == 1
    top = report["slots"][0]
    # keyfence scopes hash tags to the namespace: {hot} is stored as {shop@orders:hot}
    assert top["slot"] == key_slot(b"{shop@orders:hot}")
    assert set(top["tenants"]) == {"orders"} and top["bytes"] >= 200_000
    owner = [m for m in masters
             if m.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", top["slot"]) > 0]
    assert owner and top["node"] == f"127.0.0.1:{owner[0].port}"
    table = subprocess.run([keyfence_bin(), "analyze", "--config", kf.config_path],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0 and "heaviest slots" in table.stdout


def test_max_keys_counts_every_master(kf, cluster):
    import redis
    capped = start_keyfence(cluster.ports[0], {
        "backend": {"mode": "cluster"},
        "tenants": {"orders": {"limits": {"max_keys": 150}}}},
        backend_nodes=[f"{HOST}:{cluster.ports[0]}"])
    try:
        orders, payments = capped.client("orders"), capped.client("payments")
        refused = None
        for i in range(2000):
            try:
                orders.set(f"k:{i}", "x")
            except redis.ResponseError as e:
                assert str(e) == "OOM tenant 'orders' is over its memory quota"
                refused = i
                break
            time.sleep(0.002)
        on = [len(list(m.client().scan_iter(match="shop@orders:*", count=1000)))
              for m in cluster.master_nodes()]
        assert refused is not None and all(n > 0 for n in on), on  # spread over the masters
        assert 150 < sum(on) < 150 + 400, on
        assert orders.get("k:0") == b"x"
        assert payments.set("fine", "x")
    finally:
        stop_keyfence(capped)
