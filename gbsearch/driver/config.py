"""The campaign configuration: every setting of ``gbsearch run`` with its one default and its check.

The CLI, a campaign YAML file (``workflows/campaign.yaml``) and :func:`gbsearch.search` all build
a :class:`CampaignConfig`; the boundary is resolved from the misorientation here, once, and the
resolved :class:`~gbsearch.geometry.csl.TwistCSL` is what the rest of the campaign receives.
Precedence when several sources set a key: explicit arguments (CLI options, keyword
arguments) win over the YAML file, which wins over the defaults below.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from gbsearch.errors import InputError
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION, TwistCSL, find_twist_csl


def _setting(default, help: str, types: tuple, minimum=None):
    """A configuration field: its default, help text (CLI and YAML docs), accepted types and
    lower bound, kept together so each setting is described in one place."""
    return field(default=default, metadata={"help": help, "types": types, "minimum": minimum})


@dataclass(frozen=True)
class CampaignConfig:
    """Settings of one diffusion campaign. ``None`` means "not set": the documented default
    applies (e.g. ``out`` → ``runs/run-ANGLE``, ``model`` → the bundled model of the boundary,
    ``relax_*`` → :class:`~gbsearch.relaxation.engine.RelaxSettings`' values)."""
    misorientation: float = _setting(DEFAULT_MISORIENTATION, "twist angle about <100>, degrees (a CSL angle)", (int, float))
    # Other boundaries (issue #19) have reference searches (`gbsearch reference --plane`) but no
    # model: a campaign asked for one stops with one line saying so.
    plane: str | None = _setting(None, "GB plane (hkl) of another boundary: refused, the model covers "
                                       "<100> twist only", (str, list, tuple))
    axis: str | None = _setting(None, "tilt axis of another boundary: refused, the model covers <100> twist only",
                                (str, list, tuple))
    candidates: int = _setting(12, "in-painted candidates to generate and relax", (int,), 1)
    seed: int = _setting(0, "seed of candidate generation: candidate i depends on (seed, i) only", (int,), 0)
    # None: the model's own (gbsearch.gbmodel.model.sampling_settings): 20 DPM-Solver-3 steps for a
    # diffusion model (DEFAULT_NFE there, with the measurement behind it), a distilled model's
    # recorded steps.
    nfe: int | None = _setting(None, "network evaluations per candidate (default: the model's own: 20 solver "
                                     "steps, or a distilled model's); SPEC: 60", (int,), 1)
    solver: str | None = _setting(None, "sampler: dpm3-singlestep (the paper's, default for a diffusion model), "
                                        "dpm2m, unipc, or ddim (a distilled model's only)", (str,))
    runtime: str = _setting("torch", "network runtime on a CPU: torch, or openvino (pip install \"gbsearch[openvino]\")",
                            (str,))
    batch_size: int | None = _setting(None, "candidates in-painted per batch (default 64 on a GPU, 1 on a CPU)",
                                      (int,), 1)
    # A short NVT anneal of each candidate's free atoms before CG, as the reference search does:
    # on 8 candidates of the earlier default it lowered every relaxed γ, the best from 2.944 to
    # 2.503 J/m² (bench/bench_anneal.py). 0 steps = CG only (the paper's protocol).
    anneal_temperature: float = _setting(1500.0, "temperature (K) of the NVT anneal before CG", (int, float))
    anneal_steps: int = _setting(5000, "MD steps (2 fs) of that anneal; 0 = CG only, as in the paper", (int,), 0)
    out: Path | None = _setting(None, "campaign folder (default runs/run-ANGLE)", (str, Path))
    model: Path | None = _setting(None, "model file (default: the bundled model of the boundary)", (str, Path))
    database: str | None = _setting(None, "ASE database URL (default OUT/campaign.db, SQLite)", (str, Path))
    scheduler: str | None = _setting(None, "address of an existing Dask scheduler", (str,))
    cluster: Path | None = _setting(None, "Dask cluster file (workflows/dask-*.yaml)", (str, Path))
    workers: int | None = _setting(None, "local relaxation workers (default: all cores)", (int,), 1)
    relax_etol: float | None = _setting(None, "CG energy tolerance (LAMMPS etol)", (int, float), 0)
    relax_ftol: float | None = _setting(None, "CG force tolerance, eV/Å (LAMMPS ftol)", (int, float), 0)
    relax_maxiter: int | None = _setting(None, "CG iterations at most", (int,), 1)
    relax_maxeval: int | None = _setting(None, "force evaluations at most", (int,), 1)
    # Resolved from misorientation in __post_init__ (not a user setting).
    boundary: TwistCSL = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self):
        for f in settings():
            value = getattr(self, f.name)
            if value is None:
                continue
            types, minimum = f.metadata["types"], f.metadata["minimum"]
            # bool is an int in Python, but "workers: yes" is still a mistake.
            if isinstance(value, bool) or not isinstance(value, types):
                kind = "a number" if float in types else "an integer" if int in types else "a string or path"
                raise InputError(f"{f.name} must be {kind}, got {value!r}")
            if minimum is not None and value < minimum:
                bound = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
                raise InputError(f"{f.name} {bound}, got {value}")
            if Path in types and not isinstance(value, Path) and f.name not in ("database",):
                object.__setattr__(self, f.name, Path(value))
        if self.anneal_steps > 0 and not 0 < self.anneal_temperature <= 10_000:
            raise InputError(f"anneal temperature must be in (0, 10000] K, got {self.anneal_temperature:g}")
        from gbsearch.solvers import SOLVERS
        if self.solver is not None and self.solver not in SOLVERS:
            raise InputError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.runtime not in ("torch", "openvino"):
            raise InputError(f"runtime must be torch or openvino, got {self.runtime!r}")
        if self.scheduler and self.cluster:
            raise InputError("set either scheduler or cluster, not both")
        if self.database is not None:
            object.__setattr__(self, "database", str(self.database))
        if self.plane is not None or self.axis is not None:
            asked = " ".join(f"--{k} {v if isinstance(v, str) else ','.join(map(str, v))}"
                             for k, v in (("plane", self.plane), ("axis", self.axis)) if v is not None)
            raise InputError(f"the diffusion model covers <100> twist boundaries only (-m ANGLE), not {asked}; "
                             f"`gbsearch reference {asked}` runs the reference search of that boundary")
        object.__setattr__(self, "boundary", find_twist_csl(self.misorientation))

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def build(cls, config_file: str | Path | None = None, **given) -> "CampaignConfig":
        """A configuration from a YAML file (optional) and explicit settings; explicit settings
        that are not None win over the file, the file over the defaults."""
        unknown = sorted(set(given) - set(setting_names()))
        if unknown:
            raise InputError(f"unknown campaign setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(setting_names())}")
        values = {}
        if config_file is not None:       # null in the file: the default
            values.update({k: v for k, v in load_campaign_config(config_file).items() if v is not None})
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)

    # -- derived values ---------------------------------------------------------------------
    @property
    def out_dir(self) -> Path:
        return self.out if self.out is not None else Path(f"runs/run-{self.misorientation:g}")

    @property
    def anneal(self) -> list | None:
        """[temperature K, steps] as recorded in campaign.json, None for CG only."""
        return [float(self.anneal_temperature), int(self.anneal_steps)] if self.anneal_steps > 0 else None

    def anneal_for(self, index: int):
        """The :class:`~gbsearch.relaxation.engine.AnnealSettings` of candidate ``index`` (its own
        velocity seed from (seed, index)), None for CG only."""
        if self.anneal_steps <= 0:
            return None
        from gbsearch.relaxation.engine import AnnealSettings
        return AnnealSettings(temperature=float(self.anneal_temperature), steps=int(self.anneal_steps),
                              seed=1 + index + 100_003 * self.seed)

    def batch_for(self, device) -> int:
        """Candidates per in-painting batch on ``device`` (a torch.device or its type): the
        setting, else 64 on a GPU (throughput) and 1 on a CPU, where a U-Net evaluation's
        activations of one 28x28x64 sample (about 50 MB in bf16) already fill the caches and
        larger batches ran slower per candidate (bench/bench_generation.py)."""
        if self.batch_size is not None:
            return self.batch_size
        return 64 if getattr(device, "type", device) == "cuda" else 1

    def relax_settings(self):
        """RelaxSettings with the relax_* keys that are set (None: the engine's defaults)."""
        given = {f.name[6:]: getattr(self, f.name) for f in settings()
                 if f.name.startswith("relax_") and getattr(self, f.name) is not None}
        if not given:
            return None
        from gbsearch.relaxation.engine import RelaxSettings
        return RelaxSettings(**given)

    def replace(self, **changes) -> "CampaignConfig":
        return dataclasses.replace(self, **changes)


def settings() -> list[dataclasses.Field]:
    """The user settings of a campaign (every field but the resolved boundary)."""
    return [f for f in dataclasses.fields(CampaignConfig) if f.init]


def setting_names() -> list[str]:
    return [f.name for f in settings()]


def describe(name: str) -> str:
    """Help text of a setting with its default, for the CLI and the docs."""
    f = next(f for f in settings() if f.name == name)
    default = "" if f.default is None else f" [default: {f.default:g}]" if isinstance(
        f.default, float) else f" [default: {f.default}]"
    return f.metadata["help"][0].upper() + f.metadata["help"][1:] + "." + default


def load_campaign_config(path: str | Path) -> dict:
    """The keys a campaign YAML file sets (null: the default), unknown keys refused. Types and
    bounds are checked by :class:`CampaignConfig` itself; errors name the file."""
    from gbsearch.driver.workflow_files import read_yaml
    data = read_yaml(path)
    unknown = sorted(set(data) - set(setting_names()))
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(map(str, unknown))} for a campaign; "
                         f"allowed: {', '.join(sorted(setting_names()))}")
    try:
        CampaignConfig(**{k: v for k, v in data.items() if v is not None})
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return data
