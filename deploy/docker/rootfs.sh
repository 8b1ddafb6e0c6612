#!/usr/bin/env bash
# The container's whole file system, for a FROM scratch runtime stage: the keyfence
# binary, exactly the shared libraries it loads (ldd) and the dynamic loader, the CA
# bundle (backend.tls with the system trust store), the default config, a passwd/group
# naming uid 10001, and /tmp. Nothing else: no shell, no package manager.
#   deploy/docker/rootfs.sh BINARY CONFIG DEST
# Prints the size of DEST. Used by the Dockerfile and by tests/deploy/package.sh, which
# runs the binary inside DEST with chroot to prove nothing is missing.
set -euo pipefail
bin=$1 config=$2 dest=$3
mkdir -p "$dest"/usr/bin "$dest"/etc/keyfence "$dest"/etc/ssl/certs "$dest"/tmp
chmod 1777 "$dest"/tmp
install -m 0755 "$bin" "$dest"/usr/bin/keyfence
install -m 0644 "$config" "$dest"/etc/keyfence/keyfence.yaml
# Every library ldd resolves, and the loader, at the same paths (symlinks followed).
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$dest$(dirname "$lib")"
  cp -L "$lib" "$dest$lib"
done
if ldd "$bin" | grep -q 'not found'; then
  echo "rootfs: a library is missing: $(ldd "$bin" | grep 'not found')" >&2
  exit 1
fi
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$dest"/etc/ssl/certs/
fi
printf 'root:x:0:0:root:/:/sbin/nologin\nkeyfence:x:10001:10001:keyfence:/nonexistent:/sbin/nologin\n' \
  >"$dest"/etc/passwd
printf 'root:x:0:\nkeyfence:x:10001:\n' >"$dest"/etc/group
du -sb "$dest" | awk '{printf "rootfs: %d bytes (%.1f MB)\n", $1, $1/1048576}'
