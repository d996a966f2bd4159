"""Analysis: the γ–[n] table and plot, discovery metrics, structure identification, OVITO renders."""
