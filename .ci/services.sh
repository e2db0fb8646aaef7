#!/usr/bin/env bash
# System parts the tests need: bubblewrap (code sandbox), PostgreSQL (annotation store), Debian's Chromium
# (Playwright page tests). Installs what is missing, starts PostgreSQL on loopback, and prints the exports
# the tests read. Safe to run twice. Usage: eval "$(bash .ci/services.sh)"
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v chromium >/dev/null || need+=(chromium)
[ -d /usr/lib/postgresql ] || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  as_root apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || {
    as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq "${need[@]}" >/dev/null; }
fi
# Debian's package makes a cluster; start it (a container has no init system to do it).
cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1{print $1" "$2}')
if [ -n "$cluster" ]; then
  as_root pg_ctlcluster $cluster start >/dev/null 2>&1 || true
fi
for _ in $(seq 1 30); do as_root runuser -u postgres -- pg_isready -q -h 127.0.0.1 && break; sleep 1; done
as_root runuser -u postgres -- psql -q -h 127.0.0.1 -c \
  "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='alignline') THEN
     CREATE ROLE alignline LOGIN PASSWORD 'alignline' CREATEDB; END IF; END\$\$;" >/dev/null 2>&1 || \
as_root runuser -u postgres -- psql -q -c \
  "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='alignline') THEN
     CREATE ROLE alignline LOGIN PASSWORD 'alignline' CREATEDB; END IF; END\$\$;" >/dev/null
as_root runuser -u postgres -- psql -q -tc "SELECT 1 FROM pg_database WHERE datname='alignline_test'" | grep -q 1 || \
  as_root runuser -u postgres -- createdb -O alignline alignline_test
echo "export ALIGNLINE_TEST_POSTGRES=postgresql+psycopg://alignline:alignline@127.0.0.1:5432/alignline_test"
echo "export ALIGNLINE_CHROMIUM=$(command -v chromium)"
