"""Per-namespace accounting (issue 11): three tenants fill a real redis-server through
keyfence with every type in its small and large encodings (strings raw, embedded and int,
lists, sets of integers and of strings, hashes, zsets, streams with a consumer group, keys with
TTLs), plus keys of no tenant; the server SAVEs, and
`keyfence analyze --config F --rdb dump.rdb --json` gives exact key and TTL counts per tenant,
the big keys with client-side names, the unowned keys, and per-tenant memory within 15 % of
the sum of MEMORY USAGE k SAMPLES 0. Without --rdb keyfence reads the master as an RDB-only
replica (diskless and disk-based sync) and reports the same figures as from the file, which
redis-check-rdb finds valid. A truncated or corrupt file, or a master that cannot be read,
is refused clearly."""

import json
import os
import subprocess

import pytest

from harness import keyfence_bin


def fill(c, tag, n):
    """Every type, small and large encodings; `n` scales the tenant."""
    for i in range(n):
        c.set(f"s:{i}", "x" * (i % 60))           # embstr and raw
        c.set(f"i:{i}", i)                         # int-encoded
    c.set("s:big", "y" * 100_000)
    c.set("ttl:1", "v", ex=1000)
    c.set("ttl:2", "v", px=5_000_000)
    c.rpush("l:small", *range(10))
    c.rpush("l:big", *[f"item-{j}" for j in range(3000)])
    c.sadd("set:int", *range(50))
    c.sadd("set:int:big", *range(1000))
    c.sadd("set:str", *[f"m{j}" for j in range(20)])
    c.sadd("set:str:big", *[f"member-{j}" for j in range(800)])
    c.hset("h:small", mapping={f"f{j}": j for j in range(10)})
    c.hset("h:big", mapping={f"field-{j}": "v" * 20 for j in range(1000)})
    c.zadd("z:small", {f"m{j}": j for j in range(10)})
    c.zadd("z:big", {f"member-{j}": j for j in range(500)})
    for j in range(200):
        c.xadd("x:stream", {"f": j, "g": tag})
    c.xgroup_create("x:stream", "grp", id="0")
    c.xreadgroup("grp", "alice", {"x:stream": ">"}, count=5)
    c.expire("h:small", 5000)


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {"tenants": {"inventory": {"users": [
        {"name": "inventory", "password": "inventory-secret"}]}}}


@pytest.fixture
def filled(kf, backend):
    import redis
    sizes = {"orders": 200, "inventory": 50, "payments": 10}
    for tenant, n in sizes.items():
        if tenant in kf.ports:
            c = redis.Redis(host="127.0.0.1", port=kf.ports[tenant])
        else:  # through the gateway: AUTH picks the tenant
            c = redis.Redis(host="127.0.0.1", port=kf.ports["gateway"], username=tenant,
                            password=f"{tenant}-secret")
        fill(c, tenant, n)
        c.close()
    for i in range(7):
        backend.set(f"nobody:{i}", "z")  # keys of no tenant
    backend.set("shop@ghost:k", "z")     # a namespace no tenant owns
    return sizes


def analyze(kf, rdb, *extra, config=None):
    args = ["--rdb", rdb] if rdb else []
    return subprocess.run([keyfence_bin(), "analyze", "--config", config or kf.config_path,
                           *args, *extra], capture_output=True, text=True, timeout=120)


def comparable(report):
    """The report without what moves with the clock (TTLs left, idle times) or the source."""
    out = json.loads(json.dumps(report["tenants"]))
    for t in out.values():
        for b in t["big_keys"]:
            b.pop("ttl_ms"), b.pop("idle_s", None)
    return out, report["unowned"]


def truth(backend, prefix):
    keys = list(backend.scan_iter(match=prefix + "*", count=1000))
    ttl = sum(1 for k in keys if backend.pttl(k) >= 0)
    mem = sum(backend.memory_usage(k, samples=0) for k in keys)
    return len(keys), ttl, mem


def test_analyze_an_rdb_file_per_tenant(kf, backend, redis_server, filled):
    backend.save()
    rdb = os.path.join(redis_server.dir, "dump.rdb")
    r = analyze(kf, rdb, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    for tenant in filled:
        keys, ttl, mem = truth(backend, f"shop@{tenant}:")
        t = report["tenants"][tenant]
        assert t["keys"] == keys, tenant
        assert t["keys_with_ttl"] == ttl == 3, tenant
        print(f"{tenant}: {keys} keys, estimated {t['memory_bytes']} B, MEMORY USAGE {mem} B "
              f"({100.0 * (t['memory_bytes'] - mem) / mem:+.1f} %)")
        assert abs(t["memory_bytes"] - mem) <= 0.15 * mem, (tenant, t["memory_bytes"], mem)
        big = t["big_keys"]
        assert len(big) == 10
        assert big[0]["key"] == "s:big" and big[0]["type"] == "string"
        assert not any(b["key"].startswith("shop@") for b in big)
        names = {b["key"]: b for b in big}
        assert names["l:big"]["elements"] == 3000 and names["l:big"]["type"] == "list"
        assert names["h:big"]["elements"] == 1000
        assert names["x:stream"]["elements"] == 200 and names["x:stream"]["type"] == "stream"
        assert set(t["bytes_by_type"]) == {"string", "list", "set", "zset", "hash", "stream"}
    assert report["tenants"]["orders"]["keys"] > report["tenants"]["payments"]["keys"]
    assert report["unowned"]["keys"] == 8
    # the table form names every tenant
    table = analyze(kf, rdb)
    assert table.returncode == 0 and all(t in table.stdout for t in filled), table.stdout


def test_analyze_refuses_truncated_and_corrupt_files(kf, backend, redis_server, tmp_path):
    backend.set("shop@orders:k", "v" * 1000)
    backend.save()
    data = open(os.path.join(redis_server.dir, "dump.rdb"), "rb").read()
    cut = tmp_path / "cut.rdb"
    cut.write_bytes(data[: len(data) // 2])
    r = analyze(kf, str(cut))
    assert r.returncode == 1 and "truncated" in r.stderr, r.stderr
    bad = bytearray(data)
    bad[-12] ^= 0xFF  # a byte before the checksum
    broken = tmp_path / "bad.rdb"
    broken.write_bytes(bytes(bad))
    r = analyze(kf, str(broken))
    assert r.returncode == 1 and "rdb: offset" in r.stderr, r.stderr
    r = analyze(kf, str(tmp_path / "missing.rdb"))
    assert r.returncode == 1 and "cannot open" in r.stderr


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_analyze_over_replication_matches_the_file(kf, backend, redis_server, filled, diskless):
    backend.save()
    rdb = os.path.join(redis_server.dir, "dump.rdb")
    check = subprocess.run(["redis-check-rdb", rdb], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout
    from_file = analyze(kf, rdb, "--json")
    assert from_file.returncode == 0, from_file.stderr
    backend.config_set("repl-diskless-sync", diskless)
    backend.config_set("repl-diskless-sync-delay", 0)
    try:
        live = analyze(kf, None, "--json")
    finally:
        backend.config_set("repl-diskless-sync", "yes")
        backend.config_set("repl-diskless-sync-delay", 5)
    assert live.returncode == 0, live.stderr
    report = json.loads(live.stdout)
    assert comparable(report) == comparable(json.loads(from_file.stdout))
    assert report["complete"] is True
    [node] = report["nodes"]
    assert node["node"] == f"127.0.0.1:{redis_server.port}" and node["rdb_bytes"] > 0
    assert node["keys"] == backend.dbsize()
    # an RDB-only replica leaves nothing behind on the master
    info = backend.info("replication")
    assert info["connected_slaves"] == 0
    assert info["role"] == "master"


def test_analyze_names_a_master_it_cannot_read(kf, redis_server, tmp_path):
    import yaml
    cfg = yaml.safe_load(open(kf.config_path))
    dead = tmp_path / "dead.yaml"
    cfg["backend"]["nodes"] = ["127.0.0.1:1"]  # nothing listens there
    dead.write_text(yaml.safe_dump(cfg))
    r = analyze(kf, None, config=str(dead))
    assert r.returncode == 1
    assert "127.0.0.1:1: cannot connect" in r.stderr, r.stderr
    assert "INCOMPLETE" in r.stdout
    # a user without the replication commands is refused with the master's reason
    c = redis_server.client()
    c.execute_command("ACL", "SETUSER", "noreplica", "on", ">pw", "~*", "+@all", "-psync",
                      "-sync")
    try:
        cfg["backend"]["nodes"] = [f"127.0.0.1:{redis_server.port}"]
        cfg["backend"]["username"], cfg["backend"]["password"] = "noreplica", "pw"
        dead.write_text(yaml.safe_dump(cfg))
        r = analyze(kf, None, config=str(dead))
        assert r.returncode == 1
        assert "refused to sync: -NOPERM" in r.stderr, r.stderr
    finally:
        c.execute_command("ACL", "DELUSER", "noreplica")
        c.close()
