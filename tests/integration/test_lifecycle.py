"""Process lifecycle and CLI: --version, --check (exit 0, or exit 1 with FILE:LINE:COL for
every error), SIGTERM draining in-flight requests then exit 0, SIGINT, reload through a
Kubernetes-style ConfigMap symlink swap, and the example config."""

import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import start_keyfence
from harness import (REPO, ConnectionClosed, Keyfence, RawConn, encode_command,
                     keyfence_bin, to_yaml, wait_until)


def run_bin(*args, timeout=10):
    if not os.path.exists(keyfence_bin()):
        pytest.fail(f"keyfence binary not found at {keyfence_bin()}")
    return subprocess.run([keyfence_bin(), *args], capture_output=True, timeout=timeout)


def test_version():
    r = run_bin("--version")
    assert r.returncode == 0
    # the version and the git revision it was built from
    assert re.fullmatch(rb"keyfence \d+\.\d+\.\d+ \(([0-9a-f]{12}|unknown)\)\n", r.stdout), r.stdout


def test_help_and_bad_usage():
    r = run_bin("--help")
    assert r.returncode == 0 and r.stderr == b""
    out = r.stdout.decode()
    for opt in ("--config", "--check", "--log-level", "--log-format", "--version", "analyze"):
        assert opt in out, out
    r = run_bin("analyze", "--help")
    assert r.returncode == 0 and b"--rdb" in r.stdout and b"--top" in r.stdout
    for args, named in ((["--bogus"], "--bogus"), (["--log-level", "loud"], "loud"),
                        (["analyze", "--config", "x.yaml", "--top", "many"], "--top"),
                        (["analyze"], "--config"), ([], "--config")):
        r = run_bin(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert named in r.stderr.decode() and r.stdout == b"", (args, r.stderr)


def test_check_valid_config(tmp_path, redis_server):
    kf = Keyfence(redis_server.port)
    cfg = kf.build_config()
    path = tmp_path / "ok.yaml"
    path.write_text(to_yaml(cfg) + "\n")
    r = run_bin("--check", "--config", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    kf.cleanup()


def test_check_warns_about_scripts_without_the_acl_backstop(tmp_path, redis_server):
    for acl, warned in (("off", True), ("per_tenant", False)):
        kf = Keyfence(redis_server.port, {"backend": {"acl": acl},
                                          "tenants": {"orders": {"limits": {"allow_scripts": True}}}})
        path = tmp_path / f"{acl}.yaml"
        path.write_text(to_yaml(kf.build_config()) + "\n")
        r = run_bin("--check", "--config", str(path))
        assert r.returncode == 0, r.stdout + r.stderr
        assert (b"tenant 'orders' has allow_scripts without backend.acl" in r.stderr) == warned
        kf.cleanup()


def test_check_example_config():
    path = os.path.join(REPO, "deploy", "examples", "keyfence.yaml")
    if not os.path.exists(path):
        pytest.fail("deploy/examples/keyfence.yaml is missing")
    r = run_bin("--check", "--config", path)
    assert r.returncode == 0, r.stdout + r.stderr


BROKEN = """cluster_name: shop
workers: 2
listeners:
  - bind: 127.0.0.1:1
    tenant: nosuchtenant
no_such_field: 1
tenants:
  orders:
    users:
      - name: orders
        password: x
    deny_commands: [NOTACOMMAND]
  "bad:name":
    users: []
"""


def test_check_reports_every_error_with_position(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    r = run_bin("--check", "--config", str(path))
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 1, out
    positions = re.findall(rf"^{re.escape(str(path))}:(\d+):(\d+): .+$", out, re.M)
    lines = {int(line) for line, _col in positions}
    # unknown field (line 6), unknown command (line 12), bad app name (line 13),
    # listener for an undefined tenant (line 5)
    for want in (5, 6, 12, 13):
        assert want in lines, f"no error reported for line {want}:\n{out}"


def test_check_reports_yaml_syntax_error(tmp_path):
    path = tmp_path / "syntax.yaml"
    path.write_text("cluster_name: shop\nlisteners: [\n  - bind: x\n")
    r = run_bin("--check", "--config", str(path))
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 1, out
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: ", out, re.M), out


@pytest.mark.parametrize("reader_pause", [0.0, 0.5], ids=["reading", "backed-up"])
def test_sigterm_drains_in_flight_then_exits_0(redis_server, reader_pause):
    # "backed-up": the client stops reading for a while, so replies pile up in
    # keyfence's output and its reads pause with requests still unread at the
    # socket; the drain must still answer every one of them.
    kf = start_keyfence(redis_server.port)
    try:
        c = kf.raw("orders", timeout=10)
        assert c.cmd("SET", "k", "v") == "OK"
        n = 20000
        value = "x" * 200
        data = b"".join(encode_command("SET", f"d:{i}", value) for i in range(n))
        err = []

        def writer():
            try:
                c.send_raw(data)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=writer)
        t.start()
        first = c.read()  # the batch is in flight
        assert first == "OK", first
        time.sleep(reader_pause)
        t0 = time.monotonic()
        kf.proc.send_signal(signal.SIGTERM)
        replies = 1
        try:
            for _ in range(n - 1):
                r = c.read()
                assert r == "OK", r
                replies += 1
        except ConnectionClosed:
            pass
        t.join(10)
        assert replies == n, f"only {replies} of {n} in-flight requests were answered"
        rc = kf.proc.wait(timeout=10)
        assert rc == 0, kf.log_tail()
        assert time.monotonic() - t0 < 2.0 + 3
        assert not _accepts(kf.port("orders"))
        c.close()
    finally:
        kf.cleanup()


def _accepts(port):
    try:
        with RawConn(port, timeout=0.5) as c:
            return c.cmd("PING") == "PONG"
    except OSError:
        return False


def test_sigint_exits_0(redis_server):
    kf = start_keyfence(redis_server.port)
    try:
        with kf.raw("orders") as c:
            assert c.cmd("PING") == "PONG"
        kf.proc.send_signal(signal.SIGINT)
        assert kf.proc.wait(timeout=10) == 0
    finally:
        kf.cleanup()


class ConfigMapMount:
    """A directory laid out like a mounted Kubernetes ConfigMap (..data symlink swap)."""

    def __init__(self, root):
        self.root = root
        root.mkdir()
        self.n = 0

    def publish(self, config):
        self.n += 1
        d = self.root / f"..v{self.n}"
        d.mkdir()
        (d / "keyfence.yaml").write_text(to_yaml(config) + "\n")
        tmp_link = self.root / "..data_tmp"
        os.symlink(d.name, tmp_link)
        os.replace(tmp_link, self.root / "..data")  # atomic, like kubelet's AtomicWriter
        link = self.root / "keyfence.yaml"
        if not link.is_symlink():
            os.symlink("..data/keyfence.yaml", link)
        return str(link)


def start_on_configmap(redis_server, tmp_path):
    kf = Keyfence(redis_server.port)
    cfg = kf.build_config()
    mount = ConfigMapMount(tmp_path / "mount")
    kf.config_path = mount.publish(cfg)
    kf.config = cfg
    kf.build_config = lambda: cfg
    kf.write_config = lambda c=None: None
    kf.start()
    cfg2 = {**cfg, "tenants": {**cfg["tenants"], "payments": {"users": [
        {"name": "payments", "password": "payments-secret"},
        {"name": "newuser", "password": "new-pw"}]}}}
    return kf, mount, cfg2


def new_user_ok(kf):
    with kf.raw("gateway") as g:
        return g.cmd("AUTH", "newuser", "new-pw") == "OK"


def test_configmap_symlink_swap_then_sighup(redis_server, tmp_path):
    kf, mount, cfg2 = start_on_configmap(redis_server, tmp_path)
    try:
        assert not new_user_ok(kf)
        mount.publish(cfg2)
        kf.reload()
        wait_until(lambda: new_user_ok(kf), 5, 0.1, "SIGHUP to load the swapped ConfigMap")
    finally:
        rc = kf.stop()
        kf.cleanup()
    assert rc == 0


def test_configmap_symlink_swap_is_watched(redis_server, tmp_path):
    """DESIGN (architecture): file watching must survive ConfigMap updates (no SIGHUP)."""
    kf, mount, cfg2 = start_on_configmap(redis_server, tmp_path)
    try:
        assert not new_user_ok(kf)
        mount.publish(cfg2)
        wait_until(lambda: new_user_ok(kf), 15, 0.25,
                   "keyfence to reload the swapped ConfigMap by itself")
    finally:
        rc = kf.stop()
        kf.cleanup()
    assert rc == 0
