#!/usr/bin/python3
"""Dependency direction check: no module file includes a header of a higher layer.

  tools/check_layers.py [--root DIR]   check the tree (default: the repository of this script)
  tools/check_layers.py --self-test    check that synthetic violations are caught

Scans every source file under the layer folders below (recursively) for #include "..." and
#include <...>, maps the including file and the included header to a layer (longest folder
prefix wins), and fails (exit 1) on each include of a higher layer or of a forbidden sibling:

  FILE:LINE: includes "X" from layer A, which may not depend on B

A file may include its own layer and any layer of a lower tier. Layers that share a tier are
siblings and may not include each other. Includes that map to no layer (the standard library,
abseil, Boost, ...) are ignored. A quoted include is resolved as the compiler does: first
relative to the including file's folder (so "../proxy/worker.h" is caught), then as written.
Layer folders that do not exist are simply skipped. The CMake side (cmake/KfModules.cmake)
enforces the module level at compile time; this script also orders proxy's sub-folders.
Standard library only.
"""

import argparse
import os
import posixpath
import re
import sys
import tempfile

# Tiers, lowest first. Each layer: (name, folder prefixes relative to the repository root).
# Layers in the same tier are siblings: mutually forbidden. Files directly in proxy/ (and in
# any proxy/ sub-folder not named here) are the top layer "proxy" and may include everything.
TIERS = [
    [("protocol", ["protocol/"]), ("rdb", ["rdb/"])],
    [("config", ["config/"])],
    [("tenancy", ["tenancy/"]), ("ratelimit", ["ratelimit/"]), ("inject", ["inject/"])],
    [("proxy/base", ["proxy/base/"])],
    [("proxy/net", ["proxy/net/"])],
    [("proxy/backend", ["proxy/backend/", "proxy/cluster/"])],
    [("proxy/commands", ["proxy/commands/"])],
    [("proxy/session", ["proxy/session/"])],
    [("proxy/admin", ["proxy/admin/"]), ("proxy/accounting", ["proxy/accounting/"]),
     ("proxy/ctl", ["proxy/ctl/"])],
    [("proxy", ["proxy/"])],
]

# Folders scanned (recursively) and the file name endings that count as sources.
SCAN_DIRS = ["protocol", "rdb", "config", "tenancy", "ratelimit", "inject", "proxy"]
SOURCE_SUFFIXES = (".h", ".cc", ".hpp", ".cpp", ".inc")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def _layer_table():
    """[(prefix, layer name, tier index)], longest prefix first."""
    table = []
    for tier_index, tier in enumerate(TIERS):
        for name, prefixes in tier:
            for prefix in prefixes:
                table.append((prefix, name, tier_index))
    table.sort(key=lambda row: len(row[0]), reverse=True)
    return table


LAYER_TABLE = _layer_table()


def layer_of(path):
    """(layer name, tier) of a repository-relative path, or None."""
    for prefix, name, tier in LAYER_TABLE:
        if path.startswith(prefix):
            return name, tier
    return None


def may_depend(src, dst):
    """src, dst: (name, tier). Own layer, or a strictly lower tier."""
    return src[0] == dst[0] or dst[1] < src[1]


def resolve(root, rel_file, quote, target):
    """Repository-relative path the include refers to, or None if outside the repository."""
    if quote == '"':
        beside = posixpath.normpath(posixpath.join(posixpath.dirname(rel_file), target))
        if not beside.startswith("../") and os.path.isfile(os.path.join(root, beside)):
            return beside
    written = posixpath.normpath(target)
    if written.startswith("../") or written.startswith("/"):
        return None
    return written


def source_files(root):
    for top in SCAN_DIRS:
        base = os.path.join(root, top)
        if not os.path.isdir(base):
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for filename in sorted(filenames):
                if filename.endswith(SOURCE_SUFFIXES):
                    full = os.path.join(dirpath, filename)
                    yield os.path.relpath(full, root).replace(os.sep, "/")


def check(root):
    """(violations as (file, line, include, from layer, to layer), number of files)."""
    violations = []
    count = 0
    for rel in source_files(root):
        count += 1
        src = layer_of(rel)
        if src is None:
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                quote, target = m.group(1), m.group(2)
                path = resolve(root, rel, quote, target)
                dst = layer_of(path) if path else None
                if dst is not None and not may_depend(src, dst):
                    violations.append((rel, lineno, target, src[0], dst[0]))
    return violations, count


def format_violation(v):
    rel, lineno, target, src, dst = v
    return f'{rel}:{lineno}: includes "{target}" from layer {src}, which may not depend on {dst}'


def unknown_proxy_folders(root):
    """proxy/ sub-folders the table does not name (they count as the top layer)."""
    base = os.path.join(root, "proxy")
    if not os.path.isdir(base):
        return []
    named = {prefix for prefix, _, _ in LAYER_TABLE}
    return sorted(
        f"proxy/{d}/" for d in os.listdir(base)
        if os.path.isdir(os.path.join(base, d)) and f"proxy/{d}/" not in named)


def run_check(root):
    violations, count = check(root)
    for d in unknown_proxy_folders(root):
        print(f"note: {d} is not in the layer table (tools/check_layers.py); "
              "its files count as the top layer proxy", file=sys.stderr)
    for v in violations:
        print(format_violation(v))
    if violations:
        print(f"layers: {len(violations)} forbidden include(s) in {count} files", file=sys.stderr)
        return 1
    print(f"layers: {count} files, no forbidden includes")
    return 0


# Synthetic tree for --self-test: path -> lines. Lines tagged "# BAD" must be reported (as
# "from -> to"), every other include must pass.
SELF_TEST_TREE = {
    "protocol/writer.h": ['#include "protocol/digits.h"', '#include <string>'],
    "protocol/digits.h": [],
    "protocol/bad.cc": ['#include "config/config.h"  # BAD protocol -> config'],
    "config/config.h": ['#include "protocol/writer.h"'],
    "config/bad.cc": ['#include "tenancy/policy.h"  # BAD config -> tenancy'],
    "tenancy/policy.h": ['#include "config/config.h"', '#include "protocol/writer.h"',
                         '#include "absl/strings/string_view.h"'],
    "tenancy/bad.cc": ['#include "proxy/worker.h"  # BAD tenancy -> proxy',
                       '#include "ratelimit/token_bucket.h"  # BAD tenancy -> ratelimit',
                       '#  include <proxy/session/x.h>  # BAD tenancy -> proxy/session',
                       '#include "../proxy/worker.h"  # BAD tenancy -> proxy'],
    "tenancy/sub/deep.cc": ['#include "../policy.h"', '#include "tenancy/policy.h"'],
    "ratelimit/token_bucket.h": ['#include "config/config.h"'],
    "ratelimit/bad.cc": ['#include "tenancy/policy.h"  # BAD ratelimit -> tenancy'],
    "proxy/base/b.h": ['#include "tenancy/policy.h"', '#include "ratelimit/token_bucket.h"',
                       '#include "proxy/base/c.h"'],
    "proxy/base/c.h": ['#include "proxy/net/n.h"  # BAD proxy/base -> proxy/net'],
    "proxy/net/n.h": ['#include "proxy/base/b.h"'],
    "proxy/backend/conn.cc": ['#include "proxy/session/x.h"  # BAD proxy/backend -> proxy/session',
                              '#include "proxy/cluster/topology.h"', '#include "proxy/net/n.h"',
                              '#include "proxy/worker.h"  # BAD proxy/backend -> proxy'],
    "proxy/cluster/topology.h": ['#include "proxy/backend/conn.h"',
                                 '#include "proxy/commands/k.h"  # BAD proxy/backend -> proxy/commands'],
    "proxy/session/x.h": ['#include "proxy/backend/conn.h"', '#include "proxy/session/y.h"',
                          '#include "proxy/admin/a.h"  # BAD proxy/session -> proxy/admin'],
    "proxy/commands/k.cc": ['#include "proxy/backend/conn.h"', '#include "proxy/base/b.h"',
                            '#include "proxy/server.h"  # BAD proxy/commands -> proxy'],
    "proxy/admin/a.cc": ['#include "proxy/commands/k.h"', '#include "protocol/writer.h"'],
    "proxy/worker.cc": ['#include "proxy/admin/a.h"', '#include "proxy/session/x.h"',
                        '#include "tenancy/policy.h"', '#include "ratelimit/token_bucket.h"',
                        '#include "proxy/worker.h"', '#include <boost/asio.hpp>'],
    "proxy/worker.h": ['#include "proxy/base/b.h"'],
    "proxy/server.h": ['#include "proxy/worker.h"'],
    "proxy/main.cc": ['#include "proxy/server.h"', '#include "proxy/base/b.h"'],
    "proxy/misc/m.cc": ['#include "proxy/worker.h"'],
    "README.md": ['#include "proxy/worker.h"'],  # not a source file
}


def self_test():
    expected = set()
    with tempfile.TemporaryDirectory(prefix="kf-layers-selftest-") as root:
        for rel, lines in SELF_TEST_TREE.items():
            full = os.path.join(root, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                for lineno, line in enumerate(lines, 1):
                    code, _, tag = line.partition("  # BAD ")
                    f.write(code + "\n")
                    if tag:
                        src, dst = (s.strip() for s in tag.split("->"))
                        target = INCLUDE_RE.match(code).group(2)
                        expected.add((rel, lineno, target, src, dst))
        violations, count = check(root)
        unknown = unknown_proxy_folders(root)
    got = set(violations)
    ok = True
    for v in sorted(expected - got):
        print("self-test: NOT caught: " + format_violation(v))
        ok = False
    for v in sorted(got - expected):
        print("self-test: wrongly reported: " + format_violation(v))
        ok = False
    want_message = ('tenancy/bad.cc:1: includes "proxy/worker.h" from layer tenancy, '
                    'which may not depend on proxy')
    if want_message not in {format_violation(v) for v in violations}:
        print("self-test: message format changed; want: " + want_message)
        ok = False
    if unknown != ["proxy/misc/"]:
        print(f"self-test: unknown proxy folders {unknown}, want ['proxy/misc/']")
        ok = False
    if len(violations) != len(got):
        print("self-test: a violation was reported twice")
        ok = False
    if count != len(SELF_TEST_TREE) - 1:
        print(f"self-test: scanned {count} files, want {len(SELF_TEST_TREE) - 1}")
        ok = False
    if not ok:
        return 1
    print(f"layers self-test: {len(expected)} synthetic violations caught, "
          f"{count} files, nothing else reported")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="repository root (default: the one holding this script)")
    parser.add_argument("--self-test", action="store_true",
                        help="check that synthetic violations are caught")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return run_check(args.root)


if __name__ == "__main__":
    sys.exit(main())
