"""compliance.records (being built)."""
