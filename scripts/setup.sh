#!/usr/bin/env bash
# Create .venv and install gbsearch into it. `--test` adds the test extras and the apt
# packages OVITO needs for headless rendering (libvulkan1, mesa-vulkan-drivers) and the
# postgresql extra (ase-db-backends, psycopg2) for the PostgreSQL tests and the openvino extra.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--test" ]]; then
  if ! dpkg -s libvulkan1 mesa-vulkan-drivers >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 mesa-vulkan-drivers >/dev/null
    else
      echo "warning: libvulkan1 mesa-vulkan-drivers missing (need root to install); OVITO rendering tests will fail" >&2
    fi
  fi
  extras="[test,slurm,postgresql,openvino]"
else
  extras=""
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Pinned first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".${extras}"
