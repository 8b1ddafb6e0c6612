#!/usr/bin/env bash
# Installs the Debian 12 packages keyfence builds and tests with, only if some
# are missing (so a warm machine stays fast), and the node test clients.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git
  libboost-all-dev libhiredis-dev libabsl-dev libyaml-cpp-dev prometheus-cpp-dev
  libspdlog-dev catch2 libbenchmark-dev libssl-dev clang libclang-rt-14-dev nlohmann-json3-dev libcli11-dev
  redis-server redis-tools nutcracker valgrind linux-perf prometheus
  python3-redis python3-hiredis python3-pytest python3-yaml python3-cryptography yamllint nodejs npm
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # node/npm may come from outside Debian on a developer machine: skip them if present.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
  fi
  missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "--node" ] && [ -f tests/clients/package.json ] && [ ! -d tests/clients/node_modules ]; then
  (cd tests/clients && npm ci --no-audit --no-fund)
fi
if [ "${1:-}" = "--node" ] && [ -f tests/deploy/package.json ] && [ ! -d tests/deploy/node_modules ]; then
  (cd tests/deploy && npm ci --no-audit --no-fund --legacy-peer-deps)
fi
