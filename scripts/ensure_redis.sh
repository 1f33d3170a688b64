#!/usr/bin/env bash
# Make sure a Redis server answers on 127.0.0.1:6379 for the rate-limit tests.
# Uses the running one; otherwise starts one (memory only), installing it from Debian's
# packages first when it is missing.
set -euo pipefail
ready() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if command -v redis-cli >/dev/null && ready; then
  exit 0
fi
if ! command -v redis-server >/dev/null; then
  echo "Redis is not installed: installing it from Debian's packages" >&2
  "$(dirname "$0")/apt_install.sh" redis-server
fi
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
  --dir /tmp --logfile /tmp/rdv-redis.log
for _ in $(seq 1 30); do
  if ready; then exit 0; fi
  sleep 0.5
done
echo "Redis did not become ready on 127.0.0.1:6379" >&2
exit 1
