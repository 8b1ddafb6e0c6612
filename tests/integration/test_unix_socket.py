"""Unix socket listeners (issue 12): a sidecar's app reaches keyfence over a socket in a shared
directory (`listeners: [{unix: PATH, mode: "0660", tenant: orders}]`): redis-py and redis-cli
over the socket land in the listener's tenant (or, on a gateway socket, in the AUTH's), the
socket file has the configured permissions, keyfence refuses to start over a live socket or
a file that is not a socket, replaces a stale socket file, and removes its socket on a clean
exit."""

import os
import socket
import stat
import subprocess

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import Keyfence, KeyfenceStartError, MonitorChecker, wait_until


@pytest.fixture(scope="module")
def sockdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kf-sock"))


@pytest.fixture(scope="module")
def keyfence(redis_server, sockdir):
    kf = start_keyfence(redis_server.port, extra_listeners=[
        {"unix": os.path.join(sockdir, "orders.sock"), "mode": "0660", "tenant": "orders"},
        {"unix": os.path.join(sockdir, "gateway.sock"), "mode": "0600"},
    ])
    yield kf
    stop_keyfence(kf)


def test_clients_over_the_socket(kf, backend, redis_server, sockdir):
    import redis
    path = os.path.join(sockdir, "orders.sock")
    mon = MonitorChecker(redis_server)
    c = redis.Redis(unix_socket_path=path)
    assert c.set("k", "v") and c.get("k") == b"v"
    assert backend.get("shop@orders:k") == b"v"
    listed = c.client_list()
    me = [x for x in listed if x["id"] == str(c.client_id())]
    assert me and me[0]["addr"] == path + ":0", listed
    out = subprocess.run(["redis-cli", "-s", path, "GET", "k"], capture_output=True, text=True,
                         timeout=10)
    assert out.stdout.strip() == "v"
    gw = redis.Redis(unix_socket_path=os.path.join(sockdir, "gateway.sock"),
                     username="payments", password="payments-secret")
    assert gw.set("k", "p") and backend.get("shop@payments:k") == b"p"
    assert c.get("k") == b"v"  # each namespace its own
    with pytest.raises(redis.ResponseError, match="WRONGPASS"):
        redis.Redis(unix_socket_path=os.path.join(sockdir, "gateway.sock"),
                    username="payments", password="wrong").ping()
    violations, checked, _ = mon.check()
    mon.stop()
    assert not violations and checked > 0, violations[:5]


def test_socket_permissions(kf, sockdir):
    assert stat.S_IMODE(os.stat(os.path.join(sockdir, "orders.sock")).st_mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.join(sockdir, "gateway.sock")).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(os.path.join(sockdir, "orders.sock")).st_mode)


def _start(redis_server, path):
    kf = Keyfence(redis_server.port, extra_listeners=[{"unix": path, "tenant": "orders"}])
    try:
        kf.start(timeout=5)
    except KeyfenceStartError as e:
        kf.cleanup()
        return None, str(e)
    return kf, ""


def test_refuses_a_live_socket_and_a_file(kf, redis_server, sockdir, tmp_path):
    other, err = _start(redis_server, os.path.join(sockdir, "orders.sock"))
    assert other is None and "another server is listening on it" in err, err
    plain = tmp_path / "plain"
    plain.write_text("not a socket")
    other, err = _start(redis_server, str(plain))
    assert other is None and "exists and is not a socket" in err, err
    assert plain.read_text() == "not a socket"  # left alone
    # the live one still serves
    import redis
    assert redis.Redis(unix_socket_path=os.path.join(sockdir, "orders.sock")).ping()


def test_stale_socket_replaced_and_removed_on_exit(redis_server, tmp_path):
    import redis
    path = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # a socket file nobody listens on (a process that died)
    s.close()
    kf, err = _start(redis_server, path)
    assert kf is not None, err
    try:
        assert redis.Redis(unix_socket_path=path).ping()
    finally:
        stop_keyfence(kf)
    wait_until(lambda: not os.path.exists(path), 5, what="the socket file removed")
