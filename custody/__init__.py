"""custody package (built in later issues)."""
