"""Search orchestration: the campaign configuration, Dask clusters, GRIP-style trials, the
reference search and the diffusion campaign."""
