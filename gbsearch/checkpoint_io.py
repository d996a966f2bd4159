"""Reading the package's model files: one reader for every checkpoint format.

Every gbsearch checkpoint is a ``torch.save``d dict of plain types and tensors whose
``"format"`` entry names what it is:

    gbsearch.voxel-diffusion     U-Net + noise schedule (gbsearch.diffusion.checkpoint; GB and
                                 crystal voxel models), with an integer ``"version"``
    gbsearch-voxel-decoder/1     learned voxel → atom decoder (gbsearch.voxel.decoder)
    gbsearch-crystal-particle    particle (GNN) baseline of the crystal experiment

:func:`read_checkpoint_file` loads one safely (``weights_only=True``: no code runs from the
file) and turns every way it can be wrong — missing, not a file, truncated or garbage, another
format or version, missing entries — into :class:`gbsearch.errors.CheckpointError` naming the
file. torch is imported only when a file is read, so importing this module costs nothing.
"""
from __future__ import annotations

from pathlib import Path

from gbsearch.errors import CheckpointError

__all__ = ["CheckpointError", "read_checkpoint_file"]


def read_checkpoint_file(path, fmt: str | tuple[str, ...], what: str, *, version: int | None = None,
                         required: tuple[str, ...] = (), hint: str = "") -> dict:
    """The checkpoint dict stored at ``path`` (on the CPU), checked against its format tag.

    fmt: the accepted ``"format"`` value(s); what: words for the kind of file in messages
    (e.g. "voxel-decoder"); version: if given, the ``"version"`` entry must equal it;
    required: keys that must be present; hint: appended to the "not found" message (how to
    make such a file). Raises :class:`CheckpointError` naming ``path`` otherwise.
    """
    import torch

    path = Path(path)
    formats = (fmt,) if isinstance(fmt, str) else tuple(fmt)
    if not path.exists():
        raise CheckpointError(f"{what} checkpoint not found: {path}" + (f" ({hint})" if hint else ""))
    if not path.is_file():
        raise CheckpointError(f"{what} checkpoint {path} is not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{what} checkpoint {path} is unreadable or corrupt: "
                              f"{exc.__class__.__name__}: {first}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") not in formats:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a gbsearch {what} checkpoint "
                              f"(format {found!r}, expected {' or '.join(map(repr, formats))})")
    if version is not None and ckpt.get("version") != version:
        raise CheckpointError(f"{path} has {what} checkpoint version {ckpt.get('version')}, "
                              f"this gbsearch reads {version}")
    missing = [k for k in required if k not in ckpt]
    if missing:
        raise CheckpointError(f"{what} checkpoint {path} lacks {missing}")
    return ckpt
