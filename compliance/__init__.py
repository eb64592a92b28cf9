"""compliance package (built in later issues)."""
