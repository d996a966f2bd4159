"""Small file-system helpers: writable folders with user-facing errors, the user cache folder,
atomic (write-then-rename) file writes."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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


def cache_dir() -> Path:
    """The user cache folder of gbsearch, created if needed: ``$XDG_CACHE_HOME/gbsearch``
    (default ``~/.cache/gbsearch``). Holds files made once and reused: the generated potential
    of a non-editable install, uncompressed bundled reference databases."""
    path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gbsearch"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Write ``target`` all at once: yields a temporary path beside it to write to, then
    renames it over ``target`` (``os.replace``, atomic on one file system). A reader, or a run
    killed half-way, thus never sees half a file. If the block raises, the temporary file is
    removed and ``target`` is left as it was.

    The temporary name keeps the target's suffix (writers that pick a format by extension
    still work) and carries the process and thread ids, so concurrent writers do not collide.
    """
    target = Path(target)
    tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}-{threading.get_ident()}{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(target: str | Path, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``target`` through :func:`atomic_path`; returns ``target``."""
    target = Path(target)
    with atomic_path(target) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return target
