#!/usr/bin/python3
"""Generates keyfence's command table from a real redis-server.

Reads COMMAND (COMMAND INFO for every command, subcommands included) and
COMMAND DOCS from a live server and writes, deterministically:

  protocol/commands_gen.inc    C++ data for protocol/command_table.cc
  tools/command_samples.json   one sample invocation per command/subcommand,
                               with the argument indices that are keys

By default it starts its own throw-away redis-server on a free loopback port
(no persistence) and kills it at exit; --host/--port use an existing server.

Every sample of a command with key specs is checked against the live server
with COMMAND GETKEYS: it must be accepted and return exactly the key arguments
the docs name. A sample that fails needs an entry in SAMPLE_OVERRIDES; the
generator fails otherwise. --verify prints that report and writes nothing.

--check regenerates into a temporary directory and exits 1 with a unified diff
if the committed files differ (CTest: command_table_fresh).

Run with /usr/bin/python3 (standard library only). Unknown command flags, ACL
categories, key-spec flags or argument types fail the run loudly, so that a
newer Redis is noticed rather than silently mis-described.
"""

import argparse
import atexit
import difflib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INC = os.path.join(REPO_ROOT, "protocol", "commands_gen.inc")
DEFAULT_SAMPLES = os.path.join(REPO_ROOT, "tools", "command_samples.json")
HEADER = os.path.join(REPO_ROOT, "protocol", "command_table.h")

# Server strings -> enumerator names in protocol/command_table.h.
COMMAND_FLAGS = {
    "write": "kCmdWrite",
    "readonly": "kCmdReadonly",
    "denyoom": "kCmdDenyOom",
    "module": "kCmdModule",
    "admin": "kCmdAdmin",
    "pubsub": "kCmdPubsub",
    "noscript": "kCmdNoscript",
    "blocking": "kCmdBlocking",
    "loading": "kCmdLoading",
    "stale": "kCmdStale",
    "skip_monitor": "kCmdSkipMonitor",
    "skip_slowlog": "kCmdSkipSlowlog",
    "asking": "kCmdAsking",
    "fast": "kCmdFast",
    "no_auth": "kCmdNoAuth",
    "may_replicate": "kCmdMayReplicate",
    "sentinel": "kCmdSentinel",
    "only_sentinel": "kCmdOnlySentinel",
    "no_mandatory_keys": "kCmdNoMandatoryKeys",
    "protected": "kCmdProtected",
    "module_getkeys": "kCmdModuleGetKeys",
    "module_no_cluster": "kCmdModuleNoCluster",
    "no_multi": "kCmdNoMulti",
    "movablekeys": "kCmdMovableKeys",
    "allow_busy": "kCmdAllowBusy",
    "module_getchannels": "kCmdModuleGetChannels",
    "no_async_loading": "kCmdNoAsyncLoading",
}

ACL_CATEGORIES = {
    "keyspace": "kAclKeyspace",
    "read": "kAclRead",
    "write": "kAclWrite",
    "set": "kAclSet",
    "sortedset": "kAclSortedSet",
    "list": "kAclList",
    "hash": "kAclHash",
    "string": "kAclString",
    "bitmap": "kAclBitmap",
    "hyperloglog": "kAclHyperLogLog",
    "geo": "kAclGeo",
    "stream": "kAclStream",
    "pubsub": "kAclPubSub",
    "admin": "kAclAdmin",
    "fast": "kAclFast",
    "slow": "kAclSlow",
    "blocking": "kAclBlocking",
    "dangerous": "kAclDangerous",
    "connection": "kAclConnection",
    "transaction": "kAclTransaction",
    "scripting": "kAclScripting",
}

KEY_SPEC_FLAGS = {
    "RO": "kKsRO",
    "RW": "kKsRW",
    "OW": "kKsOW",
    "RM": "kKsRM",
    "access": "kKsAccess",
    "update": "kKsUpdate",
    "insert": "kKsInsert",
    "delete": "kKsDelete",
    "not_key": "kKsNotKey",
    "incomplete": "kKsIncomplete",
    "variable_flags": "kKsVariableFlags",
}

# COMMAND DOCS argument type -> sample value (None: structural, handled apart).
ARG_SAMPLE = {
    "integer": "1",
    "double": "1.5",
    "string": "v",
    "pattern": "p*",
    "unix-time": "1",
    "key": None,
    "pure-token": None,
    "oneof": None,
    "block": None,
}

# Samples the docs-driven synthesis gets wrong or leaves useless. Each entry
# replaces the synthesized sample: "args" (command name first) and "keys" (the
# argument indices that are keys, each with the key_spec_index that finds it).
# Every entry states why; --verify lists the commands that need one.
SAMPLE_OVERRIDES = {
    # The docs list only the command name as required, but the arity (-4) needs
    # one argument of the inspected command as well.
    "command|getkeys": {"args": ["COMMAND", "GETKEYS", "GET", "v"], "keys": []},
    "command|getkeysandflags": {"args": ["COMMAND", "GETKEYSANDFLAGS", "GET", "v"],
                                "keys": []},
    # Scripts and functions: the docs make every key optional, which would leave a sample
    # of "numkeys 0" that never exercises the keynum spec. Declare one key.
    "eval": {"args": ["EVAL", "v", "1", "k1"], "keys": [(3, 0)]},
    "eval_ro": {"args": ["EVAL_RO", "v", "1", "k1"], "keys": [(3, 0)]},
    "evalsha": {"args": ["EVALSHA", "v", "1", "k1"], "keys": [(3, 0)]},
    "evalsha_ro": {"args": ["EVALSHA_RO", "v", "1", "k1"], "keys": [(3, 0)]},
    "fcall": {"args": ["FCALL", "v", "1", "k1"], "keys": [(3, 0)]},
    "fcall_ro": {"args": ["FCALL_RO", "v", "1", "k1"], "keys": [(3, 0)]},
    # DEBUG documents no arguments at all, yet needs a subcommand (arity -2).
    "debug": {"args": ["DEBUG", "HELP"], "keys": []},
    # Every argument is optional, but COMMAND GETKEYS needs at least one. The
    # shard channel is found by a not_key spec, which GETKEYS does not report.
    "sunsubscribe": {"args": ["SUNSUBSCRIBE", "v"], "keys": []},
}


class RespError(Exception):
    pass


class RespClient:
    """A minimal blocking RESP2 client: enough for COMMAND and friends."""

    def __init__(self, host, port, timeout=10.0):
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._file = self._sock.makefile("rwb")

    def close(self):
        self._file.close()
        self._sock.close()

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._file.write(b"".join(out))
        self._file.flush()
        return self._read()

    def _read(self):
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by redis-server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            return self._file.read(size + 2)[:-2].decode()
        if kind == b"*":
            size = int(rest)
            if size < 0:
                return None
            return [self._read() for _ in range(size)]
        raise ConnectionError("unexpected RESP type byte %r" % kind)


def fail(message):
    sys.stderr.write("gen_command_table: error: %s\n" % message)
    sys.exit(2)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent():
    """preexec_fn: SIGKILL the child if the generator dies first (Linux; else no-op)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_server(binary):
    """Starts a throw-away redis-server; returns (port, Popen). Killed at exit."""
    workdir = tempfile.mkdtemp(prefix="kf-gen-redis-")
    atexit.register(shutil.rmtree, workdir, True)
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
             "--logfile", os.path.join(workdir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)

        def stop(proc=proc):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

        atexit.register(stop)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                client = RespClient("127.0.0.1", port, timeout=2.0)
                info = client.call("INFO", "server")
                client.close()
                # Make sure we talk to our own server, not one that took the port first.
                if "process_id:%d\r\n" % proc.pid in info:
                    return port, proc
                break
            except (OSError, RespError, ConnectionError):
                time.sleep(0.05)
        stop()  # Port taken in between, or a slow start: try another port.
    fail("could not start %s" % binary)


def pairs(flat):
    """["k1", v1, "k2", v2] -> dict (RESP2 maps)."""
    if len(flat) % 2:
        fail("odd-length map from server: %r" % (flat,))
    return dict(zip(flat[0::2], flat[1::2]))


def header_enumerators():
    with open(HEADER, encoding="utf-8") as f:
        text = f.read()
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("k") and "=" in line:
            names.add(line.split("=", 1)[0].strip())
    return names


def check_mapping(kind, mapping, known):
    for value in mapping.values():
        if value not in known:
            fail("%s enumerator %s is missing from %s" % (kind, value, HEADER))


def bits(kind, values, mapping):
    out = []
    for value in values:
        if value not in mapping:
            fail("unknown %s %r from redis-server: add it to command_table.h and "
                 "to the generator" % (kind, value))
        out.append(mapping[value])
    return out


class Command:
    def __init__(self, info, parent=None):
        (name, arity, flags, first, last, step, cats, tips, key_specs,
         subcommands) = info[:10]
        self.name = name.lower()
        self.parent = parent
        self.arity = arity
        self.flags = bits("command flag", flags, COMMAND_FLAGS)
        self.first, self.last, self.step = first, last, step
        cat_names = []
        for cat in cats:
            if not cat.startswith("@"):
                fail("ACL category without '@': %r" % cat)
            cat_names.append(cat[1:])
        self.categories = bits("ACL category", cat_names, ACL_CATEGORIES)
        self.tips = tips
        self.key_specs = [parse_key_spec(self.name, ks) for ks in key_specs]
        self.subcommands = sorted((Command(sub, self) for sub in subcommands),
                                  key=lambda c: c.name)
        self.group = None
        self.docs = None
        self.id = None


def parse_key_spec(cmd, flat):
    spec = pairs(flat)
    unknown = set(spec) - {"notes", "flags", "begin_search", "find_keys"}
    if unknown:
        fail("%s: unknown key spec fields %r" % (cmd, sorted(unknown)))
    out = {"flags": bits("key spec flag", spec["flags"], KEY_SPEC_FLAGS)}
    begin = pairs(spec["begin_search"])
    bspec = pairs(begin["spec"])
    if begin["type"] == "index":
        out["begin"] = ("kIndex", bspec["index"], None, 0)
    elif begin["type"] == "keyword":
        out["begin"] = ("kKeyword", 0, bspec["keyword"], bspec["startfrom"])
    elif begin["type"] == "unknown":
        out["begin"] = ("kUnknown", 0, None, 0)
    else:
        fail("%s: unknown begin_search type %r" % (cmd, begin["type"]))
    find = pairs(spec["find_keys"])
    fspec = pairs(find["spec"])
    if find["type"] == "range":
        out["find"] = ("kRange", fspec["lastkey"], fspec["keystep"], fspec["limit"],
                       0, 0, 0)
    elif find["type"] == "keynum":
        out["find"] = ("kKeynum", 0, 0, 0, fspec["keynumidx"], fspec["firstkey"],
                       fspec["keystep"])
    elif find["type"] == "unknown":
        out["find"] = ("kUnknown", 0, 0, 0, 0, 0, 0)
    else:
        fail("%s: unknown find_keys type %r" % (cmd, find["type"]))
    return out


def attach_docs(commands, docs_flat):
    docs = {}

    def collect(name, flat):
        entry = pairs(flat)
        docs[name.lower()] = entry
        subs = entry.get("subcommands") or []
        for sub_name, sub_flat in pairs(subs).items():
            collect(sub_name, sub_flat)

    for name, flat in pairs(docs_flat).items():
        collect(name, flat)
    for cmd in all_commands(commands):
        if cmd.name not in docs:
            fail("COMMAND DOCS has no entry for %s" % cmd.name)
        cmd.docs = docs[cmd.name]
        cmd.group = cmd.docs.get("group", "")
    extra = set(docs) - {c.name for c in all_commands(commands)}
    if extra:
        fail("COMMAND DOCS names commands COMMAND does not: %r" % sorted(extra))


def all_commands(commands):
    """Id order: sorted top-level commands, each followed by its sorted subcommands."""
    for cmd in commands:
        yield cmd
        yield from cmd.subcommands


# ------------------------------------------------------------------ samples


class SampleBuilder:
    def __init__(self, cmd):
        self.cmd = cmd
        self.args = [part.upper() for part in cmd.name.split("|")]
        self.keys = []  # [(index, key_spec_index)]

    def emit_args(self, arguments):
        for flat in arguments:
            arg = pairs(flat)
            flags = arg.get("flags") or []
            for flag in flags:
                if flag not in ("optional", "multiple", "multiple_token"):
                    fail("%s: unknown argument flag %r" % (self.cmd.name, flag))
            if "optional" in flags:
                continue
            self.emit(arg)

    def emit(self, arg):
        kind = arg["type"]
        if kind not in ARG_SAMPLE:
            fail("%s: unknown argument type %r" % (self.cmd.name, kind))
        if "token" in arg and kind != "pure-token":
            self.args.append(arg["token"])
        if kind == "pure-token":
            self.args.append(arg["token"])
        elif kind == "block":
            self.emit_args(arg["arguments"])
        elif kind == "oneof":
            self.emit(pairs(arg["arguments"][0]))
        elif kind == "key":
            self.keys.append((len(self.args), arg["key_spec_index"]))
            self.args.append("k%d" % len(self.keys))
        else:
            if "key_spec_index" in arg:
                self.keys.append((len(self.args), arg["key_spec_index"]))
            self.args.append(ARG_SAMPLE[kind])


def build_sample(cmd):
    if cmd.name in SAMPLE_OVERRIDES:
        override = SAMPLE_OVERRIDES[cmd.name]
        return {"args": list(override["args"]),
                "keys": [{"index": i, "key_spec_index": s} for i, s in override["keys"]],
                "override": True}
    builder = SampleBuilder(cmd)
    builder.emit_args(cmd.docs.get("arguments") or [])
    # A numkeys argument must count the keys its keynum spec finds (the docs call it an
    # integer, so the synthesis wrote "1"; optional keys may leave it at 0).
    for spec_index, ks in enumerate(cmd.key_specs):
        begin, index = ks["begin"][0], ks["begin"][1]
        if begin == "kIndex" and ks["find"][0] == "kKeynum":
            pos = index + ks["find"][4]
            if pos < len(builder.args):
                builder.args[pos] = str(sum(1 for _, s in builder.keys if s == spec_index))
    return {"args": builder.args,
            "keys": [{"index": i, "key_spec_index": s} for i, s in builder.keys]}


def arity_ok(arity, argc):
    return argc == arity if arity >= 0 else argc >= -arity


class InvalidSpec(Exception):
    pass


def keys_from_specs(cmd, args):
    """Key positions the key specs find in `args`, as Redis' getKeysUsingKeySpecs does.

    Returns (sorted [(index, key_spec_index)], complete). not_key specs (channels) are
    skipped; complete is False if a spec is unknown or incomplete. Raises InvalidSpec if
    the arguments contradict a spec (e.g. numkeys larger than the keys present).
    """
    argc = len(args)
    found = []
    complete = True
    for spec_index, ks in enumerate(cmd.key_specs):
        if "kKsNotKey" in ks["flags"]:
            continue
        begin, index, keyword, startfrom = ks["begin"]
        if begin == "kIndex":
            first = index
        elif begin == "kKeyword":
            first = 0
            if startfrom > 0:
                order = range(startfrom, argc)
            else:
                order = range(argc + startfrom, 0, -1)
            for i in order:
                if 1 <= i < argc and args[i].upper() == keyword.upper():
                    first = i + 1
                    break
            if not first:
                continue  # Keyword absent: the spec finds nothing.
        else:
            complete = False
            continue
        find, lastkey, keystep, limit, keynumidx, firstkey, step = ks["find"]
        if find == "kRange":
            step = keystep
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
        elif find == "kKeynum":
            if first + keynumidx >= argc:
                raise InvalidSpec("spec %d: numkeys index out of range" % spec_index)
            try:
                numkeys = int(args[first + keynumidx])
            except ValueError:
                raise InvalidSpec("spec %d: numkeys is not a number" % spec_index)
            if numkeys < 0:
                raise InvalidSpec("spec %d: negative numkeys" % spec_index)
            if numkeys == 0:
                continue  # A valid request without keys (EVAL script 0).
            first += firstkey
            last = first + (numkeys - 1) * step
        else:
            complete = False
            continue
        if last >= argc or last < first or first >= argc:
            raise InvalidSpec("spec %d: keys out of range (first %d, last %d, argc %d)"
                              % (spec_index, first, last, argc))
        found.extend((i, spec_index) for i in range(first, last + 1, step))
        if "kKsIncomplete" in ks["flags"]:
            complete = False
    return sorted(found), complete


def verify_samples(client, commands, samples):
    """Returns a list of human-readable problems (empty if all samples pass)."""
    problems = []
    for cmd in all_commands(commands):
        sample = samples[cmd.name]
        args = sample["args"]
        if cmd.subcommands:
            continue  # A container (CLIENT, OBJECT...) has no invocation of its own.
        if not arity_ok(cmd.arity, len(args)):
            problems.append("%s: sample %r breaks arity %d" % (cmd.name, args, cmd.arity))
        if not cmd.key_specs:
            if sample["keys"]:
                problems.append("%s: docs name keys but COMMAND has no key specs"
                                % cmd.name)
            continue
        documented = sorted((k["index"], k["key_spec_index"]) for k in sample["keys"])
        try:
            by_specs, complete = keys_from_specs(cmd, args)
            if complete and by_specs != documented:
                problems.append("%s: key specs find %r in %r, docs say %r"
                                % (cmd.name, by_specs, args, documented))
            elif not set(by_specs) <= set(documented):
                problems.append("%s: key specs find %r in %r, docs only %r"
                                % (cmd.name, by_specs, args, documented))
        except InvalidSpec as err:
            problems.append("%s: sample %r contradicts its key specs: %s" % (cmd.name, args, err))
        expected = sorted(args[k["index"]] for k in sample["keys"])
        for k in sample["keys"]:
            if not 0 <= k["key_spec_index"] < len(cmd.key_specs):
                problems.append("%s: key_spec_index %d out of range"
                                % (cmd.name, k["key_spec_index"]))
        try:
            got = sorted(client.call("COMMAND", "GETKEYS", *args))
        except RespError as err:
            if expected or "no key arguments" not in str(err):
                problems.append("%s: COMMAND GETKEYS %s -> error %s"
                                % (cmd.name, " ".join(args), err))
            continue
        if got != expected:
            problems.append("%s: COMMAND GETKEYS %s -> %r, docs say %r"
                            % (cmd.name, " ".join(args), got, expected))
    return problems


# ------------------------------------------------------------------ output


def cxx_string(text):
    return json.dumps(text)  # ASCII-only names: JSON escaping is valid C++.


def cxx_bits(names):
    return " | ".join(names) if names else "0"


def render_inc(version, commands):
    cmds = list(all_commands(commands))
    subs = [c for c in cmds if c.parent is not None]
    top_index = {c.name: i for i, c in enumerate(commands)}
    sub_index = {c.name: i for i, c in enumerate(subs)}
    max_len = max(len(c.name) for c in cmds)

    out = []
    w = out.append
    w("// Generated by tools/gen_command_table.py from redis-server %s. DO NOT EDIT." % version)
    w("// Regenerate: ninja gen_command_table (see tools/README.md).")
    w("// Included by protocol/command_table.cc inside namespace keyfence::protocol::{anon}.")
    w("// clang-format off")
    w("")
    w("constexpr std::string_view kGeneratedFromRedisVersion = %s;" % cxx_string(version))
    w("constexpr size_t kNumTopLevelCommands = %d;" % len(commands))
    w("constexpr size_t kNumSubcommands = %d;" % len(subs))
    w("constexpr size_t kNumCommandsAndSubcommands = %d;" % len(cmds))
    w("constexpr size_t kMaxFullNameLength = %d;  // longest \"cmd\" or \"cmd|sub\"" % max_len)
    w("")

    # Key specs, one flat array; commands point into it.
    w("// {flags, begin, index, keyword, startfrom, find, lastkey, keystep, limit,")
    w("//  keynumidx, firstkey, step}")
    w("constinit const KeySpec kKeySpecs[] = {")
    spec_offset = {}
    count = 0
    for cmd in cmds:
        if not cmd.key_specs:
            continue
        spec_offset[cmd.name] = count
        w("    // %s" % cmd.name)
        for ks in cmd.key_specs:
            begin, index, keyword, startfrom = ks["begin"]
            find, lastkey, keystep, limit, keynumidx, firstkey, step = ks["find"]
            w("    {%s, KeySpec::Begin::%s, %d, %s, %d, KeySpec::Find::%s, %d, %d, %d, %d, %d, %d},"
              % (cxx_bits(ks["flags"]), begin, index,
                 cxx_string(keyword) if keyword is not None else "{}", startfrom,
                 find, lastkey, keystep, limit, keynumidx, firstkey, step))
            count += 1
    w("};")
    w("")

    def entry(cmd, parent_expr):
        specs = ("{kKeySpecs + %d, %d}" % (spec_offset[cmd.name], len(cmd.key_specs))
                 if cmd.key_specs else "{}")
        if cmd.subcommands:
            subspan = "{kSubcommands + %d, %d}" % (sub_index[cmd.subcommands[0].name],
                                                    len(cmd.subcommands))
        else:
            subspan = "{}"
        w("    // %s" % cmd.name)
        w("    {%s, %d, %d," % (cxx_string(cmd.name), cmd.id, cmd.arity))
        w("     %s," % cxx_bits(cmd.flags))
        w("     %s," % cxx_bits(cmd.categories))
        w("     %s, %s, %s}," % (specs, subspan, parent_expr))

    w("// {name, id, arity, flags, acl_categories, key_specs, subcommands, parent}")
    w("extern const CommandInfo kCommands[kNumTopLevelCommands];")
    w("")
    w("constinit const CommandInfo kSubcommands[kNumSubcommands] = {")
    for cmd in subs:
        entry(cmd, "&kCommands[%d]" % top_index[cmd.parent.name])
    w("};")
    w("")
    w("constinit const CommandInfo kCommands[kNumTopLevelCommands] = {")
    for cmd in commands:
        entry(cmd, "nullptr")
    w("};")
    w("")
    w("// Dense id -> command or subcommand.")
    w("constinit const CommandInfo* const kById[kNumCommandsAndSubcommands] = {")
    for cmd in cmds:
        if cmd.parent is None:
            w("    &kCommands[%d],  // %d %s" % (top_index[cmd.name], cmd.id, cmd.name))
        else:
            w("    &kSubcommands[%d],  // %d %s" % (sub_index[cmd.name], cmd.id, cmd.name))
    w("};")
    w("")
    w("// clang-format on")
    return "\n".join(out) + "\n"


def render_samples(version, commands, samples):
    out = ["{",
           '  "generated_by": "tools/gen_command_table.py; do not edit",',
           '  "redis_version": %s,' % json.dumps(version),
           '  "samples": {']
    names = [c.name for c in all_commands(commands)]
    for i, name in enumerate(names):
        comma = "," if i + 1 < len(names) else ""
        out.append("    %s: %s%s" % (json.dumps(name), json.dumps(samples[name],
                                                               sort_keys=True), comma))
    out += ["  }", "}"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ main


def generate(client):
    """Returns (version, commands, samples, problems)."""
    info = {}
    for line in client.call("INFO", "server").splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            info[key] = value.strip()
    version = info["redis_version"]

    known = header_enumerators()
    check_mapping("command flag", COMMAND_FLAGS, known)
    check_mapping("ACL category", ACL_CATEGORIES, known)
    check_mapping("key spec flag", KEY_SPEC_FLAGS, known)
    bits("ACL category", client.call("ACL", "CAT"), ACL_CATEGORIES)

    commands = sorted((Command(c) for c in client.call("COMMAND")), key=lambda c: c.name)
    next_id = 0
    for cmd in all_commands(commands):
        cmd.id = next_id
        next_id += 1
    if next_id > 0xFFFF:
        fail("too many commands for uint16_t ids")
    attach_docs(commands, client.call("COMMAND", "DOCS"))

    samples = {cmd.name: build_sample(cmd) for cmd in all_commands(commands)}
    unused = set(SAMPLE_OVERRIDES) - set(samples)
    if unused:
        fail("SAMPLE_OVERRIDES names unknown commands: %r" % sorted(unused))
    problems = verify_samples(client, commands, samples)
    return version, commands, samples, problems


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read_or_empty(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-inc", default=DEFAULT_INC)
    parser.add_argument("--out-samples", default=DEFAULT_SAMPLES)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 with a diff if the output files are stale")
    parser.add_argument("--verify", action="store_true",
                        help="only check the samples with COMMAND GETKEYS and report")
    parser.add_argument("--host", help="use this server instead of starting one")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--redis-server", default=shutil.which("redis-server")
                        or "/usr/bin/redis-server")
    opts = parser.parse_args()
    # Run the atexit clean-up (kill our redis-server) on SIGTERM too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    if opts.host:
        host, port = opts.host, opts.port
    else:
        host, (port, _) = "127.0.0.1", start_server(opts.redis_server)
    client = RespClient(host, port)
    version, commands, samples, problems = generate(client)
    client.close()

    if opts.verify:
        checked = sum(1 for c in all_commands(commands) if c.key_specs and not c.subcommands)
        overridden = sorted(n for n, s in samples.items() if s.get("override"))
        print("redis-server %s: %d commands, %d with key specs checked with COMMAND GETKEYS"
              % (version, len(samples), checked))
        print("overridden samples: %s" % (", ".join(overridden) or "none"))
        for problem in problems:
            print("FAIL " + problem)
        return 1 if problems else 0
    if problems:
        for problem in problems:
            sys.stderr.write("gen_command_table: sample problem: %s\n" % problem)
        fail("%d sample(s) fail COMMAND GETKEYS; fix them in SAMPLE_OVERRIDES"
             % len(problems))

    outputs = [(opts.out_inc, render_inc(version, commands)),
               (opts.out_samples, render_samples(version, commands, samples))]
    if opts.check:
        stale = False
        for path, text in outputs:
            old = read_or_empty(path)
            if old != text:
                stale = True
                rel = os.path.relpath(path, REPO_ROOT)
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(True), text.splitlines(True),
                    "a/" + rel + " (committed)", "b/" + rel + " (regenerated)"))
        if stale:
            print("\ncommand table is stale: run `ninja gen_command_table` "
                  "(or /usr/bin/python3 tools/gen_command_table.py) and commit")
            return 1
        print("command table is up to date (redis-server %s)" % version)
        return 0
    for path, text in outputs:
        write_if_changed(path, text)
        print("wrote %s" % os.path.relpath(path, os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
