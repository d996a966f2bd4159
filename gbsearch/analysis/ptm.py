"""Structure identification with OVITO's polyhedral template matching (PTM).

One wrapper for the two users: the renderer labels and colours GB slabs with OVITO's default
templates (FCC, HCP, BCC), the crystal experiment counts atoms of its target phase among
SC, BCC, FCC and HCP. OVITO is imported only when a function runs.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from ase import Atoms

# The candidate structures of the crystal experiment (its phases plus HCP, the usual
# competitor of FCC); the renderer keeps OVITO's defaults instead.
CRYSTAL_STRUCTURES = ("SC", "BCC", "FCC", "HCP")


def type_id(name: str) -> int:
    """OVITO's integer id of a PTM structure type by its ``PTM.Type`` name ("BCC", "SC", "OTHER", ...)."""
    from ovito.modifiers import PolyhedralTemplateMatchingModifier as PTM
    return int(getattr(PTM.Type, name))


def ptm_modifier(structures: Sequence[str] | None = None, rmsd_cutoff: float = 0.1,
                 colors: Mapping[str, tuple[float, float, float]] | None = None):
    """A configured ``PolyhedralTemplateMatchingModifier``.

    structures: ``PTM.Type`` names of the templates to match, all others switched off; None
    keeps OVITO's defaults (FCC, HCP, BCC). rmsd_cutoff: largest RMSD of a match (OVITO's
    default 0.1; 0 means no cut-off). colors: RGB in [0, 1] per type name, for rendering.
    """
    from ovito.modifiers import PolyhedralTemplateMatchingModifier as PTM

    mod = PTM(rmsd_cutoff=rmsd_cutoff)
    if structures is not None:
        wanted = {type_id(s) for s in structures}
        for t in mod.structures:
            t.enabled = t.id in wanted
    for name, rgb in (colors or {}).items():
        tid = type_id(name)
        for t in mod.structures:
            if t.id == tid:
                t.color = rgb
    return mod


def structure_types(atoms: Atoms, structures: Sequence[str] | None = None,
                    rmsd_cutoff: float = 0.1) -> tuple[np.ndarray, dict[int, str]]:
    """PTM structure type of every atom of ``atoms`` (its cell and pbc are used as given).

    Returns (types (N,) int32 OVITO ids, {id: name} for all of OVITO's types); see
    :func:`ptm_modifier` for the arguments.
    """
    from ovito.io.ase import ase_to_ovito
    from ovito.pipeline import Pipeline, StaticSource

    if len(atoms) == 0:
        return np.zeros(0, np.int32), {}
    pipe = Pipeline(source=StaticSource(data=ase_to_ovito(atoms)))
    pipe.modifiers.append(ptm_modifier(structures, rmsd_cutoff))
    prop = pipe.compute().particles["Structure Type"]
    return np.asarray(prop, dtype=np.int32).copy(), {t.id: t.name for t in prop.types}
