#!/usr/bin/env bash
# The project's test command: install everything (venv, apt packages for OVITO) and run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/ci/chromium.sh      # headless Chromium for tests/test_html_report.py
exec .venv/bin/python -m pytest -q -m "not slow" "$@"
