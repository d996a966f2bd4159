"""Public import path shown in the README; the code lives in :mod:`gbsearch.relaxation.relax`."""
from gbsearch.relaxation.relax import *  # noqa: F401,F403
from gbsearch.relaxation.relax import relax  # noqa: F401
