"""Public import path shown in the README; the code lives in :mod:`gbsearch.geometry.bicrystal`."""
from gbsearch.geometry.bicrystal import *  # noqa: F401,F403
from gbsearch.geometry.bicrystal import twist_bicrystal, describe  # noqa: F401
