"""gateway package (built in later issues)."""
