"""gbsearch: grand-canonical generative diffusion search for grain-boundary structures."""

__version__ = "0.1.0"


def search(misorientation: float | None = None, candidates: int | None = None, *, config=None,
           progress: bool = True, client=None, **settings):
    """Run a diffusion search campaign for a <100> twist GB of W and return the relaxed
    candidates as ``ase.Atoms``, lowest γ first; each has ``info["gamma_J_m2"]`` (J/m²),
    ``info["n_frac"]`` and ``info["source"]``. Results also go to the campaign folder ``out``.

    Settings are those of :class:`gbsearch.driver.config.CampaignConfig` (``out``, ``model``,
    ``seed``, ``nfe``, ``anneal_temperature`` (K), ``anneal_steps`` (2 fs MD steps before CG;
    0 = CG only, as in the paper), ``workers``, ``scheduler``, ``database``, ``relax_*``…), with
    the same defaults as ``gbsearch run``; ``config``: a campaign YAML file whose keys the
    arguments override; ``client``: a Dask client to relax on."""
    from gbsearch.driver.campaign import run_campaign
    from gbsearch.driver.config import CampaignConfig
    cfg = CampaignConfig.build(config, misorientation=misorientation, candidates=candidates, **settings)
    return run_campaign(cfg, client=client, progress=progress).structures
