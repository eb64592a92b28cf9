"""compliance.cases (being built)."""
