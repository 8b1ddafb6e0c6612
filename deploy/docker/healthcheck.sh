#!/bin/bash
# Container health check for keyfence without curl: GET a path on the admin HTTP port
# through bash's /dev/tcp and succeed on a 200 status line.
#   keyfence-healthcheck [/healthz|/readyz]
# KEYFENCE_ADMIN_HOST (default 127.0.0.1) and KEYFENCE_ADMIN_PORT (default 9121) must point
# at admin.bind; a wildcard bind (0.0.0.0:9121) is reachable on 127.0.0.1.
set -u
host=${KEYFENCE_ADMIN_HOST:-127.0.0.1}
port=${KEYFENCE_ADMIN_PORT:-9121}
path=${1:-/healthz}
exec 3<>"/dev/tcp/${host}/${port}" 2>/dev/null || { echo "keyfence admin ${host}:${port} unreachable"; exit 1; }
printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$path" "$host" "$port" >&3
if ! IFS= read -r -t 3 status <&3; then
  echo "keyfence admin ${host}:${port}: no answer"
  exit 1
fi
status=${status%$'\r'}
case "$status" in
  "HTTP/1."[01]" 200"*) exit 0 ;;
  *) echo "keyfence ${path}: ${status}"; exit 1 ;;
esac
