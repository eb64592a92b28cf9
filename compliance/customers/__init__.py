"""compliance.customers (being built)."""
