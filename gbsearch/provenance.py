"""Where a result came from: the git commit of the code that produced it."""
from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(short: bool = False) -> str:
    """The commit hash of the gbsearch checkout (full 40 hex digits, or git's abbreviation
    when ``short``), or ``"unknown"`` when there is no git or the package is not in a checkout
    (e.g. installed from a wheel). Asks git in the package's own folder, so the answer does not
    depend on the caller's working directory. Uncommitted changes are not recorded."""
    cmd = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):   # no git binary, or it hung
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
