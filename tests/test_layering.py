"""Layering: the physics side (geometry, relaxation, store) never loads torch, the learning side
(voxel, diffusion, gbmodel) never loads LAMMPS.

Importing torch costs ~5 s and a GPU context, LAMMPS an MPI library: a relaxation worker or a
reference-data script must not pay for torch, and a model must train where LAMMPS is not
installed. Each check runs real use of a package in a fresh interpreter (``sys.modules`` of
this pytest process already holds everything) and watches the import system: when the
forbidden package is imported anyway, the failure shows the import chain that pulled it in.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs before the checked code: records the call stack of every attempt to find the forbidden
# top-level package (the first real import goes through sys.meta_path, so this sees it).
_WATCH = r'''
import json, sys, traceback
_FORBIDDEN = {forbidden!r}
_ATTEMPTS = []

class _Watch:
    def find_spec(self, name, path=None, target=None):
        if name == _FORBIDDEN:
            frames = [f for f in traceback.extract_stack()[:-1]
                      if "importlib" not in f.filename and not f.filename.startswith("<frozen")]
            _ATTEMPTS.append([f"{{f.filename}}:{{f.lineno}}: {{f.line}}" for f in frames])
        return None    # let the normal finders do the import

sys.meta_path.insert(0, _Watch())
'''

_REPORT = r'''
print("LAYERING " + json.dumps({"loaded": _FORBIDDEN in sys.modules, "attempts": _ATTEMPTS}))
'''


def run_isolated(code: str, forbidden: str) -> dict:
    """Run ``code`` in a fresh interpreter with this checkout first on the path; return
    {"loaded": whether ``forbidden`` ended up in sys.modules, "attempts": import stacks}."""
    script = _WATCH.format(forbidden=forbidden) + textwrap.dedent(code) + _REPORT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, f"the checked code failed:\n{proc.stderr[-3000:]}"
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("LAYERING ")][-1]
    result = json.loads(line[len("LAYERING "):])
    # Code run with -c has no source file: put the checked line itself into the stacks.
    lines = script.splitlines()
    for stack in result["attempts"]:
        for i, frame in enumerate(stack):
            if frame.startswith("<string>:"):
                n = int(frame.split(":")[1])
                stack[i] = f"<checked code>:{n}: {lines[n - 1].strip()}"
    return result


def assert_not_loaded(result: dict, forbidden: str, what: str) -> None:
    if not result["loaded"]:
        return
    chains = []
    for stack in result["attempts"]:
        ours = [ln for ln in stack if "/gbsearch/" in ln or ln.startswith("<checked code>")]
        chains.append("\n    ".join(ours or stack[-8:]))
    raise AssertionError(f"{what} imported {forbidden}; import chain(s), outermost first:\n    "
                         + "\n  ---\n    ".join(chains))


GEOMETRY = """
from gbsearch.bicrystal import twist_bicrystal          # the README's import path
from gbsearch.geometry.csl import find_twist_csl
from gbsearch.geometry.periodic import minimum_image
from gbsearch.geometry.properties import atom_fraction, energy_region, gb_energy, n_free
import numpy as np
slab = twist_bicrystal(36.87, replicate=(1, 1), n_fixed=5, n_free=2)
assert find_twist_csl(36.87).sigma == 5 and len(slab) == 70
assert atom_fraction(slab) == 0.0 and n_free(slab) == 20
gamma = gb_energy(slab, np.full(len(slab), -8.76), -8.76)
assert abs(gamma) < 1e-12 and energy_region(slab).any()
assert np.allclose(minimum_image([[9.0, 0.0, 9.0]], (10.0, 10.0, 10.0), (True, True, False)), [[-1.0, 0.0, 9.0]])
"""

RELAXATION = """
import gbsearch.relaxation.engine, gbsearch.relaxation.checks, gbsearch.relaxation.potential
from gbsearch.relax import relax                            # the README's import path
from gbsearch.bicrystal import twist_bicrystal
out = relax(twist_bicrystal(36.87, n_fixed=5, n_free=2))   # 70 atoms, < 1 s of LAMMPS
assert out.info["iterations"] > 0 and 0 < out.info["gamma_J_m2"] < 5
"""

STORE = """
import tempfile, pathlib
from gbsearch.store.database import CampaignDB, load_reference_structures
from gbsearch.reference_data import load_reference_dataset  # the README's import path
from gbsearch.store.references import provenance
with tempfile.TemporaryDirectory() as tmp:
    db = CampaignDB(pathlib.Path(tmp) / "campaign.db")
    assert db.count("reference") == 0
refs = load_reference_dataset(36.87)
assert len(refs) > 100 and all("gamma_J_m2" in a.info for a in refs)
assert provenance(36.87)
"""

VOXEL = """
import numpy as np, torch
from gbsearch.voxel.encoder import encode, pad_positions
from gbsearch.voxel.grid import VoxelGrid
from gbsearch.voxel.metrics import compare
import gbsearch.voxel.decoder
grid = VoxelGrid.for_box((3.1648, 3.1648, 3.1648), periodic=(True, True, True))
pos, mask = pad_positions([np.array([[0.0, 0.0, 0.0], [1.5824, 1.5824, 1.5824]])])
v = encode(pos, grid, mask)
assert abs(float(v.sum()) - 2.0) < 1e-5
"""

DIFFUSION = """
import torch
from gbsearch.diffusion import UNet3D, UNetConfig, make_scheduler, ScheduleConfig, load_checkpoint
net = UNet3D(UNetConfig(base_channels=4, channel_mult=(1, 2), num_res_blocks=1, norm_groups=2))
y = net(torch.zeros(1, 1, 4, 4, 4), 3)
assert y.shape == (1, 1, 4, 4, 4)
make_scheduler(ScheduleConfig())
"""

GBMODEL = """
import gbsearch.gbmodel.model as m
from gbsearch.gbmodel.slab_voxels import SlabTemplate
t = SlabTemplate.from_dict(SlabTemplate(replicate=(1, 1), n_fixed=4, n_free=4, nz=32).to_dict())
assert t.grid().shape[2] == 32 and t.known_mask().any()
gen = m.GBGenerator.load(m.bundled_model(36.87), device="cpu")    # the shipped model and its template
assert abs(gen.template.misorientation - 36.87) < 0.01 and gen.template.grid().shape == tuple(gen.meta["grid"]["shape"])
"""

CHECKS = [
    ("geometry", GEOMETRY, "torch"),
    ("relaxation", RELAXATION, "torch"),
    ("store", STORE, "torch"),
    ("voxel", VOXEL, "lammps"),
    ("diffusion", DIFFUSION, "lammps"),
    ("gbmodel", GBMODEL, "lammps"),
]


@pytest.mark.parametrize("what, code, forbidden", CHECKS, ids=[c[0] for c in CHECKS])
def test_package_does_not_load(what, code, forbidden):
    assert_not_loaded(run_isolated(code, forbidden), forbidden, f"using gbsearch.{what}")


def test_the_watch_sees_a_forbidden_import():
    """The harness itself: the voxel encoder does import torch, and the report says from where."""
    result = run_isolated("import gbsearch.voxel.encoder\n", "torch")
    assert result["loaded"]
    with pytest.raises(AssertionError, match=r"(?s)imported torch.*<checked code>:\d+: import gbsearch\.voxel\.encoder"
                                             r".*gbsearch/voxel/encoder\.py:\d+: import torch"):
        assert_not_loaded(result, "torch", "importing gbsearch.voxel.encoder")
