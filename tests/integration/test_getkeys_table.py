"""THE REQUIRED TEST: every command and subcommand of the generated command table
(tools/command_samples.json) is sent through keyfence as tenant "orders"; the backend's
MONITOR shows what keyfence really sent, and the backend's own COMMAND GETKEYS must find
only keys in "shop@orders:" in it (plus channel / pattern / SORT / SCAN checks).

For each sample one of these holds, or the test fails:
  * denied: the reply is -NOPERM ..., -ERR unknown command/subcommand, or "... not allowed"
            and the command did not reach the backend;
  * forwarded: every command keyfence sent for it keeps to the namespace, and (for a sample
            with keys, whose direct form the backend shows in MONITOR) the rewritten keys
            "shop@orders:<key>" are among the keys the backend saw;
  * answered by keyfence itself (no backend command, non-error reply) for keyless commands;
  * an error reply that is not a denial, with nothing forwarded (reported, not failed).
In every case the reply must not contain a namespace prefix, the backend must still be up
and a master. The commands the contract denies must be denied.

A summary (allowed / denied / ...) is printed at the end.
"""

import collections
import json
import os

import pytest

from harness import (REPO, ConnectionClosed, MonitorChecker, RawConn, RespError,
                     wait_until)

SAMPLES = os.path.join(REPO, "tools", "command_samples.json")
P = b"shop@orders:"

# Connection-killing or server-changing samples never sent DIRECTLY (calibration only).
NO_DIRECT = {"shutdown", "monitor", "sync", "psync", "quit", "debug", "failover",
             "replicaof", "slaveof", "client|pause", "client|kill", "replconf",
             "module|load", "module|loadex", "client|reply", "cluster|reset",
             "cluster|failover", "cluster|meet", "swapdb", "flushall", "flushdb"}

# Denied by the contract (DESIGN.md). Container names (acl, slowlog...) mean every subcommand.
CONTRACT_DENIED = {
    "config|set", "config|rewrite", "config|resetstat", "debug", "shutdown", "monitor",
    "migrate", "move", "swapdb", "slaveof", "replicaof", "sync", "psync", "save", "bgsave",
    "script|flush", "script|kill", "fcall", "fcall_ro", "restore", "restore-asking",
    "client|pause", "client|unpause", "client|no-evict",
    "eval", "evalsha", "eval_ro", "evalsha_ro",
}
CONTRACT_DENIED_FAMILIES = {"acl", "module", "slowlog", "latency"}
FUNCTION_ALLOWED = {"function|flush", "function|help"}

# Optional key positions the generated samples (required arguments only) do not reach.
# (name, args, indices of client keys)
EXTRA_SAMPLES = [
    ("x:sort-by-get-store", ["SORT", "k1", "BY", "w_*", "GET", "o_*", "GET", "#", "STORE", "k2"], [1, 9]),
    ("x:sort-hash-by", ["SORT", "k1", "BY", "h_*->f", "GET", "h_*->g"], [1]),
    ("x:sort_ro-by-get", ["SORT_RO", "k1", "BY", "w_*", "GET", "o_*"], [1]),
    ("x:georadius-store", ["GEORADIUS", "k1", "15", "37", "200", "km", "STORE", "k2"], [1, 7]),
    ("x:georadius-storedist", ["GEORADIUS", "k1", "15", "37", "200", "km", "STOREDIST", "k2"], [1, 7]),
    ("x:georadiusbymember-store", ["GEORADIUSBYMEMBER", "k1", "Palermo", "300", "km", "STORE", "k2"], [1, 6]),
    ("x:geosearchstore", ["GEOSEARCHSTORE", "k2", "k1", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"], [1, 2]),
    ("x:xread-2", ["XREAD", "COUNT", "5", "STREAMS", "k1", "k2", "0", "0"], [4, 5]),
    ("x:xreadgroup-2", ["XREADGROUP", "GROUP", "g", "c", "COUNT", "5", "STREAMS", "k1", "k2", ">", ">"], [7, 8]),
    ("x:zunionstore-weights", ["ZUNIONSTORE", "k3", "2", "k1", "k2", "WEIGHTS", "1", "2"], [1, 3, 4]),
    ("x:zinterstore", ["ZINTERSTORE", "k3", "2", "k1", "k2", "AGGREGATE", "MAX"], [1, 3, 4]),
    ("x:zunion", ["ZUNION", "2", "k1", "k2", "WITHSCORES"], [2, 3]),
    ("x:zintercard", ["ZINTERCARD", "2", "k1", "k2", "LIMIT", "5"], [2, 3]),
    ("x:sintercard", ["SINTERCARD", "2", "k1", "k2"], [2, 3]),
    ("x:lmpop-2", ["LMPOP", "2", "k1", "k2", "LEFT", "COUNT", "2"], [2, 3]),
    ("x:blmpop-2", ["BLMPOP", "0.1", "2", "k1", "k2", "RIGHT"], [3, 4]),
    ("x:zmpop-2", ["ZMPOP", "2", "k1", "k2", "MIN", "COUNT", "2"], [2, 3]),
    ("x:bzmpop-2", ["BZMPOP", "0.1", "2", "k1", "k2", "MAX"], [3, 4]),
    ("x:bzpopmin-2", ["BZPOPMIN", "k1", "k2", "0.1"], [1, 2]),
    ("x:blpop-2", ["BLPOP", "k1", "k2", "0.1"], [1, 2]),
    ("x:mset", ["MSET", "k1", "a", "k2", "b", "user:{42}:cart", "c"], [1, 3, 5]),
    ("x:mget", ["MGET", "k1", "k2", "user:{42}:cart"], [1, 2, 3]),
    ("x:del", ["DEL", "k1", "k2", "k3"], [1, 2, 3]),
    ("x:exists", ["EXISTS", "k1", "k2"], [1, 2]),
    ("x:msetnx", ["MSETNX", "k1", "a", "k2", "b"], [1, 3]),
    ("x:bitop", ["BITOP", "AND", "k3", "k1", "k2"], [2, 3, 4]),
    ("x:pfmerge", ["PFMERGE", "k3", "k1", "k2"], [1, 2, 3]),
    ("x:pfcount", ["PFCOUNT", "k1", "k2"], [1, 2]),
    ("x:rename-tag", ["RENAME", "k1", "{k1}x"], [1, 2]),
    ("x:smove", ["SMOVE", "k1", "k2", "m"], [1, 2]),
    ("x:lmove", ["LMOVE", "k1", "k2", "LEFT", "RIGHT"], [1, 2]),
    ("x:xgroup-create-mkstream", ["XGROUP", "CREATE", "k1", "g", "$", "MKSTREAM"], [2]),
    ("x:object-encoding", ["OBJECT", "ENCODING", "k1"], [2]),
    ("x:memory-usage", ["MEMORY", "USAGE", "k1", "SAMPLES", "5"], [2]),
    ("x:copy-replace", ["COPY", "k1", "k2", "REPLACE"], [1, 2]),
    ("x:eval-2keys", ["EVAL", "return 1", "2", "k1", "k2", "a"], [3, 4]),
    ("x:migrate-keys", ["MIGRATE", "127.0.0.1", "1", "", "0", "100", "KEYS", "k1", "k2"], [7, 8]),
    ("x:publish", ["PUBLISH", "news", "m"], []),
    ("x:spublish", ["SPUBLISH", "news", "m"], []),
    ("x:pubsub-numsub", ["PUBSUB", "NUMSUB", "a", "b"], []),
    ("x:pubsub-channels", ["PUBSUB", "CHANNELS", "n*"], []),
    ("x:pubsub-shardnumsub", ["PUBSUB", "SHARDNUMSUB", "a"], []),
    ("x:subscribe-2", ["SUBSCRIBE", "a", "b"], []),
    ("x:psubscribe", ["PSUBSCRIBE", "n*", "a?"], []),
    ("x:ssubscribe", ["SSUBSCRIBE", "a"], []),
    ("x:scan-match", ["SCAN", "0", "MATCH", "user:*", "COUNT", "100", "TYPE", "string"], []),
    ("x:keys-glob", ["KEYS", "*{42}*"], []),
]

# Data created through keyfence before some samples, so the commands do real work.
SETUP = {
    "x:sort-by-get-store": [["RPUSH", "k1", "1", "2"], ["SET", "w_1", "2"], ["SET", "w_2", "1"],
                            ["SET", "o_1", "one"], ["SET", "o_2", "two"]],
    "x:sort-hash-by": [["RPUSH", "k1", "1"], ["HSET", "h_1", "f", "1", "g", "x"]],
    "x:georadius-store": [["GEOADD", "k1", "13.361389", "38.115556", "Palermo"]],
    "x:georadiusbymember-store": [["GEOADD", "k1", "13.361389", "38.115556", "Palermo"]],
    "x:geosearchstore": [["GEOADD", "k1", "15.087269", "37.502669", "Catania"]],
    "x:xread-2": [["XADD", "k1", "*", "f", "v"]],
    "x:xreadgroup-2": [["XGROUP", "CREATE", "k1", "g", "0", "MKSTREAM"],
                       ["XGROUP", "CREATE", "k2", "g", "0", "MKSTREAM"], ["XADD", "k2", "*", "f", "v"]],
    "x:lmpop-2": [["RPUSH", "k2", "a", "b"]],
    "x:zmpop-2": [["ZADD", "k2", "1", "a"]],
    "x:bzpopmin-2": [["ZADD", "k2", "1", "a"]],
    "x:blpop-2": [["RPUSH", "k2", "a"]],
    "x:object-encoding": [["SET", "k1", "12"]],
    "x:memory-usage": [["SET", "k1", "12"]],
    "x:copy-replace": [["SET", "k1", "12"]],
    "x:rename-tag": [["SET", "k1", "12"]],
    "x:scan-match": [["SET", "user:1", "a"]],
}

DENIAL_MARKERS = ("unknown command", "unknown subcommand", "not allowed")


def is_denial(r) -> bool:
    if not isinstance(r, RespError):
        return False
    low = r.text.lower()
    return r.code == "NOPERM" or any(m in low for m in DENIAL_MARKERS)


def contains_prefix(r) -> bool:
    if isinstance(r, (bytes, str)):
        b = r if isinstance(r, bytes) else r.encode()
        return b"shop@" in b
    if isinstance(r, RespError):
        return "shop@" in r.text
    if isinstance(r, dict):
        return any(contains_prefix(k) or contains_prefix(v) for k, v in r.items())
    if isinstance(r, (list, tuple)):
        return any(contains_prefix(x) for x in r)
    return False


def load_samples():
    with open(SAMPLES) as f:
        data = json.load(f)
    out = []
    for name, s in sorted(data["samples"].items()):
        out.append((name, list(s["args"]), [k["index"] for k in s.get("keys", [])]))
    return out, data.get("redis_version")


def contract_requires_denial(name: str) -> bool:
    family = name.split("|")[0]
    if name in CONTRACT_DENIED:
        return True
    if family in CONTRACT_DENIED_FAMILIES and "|" in name:
        return True
    if family == "function" and "|" in name and name not in FUNCTION_ALLOWED:
        return True
    return False


def prefixed(key: str) -> bytes:
    k = key.encode()
    i = k.find(b"{")
    if i >= 0:
        j = k.find(b"}", i + 1)
        if j > i + 1:
            return P + k[:i + 1] + P + k[i + 1:]
    return P + k


@pytest.fixture(scope="module")
def samples():
    if not os.path.exists(SAMPLES):
        pytest.fail(f"{SAMPLES} is missing (generated by tools/gen_command_table.py)")
    s, ver = load_samples()
    assert len(s) > 200, f"only {len(s)} samples in {SAMPLES}"
    return s, ver


def send_sample(port: int, args, timeout=5.0):
    """-> (reply, closed_after) ; reply is an Exception on timeout."""
    with RawConn(port, timeout=timeout) as c:
        try:
            r = c.cmd(*args)
        except ConnectionClosed as e:
            return e, True
        except OSError as e:  # includes socket.timeout
            return e, False
        return r, False


BLOCKING = {"blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax",
            "bzmpop"}


def rewrite_keys(args, key_idx):
    return [prefixed(a) if i in key_idx else a.encode() for i, a in enumerate(args)]


def setup_key_idx(cmd):
    return [2] if cmd[0].upper() == "XGROUP" else [1]


def direct_visible(srv, mon: MonitorChecker, args, key_idx) -> bool:
    """Send the sample DIRECTLY (keys prefixed by hand); does MONITOR show it?
    (Redis does not show admin commands, nor most commands that fail.)"""
    mark = mon.mark()
    with srv.raw(timeout=5) as c:
        try:
            c.cmd(*rewrite_keys(args, key_idx))
        except OSError:
            pass
    mon.sync()
    name = args[0].upper().encode()
    return any(cmd[0].upper() == name for _, cmd in mon.commands(mark, include_own=True))


def backend_healthy(srv) -> str | None:
    """None if the backend is up and a master; else a description (after repairing)."""
    if not srv.running:
        srv.start()
        return "backend process died"
    try:
        with srv.raw(timeout=3) as c:
            role = c.cmd("ROLE")
            if isinstance(role, list) and role and role[0] != b"master":
                c.cmd("REPLICAOF", "NO", "ONE")
                return f"backend became {role[0]!r}"
            c.cmd("CLIENT", "UNPAUSE")
    except OSError as e:
        srv.restart()
        return f"backend unreachable: {e}"
    return None


def test_every_command_keeps_to_the_namespace(kf, redis_server, samples, capsys):
    sample_list, redis_version = samples
    srv = redis_server
    port = kf.port("orders")
    direct = srv.client()
    mon = MonitorChecker(srv, prefixes=(P, b"shop@__keyfence:"))  # and keyfence's own reports
    stats = collections.Counter()
    failures: list[str] = []
    local_errors: list[str] = []
    denied_names: list[str] = []
    hangs = 0
    all_samples = [(n, a, k, False) for n, a, k in sample_list] + \
                  [(n, a, k, True) for n, a, k in EXTRA_SAMPLES]
    try:
        for name, args, key_idx, extra in all_samples:
            if hangs >= 5:
                failures.append("stopped after 5 samples without a reply")
                break
            shown = " ".join(args)[:100]
            visible = False
            if key_idx and name.split(":")[-1] in BLOCKING:
                visible = True  # a blocked command is shown when it starts
            elif key_idx and name not in NO_DIRECT:
                direct.flushall()
                for cmd in SETUP.get(name, []):
                    direct.execute_command(*rewrite_keys(cmd, setup_key_idx(cmd)))
                visible = direct_visible(srv, mon, args, key_idx)
            direct.flushall()
            for cmd in SETUP.get(name, []):
                r, _ = send_sample(port, cmd)
                if isinstance(r, (RespError, Exception)):
                    failures.append(f"{name}: setup {cmd} failed through keyfence: {r!r}")
            mark = mon.mark()
            reply, closed = send_sample(port, args)
            violations, _, _ = mon.check(mark)
            window = mon.commands(mark)
            failures.extend(f"{name} [{shown}]: {v}" for v in violations)

            health = backend_healthy(srv)
            if health:
                failures.append(f"{name} [{shown}]: {health}")
                # let keyfence reconnect before the next sample
                try:
                    wait_until(lambda: not isinstance(send_sample(port, ["GET", "probe"])[0],
                                                      (RespError, Exception)),
                               15, 0.2, "keyfence to reach the restarted backend")
                except TimeoutError:
                    failures.append("keyfence did not recover after backend repair")
                    break

            if isinstance(reply, Exception) and not closed:
                hangs += 1
                failures.append(f"{name} [{shown}]: no reply ({reply!r})")
                stats["no reply"] += 1
                continue
            if contains_prefix(reply):
                failures.append(f"{name} [{shown}]: reply leaks a prefix: {str(reply)[:200]}")

            same_cmd = [c for _, c in window if c[0].upper() == args[0].upper().encode()]
            if closed:
                stats["closed"] += 1
                if name != "quit":
                    failures.append(f"{name} [{shown}]: keyfence closed the connection")
                continue
            if is_denial(reply):
                stats["denied"] += 1
                denied_names.append(name)
                if same_cmd:
                    failures.append(f"{name} [{shown}]: denied ({reply.text}) but reached the "
                                    f"backend as {same_cmd[0][:6]}")
                continue
            if contract_requires_denial(name):
                failures.append(f"{name} [{shown}]: the contract denies it, keyfence answered "
                                f"{str(reply)[:120]}")
            if name == "function|flush" and reply != "OK":
                failures.append(f"function|flush should answer +OK, got {reply!r}")

            if window:
                stats["forwarded"] += 1
            elif isinstance(reply, RespError):
                stats["error (not forwarded)"] += 1
                local_errors.append(f"{name}: {reply.text[:100]}")
            else:
                stats["answered by keyfence"] += 1

            if key_idx and visible:
                seen = set()
                with srv.raw(timeout=5) as gk:
                    for _, c in window:
                        r = gk.cmd("COMMAND", "GETKEYS", *c)
                        if isinstance(r, list):
                            seen.update(r)
                want = {prefixed(args[i]) for i in key_idx}
                missing = want - seen
                if missing and not isinstance(reply, RespError):
                    failures.append(f"{name} [{shown}]: keys {sorted(missing)} not seen at the "
                                    f"backend (reply {str(reply)[:80]}; sent "
                                    f"{[c[:5] for _, c in window][:3]})")
                elif missing:
                    local_errors.append(f"{name}: keyed command not forwarded: {reply!r}"[:140])
            if extra:
                stats["extra samples allowed"] += 1
    finally:
        mon.stop()
        direct.close()

    allowed = stats["forwarded"] + stats["answered by keyfence"] + stats["error (not forwarded)"]
    with capsys.disabled():
        print(f"\n[getkeys table] redis {redis_version}: {len(sample_list)} generated + "
              f"{len(EXTRA_SAMPLES)} extra samples; allowed {allowed} "
              f"(forwarded {stats['forwarded']}, answered by keyfence "
              f"{stats['answered by keyfence']}, error replies {stats['error (not forwarded)']}),"
              f" denied {stats['denied']}, closed {stats['closed']}, "
              f"no reply {stats['no reply']}; failures {len(failures)}")
        print("[getkeys table] denied: " + " ".join(denied_names))
        if local_errors:
            print("[getkeys table] error replies without forwarding (not failures):\n  "
                  + "\n  ".join(local_errors[:80]))
    assert not failures, f"{len(failures)} problems:\n  " + "\n  ".join(failures[:150])

