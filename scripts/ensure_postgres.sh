#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the test suite and benchmarks.
# Uses the running one when there is one; otherwise starts the Debian cluster, installing
# PostgreSQL from Debian's packages first when it is missing.
set -euo pipefail
HOST=127.0.0.1
PORT=5432

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

if [ -n "${DATABASE_URL:-}" ] || { command -v pg_isready >/dev/null && ready; }; then
  exit 0
fi
if ! command -v pg_ctlcluster >/dev/null; then
  echo "PostgreSQL is not installed: installing it from Debian's packages" >&2
  "$(dirname "$0")/apt_install.sh" postgresql postgresql-contrib
fi
VERSION="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$VERSION" ]; then
  VERSION="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  pg_createcluster "$VERSION" main
fi
HBA="/etc/postgresql/$VERSION/main/pg_hba.conf"
if ! grep -q "rdv-sante-tests" "$HBA"; then
  # A throw-away local test server: trust on loopback only, like the CI machines.
  { echo "host all all 127.0.0.1/32 trust # rdv-sante-tests"; echo "host all all ::1/128 trust # rdv-sante-tests"; cat "$HBA"; } > "$HBA.new"
  mv "$HBA.new" "$HBA"
  chown postgres:postgres "$HBA"
fi
pg_ctlcluster --skip-systemctl-redirect "$VERSION" main start || pg_ctlcluster --skip-systemctl-redirect "$VERSION" main reload
for _ in $(seq 1 30); do
  if ready; then exit 0; fi
  sleep 1
done
echo "PostgreSQL did not become ready on $HOST:$PORT" >&2
exit 1
