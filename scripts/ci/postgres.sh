#!/usr/bin/env bash
# PostgreSQL server binaries for tests/test_postgres.py (its fixture starts a throw-away
# cluster with initdb/pg_ctl). Installs Debian's `postgresql` only when no
# /usr/lib/postgresql/*/bin/initdb exists; needs root for that.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "warning: PostgreSQL server binaries missing (need root to apt-get install postgresql); tests/test_postgres.py will fail" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || { echo "error: postgresql installed but no initdb found" >&2; exit 1; }
