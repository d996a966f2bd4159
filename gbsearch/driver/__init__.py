"""The search driver: the campaign configuration, Dask clusters, GRIP-style trials, the
reference search and the diffusion campaign. (Not named ``search``: that is the public
function :func:`gbsearch.search`.)"""
