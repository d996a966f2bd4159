"""Small file-system helpers with user-facing errors."""
from __future__ import annotations

import os
from pathlib import Path

from gbsearch.errors import InputError


def writable_dir(path: str | Path) -> Path:
    """Create ``path`` as a folder if needed and check that it is writable."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output folder {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise InputError(f"output folder {path} is not writable")
    return path


def writable_path(path: str | Path) -> Path:
    """Return ``path`` after checking that its folder exists (or can be made) and is writable."""
    path = Path(path)
    writable_dir(path.parent if str(path.parent) else Path("."))
    return path
