"""Visible decisions and config identity (issue 13, item 4): refusals are logged with tenant,
reason, command and client, at most one line a second per tenant and reason (the line counts
the others), as JSON fields; keyfence_rejected_total has the command of denials; the config
hash in /config, the reload line and keyfence_config_info; the reload-failing gauge stays 0
while the broken file is on disk; build and process metrics; one line per backend outage."""

import json
import re
import subprocess
import time

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import RedisServer, encode_command, keyfence_bin, metric_value, wait_until

TOKEN = "decisions-token"


@pytest.fixture(scope="module")
def keyfence(redis_server):
    kf = start_keyfence(redis_server.port, {
        "admin": {"token": TOKEN},
        "tenants": {"orders": {"deny_commands": ["KEYS"],
                               "key_rules": [{"match": "ro:*", "read_only": True}]},
                    "payments": {"limits": {"ops_per_sec": 50, "burst": 50}}}},
        log_format="json")
    yield kf
    stop_keyfence(kf)


def events(kf, msg):
    out = []
    with open(kf.log_path, "rb") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("msg") == msg:
                out.append(e)
    return out


def flood(kf, listener, n, *cmd):
    """n pipelined copies of cmd on one raw connection; the replies read."""
    with kf.raw(listener) as c:
        c.send_raw(encode_command(*cmd) * n)
        return [c.read() for _ in range(n)]


def test_ten_thousand_denials_give_one_line_a_second(kf):
    before = events(kf, "request rejected")
    t0 = time.monotonic()
    replies = flood(kf, "orders", 10000, "KEYS", "*")
    elapsed = time.monotonic() - t0
    assert all(getattr(r, "code", "") == "NOPERM" for r in replies)
    lines = [e for e in events(kf, "request rejected")[len(before):]
             if e["tenant"] == "orders" and e["reason"] == "denied"]
    assert 1 <= len(lines) <= int(elapsed) + 2, (len(lines), elapsed)
    e = lines[0]
    # the fields are fields, not inside msg
    assert e["command"] == "keys" and e["msg"] == "request rejected"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", e["client"]), e
    assert e["error"].startswith("NOPERM") and isinstance(e["suppressed"], int)
    # one more, a second later: its line carries the count of every one not logged
    time.sleep(1.1)
    flood(kf, "orders", 1, "KEYS", "*")
    lines = [e for e in events(kf, "request rejected")[len(before):]
             if e["tenant"] == "orders" and e["reason"] == "denied"]
    assert len(lines) + sum(e["suppressed"] for e in lines) == 10001
    m = kf.metrics()
    assert metric_value(m, "keyfence_rejected_total", tenant="orders", reason="denied",
                        command="keys") >= 10001
    assert not metric_value(m, "keyfence_rejected_total", tenant="payments")


def test_every_kind_of_refusal_is_logged_with_its_reason(kf):
    before = len(events(kf, "request rejected"))
    o = kf.client("orders")
    with pytest.raises(Exception, match="no permissions"):
        o.set("ro:x", "1")
    flood(kf, "payments", 300, "GET", "k")  # over 50 ops/s
    with kf.raw("gateway") as c:
        assert getattr(c.cmd("AUTH", "orders", "wrong"), "code", "") == "WRONGPASS"
    lines = events(kf, "request rejected")[before:]
    seen = {(e["tenant"], e["reason"], e["command"]) for e in lines}
    assert ("orders", "key_rule", "set") in seen, seen
    assert ("payments", "ratelimit", "get") in seen, seen
    assert ("unauthenticated", "auth", "auth") in seen, seen
    # the password is never in the log
    with open(kf.log_path, "rb") as f:
        assert b"wrong" not in f.read().replace(b"WRONGPASS", b"")
    m = kf.metrics()
    assert metric_value(m, "keyfence_rejected_total", tenant="orders", reason="key_rule",
                        command="set") == 1


def test_config_hash_is_the_config_identity(kf):
    st, body = kf.http("/config")
    cfg = json.loads(body)
    h = cfg["hash"]
    assert re.fullmatch(r"[0-9a-f]{64}", h) and cfg["file_hash"] == h
    m = kf.metrics()
    assert metric_value(m, "keyfence_config_info", hash=h) == 1
    # a reload of the same file: a new version, the same identity
    kf.reload()
    wait_until(lambda: json.loads(kf.http("/config")[1])["version"] > cfg["version"], 5)
    assert json.loads(kf.http("/config")[1])["hash"] == h
    # a change: a new hash, and the reload line says what changed
    conf = kf.config
    conf["tenants"]["payments"]["limits"]["ops_per_sec"] = 60
    conf["tenants"]["inventory"] = {}
    kf.write_config(conf)
    kf.reload()
    wait_until(lambda: json.loads(kf.http("/config")[1])["hash"] != h, 5, what="new hash")
    new = json.loads(kf.http("/config")[1])["hash"]
    line = [e for e in events(kf, "config reloaded")
            if e["hash"] == new and e["changes"] != "no change"][0]
    assert line["changes"] == ("tenants added [inventory], changed [payments]; "
                               "limits payments.ops_per_sec 50->60"), line
    assert metric_value(kf.metrics(), "keyfence_config_info", hash=new) == 1
    assert metric_value(kf.metrics(), "keyfence_config_info", hash=h) is None


def test_reload_failing_gauge_stays_down_while_the_file_is_broken(kf):
    good = open(kf.config_path).read()
    assert metric_value(kf.metrics(), "keyfence_config_last_reload_successful") == 1
    with open(kf.config_path, "w") as f:
        f.write(good + "\nbogus_field: 1\n")
    wait_until(lambda: metric_value(kf.metrics(), "keyfence_config_last_reload_successful") == 0,
               10, what="the watcher saw the broken file")
    time.sleep(2.5)  # later polls of the same broken file do not clear it
    assert metric_value(kf.metrics(), "keyfence_config_last_reload_successful") == 0
    with open(kf.config_path, "w") as f:
        f.write(good)
    wait_until(lambda: metric_value(kf.metrics(), "keyfence_config_last_reload_successful") == 1,
               10, what="the fixed file reloaded")


def test_build_and_process_metrics(kf):
    version = subprocess.run([keyfence_bin(), "--version"], capture_output=True,
                             text=True).stdout.split()
    m = kf.metrics()
    rev = version[2].strip("()")
    assert metric_value(m, "keyfence_build_info", version=version[1], revision=rev) == 1
    fds = metric_value(m, "process_open_fds")
    assert 5 < fds <= metric_value(m, "process_max_fds")
    assert metric_value(m, "process_resident_memory_bytes") > 1 << 20
    assert metric_value(m, "process_cpu_seconds_total") > 0
    assert abs(metric_value(m, "process_start_time_seconds") - time.time()) < 3600


def test_backend_outage_is_one_line_with_its_length(redis_server):
    srv = RedisServer().start()
    kf = start_keyfence(srv.port, log_format="json")
    try:
        c = kf.client("orders")
        assert c.set("a", "1")
        srv.stop()
        for _ in range(20):  # every request fails; every connection attempt too
            with pytest.raises(Exception):
                c.get("a")
            time.sleep(0.05)
        srv.start()
        wait_until(lambda: _ok(c), 10, what="backend back")
        down = events(kf, "backend node unreachable")
        up = events(kf, "backend node reachable again")
        assert len(down) == 1 and len(up) == 1, (down, up)
        assert down[0]["node"] == up[0]["node"] == f"127.0.0.1:{srv.port}"
        assert up[0]["down_ms"] >= 500 and up[0]["failed_attempts"] >= 1
    finally:
        stop_keyfence(kf)
        srv.cleanup()


def _ok(c):
    try:
        return c.get("a") is None or True
    except Exception:
        return False
