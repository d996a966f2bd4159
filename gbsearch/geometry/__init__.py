"""Geometry: CSL twist boundaries, bicrystal slabs, γ_GB and [n]. NumPy and ASE only."""
