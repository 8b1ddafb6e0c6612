"""pytest fixtures for the keyfence integration suites.

Fixtures
  redis_server  (module)   a fresh redis-server on a free loopback port
  keyfence      (module)   keyfence in front of it; a module may define a fixture
                           `keyfence_overrides` (module scope) returning a dict that is
                           deep-merged into the default config
  kf            (function) the module's keyfence, after FLUSHALL on the backend and a
                           check that the proxy is still alive
  backend       (function) redis-py client connected DIRECTLY to the backend
  monitor       (function) MonitorChecker on the backend (assert_clean() at the end)

Run with /usr/bin/python3 (Debian's python3-redis); KEYFENCE_BIN overrides the
binary (default <repo>/build/keyfence).
"""

import contextlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (HOST, Keyfence, KeyfenceStartError, MonitorChecker,  # noqa: E402
                     RedisClusterNodes, RedisServer)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for kf in list(harness.LIVE_KEYFENCES):
            rep.sections.append((f"keyfence log tail ({kf.log_path})", kf.log_tail(40)))


@pytest.fixture(scope="module")
def redis_server():
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def keyfence_overrides():
    return {}


def start_keyfence(backend_port, overrides=None, **kw):
    kf = Keyfence(backend_port, overrides, **kw)
    try:
        kf.start()
    except KeyfenceStartError as e:
        kf.cleanup()
        if os.environ.get("KEYFENCE_SKIP_MISSING") and "not found" in str(e):
            pytest.skip(str(e))
        pytest.fail(str(e), pytrace=False)
    return kf


def stop_keyfence(kf):
    """SIGTERM, clean up, and fail if it had died or did not exit 0."""
    alive = kf.alive
    try:
        rc = kf.stop()
    finally:
        log = kf.log_tail(60)
        kf.cleanup()
    assert alive, f"keyfence died; log:\n{log}"
    assert rc == 0, f"keyfence exited with {rc} on SIGTERM; log:\n{log}"


def running_cluster(n=3, **kw):
    """A started RedisClusterNodes, cleaned up after (use with yield from)."""
    c = RedisClusterNodes(n, **kw)
    try:
        c.start()
    except Exception:
        c.cleanup()
        raise
    try:
        yield c
    finally:
        c.cleanup()


@contextlib.contextmanager
def monitored(nodes):
    """MONITOR on every node for the block; afterwards every key and channel keyfence sent
    must carry a tenant prefix (checked only if the block passed)."""
    ms = [MonitorChecker(n) for n in nodes]
    try:
        yield ms
    finally:
        for m in ms:
            m.stop()
    for m in ms:
        m.assert_clean()


def cluster_keyfence(cluster, **backend):
    """keyfence in cluster mode seeded with ONE node (it discovers the others), stopped
    after (use with yield from in a module fixture). `backend` adds backend settings."""
    kf = start_keyfence(cluster.ports[0], {"backend": {"mode": "cluster", **backend}},
                        backend_nodes=[f"{HOST}:{cluster.ports[0]}"])
    yield kf
    stop_keyfence(kf)


def checked_cluster_keyfence(keyfence, cluster):
    """Per test: keyfence is running and the cluster empty; keyfence is alive after."""
    assert keyfence.alive, keyfence.log_tail()
    cluster.flushall()
    yield keyfence
    assert keyfence.alive, "keyfence died during the test; log:\n" + keyfence.log_tail()


@pytest.fixture(scope="module")
def keyfence(redis_server, keyfence_overrides):
    kf = start_keyfence(redis_server.port, keyfence_overrides)
    yield kf
    stop_keyfence(kf)


@pytest.fixture
def backend(redis_server):
    c = redis_server.client()
    yield c
    c.close()


@pytest.fixture
def kf(keyfence, redis_server):
    if not redis_server.running:
        redis_server.start()
    assert keyfence.alive, "keyfence is not running; log:\n" + keyfence.log_tail()
    c = redis_server.client()
    c.flushall()
    c.close()
    yield keyfence
    assert keyfence.alive, "keyfence died during the test; log:\n" + keyfence.log_tail()


@pytest.fixture
def monitor(redis_server):
    m = MonitorChecker(redis_server)
    yield m
    m.stop()
