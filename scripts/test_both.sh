#!/usr/bin/env bash
# The whole suite on SQLite and on PostgreSQL at the same time (make test).
#
# On two cores the suites overlap their waits (browser, database, sockets), which keeps CI
# well under its 20-minute budget. Each run has its own var/ directory (SQLite file, SMS
# file, screenshots), STATIC_ROOT, Redis database and log, so neither sees the other's files:
# the e2e tests re-collect static files, and with one shared STATIC_ROOT the other suite's
# WhiteNoise once listed a file that collectstatic was replacing (FileNotFoundError). The
# logs are printed whole, one after the other, once both have finished.
set -uo pipefail

python=$1
postgres_url=$2
root=$(pwd)
suites="$root/var/suites"
mkdir -p "$suites"

run() {
    local name=$1 url=$2 redis_db=$3
    local dir="$suites/$name"
    rm -rf "$dir" && mkdir -p "$dir"
    export RDV_VAR_DIR="$dir" RDV_LOCAL_ENV="$root/var/local.env" STATIC_ROOT="$dir/static" \
        REDIS_TEST_URL="redis://127.0.0.1:6379/$redis_db" DATABASE_URL="$url"
    "$python" manage.py collectstatic --noinput -v0 >"$dir.log" 2>&1 || return 1
    # shellcheck disable=SC2086  # PYTEST_ARGS is a list of arguments
    "$python" -m pytest -p no:cacheprovider ${PYTEST_ARGS:-} >>"$dir.log" 2>&1
}

run sqlite "sqlite:///$suites/sqlite/test.sqlite3" 14 &
sqlite_pid=$!
run postgres "$postgres_url" 15 &
postgres_pid=$!
wait "$sqlite_pid"
sqlite_status=$?
wait "$postgres_pid"
postgres_status=$?

for name in sqlite postgres; do
    echo "======================== $name ========================"
    cat "$suites/$name.log"
done
echo "SQLite suite: exit $sqlite_status; PostgreSQL suite: exit $postgres_status"
[ "$sqlite_status" -eq 0 ] && [ "$postgres_status" -eq 0 ]
