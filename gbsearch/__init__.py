"""gbsearch: grand-canonical generative diffusion search for grain-boundary structures."""

__version__ = "0.1.0"


def search(misorientation: float = 36.87, candidates: int = 12, out=None, model=None,
           scheduler: str | None = None, workers: int | None = None, seed: int = 0,
           progress: bool = True, nfe: int | None = None, anneal_temperature: float | None = None,
           anneal_steps: int | None = None):
    """Run a diffusion search campaign for a <100> twist GB of W and return the relaxed
    candidates as ``ase.Atoms``, lowest γ first; each has ``info["gamma_J_m2"]`` (J/m²),
    ``info["n_frac"]`` and ``info["source"]``. Results also go to the campaign folder ``out``;
    ``nfe``: solver steps per candidate (default 20; SPEC's 60: slower, same best γ in our tests);
    ``anneal_temperature`` (K) / ``anneal_steps`` (2 fs MD steps before CG, default 1500 K × 5000;
    ``anneal_steps=0``: CG only, as in the paper)."""
    from gbsearch.search.campaign import run_campaign
    return run_campaign(misorientation, candidates, out, model, scheduler, workers, seed,
                        progress=progress, nfe=nfe, anneal_temperature=anneal_temperature,
                        anneal_steps=anneal_steps).structures
