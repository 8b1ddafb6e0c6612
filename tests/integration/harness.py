"""Test harness for keyfence integration tests.

Starts real processes on loopback only (127.0.0.1) with dynamically chosen
ports, and kills every process it started by PID:

  * RedisServer  - a throw-away redis-server (no persistence).
  * Keyfence     - the proxy under test, with a generated YAML config.
  * RawConn      - a minimal RESP2/RESP3 client over a raw socket (for protocol
                   tests and for reading replies exactly as sent).
  * MonitorChecker - records every command the backend executes (MONITOR) and
                   checks, with the backend's own COMMAND GETKEYS, that every key
                   and channel keyfence sent lies inside a tenant namespace.

Run as a script it starts a backend and keyfence and runs a command with the
ports in its environment (used by tests/clients/run.sh):

    /usr/bin/python3 harness.py run -- node --test
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

HOST = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CLUSTER = "shop"
# keyfence's own data (accounting reports, locks) lives in its reserved namespace.
PREFIXES = (b"shop@orders:", b"shop@payments:", b"shop@__keyfence:")

# Every Keyfence currently running (conftest prints their log tails on failure).
LIVE_KEYFENCES: list = []


def keyfence_bin() -> str:
    return os.environ.get("KEYFENCE_BIN") or os.path.join(REPO, "build", "keyfence")


def free_port() -> int:
    """A free loopback port: bind 127.0.0.1:0, read it back, close."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    for _ in range(100):
        if len(ports) == n:
            break
        p = free_port()
        # Keep clear of redis cluster bus range collisions and duplicates.
        ports.add(p)
    return list(ports)


def port_accepts(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def tail(path: str, n: int = 60) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------------------
# RESP client (raw socket)
# --------------------------------------------------------------------------------------

class RespError:
    """An error reply (returned, not raised, so tests can compare text)."""

    def __init__(self, text: str):
        self.text = text

    @property
    def code(self) -> str:
        return self.text.split(" ", 1)[0]

    def __repr__(self):
        return f"RespError({self.text!r})"

    def __eq__(self, other):
        return isinstance(other, RespError) and other.text == self.text

    def __hash__(self):
        return hash(self.text)


class RespMap(dict):
    """A RESP3 map ('%')."""


class RespSet(list):
    """A RESP3 set ('~')."""


class RespPush(list):
    """A RESP3 push ('>')."""


class RespSimple(str):
    """A simple string ('+')."""


class ConnectionClosed(Exception):
    pass


def encode_command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, float):
            a = repr(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RawConn:
    """A minimal blocking RESP2/RESP3 client on a raw socket."""

    def __init__(self, port: int, host: str = HOST, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.pos = 0

    # -- io --
    def settimeout(self, t):
        self.sock.settimeout(t)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send(self, *args):
        self.sock.sendall(encode_command(*args))

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionClosed("connection closed by peer")
        if self.pos > (1 << 20):
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n + 2
        return data

    def read(self):
        line = self._line()
        if not line:
            raise ValueError("empty RESP line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return RespSimple(rest.decode("utf-8", "replace"))
        if t == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"(":
            return int(rest)
        if t == b",":
            s = rest.decode()
            return float(s.replace("inf", "inf"))
        if t == b"#":
            return rest == b"t"
        if t == b"_":
            return None
        if t in (b"$", b"=", b"!"):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            if t == b"!":
                return RespError(data.decode("utf-8", "replace"))
            if t == b"=":
                return data[4:]  # strip "txt:" format prefix
            return data
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.read() for _ in range(n)]
            if t == b"~":
                return RespSet(items)
            if t == b">":
                return RespPush(items)
            return items
        if t == b"%":
            n = int(rest)
            m = RespMap()
            for _ in range(n):
                k = self.read()
                v = self.read()
                if isinstance(k, list):
                    k = tuple(k)
                m[k] = v
            return m
        if t == b"|":
            n = int(rest)
            for _ in range(2 * n):
                self.read()
            return self.read()
        raise ValueError(f"bad RESP type byte {t!r} in line {line[:80]!r}")

    def cmd(self, *args):
        self.send(*args)
        return self.read()

    def is_closed(self, timeout: float = 3.0) -> bool:
        """True if the peer closed the connection (EOF) within timeout, after
        draining any pending bytes."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --------------------------------------------------------------------------------------
# Backend (direct) clients that remember their own socket addresses, so that the
# MONITOR checker can tell the harness's own commands from keyfence's.
# --------------------------------------------------------------------------------------

# addr -> [[opened, closed-or-None], ...] (wall clock, like MONITOR's timestamps). Ports
# are reused by the kernel, so ownership is decided by address AND time.
_OWN: dict[str, list] = {}
_OWN_LOCK = threading.Lock()
_OWN_SLACK = 0.05


def _own_open(sock) -> str | None:
    try:
        h, p = sock.getsockname()[:2]
    except OSError:
        return None
    addr = f"{h}:{p}"
    with _OWN_LOCK:
        _OWN.setdefault(addr, []).append([time.time() - _OWN_SLACK, None])
    return addr


def _own_close(addr: str | None):
    if not addr:
        return
    with _OWN_LOCK:
        for iv in _OWN.get(addr, []):
            if iv[1] is None:
                iv[1] = time.time() + _OWN_SLACK


def is_own(addr: str, ts: float | None = None) -> bool:
    """Was `addr` one of the harness's own backend connections at time `ts`?"""
    with _OWN_LOCK:
        ivs = list(_OWN.get(addr, []))
    if ts is None:
        return bool(ivs)
    return any(a <= ts and (b is None or ts <= b) for a, b in ivs)


try:
    import redis  # Debian python3-redis 4.3.4 (use /usr/bin/python3)

    class TrackedConnection(redis.Connection):
        _kf_addr = None

        def _connect(self):
            sock = super()._connect()
            self._kf_addr = _own_open(sock)
            return sock

        def disconnect(self, *a, **kw):
            _own_close(self._kf_addr)
            self._kf_addr = None
            return super().disconnect(*a, **kw)
except ImportError:  # pragma: no cover - harness "run" mode without redis-py
    redis = None


class TrackedRaw(RawConn):
    def __init__(self, port: int, timeout: float = 10.0):
        super().__init__(port, timeout=timeout)
        self._kf_addr = _own_open(self.sock)

    def close(self):
        _own_close(self._kf_addr)
        self._kf_addr = None
        super().close()


# --------------------------------------------------------------------------------------
# redis-server
# --------------------------------------------------------------------------------------

# KF_TEST_BACKEND_TLS=1: every redis-server the harness starts also listens with TLS
# (--tls-port; cluster nodes with --tls-cluster/--tls-replication), and every keyfence
# reaches its backend through those ports with backend.tls. The plain port stays for
# the tests' own inspection of the backend. TLS_PORT_OF maps plain port -> TLS port.
BACKEND_TLS = bool(os.environ.get("KF_TEST_BACKEND_TLS"))
TLS_PORT_OF: dict[int, int] = {}
_backend_pki: dict | None = None


def backend_pki() -> dict:
    """A CA and a server certificate for 127.0.0.1/localhost, made once per process."""
    global _backend_pki
    if _backend_pki is None:
        from certs import Ca, write_pair
        d = tempfile.mkdtemp(prefix="kf-backend-pki-")
        ca = Ca("keyfence backend test CA")
        cert, key = write_pair(d, "redis", *ca.issue("redis", dns=["localhost"],
                                                      ips=["127.0.0.1"], server=True, client=True))
        client = write_pair(d, "client", *ca.issue("keyfence"))
        _backend_pki = {"dir": d, "ca_obj": ca, "ca": ca.write(d), "cert": cert, "key": key,
                        "client": client}
    return _backend_pki


def redis_tls_args(tls_port: int, cluster: bool = False, auth_clients: str = "no") -> list[str]:
    pki = backend_pki()
    args = ["--tls-port", str(tls_port), "--tls-cert-file", pki["cert"], "--tls-key-file",
            pki["key"], "--tls-ca-cert-file", pki["ca"], "--tls-auth-clients", auth_clients]
    if cluster:
        args += ["--tls-cluster", "yes", "--tls-replication", "yes"]
    return args


class RedisServer:
    def __init__(self, port: int | None = None, extra_args: list[str] | None = None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="kf-redis-")
        self.extra_args = extra_args or []
        if BACKEND_TLS and "--tls-port" not in self.extra_args:
            cluster = "--cluster-enabled" in self.extra_args
            self.tls_port = free_cluster_port() if cluster else free_port()
            self.extra_args = self.extra_args + redis_tls_args(self.tls_port, cluster)
            TLS_PORT_OF[self.port] = self.tls_port
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(self.dir, "redis.log")

    def start(self, timeout: float = 10.0):
        args = [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--dir", self.dir, "--logfile", self.log,
            "--daemonize", "no",
        ] + self.extra_args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}:\n{tail(self.log)}")
            try:
                with RawConn(self.port, timeout=0.5) as c:
                    return c.cmd("PING") == "PONG"
            except OSError:
                return False
        wait_until(ready, timeout, what=f"redis-server on port {self.port}")
        return self

    def stop(self):
        """Kill by PID (SIGKILL) and reap."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def peer_port(self) -> int:
        """The port another node reaches this one at (MIGRATE): TLS under KF_TEST_BACKEND_TLS."""
        return TLS_PORT_OF.get(self.port, self.port)

    def client(self, **kw):
        """A redis-py client connected directly to the backend (bytes replies)."""
        pool = redis.ConnectionPool(connection_class=TrackedConnection, host=HOST,
                                    port=self.port, socket_timeout=10,
                                    socket_connect_timeout=5, **kw)
        return redis.Redis(connection_pool=pool)

    def raw(self, timeout: float = 10.0) -> TrackedRaw:
        return TrackedRaw(self.port, timeout=timeout)


def cli_node(node: "RedisServer") -> list[str]:
    """redis-cli arguments naming a node for --cluster commands (through TLS if the bus is)."""
    if BACKEND_TLS:
        return ["--tls", "--cacert", backend_pki()["ca"], f"{HOST}:{node.peer_port}"]
    return [f"{HOST}:{node.port}"]


def tls_endpoint(addr: str) -> str:
    """host:port of a harness redis-server -> its TLS address (unchanged if it has none)."""
    host, _, port = addr.rpartition(":")
    return f"{host}:{TLS_PORT_OF.get(int(port), int(port))}"


def free_cluster_port() -> int:
    """A free port P whose cluster bus port P+10000 is free too."""
    for _ in range(200):
        p = free_port()
        if p + 10000 > 65535:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, p + 10000))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port pair for a cluster node")


class SentinelGroup:
    """One master, `replicas` replicas and `sentinels` sentinels (quorum 2) on loopback, all
    real redis-server processes. down-after-milliseconds is `down_after_ms`, so a killed
    master is failed over in about that plus an election."""

    def __init__(self, name: str = "mymaster", replicas: int = 2, sentinels: int = 3,
                 down_after_ms: int = 1000):
        self.name = name
        self.down_after_ms = down_after_ms
        self.master = RedisServer()
        self.replicas = [RedisServer() for _ in range(replicas)]
        self.sentinel_ports = free_ports(sentinels)
        self.sentinel_dirs = [tempfile.mkdtemp(prefix="kf-sentinel-") for _ in range(sentinels)]
        self.sentinel_procs: list[subprocess.Popen] = []

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master] + self.replicas

    def start(self, timeout: float = 30.0):
        self.master.start()
        for r in self.replicas:
            r.extra_args += ["--replicaof", HOST, str(self.master.port)]
            r.start()
        for port, d in zip(self.sentinel_ports, self.sentinel_dirs):
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:  # sentinel rewrites it: a file of its own
                f.write(f"port {port}\nbind {HOST}\ndaemonize no\ndir {d}\n"
                        f"logfile {os.path.join(d, 'sentinel.log')}\n"
                        f"sentinel monitor {self.name} {HOST} {self.master.port} 2\n"
                        f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
                        f"sentinel failover-timeout {self.name} 10000\n"
                        f"sentinel parallel-syncs {self.name} 2\n")
            self.sentinel_procs.append(subprocess.Popen(
                [shutil.which("redis-server") or "/usr/bin/redis-server", conf, "--sentinel"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def ready():
            for port in self.sentinel_ports:
                try:
                    with RawConn(port, timeout=1) as c:
                        m = c.cmd("SENTINEL", "MASTER", self.name)
                except OSError:
                    return False
                if isinstance(m, RespError):
                    return False
                f = dict(zip(m[::2], m[1::2]))
                if int(f[b"num-slaves"]) < len(self.replicas) or \
                        int(f[b"num-other-sentinels"]) < len(self.sentinel_ports) - 1:
                    return False
            for r in self.replicas:
                with RawConn(r.port, timeout=1) as c:
                    if b"master_link_status:up" not in c.cmd("INFO", "replication"):
                        return False
            return True
        wait_until(ready, timeout, 0.2, "every sentinel sees the replicas and the others")
        return self

    def sentinel_addrs(self) -> list[str]:
        return [f"{HOST}:{p}" for p in self.sentinel_ports]

    def master_port(self, sentinel: int = 0) -> int:
        with RawConn(self.sentinel_ports[sentinel], timeout=2) as c:
            return int(c.cmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)[1])

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def current_master(self) -> RedisServer:
        return self.server(self.master_port())

    def failover(self):
        """SENTINEL FAILOVER; returns the new master once every sentinel names it and it
        answers ROLE as a master."""
        old = self.master_port()
        with RawConn(self.sentinel_ports[0], timeout=5) as c:
            assert c.cmd("SENTINEL", "FAILOVER", self.name) == "OK"
        return self.wait_new_master(old, 30)

    def wait_new_master(self, old_port: int, timeout: float) -> RedisServer:
        def switched():
            ports = set()
            for i in range(len(self.sentinel_ports)):
                try:
                    ports.add(self.master_port(i))
                except OSError:
                    return False
            if len(ports) != 1 or old_port in ports:
                return False
            new = self.server(ports.pop())
            with RawConn(new.port, timeout=1) as c:
                return new if c.cmd("ROLE")[0] == b"master" else False
        return wait_until(switched, timeout, 0.05, "the sentinels to name a new master")

    def cleanup(self):
        for p in self.sentinel_procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        for d in self.sentinel_dirs:
            shutil.rmtree(d, ignore_errors=True)
        for s in self.servers:
            s.cleanup()


class RedisClusterNodes:
    """N cluster-mode nodes, slots spread by redis-cli.

    `replicas=0` (the default): N masters. `replicas=R`: N/(R+1) masters, each with R
    replicas (`redis-cli --cluster create ... --cluster-replicas R`). `node_timeout` is
    `cluster-node-timeout` in ms (small values make failover quick); `extra_args` are added
    to every node's command line (e.g. ["--cluster-require-full-coverage", "no"]).
    """

    def __init__(self, n: int = 3, replicas: int = 0, node_timeout: int = 5000,
                 extra_args: list[str] | None = None):
        if replicas < 0 or n % (replicas + 1) != 0 or n // (replicas + 1) < 3:
            raise ValueError(f"{n} nodes cannot make >= 3 masters with {replicas} replicas each")
        self.replicas = replicas
        self.n_masters = n // (replicas + 1)
        self.nodes = [RedisServer(free_cluster_port(), ["--cluster-enabled", "yes",
                                                        "--cluster-config-file", "nodes.conf",
                                                        "--cluster-node-timeout",
                                                        str(node_timeout)]
                                  + list(extra_args or []))
                      for _ in range(n)]

    def start(self, timeout: float = 30.0):
        for n in self.nodes:
            n.start()
        addrs = [f"{HOST}:{n.port}" for n in self.nodes]
        tls = []
        if BACKEND_TLS:  # the bus runs over TLS: the cluster is made through the TLS ports
            addrs = [f"{HOST}:{TLS_PORT_OF[n.port]}" for n in self.nodes]
            tls = ["--tls", "--cacert", backend_pki()["ca"]]
        r = subprocess.run(["redis-cli", *tls, "--cluster", "create", *addrs, "--cluster-replicas",
                            str(self.replicas), "--cluster-yes"], capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"cluster create failed: {r.stdout.decode()} {r.stderr.decode()}")

        def ok():
            for n in self.nodes:
                with RawConn(n.port, timeout=2) as c:
                    info = c.cmd("CLUSTER", "INFO")
                    if b"cluster_state:ok" not in info:
                        return False
                    slots = c.cmd("CLUSTER", "SLOTS")
                    if len(slots) < self.n_masters:
                        return False
                    # every range lists its master and all of its replicas
                    if any(len(s) < 3 + self.replicas for s in slots):
                        return False
            for n in self.replica_nodes():
                with RawConn(n.port, timeout=2) as c:
                    if b"master_link_status:up" not in c.cmd("INFO", "replication"):
                        return False
            return True
        wait_until(ok, timeout, 0.2, "cluster_state:ok on every node")
        return self

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    def running_nodes(self) -> list["RedisServer"]:
        return [n for n in self.nodes if n.running]

    def _by_port(self, port: int) -> "RedisServer":
        return next(n for n in self.nodes if n.port == port)

    def _slots(self):
        """CLUSTER SLOTS from the first running node that answers."""
        last = None
        for n in self.running_nodes():
            try:
                with RawConn(n.port, timeout=2) as c:
                    r = c.cmd("CLUSTER", "SLOTS")
                if isinstance(r, list):
                    return r
                last = r
            except OSError as e:
                last = e
        raise RuntimeError(f"no node answered CLUSTER SLOTS: {last!r}")

    def node_for_slot(self, slot: int) -> "RedisServer":
        for start, end, master, *_ in self._slots():
            if start <= slot <= end:
                return self._by_port(master[1])
        raise KeyError(slot)

    def role(self, node: "RedisServer") -> str:
        """"master" or "slave" (as ROLE says), of a running node."""
        with RawConn(node.port, timeout=2) as c:
            return c.cmd("ROLE")[0].decode()

    def master_nodes(self) -> list["RedisServer"]:
        """Running nodes that are masters now."""
        return [n for n in self.running_nodes() if self.role(n) == "master"]

    def replica_nodes(self) -> list["RedisServer"]:
        """Running nodes that are replicas now."""
        return [n for n in self.running_nodes() if self.role(n) != "master"]

    def replicas_of(self, master: "RedisServer") -> list["RedisServer"]:
        """Running replicas of `master` (by its node id, from CLUSTER REPLICAS)."""
        mid = self.node_id(master)
        for n in self.running_nodes():
            try:
                with RawConn(n.port, timeout=2) as c:
                    lines = c.cmd("CLUSTER", "REPLICAS", mid)
            except OSError:
                continue
            if isinstance(lines, list):
                out = []
                for line in lines:
                    addr = line.decode().split()[1].split("@")[0]
                    port = int(addr.rsplit(":", 1)[1])
                    node = self._by_port(port)
                    if node.running:
                        out.append(node)
                return out
        return []

    def replica_of(self, master: "RedisServer") -> "RedisServer":
        reps = self.replicas_of(master)
        if not reps:
            raise KeyError(f"no running replica of the master on port {master.port}")
        return reps[0]

    def move_slot(self, slot: int, dst: "RedisServer"):
        """Moves one slot (and its keys) to `dst` as `redis-cli --cluster reshard` does:
        IMPORTING/MIGRATING, MIGRATE of its keys, then SETSLOT NODE on dst, the source,
        and the other masters."""
        src = self.node_for_slot(slot)
        src_id, dst_id = self.node_id(src), self.node_id(dst)
        with dst.raw() as d, src.raw() as s:
            assert d.cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id) == "OK"
            assert s.cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id) == "OK"
            for k in s.cmd("CLUSTER", "GETKEYSINSLOT", slot, 1000):
                assert s.cmd("MIGRATE", HOST, dst.peer_port, "", 0, 10000, "KEYS", k) == "OK"
        for n in [dst, src] + [n for n in self.master_nodes() if n not in (src, dst)]:
            with n.raw() as x:
                assert x.cmd("CLUSTER", "SETSLOT", slot, "NODE", dst_id) == "OK"

    def kill(self, node: "RedisServer"):
        """SIGKILL one node by PID (its data dir stays, so it could be restarted)."""
        node.stop()

    def node_id(self, node: "RedisServer") -> bytes:
        with RawConn(node.port) as c:
            return c.cmd("CLUSTER", "MYID")

    def all_keys(self) -> list[bytes]:
        """Every key on the running masters (replicas hold copies: not counted)."""
        keys = []
        for n in self.master_nodes():
            with n.raw() as c:
                keys.extend(c.cmd("KEYS", "*"))
        return keys

    def flushall(self):
        for n in self.master_nodes():
            with n.raw() as c:
                c.cmd("FLUSHALL")

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key: bytes) -> int:
    i = key.find(b"{")
    if i >= 0:
        j = key.find(b"}", i + 1)
        if j > i + 1:
            key = key[i + 1:j]
    return crc16(key) % 16384


# --------------------------------------------------------------------------------------
# YAML emitter (tiny, enough for keyfence configs; avoids a PyYAML dependency)
# --------------------------------------------------------------------------------------

def _yscalar(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # JSON strings are valid YAML double-quoted scalars


def to_yaml(obj, indent: int = 0) -> str:
    pad = "  " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict):
                if v:
                    lines.append(f"{pad}{k}:")
                    lines.append(to_yaml(v, indent + 1))
                else:
                    lines.append(f"{pad}{k}: {{}}")
            elif isinstance(v, list):
                if not v:
                    lines.append(f"{pad}{k}: []")
                elif all(not isinstance(x, (dict, list)) for x in v):
                    lines.append(f"{pad}{k}: [" + ", ".join(_yscalar(x) for x in v) + "]")
                else:
                    lines.append(f"{pad}{k}:")
                    lines.append(to_yaml(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {_yscalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict):
                sub = to_yaml(item, indent + 1).splitlines()
                first = sub[0].lstrip()
                lines.append(f"{pad}- {first}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_yscalar(item)}")
    else:
        lines.append(pad + _yscalar(obj))
    return "\n".join(lines)


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------
# keyfence
# --------------------------------------------------------------------------------------

USERS = {
    "orders": ("orders", "orders-secret"),
    "billing": ("billing", "billing-secret"),
    "payments": ("payments", "payments-secret"),
}


class KeyfenceStartError(RuntimeError):
    pass


class Keyfence:
    """Runs build/keyfence (or $KEYFENCE_BIN) with a generated config.

    Listeners: "gateway" (AUTH picks the tenant), "orders" (sidecar for tenant
    orders), "payments" (sidecar for tenant payments).
    """

    def __init__(self, backend_port: int, overrides: dict | None = None,
                 backend_nodes: list[str] | None = None, rlimits: dict | None = None,
                 extra_listeners: list[dict] | None = None, log_format: str = "text"):
        self.bin = keyfence_bin()
        self.log_format = log_format
        self.extra_listeners = extra_listeners or []  # e.g. {"unix": PATH, "tenant": ...}
        self.rlimits = rlimits or {}  # resource.RLIMIT_* -> (soft, hard), set in the child
        self.backend_port = backend_port
        self.backend_nodes = backend_nodes
        self.overrides = overrides or {}
        self.dir = tempfile.mkdtemp(prefix="kf-proxy-")
        self.config_path = os.path.join(self.dir, "keyfence.yaml")
        self.log_path = os.path.join(self.dir, "keyfence.log")
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.admin_port = 0
        self.config: dict = {}

    # -- config --
    def build_config(self) -> dict:
        g, o, p, a = free_ports(4)
        self.ports = {"gateway": g, "orders": o, "payments": p}
        self.admin_port = a
        cfg = {
            "cluster_name": CLUSTER,
            "workers": 2,
            "shutdown_grace_ms": 2000,
            "listeners": [
                {"bind": f"{HOST}:{g}"},
                {"bind": f"{HOST}:{o}", "tenant": "orders"},
                {"bind": f"{HOST}:{p}", "tenant": "payments"},
            ] + self.extra_listeners,
            "admin": {"bind": f"{HOST}:{a}"},
            "backend": {
                "mode": "standalone",
                "nodes": self.backend_nodes or [f"{HOST}:{self.backend_port}"],
                "connect_timeout_ms": 500,
                "request_timeout_ms": 3000,
            },
            "tenants": {
                "orders": {"users": [
                    {"name": "orders", "password": "orders-secret"},
                    {"name": "billing", "password": "billing-secret"},
                ]},
                "payments": {"users": [
                    {"name": "payments", "password": "payments-secret"},
                ]},
            },
        }
        if os.environ.get("KF_TEST_BACKEND_ACL"):  # the suites again with the ACL backstop
            cfg["backend"]["acl"] = os.environ["KF_TEST_BACKEND_ACL"]
        cfg = deep_merge(cfg, self.overrides)
        if cfg["backend"].get("mode") == "sentinel":
            cfg["backend"].pop("nodes", None)  # the sentinels name the master
        if BACKEND_TLS and "tls" not in cfg["backend"]:
            cfg["backend"]["nodes"] = [tls_endpoint(n) for n in cfg["backend"].get("nodes", [])]
            cfg["backend"]["tls"] = {"ca": backend_pki()["ca"]}
        return cfg

    def write_config(self, cfg: dict | None = None):
        if cfg is not None:
            self.config = cfg
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.config) + "\n")

    # -- lifecycle --
    def start(self, timeout: float = 10.0):
        if not os.path.exists(self.bin):
            raise KeyfenceStartError(
                f"keyfence binary not found at {self.bin} (build it, or set KEYFENCE_BIN)")
        last = None
        for _attempt in range(3):
            self.config = self.build_config()
            self.write_config()
            try:
                self._start_once(timeout)
                LIVE_KEYFENCES.append(self)
                return self
            except KeyfenceStartError as e:
                last = e
                log = tail(self.log_path, 200)
                if "in use" not in log.lower():
                    raise
        raise last

    def _apply_rlimits(self):
        import resource
        for what, lim in self.rlimits.items():
            resource.setrlimit(what, lim)

    def _start_once(self, timeout: float):
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.bin, "--config", self.config_path, "--log-level", "info",
                 "--log-format", self.log_format],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=self._apply_rlimits if self.rlimits else None)
        except OSError as e:  # e.g. the binary is being rewritten by a build
            raise KeyfenceStartError(f"cannot run {self.bin}: {e}") from e
        finally:
            logf.close()
        want = list(self.ports.values()) + [self.admin_port]
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise KeyfenceStartError(
                    f"keyfence exited with {self.proc.returncode} during startup; log:\n"
                    + tail(self.log_path))
            if all(port_accepts(p) for p in want):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise KeyfenceStartError(
                    f"keyfence did not open ports {want} within {timeout}s; log:\n"
                    + tail(self.log_path))
            time.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 8.0) -> int:
        """SIGTERM, wait; returns the exit code (kills and raises on timeout)."""
        if self.proc is None:
            return 0
        if self in LIVE_KEYFENCES:
            LIVE_KEYFENCES.remove(self)
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self.proc = None
            return rc
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"keyfence did not exit within {timeout}s of SIGTERM; log:\n"
                                 + tail(self.log_path))
        self.proc = None
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self in LIVE_KEYFENCES:
            LIVE_KEYFENCES.remove(self)

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, n: int = 60) -> str:
        return tail(self.log_path, n)

    # -- clients --
    def port(self, listener: str) -> int:
        return self.ports[listener]

    def client(self, listener: str = "orders", **kw):
        """redis-py client on a listener. For "gateway" pass username/password."""
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host=HOST, port=self.ports[listener], **kw)

    def user_client(self, user: str, **kw):
        name, pw = USERS[user]
        return self.client("gateway", username=name, password=pw, **kw)

    def raw(self, listener: str = "orders", timeout: float = 10.0) -> RawConn:
        return RawConn(self.ports[listener], timeout=timeout)

    # -- admin --
    @property
    def admin_url(self) -> str:
        return f"http://{HOST}:{self.admin_port}"

    def http(self, path: str, method: str = "GET", body: bytes | None = None,
             timeout: float = 5.0):
        """(status, body-bytes) for an admin request (HTTP errors are returned)."""
        req = urllib.request.Request(self.admin_url + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metrics(self) -> str:
        st, body = self.http("/metrics")
        assert st == 200, f"/metrics answered {st}"
        return body.decode()


_METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_RE.match(line.strip())
        if not m:
            continue
        labels = dict(_LABEL_RE.findall(m.group(3) or ""))
        try:
            val = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), labels, val))
    return out


def metric_value(text: str, name: str, **labels) -> float | None:
    """Sum of the samples of `name` whose labels include `labels` (None if none)."""
    total = None
    for n, lab, v in parse_metrics(text):
        if n == name and all(lab.get(k) == str(val) for k, val in labels.items()):
            total = (total or 0.0) + v
    return total


# --------------------------------------------------------------------------------------
# MONITOR checker
# --------------------------------------------------------------------------------------

_MON_LINE = re.compile(rb'^(\d+\.\d+) \[(\d+) ([^\]]*)\] (.*)$', re.S)
_ESC = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("a"): b"\a",
        ord("b"): b"\b", ord("\\"): b"\\", ord('"'): b'"'}


def parse_monitor_args(s: bytes) -> list[bytes]:
    """Decode the quoted, sdscatrepr-escaped arguments of a MONITOR line."""
    args = []
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] == 0x20:
            i += 1
        if i >= n:
            break
        if s[i] != 0x22:
            raise ValueError(f"bad monitor argument at {i}: {s[i:i+40]!r}")
        i += 1
        out = bytearray()
        while True:
            if i >= n:
                raise ValueError("unterminated monitor argument")
            c = s[i]
            if c == 0x5C:  # backslash
                e = s[i + 1]
                if e == ord("x"):
                    out.append(int(s[i + 2:i + 4], 16))
                    i += 4
                    continue
                out += _ESC.get(e, bytes([e]))
                i += 2
                continue
            if c == 0x22:
                i += 1
                break
            out.append(c)
            i += 1
        args.append(bytes(out))
    return args


def parse_monitor_line(line: bytes):
    """-> (db, addr, [args]) or None for non-command lines."""
    p = parse_monitor_line_ts(line)
    return None if p is None else p[1:]


def parse_monitor_line_ts(line: bytes):
    """-> (timestamp, db, addr, [args]) or None for non-command lines."""
    m = _MON_LINE.match(line)
    if not m:
        return None
    return (float(m.group(1)), int(m.group(2)), m.group(3).decode(),
            parse_monitor_args(m.group(4)))


# Commands keyfence must never send to a shared backend on a tenant's behalf.
FORBIDDEN_BACKEND = {b"FLUSHALL", b"FLUSHDB", b"SWAPDB", b"SHUTDOWN", b"REPLICAOF", b"SLAVEOF",
                     b"MONITOR", b"DEBUG", b"MIGRATE", b"MOVE", b"ACL", b"MODULE"}
NO_KEYS_ERRORS = ("no key arguments", "invalid arguments", "invalid number of arguments",
                  "wrong number of arguments")


class MonitorChecker:
    """Records the backend's MONITOR stream and checks every key/channel keyfence sent.

    Commands from the harness's own direct connections (see is_own) are ignored.
    """

    def __init__(self, backend: RedisServer, prefixes=PREFIXES):
        self.backend = backend
        self.prefixes = tuple(prefixes)
        self.lines: list[bytes] = []
        self.conn = TrackedRaw(backend.port)
        r = self.conn.cmd("MONITOR")
        assert r == "OK", f"MONITOR failed: {r!r}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._err: Exception | None = None
        self.conn.settimeout(0.5)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.stopped = False

    def _run(self):
        while not self._stop.is_set():
            try:
                r = self.conn.read()
            except socket.timeout:
                continue
            except Exception as e:  # connection closed (backend killed) etc.
                if not self._stop.is_set():
                    self._err = e
                return
            if isinstance(r, str):
                with self._lock:
                    self.lines.append(r.encode("utf-8", "replace"))

    def _raw_lines(self) -> list[bytes]:
        with self._lock:
            return list(self.lines)

    def sync(self, timeout: float = 10.0):
        """Wait until everything executed so far has reached the monitor stream."""
        if self.stopped or self._err is not None:
            return
        marker = "kf-monitor-marker-" + uuid.uuid4().hex
        try:
            with TrackedRaw(self.backend.port) as c:
                c.cmd("ECHO", marker)
        except OSError:
            return
        mb = marker.encode()
        wait_until(lambda: any(mb in l for l in self._raw_lines()[-50:]) or self._err,
                   timeout, what="monitor marker")

    def mark(self) -> int:
        """Sync, then return an index; commands() since it gives only newer commands."""
        self.sync()
        return len(self._raw_lines())

    def stop(self):
        if self.stopped:
            return
        try:
            self.sync()
        except TimeoutError:
            pass
        self._stop.set()
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader at once
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.conn.close()
        self.stopped = True

    def commands(self, since: int = 0, include_own: bool = False):
        """[(addr, [args])] for commands recorded since index `since`."""
        out = []
        for line in self._raw_lines()[since:]:
            # Lines arrive as str (RespSimple) decoded with utf-8 'replace'; the
            # content is ASCII-only (sdscatrepr escapes everything else).
            p = parse_monitor_line_ts(line if isinstance(line, bytes) else line.encode())
            if p is None:
                continue
            ts, _db, addr, args = p
            if not args:
                continue
            if args[0].upper() == b"ECHO" and len(args) == 2 and \
                    args[1].startswith(b"kf-monitor-marker-"):
                continue
            if not include_own and is_own(addr, ts):
                continue
            out.append((addr, args))
        return out

    # -- checking --
    def _has_prefix(self, name: bytes) -> bool:
        if name.startswith(b"__keyspace@0__:"):  # a keyspace channel names a key
            name = name[len(b"__keyspace@0__:"):]
        elif name.startswith(b"__keyevent@0__:"):  # names an event; keyfence filters its keys
            return True
        return any(name.startswith(p) for p in self.prefixes)

    def check(self, since: int = 0, getkeys_conn: RawConn | None = None):
        """Returns (violations, checked, keyless). Each violation is a string."""
        self.sync()
        violations: list[str] = []
        checked = 0
        keyless = 0
        own = getkeys_conn is None
        gk = getkeys_conn or TrackedRaw(self.backend.port)
        try:
            for addr, args in self.commands(since):
                name = args[0].upper()
                if name in (b"PUBLISH", b"SUBSCRIBE") and len(args) > 1 and \
                        args[1] == b"__sentinel__:hello":
                    continue  # the sentinels' own discovery channel (SentinelGroup)
                shown = b" ".join(a[:60] for a in args[:8]).decode("utf-8", "replace")
                problems = self._check_special(name, args)
                violations.extend(f"{p}: {shown}" for p in problems)
                reply = gk.cmd("COMMAND", "GETKEYS", *args)
                if isinstance(reply, RespError):
                    low = reply.text.lower()
                    if any(s in low for s in NO_KEYS_ERRORS) or "invalid command" in low:
                        keyless += 1
                        continue
                    violations.append(f"GETKEYS error {reply.text!r}: {shown}")
                    continue
                checked += 1
                for k in reply or []:
                    if not self._has_prefix(k):
                        violations.append(f"unprefixed key {k[:80]!r}: {shown}")
        finally:
            if own:
                gk.close()
        return violations, checked, keyless

    def _check_special(self, name: bytes, args: list[bytes]) -> list[str]:
        """Checks GETKEYS cannot do: channels, patterns, forbidden commands."""
        p: list[str] = []
        up = [a.upper() for a in args]
        if name in FORBIDDEN_BACKEND:
            p.append(f"forbidden command {name.decode()} sent to backend")
        elif name == b"SELECT" and len(args) > 1 and args[1] != b"0":
            p.append("SELECT of a non-zero db")
        elif name in (b"PUBLISH", b"SPUBLISH") and len(args) > 1:
            if not self._has_prefix(args[1]):
                p.append(f"unprefixed channel {args[1][:80]!r}")
        elif name in (b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE", b"UNSUBSCRIBE",
                      b"PUNSUBSCRIBE", b"SUNSUBSCRIBE"):
            for ch in args[1:]:
                if not self._has_prefix(ch):
                    p.append(f"unprefixed channel/pattern {ch[:80]!r}")
        elif name == b"PUBSUB" and len(args) > 2:
            sub = up[1]
            if sub in (b"NUMSUB", b"SHARDNUMSUB", b"CHANNELS", b"SHARDCHANNELS"):
                for ch in args[2:]:
                    if not self._has_prefix(ch):
                        p.append(f"unprefixed PUBSUB {sub.decode()} argument {ch[:80]!r}")
        elif name == b"KEYS":
            if len(args) < 2 or not self._has_prefix(args[1]):
                p.append("KEYS without a namespace pattern")
        elif name == b"SCAN":
            pat = None
            for i in range(2, len(args) - 1):
                if up[i] == b"MATCH":
                    pat = args[i + 1]
            if pat is None or not self._has_prefix(pat):
                p.append("SCAN without a namespace MATCH pattern")
        elif name in (b"SORT", b"SORT_RO"):
            for i in range(2, len(args) - 1):
                if up[i] in (b"BY", b"GET"):
                    pat = args[i + 1]
                    if pat == b"#" or (up[i] == b"BY" and b"*" not in pat):
                        continue
                    if not self._has_prefix(pat):
                        p.append(f"unprefixed SORT {up[i].decode()} pattern {pat[:80]!r}")
        return p

    def assert_clean(self, since: int = 0, min_checked: int = 0):
        violations, checked, _ = self.check(since)
        assert not violations, ("keyfence sent keys/channels outside the tenant namespaces "
                                "to the backend:\n  " + "\n  ".join(violations[:50]))
        assert checked >= min_checked, (
            f"MONITOR saw only {checked} keyed commands from keyfence (expected >= {min_checked})")
        return checked


# --------------------------------------------------------------------------------------
# Stand-alone mode: start backend + keyfence, run a command with ports in env.
# --------------------------------------------------------------------------------------

def _main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "run" or "--" not in argv:
        print("usage: harness.py run [--cluster] -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1:]
    cluster = "--cluster" in argv[:argv.index("--")]
    srv = RedisClusterNodes(3) if cluster else RedisServer()
    kf = None
    try:
        srv.start()
        if cluster:
            kf = Keyfence(srv.ports[0], {"backend": {"mode": "cluster"}},
                          backend_nodes=[f"{HOST}:{srv.ports[0]}"])
        else:
            kf = Keyfence(srv.port)
        try:
            kf.start()
        except KeyfenceStartError as e:
            print(str(e), file=sys.stderr)
            return 1
        env = dict(os.environ)
        env.update({
            "KF_HOST": HOST,
            "KF_GATEWAY_PORT": str(kf.ports["gateway"]),
            "KF_ORDERS_PORT": str(kf.ports["orders"]),
            "KF_PAYMENTS_PORT": str(kf.ports["payments"]),
            "KF_ADMIN_PORT": str(kf.admin_port),
            "KF_BACKEND_PORT": str(srv.ports[0] if cluster else srv.port),
            "KF_CLUSTER_PORTS": ",".join(str(p) for p in srv.ports) if cluster else "",
        })
        print(f"harness: backend 127.0.0.1:{env['KF_BACKEND_PORT']}, keyfence ports {kf.ports}, "
              f"admin {kf.admin_port}", file=sys.stderr)
        try:
            rc = subprocess.call(cmd, env=env, timeout=240)
        except subprocess.TimeoutExpired:
            print("harness: command timed out", file=sys.stderr)
            rc = 124
        alive = kf.alive
        stop_rc = kf.stop()
        if not alive or stop_rc != 0:
            print(f"harness: keyfence exit code {stop_rc} (alive before stop: {alive}); log:\n"
                  + kf.log_tail(), file=sys.stderr)
            rc = rc or 1
        elif rc != 0:
            print("harness: keyfence log tail:\n" + kf.log_tail(40), file=sys.stderr)
        return rc
    finally:
        if kf:
            kf.cleanup()
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
