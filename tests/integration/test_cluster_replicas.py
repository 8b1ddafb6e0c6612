"""Replica reads on a 3-master/3-replica cluster (backend.read_from).

* read_from: replica - writes go to the masters (no MOVED from a replica, every SET seen
  by MONITOR on the owning master); after replication, every GET through keyfence is
  executed by a replica of the key's master (MONITOR on the replicas, and INFO
  commandstats: cmdstat_get grows on replicas, stays 0 on masters).
* read_from: prefer_replica - with one replica SIGKILLed, reads of its master's keys are
  still answered (by the master), the other masters' keys still read from their replicas.

Every loop is bounded in count and time; every socket has a timeout."""

import time

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import (HOST, MonitorChecker, RedisClusterNodes, encode_command,
                     key_slot, metric_value, wait_until)

P = b"shop@orders:"
N = 300


@pytest.fixture(scope="module")
def cluster():
    c = RedisClusterNodes(6, replicas=1)
    try:
        c.start(timeout=40)
    except Exception:
        c.cleanup()
        raise
    yield c
    c.cleanup()


def keyfence_with(cluster, read_from):
    seed = cluster.master_nodes()[0]
    return start_keyfence(seed.port, {"backend": {"mode": "cluster", "read_from": read_from}},
                          backend_nodes=[f"{HOST}:{seed.port}"])


@pytest.fixture
def kf_replica(cluster):
    cluster.flushall()
    kf = keyfence_with(cluster, "replica")
    yield kf
    stop_keyfence(kf)


@pytest.fixture
def kf_prefer(cluster):
    cluster.flushall()
    kf = keyfence_with(cluster, "prefer_replica")
    yield kf
    stop_keyfence(kf)


def pipelined(c, cmds, batch=200):
    out = []
    for i in range(0, len(cmds), batch):
        chunk = cmds[i:i + batch]
        c.send_raw(b"".join(encode_command(*a) for a in chunk))
        out.extend(c.read() for _ in chunk)
    return out


def info_field(node, section, field):
    with node.raw(timeout=2) as c:
        info = c.cmd("INFO", section).decode()
    for line in info.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return None


def get_calls(node):
    """cmdstat_get calls of a node (0 if it never ran GET)."""
    v = info_field(node, "commandstats", "cmdstat_get")
    if v is None:
        return 0
    return int(dict(kv.split("=") for kv in v.split(","))["calls"])


def wait_replicated(cluster, timeout=10):
    def synced():
        for m in cluster.master_nodes():
            off = int(info_field(m, "replication", "master_repl_offset"))
            for r in cluster.replicas_of(m):
                if int(info_field(r, "replication", "slave_repl_offset") or -1) < off:
                    return False
        return True
    wait_until(synced, timeout, 0.05, "replicas to catch up with their masters")


def redirects(kf):
    m = kf.metrics()
    return (metric_value(m, "keyfence_backend_redirects_total", type="moved") or 0) + \
        (metric_value(m, "keyfence_backend_redirects_total", type="ask") or 0)


def tenant_gets(mon, since):
    """GETs of the tenant's keys a node executed since the mark (keyfence's own accounting
    reads, and the harness's own connections, are not counted)."""
    mon.sync()  # every command so far has reached the monitor stream
    return sum(1 for _addr, args in mon.commands(since)
               if args[0].upper() == b"GET" and args[1].startswith(P))


def owners(cluster, keys):
    """key -> (master node, its replica node)."""
    out = {}
    rep = {m.port: cluster.replica_of(m) for m in cluster.master_nodes()}
    for k in keys:
        m = cluster.node_for_slot(key_slot(P + k))
        out[k] = (m, rep[m.port])
    return out


def test_reads_served_by_replicas(cluster, kf_replica):
    kf = kf_replica
    keys = [f"rr:{i}".encode() for i in range(N)]
    expect = {k: b"val:" + k for k in keys}
    own = owners(cluster, keys)
    masters = cluster.master_nodes()
    replicas = cluster.replica_nodes()
    assert len(masters) == 3 and len(replicas) == 3
    assert len({own[k][0].port for k in keys}) == 3, "keys do not cover every master"

    monitors = {n.port: MonitorChecker(n) for n in cluster.nodes}
    try:
        r0 = redirects(kf)
        marks = {p: m.mark() for p, m in monitors.items()}
        with kf.raw("orders", timeout=5) as c:
            assert pipelined(c, [("SET", k, v) for k, v in expect.items()]) == ["OK"] * N
        # writes go to the masters: each SET on its key's master, none sent to a replica
        assert redirects(kf) == r0, "a write was redirected (sent to a replica?)"
        for k in keys:
            with own[k][0].raw(timeout=2) as d:
                assert d.cmd("GET", P + k) == expect[k]
        set_on = {}
        for m in monitors.values():
            m.sync()  # every command so far has reached the monitor streams
        # Every SET a node executed (the harness sent none; the master's own GETs above
        # are not SETs), so no guess about which client address is whose is needed.
        for port, m in monitors.items():
            for addr, args in m.commands(marks[port], include_own=True):
                if args[0].upper() == b"SET":
                    set_on.setdefault(args[1], []).append((port, addr))
        for k in keys:
            m_port, r_port = own[k][0].port, own[k][1].port
            sent = [(port, addr) for port, addr in set_on.get(P + k, [])
                    # replicated from the master (its link's peer port): not sent
                    if addr != f"{HOST}:{own[k][0].peer_port}"]
            assert [port for port, _ in sent] == [m_port], (
                f"SET {k!r} executed on {sent} (master {m_port}, replica {r_port})")

        wait_replicated(cluster)
        for n in cluster.nodes:
            with n.raw(timeout=2) as d:
                assert d.cmd("CONFIG", "RESETSTAT") == "OK"
        marks = {p: m.mark() for p, m in monitors.items()}
        r0 = redirects(kf)

        with kf.raw("orders", timeout=5) as c:
            got = pipelined(c, [("GET", k) for k in keys])
            bad = [(k, expect[k], g) for k, g in zip(keys, got) if g != expect[k]]
            assert not bad, f"{len(bad)} wrong reads: {bad[:5]}"
            # MGET split over the slots, reads too
            assert c.cmd("MGET", *keys[:20]) == [expect[k] for k in keys[:20]]
            # a write in the middle still goes to a master and reads back
            assert c.cmd("SET", keys[0], b"new") == "OK"
            assert c.cmd("EXISTS", keys[1]) == 1

        # GETs were executed by the replicas, none by the masters
        master_gets = {m.port: tenant_gets(monitors[m.port], marks[m.port]) for m in masters}
        replica_gets = {r.port: get_calls(r) for r in replicas}
        print(f"\n[read_from replica] cmdstat_get calls: masters {master_gets}, "
              f"replicas {replica_gets}")
        assert all(v == 0 for v in master_gets.values()), master_gets
        assert sum(replica_gets.values()) >= N, replica_gets
        per_replica = {}
        for k in keys:
            per_replica[own[k][1].port] = per_replica.get(own[k][1].port, 0) + 1
        for port, n in per_replica.items():
            assert replica_gets[port] >= n, (port, n, replica_gets)

        # MONITOR: each key's GET appears on the replica of its master
        get_on = {}
        for m in monitors.values():
            m.sync()
        for port, m in monitors.items():  # the harness sent no GET since the marks
            for addr, args in m.commands(marks[port], include_own=True):
                if args[0].upper() == b"GET":
                    get_on.setdefault(args[1], set()).add(port)
        wrong_node = [(k, own[k][1].port, sorted(get_on.get(P + k, ())))
                      for k in keys if get_on.get(P + k) != {own[k][1].port}]
        assert not wrong_node, (f"{len(wrong_node)} GETs not executed (only) on the key's "
                                f"replica [(key, replica, executed on)]: {wrong_node[:5]}")
        assert redirects(kf) == r0
        for m in monitors.values():
            m.assert_clean()
    finally:
        for m in monitors.values():
            m.stop()


def test_prefer_replica_with_replica_down(cluster, kf_prefer):
    """Runs last in this module: it kills a replica."""
    kf = kf_prefer
    keys = [f"pr:{i}".encode() for i in range(N)]
    expect = {k: b"val:" + k for k in keys}
    with kf.raw("orders", timeout=5) as c:
        assert pipelined(c, [("SET", k, v) for k, v in expect.items()]) == ["OK"] * N
    wait_replicated(cluster)
    own = owners(cluster, keys)
    masters = cluster.master_nodes()

    # reads go to replicas while they are up
    for n in cluster.nodes:
        with n.raw(timeout=2) as d:
            d.cmd("CONFIG", "RESETSTAT")
    # (MONITOR, not cmdstat_get: keyfence's own accounting store reads a GET too)
    mons = {m.port: MonitorChecker(m) for m in masters}
    marks = {port: mon.mark() for port, mon in mons.items()}
    try:
        with kf.raw("orders", timeout=5) as c:
            assert pipelined(c, [("GET", k) for k in keys]) == [expect[k] for k in keys]
        on_masters = {port: tenant_gets(mon, marks[port]) for port, mon in mons.items()}
    finally:
        for mon in mons.values():
            mon.stop()
    assert not any(on_masters.values()), on_masters

    victim_master = masters[0]
    victim = cluster.replica_of(victim_master)
    cluster.kill(victim)
    for n in cluster.running_nodes():
        with n.raw(timeout=2) as d:
            d.cmd("CONFIG", "RESETSTAT")
    mons = {m.port: MonitorChecker(m) for m in masters}
    marks = {port: mon.mark() for port, mon in mons.items()}

    # reads still answered, promptly: on one long-lived connection and on fresh ones
    # (which land on either worker), repeatedly for ~2 s after the kill
    vkeys = [k for k in keys if own[k][0].port == victim_master.port]
    assert vkeys
    lat, errors = [], []
    t_kill = time.monotonic()
    with kf.raw("orders", timeout=5) as c:
        for i in range(12):
            with kf.raw("orders", timeout=5) as fresh:
                for conn, kind in ((c, "long-lived"), (fresh, "fresh")):
                    for k in vkeys[i * 3:i * 3 + 3]:
                        t0 = time.monotonic()
                        r = conn.cmd("GET", k)
                        lat.append(time.monotonic() - t0)
                        if r != expect[k]:
                            errors.append((round(t0 - t_kill, 2), kind, k, r))
            time.sleep(0.15)
        got = pipelined(c, [("GET", k) for k in keys])
        errors += [(round(time.monotonic() - t_kill, 2), "pipelined", k, g)
                   for k, g in zip(keys, got) if g != expect[k]]
    print(f"\n[prefer_replica] replica {victim.port} of {victim_master.port} killed: "
          f"{len(lat)} single GETs, max {max(lat) * 1000:.1f} ms, {len(errors)} failed; "
          f"GETs on the master {get_calls(victim_master)}")
    assert not errors, (f"{len(errors)} reads failed with the replica down "
                        f"[(s after kill, connection, key, reply)]: {errors[:6]}")
    assert max(lat) < 1.0, f"a read took {max(lat):.2f} s with the replica down"

    # the victim's keys were read from its master; the others still from their replicas
    n_victim = sum(1 for k in keys if own[k][0].port == victim_master.port)
    assert n_victim > 0
    assert get_calls(victim_master) >= n_victim
    for m in masters[1:]:
        assert tenant_gets(mons[m.port], marks[m.port]) == 0, m.port
        assert get_calls(cluster.replica_of(m)) > 0
    for mon in mons.values():
        mon.stop()

    # writes still go to the masters
    with kf.raw("orders", timeout=5) as c:
        assert c.cmd("SET", keys[0], "after") == "OK"
        assert c.cmd("GET", keys[0]) in (b"after", expect[keys[0]])  # replica may lag
    with own[keys[0]][0].raw(timeout=2) as d:
        assert d.cmd("GET", P + keys[0]) == b"after"
