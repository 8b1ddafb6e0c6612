"""One tenant's connections cannot take another's service (issue 9): HTTP request lines
close the connection; a declared-huge bulk reserves little under `ulimit -v`; gateway
sockets that never AUTH are capped per address and in total and closed after
preauth_timeout_ms, while sidecar clients keep connecting; at the fd limit keyfence pauses
accepting (no spin, a log line a second, keyfence_accept_errors_total) and goes on; a
client that does not read is disconnected at its hard or soft output limit while another
tenant's requests keep flowing; a tenant's clients together are held to
tenant_output_buffer_bytes of unread replies; errors never name a backend address.

Every loop here is bounded in count and time; every socket has a timeout."""

import os
import resource
import socket
import threading
import time

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import (HOST, RawConn, RedisServer, RespError, encode_command, free_port,
                     metric_value, wait_until)

GIB = 1 << 30


@pytest.fixture(scope="module")
def backend():
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


def proc_stat(pid):
    """(utime + stime in seconds, RSS bytes, VmSize bytes) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    vsize, rss = int(fields[20]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss, vsize


def test_http_request_lines_close_the_connection(backend):
    kf = start_keyfence(backend.port)
    try:
        with kf.raw("orders") as c, kf.raw("orders") as bystander:
            # What a browser sends when a page posts to localhost:6380.
            c.send_raw(b"SET before 1\r\nPOST / HTTP/1.1\r\nHost: localhost:6380\r\n"
                       b"Content-Length: 20\r\n\r\nSET after 1\r\n")
            assert c.read() == "OK"
            assert c.is_closed(), "the connection stayed open after a POST line"
            assert bystander.cmd("GET", "before") == b"1"
            assert bystander.cmd("EXISTS", "after") == 0  # nothing after the POST ran
        with kf.raw("gateway") as g:  # before AUTH too, and `Host:` alone
            g.send_raw(b"Host: evil.example\r\n")
            assert g.is_closed()
        assert metric_value(kf.metrics(), "keyfence_rejected_total", tenant="orders",
                            reason="protocol") >= 1
    finally:
        stop_keyfence(kf)


def test_declared_huge_bulks_reserve_little(backend):
    """Six connections each declare a 512 MB bulk and send 1 KB of it, under a 1.5 GiB
    address-space limit: keyfence reserves little ahead of what arrived, so it lives."""
    kf = start_keyfence(backend.port, rlimits={resource.RLIMIT_AS: (GIB + GIB // 2,) * 2})
    try:
        _, _, vsize0 = proc_stat(kf.proc.pid)
        conns = []
        for _ in range(6):
            c = kf.raw("orders")
            c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870000\r\n" + b"x" * 1024)
            conns.append(c)
        time.sleep(0.5)
        assert kf.alive, kf.log_tail()
        _, _, vsize1 = proc_stat(kf.proc.pid)
        print(f"VmSize {vsize0 >> 20} MiB idle, {vsize1 >> 20} MiB with 6 x 512 MB declared")
        assert vsize1 - vsize0 < 256 << 20
        with kf.raw("payments") as other:
            assert other.cmd("SET", "k", "v") == "OK"
        for c in conns:
            c.close()
    finally:
        stop_keyfence(kf)


def unauth_conn(kf, source_ip=HOST):
    s = socket.create_connection((HOST, kf.ports["gateway"]), timeout=5,
                                 source_address=(source_ip, 0))
    return s


def closed_with(sock, text: bytes, timeout=3.0) -> bool:
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return text in data
            data += chunk
    except (socket.timeout, ConnectionResetError):
        return False


def test_unauthenticated_sockets_are_capped_and_timed_out(backend):
    kf = start_keyfence(backend.port, {"max_clients": 40, "limits": {
        "preauth_timeout_ms": 800, "max_unauthenticated_per_ip": 5}})
    try:
        first = [RawConn(kf.ports["gateway"], timeout=5) for _ in range(5)]
        time.sleep(0.1)
        sixth = unauth_conn(kf)
        assert closed_with(sixth, b"too many unauthenticated connections from this address")
        # another address is not blocked by this one; sidecar clients are not either
        other = unauth_conn(kf, "127.0.0.2")
        with kf.raw("orders") as sidecar:
            assert sidecar.cmd("PING") == "PONG"
        # AUTH frees the slot at once
        authed = first[0]
        assert authed.cmd("AUTH", "orders", "orders-secret") == "OK"
        seventh = unauth_conn(kf)
        # in time, every socket that never AUTHed is closed with the reason; the authed stays
        t0 = time.monotonic()
        for s in [c.sock for c in first[1:]] + [other, seventh]:
            assert closed_with(s, b"no AUTH within limits.preauth_timeout_ms", 5)
        assert time.monotonic() - t0 < 4
        assert authed.cmd("PING") == "PONG"
        authed.close()
        # the total cap (half of max_clients) holds across addresses
        many = [unauth_conn(kf, f"127.0.1.{i}") for i in range(25)]
        time.sleep(0.3)
        refused = sum(1 for s in many if closed_with(s, b"too many unauthenticated", 0.3))
        assert refused == 25 - 20, refused
        with kf.raw("payments") as sidecar:
            assert sidecar.cmd("PING") == "PONG"
        for s in many:
            s.close()
    finally:
        stop_keyfence(kf)


def test_fd_limit_pauses_accepting_and_recovers(backend):
    kf = start_keyfence(backend.port, rlimits={resource.RLIMIT_NOFILE: (128, 128)})
    try:
        with kf.raw("orders") as kept:
            assert kept.cmd("SET", "k", "v") == "OK"
            socks = []
            for _ in range(200):  # more than the fds keyfence has left
                socks.append(socket.create_connection((HOST, kf.ports["orders"]), timeout=5))
            time.sleep(0.5)
            cpu0, _, _ = proc_stat(kf.proc.pid)
            time.sleep(2.0)
            cpu1, _, _ = proc_stat(kf.proc.pid)
            lines = open(kf.log_path).read().count("accept failed")
            assert cpu1 - cpu0 < 0.5, f"keyfence spun at the fd limit: {cpu1 - cpu0:.2f} s CPU"
            assert lines <= 10, f"{lines} log lines in 2.5 s"
            assert kept.cmd("GET", "k") == b"v"  # existing clients are served
            for s in socks:
                s.close()
        # fds are free again: new clients are accepted
        def accepts():
            try:
                with kf.raw("orders", timeout=2) as c:
                    return c.cmd("PING") == "PONG"
            except OSError:
                return False
        wait_until(accepts, 5, what="accepting again")
        errors = metric_value(kf.metrics(), "keyfence_accept_errors_total") or 0
        print(f"at the fd limit: {cpu1 - cpu0:.2f} s CPU in 2 s, {errors} accept errors, "
              f"{lines} log lines")
        assert errors > 0
        assert kf.alive
    finally:
        stop_keyfence(kf)


def over_limit_closes(kf, tenant="orders"):
    return metric_value(kf.metrics(), "keyfence_rejected_total", tenant=tenant,
                        reason="too_large") or 0


def never_reading(kf, tenant="orders"):
    """A client with a 4 KB receive window (set before connecting) that never reads."""
    c = kf.raw(tenant, timeout=10)
    c.sock.close()
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.settimeout(10)
    c.sock.connect((HOST, kf.ports[tenant]))
    return c


def reaches_eof(c, timeout=10.0) -> bool:
    """Drains `c`; True if keyfence had closed it (EOF or reset before the timeout)."""
    c.sock.settimeout(timeout)
    try:
        while c.sock.recv(1 << 20):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_slow_reader_capped_while_another_tenant_flows(backend):
    hard, soft = 8 << 20, 2 << 20
    kf = start_keyfence(backend.port, {"limits": {
        "client_output_buffer_bytes": hard, "client_output_buffer_soft_bytes": soft,
        "client_output_buffer_soft_seconds": 1}})
    try:
        with kf.raw("orders") as c:
            assert c.cmd("SET", "big", "x" * (10 << 20)) == "OK"
            assert c.cmd("SET", "mid", "x" * (1 << 20)) == "OK"
        _, rss0, _ = proc_stat(kf.proc.pid)
        closes0 = over_limit_closes(kf)
        # hard: 100 x 10 MB asked for at once, never read
        slow = never_reading(kf)
        slow.send_raw(encode_command("GET", "big") * 100)
        lat, errs = [], []

        def other_tenant():
            with kf.raw("payments", timeout=5) as p:
                for i in range(0, 10000, 100):
                    t0 = time.monotonic()
                    for j in range(100):
                        p.send("SET", f"p{i + j}", j)
                    r = [p.read() for _ in range(100)]
                    lat.append(time.monotonic() - t0)
                    errs.extend(x for x in r if x != "OK")
        t = threading.Thread(target=other_tenant)
        t.start()
        t.join(timeout=60)
        wait_until(lambda: over_limit_closes(kf) > closes0, 5, what="the hard-limit close")
        _, rss1, _ = proc_stat(kf.proc.pid)
        assert reaches_eof(slow), "the reader over its hard limit was not disconnected"
        lat.sort()
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(f"RSS {rss0 >> 20} -> {rss1 >> 20} MiB; other tenant p99 per 100-request batch "
              f"{p99 * 1000:.1f} ms")
        assert not errs and len(lat) == 100
        assert rss1 < rss0 + hard * 1.1 + (24 << 20)
        assert p99 < 0.25
        # soft: 6 MB unread (over soft, under hard) for longer than 1 s
        slow = never_reading(kf)
        t0 = time.monotonic()
        slow.send_raw(encode_command("GET", "mid") * 6)
        wait_until(lambda: over_limit_closes(kf) > closes0 + 1, 6, 0.05,
                   what="the soft-limit close")
        took = time.monotonic() - t0
        print(f"soft limit: disconnected after {took:.2f} s")
        assert 0.9 < took < 4
        assert reaches_eof(slow)
        with kf.raw("orders") as c:
            assert c.cmd("PING") == "PONG"
    finally:
        stop_keyfence(kf)


def test_tenant_output_buffer_cap_closes_its_growing_slow_readers_only(backend):
    """tenant_output_buffer_bytes caps the unread replies of all a tenant's clients
    together: orders' three slow readers (10 MB asked each, each under its own 64 MB hard
    limit) cannot make keyfence hold more than the tenant's 8 MB; the ones that grow over
    it are closed, while orders' fast reader and payments' slow reader (5 MB: under its own
    cap) keep working."""
    cap, value = 8 << 20, 1 << 20
    kf = start_keyfence(backend.port, {"limits": {
        "client_output_buffer_bytes": 64 << 20, "client_output_buffer_soft_bytes": 0,
        "tenant_output_buffer_bytes": cap}})
    try:
        for tenant in ("orders", "payments"):
            with kf.raw(tenant) as c:
                assert c.cmd("SET", "v", "x" * value) == "OK"
        _, rss0, _ = proc_stat(kf.proc.pid)
        closes0 = over_limit_closes(kf)
        theirs = never_reading(kf, "payments")
        theirs.send_raw(encode_command("GET", "v") * 5)
        slow = [never_reading(kf) for _ in range(3)]
        with kf.raw("orders") as fast:
            for c in slow:
                c.send_raw(encode_command("GET", "v") * 10)
            for i in range(200):  # the tenant's fast reader goes on throughout
                assert fast.cmd("SET", f"f{i}", i) == "OK"
            wait_until(lambda: over_limit_closes(kf) > closes0, 10, what="a tenant-cap close")
            _, rss1, _ = proc_stat(kf.proc.pid)
            assert fast.cmd("GET", "f199") == b"199"
        closed = sum(reaches_eof(c, 3) for c in slow)
        print(f"tenant cap {cap >> 20} MiB: {closed} of 3 slow readers closed; RSS "
              f"{rss0 >> 20} -> {rss1 >> 20} MiB")
        assert closed >= 1
        assert rss1 < rss0 + (cap + 5 * value) * 1.1 + (24 << 20)  # orders' cap + payments' 5 MB
        assert "tenant_output_buffer_bytes" in open(kf.log_path).read()
        # payments: never closed, all its replies whole
        assert over_limit_closes(kf, "payments") in (0, None)
        theirs.sock.settimeout(10)
        for _ in range(5):
            assert theirs.read() == b"x" * value
        theirs.close()
    finally:
        stop_keyfence(kf)


def test_errors_name_no_backend_address():
    port = free_port()  # nothing listens here
    kf = start_keyfence(port)
    try:
        with kf.raw("orders") as c:
            r = c.cmd("GET", "k")
            assert isinstance(r, RespError), r
            assert str(port) not in r.text and "127.0.0.1" not in r.text, r.text
        assert str(port) in open(kf.log_path).read()  # the address is logged instead
    finally:
        stop_keyfence(kf)


def test_dedicated_connections_are_capped_per_tenant(backend):
    kf = start_keyfence(backend.port, {"tenants": {"orders": {"limits": {
        "max_dedicated_connections": 2}}}})
    try:
        a, b, c = (kf.raw("orders") for _ in range(3))
        with kf.raw("payments") as other:
            a.send("BLPOP", "q", 1)
            assert b.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
            time.sleep(0.1)
            r = c.cmd("BLPOP", "q", 1)
            assert isinstance(r, RespError) and "max_dedicated_connections" in r.text, r
            assert c.cmd("MULTI") == "OK" and c.cmd("SET", "k", "v") == "QUEUED"
            r = c.cmd("EXEC")
            assert isinstance(r, RespError) and "max_dedicated_connections" in r.text, r
            assert c.cmd("SET", "k", "v") == "OK"  # shared commands go on
            assert other.cmd("BLPOP", "pq", "0.1") is None  # another tenant is not capped
            assert a.read() is None  # the BLPOP timed out: its slot is free again
            time.sleep(0.1)
            assert c.cmd("BLPOP", "q", "0.1") is None
        for x in (a, b, c):
            x.close()
    finally:
        stop_keyfence(kf)
