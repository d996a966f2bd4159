#!/usr/bin/env bash
# The project's test command: install everything (venv, apt packages for OVITO, Chromium,
# PostgreSQL's server binaries, a single-node SLURM) and run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/ci/chromium.sh      # headless Chromium for tests/test_html_report.py
bash scripts/ci/postgres.sh      # PostgreSQL server binaries for tests/test_postgres.py
bash scripts/ci/slurm.sh         # single-node SLURM (slurmctld + slurmd here) for tests/test_slurm.py
exec .venv/bin/python -m pytest -q -m "not slow" "$@"
