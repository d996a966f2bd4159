"""Where a result came from: the git commit of the code that produced it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git_commit(short: bool = False, mark_dirty: bool = False) -> str:
    """The commit hash of the gbsearch checkout (full 40 hex digits, or git's abbreviation
    when ``short``), or ``"unknown"`` when there is no git or the package is not in a checkout
    (e.g. installed from a wheel). Asks git in the package's own folder, so the answer does not
    depend on the caller's working directory. ``mark_dirty``: append "+dirty" when the
    package's tracked files have uncommitted changes (a long search records what really ran)."""
    if os.environ.get("GBSEARCH_COMMIT"):     # a copy without .git (the lent GPU machine's) names its commit
        return os.environ["GBSEARCH_COMMIT"]
    here = Path(__file__).resolve().parent
    cmd = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=here)
        if out.returncode != 0 or not out.stdout.strip():
            return "unknown"
        dirty = mark_dirty and subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "."], capture_output=True, text=True,
            timeout=10, cwd=here).stdout.strip()
    except (OSError, subprocess.SubprocessError):   # no git binary, or it hung
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty else "")
