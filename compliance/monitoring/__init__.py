"""compliance.monitoring (being built)."""
