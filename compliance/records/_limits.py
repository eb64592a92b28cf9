"""Every limit of the records package, each with the reason for its value."""

from __future__ import annotations

# One stored record: a scanned identity document or a SAR with attachments is a few MB. Larger
# files belong in object storage with their SHA-256 recorded here; this keeps one row, one
# decryption and one read bounded in memory.
payload_bytes_max = 16 * 1024 * 1024

# An actor, action, target, record type, jurisdiction, subject or outcome is an identifier or a
# short phrase; anything longer is a mistake (or an attempt to smuggle data into the log).
name_chars_max = 200

# Why someone read a record: a sentence or a case reference, not an essay.
purpose_chars_max = 1_000

# One audit row's detail, as canonical JSON: enough for a decision's inputs and explanation;
# large evidence goes into the record store and the audit row names its record id.
detail_bytes_max = 64 * 1024

# Rows `verify_chain` reads per query: bounds memory on a log of any length.
verify_batch_rows_max = 5_000

# Records deleted (and audited, one row each) per purge transaction: keeps each transaction and
# the audit lock it holds short while other writers wait.
purge_batch_max = 500

# Records re-encrypted per rotation transaction, for the same reason.
rotate_batch_max = 200

# Years a record type may be kept at most by configuration: catches a typo (50 for 5) in a
# retention table, since no regime we know asks for more than 10.
retention_years_max = 30
