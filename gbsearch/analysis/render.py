"""OVITO inspection of a campaign's best structures: PNG views and extended-XYZ files.

For each of the K lowest-γ ok structures the renderer writes a side view of the slab (looking
along x, GB horizontal), a plan view of the GB plane (looking down z, atoms within
±``PLAN_HALF_WIDTH`` of ``info["gb_z"]``) and an extended-XYZ file with per-atom energy and
polyhedral-template-matching structure type, plus a contact sheet of all views.
Atoms are coloured by PTM structure type or by per-atom energy; fixed grains are drawn
semi-transparent so the relaxed region stands out. Rendering is headless (OVITO needs
Vulkan: ``libvulkan1`` and ``mesa-vulkan-drivers`` give a CPU implementation).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from gbsearch.analysis.ptm import ptm_modifier, structure_types
from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import FIXED_REGIONS
from gbsearch.store.database import DB_NAME

PLAN_HALF_WIDTH = 5.0        # Å either side of the GB plane in the plan view
FIXED_TRANSPARENCY = 0.7     # dimming of the fixed grains
COLORS = ("ptm", "energy")
# PTM's default "Other" is near-white, invisible on a white background; GB atoms are mostly
# "Other", so give them a strong colour.
OTHER_COLOR = (0.93, 0.42, 0.13)
BCC_COLOR = (0.25, 0.42, 0.85)
VULKAN_HINT = ("OVITO cannot render here (it needs Vulkan); install a CPU Vulkan driver: "
               "apt-get install -y libvulkan1 mesa-vulkan-drivers")


@dataclass
class Rendered:
    """Files written for one structure, with its database id and properties."""
    rank: int
    db_id: int
    source: str
    gamma_J_m2: float
    n_frac: float
    side_png: Path
    plan_png: Path
    xyz: Path
    structure_counts: dict = field(default_factory=dict)   # PTM type name -> atoms
    render_s: float = 0.0


def best_rows(database: str | Path, k: int) -> list:
    """The ``k`` lowest-γ ok rows of a campaign database (any source)."""
    from gbsearch.store.database import CampaignDB

    if k < 1:
        raise InputError(f"--best must be at least 1, got {k}")
    db = CampaignDB(database)
    rows = sorted(db.rows(status="ok"), key=lambda r: r.gamma_J_m2)
    if not rows:
        raise InputError(f"no structures with status 'ok' in {database}")
    return rows[:k]


def _ptm_modifier():
    """PTM with OVITO's default templates (FCC, HCP, BCC), coloured for a white background."""
    return ptm_modifier(colors={"OTHER": OTHER_COLOR, "BCC": BCC_COLOR})


def annotate_structure_types(atoms: Atoms) -> Atoms:
    """Copy of ``atoms`` with PTM ``structure_type`` (int) and ``structure`` (name) arrays
    (OVITO's default templates: FCC, HCP, BCC, else Other)."""
    types, names = structure_types(atoms)
    out = atoms.copy()
    out.arrays["structure_type"] = types
    out.arrays["structure"] = np.array([names[i] for i in types])
    return out


def write_xyz(atoms: Atoms, path: Path) -> Path:
    """Extended XYZ for OVITO desktop / ASE: columns region, atomic_energy (eV),
    structure_type (PTM id, OVITO reads it as "Structure Type") and structure (PTM name)."""
    import ase.io

    a = atoms.copy()
    # ASE's reader would move a per-atom column called "energy" into a calculator as the
    # total energy; "atomic_energy" stays a plain array in ASE and in OVITO.
    a.arrays["atomic_energy"] = a.arrays.pop("energy")
    a.arrays.pop("tags", None)                      # duplicates region
    a.info = {k: v for k, v in a.info.items() if isinstance(v, (int, float, str, np.number))}
    a.calc = None
    ase.io.write(path, a, format="extxyz")
    return path


def _replicas(length: float, target: float) -> int:
    return max(1, int(np.ceil(target / max(length, 1e-6))))


class _Scene:
    """One OVITO pipeline in the global scene, removed again on exit."""

    def __init__(self, atoms: Atoms, color: str, replicate: tuple[int, int], keep=None,
                 radius_scale: float = 1.0):
        from ovito.io.ase import ase_to_ovito
        from ovito.modifiers import ColorCodingModifier, ReplicateModifier
        from ovito.pipeline import Pipeline, StaticSource

        data = ase_to_ovito(atoms)
        data.cell_.vis.enabled = False              # the box includes vacuum: only clutter
        data.particles_.vis.scaling = radius_scale
        # imported structures without regions (GRIP dumps) are drawn with no atom dimmed
        fixed = np.isin(atoms.arrays.get("region", np.zeros(len(atoms), int)), FIXED_REGIONS)
        data.particles_.create_property("Transparency", data=np.where(fixed, FIXED_TRANSPARENCY, 0.0))
        self.pipeline = Pipeline(source=StaticSource(data=data))
        self.coding = None
        if color == "ptm":
            self.pipeline.modifiers.append(_ptm_modifier())   # on the periodic cell, before any cut
        else:
            # Range from the free atoms: the surface atoms of the fixed grains would swamp it.
            # Percentiles: one strained atom should not wash out the rest of the map.
            e = atoms.arrays["energy"][~fixed] if (~fixed).any() else atoms.arrays["energy"]
            lo, hi = np.percentile(e, [1, 99])
            self.coding = ColorCodingModifier(property="energy", gradient=ColorCodingModifier.Viridis(),
                                              start_value=float(lo), end_value=float(max(hi, lo + 1e-3)))
            self.pipeline.modifiers.append(self.coding)
        if keep is not None:
            from ovito.modifiers import DeleteSelectedModifier, ExpressionSelectionModifier
            self.pipeline.modifiers.append(ExpressionSelectionModifier(expression=keep))
            self.pipeline.modifiers.append(DeleteSelectedModifier())
        if replicate != (1, 1):
            self.pipeline.modifiers.append(ReplicateModifier(num_x=replicate[0], num_y=replicate[1],
                                                             num_z=1, adjust_box=True))

    def __enter__(self):
        self.pipeline.add_to_scene()
        return self

    def __exit__(self, *exc):
        self.pipeline.remove_from_scene()


def _legend(scene: _Scene):
    from ovito.qt_compat import QtCore
    from ovito.vis import ColorLegendOverlay

    common = dict(alignment=QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter,
                  orientation=QtCore.Qt.Orientation.Vertical, font_size=0.055, label_size=1.0,
                  text_color=(0, 0, 0), legend_size=0.35, offset_x=-0.01)
    if scene.coding is not None:
        return ColorLegendOverlay(modifier=scene.coding, title="E (eV)", format_string="%.2f", **common)
    return ColorLegendOverlay(property="particles/Structure Type", title="PTM", pipeline=scene.pipeline,
                              **common)


def _render(scene: _Scene, view, title: str, subtitle: str, size: tuple[int, int], path: Path) -> Path:
    from ovito.vis import OpenGLRenderer, TextLabelOverlay, Viewport

    vp = Viewport(type=view)
    vp.overlays.append(TextLabelOverlay(text=title, font_size=0.05, text_color=(0, 0, 0),
                                        offset_x=0.01, offset_y=0.0))
    vp.overlays.append(TextLabelOverlay(text=subtitle, font_size=0.035, text_color=(0.3, 0.3, 0.3),
                                        offset_x=0.012, offset_y=-0.085))
    vp.overlays.append(_legend(scene))
    vp.zoom_all(size=size)
    vp.fov *= 1.35                                   # margin for the title and legend
    try:
        vp.render_image(size=size, filename=str(path), background=(1.0, 1.0, 1.0),
                        renderer=OpenGLRenderer())
    except RuntimeError as exc:
        if "vulkan" in str(exc).lower():
            raise InputError(f"{VULKAN_HINT} (OVITO: {str(exc).splitlines()[0]})") from exc
        raise
    return path


def render_structure(atoms: Atoms, prefix: Path, color: str = "ptm", size: tuple[int, int] = (800, 600),
                     title: str = "GB") -> tuple[Path, Path]:
    """Side and plan views of one GB slab: ``prefix_side.png`` and ``prefix_plan.png``."""
    from ovito.vis import Viewport

    if color not in COLORS:
        raise InputError(f"--color must be one of {', '.join(COLORS)}, got {color!r}")
    lx, ly = atoms.cell.lengths()[:2]
    z = atoms.positions[:, 2]
    # Periodic images make the tiny CSL cells readable: side view about as wide as the slab
    # is tall (room for the legend at 4:3), plan view at least ~25 Å across.
    side_rep = (1, _replicas(ly, z.max() - z.min()))
    plan_rep = (_replicas(lx, 25.0), _replicas(ly, 25.0))
    gb_z = float(atoms.info["gb_z"])
    side = Path(f"{prefix}_side.png")
    plan = Path(f"{prefix}_plan.png")
    with _Scene(atoms, color, side_rep) as s:
        _render(s, Viewport.Type.Left, title, "side view along x; fixed grains faded", size, side)
    keep = f"abs(Position.Z - {gb_z}) > {PLAN_HALF_WIDTH}"
    # Small spheres in the plan view so that both grains' columns show through.
    with _Scene(atoms, color, plan_rep, keep=keep, radius_scale=0.45) as s:
        _render(s, Viewport.Type.Top, title, f"GB plane from above: |z - z_GB| < {PLAN_HALF_WIDTH:g} Å",
                size, plan)
    return side, plan


def contact_sheet(items: list[Rendered], path: Path) -> Path:
    """All views in one PNG: one row per structure, side view left, plan view right."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The views carry their own titles and legends: just tile them.
    fig, axes = plt.subplots(len(items), 2, figsize=(10, 3.75 * len(items)), squeeze=False)
    for row, it in zip(axes, items):
        for ax, png in zip(row, (it.side_png, it.plan_png)):
            ax.imshow(plt.imread(png))
            ax.set_axis_off()
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1, wspace=0.01, hspace=0.01)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render_campaign(folder: Path, best: int = 3, color: str = "ptm", out: Path | None = None,
                    size: tuple[int, int] = (800, 600), database: str | None = None,
                    sheet: bool = True) -> list[Rendered]:
    """Render the ``best`` lowest-γ ok structures of the campaign in ``folder`` into
    ``out`` (default ``folder/render``). Returns what was written, best first."""
    from gbsearch.store.database import row_to_atoms

    folder = Path(folder)
    if color not in COLORS:
        raise InputError(f"--color must be one of {', '.join(COLORS)}, got {color!r}")
    if best < 1:
        raise InputError(f"--best must be at least 1, got {best}")
    if database is None:
        if not folder.is_dir():
            raise InputError(f"campaign folder {folder} does not exist")
        database = folder / DB_NAME
        if not database.is_file():
            raise InputError(f"{folder} holds no campaign database ({DB_NAME})")
    try:
        import ovito  # noqa: F401
    except ImportError as exc:
        raise InputError(f"OVITO's Python module is missing: pip install ovito ({exc})") from exc
    rows = best_rows(database, best)
    out = Path(out) if out is not None else folder / "render"
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for rank, row in enumerate(rows, 1):
        t0 = time.perf_counter()
        atoms = annotate_structure_types(row_to_atoms(row))
        stem = out / f"{rank:02d}_id{row.id}"
        xyz = write_xyz(atoms, Path(f"{stem}.xyz"))
        title = f"#{row.id} {row.source}   γ = {row.gamma_J_m2:.3f} J/m²   [n] = {row.n_frac:.2f}"
        side, plan = render_structure(atoms, stem, color=color, size=size, title=title)
        names, counts = np.unique(atoms.arrays["structure"], return_counts=True)
        done.append(Rendered(rank, row.id, row.source, row.gamma_J_m2, row.n_frac, side, plan, xyz,
                             dict(zip(names.tolist(), counts.tolist())), time.perf_counter() - t0))
    if sheet:
        contact_sheet(done, out / "contact_sheet.png")
    return done
