"""ledger package (built in later issues)."""
