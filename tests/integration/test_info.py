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
