"""Public import path shown in the README; the code lives in :mod:`gbsearch.store.references`."""
from gbsearch.store.references import *  # noqa: F401,F403
from gbsearch.store.references import load_reference_dataset  # noqa: F401
