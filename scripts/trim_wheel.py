"""Repack a wheel without some of its files, for the 64 MiB a device call carries.

Usage: python scripts/trim_wheel.py WHEEL REGEX [REGEX ...]
Files whose path inside the wheel matches any REGEX (re.search) are dropped, and so are their
RECORD lines, so that `pip install` still accepts the wheel. Only parts nothing imports at run
time belong here (test suites, the GUI).
"""
import re
import sys
import zipfile
from pathlib import Path


def trim(wheel: Path, patterns: list[str]) -> int:
    drop = re.compile("|".join(f"(?:{p})" for p in patterns))
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as zi, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zo:
        for info in zi.infolist():
            if drop.search(info.filename):
                continue
            data = zi.read(info.filename)
            if info.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line for line in data.splitlines(True) if not drop.search(line.decode()))
            zo.writestr(info, data)
    saved = wheel.stat().st_size - tmp.stat().st_size
    tmp.replace(wheel)
    return saved


if __name__ == "__main__":
    path, *pats = sys.argv[1:]
    print(f"{Path(path).name}: {trim(Path(path), pats) / 1e6:.2f} MB less")
