#!/usr/bin/env bash
# The project's test command: install everything (venv, apt packages for OVITO) and run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/ci/postgres.sh   # PostgreSQL server binaries for tests/test_postgres.py
exec .venv/bin/python -m pytest -q -m "not slow" "$@"
