"""Every limit of the cases package, each with the reason for its value."""

from __future__ import annotations

# Why an officer decided: a few sentences an auditor reads; longer material is a note or a
# document. Also keeps every audit row's detail far under `compliance.records.detail_bytes_max`.
reason_chars_max = 2_000

# A case note: a page of findings. Longer material is a document.
note_chars_max = 20_000

# A SAR/STR narrative: goAML's `reason` field is free text; FinCEN caps the SAR narrative at
# 17,000 characters, so more than this would be refused by an FIU anyway.
narrative_chars_max = 17_000

# One document kept in the database (`PgDocumentStore`): a scanned statement or a spreadsheet.
# Larger files belong in the encrypted record store once it is plugged in.
document_bytes_max = 16 * 1024 * 1024

# An identifier or short label (actor, assignee, document name, FIU reference, media type).
name_chars_max = 200

# Rows one listing returns at most: a dashboard page, never the whole table in memory.
list_rows_max = 500

# Alerts the consumer fetches and stores per transaction: one round stays far inside ack_wait.
fetch_messages_max = 200
