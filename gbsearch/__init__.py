"""gbsearch: grand-canonical generative diffusion search for grain-boundary structures."""

__version__ = "0.1.0"
