"""The same errors as Redis (issue 10, item 6): for every command of the generated table
(tools/command_samples.json, from a real redis-server 7.0), malformed invocations are sent
to a direct redis-server and through keyfence (to its own redis-server), and the replies
compared after un-prefixing: wrong arity, an unknown trailing option, bad numkeys (0, -1,
not an integer, more than the arguments), a non-integer where a number is expected, and
the wrong type. Commands keyfence denies by contract (NOPERM: ACL, CONFIG SET, MIGRATE,
FCALL, ...) are compared only in that keyfence refuses them (README: "Differences from
Redis"); commands that close, block or change the connection are left to their own tests."""

import json
import os

import pytest

from conftest import start_keyfence, stop_keyfence
from harness import RawConn, RedisServer, RespError

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
SAMPLES = json.load(open(os.path.join(REPO, "tools", "command_samples.json")))["samples"]
P = "shop@orders:"

# Connection-ending, blocking, server-changing or stateful: their own tests cover them.
LEFT_OUT = {
    "shutdown", "monitor", "sync", "psync", "quit", "debug", "failover", "replicaof",
    "slaveof", "client|pause", "client|kill", "replconf", "module|load", "module|loadex",
    "client|reply", "cluster|reset", "cluster|failover", "cluster|meet", "swapdb", "flushall",
    "flushdb", "reset", "multi", "exec", "discard", "watch", "unwatch", "subscribe",
    "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "hello", "auth",
    "select", "wait", "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzmpop", "bzpopmin",
    "bzpopmax", "xread", "xreadgroup", "client|unblock", "save", "bgsave", "bgrewriteaof",
    "script|kill", "function|kill", "client|tracking", "client|caching", "keys", "scan",
    "randomkey", "dbsize", "info", "client|list", "client|info", "client|id", "lastsave",
    "time", "role", "memory|stats", "memory|doctor", "memory|malloc-stats", "lolwut",
    "command", "command|docs", "command|info", "command|list", "command|count",
    "pubsub|channels", "pubsub|numpat", "pubsub|shardchannels", "object|freq", "spop",
    "srandmember", "hrandfield", "zrandmember", "pfselftest", "client|getredir",
    "client|trackinginfo", "client|no-evict", "cluster|info", "cluster|myid", "cluster|nodes",
    "cluster|shards", "cluster|slots", "cluster|links",
}
NUMKEYS_AT = {"eval": 2, "eval_ro": 2, "evalsha": 2, "evalsha_ro": 2, "lmpop": 1, "zmpop": 1,
              "sintercard": 1, "zdiff": 1, "zinter": 1, "zunion": 1, "zintercard": 1,
              "zdiffstore": 2, "zinterstore": 2, "zunionstore": 2}


def norm(r):
    if isinstance(r, RespError):
        return ("error", r.text.replace(P, ""))
    if isinstance(r, list):
        return [norm(x) for x in r]
    if isinstance(r, bytes):
        return r.replace(P.encode(), b"")
    return r


def variants(name, args):
    base = 2 if "|" in name else 1
    out = []
    if len(args) > base:
        out.append(("arity", args[:base]))
    out.append(("unknown option", args + ["BOGUSOPT"]))
    ints = [i for i, a in enumerate(args) if a == "1" and i >= base]
    if ints:
        a = list(args)
        a[ints[-1]] = "notanint"
        out.append(("not an integer", a))
    if name in NUMKEYS_AT:
        for v in ("0", "-1", "x", "9"):
            a = list(args)
            a[NUMKEYS_AT[name]] = v
            out.append((f"numkeys {v}", a))
    if s_keys(name):
        out.append(("wrong type", args))  # run against keys holding another type
    return out


def s_keys(name):
    return bool(SAMPLES[name]["keys"])


@pytest.fixture(scope="module")
def pair():
    direct, behind = RedisServer().start(), RedisServer().start()
    kf = start_keyfence(behind.port, {"tenants": {"orders": {"limits": {"allow_scripts": True}}}})
    yield direct, behind, kf
    stop_keyfence(kf)
    direct.cleanup()
    behind.cleanup()


def setup_wrong_types(d, k, name):
    """k1 and k2 hold a type the command does not take (a stream, unless it is a stream
    command: then a string)."""
    for c in (d, k):
        c.cmd("DEL", "k1", "k2")
        if name.startswith("x"):
            c.cmd("SET", "k1", "s")
            c.cmd("SET", "k2", "s")
        else:
            c.cmd("XADD", "k1", "*", "f", "v")
            c.cmd("XADD", "k2", "*", "f", "v")


def test_malformed_invocations_give_redis_errors(pair):
    direct, behind, kf = pair
    compared, denied, differences = 0, [], []
    with RawConn(direct.port, timeout=5) as d, kf.raw("orders", timeout=5) as k:
        for name in sorted(SAMPLES):
            if name in LEFT_OUT:
                continue
            args = SAMPLES[name]["args"]
            probe = k.cmd(*args)
            if isinstance(probe, RespError) and probe.text.startswith("NOPERM"):
                denied.append(name)
                continue
            for what, a in variants(name, args):
                if what == "wrong type":
                    setup_wrong_types(d, k, name)
                else:
                    d.cmd("FLUSHALL")
                    behind.client().flushall()
                want, got = norm(d.cmd(*a)), norm(k.cmd(*a))
                if not isinstance(want, tuple):
                    continue  # not an error directly: not this test's business
                compared += 1
                if want != got:
                    differences.append(f"{name} [{what}] {a}: redis {want} keyfence {got}")
            assert k.cmd("PING") == "PONG"  # the connection survives every one of them
    print(f"{compared} error replies compared, {len(denied)} commands denied by contract")
    assert compared > 300
    assert not differences, "\n".join(differences)
