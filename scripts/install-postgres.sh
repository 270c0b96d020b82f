#!/usr/bin/env bash
# Postgres from Debian's packages, for the shared-registry tests (tests/jobs/test_poll_pace.py).
# The tests start their own server in a temporary folder; without Postgres they are skipped.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing postgresql (Debian package) for the shared-registry tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
else
  echo "== postgresql not installed and cannot install it here: the shared-registry tests will be skipped"
fi
