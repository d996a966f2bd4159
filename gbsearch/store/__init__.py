"""Storage: the campaign's ASE database and the bundled reference datasets. No torch."""
