#!/usr/bin/env bash
# deploy.package: `make package`'s .deb, built from this build tree into a temporary
# folder, unpacked with dpkg-deb -x, its files and control data checked, and the
# unpacked binary run (--version, --help, --check of the packaged config).
#   tests/deploy/package.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "deploy.package: $*" >&2; exit 1; }

(cd "$tmp" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) \
  || { cat "$tmp/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$tmp"/out/keyfence_*_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no .deb in $tmp/out"
dpkg-deb -x "$deb" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/control"

for f in usr/bin/keyfence lib/systemd/system/keyfence.service etc/keyfence/keyfence.yaml \
         share/doc/keyfence/README.md share/doc/keyfence/examples/keyfence.yaml; do
  case "$f" in
    usr/*|etc/*) p="$tmp/root/$f" ;;
    *) p="$tmp/root/usr/$f" ;;
  esac
  [ -e "$p" ] || fail "missing $f in the package; it holds: $(dpkg-deb -c "$deb")"
done
bin="$tmp/root/usr/bin/keyfence"
file "$bin" | grep -q "stripped" && ! file "$bin" | grep -q "not stripped" || fail "binary not stripped"
"$bin" --version | grep -Eq '^keyfence [0-9]+\.[0-9]+\.[0-9]+ \([0-9a-f]{12}|unknown\)$' \
  || fail "--version: $("$bin" --version)"
[ "$("$bin" --version)" = "$("$build/keyfence" --version)" ] || fail "--version differs from the build's"
"$bin" --help | grep -q -- "--config" || fail "--help lacks --config"
for sub in analyze inject ctl; do "$bin" --help | grep -q "$sub" || fail "--help lacks $sub"; done
"$bin" --check --config "$tmp/root/etc/keyfence/keyfence.yaml" >/dev/null \
  || fail "the packaged config does not pass --check"
grep -q '^ExecStart=/usr/bin/keyfence ' "$tmp/root/usr/lib/systemd/system/keyfence.service" \
  || fail "the unit does not start /usr/bin/keyfence"
grep -q '/usr/local' "$tmp/root/usr/lib/systemd/system/keyfence.service" \
  && grep -q '^Exec.*/usr/local' "$tmp/root/usr/lib/systemd/system/keyfence.service" \
  && fail "the unit still runs /usr/local/bin"
grep -qx '/etc/keyfence/keyfence.yaml' "$tmp/control/conffiles" || fail "config not a conffile"
[ -x "$tmp/control/postinst" ] || fail "no postinst"
deps=$(dpkg-deb -f "$deb" Depends)
for lib in libssl3 libyaml-cpp0.7 libspdlog1.10 libprometheus-cpp-core1.0 libabsl20220623; do
  case "$deps" in *"$lib"*) ;; *) fail "Depends lacks $lib: $deps" ;; esac
done
case "$deps" in *hiredis*) fail "Depends names hiredis, which keyfence no longer links" ;; esac
# The container image's file system (deploy/docker/rootfs.sh, FROM scratch): the packaged
# binary runs in it alone (chroot: only as root; CI is root).
if [ "$(id -u)" = 0 ]; then
  size=$(bash "$src/deploy/docker/rootfs.sh" "$bin" "$src/deploy/docker/keyfence.yaml" "$tmp/rootfs")
  chroot "$tmp/rootfs" /usr/bin/keyfence --version >/dev/null || fail "the image's rootfs lacks something"
  chroot "$tmp/rootfs" /usr/bin/keyfence --check --config /etc/keyfence/keyfence.yaml >/dev/null \
    || fail "the image's default config does not pass --check in its rootfs"
  [ ! -e "$tmp/rootfs/bin/sh" ] || fail "the image's rootfs has a shell"
  echo "deploy.package: image $size"
else
  echo "deploy.package: not root: the image rootfs check is skipped"
fi
echo "deploy.package: $(basename "$deb") $(stat -c %s "$deb") bytes; Depends: $deps"
