"""The accounting loop inside keyfence (issue 11): accounting.schedule runs the analysis
daily (here: the current minute, so at once), on one instance of the fleet only (a claim in
the backend); POST /analyze runs it now. The last report and the scheduled (off-peak)
baseline are kept in accounting.state_dir and in the backend under keyfence's reserved
namespace, so a second keyfence serves the same figures in GET /namespaces, with each
tenant's growth since the baseline. keyfence polls INFO memory of the backend for the memory
tiers' metrics. Tenants never see keyfence's own keys."""

import json
import os
import time

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import metric_value, wait_until


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kf-accounting"))


@pytest.fixture(scope="module")
def keyfence_overrides(state_dir):
    return {"accounting": {"schedule": time.strftime("%H:%M"), "state_dir": state_dir,
                           "top_keys": 3}}


def namespaces(kf):
    st, body = kf.http("/namespaces")
    assert st == 200, body
    return json.loads(body)


def test_schedule_baseline_analyze_and_growth(kf, keyfence, backend, redis_server, state_dir):
    # the scheduled run at start (the fixture's FLUSHALL may come after it: wait for it)
    wait_until(lambda: (namespaces(kf).get("baseline") or {}).get("report"), 15,
               what="the scheduled analysis")
    base = namespaces(kf)["baseline"]
    assert base["report"]["trigger"] == "schedule"
    orders, payments = kf.client("orders"), kf.client("payments")
    for i in range(300):
        orders.set(f"grow:{i}", "x" * 500)
    payments.set("one", "1")
    backend.set("nobody", "z")
    backend.config_set("repl-diskless-sync-delay", 0)
    try:
        st, body = kf.http("/analyze", method="POST")
        assert st == 202 and json.loads(body)["started"] is True
        wait_until(lambda: (namespaces(kf).get("report") or {}).get("trigger") == "request", 15,
                   what="the requested analysis")
    finally:
        backend.config_set("repl-diskless-sync-delay", 5)
    ns = namespaces(kf)
    o, p = ns["tenants"]["orders"], ns["tenants"]["payments"]
    assert o["keys"] == 300 and p["keys"] == 1
    assert o["growth"]["keys"] == 300 - base["tenants"]["orders"]["keys"]
    assert o["growth"]["memory_bytes"] > 300 * 500
    assert p["growth"]["keys"] == 1 - base["tenants"]["payments"]["keys"]
    assert len(o["big_keys"]) == 3 and ns["unowned"]["keys"] == 1
    assert ns["running"] is False and ns["baseline"]["report"]["trigger"] == "schedule"
    # on disk and in the backend (keyfence's reserved namespace), the same report
    on_disk = json.load(open(os.path.join(state_dir, "last.json")))
    assert on_disk["report"] == ns["report"]
    assert os.path.exists(os.path.join(state_dir, "baseline.json"))
    stored = json.loads(backend.get("shop@__keyfence:accounting:last"))
    assert stored["report"] == ns["report"]
    assert backend.exists("shop@__keyfence:accounting:baseline") == 1
    # tenants never see keyfence's own keys
    assert sorted(orders.keys("*"))[:1] == [b"grow:0"] and orders.dbsize() == 300
    assert all(not k.startswith(b"shop@") for k in orders.scan_iter(count=1000))
    assert payments.keys("*") == [b"one"]
    m = kf.metrics()
    assert metric_value(m, "keyfence_accounting_runs_total", result="ok") == 2
    assert metric_value(m, "keyfence_tenant_keys", tenant="orders") == 300
    assert metric_value(m, "keyfence_tenant_memory_bytes", tenant="orders") == o["memory_bytes"]

    # a second keyfence of the fleet, same schedule: it serves the same figures and does
    # not run the day's scheduled analysis again (claimed by the first)
    other = start_keyfence(redis_server.port, {"accounting": {
        "schedule": time.strftime("%H:%M"), "state_dir": state_dir + "-other"}})
    try:
        theirs = namespaces(other)
        assert theirs["report"] == ns["report"]
        assert theirs["tenants"]["orders"]["growth"] == o["growth"]
        time.sleep(1)
        assert not metric_value(other.metrics(), "keyfence_accounting_runs_total", result="ok")
    finally:
        stop_keyfence(other)


def test_backend_memory_metrics(kf, backend):
    backend.config_set("maxmemory", 100 * 1024 * 1024)
    try:
        node = f"127.0.0.1:{backend.connection_pool.connection_kwargs['port']}"

        def polled():
            m = kf.metrics()
            return metric_value(m, "keyfence_backend_maxmemory_bytes", node=node) == 104857600
        wait_until(polled, 8, interval=0.2, what="INFO memory polled")
        used = metric_value(kf.metrics(), "keyfence_backend_used_memory_bytes", node=node)
        direct = backend.info("memory")["used_memory"]
        assert 0.5 * direct < used < 2 * direct
    finally:
        backend.config_set("maxmemory", 0)


def test_analyze_conflicts_while_running(kf, backend):
    backend.config_set("repl-diskless-sync-delay", 2)  # the run lasts ~2 s
    try:
        assert kf.http("/analyze", method="POST")[0] == 202
        time.sleep(0.3)
        st, body = kf.http("/analyze", method="POST")
        assert st == 409 and json.loads(body)["started"] is False
        wait_until(lambda: namespaces(kf)["running"] is False, 15, what="the run to end")
    finally:
        backend.config_set("repl-diskless-sync-delay", 5)


def test_bad_stored_reports_and_binary_key_names(kf, keyfence, backend):
    # another (older, broken) instance left garbage where the reports live
    backend.set("shop@__keyfence:accounting:last", b"\xff{not json")
    backend.set("shop@__keyfence:accounting:baseline", json.dumps({"report": "x", "tenants": 5}))
    wait_until(lambda: namespaces(kf)["running"] is False, 15, what="no analysis running")
    time.sleep(1.1)  # /namespaces reads the backend's copy again: the garbage
    assert namespaces(kf)["report"]["trigger"] == "request"  # this instance's, kept
    wait_until(lambda: "is not a report keyfence can read; ignored" in open(keyfence.log_path).read(),
               5, what="the garbage refused with a log line")
    before = (namespaces(kf).get("report") or {}).get("finished_at_ms", 0)
    assert kf.http("/metrics")[0] == 200
    orders = kf.client("orders")
    orders.set(b"\xff\xfebin", "x" * 20000)  # a key name that is not UTF-8
    backend.config_set("repl-diskless-sync-delay", 0)
    try:
        assert kf.http("/analyze", method="POST")[0] == 202
        wait_until(lambda: namespaces(kf)["report"]["finished_at_ms"] > before, 15,
                   what="the analysis")
    finally:
        backend.config_set("repl-diskless-sync-delay", 5)
    big = namespaces(kf)["tenants"]["orders"]["big_keys"]
    assert big[0]["key"] == "\ufffd\ufffdbin" and big[0]["bytes"] > 20000
    assert keyfence.alive
    # the garbage was replaced by this run's report
    assert json.loads(backend.get("shop@__keyfence:accounting:last"))["report"]["finished_at_ms"] > before
