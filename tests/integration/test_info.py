"""INFO of the tenant's own server (issue 10, item 2, first part): clients, stats and
commandstats carry the tenant's figures summed over every worker, and never another
tenant's: connected_clients counts its connections on both workers, blocked_clients rises
while one of its clients waits in BLPOP (what a Celery-like worker pool's health check
reads) and falls when it is served, total_commands_processed and cmdstat_* count its own
commands only."""

import pytest

from harness import wait_until


def info(conn, section):
    raw = conn.cmd("INFO", section)
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


@pytest.fixture(autouse=True)
def _namespace_guard(monitor):
    yield
    monitor.assert_clean()


def test_clients_are_the_tenants_own_across_workers(kf):
    with kf.raw("orders") as probe, kf.raw("payments") as theirs:
        base = int(info(probe, "clients")["connected_clients"])
        others = [kf.raw("orders") for _ in range(4)]  # spread over both workers
        try:
            for c in others:
                assert c.cmd("PING") == "PONG"
            assert int(info(probe, "clients")["connected_clients"]) == base + 4
            assert int(info(theirs, "clients")["connected_clients"]) == 1
        finally:
            for c in others:
                c.close()
        wait_until(lambda: int(info(probe, "clients")["connected_clients"]) == base, 5,
                   what="closed connections leave connected_clients")


def test_blocked_clients_rise_while_blpop_waits_and_only_for_the_tenant(kf):
    with kf.raw("orders") as probe, kf.raw("orders") as worker, kf.raw("payments") as theirs:
        assert info(probe, "clients")["blocked_clients"] == "0"
        worker.send("BLPOP", "jobs", 10)
        wait_until(lambda: info(probe, "clients")["blocked_clients"] == "1", 5,
                   what="blocked_clients:1 while BLPOP waits")
        assert info(theirs, "clients")["blocked_clients"] == "0"
        assert probe.cmd("RPUSH", "jobs", "j1") == 1
        assert worker.read() == [b"jobs", b"j1"]
        wait_until(lambda: info(probe, "clients")["blocked_clients"] == "0", 5,
                   what="blocked_clients back to 0 once served")


def test_stats_and_commandstats_count_the_tenants_own_commands(kf):
    with kf.raw("orders") as probe, kf.raw("payments") as theirs, kf.raw("orders") as other:
        mine0 = int(info(probe, "stats")["total_commands_processed"])
        theirs0 = int(info(theirs, "stats")["total_commands_processed"])
        sets0 = info(probe, "commandstats").get("cmdstat_set", "calls=0")
        for i in range(25):
            assert other.cmd("SET", f"k{i}", i) == "OK"
        for i in range(7):
            assert theirs.cmd("GET", f"k{i}") is None  # payments' own namespace
        # the INFO calls themselves count too: one between the reads
        assert int(info(probe, "stats")["total_commands_processed"]) == mine0 + 2 + 25
        assert int(info(theirs, "stats")["total_commands_processed"]) == theirs0 + 1 + 7
        cs = info(probe, "commandstats")
        assert int(cs["cmdstat_set"].split("calls=")[1].split(",")[0]) == \
            int(sets0.split("calls=")[1].split(",")[0]) + 25
        assert "cmdstat_set" not in info(theirs, "commandstats")
        received = int(info(probe, "stats")["total_connections_received"])
        with kf.raw("orders") as extra:
            assert extra.cmd("PING") == "PONG"
        assert int(info(probe, "stats")["total_connections_received"]) == received + 1
        assert "cmdstat_set" not in info(probe, "default")  # commandstats only when asked


def keyspace(conn):
    ks = info(conn, "keyspace")
    db0 = dict(kv.split("=") for kv in ks["db0"].split(",")) if "db0" in ks else {}
    return {k: int(v) for k, v in db0.items()}, int(ks["keyfence_keyspace_age_ms"])


def test_keyspace_and_memory_are_the_tenants_own_keys(kf, backend):
    for i in range(53):
        backend.set(f"shop@orders:k{i}", "x" * (i + 1))
    backend.expire("shop@orders:k1", 100)
    backend.pexpire("shop@orders:k2", 50_000)
    backend.rpush("shop@orders:list", *range(200))
    for i in range(40):
        backend.set(f"shop@payments:p{i}", "y")
    with kf.raw("orders") as mine, kf.raw("payments") as theirs:
        # the figures are a walk of the namespace, at most 5 s old
        wait_until(lambda: keyspace(mine)[0].get("keys") == 54, 8, what="db0:keys=54")
        figures, age = keyspace(mine)
        assert figures["expires"] == 2
        assert 40_000 < figures["avg_ttl"] <= 100_000 // 2 + 50_000 // 2
        assert 0 <= age < 5000
        wait_until(lambda: keyspace(theirs)[0].get("keys") == 40, 8, what="payments' own 40")
        assert keyspace(theirs)[0]["expires"] == 0
        # memory: the tenant's keys as MEMORY USAGE counts them, not the server's
        expected = sum(backend.memory_usage(k) for k in backend.scan_iter("shop@orders:*"))
        used = int(info(mine, "memory")["used_memory"])
        assert used == expected
        server = int(backend.info("memory")["used_memory"])
        assert used < server // 10
        assert int(info(theirs, "memory")["used_memory"]) < used
        # a new key shows once the figures are older than 5 s, never before
        assert mine.cmd("SET", "fresh", "v") == "OK"
        wait_until(lambda: keyspace(mine)[0].get("keys") == 55, 8, interval=0.5,
                   what="the new key counted by the next walk")
        assert keyspace(theirs)[0]["keys"] == 40
        # no keys: no db0 line, as Redis
        backend.flushall()
        wait_until(lambda: keyspace(mine)[0] == {}, 8, interval=0.5, what="db0 gone")


def test_stats_errorstats_and_commandstats_of_its_own_replies(kf, backend):
    backend.set("shop@orders:present", "v")
    backend.lpush("shop@orders:alist", "x")
    with kf.raw("orders") as mine, kf.raw("payments") as theirs:
        s0 = info(mine, "stats")
        t0 = info(theirs, "stats")
        tc0 = info(theirs, "commandstats").get("cmdstat_get")
        e0 = info(mine, "errorstats").get("errorstat_WRONGTYPE", "count=0")
        assert mine.cmd("GET", "present") == b"v"
        assert mine.cmd("GET", "absent") is None
        assert mine.cmd("GET", "absent2") is None
        assert mine.cmd("GET", "alist").code == "WRONGTYPE"
        assert mine.cmd("FOO").code == "ERR"  # keyfence's own error counts too
        s1 = info(mine, "stats")
        assert int(s1["keyspace_hits"]) == int(s0["keyspace_hits"]) + 1
        assert int(s1["keyspace_misses"]) == int(s0["keyspace_misses"]) + 2
        assert int(s1["total_error_replies"]) == int(s0["total_error_replies"]) + 2
        assert int(s1["total_net_input_bytes"]) > int(s0["total_net_input_bytes"]) + 60
        assert int(s1["total_net_output_bytes"]) > int(s0["total_net_output_bytes"]) + 50
        es = info(mine, "errorstats")
        assert int(es["errorstat_WRONGTYPE"].split("=")[1]) == int(e0.split("=")[1]) + 1
        cs = info(mine, "commandstats")["cmdstat_get"]
        fields = dict(kv.split("=") for kv in cs.split(","))
        assert int(fields["failed_calls"]) >= 1 and int(fields["usec"]) > 0
        assert float(fields["usec_per_call"]) > 0
        # nothing of it reaches the other tenant
        t1 = info(theirs, "stats")
        for k in ("keyspace_hits", "keyspace_misses", "total_error_replies"):
            assert t1[k] == t0[k], k
        assert "errorstat_WRONGTYPE" not in info(theirs, "errorstats")
        assert info(theirs, "commandstats").get("cmdstat_get") == tc0


def run_cli(kf, tenant, *args, timeout=20):
    import subprocess
    return subprocess.run(["redis-cli", "-p", str(kf.ports[tenant]), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_redis_cli_stat_shows_the_tenants_true_figures(kf, backend):
    import subprocess
    for i in range(53):
        backend.set(f"shop@orders:k{i}", "v" * 100)
    for i in range(500):
        backend.set(f"shop@payments:p{i}", "y")
    with kf.raw("orders") as mine, kf.raw("orders") as waiter:
        wait_until(lambda: keyspace(mine)[0].get("keys") == 53, 8, what="53 keys counted")
        waiter.send("BLPOP", "nothing", 10)
        wait_until(lambda: info(mine, "clients")["blocked_clients"] == "1", 5, what="blocked")
        # stdbuf: redis-cli's lines reach the pipe before it is interrupted
        r = subprocess.run(["timeout", "-s", "INT", "2.5", "stdbuf", "-oL", "redis-cli",
                            "-p", str(kf.ports["orders"]), "--stat", "-i", "1"],
                           capture_output=True, text=True, timeout=20)
        rows = [ln.split() for ln in r.stdout.splitlines() if ln[:1].isdigit()]
        assert rows, r.stdout + r.stderr
        keys, mem, clients, blocked = rows[-1][:4]
        assert keys == "53"
        assert mem.endswith("K") and 5 < float(mem[:-1]) < 20, mem  # 53 small strings
        assert clients == "3" and blocked == "1"
        mine.cmd("RPUSH", "nothing", "x")
        assert waiter.read() == [b"nothing", b"x"]


def test_redis_cli_bigkeys_and_memkeys_see_only_the_namespace(kf, backend):
    for i in range(30):
        backend.set(f"shop@orders:s{i}", "x" * i)
    backend.rpush("shop@orders:biglist", *range(300))
    backend.hset("shop@orders:h", mapping={f"f{i}": i for i in range(20)})
    backend.rpush("shop@payments:hugelist", *range(5000))
    big = run_cli(kf, "orders", "--bigkeys")
    assert big.returncode == 0, big.stderr
    assert "Sampled 32 keys in the keyspace!" in big.stdout
    assert "Biggest   list found '\"biglist\"' has 300 items" in big.stdout
    assert "Biggest   hash found '\"h\"' has 20 fields" in big.stdout
    assert "shop@" not in big.stdout and "hugelist" not in big.stdout
    mem = run_cli(kf, "orders", "--memkeys")
    assert mem.returncode == 0, mem.stderr
    assert "Sampled 32 keys in the keyspace!" in mem.stdout
    listed = backend.memory_usage("shop@orders:biglist")
    assert f"Biggest   list found '\"biglist\"' has {listed} bytes" in mem.stdout
    assert "shop@" not in mem.stdout and "hugelist" not in mem.stdout
