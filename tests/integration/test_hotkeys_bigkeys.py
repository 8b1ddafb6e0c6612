"""Hot keys under a pattern the old 1-in-8 sampler could not see (a strictly
alternating pipeline: the hot key is every other request), and big keys: replies over
big_value_bytes attributed to the request's first key, per tenant, in GET /bigkeys."""

import json
import math
import re
import time

from harness import PREFIXES

TWO_MB = 2 * 1024 * 1024
SAMPLE = 8  # HotKeys::kSampleEvery


def get_json(kf, path):
    st, body = kf.http(path)[:2]
    return st, (json.loads(body) if st == 200 else body)


def test_alternating_pipeline_shows_the_hot_key_first(kf):
    n = 4000  # the hot key is 2000 of them
    with kf.raw("payments") as c:
        for i in range(n):
            c.send("GET", "alt:hot" if i % 2 == 0 else f"alt:cold:{i}")
        for _ in range(n):
            c.read()
    st, data = get_json(kf, "/hotkeys?tenant=payments")
    assert st == 200, data
    keys = data["keys"]
    assert keys and keys[0]["key"] == "alt:hot", keys[:5]
    # hotkeys.h: |count - f| <= N/K + 4*sqrt(f*(8-1)); the counts may have halved once
    # (5 s decay) while the test ran.
    f = n // 2
    bound = n / 64 + 4 * math.sqrt(f * (SAMPLE - 1))
    assert (f - bound) / 2 <= keys[0]["count"] <= f + bound, keys[0]
    # every other key was requested once: at most one sample's weight
    assert all(k["count"] <= SAMPLE for k in keys[1:]), keys[1:10]
    text = json.dumps(data)
    assert "shop@" not in text
    # the other tenant does not see it
    st, other = get_json(kf, "/hotkeys?tenant=orders")
    assert st == 200 and "alt:hot" not in json.dumps(other)


def big_keys(kf, tenant):
    st, data = get_json(kf, f"/bigkeys?tenant={tenant}")
    assert st == 200, data
    assert data["tenant"] == tenant
    return {k["key"]: k for k in data["keys"]}


def test_big_value_read_back_is_named_by_its_client_key(kf):
    value = b"v" * TWO_MB
    with kf.raw("orders") as c:
        assert c.cmd("SET", "big:value", value) == "OK"
        assert c.cmd("GET", "big:value") == value
        assert c.cmd("GET", "small:value") is None
    keys = big_keys(kf, "orders")
    assert "big:value" in keys, keys
    e = keys["big:value"]
    assert e["bytes"] >= TWO_MB and e["count"] >= 1, e
    assert "small:value" not in keys
    st, body = kf.http("/bigkeys?tenant=orders")[:2]
    assert not any(p in body for p in PREFIXES), body  # never the backend name
    # isolation: tenant payments does not see orders' key
    assert "big:value" not in big_keys(kf, "payments")


def test_big_reply_of_a_key_written_behind_keyfence(kf, backend):
    # No big request through keyfence: the first big reply arms the key capture on its
    # worker (logged with the command), later ones carry the key.
    backend.set(b"shop@payments:direct:big", b"d" * TWO_MB)
    with kf.raw("payments") as c:
        for _ in range(2):
            assert len(c.cmd("GET", "direct:big")) == TWO_MB
        time.sleep(1.1)  # the big-value log line is written at most once a second
        assert len(c.cmd("GET", "direct:big")) == TWO_MB
    keys = big_keys(kf, "payments")
    assert "direct:big" in keys, keys
    assert keys["direct:big"]["count"] >= 2
    assert "direct:big" not in big_keys(kf, "orders")
    log = kf.log_tail(300)
    assert re.search(r"big reply: tenant=payments conn=\d+ key=direct:big command=get "
                     rf"bytes={TWO_MB + 12}\b", log), log
    assert "shop@payments" not in log


def test_bigkeys_unknown_or_missing_tenant_like_hotkeys(kf):
    for q in ("?tenant=nobody", "", "?tenant="):
        hot = kf.http("/hotkeys" + q)[0]
        big = kf.http("/bigkeys" + q)[0]
        assert big == hot, (q, hot, big)
    assert kf.http("/bigkeys?tenant=nobody")[0] == 404
    assert kf.http("/bigkeys")[0] == 400
    assert kf.http("/bigkeys?tenant=orders", method="POST", body=b"")[0] == 405
